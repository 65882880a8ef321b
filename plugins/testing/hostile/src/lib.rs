//! A plugin that misbehaves on purpose, for the sandbox tests: the date it is run for
//! chooses the misbehaviour, so one component covers every case. Each limit has a date
//! that stays within it and one that breaks it.

use oshirase_sdk::{
    Category, Day, Field, Notice, Occasion, Population, Program, ProgramInfo, Reason, Settings, export_program,
};

pub struct Hostile;

/// The dates (as day numbers) that choose a misbehaviour; any other date behaves well.
pub const SPIN_FOREVER: i32 = 0;
pub const EXHAUST_MEMORY: i32 = 1;
pub const NAME_A_STRANGER: i32 = 2;
pub const UNDECLARED_OCCASION: i32 = 3;
pub const REPORT_CLOCK_AND_RANDOMNESS: i32 = 4;
pub const READ_A_FILE: i32 = 5;
pub const SPIN_BRIEFLY: i32 = 6;
pub const ALLOCATE_MODESTLY: i32 = 7;
pub const RECURSE_DEEPLY: i32 = 8;
pub const RECURSE_FOREVER: i32 = 9;
pub const OUTPUT_AT_THE_LIMIT: i32 = 10;
pub const OUTPUT_OVER_THE_LIMIT: i32 = 11;
pub const TRAP: i32 = 12;
pub const PANIC: i32 = 13;
pub const READ_THE_ENVIRONMENT: i32 = 14;
pub const OPEN_A_SOCKET: i32 = 15;

/// The host's default output cap is 8 notices per person plus 1,000.
const OUTPUT_LIMIT_PER_PERSON: u32 = 8;
const OUTPUT_LIMIT_CONSTANT: u32 = 1000;

/// Recurses `depth` times with a frame the optimiser cannot remove.
fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    let frame = std::hint::black_box([depth; 16]);
    recurse(std::hint::black_box(depth - 1)) + frame[15] % 2
}

impl Program for Hostile {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: "hostile".into(),
            name: "サンドボックス試験".into(),
            division: "試験".into(),
            contact: "なし".into(),
            category: Category::Living,
            schedule: "0 0 9 * * *".into(),
            source_url: String::new(),
            fields: vec![Field::BirthDay],
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![Occasion::new("any", "試験", "【{program}】試験")],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        let notice = |person: u32, occasion: &'static str, reason: String| Notice {
            person,
            occasion: occasion.into(),
            instance: 0,
            send_on: today,
            expires_on: today,
            reason: Reason::new(&reason),
        };
        match today.0 {
            SPIN_FOREVER => {
                let mut counter: u64 = 0;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            EXHAUST_MEMORY => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 64 << 20]));
                }
            }
            NAME_A_STRANGER => Ok(vec![notice(population.size + 5, "any", String::new())]),
            UNDECLARED_OCCASION => Ok(vec![notice(0, "not-in-the-manifest", String::new())]),
            REPORT_CLOCK_AND_RANDOMNESS => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|duration| duration.as_secs())
                    .unwrap_or(0);
                // RandomState's keys come from the host's randomness, which the sandbox pins.
                let random = std::hint::black_box(std::collections::hash_map::RandomState::new());
                let hashed = {
                    use std::hash::BuildHasher;
                    random.hash_one(42u64)
                };
                Ok(vec![notice(0, "any", format!("clock {now} random {hashed}"))])
            }
            READ_A_FILE => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => Ok(vec![notice(0, "any", format!("read {} bytes", text.len()))]),
                Err(error) => Err(format!("cannot read: {error}")),
            },
            SPIN_BRIEFLY => {
                let mut counter: u64 = 0;
                for _ in 0..1_000_000 {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
                Ok(vec![notice(0, "any", format!("counted {counter}"))])
            }
            ALLOCATE_MODESTLY => {
                let block = std::hint::black_box(vec![1u8; 16 << 20]);
                Ok(vec![notice(0, "any", format!("allocated {} bytes", block.len()))])
            }
            RECURSE_DEEPLY => Ok(vec![notice(0, "any", format!("recursed {}", recurse(1000)))]),
            RECURSE_FOREVER => Ok(vec![notice(0, "any", format!("recursed {}", recurse(u64::MAX)))]),
            OUTPUT_AT_THE_LIMIT | OUTPUT_OVER_THE_LIMIT => {
                let count = population.size * OUTPUT_LIMIT_PER_PERSON
                    + OUTPUT_LIMIT_CONSTANT
                    + u32::from(today.0 == OUTPUT_OVER_THE_LIMIT);
                Ok((0..count).map(|index| notice(index % population.size, "any", String::new())).collect())
            }
            TRAP => {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_arch = "wasm32"))]
                unreachable!("the trap is only reachable in WebAssembly")
            }
            PANIC => panic!("the rules are broken"),
            READ_THE_ENVIRONMENT => {
                let variables: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
                let arguments = std::env::args().count();
                let home = std::env::var("HOME").unwrap_or_default();
                Ok(vec![notice(
                    0,
                    "any",
                    format!(
                        "{} variables [{}], {arguments} arguments, HOME {home:?}",
                        variables.len(),
                        variables.join(" ")
                    ),
                )])
            }
            OPEN_A_SOCKET => match std::net::TcpStream::connect(("127.0.0.1", 80)) {
                Ok(_) => Ok(vec![notice(0, "any", "connected".into())]),
                Err(error) => Err(format!("cannot connect: {error}")),
            },
            _ => Ok(population.people().take(1).map(|person| notice(person.index(), "any", "ok".into())).collect()),
        }
    }
}

export_program!(Hostile);

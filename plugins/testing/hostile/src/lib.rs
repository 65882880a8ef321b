//! A plugin that misbehaves on purpose, for the sandbox tests: the date it is run for
//! chooses the misbehaviour, so one component covers every case.

use oshirase_sdk::{export_program, Category, Day, Field, Notice, Occasion, Population, Program, ProgramInfo};

pub struct Hostile;

/// The dates (as day numbers) that choose a misbehaviour; any other date behaves well.
pub const SPIN_FOREVER: i32 = 0;
pub const EXHAUST_MEMORY: i32 = 1;
pub const NAME_A_STRANGER: i32 = 2;
pub const UNDECLARED_OCCASION: i32 = 3;
pub const REPORT_CLOCK_AND_RANDOMNESS: i32 = 4;
pub const READ_A_FILE: i32 = 5;

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
            occasions: vec![Occasion::new("any", "試験", "【{program}】試験")],
        }
    }

    fn evaluate(today: Day, population: &Population) -> Result<Vec<Notice>, String> {
        let notice = |person: u32, occasion: &str, reason: String| Notice { person, occasion: occasion.into(), send_on: today, expires_on: today, reason };
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
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|duration| duration.as_secs()).unwrap_or(0);
                let mut random = std::collections::hash_map::RandomState::new();
                let hashed = {
                    use std::hash::BuildHasher;
                    random.hash_one(42u64)
                };
                random = std::hint::black_box(random);
                drop(random);
                Ok(vec![notice(0, "any", format!("clock {now} random {hashed}"))])
            }
            READ_A_FILE => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => Ok(vec![notice(0, "any", format!("read {} bytes", text.len()))]),
                Err(error) => Err(format!("cannot read: {error}")),
            },
            _ => Ok(population.people().take(1).map(|person| notice(person.index(), "any", "ok".into())).collect()),
        }
    }
}

export_program!(Hostile);

//! The sandbox: the one place that knows wasmtime. It compiles program plugins into
//! components, and runs `describe` and `evaluate` in a fresh, limited store each time, with
//! WASI linked but nothing granted and the clocks and randomness pinned.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use oshirase_sdk::{Category, Day, Field, Notice, Occasion, Population, ProgramInfo};
use rand::SeedableRng;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({ path: "../wit", world: "program" });
}
use bindings::oshirase::program::types as wit;

/// The limits every evaluation runs under.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub memory_bytes: usize,
    pub wall_time: Duration,
    /// At most this many notices per person in the population, plus a small constant.
    pub notices_per_person: usize,
    pub reason_bytes: usize,
    pub log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory_bytes: 512 << 20, wall_time: Duration::from_secs(10), notices_per_person: 8, reason_bytes: 400, log_bytes: 16 << 10 }
    }
}

/// How often the epoch advances; the wall-time limit is counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Why a plugin could not be used or its answer was refused. Each names the plugin's fault
/// so that the run log tells the division what to fix.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("not a usable program component: {0:#}")]
    Invalid(anyhow::Error),
    #[error("plugin trapped or ran out of limits: {0:#}")]
    Trapped(anyhow::Error),
    #[error("plugin reported an error: {0}")]
    Reported(String),
    #[error("plugin output refused: {0}")]
    BadOutput(String),
}

/// The store's data: the WASI context (granting nothing) and the resource limits.
struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A wall clock that always reads the same instant, so a plugin cannot tell when it runs.
struct PinnedWallClock(Duration);

impl HostWallClock for PinnedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

struct PinnedMonotonicClock;

impl HostMonotonicClock for PinnedMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// One wasmtime engine with its linker and the thread that advances its epoch.
pub struct PluginEngine {
    engine: Engine,
    linker: Linker<Sandbox>,
    limits: Limits,
    cache_directory: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A compiled plugin, ready to instantiate, with the manifest it gave.
pub struct LoadedProgram {
    pre: bindings::ProgramPre<Sandbox>,
    pub info: ProgramInfo,
}

/// What one evaluation produced, with the plugin's captured output for the run log.
pub struct Evaluation {
    pub notices: Vec<Notice>,
    pub log: String,
}

impl PluginEngine {
    /// Builds the engine. `cache_directory`, when given, keeps compiled code across runs.
    pub fn new(limits: Limits, cache_directory: Option<PathBuf>) -> Result<PluginEngine> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(64).total_core_instances(256).total_memories(64).total_tables(64).max_memory_size(limits.memory_bytes);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(anyhow::Error::from).context("cannot create the wasmtime engine")?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from).context("cannot link WASI")?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.weak(), ticker_stop.clone());
        std::thread::Builder::new().name("plugin-epoch".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match ticker_engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        if let Some(directory) = &cache_directory {
            std::fs::create_dir_all(directory).with_context(|| format!("cannot create {}", directory.display()))?;
        }
        Ok(PluginEngine { engine, linker, limits, cache_directory, ticker_stop })
    }

    /// Compiles (or loads from the cache) a plugin and asks it to describe itself.
    pub fn load(&self, wasm: &[u8], sha256: &str) -> Result<LoadedProgram, PluginError> {
        let component = self.compile(wasm, sha256).map_err(PluginError::Invalid)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|error| PluginError::Invalid(error.into()))?;
        let pre = bindings::ProgramPre::new(instance_pre).map_err(|error| PluginError::Invalid(error.into()))?;
        let (mut store, log) = self.store(Day(0));
        let instance = pre.instantiate(&mut store).map_err(|error| PluginError::Trapped(error.into()))?;
        let info = instance.call_describe(&mut store).map_err(|error| PluginError::Trapped(with_log(error.into(), &log)))?;
        Ok(LoadedProgram { pre, info: info_from_wit(info)? })
    }

    fn compile(&self, wasm: &[u8], sha256: &str) -> Result<Component> {
        let Some(directory) = &self.cache_directory else {
            return Ok(Component::new(&self.engine, wasm)?);
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        let path = directory.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the
            // same compatibility hash, in the data directory that only oshirase writes.
            if let Ok(component) = unsafe { Component::deserialize_file(&self.engine, &path) } {
                return Ok(component);
            }
        }
        let component = Component::new(&self.engine, wasm)?;
        let temporary = path.with_extension("tmp");
        if std::fs::write(&temporary, component.serialize()?).is_ok() {
            let _ = std::fs::rename(&temporary, &path);
        }
        Ok(component)
    }

    /// A fresh store: limits, an epoch deadline, WASI with nothing granted, and stdout and
    /// stderr captured into one bounded buffer.
    fn store(&self, today: Day) -> (Store<Sandbox>, MemoryOutputPipe) {
        let log = MemoryOutputPipe::new(self.limits.log_bytes);
        let midnight_in_japan = Duration::from_secs((i64::from(today.0) * 86_400 - 9 * 3600).max(0) as u64);
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(log.clone())
            .stderr(log.clone())
            .wall_clock(PinnedWallClock(midnight_in_japan))
            .monotonic_clock(PinnedMonotonicClock)
            .secure_random(rand::rngs::StdRng::seed_from_u64(0))
            .insecure_random(rand::rngs::StdRng::seed_from_u64(0))
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new().memory_size(self.limits.memory_bytes).instances(16).tables(16).table_elements(100_000).build();
        let mut store = Store::new(&self.engine, Sandbox { wasi, table: ResourceTable::new(), limits });
        store.limiter(|sandbox| &mut sandbox.limits);
        let ticks = (self.limits.wall_time.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        (store, log)
    }

    /// Runs the plugin's rules for `today` on `population` and checks what comes back.
    pub fn evaluate(&self, program: &LoadedProgram, today: Day, population: Population) -> Result<Evaluation, PluginError> {
        let size = population.size;
        let (mut store, log) = self.store(today);
        let instance = program.pre.instantiate(&mut store).map_err(|error| PluginError::Trapped(error.into()))?;
        let answer = instance.call_evaluate(&mut store, today.0, &population_to_wit(population)).map_err(|error| PluginError::Trapped(with_log(error.into(), &log)))?;
        let log = String::from_utf8_lossy(&log.contents()).into_owned();
        let notices = answer.map_err(PluginError::Reported)?;
        let notices = self.check_output(&program.info, size, notices)?;
        Ok(Evaluation { notices, log })
    }

    /// Refuses output that names no one in the population, an occasion the manifest does
    /// not declare, an empty or inverted window, or more than the limits allow.
    fn check_output(&self, info: &ProgramInfo, size: u32, notices: Vec<wit::Notice>) -> Result<Vec<Notice>, PluginError> {
        let most = size as usize * self.limits.notices_per_person + 1000;
        if notices.len() > most {
            return Err(PluginError::BadOutput(format!("{} notices for {size} people (at most {most})", notices.len())));
        }
        notices
            .into_iter()
            .map(|notice| {
                if notice.person >= size {
                    return Err(PluginError::BadOutput(format!("notice for person {} in a population of {size}", notice.person)));
                }
                if !info.occasions.iter().any(|occasion| occasion.key == notice.occasion) {
                    return Err(PluginError::BadOutput(format!("occasion {:?} is not in the manifest", notice.occasion)));
                }
                if notice.send_on > notice.expires_on {
                    return Err(PluginError::BadOutput(format!("occasion {:?} expires before it may be sent", notice.occasion)));
                }
                if notice.reason.len() > self.limits.reason_bytes {
                    return Err(PluginError::BadOutput(format!("a reason of {} bytes (at most {})", notice.reason.len(), self.limits.reason_bytes)));
                }
                Ok(Notice { person: notice.person, occasion: notice.occasion, send_on: Day(notice.send_on), expires_on: Day(notice.expires_on), reason: notice.reason })
            })
            .collect()
    }
}

fn with_log(error: anyhow::Error, log: &MemoryOutputPipe) -> anyhow::Error {
    let output = String::from_utf8_lossy(&log.contents()).trim().to_string();
    if output.is_empty() { error } else { error.context(format!("plugin output: {output}")) }
}

/// Checks and converts a manifest: a code of lower-case letters, digits and dashes, a
/// name, and unique occasion keys whose templates use only the known placeholders.
fn info_from_wit(info: wit::ProgramInfo) -> Result<ProgramInfo, PluginError> {
    let bad = |message: String| Err(PluginError::Invalid(anyhow::anyhow!("manifest of {:?}: {message}", info.code)));
    if info.code.is_empty() || info.code.len() > 40 || !info.code.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-') {
        return bad("the code must be 1–40 lower-case letters, digits or dashes".into());
    }
    if info.name.trim().is_empty() {
        return bad("the name is empty".into());
    }
    if info.occasions.is_empty() {
        return bad("no occasions".into());
    }
    let mut keys = std::collections::HashSet::new();
    for occasion in &info.occasions {
        if !keys.insert(occasion.key.as_str()) {
            return bad(format!("occasion {:?} appears twice", occasion.key));
        }
        if let Err(placeholder) = crate::message::check_template(&occasion.template) {
            return bad(format!("occasion {:?}: unknown placeholder {{{placeholder}}}", occasion.key));
        }
    }
    Ok(ProgramInfo {
        code: info.code,
        name: info.name,
        division: info.division,
        contact: info.contact,
        category: match info.category {
            wit::Category::ChildRearing => Category::ChildRearing,
            wit::Category::Health => Category::Health,
            wit::Category::Vaccination => Category::Vaccination,
            wit::Category::Allowance => Category::Allowance,
            wit::Category::Living => Category::Living,
        },
        schedule: info.schedule,
        source_url: info.source_url,
        fields: info
            .fields
            .into_iter()
            .map(|field| match field {
                wit::Field::BirthDay => Field::BirthDay,
                wit::Field::Sex => Field::Sex,
                wit::Field::Household => Field::Household,
                wit::Field::Relationship => Field::Relationship,
                wit::Field::Ward => Field::Ward,
                wit::Field::ResidentSince => Field::ResidentSince,
                wit::Field::Tax => Field::Tax,
                wit::Field::Pregnancies => Field::Pregnancies,
                wit::Field::Immunizations => Field::Immunizations,
                wit::Field::Checkups => Field::Checkups,
                wit::Field::Receipts => Field::Receipts,
            })
            .collect(),
        occasions: info.occasions.into_iter().map(|occasion| Occasion { key: occasion.key, title: occasion.title, template: occasion.template }).collect(),
    })
}

fn events_to_wit(events: oshirase_sdk::Events) -> wit::Events {
    wit::Events { person: events.person, codes: events.codes, code: events.code, count: events.count, start: events.start, end: events.end }
}

fn population_to_wit(population: Population) -> wit::Population {
    wit::Population {
        size: population.size,
        birth_day: population.birth_day,
        sex: population.sex,
        household: population.household,
        relationship: population.relationship,
        ward: population.ward,
        wards: population.wards,
        resident_since: population.resident_since,
        taxable: population.taxable,
        income: population.income,
        pregnancies: events_to_wit(population.pregnancies),
        immunizations: events_to_wit(population.immunizations),
        checkups: events_to_wit(population.checkups),
        receipts: events_to_wit(population.receipts),
    }
}

#[cfg(test)]
mod tests {
    //! Sandbox tests in pairs: the same plugin within a limit and beyond it.

    use super::*;

    mod testing {
        include!(concat!(env!("OUT_DIR"), "/testing_plugins.rs"));
    }

    /// The dates that choose the hostile plugin's misbehaviour (see plugins/testing/hostile).
    const SPIN_FOREVER: i32 = 0;
    const EXHAUST_MEMORY: i32 = 1;
    const NAME_A_STRANGER: i32 = 2;
    const UNDECLARED_OCCASION: i32 = 3;
    const REPORT_CLOCK_AND_RANDOMNESS: i32 = 4;
    const READ_A_FILE: i32 = 5;
    const BEHAVE: i32 = 100;

    fn hostile(limits: Limits) -> (PluginEngine, LoadedProgram) {
        let (_, wasm, _) = testing::TESTING.iter().find(|(name, ..)| *name == "hostile").expect("the hostile test plugin is built");
        let engine = PluginEngine::new(limits, None).unwrap();
        let program = engine.load(wasm, "hostile").unwrap();
        (engine, program)
    }

    fn evaluate(limits: Limits, day: i32) -> Result<Evaluation, PluginError> {
        let (engine, program) = hostile(limits);
        let population = Population { size: 3, birth_day: vec![0, 1, 2], ..Population::default() };
        engine.evaluate(&program, Day(day), population)
    }

    fn short_limits() -> Limits {
        Limits { memory_bytes: 64 << 20, wall_time: Duration::from_millis(300), ..Limits::default() }
    }

    #[test]
    fn a_plugin_within_its_limits_is_answered() {
        let evaluation = evaluate(short_limits(), BEHAVE).unwrap();
        assert_eq!(evaluation.notices.len(), 1);
        assert_eq!(evaluation.notices[0].person, 0);
    }

    #[test]
    fn a_plugin_that_never_returns_is_stopped_at_the_wall_time_limit() {
        let started = std::time::Instant::now();
        let error = evaluate(short_limits(), SPIN_FOREVER).err().expect("a spinning plugin must be stopped");
        assert!(matches!(error, PluginError::Trapped(_)), "{error}");
        assert!(format!("{error:#}").contains("interrupt"), "{error:#}");
        assert!(started.elapsed() < Duration::from_secs(30), "stopped only after {:?}", started.elapsed());
    }

    #[test]
    fn a_plugin_that_hoards_memory_traps_at_the_memory_limit() {
        let error = evaluate(short_limits(), EXHAUST_MEMORY).err().expect("a hoarding plugin must be stopped");
        assert!(matches!(error, PluginError::Trapped(_)), "{error}");
    }

    #[test]
    fn output_naming_a_stranger_or_an_undeclared_occasion_is_refused() {
        let stranger = evaluate(short_limits(), NAME_A_STRANGER).err().expect("a stranger must be refused");
        assert_eq!(stranger.to_string(), "plugin output refused: notice for person 8 in a population of 3");
        let occasion = evaluate(short_limits(), UNDECLARED_OCCASION).err().expect("an undeclared occasion must be refused");
        assert_eq!(occasion.to_string(), "plugin output refused: occasion \"not-in-the-manifest\" is not in the manifest");
    }

    #[test]
    fn the_clock_and_randomness_are_pinned_and_files_are_out_of_reach() {
        let first = evaluate(short_limits(), REPORT_CLOCK_AND_RANDOMNESS).unwrap().notices;
        let second = evaluate(short_limits(), REPORT_CLOCK_AND_RANDOMNESS).unwrap().notices;
        assert_eq!(first, second, "two runs on the same input must agree");
        // Day 4 at midnight in Japan is 4 × 86,400 − 9 × 3,600 seconds after the epoch.
        assert!(first[0].reason.starts_with("clock 313200 "), "{}", first[0].reason);
        let error = evaluate(short_limits(), READ_A_FILE).err().expect("no file may be readable");
        assert!(matches!(error, PluginError::Reported(ref message) if message.starts_with("cannot read")), "{error}");
    }
}

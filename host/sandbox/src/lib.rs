//! The sandbox: the one place that knows wasmtime. It compiles program plugins into
//! components, and runs `describe` and `evaluate` in a fresh, limited store each time, with
//! WASI linked but nothing granted and the clocks and randomness pinned. It implements
//! `oshirase:program` 1.1 (`wit/program.wit`) and still runs 1.0 components
//! (`wit/1.0/program.wit`); both answers become the same compact [`Notices`].

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use oshirase_sdk::{
    Attributes, Category, Day, Enrollments, Field, Notice, Occasion, Population, ProgramInfo, Setting, SettingType,
    SettingValue, Settings,
};
use rand::SeedableRng;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

mod definition;
pub use definition::{
    DEFINITION_SECTION, DefinedOccasion, DefinedProgram, Definition, category_named, definition_of, with_definition,
};

mod bindings {
    // Borrowing: the population crosses as slices of the host's columns, so the host copies
    // a city's columns once (into the plugin's memory), never into an owned record first.
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "program",
        ownership: Borrowing { duplicate_if_necessary: false }
    });
}
use bindings::oshirase::program::types as wit;

/// The frozen 1.0 contract, for components built before 1.1.
mod bindings_1_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/1.0",
        world: "program",
        ownership: Borrowing { duplicate_if_necessary: false }
    });
}
use bindings_1_0::oshirase::program::types as wit_1_0;

/// The limits every evaluation runs under. Memory and wall time grow with the population
/// the call is given: a base that any program gets (its runtime starting, a town's worth of
/// work), a per-resident allowance, and a hard ceiling. So a rule in Python (CPython inside
/// the component, seven times Rust's linear memory and a hundred times its call) is
/// accepted on a city of two million, while a runaway plugin on a town of five thousand is
/// still stopped at 133 MiB and 2.1 s.
///
/// The defaults come from Python (componentize-py 0.25.1) measured on this project's
/// 2-core machine (`oshirase-dev bench python`, the README's "Python programs"):
/// 麻しん風しん grew to 20 MiB of linear memory on 50,000 residents and 229 MiB on a
/// million, about 220 bytes and 4.4 µs of call per resident; a rule over all eleven fields
/// took 7.6 s and 557 MB for the whole process on a million, so at most about 560 bytes and
/// 7.6 µs. The allowances, 1 KiB and 20 µs per resident, are about twice and two and a
/// half times that heaviest rule, for a machine evaluating two programs at once; the
/// base, 128 MiB and 2 s, six times CPython's start. A million residents then get 1.1 GiB
/// and 22 s, two million 2.1 GiB and 42 s. The ceilings, 3 GiB and 120 s, bound what one
/// call may take from a server other towns share: 3 GiB is every Japanese municipality but
/// Yokohama at the full allowance (Yokohama at Python's measured use), and leaves a 24 GiB
/// server room for two such calls at once.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The linear memory a plugin may grow to with no one in its population.
    pub memory_bytes: usize,
    /// The memory added for each resident of the population.
    pub memory_bytes_per_resident: usize,
    /// The most memory any call gets, whatever its population.
    pub memory_ceiling_bytes: usize,
    /// The wall time of a call with no one in its population (instantiation included).
    pub wall_time: Duration,
    /// The time added for each resident of the population.
    pub wall_time_per_resident: Duration,
    /// The most wall time any call gets, whatever its population.
    pub wall_time_ceiling: Duration,
    /// At most this many notices per person in the population, plus a small constant.
    pub notices_per_person: usize,
    pub reason_bytes: usize,
    pub log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_bytes: 128 << 20,
            memory_bytes_per_resident: 1 << 10,
            memory_ceiling_bytes: 3 << 30,
            wall_time: Duration::from_secs(2),
            wall_time_per_resident: Duration::from_micros(20),
            wall_time_ceiling: Duration::from_secs(120),
            notices_per_person: 8,
            reason_bytes: 400,
            log_bytes: 16 << 10,
        }
    }
}

impl Limits {
    /// The memory a call on `residents` may grow each linear memory to: the base plus the
    /// allowance per resident, at most the ceiling.
    pub fn memory_for(&self, residents: u32) -> usize {
        let allowance = self.memory_bytes_per_resident.saturating_mul(residents as usize);
        self.memory_bytes.saturating_add(allowance).min(self.memory_ceiling_bytes)
    }

    /// The wall time of a call on `residents`: the base plus the allowance per resident, at
    /// most the ceiling.
    pub fn wall_time_for(&self, residents: u32) -> Duration {
        let allowance = self.wall_time_per_resident.saturating_mul(residents);
        self.wall_time.saturating_add(allowance).min(self.wall_time_ceiling)
    }
}

/// The version of the `oshirase:program` package in `wit/program.wit`, which this host
/// implements (and every earlier minor version of it).
pub const WIT_VERSION: &str = "1.1.0";

/// Whether a plugin built for `found` runs on this host: the same major version (the same
/// minor for 0.x) and no newer minor, since a newer minor may expect what this host lacks.
fn wit_compatible(found: &str) -> bool {
    let parse = |version: &str| -> Option<(u64, u64)> {
        let mut parts = version.split('.').map(|part| part.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??))
    };
    match (parse(found), parse(WIT_VERSION)) {
        (Some((0, found_minor)), Some((0, minor))) => found_minor == minor,
        (Some((found_major, found_minor)), Some((major, minor))) => found_major == major && found_minor <= minor,
        _ => false,
    }
}

/// Tells a component from a core module and from bytes that are not WebAssembly at all,
/// before compiling, so the message says which it is.
fn check_binary_kind(wasm: &[u8]) -> Result<(), PluginError> {
    let invalid = |message: String| Err(PluginError::Invalid(anyhow::anyhow!(message)));
    match wasm {
        [0, b'a', b's', b'm', 0x0d, 0, 1, 0, ..] => Ok(()),
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => invalid(
            "this is a core WebAssembly module, not a component: build the plugin with --target wasm32-wasip2".into(),
        ),
        [0, b'a', b's', b'm', ..] => invalid("WebAssembly of an unknown version, not a component".into()),
        _ => invalid(format!("{} bytes that are not WebAssembly (no \\0asm header)", wasm.len())),
    }
}

/// The memory a pool slot keeps mapped between instances: a light program's population
/// and answer on a city of a million.
const KEEP_RESIDENT: usize = 48 << 20;

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
    limits: Limiter,
    /// Keeps the epoch advancing while this store lives, so its deadline can pass.
    _ticking: Ticking,
}

/// wasmtime's limits of one store, and what the plugin took under them: the figures say how
/// much memory a program uses, and an error says when it ran out of its allowance.
struct Limiter {
    limits: StoreLimits,
    /// The linear memory of all the plugin's instances together (memories never shrink, so
    /// this is also their peak).
    memory_bytes: usize,
    /// Whether a memory was refused growth.
    refused: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_bytes += desired.saturating_sub(current);
        } else {
            self.refused = true;
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The thread that advances the engine's epoch every `EPOCH_TICK` while a store is alive,
/// and sleeps otherwise: a server idle between its runs — one per town, hundreds on a
/// machine — must not wake a hundred times a second for nothing.
struct EpochTicker {
    live_stores: Mutex<usize>,
    store_created: Condvar,
    stop: AtomicBool,
}

impl EpochTicker {
    /// Starts the thread for `engine`; it ends when stopped or when the engine is gone.
    fn start(engine: &Engine) -> Result<Arc<EpochTicker>> {
        let ticker = Arc::new(EpochTicker {
            live_stores: Mutex::new(0),
            store_created: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let (engine, thread_ticker) = (engine.weak(), ticker.clone());
        std::thread::Builder::new().name("plugin-epoch".into()).spawn(move || {
            let mut live_stores = thread_ticker.live();
            while !thread_ticker.stop.load(Ordering::Relaxed) {
                if *live_stores == 0 {
                    live_stores = thread_ticker.store_created.wait(live_stores).unwrap_or_else(PoisonError::into_inner);
                    continue;
                }
                drop(live_stores);
                std::thread::sleep(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
                live_stores = thread_ticker.live();
            }
        })?;
        Ok(ticker)
    }

    fn live(&self) -> std::sync::MutexGuard<'_, usize> {
        self.live_stores.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ticks until the returned guard is dropped.
    fn ticking(self: &Arc<EpochTicker>) -> Ticking {
        *self.live() += 1;
        self.store_created.notify_one();
        Ticking(self.clone())
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _live = self.live();
        self.store_created.notify_one();
    }
}

/// One live store's share of the ticker.
struct Ticking(Arc<EpochTicker>);

impl Drop for Ticking {
    fn drop(&mut self) {
        *self.0.live() -= 1;
    }
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
    ticker: Arc<EpochTicker>,
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

/// A compiled plugin, ready to instantiate, with the manifest it gave.
pub struct LoadedProgram {
    pre: Pre,
    pub info: ProgramInfo,
    /// The `oshirase:program` version it was built for.
    pub wit_version: String,
}

/// A component ready to instantiate, of the contract version it was built for.
enum Pre {
    Version1_0(bindings_1_0::ProgramPre<Sandbox>),
    Version1_1(bindings::ProgramPre<Sandbox>),
}

/// What one evaluation produced, with the plugin's captured output for the run log.
pub struct Evaluation {
    pub notices: Notices,
    pub log: String,
    /// The plugin's linear memory at the end of the call, all its instances together: its
    /// peak, since a memory never shrinks.
    pub memory_bytes: usize,
}

/// The checked notices of one evaluation, kept compact as the 1.1 contract hands them
/// over: a screening notifies half a city, and a `String` for the occasion and the reason
/// of each would take three times the memory. The occasion is an index into the manifest's
/// keys, the reason an index into a table of the distinct texts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notices {
    person: Vec<u32>,
    occasion: Vec<u16>,
    instance: Vec<i32>,
    send_on: Vec<i32>,
    expires_on: Vec<i32>,
    reason: Vec<u32>,
    reasons: Vec<String>,
    /// The manifest's occasion keys.
    occasions: Vec<String>,
}

/// One notice of [`Notices`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoticeRef<'a> {
    pub person: u32,
    pub occasion: &'a str,
    /// The occasion's index in the manifest.
    pub occasion_index: u16,
    pub instance: i32,
    pub send_on: Day,
    pub expires_on: Day,
    pub reason: &'a str,
    /// The reason's index in [`Notices::reasons`].
    pub reason_index: u32,
}

impl Notices {
    pub fn len(&self) -> usize {
        self.person.len()
    }

    pub fn is_empty(&self) -> bool {
        self.person.is_empty()
    }

    /// The notice at `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<NoticeRef<'_>> {
        let reason_index = *self.reason.get(index)?;
        let occasion_index = self.occasion[index];
        Some(NoticeRef {
            person: self.person[index],
            occasion: &self.occasions[usize::from(occasion_index)],
            occasion_index,
            instance: self.instance[index],
            send_on: Day(self.send_on[index]),
            expires_on: Day(self.expires_on[index]),
            reason: &self.reasons[reason_index as usize],
            reason_index,
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = NoticeRef<'_>> {
        (0..self.len()).filter_map(|index| self.get(index))
    }

    /// The distinct reason texts, which [`NoticeRef::reason_index`] indexes.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    /// The manifest's occasion keys, which [`NoticeRef::occasion_index`] indexes.
    pub fn occasions(&self) -> &[String] {
        &self.occasions
    }

    /// The notices as the SDK's type, for comparing with a plugin's example cases.
    pub fn to_vec(&self) -> Vec<Notice> {
        self.iter()
            .map(|notice| Notice {
                person: notice.person,
                occasion: notice.occasion.to_owned().into(),
                instance: notice.instance,
                send_on: notice.send_on,
                expires_on: notice.expires_on,
                reason: oshirase_sdk::Reason::new(notice.reason),
            })
            .collect()
    }
}

impl PluginEngine {
    /// Builds the engine. `cache_directory`, when given, keeps compiled code across runs.
    pub fn new(limits: Limits, cache_directory: Option<PathBuf>) -> Result<PluginEngine> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Plugins are stripped, so a backtrace is a list of unnamed function numbers that
        // would bury the reason in the run log.
        config.wasm_backtrace_max_frames(None);
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        // Every evaluation copies the population into a fresh instance's memory. A slot keeps
        // up to `KEEP_RESIDENT` of the pages it touched, zeroed when its instance ends, so the
        // next copy writes into mapped memory instead of faulting a page at a time (a third of
        // a light program's call on a city of a million). With no unused slot kept warm, a
        // new instance takes a freed slot before a never used one, so no more slots hold
        // memory than evaluations ever ran at once.
        pool.total_component_instances(64)
            .total_core_instances(256)
            .total_memories(64)
            .total_tables(64)
            // The largest a call's limit can be; each store limits its own call below it.
            .max_memory_size(limits.memory_ceiling_bytes.max(limits.memory_bytes))
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .max_unused_warm_slots(0);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(anyhow::Error::from).context("cannot create the wasmtime engine")?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from).context("cannot link WASI")?;

        let ticker = EpochTicker::start(&engine)?;
        if let Some(directory) = &cache_directory {
            std::fs::create_dir_all(directory).with_context(|| format!("cannot create {}", directory.display()))?;
        }
        Ok(PluginEngine { engine, linker, limits, cache_directory, ticker })
    }

    /// Compiles (or loads from the cache) a plugin and asks it to describe itself. The
    /// bytes must be a component of a compatible `oshirase:program` version.
    pub fn load(&self, wasm: &[u8], sha256: &str) -> Result<LoadedProgram, PluginError> {
        check_binary_kind(wasm)?;
        let component =
            self.compile(wasm, sha256).map_err(|error| PluginError::Invalid(error.context("not a valid component")))?;
        let wit_version = self.wit_version(&component)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|error| PluginError::Invalid(anyhow::Error::from(error).context("cannot link the component")))?;
        let invalid = |error: wasmtime::Error| PluginError::Invalid(error.into());
        let trapped =
            |error: wasmtime::Error, log: &MemoryOutputPipe| PluginError::Trapped(with_log(error.into(), log));
        let (mut store, log) = self.store(Day(0), 0);
        let (pre, info) = if wit_version.starts_with("1.0.") {
            let pre = bindings_1_0::ProgramPre::new(instance_pre).map_err(invalid)?;
            let instance = pre.instantiate(&mut store).map_err(|error| PluginError::Trapped(error.into()))?;
            let info = instance.call_describe(&mut store).map_err(|error| trapped(error, &log))?;
            (Pre::Version1_0(pre), info_from_wit_1_0(info)?)
        } else {
            let pre = bindings::ProgramPre::new(instance_pre).map_err(invalid)?;
            let instance = pre.instantiate(&mut store).map_err(|error| PluginError::Trapped(error.into()))?;
            let info = instance.call_describe(&mut store).map_err(|error| trapped(error, &log))?;
            (Pre::Version1_1(pre), info_from_wit(info)?)
        };
        // A program made from a template is described by its definition.
        let info = match definition_of(wasm)? {
            Some(definition) => checked_manifest(definition::apply(info, definition)?)?,
            None => info,
        };
        Ok(LoadedProgram { pre, info, wit_version })
    }

    /// The `oshirase:program` version the component was built for, read from the names of
    /// its imports and exports; refused unless this host implements a compatible one.
    fn wit_version(&self, component: &Component) -> Result<String, PluginError> {
        let kind = component.component_type();
        let imports: Vec<&str> = kind.imports(&self.engine).map(|(name, _)| name).collect();
        let exports: Vec<&str> = kind.exports(&self.engine).map(|(name, _)| name).collect();
        let mut versions: Vec<&str> = imports
            .iter()
            .chain(&exports)
            .filter_map(|name| name.strip_prefix("oshirase:program/"))
            .filter_map(|rest| rest.split_once('@'))
            .map(|(_, version)| version)
            .collect();
        versions.sort_unstable();
        versions.dedup();
        let invalid = |message: String| Err(PluginError::Invalid(anyhow::anyhow!(message)));
        match versions[..] {
            [] => invalid(format!(
                "the component does not use oshirase:program (expected oshirase:program@{WIT_VERSION}; it imports [{}] \
                 and exports [{}])",
                imports.join(", "),
                exports.join(", ")
            )),
            [found] if wit_compatible(found) => Ok(found.to_string()),
            [found] => invalid(format!(
                "the component was built for oshirase:program@{found}, but this host implements \
                 oshirase:program@{WIT_VERSION}"
            )),
            _ => invalid(format!(
                "the component uses several oshirase:program versions ({}); this host implements {WIT_VERSION}",
                versions.join(", ")
            )),
        }
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

    /// A fresh store for a call on `residents`: the memory and wall time they allow, WASI
    /// with nothing granted, and stdout and stderr captured into one bounded buffer.
    fn store(&self, today: Day, residents: u32) -> (Store<Sandbox>, MemoryOutputPipe) {
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
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_for(residents))
            .instances(16)
            .tables(16)
            .table_elements(100_000)
            .build();
        let limits = Limiter { limits, memory_bytes: 0, refused: false };
        let sandbox = Sandbox { wasi, table: ResourceTable::new(), limits, _ticking: self.ticker.ticking() };
        let mut store = Store::new(&self.engine, sandbox);
        store.limiter(|sandbox| &mut sandbox.limits);
        let ticks = (self.limits.wall_time_for(residents).as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        (store, log)
    }

    /// Runs the plugin's rules for `today` on `population` with `settings` (a declared
    /// setting without a value there runs at its default) and checks what comes back.
    pub fn evaluate(
        &self,
        program: &LoadedProgram,
        today: Day,
        settings: &Settings,
        population: &Population,
    ) -> Result<Evaluation, PluginError> {
        self.evaluate_rows(program, today, settings, population, population.size)
    }

    /// Runs the plugin's rules for `today` on the first `rows` rows of `population`, which
    /// may hold more columns and kinds than the plugin declares (one read of the snapshot
    /// for a whole day): the plugin is handed only the columns and kinds its manifest
    /// names, borrowed where it can be, and answers are checked against `rows`.
    pub fn evaluate_rows(
        &self,
        program: &LoadedProgram,
        today: Day,
        settings: &Settings,
        population: &Population,
        rows: u32,
    ) -> Result<Evaluation, PluginError> {
        let values = setting_values(&program.info.settings, settings)?;
        let (mut store, log) = self.store(today, rows);
        let names = Names::of(population);
        // A trap names the limit the plugin reached, sized for this population, so the run
        // log says what it was allowed.
        let trapped = |error: wasmtime::Error, store: &Store<Sandbox>, log: &MemoryOutputPipe| {
            let error = anyhow::Error::from(error);
            let error = if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
                let limit = self.limits.wall_time_for(rows).as_secs_f64();
                error.context(format!("it ran past its wall time of {limit:.1} s for {rows} residents"))
            } else if store.data().limits.refused {
                let limit = self.limits.memory_for(rows) >> 20;
                error.context(format!("it was refused memory beyond its {limit} MiB for {rows} residents"))
            } else {
                error
            };
            PluginError::Trapped(with_log(error, log))
        };
        let (notices, memory_bytes) = match &program.pre {
            Pre::Version1_0(pre) => {
                let instance = pre.instantiate(&mut store).map_err(|error| PluginError::Trapped(error.into()))?;
                let view = population_to_wit_1_0(population, &program.info.fields, rows, &names);
                let answer =
                    instance.call_evaluate(&mut store, today.0, view).map_err(|error| trapped(error, &store, &log))?;
                let memory_bytes = store.data().limits.memory_bytes;
                // The instance's memory is given back before the answer is checked.
                drop(store);
                (self.check_output_1_0(&program.info, rows, answer.map_err(PluginError::Reported)?)?, memory_bytes)
            }
            Pre::Version1_1(pre) => {
                let instance = pre.instantiate(&mut store).map_err(|error| PluginError::Trapped(error.into()))?;
                let kinds = Kinds::of(population, &program.info.kinds);
                let texts = kinds.texts();
                let view = population_to_wit(population, &program.info.fields, rows, &names, &kinds, &texts);
                let values: Vec<wit::SettingValue> = values.into_iter().map(value_to_wit).collect();
                let values: Vec<&wit::SettingValue> = values.iter().collect();
                let answer = instance
                    .call_evaluate(&mut store, today.0, &values, view)
                    .map_err(|error| trapped(error, &store, &log))?;
                let memory_bytes = store.data().limits.memory_bytes;
                drop(store);
                (self.check_output(&program.info, rows, answer.map_err(PluginError::Reported)?)?, memory_bytes)
            }
        };
        let log = String::from_utf8_lossy(&log.contents()).into_owned();
        Ok(Evaluation { notices, log, memory_bytes })
    }

    /// The most notices a population of `size` may get.
    fn most_notices(&self, size: u32) -> usize {
        size as usize * self.limits.notices_per_person + 1000
    }

    /// Refuses a 1.1 answer that names no one in the population, an occasion or a reason
    /// it does not have, an empty or inverted window, columns of different lengths, or more
    /// than the limits allow; the columns are kept as they came.
    fn check_output(&self, info: &ProgramInfo, size: u32, answer: wit::Notices) -> Result<Notices, PluginError> {
        let bad = |message: String| Err(PluginError::BadOutput(message));
        let count = answer.person.len();
        let lengths = [
            answer.occasion.len(),
            answer.instance.len(),
            answer.send_on.len(),
            answer.expires_on.len(),
            answer.reason.len(),
        ];
        if lengths.iter().any(|length| *length != count) {
            return bad(format!("notice columns of different lengths: {count} people, {lengths:?} of the others"));
        }
        if count > self.most_notices(size) {
            return bad(format!("{count} notices for {size} people (at most {})", self.most_notices(size)));
        }
        if let Some(person) = answer.person.iter().find(|person| **person >= size) {
            return bad(format!("notice for person {person} in a population of {size}"));
        }
        let occasions = info.occasions.len();
        if let Some(occasion) = answer.occasion.iter().find(|occasion| usize::from(**occasion) >= occasions) {
            return bad(format!("occasion {occasion} of a manifest with {occasions}"));
        }
        let reasons = answer.reasons.len();
        if let Some(reason) = answer.reason.iter().find(|reason| **reason as usize >= reasons) {
            return bad(format!("reason {reason} of a table of {reasons}"));
        }
        if let Some(text) = answer.reasons.iter().find(|text| text.len() > self.limits.reason_bytes) {
            return bad(format!("a reason of {} bytes (at most {})", text.len(), self.limits.reason_bytes));
        }
        if let Some(index) = (0..count).find(|index| answer.send_on[*index] > answer.expires_on[*index]) {
            return bad(format!(
                "occasion {:?} expires before it may be sent",
                info.occasions[usize::from(answer.occasion[index])].key
            ));
        }
        Ok(Notices {
            person: answer.person,
            occasion: answer.occasion,
            instance: answer.instance,
            send_on: answer.send_on,
            expires_on: answer.expires_on,
            reason: answer.reason,
            reasons: answer.reasons,
            occasions: info.occasions.iter().map(|occasion| occasion.key.clone()).collect(),
        })
    }

    /// The same checks for a 1.0 answer, a list of records, which becomes the same compact
    /// columns (instance 0, each distinct reason once) as each notice is checked.
    fn check_output_1_0(
        &self,
        info: &ProgramInfo,
        size: u32,
        answer: Vec<wit_1_0::Notice>,
    ) -> Result<Notices, PluginError> {
        if answer.len() > self.most_notices(size) {
            return Err(PluginError::BadOutput(format!(
                "{} notices for {size} people (at most {})",
                answer.len(),
                self.most_notices(size)
            )));
        }
        let occasions: Vec<String> = info.occasions.iter().map(|occasion| occasion.key.clone()).collect();
        let mut notices = Notices { occasions, ..Notices::default() };
        let mut reason_numbers: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        // A program's notices mostly share one occasion, so the last one found is tried first.
        let mut last_occasion = 0;
        for notice in answer {
            if notice.person >= size {
                return Err(PluginError::BadOutput(format!(
                    "notice for person {} in a population of {size}",
                    notice.person
                )));
            }
            if notices.occasions.get(last_occasion) != Some(&notice.occasion) {
                last_occasion = notices.occasions.iter().position(|key| *key == notice.occasion).ok_or_else(|| {
                    PluginError::BadOutput(format!("occasion {:?} is not in the manifest", notice.occasion))
                })?;
            }
            if notice.send_on > notice.expires_on {
                return Err(PluginError::BadOutput(format!(
                    "occasion {:?} expires before it may be sent",
                    notice.occasion
                )));
            }
            if notice.reason.len() > self.limits.reason_bytes {
                return Err(PluginError::BadOutput(format!(
                    "a reason of {} bytes (at most {})",
                    notice.reason.len(),
                    self.limits.reason_bytes
                )));
            }
            let reason = match reason_numbers.get(&notice.reason) {
                Some(number) => *number,
                None => {
                    let number = notices.reasons.len() as u32;
                    notices.reasons.push(notice.reason.clone());
                    reason_numbers.insert(notice.reason, number);
                    number
                }
            };
            notices.person.push(notice.person);
            notices.occasion.push(u16::try_from(last_occasion).map_err(|_| {
                PluginError::BadOutput(format!("occasion {:?} is past the 65,536th of the manifest", notice.occasion))
            })?);
            notices.instance.push(0);
            notices.send_on.push(notice.send_on);
            notices.expires_on.push(notice.expires_on);
            notices.reason.push(reason);
        }
        Ok(notices)
    }
}

/// The values of the `declared` settings in the manifest's order, from `settings` or else
/// the default, each checked against its type.
fn setting_values(declared: &[Setting], settings: &Settings) -> Result<Vec<SettingValue>, PluginError> {
    declared
        .iter()
        .map(|setting| {
            let value = settings.get(&setting.name).cloned().unwrap_or_else(|| setting.default.clone());
            setting.kind.check(&value).map_err(|problem| {
                PluginError::Invalid(anyhow::anyhow!("setting {} cannot be {value}: {problem}", setting.name))
            })?;
            Ok(value)
        })
        .collect()
}

fn value_to_wit(value: SettingValue) -> wit::SettingValue {
    match value {
        SettingValue::Integer(number) => wit::SettingValue::Integer(number),
        SettingValue::Yen(yen) => wit::SettingValue::Yen(yen),
        SettingValue::Date(day) => wit::SettingValue::Date(day.0),
        SettingValue::MonthDay(month_day) => wit::SettingValue::MonthDay(month_day.code()),
        SettingValue::Text(text) => wit::SettingValue::Text(text),
        SettingValue::Choice(choice) => wit::SettingValue::Choice(choice),
    }
}

fn with_log(error: anyhow::Error, log: &MemoryOutputPipe) -> anyhow::Error {
    let output = String::from_utf8_lossy(&log.contents()).trim().to_string();
    if output.is_empty() { error } else { error.context(format!("plugin output: {output}")) }
}

/// A manifest's parts that 1.0 and 1.1 spell alike, moved out of either version's record
/// into the SDK's types.
macro_rules! common_manifest {
    ($info:ident, $wit:ident) => {
        ProgramInfo {
            code: $info.code,
            name: $info.name,
            division: $info.division,
            contact: $info.contact,
            category: match $info.category {
                $wit::Category::ChildRearing => Category::ChildRearing,
                $wit::Category::Health => Category::Health,
                $wit::Category::Vaccination => Category::Vaccination,
                $wit::Category::Allowance => Category::Allowance,
                $wit::Category::Living => Category::Living,
            },
            schedule: $info.schedule,
            source_url: $info.source_url,
            fields: $info
                .fields
                .into_iter()
                .map(|field| match field {
                    $wit::Field::BirthDay => Field::BirthDay,
                    $wit::Field::Sex => Field::Sex,
                    $wit::Field::Household => Field::Household,
                    $wit::Field::Relationship => Field::Relationship,
                    $wit::Field::Ward => Field::Ward,
                    $wit::Field::ResidentSince => Field::ResidentSince,
                    $wit::Field::Tax => Field::Tax,
                    $wit::Field::Pregnancies => Field::Pregnancies,
                    $wit::Field::Immunizations => Field::Immunizations,
                    $wit::Field::Checkups => Field::Checkups,
                    $wit::Field::Receipts => Field::Receipts,
                })
                .collect(),
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: $info
                .occasions
                .into_iter()
                .map(|occasion| Occasion { key: occasion.key, title: occasion.title, template: occasion.template })
                .collect(),
        }
    };
}

/// A 1.1 manifest, checked.
fn info_from_wit(info: wit::ProgramInfo) -> Result<ProgramInfo, PluginError> {
    let kinds = info.kinds;
    let settings = info.settings.into_iter().map(setting_from_wit).collect();
    checked_manifest(ProgramInfo { kinds, settings, ..common_manifest!(info, wit) })
}

/// A 1.0 manifest (no kinds, no settings), checked.
fn info_from_wit_1_0(info: wit_1_0::ProgramInfo) -> Result<ProgramInfo, PluginError> {
    checked_manifest(common_manifest!(info, wit_1_0))
}

fn setting_from_wit(setting: wit::Setting) -> Setting {
    let day = |days: i64| Day(days.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
    Setting {
        name: setting.name,
        label: setting.label,
        help: setting.help,
        kind: match setting.type_ {
            wit::SettingType::Integer(bounds) => {
                SettingType::Integer { minimum: bounds.minimum, maximum: bounds.maximum }
            }
            wit::SettingType::Yen(bounds) => SettingType::Yen { minimum: bounds.minimum, maximum: bounds.maximum },
            wit::SettingType::Date(bounds) => {
                SettingType::Date { earliest: day(bounds.minimum), latest: day(bounds.maximum) }
            }
            wit::SettingType::MonthDay => SettingType::MonthDay,
            wit::SettingType::Text(max_chars) => SettingType::Text { max_chars },
            wit::SettingType::Choice(choices) => SettingType::Choice(choices),
        },
        default: match setting.default {
            wit::SettingValue::Integer(number) => SettingValue::Integer(number),
            wit::SettingValue::Yen(yen) => SettingValue::Yen(yen),
            wit::SettingValue::Date(days) => SettingValue::Date(Day(days)),
            // An impossible month and day becomes a value no type accepts, so the check
            // of the default below refuses the manifest with the setting's name.
            wit::SettingValue::MonthDay(code) => match oshirase_sdk::MonthDay::from_code(code) {
                Some(month_day) => SettingValue::MonthDay(month_day),
                None => SettingValue::Text(format!("month-day {code}")),
            },
            wit::SettingValue::Text(text) => SettingValue::Text(text),
            wit::SettingValue::Choice(choice) => SettingValue::Choice(choice),
        },
    }
}

/// A name of a setting or a key: lower-case letters, digits and dashes, 1–40 of them.
fn is_key(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 40
        && text.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// Checks a manifest: a code of lower-case letters, digits and dashes, a name, unique
/// occasion keys, settings with unique names whose defaults satisfy their types, and kinds
/// named once each. What the texts and the schedule mean is checked by publishing, which
/// knows messages and schedules; the sandbox does not.
fn checked_manifest(info: ProgramInfo) -> Result<ProgramInfo, PluginError> {
    let bad = |message: String| Err(PluginError::Invalid(anyhow::anyhow!("manifest of {:?}: {message}", info.code)));
    if !is_key(&info.code) {
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
    }
    let mut names = std::collections::HashSet::new();
    for setting in &info.settings {
        if !is_key(&setting.name) {
            return bad(format!("setting {:?}: a name is 1–40 lower-case letters, digits or dashes", setting.name));
        }
        if !names.insert(setting.name.as_str()) {
            return bad(format!("setting {:?} appears twice", setting.name));
        }
        if let Err(problem) = setting.kind.check(&setting.default) {
            return bad(format!("setting {:?}: its default {}: {problem}", setting.name, setting.default));
        }
    }
    let mut kinds = std::collections::HashSet::new();
    for kind in &info.kinds {
        if kind.trim().is_empty() || kind.chars().count() > 40 || !kinds.insert(kind.as_str()) {
            return bad(format!("kind {kind:?}: a kind is named once, in 1–40 characters"));
        }
    }
    Ok(info)
}

/// The text columns of a population as lists of `&str`, which the borrowed bindings take.
struct Names<'a> {
    wards: Vec<&'a str>,
    /// The codes of pregnancies, immunizations, checkups and receipts.
    codes: [Vec<&'a str>; 4],
}

impl<'a> Names<'a> {
    fn of(population: &'a Population) -> Names<'a> {
        let texts = |texts: &'a [String]| texts.iter().map(String::as_str).collect();
        Names {
            wards: texts(&population.wards),
            codes: [&population.pregnancies, &population.immunizations, &population.checkups, &population.receipts]
                .map(|events| texts(&events.codes)),
        }
    }
}

/// The enrollments and attributes of the kinds one program declares. The population holds
/// the kinds of every program of the day; a program that declares all of them (or the one
/// kind read) borrows the columns, one that declares fewer gets a copy of its rows.
struct Kinds<'a> {
    enrollments: std::borrow::Cow<'a, Enrollments>,
    attributes: std::borrow::Cow<'a, Attributes>,
}

impl<'a> Kinds<'a> {
    fn of(population: &'a Population, declared: &[String]) -> Kinds<'a> {
        use std::borrow::Cow;
        let enrollments = &population.enrollments;
        let attributes = &population.attributes;
        let enrollments: Cow<'a, Enrollments> = if enrollments.kinds.iter().all(|kind| declared.contains(kind)) {
            Cow::Borrowed(enrollments)
        } else {
            let wanted: Vec<bool> = enrollments.kinds.iter().map(|kind| declared.contains(kind)).collect();
            let mut kept = Enrollments {
                kinds: enrollments.kinds.clone(),
                levels: enrollments.levels.clone(),
                ..Enrollments::default()
            };
            for row in (0..enrollments.person.len()).filter(|row| wanted[usize::from(enrollments.kind[*row])]) {
                kept.person.push(enrollments.person[row]);
                kept.kind.push(enrollments.kind[row]);
                kept.level.push(enrollments.level[row]);
                kept.start.push(enrollments.start[row]);
                kept.end.push(enrollments.end[row]);
            }
            Cow::Owned(kept)
        };
        let attributes: Cow<'a, Attributes> = if attributes.names.iter().all(|name| declared.contains(name)) {
            Cow::Borrowed(attributes)
        } else {
            let wanted: Vec<bool> = attributes.names.iter().map(|name| declared.contains(name)).collect();
            let mut kept = Attributes {
                names: attributes.names.clone(),
                values: attributes.values.clone(),
                ..Attributes::default()
            };
            for row in (0..attributes.person.len()).filter(|row| wanted[usize::from(attributes.name[*row])]) {
                kept.person.push(attributes.person[row]);
                kept.name.push(attributes.name[row]);
                kept.value.push(attributes.value[row]);
            }
            Cow::Owned(kept)
        };
        Kinds { enrollments, attributes }
    }

    fn texts(&self) -> KindTexts<'_> {
        fn strs(texts: &[String]) -> Vec<&str> {
            texts.iter().map(String::as_str).collect()
        }
        KindTexts {
            kinds: strs(&self.enrollments.kinds),
            levels: strs(&self.enrollments.levels),
            names: strs(&self.attributes.names),
            values: strs(&self.attributes.values),
        }
    }
}

/// The texts of [`Kinds`] as lists of `&str`, which the borrowed bindings take.
struct KindTexts<'a> {
    kinds: Vec<&'a str>,
    levels: Vec<&'a str>,
    names: Vec<&'a str>,
    values: Vec<&'a str>,
}

/// What a plugin declaring `fields` is handed of `population`, in either contract
/// version's record: its first `rows` rows, only the declared columns (the others empty),
/// nothing copied; `$extra` adds the fields only one version has.
macro_rules! population_view {
    ($wit:ident, $population:expr, $fields:expr, $rows:expr, $names:expr $(, $extra:ident: $value:expr)*) => {{
        let (population, fields, rows, names) = ($population, $fields, $rows, $names);
        let wants = |field| fields.contains(&field);
        // Event rows name people by row; the rows past `rows` (due dates registered in the
        // chat) have pregnancies only, handed with every row, so no event needs cutting.
        let events = |field, events: &'a oshirase_sdk::Events, codes: &'a [&'a str]| {
            if wants(field) {
                $wit::Events {
                    person: &events.person,
                    codes,
                    code: &events.code,
                    count: &events.count,
                    start: &events.start,
                    end: &events.end,
                }
            } else {
                $wit::Events { person: &[], codes: &[], code: &[], count: &[], start: &[], end: &[] }
            }
        };
        let [pregnancy_codes, immunization_codes, checkup_codes, receipt_codes] = &names.codes;
        $wit::Population {
            size: rows,
            birth_day: column(wants(Field::BirthDay), &population.birth_day, rows),
            sex: column(wants(Field::Sex), &population.sex, rows),
            household: column(wants(Field::Household), &population.household, rows),
            relationship: column(wants(Field::Relationship), &population.relationship, rows),
            ward: column(wants(Field::Ward), &population.ward, rows),
            wards: if wants(Field::Ward) { &names.wards } else { &[] },
            resident_since: column(wants(Field::ResidentSince), &population.resident_since, rows),
            taxable: column(wants(Field::Tax), &population.taxable, rows),
            income: column(wants(Field::Tax), &population.income, rows),
            pregnancies: events(Field::Pregnancies, &population.pregnancies, pregnancy_codes),
            immunizations: events(Field::Immunizations, &population.immunizations, immunization_codes),
            checkups: events(Field::Checkups, &population.checkups, checkup_codes),
            receipts: events(Field::Receipts, &population.receipts, receipt_codes),
            $($extra: $value,)*
        }
    }};
}

/// The first `rows` of a column the program declared, else nothing.
fn column<T>(wanted: bool, column: &[T], rows: u32) -> &[T] {
    if wanted { &column[..column.len().min(rows as usize)] } else { &[] }
}

/// A 1.1 program's view, with the enrollments and attributes of its kinds.
fn population_to_wit<'a>(
    population: &'a Population,
    fields: &[Field],
    rows: u32,
    names: &'a Names<'a>,
    kinds: &'a Kinds<'a>,
    texts: &'a KindTexts<'a>,
) -> wit::Population<'a> {
    population_view!(wit, population, fields, rows, names,
        enrollments: wit::Enrollments {
            person: &kinds.enrollments.person,
            kinds: &texts.kinds,
            kind: &kinds.enrollments.kind,
            levels: &texts.levels,
            level: &kinds.enrollments.level,
            start: &kinds.enrollments.start,
            end: &kinds.enrollments.end,
        },
        attributes: wit::Attributes {
            person: &kinds.attributes.person,
            names: &texts.names,
            name: &kinds.attributes.name,
            values: &texts.values,
            value: &kinds.attributes.value,
        }
    )
}

/// A 1.0 program's view.
fn population_to_wit_1_0<'a>(
    population: &'a Population,
    fields: &[Field],
    rows: u32,
    names: &'a Names<'a>,
) -> wit_1_0::Population<'a> {
    population_view!(wit_1_0, population, fields, rows, names)
}

#[cfg(test)]
mod tests {
    //! Sandbox tests in pairs: the same plugin within a limit and beyond it.

    use super::*;

    use oshirase_bundled::testing;

    /// The dates that choose the hostile plugin's misbehaviour (see plugins/testing/hostile).
    const SPIN_FOREVER: i32 = 0;
    const EXHAUST_MEMORY: i32 = 1;
    const NAME_A_STRANGER: i32 = 2;
    const UNDECLARED_OCCASION: i32 = 3;
    const REPORT_CLOCK_AND_RANDOMNESS: i32 = 4;
    const READ_A_FILE: i32 = 5;
    const SPIN_BRIEFLY: i32 = 6;
    const ALLOCATE_MODESTLY: i32 = 7;
    const RECURSE_DEEPLY: i32 = 8;
    const RECURSE_FOREVER: i32 = 9;
    const OUTPUT_AT_THE_LIMIT: i32 = 10;
    const OUTPUT_OVER_THE_LIMIT: i32 = 11;
    const TRAP: i32 = 12;
    const PANIC: i32 = 13;
    const READ_THE_ENVIRONMENT: i32 = 14;
    const OPEN_A_SOCKET: i32 = 15;
    const BEHAVE: i32 = 100;

    fn hostile(limits: Limits) -> (PluginEngine, LoadedProgram) {
        let (_, wasm, _) =
            testing::PLUGINS.iter().find(|(name, ..)| *name == "hostile").expect("the hostile test plugin is built");
        let engine = PluginEngine::new(limits, None).unwrap();
        let program = engine.load(wasm, "hostile").unwrap();
        (engine, program)
    }

    fn evaluate(limits: Limits, day: i32) -> Result<Evaluation, PluginError> {
        let (engine, program) = hostile(limits);
        let population = Population { size: 3, birth_day: vec![0, 1, 2], ..Population::default() };
        engine.evaluate(&program, Day(day), &Settings::default(), &population)
    }

    fn short_limits() -> Limits {
        Limits { memory_bytes: 64 << 20, wall_time: Duration::from_millis(300), ..Limits::default() }
    }

    #[test]
    fn a_plugin_that_never_returns_is_stopped_at_the_wall_time_limit() {
        let started = std::time::Instant::now();
        let error = evaluate(short_limits(), SPIN_FOREVER).err().expect("a spinning plugin must be stopped");
        assert!(matches!(error, PluginError::Trapped(_)), "{error}");
        assert!(format!("{error:#}").contains("interrupt"), "{error:#}");
        assert!(started.elapsed() < Duration::from_secs(30), "stopped only after {:?}", started.elapsed());
    }

    /// The epoch advances only while a store lives: a spinning plugin is stopped however
    /// long the engine slept before, and once the calls are over the ticker sleeps again.
    #[test]
    fn the_epoch_ticks_only_while_a_plugin_runs() {
        let (engine, program) = hostile(short_limits());
        let population = Population { size: 3, birth_day: vec![0, 1, 2], ..Population::default() };
        assert_eq!(*engine.ticker.live(), 0, "no store lives after loading");
        std::thread::sleep(Duration::from_millis(50));
        let error = engine.evaluate(&program, Day(SPIN_FOREVER), &Settings::default(), &population).err();
        assert!(matches!(error, Some(PluginError::Trapped(_))), "{error:?}");
        engine.evaluate(&program, Day(BEHAVE), &Settings::default(), &population).unwrap();
        assert_eq!(*engine.ticker.live(), 0, "a store outlived its call");
    }

    /// What a date of the hostile plugin must produce.
    enum Expected {
        /// Notices, the first with a reason starting with this.
        Answer { notices: usize, reason: &'static str },
        /// An error whose text contains this.
        Error(&'static str),
    }

    /// Every limit in pairs: a date that stays within it and one that breaks it. Each
    /// breach fails with a reason that says what happened, and the engine serves the
    /// next evaluation as if nothing had happened.
    #[test]
    fn every_limit_holds_within_and_refuses_beyond() {
        use Expected::{Answer, Error};
        let (engine, program) = hostile(short_limits());
        let table = [
            (SPIN_BRIEFLY, Answer { notices: 1, reason: "counted 1000000" }),
            (
                SPIN_FOREVER,
                Error(
                    "plugin trapped or ran out of limits: it ran past its wall time of 0.3 s for 3 residents: wasm \
                     trap: interrupt",
                ),
            ),
            (ALLOCATE_MODESTLY, Answer { notices: 1, reason: "allocated 16777216 bytes" }),
            (EXHAUST_MEMORY, Error("it was refused memory beyond its 64 MiB for 3 residents")),
            (EXHAUST_MEMORY, Error("memory allocation of 67108864 bytes failed")),
            (RECURSE_DEEPLY, Answer { notices: 1, reason: "recursed 500" }),
            // Rust keeps its stack in linear memory, so the overflow runs out of the memory
            // the component has rather than out of wasmtime's call stack.
            (RECURSE_FOREVER, Error("wasm trap: out of bounds memory access")),
            (OUTPUT_AT_THE_LIMIT, Answer { notices: 1024, reason: "" }),
            (OUTPUT_OVER_THE_LIMIT, Error("plugin output refused: 1025 notices for 3 people (at most 1024)")),
            (BEHAVE, Answer { notices: 1, reason: "ok" }),
            (NAME_A_STRANGER, Error("plugin output refused: notice for person 8 in a population of 3")),
            // The SDK refuses an undeclared occasion before the answer leaves the plugin.
            (
                UNDECLARED_OCCASION,
                Error("plugin reported an error: occasion \"not-in-the-manifest\" is not in the manifest"),
            ),
            (TRAP, Error("wasm `unreachable` instruction executed")),
            (PANIC, Error("panicked at testing/hostile/src/lib.rs")),
            (READ_THE_ENVIRONMENT, Answer { notices: 1, reason: "0 variables [], 0 arguments, HOME \"\"" }),
            (OPEN_A_SOCKET, Error("plugin reported an error: cannot connect")),
        ];
        let mut failures = Vec::new();
        for (day, expected) in table {
            let population = Population { size: 3, birth_day: vec![0, 1, 2], ..Population::default() };
            let outcome = engine.evaluate(&program, Day(day), &Settings::default(), &population);
            let matched = match (&outcome, &expected) {
                (Ok(evaluation), Answer { notices, reason }) => {
                    evaluation.notices.len() == *notices
                        && evaluation.notices.get(0).is_some_and(|notice| notice.reason.starts_with(reason))
                }
                (Err(error), Error(text)) => format!("{error:#}").contains(text),
                _ => false,
            };
            if !matched {
                let got = match outcome {
                    Ok(evaluation) => format!(
                        "{} notices, first reason {:?}",
                        evaluation.notices.len(),
                        evaluation.notices.get(0).map(|notice| notice.reason)
                    ),
                    Err(error) => format!("{error:#}"),
                };
                failures.push(format!("day {day}: got {got}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// The memory limit grows with the population, in a pair: an allocation refused on
    /// three people is allowed on enough more of them, and the same allocation on the
    /// three is refused again after (the allowance is the call's, not the engine's).
    #[test]
    fn the_memory_limit_grows_with_the_population() {
        // A base too small for ALLOCATE_MODESTLY's 16 MiB, and 4 KiB a resident: 4,096
        // residents bring another 16 MiB.
        let limits = Limits { memory_bytes: 8 << 20, memory_bytes_per_resident: 4 << 10, ..short_limits() };
        let (engine, program) = hostile(limits);
        let people = |size: u32| Population { size, birth_day: vec![0; size as usize], ..Population::default() };
        let on = |size| engine.evaluate(&program, Day(ALLOCATE_MODESTLY), &Settings::default(), &people(size));
        let refused = on(3).err().map(|error| format!("{error:#}")).unwrap_or_default();
        assert!(refused.contains("it was refused memory beyond its 8 MiB for 3 residents"), "{refused}");
        assert!(refused.contains("memory allocation of 16777216 bytes failed"), "{refused}");
        let allowed = on(4096).unwrap();
        assert_eq!(allowed.notices.get(0).map(|notice| notice.reason), Some("allocated 16777216 bytes"));
        assert!(allowed.memory_bytes > 16 << 20 && allowed.memory_bytes <= limits.memory_for(4096));
        assert!(on(3).is_err(), "the larger population's allowance outlived its call");
    }

    /// The allowances and their ceilings, as the defaults give them: a town gets little
    /// more than the base, a city of two million what Python needs, and no population more
    /// than the ceiling.
    #[test]
    fn the_limits_grow_with_the_population_up_to_a_ceiling() {
        let limits = Limits::default();
        assert_eq!(limits.memory_for(0), 128 << 20);
        assert_eq!(limits.wall_time_for(0), Duration::from_secs(2));
        assert_eq!(limits.memory_for(5_000), (128 << 20) + 5_000 * 1024);
        assert_eq!(limits.wall_time_for(5_000), Duration::from_millis(2_100));
        assert_eq!(limits.memory_for(2_000_000), (128 << 20) + 2_000_000 * 1024);
        assert_eq!(limits.wall_time_for(2_000_000), Duration::from_secs(42));
        assert_eq!(limits.memory_for(u32::MAX), 3 << 30);
        assert_eq!(limits.wall_time_for(u32::MAX), Duration::from_secs(120));
    }

    #[test]
    fn the_clock_and_randomness_are_pinned_and_files_are_out_of_reach() {
        let first = evaluate(short_limits(), REPORT_CLOCK_AND_RANDOMNESS).unwrap().notices;
        let second = evaluate(short_limits(), REPORT_CLOCK_AND_RANDOMNESS).unwrap().notices;
        assert_eq!(first, second, "two runs on the same input must agree");
        // Day 4 at midnight in Japan is 4 × 86,400 − 9 × 3,600 seconds after the epoch.
        let reason = first.get(0).map(|notice| notice.reason).unwrap_or_default();
        assert!(reason.starts_with("clock 313200 "), "{reason}");
        let error = evaluate(short_limits(), READ_A_FILE).err().expect("no file may be readable");
        assert!(matches!(error, PluginError::Reported(ref message) if message.starts_with("cannot read")), "{error}");
    }

    /// What is not a program component of a compatible version is refused at load, with a
    /// message that says which it is; a real plugin loads and reports its version.
    #[test]
    fn only_components_of_a_compatible_version_load() {
        let engine = PluginEngine::new(short_limits(), None).unwrap();
        let plugin = |name: &str| testing::PLUGINS.iter().find(|(found, ..)| *found == name).unwrap().1.to_vec();
        assert_eq!(engine.load(&plugin("hostile"), "hostile").unwrap().wit_version, WIT_VERSION);
        let table: [(&str, Vec<u8>, &str); 5] = [
            (
                "random bytes",
                vec![0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 9],
                "not a usable program component: 9 bytes that are not WebAssembly (no \\0asm header)",
            ),
            (
                "a core module",
                b"\0asm\x01\0\0\0".to_vec(),
                "not a usable program component: this is a core WebAssembly module, not a component: build the plugin \
                 with --target wasm32-wasip2",
            ),
            (
                "another world version",
                plugin("future-world"),
                "not a usable program component: the component was built for oshirase:program@2.0.0, but this host \
                 implements oshirase:program@1.1.0",
            ),
            (
                "a truncated component",
                b"\0asm\x0d\0\x01\0\x07".to_vec(),
                "not a usable program component: not a valid component",
            ),
            (
                "an import the host does not provide",
                plugin("stranger-import"),
                "not a usable program component: cannot link the component: component imports instance \
                 `oshirase:stranger/backdoor`",
            ),
        ];
        for (what, wasm, expected) in table {
            let error = engine.load(&wasm, what).err().unwrap_or_else(|| panic!("{what} loaded"));
            assert!(format!("{error:#}").starts_with(expected), "{what}: {error:#}");
        }
    }

    /// Components built for 1.0 before 1.1 existed still load and run: their manifests read
    /// without kinds or settings, their list of notices becomes the same columns (instance
    /// 0), and they give the notices their own example cases of the time expect.
    #[test]
    fn components_built_for_1_0_still_load_and_pass_their_cases() {
        let engine = PluginEngine::new(Limits::default(), None).unwrap();
        for (name, wasm, yaml) in testing::CONTRACT_1_0 {
            let program = engine.load(wasm, name).unwrap();
            assert_eq!(program.wit_version, "1.0.0", "{name}");
            assert!(program.info.kinds.is_empty() && program.info.settings.is_empty(), "{name}");
            let cases = oshirase_sdk::cases::parse(yaml).unwrap();
            let report = oshirase_sdk::cases::check(&cases, &program.info, |today, settings, population| {
                engine
                    .evaluate(&program, today, settings, population)
                    .map(|evaluation| evaluation.notices.to_vec())
                    .map_err(|error| format!("{error:#}"))
            });
            assert!(report.passed() && report.cases > 5, "{name}: {report}");
        }
    }

    /// A setting's value reaches the plugin when it fits the declared type, and a value
    /// that does not is refused before the plugin runs.
    #[test]
    fn settings_reach_the_plugin_only_when_they_fit_their_type() {
        let (_, wasm, _) = oshirase_bundled::PROGRAMS.iter().find(|(name, ..)| *name == "screening-colon").unwrap();
        let engine = PluginEngine::new(Limits::default(), None).unwrap();
        let program = engine.load(wasm, "screening-colon").unwrap();
        let today = Day::parse_iso("2026-05-20").unwrap();
        let over_40 =
            Population { size: 1, birth_day: vec![Day::parse_iso("1970-01-01").unwrap().0], ..Population::default() };
        let with_opening = |value: SettingValue| Settings::defaults(&program.info.settings).with("season-opens", value);
        let month_day = |month, day| SettingValue::MonthDay(oshirase_sdk::MonthDay { month, day });
        let told = engine.evaluate(&program, today, &with_opening(month_day(5, 16)), &over_40).unwrap().notices;
        assert_eq!(
            told.iter().map(|notice| (notice.instance, notice.send_on.to_string())).collect::<Vec<_>>(),
            vec![(2026, "2026-05-16".to_string())]
        );
        let later = engine.evaluate(&program, today, &with_opening(month_day(6, 1)), &over_40).unwrap().notices;
        assert!(later.is_empty(), "the season opens on June 1 under this setting");
        let refused =
            engine.evaluate(&program, today, &with_opening(SettingValue::Integer(601)), &over_40).err().unwrap();
        assert_eq!(
            format!("{refused:#}"),
            "not a usable program component: setting season-opens cannot be 601: a value of type integer for a setting of type month-day"
        );
    }

    fn colon_screening_definition() -> Definition {
        Definition {
            program: DefinedProgram {
                code: "screening-colon-chuo".into(),
                name: "中央区の大腸がん検診".into(),
                division: "中央保健福祉センター".into(),
                contact: "043-221-2581".into(),
                category: "Health".into(),
                source_url: "https://www.city.chiba.jp/".into(),
            },
            occasions: vec![DefinedOccasion {
                key: "notice".into(),
                title: "大腸がん検診".into(),
                template: "【{program}】{deadline}まで".into(),
            }],
            settings: [("ward", "中央区"), ("season-opens", "06-01")]
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .into(),
        }
    }

    /// A definition obeyed: the template component loads as the program its definition
    /// names, with that wording, and the defaults it sets are what the program runs with.
    #[test]
    fn a_component_with_a_definition_is_the_program_it_defines() {
        let (_, template, _) = oshirase_bundled::PROGRAMS.iter().find(|(name, ..)| *name == "conditions").unwrap();
        let engine = PluginEngine::new(Limits::default(), None).unwrap();
        let wasm = with_definition(template, &colon_screening_definition()).unwrap();
        let program = engine.load(&wasm, "defined").unwrap();
        let info = &program.info;
        assert_eq!(
            (info.code.as_str(), info.name.as_str(), info.category),
            ("screening-colon-chuo", "中央区の大腸がん検診", Category::Health)
        );
        assert_eq!(info.occasions[0].template, "【{program}】{deadline}まで");
        let birth = Day::parse_iso("1970-01-01").unwrap().0;
        let two_wards = Population {
            size: 2,
            birth_day: vec![birth, birth],
            sex: vec![oshirase_sdk::Sex::Female.code(); 2],
            ward: vec![0, 1],
            wards: vec!["中央区".into(), "花見川区".into()],
            ..Population::default()
        };
        let today = Day::parse_iso("2026-06-01").unwrap();
        let notices =
            engine.evaluate(&program, today, &Settings::defaults(&info.settings), &two_wards).unwrap().notices;
        let told: Vec<(u32, String)> =
            notices.iter().map(|notice| (notice.person, notice.send_on.to_string())).collect();
        assert_eq!(told, vec![(0, "2026-06-01".to_string())], "only 中央区, from the season the definition sets");
        // The template itself, without a definition, is a program of its own name.
        assert_eq!(engine.load(template, "template").unwrap().info.code, "conditions");
    }

    /// A definition violated: a setting or an occasion the component does not declare, a
    /// default its type refuses, a category that does not exist, or a second definition
    /// make the component invalid, each named.
    #[test]
    fn a_definition_the_component_cannot_honour_is_refused() {
        let (_, template, _) = oshirase_bundled::PROGRAMS.iter().find(|(name, ..)| *name == "conditions").unwrap();
        let engine = PluginEngine::new(Limits::default(), None).unwrap();
        let refused = |change: fn(&mut Definition)| {
            let mut definition = colon_screening_definition();
            change(&mut definition);
            let wasm = with_definition(template, &definition).unwrap();
            format!("{:#}", engine.load(&wasm, "refused").err().expect("refused"))
        };
        type Change = fn(&mut Definition);
        let table: [(Change, &str); 5] = [
            (
                |definition| _ = definition.settings.insert("income-limit".into(), "1".into()),
                "the component has no setting \"income-limit\"",
            ),
            (
                |definition| _ = definition.settings.insert("age-from".into(), "forty".into()),
                "setting age-from: \"forty\" is not a whole number",
            ),
            (|definition| definition.occasions[0].key = "fy2026".into(), "the component has no occasion \"fy2026\""),
            (|definition| definition.program.category = "Sports".into(), "there is no category \"Sports\""),
            (|definition| definition.program.code = "中央".into(), "the code must be 1–40 lower-case letters"),
        ];
        for (change, expected) in table {
            let message = refused(change);
            assert!(message.contains(expected), "{expected}: {message}");
        }
        let defined = with_definition(template, &colon_screening_definition()).unwrap();
        let twice = with_definition(&defined, &colon_screening_definition()).err().unwrap();
        assert!(format!("{twice:#}").contains("made from a template already"), "{twice:#}");
    }

    #[test]
    fn the_host_implements_the_version_the_wit_file_declares() {
        let wit = include_str!("../../../wit/program.wit");
        assert!(wit.contains(&format!("package oshirase:program@{WIT_VERSION};")));
        assert!(
            wit_compatible("1.0.0")
                && wit_compatible("1.1.0")
                && !wit_compatible("1.2.0")
                && !wit_compatible("2.0.0")
                && !wit_compatible("one")
        );
    }

    /// A manifest is checked field by field; each fault names the field.
    #[test]
    fn a_manifest_with_any_fault_is_refused() {
        let valid = || wit::ProgramInfo {
            code: "vaccine-mr".into(),
            name: "麻しん風しん".into(),
            division: "健康支援課".into(),
            contact: "043-000-0000".into(),
            category: wit::Category::Vaccination,
            schedule: "0 0 9 * * *".into(),
            source_url: String::new(),
            fields: vec![wit::Field::BirthDay],
            kinds: vec!["国保".into()],
            settings: vec![wit::Setting {
                name: "season-opens".into(),
                label: "初日".into(),
                help: String::new(),
                type_: wit::SettingType::MonthDay,
                default: wit::SettingValue::MonthDay(516),
            }],
            occasions: vec![wit::Occasion {
                key: "phase-1".into(),
                title: "1期".into(),
                template: "【{program}】{deadline}まで。{contact}".into(),
            }],
        };
        assert!(info_from_wit(valid()).is_ok());
        let occasion = |key: &str, template: String| wit::Occasion { key: key.into(), title: String::new(), template };
        type Spoil = Box<dyn Fn(&mut wit::ProgramInfo)>;
        let table: [(&str, Spoil); 6] = [
            (
                "the code must be 1–40 lower-case letters, digits or dashes",
                Box::new(|info| info.code = "Vaccine MR".into()),
            ),
            ("no occasions", Box::new(|info| info.occasions.clear())),
            (
                "occasion \"phase-1\" appears twice",
                Box::new(move |info| info.occasions.push(occasion("phase-1", String::new()))),
            ),
            (
                "setting \"season-opens\": its default month-day 1340",
                Box::new(|info| info.settings[0].default = wit::SettingValue::MonthDay(1340)),
            ),
            (
                "setting \"season-opens\": its default 30: a value of type integer for a setting of type month-day",
                Box::new(|info| info.settings[0].default = wit::SettingValue::Integer(30)),
            ),
            ("kind \"国保\": a kind is named once", Box::new(|info| info.kinds.push("国保".into()))),
        ];
        for (expected, spoil) in table {
            let mut info = valid();
            spoil(&mut info);
            let error = info_from_wit(info).err().map(|error| error.to_string()).unwrap_or_default();
            assert!(error.contains(expected), "expected {expected:?}, got {error:?}");
        }
    }
}

//! Runs the active programs against the active snapshot for one date and plans the notices
//! they return. Planning is idempotent: the key (program, resident, occasion) is unique.
//!
//! A day (`run_day`, for `oshirase run` and the demo) reads the snapshot once, on a read
//! connection, with the columns of every program, and hands each program its own columns
//! of it without a copy; the programs are evaluated on `EVALUATION_THREADS` threads (each
//! with its own store) while the calling thread stores, in a short write each, the notices
//! of those that finished. One program (`run_program_beside_writes`, the scheduler's)
//! reads only its own columns, on a read connection between two short writes.

use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use anyhow::{Context, Result};
use oshirase_sdk::{Day, Field, Settings};
use rusqlite::{Connection, OptionalExtension};

use crate::database::Database;
use crate::outbox::REACH_FIELDS;
use crate::registry::{ActiveVersion, Plugins, active_versions};
use crate::snapshot::{LoadedPopulation, ResidentIds};
use crate::time::now_text;
use oshirase_sandbox::{Evaluation, LoadedProgram, NoticeRef, PluginError};

/// How many programs of a day are evaluated at once: the two cores of the machine we size
/// for. Each evaluation holds its own copy of its columns in the plugin's memory, so more
/// threads would cost memory as much as they save time.
pub const EVALUATION_THREADS: usize = 2;

/// A notice with the resident it is about, as a dry run reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlannedNotice {
    pub resident_id: String,
    pub occasion: String,
    /// Which time of a recurring occasion (the 年度); 0 for one that happens once.
    pub instance: i32,
    pub send_on: String,
    pub expires_on: String,
    pub reason: String,
}

/// What one program's run did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProgramRun {
    pub program: String,
    pub notices: usize,
    pub new_notices: usize,
    /// Notices not given because the register marks the resident's birth day as not exact
    /// (生年月日_不詳) and the program reads birth days.
    pub withheld_inexact_birth_day: usize,
    /// Why the run failed; `None` when it succeeded.
    pub error: Option<String>,
}

/// Evaluates one program with its current settings and names the residents its notices
/// are about. Sends nothing, stores nothing.
pub fn dry_run(
    connection: &Connection,
    plugins: &Plugins,
    version: &ActiveVersion,
    today: Day,
) -> Result<Vec<PlannedNotice>> {
    dry_run_with(connection, plugins, version, today, None)
}

/// A dry run with `settings` instead of the stored ones (`None`): what a change of the
/// settings would do, shown to staff before they save it.
pub fn dry_run_with(
    connection: &Connection,
    plugins: &Plugins,
    version: &ActiveVersion,
    today: Day,
    settings: Option<&Settings>,
) -> Result<Vec<PlannedNotice>> {
    let (loaded, finished) = evaluate_alone(connection, plugins, version, today, settings, &[])?;
    planned_notices(&loaded, &finished)
}

/// A dry run of a component that is not published, with `settings`, on the live snapshot:
/// as a division tries what it built before publishing it, or staff try conditions.
/// Stores nothing.
pub fn dry_run_unpublished(
    connection: &Connection,
    plugins: &Plugins,
    program: &LoadedProgram,
    today: Day,
    settings: &Settings,
) -> Result<Vec<PlannedNotice>> {
    let loaded = load_population(connection, &program.info.fields, &program.info.kinds)?;
    let finished = evaluate_loaded(plugins, program, &loaded, today, settings)
        .with_context(|| format!("program {} failed", program.info.code))?;
    planned_notices(&loaded, &finished)
}

/// An evaluation's notices, each naming its resident, as a dry run shows them; the
/// notices withheld on an inexact birth day are left out, as a run leaves them.
fn planned_notices(loaded: &LoadedPopulation, finished: &Finished) -> Result<Vec<PlannedNotice>> {
    finished
        .evaluation
        .notices
        .iter()
        .filter(|notice| !finished.withheld(loaded, notice.person))
        .map(|notice| {
            Ok(PlannedNotice {
                resident_id: resident_id(&loaded.resident_ids, notice.person)?.to_owned(),
                occasion: notice.occasion.to_owned(),
                instance: notice.instance,
                send_on: notice.send_on.to_string(),
                expires_on: notice.expires_on.to_string(),
                reason: notice.reason.to_owned(),
            })
        })
        .collect()
}

/// The notices `program` gives on `today` to the snapshot's residents in `loaded`, handed
/// to `each`, the withheld left out as a run leaves them: who was eligible on a day, which
/// `uptake` asks of an earlier export. Stores nothing.
pub(crate) fn eligible_on(
    plugins: &Plugins,
    program: &LoadedProgram,
    loaded: &LoadedPopulation,
    today: Day,
    settings: &Settings,
    mut each: impl FnMut(NoticeRef<'_>),
) -> Result<()> {
    let finished = evaluate_loaded(plugins, program, loaded, today, settings)
        .with_context(|| format!("program {} failed", program.info.code))?;
    for notice in finished.evaluation.notices.iter() {
        if notice.person < loaded.snapshot_rows && !finished.withheld(loaded, notice.person) {
            each(notice);
        }
    }
    Ok(())
}

/// One evaluation with the settings it ran with (as JSON, for the run's record).
struct Finished {
    evaluation: Evaluation,
    settings: String,
    /// The program reads birth days, so its notices to residents whose birth day is not
    /// exact are withheld: the law ties its windows to an age the register does not know.
    reads_birth_days: bool,
}

impl Finished {
    /// Whether this program's notice to `person` is withheld.
    fn withheld(&self, loaded: &LoadedPopulation, person: u32) -> bool {
        self.reads_birth_days && loaded.birth_day_inexact(person)
    }
}

/// A population read for a run, with which of its rows have someone to be told.
#[derive(Clone, Copy)]
struct Read<'a> {
    loaded: &'a LoadedPopulation,
    reachable: &'a [bool],
}

/// `outbox::reachable_rows` for a population read with `REACH_FIELDS`.
fn reachable_rows(connection: &Connection, loaded: &LoadedPopulation, today: Day) -> Result<Vec<bool>> {
    let LoadedPopulation { resident_ids, population, snapshot_rows, .. } = loaded;
    crate::outbox::reachable_rows(connection, resident_ids, population, *snapshot_rows, today)
}

/// One program on its own read of the snapshot (with `also` read beside its own fields),
/// with `settings` or else the stored ones.
fn evaluate_alone(
    connection: &Connection,
    plugins: &Plugins,
    version: &ActiveVersion,
    today: Day,
    settings: Option<&Settings>,
    also: &[Field],
) -> Result<(LoadedPopulation, Finished)> {
    let program = plugins.get(connection, version)?;
    let settings = match settings {
        Some(settings) => settings.clone(),
        None => crate::settings::values(connection, &version.program, &program.info.settings)?,
    };
    let mut fields = program.info.fields.clone();
    fields.extend(also.iter().filter(|field| !program.info.fields.contains(field)));
    let loaded = load_population(connection, &fields, &program.info.kinds)?;
    let finished = evaluate_loaded(plugins, &program, &loaded, today, &settings)
        .with_context(|| format!("program {} failed", version.program))?;
    Ok((loaded, finished))
}

/// One program on a population read for it or for every program of the day.
fn evaluate_loaded(
    plugins: &Plugins,
    program: &LoadedProgram,
    loaded: &LoadedPopulation,
    today: Day,
    settings: &Settings,
) -> Result<Finished, PluginError> {
    let rows = loaded.rows_for(&program.info.fields);
    let evaluation = plugins.engine.evaluate_rows(program, today, settings, &loaded.population, rows)?;
    Ok(Finished {
        evaluation,
        settings: crate::settings::to_json(settings),
        reads_birth_days: program.info.fields.contains(&Field::BirthDay),
    })
}

fn resident_id(resident_ids: &ResidentIds, person: u32) -> Result<&str> {
    resident_ids.get(person).with_context(|| format!("a notice names row {person}, which the population does not have"))
}

/// Runs every active program for `today` and stores their notices; see `run_programs`.
pub async fn run_day(database: &Database, plugins: Arc<Plugins>, today: Day) -> Result<Vec<ProgramRun>> {
    run_programs(database, plugins, None, today).await
}

/// Runs the active version of each program named in `programs` (of every active program
/// when `None`; a name without an active version is skipped) for `today` and stores their
/// notices, as the scheduler does with the programs due at one moment. A failing program
/// is recorded as failed and the others carry on. The snapshot is read once for all of
/// them, on a read connection; the writer is taken only for short writes (the runs
/// recorded, then each program's notices as it finishes), so the webhook, sign-ins and the
/// console never wait for a day's evaluation.
pub async fn run_programs(
    database: &Database,
    plugins: Arc<Plugins>,
    programs: Option<Vec<String>>,
    today: Day,
) -> Result<Vec<ProgramRun>> {
    let database = database.clone();
    tokio::task::spawn_blocking(move || run_programs_blocking(&database, &plugins, programs.as_deref(), today))
        .await
        .context("the day's run panicked")?
}

/// `run_programs` on a blocking thread.
fn run_programs_blocking(
    database: &Database,
    plugins: &Plugins,
    programs: Option<&[String]>,
    today: Day,
) -> Result<Vec<ProgramRun>> {
    let (versions, run_ids) = database.write_blocking(|connection| {
        let snapshot_id = active_snapshot(connection)?;
        let mut versions = active_versions(connection)?;
        versions.retain(|version| programs.is_none_or(|programs| programs.contains(&version.program)));
        let run_ids = versions
            .iter()
            .map(|version| start_run(connection, version, snapshot_id, today))
            .collect::<Result<Vec<_>>>()?;
        Ok((versions, run_ids))
    })?;
    let failed = |run_id: i64, version: &ActiveVersion, error: &anyhow::Error| {
        database.write_blocking(|connection| fail(connection, run_id, version, error))
    };
    let outcomes = database.read_blocking(|connection| {
        // Each run's outcome, in the order of `versions`; the programs that could be loaded
        // wait in `runs` for their evaluation.
        let mut outcomes: Vec<Option<ProgramRun>> = Vec::with_capacity(versions.len());
        let mut runs: Vec<Run<'_>> = Vec::with_capacity(versions.len());
        for (index, (version, run_id)) in versions.iter().zip(run_ids).enumerate() {
            let loaded = plugins.get(connection, version).and_then(|program| {
                let settings = crate::settings::values(connection, &version.program, &program.info.settings)?;
                Ok((program, settings))
            });
            match loaded {
                Ok((program, settings)) => {
                    runs.push(Run { index, run_id, version, program, settings });
                    outcomes.push(None);
                }
                Err(error) => outcomes.push(Some(failed(run_id, version, &error)?)),
            }
        }
        // The programs' fields, and those that tell whom a notice can reach.
        let mut fields: Vec<Field> = runs.iter().flat_map(|run| run.program.info.fields.iter().copied()).collect();
        fields.extend(REACH_FIELDS);
        fields.sort_by_key(|field| *field as u8);
        fields.dedup();
        let mut kinds: Vec<String> = runs.iter().flat_map(|run| run.program.info.kinds.iter().cloned()).collect();
        kinds.sort();
        kinds.dedup();
        match load_population(connection, &fields, &kinds) {
            Ok(loaded) => {
                let reachable = reachable_rows(connection, &loaded, today)?;
                let read = Read { loaded: &loaded, reachable: &reachable };
                evaluate_and_plan(database, connection, plugins, read, &runs, &mut outcomes, today)?
            }
            // Without the population no program can run: each is recorded as failed by it.
            Err(error) => {
                for run in &runs {
                    outcomes[run.index] = Some(failed(run.run_id, run.version, &error)?);
                }
            }
        }
        outcomes
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .context("a program of the day was neither evaluated nor failed")
    });
    // The population is freed now; in a long-running server it would otherwise stay
    // counted until the next day's run.
    return_freed_memory();
    outcomes
}

/// A program of the day whose run is recorded and whose plugin is loaded.
struct Run<'a> {
    /// Its place among the day's programs.
    index: usize,
    run_id: i64,
    version: &'a ActiveVersion,
    program: Arc<LoadedProgram>,
    /// The settings it runs with, read when the day's run began.
    settings: Settings,
}

/// Evaluates `runs` on `EVALUATION_THREADS` threads, each taking the next program from
/// `Queue` as it finishes one, and stores each program's notices from this thread, in a
/// write of its own, as soon as it is done. A finished evaluation is handed over only when
/// this thread takes it, so the notices held at once are those of the programs being
/// evaluated and the one being stored.
fn evaluate_and_plan(
    database: &Database,
    reader: &Connection,
    plugins: &Plugins,
    read: Read<'_>,
    runs: &[Run<'_>],
    outcomes: &mut [Option<ProgramRun>],
    today: Day,
) -> Result<()> {
    let queue = Queue::new(reader, runs)?;
    let (sender, receiver) = sync_channel::<(&Run<'_>, Result<Finished, PluginError>)>(0);
    std::thread::scope(|scope| {
        for _ in 0..EVALUATION_THREADS.min(runs.len()) {
            let (sender, queue) = (sender.clone(), &queue);
            scope.spawn(move || {
                while let Some((run, taken)) = queue.take() {
                    let evaluation = evaluate_loaded(plugins, &run.program, read.loaded, today, &run.settings);
                    return_freed_memory();
                    // The receiver is gone only when storing failed: nothing more is wanted.
                    let handed_over = sender.send((run, evaluation)).is_ok();
                    // A heavy program's place is given back once its notices are handed over,
                    // so that the next heavy one never runs while they wait to be stored.
                    drop(taken);
                    if !handed_over {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for (run, evaluation) in receiver {
            let evaluation = evaluation.with_context(|| format!("program {} failed", run.version.program));
            let stored =
                database.write_blocking(|connection| record(connection, run.run_id, run.version, read, evaluation))?;
            outcomes[run.index] = Some(stored);
            return_freed_memory();
        }
        Ok(())
    })
}

/// Gives the memory freed by an evaluation or by storing its notices back to the system.
/// A screening's answer is half a million small allocations, copied out on one thread and
/// freed on another; glibc would keep their pages in its arenas, and the day's peak would
/// count them again under the next program's (some 100 MiB on a city of a million).
fn return_freed_memory() {
    // SAFETY: malloc_trim only hands back pages of chunks already free; no live allocation
    // is touched.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A program notifying this many people or more is heavy: its answer, as the plugin builds
/// it and as it is copied out, takes some 200 bytes a notice in each, so two such programs
/// at once would hold several hundred megabytes of a city's screenings.
const HEAVY_NOTICES: i64 = 50_000;

/// The programs of a day still to evaluate. A heavy program (one whose last successful run
/// had `HEAVY_NOTICES` or more, or that never ran) is evaluated only while no other heavy
/// one is, so that the memory of the day is that of one heavy program; a thread waits for
/// one only when nothing light is left.
struct Queue<'r, 'v> {
    state: Mutex<QueueState<'r, 'v>>,
    heavy_done: Condvar,
}

struct QueueState<'r, 'v> {
    heavy: Vec<&'r Run<'v>>,
    light: Vec<&'r Run<'v>>,
    heavy_running: bool,
}

impl<'r, 'v> Queue<'r, 'v> {
    fn new(connection: &Connection, runs: &'r [Run<'v>]) -> Result<Queue<'r, 'v>> {
        let mut last_notices = connection.prepare_cached(
            "SELECT notices FROM runs WHERE program = ?1 AND outcome = 'succeeded' ORDER BY id DESC LIMIT 1",
        )?;
        let (mut heavy, mut light) = (Vec::new(), Vec::new());
        for run in runs {
            let notices: Option<i64> = last_notices.query_row([&run.version.program], |row| row.get(0)).optional()?;
            if notices.is_none_or(|notices| notices >= HEAVY_NOTICES) { heavy.push(run) } else { light.push(run) }
        }
        // Taken from the end, in the day's order.
        heavy.reverse();
        light.reverse();
        Ok(Queue { state: Mutex::new(QueueState { heavy, light, heavy_running: false }), heavy_done: Condvar::new() })
    }

    /// The next program to evaluate, with what gives its place back when dropped; `None`
    /// when all are taken.
    fn take(&self) -> Option<(&'r Run<'v>, Taken<'_, 'r, 'v>)> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if !state.heavy_running
                && let Some(run) = state.heavy.pop()
            {
                state.heavy_running = true;
                return Some((run, Taken { queue: self, heavy: true }));
            }
            if let Some(run) = state.light.pop() {
                return Some((run, Taken { queue: self, heavy: false }));
            }
            if state.heavy.is_empty() {
                return None;
            }
            state = self.heavy_done.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A program taken from the `Queue`; dropped when its evaluation has ended, however it
/// ended, so that a panicking evaluation cannot keep the other thread waiting.
struct Taken<'q, 'r, 'v> {
    queue: &'q Queue<'r, 'v>,
    heavy: bool,
}

impl Drop for Taken<'_, '_, '_> {
    fn drop(&mut self) {
        if self.heavy {
            self.queue.state.lock().unwrap_or_else(PoisonError::into_inner).heavy_running = false;
            self.queue.heavy_done.notify_all();
        }
    }
}

fn active_snapshot(connection: &Connection) -> Result<i64> {
    crate::snapshot::active(connection)?.context("no active snapshot: import resident records first")
}

/// Records that `version` starts running for `today`; returns the run's id.
fn start_run(connection: &Connection, version: &ActiveVersion, snapshot_id: i64, today: Day) -> Result<i64> {
    connection.execute(
        "INSERT INTO runs (program, version_id, snapshot_id, run_on, started_at, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
        (&version.program, version.version_id, snapshot_id, today.0, now_text()),
    )?;
    Ok(connection.last_insert_rowid())
}

/// Runs one program's `version` for `today`, as a reserved send does: the
/// run recorded, then the evaluation (the snapshot's read of the program's own columns
/// and the plugin's call, seconds for a large city) on a read connection, then the
/// notices stored. A failure of the plugin is recorded in the run and reported in the
/// result, not as an error; an error means the database failed. Each write is short, so the webhook, sign-ins and
/// the console never wait for an evaluation.
pub async fn run_program_beside_writes(
    database: &Database,
    plugins: Arc<Plugins>,
    version: ActiveVersion,
    today: Day,
) -> Result<ProgramRun> {
    let started = version.clone();
    let run_id =
        database.write(move |connection| start_run(connection, &started, active_snapshot(connection)?, today)).await?;
    let evaluating = version.clone();
    let evaluated = database
        .read(move |connection| {
            let read = evaluate_alone(connection, &plugins, &evaluating, today, None, &REACH_FIELDS);
            Ok(read.and_then(|(loaded, finished)| {
                let reachable = reachable_rows(connection, &loaded, today)?;
                Ok((loaded, reachable, finished))
            }))
        })
        .await?;
    database
        .write(move |connection| match evaluated {
            Ok((loaded, reachable, finished)) => {
                record(connection, run_id, &version, Read { loaded: &loaded, reachable: &reachable }, Ok(finished))
            }
            Err(error) => fail(connection, run_id, &version, &error),
        })
        .await
}

/// Stores a finished evaluation's notices, or records why it failed.
fn record(
    connection: &mut Connection,
    run_id: i64,
    version: &ActiveVersion,
    read: Read<'_>,
    finished: Result<Finished>,
) -> Result<ProgramRun> {
    let finished = match finished {
        Ok(finished) => finished,
        Err(error) => return fail(connection, run_id, version, &error),
    };
    let Planned { new_notices, withheld_inexact_birth_day } =
        plan(connection, run_id, &version.program, read, &finished)?;
    let notices = finished.evaluation.notices.len();
    tracing::info!(program = %version.program, notices, new_notices, withheld_inexact_birth_day, "program evaluated");
    Ok(ProgramRun { program: version.program.clone(), notices, new_notices, withheld_inexact_birth_day, error: None })
}

/// Records a run as failed with `error`.
fn fail(connection: &Connection, run_id: i64, version: &ActiveVersion, error: &anyhow::Error) -> Result<ProgramRun> {
    let message = format!("{error:#}");
    tracing::warn!(program = %version.program, %message, "program failed");
    connection.execute(
        "UPDATE runs SET outcome = 'failed', finished_at = ?2, message = ?3 WHERE id = ?1",
        (run_id, now_text(), &message),
    )?;
    Ok(ProgramRun {
        program: version.program.clone(),
        notices: 0,
        new_notices: 0,
        withheld_inexact_birth_day: 0,
        error: Some(message),
    })
}

/// What `plan` stored.
struct Planned {
    new_notices: usize,
    withheld_inexact_birth_day: usize,
}

/// Stores the notices of one successful run that can reach someone (`outbox::reachable_rows`)
/// and are not withheld (`Finished::withheld`) in one transaction; returns how many were
/// new and how many were withheld. The others are derived again by each
/// run, so a resident who registers is planned for at the next one.
///
/// Most notices of a day were planned on an earlier day already. Rather than have SQLite
/// look each one up in the unique index, the program's stored keys are read in the index's
/// order beside the notices sorted the same way, and only the missing ones are inserted, in
/// key order (which also fills the index's pages in order). The insert keeps its `ON
/// CONFLICT` clause, so the unique key, not this merge, is what makes planning idempotent.
/// Each distinct reason text is stored once, in `notice_reasons`.
fn plan(connection: &mut Connection, run_id: i64, program: &str, read: Read<'_>, run: &Finished) -> Result<Planned> {
    let notices = &run.evaluation.notices;
    let reachable = |person: u32| read.reachable.get(person as usize).copied().unwrap_or(false);
    let withheld_inexact_birth_day = if read.loaded.inexact_birth_days.is_empty() {
        0
    } else {
        notices.iter().filter(|notice| run.withheld(read.loaded, notice.person)).count()
    };
    // The key of every notice that can reach someone, and where it is among the notices.
    let keys: Vec<((&str, &str, i32), u32)> = notices
        .iter()
        .enumerate()
        .filter(|(_, notice)| reachable(notice.person) && !run.withheld(read.loaded, notice.person))
        .map(|(index, notice)| {
            let resident = resident_id(&read.loaded.resident_ids, notice.person)?;
            Ok(((resident, notice.occasion, notice.instance), index as u32))
        })
        .collect::<Result<_>>()?;
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    // Stable, so that of two equal keys the plugin's first is stored, as one by one would.
    order.sort_by_key(|index| keys[*index as usize].0);
    let transaction = connection.transaction()?;
    let missing = {
        let mut stored = transaction.prepare_cached(
            "SELECT resident_id, occasion, instance FROM notices WHERE program = ?1
             ORDER BY resident_id, occasion, instance",
        )?;
        let mut stored = stored.query([program])?;
        let mut missing = Vec::new();
        let mut next = order.iter().copied().peekable();
        // SQLite's BINARY collation compares bytes, as `str`'s `Ord` does.
        while next.peek().is_some()
            && let Some(row) = stored.next()?
        {
            let stored_key = (row.get_ref(0)?.as_str()?, row.get_ref(1)?.as_str()?, row.get::<_, i32>(2)?);
            while let Some(index) = next.next_if(|index| keys[*index as usize].0 <= stored_key) {
                if keys[index as usize].0 < stored_key {
                    missing.push(index);
                }
            }
        }
        missing.extend(next);
        missing
    };
    // A reason is stored when the first notice giving it is: the reasons of notices that
    // reach nobody are not kept.
    let mut reason_ids: Vec<Option<i64>> = vec![None; notices.reasons().len()];
    let mut new_notices = 0;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO notices (program, resident_id, occasion, instance, send_on, expires_on, reason_id, run_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (program, resident_id, occasion, instance) DO NOTHING",
        )?;
        for index in missing {
            let ((resident_id, ..), notice_index) = keys[index as usize];
            let notice = notices.get(notice_index as usize).context("a notice to store is missing")?;
            let reason_id = match reason_ids[notice.reason_index as usize] {
                Some(id) => id,
                None => *reason_ids[notice.reason_index as usize].insert(reason_id(&transaction, notice.reason)?),
            };
            new_notices += insert.execute((
                program,
                resident_id,
                notice.occasion,
                notice.instance,
                notice.send_on.0,
                notice.expires_on.0,
                reason_id,
                run_id,
            ))?;
        }
    }
    transaction.execute(
        "UPDATE runs SET outcome = 'succeeded', finished_at = ?2, notices = ?3, new_notices = ?4, message = ?5,
             settings = ?6, withheld_inexact_birth_day = ?7
         WHERE id = ?1",
        (
            run_id,
            now_text(),
            notices.len() as i64,
            new_notices as i64,
            &run.evaluation.log,
            &run.settings,
            withheld_inexact_birth_day as i64,
        ),
    )?;
    transaction.commit()?;
    Ok(Planned { new_notices, withheld_inexact_birth_day })
}

/// The id of a reason text in `notice_reasons`, stored if new.
fn reason_id(connection: &Connection, reason: &str) -> Result<i64> {
    let mut insert =
        connection.prepare_cached("INSERT INTO notice_reasons (text) VALUES (?1) ON CONFLICT DO NOTHING")?;
    let mut select = connection.prepare_cached("SELECT id FROM notice_reasons WHERE text = ?1")?;
    insert.execute([reason])?;
    Ok(select.query_row([reason], |row| row.get(0))?)
}

/// The active snapshot as a program declaring `fields` sees it: the snapshot's residents
/// (`snapshot::load_population`), then the people registered in the chat as rows
/// `self:<id>` (`chat::timing`), due dates last, so that a read for every program serves
/// one that does not read pregnancies with its first rows.
pub fn load_population(connection: &Connection, fields: &[Field], kinds: &[String]) -> Result<LoadedPopulation> {
    let mut loaded = crate::snapshot::load_population(connection, fields, kinds)?;
    let snapshot_rows = loaded.population.size;
    crate::chat::timing::append_to_population(connection, fields, &mut loaded.resident_ids, &mut loaded.population)?;
    let population = &loaded.population;
    loaded.rows_without_due_dates = population
        .pregnancies
        .person
        .iter()
        .copied()
        .filter(|person| *person >= snapshot_rows)
        .min()
        .unwrap_or(population.size);
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::Database;
    use oshirase_sandbox::{Limits, PluginEngine};

    type StoredNotice = (String, String, String, i32, i32, i32, String);

    fn stored_notices(connection: &Connection) -> Result<Vec<StoredNotice>> {
        let mut statement = connection.prepare(
            "SELECT n.program, n.resident_id, n.occasion, n.instance, n.send_on, n.expires_on, r.text
             FROM notices n JOIN notice_reasons r ON r.id = n.reason_id
             ORDER BY n.program, n.resident_id, n.occasion, n.instance",
        )?;
        let notices = statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
            })?
            .collect::<Result<_, _>>()?;
        Ok(notices)
    }

    /// Only notices that can reach someone are stored: a registered resident's, and a
    /// minor's whose parent is registered. The others are planned again by each run, so a
    /// resident who registers later is stored, and then told, at the next run.
    #[tokio::test]
    async fn notices_are_stored_once_someone_can_be_told() {
        let fixture = crate::testing::Fixture::with_bundled(oshirase_bundled::PROGRAMS).await;
        let programs = ["screening-colon", "vaccine-mr"].map(str::to_owned);
        crate::publish::install_bundled(&fixture.database, &fixture.plugins, &programs).await.unwrap();
        // On 2026-08-01 the child 002 (born 2025-07-31) is due for measles-rubella, and 003
        // (born 1969) for the colon screening; 001 is 002's parent.
        let today = Day::parse_iso("2026-08-01").unwrap();
        let database = fixture.database.clone();
        let day = || async {
            let runs = run_day(&fixture.database, fixture.plugins.clone(), today).await.unwrap();
            let stored = fixture
                .database
                .read(|connection| {
                    let mut statement = connection.prepare("SELECT program, resident_id FROM notices ORDER BY 1")?;
                    let rows =
                        statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                })
                .await
                .unwrap();
            (runs.iter().map(|run| (run.notices, run.new_notices)).collect::<Vec<_>>(), stored)
        };
        let register = |resident: &'static str| {
            let database = database.clone();
            async move {
                database
                    .write(move |connection| {
                        Ok(connection.execute(
                            "INSERT INTO registrations (resident_id, registered_at) VALUES (?1, 'now')",
                            [resident],
                        )?)
                    })
                    .await
                    .unwrap()
            }
        };
        let pair = |program: &str, resident: &str| (program.to_owned(), resident.to_owned());
        assert_eq!(day().await, (vec![(1, 0), (1, 0)], vec![]), "both planned, nobody to tell");
        register("001").await;
        assert_eq!(day().await, (vec![(1, 0), (1, 1)], vec![pair("vaccine-mr", "002")]), "the parent is told");
        register("003").await;
        assert_eq!(
            day().await,
            (vec![(1, 1), (1, 0)], vec![pair("screening-colon", "003"), pair("vaccine-mr", "002")]),
            "003 is stored at the first run after registering"
        );
    }

    /// A program that reads birth days gives no notice on a birth day the register marks as
    /// not exact (生年月日_不詳): its run counts the notice withheld, its dry run leaves it out,
    /// and the same child with an exact birth day is told.
    #[tokio::test]
    async fn a_birth_day_the_register_does_not_know_exactly_gives_no_notice_and_is_counted() {
        let fixture = crate::testing::Fixture::with_bundled(oshirase_bundled::PROGRAMS).await;
        crate::publish::install_bundled(&fixture.database, &fixture.plugins, &["vaccine-mr".to_owned()]).await.unwrap();
        let export = fixture.directory.join("inexact");
        std::fs::create_dir_all(&export).unwrap();
        std::fs::write(
            export.join("residents.csv"),
            "resident_id,household_id,name,birth_date,birth_date_inexact,sex,relationship\n\
             001,H1,千葉 花子,1990-04-01,0,2,head\n002,H1,千葉 一郎,2025-07-31,0,1,child\n\
             003,H2,千葉 次郎,1985-01-01,0,1,head\n004,H2,千葉 三郎,2025-07-31,1,1,child\n",
        )
        .unwrap();
        fixture
            .database
            .write(move |connection| {
                crate::testing::import(connection, &export)?;
                connection.execute_batch(
                    "INSERT INTO registrations (resident_id, registered_at) VALUES ('001', 'now'), ('003', 'now')",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let today = Day::parse_iso("2026-08-01").unwrap();
        let runs = run_day(&fixture.database, fixture.plugins.clone(), today).await.unwrap();
        let counts: Vec<_> =
            runs.iter().map(|run| (run.notices, run.new_notices, run.withheld_inexact_birth_day)).collect();
        assert_eq!(counts, [(2, 1, 1)], "both children planned by the plugin, one withheld");
        let (stored, withheld_recorded, dry_run) = fixture
            .database
            .read({
                let plugins = fixture.plugins.clone();
                move |connection| {
                    let stored: Vec<String> = connection
                        .prepare("SELECT resident_id FROM notices")?
                        .query_map([], |row| row.get(0))?
                        .collect::<Result<_, _>>()?;
                    let withheld: i64 = connection.query_row(
                        "SELECT withheld_inexact_birth_day FROM runs ORDER BY id DESC LIMIT 1",
                        [],
                        |row| row.get(0),
                    )?;
                    let version = active_versions(connection)?.remove(0);
                    let planned = dry_run(connection, &plugins, &version, today)?;
                    Ok((stored, withheld, planned.into_iter().map(|notice| notice.resident_id).collect::<Vec<_>>()))
                }
            })
            .await
            .unwrap();
        assert_eq!(stored, ["002"]);
        assert_eq!(withheld_recorded, 1);
        assert_eq!(dry_run, ["002"]);
    }

    /// A day's run, one read of the snapshot shared by every program on two threads, plans
    /// exactly the notices that each program run alone on its own read plans — people
    /// registered in the chat included, whose due dates only the programs reading
    /// pregnancies may see — and running the day again adds none.
    #[tokio::test]
    async fn a_day_on_one_read_plans_what_each_program_alone_plans() {
        let directory = std::env::temp_dir().join(format!("oshirase-evaluate-{}", uuid::Uuid::new_v4()));
        let export = directory.join("export");
        let today = Day::parse_iso("2026-11-21").unwrap();
        synthetic_city::generate(
            3_000,
            11,
            today,
            &export,
            synthetic_city::ExportFormat::own(synthetic_city::FileEncoding::Utf8),
        )
        .unwrap();
        let database = Database::open(&directory.join("oshirase.db")).unwrap();
        database.write(move |connection| crate::testing::import(connection, &export)).await.unwrap();
        // Two LINE users following, one with a due date and a birth, one with a birth, and a
        // third who blocked the account; every resident consents to the use of tax data.
        let (due, born) = (today.0 + 40, today.0 - 5);
        database
            .write(move |connection| {
                connection.execute_batch(&format!(
                    "INSERT INTO line_users (line_user_id, following, first_seen_at, changed_at) VALUES
                         ('U{a:0>32}', 1, 'now', 'now'), ('U{b:0>32}', 1, 'now', 'now'), ('U{c:0>32}', 0, 'now', 'now');
                     INSERT INTO self_registrations (line_user_id, kind, day, registered_on, created_at) VALUES
                         ('U{a:0>32}', 'due-date', {due}, {today}, 'now'),
                         ('U{b:0>32}', 'birth-date', {born}, {today}, 'now'),
                         ('U{a:0>32}', 'birth-date', {born}, {today}, 'now'),
                         ('U{c:0>32}', 'birth-date', {born}, {today}, 'now');
                     INSERT INTO registrations (resident_id, registered_at, tax_consent_at)
                     SELECT resident_id, 'now', 'now' FROM residents;",
                    a = "a",
                    b = "b",
                    c = "c",
                    today = today.0,
                ))?;
                Ok(())
            })
            .await
            .unwrap();
        let plugins =
            Arc::new(Plugins::new(PluginEngine::new(Limits::default(), None).unwrap(), oshirase_bundled::PROGRAMS));
        let programs = [
            "child-allowance",
            "maternal-dental",
            "postpartum-care",
            "child-rearing-allowance",
            "vaccine-mr",
            "screening-colon",
        ]
        .map(str::to_owned);
        crate::publish::install_bundled(&database, &plugins, &programs).await.unwrap();

        let day = run_day(&database, plugins.clone(), today).await.unwrap();
        let again = run_day(&database, plugins.clone(), today).await.unwrap();
        let shared = database.read(stored_notices).await.unwrap();
        // With every other notice forgotten, a run stores exactly those again.
        let forgotten = database
            .write(|connection| Ok(connection.execute("DELETE FROM notices WHERE id % 2 = 0", [])?))
            .await
            .unwrap();
        let refilled: usize =
            run_day(&database, plugins.clone(), today).await.unwrap().iter().map(|run| run.new_notices).sum();
        assert_eq!(refilled, forgotten, "{forgotten} notices forgotten, {refilled} stored again");
        assert!(database.read(stored_notices).await.unwrap() == shared, "the notices stored again are those forgotten");
        let versions = database
            .write(|connection| {
                connection.execute("DELETE FROM notices", [])?;
                active_versions(connection)
            })
            .await
            .unwrap();
        for version in versions {
            run_program_beside_writes(&database, plugins.clone(), version, today).await.unwrap();
        }
        let alone = database.read(stored_notices).await.unwrap();
        std::fs::remove_dir_all(&directory).unwrap();

        assert_eq!(
            day.iter().map(|run| run.program.as_str()).collect::<Vec<_>>(),
            [
                "child-allowance",
                "child-rearing-allowance",
                "maternal-dental",
                "postpartum-care",
                "screening-colon",
                "vaccine-mr"
            ]
        );
        assert!(
            day.iter().all(|run| run.error.is_none() && run.notices > 0 && run.new_notices == run.notices),
            "{day:?}"
        );
        assert!(again.iter().all(|run| run.new_notices == 0 && run.notices > 0), "{again:?}");
        assert_eq!(shared, alone);
        let self_registered: Vec<(&str, &str)> = shared
            .iter()
            .filter(|notice| notice.1.starts_with("self:"))
            .map(|notice| (notice.0.as_str(), notice.1.as_str()))
            .collect();
        assert!(
            self_registered.contains(&("child-allowance", "self:2"))
                && self_registered.contains(&("maternal-dental", "self:1")),
            "{self_registered:?}"
        );
        assert!(
            !self_registered.iter().any(|(_, resident)| *resident == "self:4"),
            "a user who blocked the account is left out: {self_registered:?}"
        );
    }

    /// A population read once for every program serves a program that does not read
    /// pregnancies with its first rows: the chat's due dates come last, and those rows are
    /// exactly what that program's own read gives.
    #[test]
    fn due_dates_registered_in_the_chat_come_last_so_a_shared_read_serves_every_program() {
        let mut connection = crate::testing::database();
        crate::testing::store(
            &mut connection,
            &[
                crate::testing::resident("001", "h1", "1990-01-01", 1),
                crate::testing::resident("002", "h1", "2026-01-01", 3),
            ],
        );
        connection
            .execute_batch(&format!(
                "INSERT INTO line_users (line_user_id, following, first_seen_at, changed_at)
                 VALUES ('U{a}', 1, 'now', 'now'), ('U{b}', 1, 'now', 'now');
                 INSERT INTO self_registrations (line_user_id, kind, day, registered_on, created_at) VALUES
                     ('U{a}', 'due-date', 20800, 20700, 'now'), ('U{b}', 'birth-date', 20690, 20700, 'now'),
                     ('U{a}', 'birth-date', 20695, 20700, 'now');",
                a = "a".repeat(32),
                b = "b".repeat(32),
            ))
            .unwrap();
        let everything =
            load_population(&connection, &[Field::BirthDay, Field::Household, Field::Pregnancies], &[]).unwrap();
        assert_eq!(everything.resident_ids, ["001", "002", "self:3", "self:2", "self:1"]);
        assert_eq!(everything.population.pregnancies.person, [4]);
        assert_eq!(
            (everything.rows_for(&[Field::Pregnancies]), everything.rows_for(&[Field::BirthDay, Field::Household])),
            (5, 4)
        );

        let alone = load_population(&connection, &[Field::BirthDay, Field::Household], &[]).unwrap();
        assert_eq!(alone.resident_ids, ["001", "002", "self:3", "self:2"]);
        assert_eq!((alone.population.size, alone.rows_for(&[Field::BirthDay])), (4, 4));
        assert_eq!(alone.population.birth_day, everything.population.birth_day[..4]);
        assert_eq!(alone.population.household, everything.population.household[..4]);
    }

    /// A day's run takes the writer only for its short writes: while a plugin spins until
    /// its wall-time limit, someone else's write goes through, and the run then records the
    /// spinning program as failed.
    #[tokio::test]
    async fn a_day_being_evaluated_leaves_the_writer_free() {
        let fixture = crate::testing::Fixture::new().await;
        let limits = Limits { wall_time: std::time::Duration::from_secs(3), ..Limits::default() };
        let plugins = Arc::new(Plugins::new(PluginEngine::new(limits, None).unwrap(), &[]));
        let hostile = crate::testing::component(oshirase_bundled::testing::PLUGINS, "hostile").0;
        let candidate = crate::publish::Candidate {
            wasm: hostile,
            cases: None,
            publisher: "test".into(),
            program: None,
            activation: crate::publish::Activation::Always,
        };
        crate::publish::publish(&fixture.database, &plugins, candidate).await.unwrap();
        // Day 0 is the hostile plugin's "spin forever".
        let (database, evaluating) = (fixture.database.clone(), plugins.clone());
        let day = tokio::spawn(async move { run_day(&database, evaluating, Day(0)).await });
        let running = |connection: &Connection| -> Result<bool> {
            Ok(connection.query_row("SELECT count(*) > 0 FROM runs WHERE outcome = 'running'", [], |row| row.get(0))?)
        };
        while !fixture.database.read(running).await.unwrap() {
            tokio::task::yield_now().await;
        }
        fixture.database.write(|connection| crate::database::audit(connection, "test", "write", "", "")).await.unwrap();
        assert!(!day.is_finished(), "the write waited for the day's evaluation");
        let runs = day.await.unwrap().unwrap();
        assert!(runs[0].error.as_deref().is_some_and(|error| error.contains("interrupt")), "{runs:?}");
    }
}

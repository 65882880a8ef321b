//! `oshirase-dev bench python`: a program component built another way (Python, by
//! componentize-py) beside the bundled Rust program of the same code, on one imported city,
//! in one run: each component's size, its compilation (no cache), its call in the sandbox
//! on the city's columns with the linear memory it grew to, and `oshirase plugin dry-run
//! --wasm` of it as a child process (wall time and the child's own peak RSS), each as a
//! ratio of Python's over Rust's.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use oshirase_bundled::PROGRAMS as BUNDLED;
use oshirase_core::hashing::sha256_hex;
use oshirase_core::snapshot::load_population;
use oshirase_sandbox::{Limits, LoadedProgram, PluginEngine};
use oshirase_sdk::{Day, Settings};

use super::eval::{EvalBenchOptions, imported_city, open_read_only, run_measured};
use super::median;

pub struct PythonBenchOptions {
    /// The component to measure.
    pub wasm: PathBuf,
    /// The bundled program to compare it with; the component's own code when not given.
    pub program: Option<String>,
    /// An imported data directory to measure on, instead of the city `bench eval` makes;
    /// it is only read (the children run on a copy in the work directory).
    pub data: Option<PathBuf>,
    pub residents: usize,
    pub seed: u64,
    pub repetitions: usize,
    pub work_directory: PathBuf,
}

/// One component's figures, medians over the repetitions.
#[derive(Debug, serde::Serialize)]
pub struct ComponentFigures {
    pub language: &'static str,
    pub component_bytes: usize,
    /// `PluginEngine::load` without a cache: compiling it and asking it to describe itself.
    pub compile_seconds: f64,
    /// One evaluation of the whole city's columns in the sandbox: a fresh instance, the
    /// columns copied in, the rules, the notices out and checked.
    pub call_seconds: f64,
    /// The linear memory the plugin grew to in that call.
    pub memory_bytes: usize,
    /// `oshirase plugin dry-run --wasm` as a child, the component already in its cache:
    /// start, the read of the snapshot, the call, the notices printed.
    pub dry_run_seconds: f64,
    /// That child's own peak resident set, in KiB.
    pub dry_run_peak_rss_kib: i64,
    pub notices: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct PythonBenchReport {
    pub program: String,
    pub residents: u32,
    pub date: String,
    pub repetitions: usize,
    pub rust: ComponentFigures,
    pub python: ComponentFigures,
    /// Whether both gave the same notices on the city.
    pub same_notices: bool,
    /// The sandbox's limits for this population (`Limits::default()`).
    pub memory_limit_bytes: usize,
    pub wall_time_limit_seconds: f64,
}

impl std::fmt::Display for PythonBenchReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |bytes: f64| bytes / f64::from(1 << 20);
        writeln!(
            formatter,
            "{} in Rust and in Python on a city of {} residents for {}, medians of {} runs",
            self.program, self.residents, self.date, self.repetitions
        )?;
        writeln!(formatter, "  {:<44} {:>10} {:>10} {:>13}", "", "Rust", "Python", "Python / Rust")?;
        let (rust, python) = (&self.rust, &self.python);
        let rows = [
            ("component (MiB)", mib(rust.component_bytes as f64), mib(python.component_bytes as f64), 2),
            ("compile, no cache (s)", rust.compile_seconds, python.compile_seconds, 2),
            ("call in the sandbox (s)", rust.call_seconds, python.call_seconds, 3),
            ("the plugin's linear memory (MiB)", mib(rust.memory_bytes as f64), mib(python.memory_bytes as f64), 0),
            ("`plugin dry-run --wasm` process (s)", rust.dry_run_seconds, python.dry_run_seconds, 3),
            (
                "`plugin dry-run --wasm` peak RSS (MiB)",
                rust.dry_run_peak_rss_kib as f64 / 1024.0,
                python.dry_run_peak_rss_kib as f64 / 1024.0,
                0,
            ),
        ];
        for (name, rust, python, decimals) in rows {
            writeln!(formatter, "  {name:<44} {rust:>10.decimals$} {python:>10.decimals$} {:>12.1}×", python / rust)?;
        }
        writeln!(
            formatter,
            "  notices: Rust {}, Python {} ({})",
            rust.notices,
            python.notices,
            if self.same_notices { "the same" } else { "NOT the same" }
        )?;
        writeln!(
            formatter,
            "  the sandbox's limits for {} residents: {:.0} MiB, {:.1} s",
            self.residents,
            mib(self.memory_limit_bytes as f64),
            self.wall_time_limit_seconds
        )
    }
}

/// Loads `wasm` into a fresh engine with no cache, `repetitions` times, and returns the
/// median time and the last program loaded.
fn compile(wasm: &[u8], repetitions: usize) -> Result<(f64, LoadedProgram, PluginEngine)> {
    let mut seconds = Vec::new();
    let mut loaded = None;
    for _ in 0..repetitions {
        let engine = PluginEngine::new(Limits::default(), None)?;
        let start = Instant::now();
        let program = engine.load(wasm, &sha256_hex(wasm))?;
        seconds.push(start.elapsed().as_secs_f64());
        loaded = Some((program, engine));
    }
    let (program, engine) = loaded.context("no repetitions")?;
    Ok((median(&seconds), program, engine))
}

/// A copy of the city's database in the work directory, for the children (whose cache of
/// compiled components is written beside it), made once.
fn child_directory(work: &Path, data: &Path) -> Result<PathBuf> {
    let name = data.file_name().context("the data directory has no name")?.to_string_lossy().into_owned();
    let copy = work.join(format!("python-{name}"));
    let database = copy.join("oshirase.db");
    if !database.exists() {
        std::fs::create_dir_all(&copy).with_context(|| format!("cannot create {}", copy.display()))?;
        oshirase_core::database::backup(&data.join("oshirase.db"), &database, false)?;
    }
    Ok(copy)
}

/// Measures the component against the bundled Rust program of the same code.
pub fn python(options: &PythonBenchOptions, today: Day) -> Result<PythonBenchReport> {
    std::fs::create_dir_all(&options.work_directory)
        .with_context(|| format!("cannot create {}", options.work_directory.display()))?;
    let repetitions = options.repetitions.max(1);
    let data = match &options.data {
        Some(data) => data.clone(),
        None => imported_city(
            &EvalBenchOptions {
                residents: options.residents,
                seed: options.seed,
                repetitions,
                work_directory: options.work_directory.clone(),
            },
            today,
        )?,
    };
    let python_wasm =
        std::fs::read(&options.wasm).with_context(|| format!("cannot read {}", options.wasm.display()))?;
    let (python_compile, python_program, python_engine) = compile(&python_wasm, repetitions)?;
    let code = options.program.clone().unwrap_or_else(|| python_program.info.code.clone());
    let rust_wasm = BUNDLED
        .iter()
        .find(|(name, ..)| *name == code)
        .with_context(|| format!("no bundled program {code} to compare with"))?
        .1
        .to_vec();
    let (rust_compile, rust_program, rust_engine) = compile(&rust_wasm, repetitions)?;

    // The calls, each on the columns its own manifest declares, read once.
    let connection = open_read_only(&data)?;
    let mut calls = Vec::new();
    for (program, engine) in [(&rust_program, &rust_engine), (&python_program, &python_engine)] {
        let info = &program.info;
        let population = load_population(&connection, &info.fields, &info.kinds)?.population;
        let settings = Settings::defaults(&info.settings);
        let mut seconds = Vec::new();
        let mut last = None;
        for _ in 0..repetitions {
            let start = Instant::now();
            let evaluation = engine
                .evaluate(program, today, &settings, &population)
                .with_context(|| format!("{} failed on the city", info.code))?;
            seconds.push(start.elapsed().as_secs_f64());
            last = Some(evaluation);
        }
        let evaluation = last.context("no repetitions")?;
        calls.push((median(&seconds), evaluation, population.size));
    }
    let residents = calls[0].2;
    let same_notices = calls[0].1.notices.to_vec() == calls[1].1.notices.to_vec();
    drop((python_engine, rust_engine));

    // The children, alternating, after one run each that fills the copy's cache.
    let children = child_directory(&options.work_directory, &data)?;
    let date = today.to_string();
    let mut dry_runs: [Vec<(f64, i64)>; 2] = [Vec::new(), Vec::new()];
    let files = [("rust", &rust_wasm), ("python", &python_wasm)].map(|(language, wasm)| {
        let path = options.work_directory.join(format!("{code}-{language}.wasm"));
        (language, path, wasm)
    });
    for (_, path, wasm) in &files {
        std::fs::write(path, wasm).with_context(|| format!("cannot write {}", path.display()))?;
    }
    for round in 0..=repetitions {
        for (index, (language, path, _)) in files.iter().enumerate() {
            let path = path.to_string_lossy();
            let arguments = ["plugin", "dry-run", "--wasm", &path, "--date", &date];
            let measured = run_measured(&children, &arguments, &format!("dry-run-{language}"))?;
            if round > 0 {
                dry_runs[index].push((measured.seconds, measured.peak_rss_kib));
            }
        }
    }
    let limits = Limits::default();
    let mut figures = calls
        .into_iter()
        .zip(dry_runs)
        .zip([("Rust", rust_wasm.len(), rust_compile), ("Python", python_wasm.len(), python_compile)]);
    let mut next = || -> Result<ComponentFigures> {
        let (((call_seconds, evaluation, _), dry_runs), (language, component_bytes, compile_seconds)) =
            figures.next().context("two components")?;
        let peaks: Vec<f64> = dry_runs.iter().map(|(_, kib)| *kib as f64).collect();
        Ok(ComponentFigures {
            language,
            component_bytes,
            compile_seconds,
            call_seconds,
            memory_bytes: evaluation.memory_bytes,
            dry_run_seconds: median(&dry_runs.iter().map(|(seconds, _)| *seconds).collect::<Vec<_>>()),
            dry_run_peak_rss_kib: median(&peaks) as i64,
            notices: evaluation.notices.len(),
        })
    };
    let (rust, python) = (next()?, next()?);
    Ok(PythonBenchReport {
        program: code,
        residents,
        date,
        repetitions,
        rust,
        python,
        same_notices,
        memory_limit_bytes: limits.memory_for(residents),
        wall_time_limit_seconds: limits.wall_time_for(residents).as_secs_f64(),
    })
}

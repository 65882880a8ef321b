//! Runs a plugin's example cases (its `cases.yaml`) through the real sandbox, so that what
//! a division reads in the cases is what the published component does.

use anyhow::{Context, Result};
use oshirase_sdk::cases::{self, Cases, Report};

use crate::hashing::sha256_hex;
use oshirase_sandbox::{LoadedProgram, PluginEngine};

/// Loads `wasm` as a program and checks it against the cases in `yaml`.
pub fn test_plugin(engine: &PluginEngine, wasm: &[u8], yaml: &str) -> Result<Report> {
    let cases = cases::parse(yaml).context("cannot read the example cases")?;
    let program = engine.load(wasm, &sha256_hex(wasm)).context("cannot load the plugin")?;
    Ok(check_loaded(engine, &program, &cases))
}

/// Checks a loaded program against `cases`. Every evaluation goes through
/// [`PluginEngine::evaluate`], with its limits and output checks, and the case's settings.
pub fn check_loaded(engine: &PluginEngine, program: &LoadedProgram, cases: &Cases) -> Report {
    cases::check(cases, &program.info, |today, settings, population| {
        engine
            .evaluate(program, today, settings, population)
            .map(|evaluation| evaluation.notices.to_vec())
            .map_err(|error| format!("{error:#}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oshirase_bundled::PROGRAMS as BUNDLED;
    use oshirase_sandbox::Limits;

    #[test]
    fn every_bundled_plugin_passes_its_own_example_cases_in_the_sandbox() {
        let engine = PluginEngine::new(Limits::default(), None).unwrap();
        let mut failures = Vec::new();
        let mut total = 0;
        for (name, wasm, yaml) in BUNDLED {
            assert!(!yaml.is_empty(), "{name} has no cases.yaml");
            match test_plugin(&engine, wasm, yaml) {
                Ok(report) if report.passed() => total += report.cases,
                Ok(report) => failures.push(format!("{name}: {report}")),
                Err(error) => failures.push(format!("{name}: {error:#}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(total >= BUNDLED.len() * 4, "only {total} cases for {} plugins", BUNDLED.len());
    }

    #[test]
    fn a_case_the_plugin_does_not_meet_is_reported_as_a_difference() {
        let engine = PluginEngine::new(Limits::default(), None).unwrap();
        let (_, wasm, _) = BUNDLED.iter().find(|(name, ..)| *name == "vaccine-mr").unwrap();
        let wrong = "cases:\n  - name: 1期の期限を一日違えた\n    today: 2026-07-30\n    people:\n      - { \
                     id: 子, birth: 2025-07-31 }\n    expect:\n      - { person: 子, occasion: phase-1, send_on: \
                     2026-07-30, expires_on: 2027-07-29 }\n";
        let report = test_plugin(&engine, wasm, wrong).unwrap();
        let text = report.to_string();
        assert!(!report.passed());
        assert!(
            text.contains("- missing")
                && text.contains("2027-07-30")
                && text.contains("+ unexpected")
                && text.contains("2027-07-29"),
            "{text}"
        );
    }
}

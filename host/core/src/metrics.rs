//! The figures `/metrics` serves, in Prometheus's text format: runs, notices and deliveries counted from the
//! database when scraped, and what only this process sees — LINE's answers other than
//! 200 by status, and the monthly quota left when last read. Counts only: no label names
//! a resident.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// LINE's answers other than 200 since the process started, by HTTP status.
static LINE_ERRORS: Mutex<BTreeMap<u16, u64>> = Mutex::new(BTreeMap::new());
/// Messages left in LINE's monthly quota when it was last read; -1 before that or when unlimited.
static LINE_QUOTA_REMAINING: AtomicI64 = AtomicI64::new(-1);

/// Counts one answer of LINE's API.
pub fn record_line_status(status: u16) {
    if status != 200 {
        *LINE_ERRORS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).entry(status).or_default() += 1;
    }
}

/// Remembers the quota left as last read.
pub fn record_line_quota_remaining(remaining: Option<u64>) {
    LINE_QUOTA_REMAINING.store(remaining.map_or(-1, |left| left.min(i64::MAX as u64) as i64), Ordering::Relaxed);
}

/// One metric family: its help, its type and its samples as (labels, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, i64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let labels = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// Label values are program codes and states, but are escaped as the format requires anyway.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn grouped(connection: &rusqlite::Connection, query: &str, names: &[&str]) -> anyhow::Result<Vec<(String, i64)>> {
    let mut statement = connection.prepare(query)?;
    let rows = statement.query_map([], |row| {
        let labels: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(index, name)| Ok(format!("{name}=\"{}\"", label(&row.get::<_, String>(index)?))))
            .collect::<rusqlite::Result<_>>()?;
        Ok((labels.join(","), row.get(names.len())?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every metric as Prometheus's text format (version 0.0.4) reads it.
pub fn text(connection: &rusqlite::Connection) -> anyhow::Result<String> {
    let mut out = String::new();
    let runs = grouped(
        connection,
        "SELECT program, outcome, count(*) FROM runs GROUP BY 1, 2 ORDER BY 1, 2",
        &["program", "outcome"],
    )?;
    family(&mut out, "oshirase_runs_total", "counter", "Program runs by outcome.", &runs);
    let notices = grouped(connection, "SELECT program, count(*) FROM notices GROUP BY 1 ORDER BY 1", &["program"])?;
    family(
        &mut out,
        "oshirase_notices_total",
        "counter",
        "Notices stored by program (those with a recipient).",
        &notices,
    );
    let deliveries = grouped(
        connection,
        "SELECT channel, state, count(*) FROM deliveries GROUP BY 1, 2 ORDER BY 1, 2",
        &["channel", "state"],
    )?;
    family(&mut out, "oshirase_deliveries", "gauge", "Deliveries by channel and state.", &deliveries);
    let registered: i64 =
        connection.query_row("SELECT count(*) FROM registrations WHERE active = 1", [], |row| row.get(0))?;
    family(&mut out, "oshirase_registered_residents", "gauge", "Active registrations.", &[(String::new(), registered)]);
    let live: i64 =
        connection.query_row("SELECT count(*) FROM programs WHERE active_version IS NOT NULL", [], |row| row.get(0))?;
    family(&mut out, "oshirase_programs_live", "gauge", "Programs with an active version.", &[(String::new(), live)]);
    let errors: Vec<(String, i64)> = LINE_ERRORS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .map(|(status, count)| (format!("status=\"{status}\""), *count as i64))
        .collect();
    family(
        &mut out,
        "oshirase_line_errors_total",
        "counter",
        "LINE API answers other than 200 since start, by HTTP status.",
        &errors,
    );
    family(
        &mut out,
        "oshirase_line_quota_remaining",
        "gauge",
        "Messages left in LINE's monthly quota when last read (-1: unknown or unlimited).",
        &[(String::new(), LINE_QUOTA_REMAINING.load(Ordering::Relaxed))],
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use oshirase_bundled::PROGRAMS;

    use crate::testing::{Fixture, component};

    #[tokio::test]
    async fn metrics_count_runs_notices_deliveries_and_line_answers_in_prometheus_text() {
        let fixture = Fixture::new().await;
        let (wasm, cases) = component(PROGRAMS, "vaccine-mr");
        fixture.publish(wasm, Some(cases)).await.unwrap();
        fixture
            .database
            .write(|connection| {
                connection.execute_batch(
                    "INSERT INTO runs (id, program, version_id, snapshot_id, run_on, started_at, outcome)
                     VALUES (1, 'vaccine-mr', 1, 1, 0, '', 'succeeded'), (2, 'vaccine-mr', 1, 1, 1, '', 'failed');
                     INSERT INTO notices (id, program, resident_id, occasion, send_on, expires_on, run_id)
                     VALUES (1, 'vaccine-mr', '002', 'phase-1', 0, 100000, 1);
                     INSERT INTO deliveries (notice_id, channel, address, text, retry_key, state, created_at)
                     VALUES (1, 'line', 'U1', 't', 'k1', 'sent', ''),
                     (1, 'mail', 'a@example.jp', 't', 'k2', 'failed-permanent', '');",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        super::record_line_status(200);
        super::record_line_status(429);
        super::record_line_quota_remaining(Some(4_321));
        let text = fixture.database.read(super::text).await.unwrap();
        for line in [
            "# TYPE oshirase_runs_total counter",
            "oshirase_runs_total{program=\"vaccine-mr\",outcome=\"failed\"} 1",
            "oshirase_runs_total{program=\"vaccine-mr\",outcome=\"succeeded\"} 1",
            "oshirase_notices_total{program=\"vaccine-mr\"} 1",
            "oshirase_deliveries{channel=\"line\",state=\"sent\"} 1",
            "oshirase_deliveries{channel=\"mail\",state=\"failed-permanent\"} 1",
            "oshirase_programs_live 1",
        ] {
            assert!(text.lines().any(|found| found == line), "missing {line:?} in\n{text}");
        }
        // Other tests in this process talk to LINE emulators too, so the process-wide
        // figures are at least, or possibly other than, what this test recorded.
        let quota: i64 = text
            .lines()
            .find_map(|found| found.strip_prefix("oshirase_line_quota_remaining "))
            .expect("the quota is reported")
            .parse()
            .unwrap();
        assert!(quota >= -1, "{text}");
        let too_many: u64 = text
            .lines()
            .find_map(|found| found.strip_prefix("oshirase_line_errors_total{status=\"429\"} "))
            .expect("429s are counted")
            .parse()
            .unwrap();
        assert!(too_many >= 1 && !text.contains("status=\"200\""), "{text}");
        assert!(!text.contains("a@example.jp") && !text.contains("U1"), "no address reaches the metrics");
    }
}

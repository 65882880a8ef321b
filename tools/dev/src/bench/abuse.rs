//! `oshirase-dev bench abuse`: what a flood of made-up sign-ins does to everyone else. A real
//! `oshirase serve --config` child process (this binary, or another given with
//! `--server`, such as an earlier release, so both are measured in one run) answers
//! signed LINE webhook requests and an authenticated admin GET, one at a time each, for
//! `seconds` with no flood and then while N loops post sign-ins with unknown logins. Each
//! flooding request claims an address of its own in `X-Forwarded-For`, which the server
//! is configured to trust, so the per-address rate limit does not turn the flood away:
//! what is measured is the sign-in path itself, as a flood from many machines would meet
//! it. Reported: p50 and p99 of both probes and the server's peak resident memory
//! (`VmRSS` sampled every 20 ms from `/proc`), per phase, and the sign-ins' answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{listening_address, resident_mib};

const TOKEN: &str = "bench-channel-token";
const SECRET: &str = "bench-channel-secret";

pub struct AbuseBenchOptions {
    /// The server binaries to measure, each in its own data directory.
    pub servers: Vec<PathBuf>,
    /// The flooding loops of each phase after the first, which has none.
    pub loops: Vec<usize>,
    pub seconds: f64,
    pub work_directory: PathBuf,
}

#[derive(Debug, serde::Serialize)]
pub struct AbuseBenchReport {
    pub seconds: f64,
    pub servers: Vec<ServerFigures>,
}

#[derive(Debug, serde::Serialize)]
pub struct ServerFigures {
    pub server: String,
    pub phases: Vec<Phase>,
}

#[derive(Debug, serde::Serialize)]
pub struct Phase {
    pub flooding_loops: usize,
    pub webhook_requests: usize,
    pub webhook_p50_ms: f64,
    pub webhook_p99_ms: f64,
    pub admin_requests: usize,
    pub admin_p50_ms: f64,
    pub admin_p99_ms: f64,
    pub peak_rss_mib: f64,
    /// The flood's answers by HTTP status (or `error` when no answer came).
    pub sign_in_answers: BTreeMap<String, usize>,
}

impl std::fmt::Display for AbuseBenchReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            formatter,
            "bench abuse: {} s per phase; latencies of one request at a time while N loops post unknown sign-ins",
            self.seconds
        )?;
        for server in &self.servers {
            writeln!(formatter, "{}", server.server)?;
            writeln!(
                formatter,
                "  {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}  sign-in answers",
                "loops", "webhooks", "p50 ms", "p99 ms", "admin", "p50 ms", "p99 ms", "peak MiB"
            )?;
            for phase in &server.phases {
                let answers: Vec<String> =
                    phase.sign_in_answers.iter().map(|(status, count)| format!("{status}×{count}")).collect();
                writeln!(
                    formatter,
                    "  {:>6} {:>9} {:>9.1} {:>9.1} {:>9} {:>9.1} {:>9.1} {:>10.1}  {}",
                    phase.flooding_loops,
                    phase.webhook_requests,
                    phase.webhook_p50_ms,
                    phase.webhook_p99_ms,
                    phase.admin_requests,
                    phase.admin_p50_ms,
                    phase.admin_p99_ms,
                    phase.peak_rss_mib,
                    answers.join(" ")
                )?;
            }
        }
        Ok(())
    }
}

/// The `p`-th percentile (0–100) of `values` in milliseconds, nearest rank.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
    values[rank.min(values.len()) - 1]
}

/// A server child process, killed when dropped.
struct Server {
    child: Child,
    address: String,
    admin_token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_ok(binary: &Path, data: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new(binary)
        .arg("--data")
        .arg(data)
        .args(args)
        .env("OSHIRASE_PROGRAMS", "infant-checkup")
        .env("OSHIRASE_LOG", "error")
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "{} {args:?} failed: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// Starts `binary` as `serve --config` in a new data directory under `work`, with LINE at
/// `line_url`; an earlier oshirase that does not know `forwarded_for` is started without it.
fn start_server(binary: &Path, work: &Path, line_url: &str) -> Result<Server> {
    if work.exists() {
        std::fs::remove_dir_all(work)?;
    }
    let data = work.join("data");
    std::fs::create_dir_all(&data)?;
    let admin_token =
        run_ok(binary, &data, &["admin", "create-token", "--division", "情報政策課", "--admin"])?.trim().to_owned();
    for forwarded_for in [true, false] {
        let trust = if forwarded_for { "forwarded_for = true\n" } else { "" };
        let config = work.join("oshirase.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\ndata = {data:?}\n{trust}\n[line]\nbase_url = {line_url:?}\n\
                 channel_access_token = {TOKEN:?}\nchannel_secret = {SECRET:?}\n"
            ),
        )?;
        let mut child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(&config)
            .env("OSHIRASE_PROGRAMS", "infant-checkup")
            .env("OSHIRASE_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        if let (Some(address), _) = listening_address(&mut child)? {
            return Ok(Server { child, address, admin_token });
        }
        let mut complaint = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut complaint)?;
        let _ = child.wait();
        anyhow::ensure!(
            forwarded_for && complaint.contains("forwarded_for"),
            "{} did not start: {complaint}",
            binary.display()
        );
    }
    unreachable!("the second start has no forwarded_for to refuse")
}

/// Runs one phase: probes one at a time and `loops` flooding loops for `seconds`.
async fn phase(server: &Server, emulator: &line_emulator::Emulator, loops: usize, seconds: f64) -> Result<Phase> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).timeout(Duration::from_secs(60)).build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..loops)
        .map(|number| {
            let (client, stop, url) = (client.clone(), stop.clone(), format!("{}/admin/session", server.address));
            tokio::spawn(async move {
                let mut answers: BTreeMap<String, usize> = BTreeMap::new();
                let mut attempt = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    attempt += 1;
                    // A made-up login from an address of its own each time.
                    let address = format!("10.{}.{}.{}", number % 256, attempt / 256 % 256, attempt % 256);
                    let body = serde_json::json!({
                        "login": format!("guess-{number}-{attempt}"),
                        "password": "not the password"
                    });
                    let answer = client.post(&url).header("x-forwarded-for", address).json(&body).send().await;
                    *answers
                        .entry(answer.map_or("error".to_owned(), |response| response.status().as_u16().to_string()))
                        .or_default() += 1;
                }
                answers
            })
        })
        .collect();
    let webhook = tokio::spawn({
        let (client, url, emulator) = (client.clone(), format!("{}/webhook/line", server.address), emulator.clone());
        async move {
            let mut latencies = Vec::new();
            let mut number = 0u64;
            while Instant::now() < deadline {
                number += 1;
                let user = format!("U{:032x}", number % 50);
                let event = serde_json::json!({
                    "type": "message", "mode": "active", "timestamp": 1_790_000_000_000u64 + number,
                    "source": { "type": "user", "userId": user },
                    "webhookEventId":
                        format!("01ABUSE{}{number:013}", uuid::Uuid::new_v4().simple().to_string()[..6].to_uppercase()),
                    "deliveryContext": { "isRedelivery": false }, "replyToken": emulator.issue_reply_token(&user),
                    "message": { "type": "text", "id": number.to_string(), "text": "使い方", "quoteToken": "q" },
                });
                let body = serde_json::json!({ "destination": "U0000000000000000000000000000ffff", "events": [event] })
                    .to_string();
                let signature = line_emulator::signature(SECRET.as_bytes(), body.as_bytes());
                let start = Instant::now();
                super::post_to_webhook(&client, &url, signature, body).await?;
                latencies.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(latencies)
        }
    });
    let admin = tokio::spawn({
        let (client, url, token) =
            (client.clone(), format!("{}/admin/programs", server.address), server.admin_token.clone());
        async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let start = Instant::now();
                let response = client.get(&url).bearer_auth(&token).send().await?;
                anyhow::ensure!(response.status().is_success(), "the admin API answered {}", response.status());
                response.bytes().await?;
                latencies.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(latencies)
        }
    });
    let pid = server.child.id();
    let mut peak: f64 = 0.0;
    while Instant::now() < deadline {
        peak = peak.max(resident_mib(pid).unwrap_or(0.0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut webhook = webhook.await??;
    let mut admin = admin.await??;
    let mut sign_in_answers = BTreeMap::new();
    for loop_answers in flood {
        for (status, count) in loop_answers.await? {
            *sign_in_answers.entry(status).or_default() += count;
        }
    }
    peak = peak.max(resident_mib(pid).unwrap_or(0.0));
    Ok(Phase {
        flooding_loops: loops,
        webhook_requests: webhook.len(),
        webhook_p50_ms: percentile(&mut webhook, 50.0),
        webhook_p99_ms: percentile(&mut webhook, 99.0),
        admin_requests: admin.len(),
        admin_p50_ms: percentile(&mut admin, 50.0),
        admin_p99_ms: percentile(&mut admin, 99.0),
        peak_rss_mib: peak,
        sign_in_answers,
    })
}

/// Measures every server of `options`, one after the other, each through every phase.
pub async fn abuse(options: &AbuseBenchOptions) -> Result<AbuseBenchReport> {
    let emulator = line_emulator::Emulator::new(TOKEN);
    let emulator_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let line_url = format!("http://{}", emulator_listener.local_addr()?);
    let emulator_router = emulator.router();
    let emulator_server = tokio::spawn(async move { axum::serve(emulator_listener, emulator_router).await });
    let mut servers = Vec::new();
    for (number, binary) in options.servers.iter().enumerate() {
        let server = start_server(binary, &options.work_directory.join(format!("abuse-{number}")), &line_url)?;
        let mut phases = Vec::new();
        for loops in std::iter::once(0).chain(options.loops.iter().copied()) {
            phases.push(phase(&server, &emulator, loops, options.seconds).await?);
        }
        servers.push(ServerFigures { server: binary.display().to_string(), phases });
    }
    emulator_server.abort();
    Ok(AbuseBenchReport { seconds: options.seconds, servers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_by_nearest_rank() {
        let mut values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            (percentile(&mut values, 50.0), percentile(&mut values, 99.0), percentile(&mut values, 100.0)),
            (50.0, 99.0, 100.0)
        );
        assert!(percentile(&mut [], 50.0).is_nan());
    }
}

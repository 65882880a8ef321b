//! `oshirase run`: one day's work at once — evaluate every program, plan, queue and send —
//! as a timer would run it without `serve`.

use std::time::Duration;

use oshirase_core::Day;
use oshirase_core::channel::Channels;
use oshirase_core::channel::line::{LineClient, LineConfig};
use oshirase_core::retry::RetryPolicy;
use oshirase_core::time::today_in_japan;

use super::{Global, parse_day};

#[derive(clap::Args)]
pub struct Arguments {
    #[arg(long, value_parser = parse_day)]
    date: Option<Day>,
    #[arg(long, env = "OSHIRASE_LINE_BASE_URL", default_value = "https://api.line.me")]
    line_base_url: String,
    #[arg(long, env = "OSHIRASE_LINE_TOKEN")]
    line_token: String,
    /// The public address of the server that answers `/r/{token}` (`[server] public_url`):
    /// cards' links go out through it, so that their openings are counted. Direct without it.
    #[arg(long, env = "OSHIRASE_PUBLIC_URL")]
    public_url: Option<String>,
    #[command(flatten)]
    delivery: DeliveryArguments,
}

/// How `run` waits for LINE and retries; each defaults to the library's policy.
#[derive(clap::Args)]
struct DeliveryArguments {
    /// How long one LINE request may take, in milliseconds, before it counts as a timeout.
    #[arg(long)]
    line_timeout_ms: Option<u64>,
    /// Attempts per delivery, the first included.
    #[arg(long)]
    retry_attempts: Option<u32>,
    /// The delay after a first failed attempt, in milliseconds; it doubles per attempt.
    #[arg(long)]
    retry_first_delay_ms: Option<u64>,
    /// How long a run waits for retries to fall due, in milliseconds.
    #[arg(long)]
    retry_linger_ms: Option<u64>,
    /// Name each message's program in LINE's statistics (`customAggregationUnits`); LINE
    /// refuses every message carrying one unless the channel's application was approved.
    #[arg(long)]
    line_custom_aggregation_units: bool,
}

impl DeliveryArguments {
    fn apply(&self, line: &mut LineConfig) -> RetryPolicy {
        let default = RetryPolicy::default();
        if let Some(milliseconds) = self.line_timeout_ms {
            line.timeout = Duration::from_millis(milliseconds);
        }
        line.custom_aggregation_units = self.line_custom_aggregation_units;
        RetryPolicy {
            max_attempts: self.retry_attempts.unwrap_or(default.max_attempts),
            first_delay: self.retry_first_delay_ms.map_or(default.first_delay, Duration::from_millis),
            linger: self.retry_linger_ms.map_or(default.linger, Duration::from_millis),
            ..default
        }
    }
}

pub async fn run(
    global: &Global,
    Arguments { date, line_base_url, line_token, public_url, delivery }: Arguments,
) -> anyhow::Result<()> {
    let service = global.service().await?;
    let mut line = LineConfig::new(line_base_url, line_token);
    let retry = delivery.apply(&mut line);
    let channels = Channels { line: LineClient::new(line)?, mail: None, public_url };
    let report = service.run_day(date.unwrap_or_else(today_in_japan), &channels, &retry).await?;
    println!("{}", serde_json::to_string(&report)?);
    if report.runs.iter().any(|run| run.error.is_some()) {
        anyhow::bail!("some programs failed; see the runs above");
    }
    Ok(())
}

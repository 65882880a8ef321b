//! Faults the LINE emulator injects into push and multicast, so that tests can show the
//! sender loses nothing and sends nothing twice: a share of requests answered with 500 or
//! 429, answered too late (after the message was delivered, the dangerous case) or slowly,
//! and periods when it is down. Draws come from a seeded generator, so a run repeats.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{Emulator, error};

/// What to inject; the shares are of push and multicast requests and add up to at most 1.
/// Set by `oshirase-dev line-emulator` flags or `PUT /emulator/faults`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of requests answered 500 without delivering.
    #[arg(long = "fault-500", default_value_t = 0.0)]
    pub error_500: f64,
    /// Share of requests answered 429 (rate limit) without delivering.
    #[arg(long = "fault-429", default_value_t = 0.0)]
    pub error_429: f64,
    /// Share of requests delivered but answered only after `timeout_ms`, later than the
    /// client waits, so the client cannot know the message arrived.
    #[arg(long = "fault-timeout", default_value_t = 0.0)]
    pub timeout: f64,
    /// Share of requests answered normally after `slow_ms`.
    #[arg(long = "fault-slow", default_value_t = 0.0)]
    pub slow: f64,
    #[arg(long = "fault-timeout-ms", default_value_t = TIMEOUT_MS)]
    pub timeout_ms: u64,
    #[arg(long = "fault-slow-ms", default_value_t = SLOW_MS)]
    pub slow_ms: u64,
    /// Answer every request with 503 for this long, from when the faults are set.
    #[arg(long = "fault-down-ms", default_value_t = 0)]
    pub down_ms: u64,
    /// The seed of the draws.
    #[arg(long = "fault-seed", default_value_t = 0)]
    pub seed: u64,
}

/// How long a late answer waits by default: longer than the sender's 10 s timeout.
const TIMEOUT_MS: u64 = 15_000;
/// How long a slow answer waits by default: well within the sender's timeout.
const SLOW_MS: u64 = 500;

impl Default for Faults {
    /// No faults.
    fn default() -> Faults {
        Faults {
            error_500: 0.0,
            error_429: 0.0,
            timeout: 0.0,
            slow: 0.0,
            timeout_ms: TIMEOUT_MS,
            slow_ms: SLOW_MS,
            down_ms: 0,
            seed: 0,
        }
    }
}

/// How many requests got each fault since the faults were last set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injected {
    pub error_500: u64,
    pub error_429: u64,
    pub timeout: u64,
    pub slow: u64,
    pub down: u64,
}

/// The faults in force, the generator they draw from and what they have done.
pub(super) struct FaultState {
    faults: Faults,
    random: StdRng,
    down_until: Option<Instant>,
    injected: Injected,
}

/// The fault one request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Down,
    Status(StatusCode),
    /// Handle the request, then hold the answer this long.
    Late(Duration),
    /// Hold the request this long, then handle it.
    Slow(Duration),
}

impl Faults {
    /// Refuses shares outside [0, 1] or adding up to more than 1.
    pub fn check(&self) -> Result<(), String> {
        let shares = [self.error_500, self.error_429, self.timeout, self.slow];
        if shares.iter().any(|share| !(0.0..=1.0).contains(share)) || shares.iter().sum::<f64>() > 1.0 + 1e-9 {
            return Err(format!("fault shares must be within 0–1 and add up to at most 1: {shares:?}"));
        }
        Ok(())
    }
}

impl FaultState {
    pub(super) fn new(faults: Faults) -> FaultState {
        let down_until = (faults.down_ms > 0).then(|| Instant::now() + Duration::from_millis(faults.down_ms));
        FaultState { random: StdRng::seed_from_u64(faults.seed), faults, down_until, injected: Injected::default() }
    }

    pub(super) fn report(&self) -> (Faults, Injected) {
        (self.faults.clone(), self.injected)
    }

    fn draw(&mut self) -> Option<Fault> {
        if self.down_until.is_some_and(|until| Instant::now() < until) {
            self.injected.down += 1;
            return Some(Fault::Down);
        }
        let faults = &self.faults;
        let draw: f64 = self.random.random();
        let mut bound = 0.0;
        let kinds = [
            (faults.error_500, Fault::Status(StatusCode::INTERNAL_SERVER_ERROR), &mut self.injected.error_500),
            (faults.error_429, Fault::Status(StatusCode::TOO_MANY_REQUESTS), &mut self.injected.error_429),
            (faults.timeout, Fault::Late(Duration::from_millis(faults.timeout_ms)), &mut self.injected.timeout),
            (faults.slow, Fault::Slow(Duration::from_millis(faults.slow_ms)), &mut self.injected.slow),
        ];
        for (share, fault, count) in kinds {
            bound += share;
            if draw < bound {
                *count += 1;
                return Some(fault);
            }
        }
        None
    }
}

/// The middleware in front of push and multicast that injects the faults in force.
pub(super) async fn inject(State(emulator): State<Emulator>, request: Request, next: Next) -> Response {
    let fault = emulator.faults.lock().unwrap().draw();
    match fault {
        None => next.run(request).await,
        Some(Fault::Down) => error(StatusCode::SERVICE_UNAVAILABLE, "The emulator is down for a while", None),
        Some(Fault::Status(status)) if status == StatusCode::TOO_MANY_REQUESTS => {
            error(status, "The API rate limit has been exceeded. Try again later.", None)
        }
        Some(Fault::Status(status)) => error(status, "An error occurred in the emulator", None),
        Some(Fault::Late(delay)) => {
            let response = next.run(request).await;
            tokio::time::sleep(delay).await;
            response
        }
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
    }
}

/// The shared fault state of one emulator.
pub(super) type SharedFaults = Arc<Mutex<FaultState>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_faults_in_the_shares_asked_for() {
        let faults = Faults { error_500: 0.1, error_429: 0.1, timeout: 0.05, slow: 0.05, seed: 7, ..Faults::default() };
        let draws = |faults: &Faults| {
            let mut state = FaultState::new(faults.clone());
            let drawn: Vec<Option<Fault>> = (0..10_000).map(|_| state.draw()).collect();
            (drawn, state.injected)
        };
        let (first, injected) = draws(&faults);
        assert_eq!(first, draws(&faults).0, "the same seed repeats");
        assert_ne!(first, draws(&Faults { seed: 8, ..faults.clone() }).0, "another seed differs");
        // Each share within 1.5 points of what was asked, over 10,000 draws.
        for (count, share) in
            [(injected.error_500, 0.1), (injected.error_429, 0.1), (injected.timeout, 0.05), (injected.slow, 0.05)]
        {
            assert!((count as f64 / 10_000.0 - share).abs() < 0.015, "{injected:?}");
        }
        assert!(Faults { error_500: 0.6, timeout: 0.5, ..Faults::default() }.check().is_err());
        assert!(Faults { slow: -0.1, ..Faults::default() }.check().is_err());
    }
}

//! When a delivery that LINE did not accept is tried again: exponential backoff with
//! jitter for the answers worth retrying, a bounded number of attempts, none for the rest.

use std::time::Duration;

use crate::channel::SendOutcome;

/// How the outbox retries.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per delivery, the first included; a delivery still refused after the last
    /// one fails permanently rather than being retried for ever.
    pub max_attempts: u32,
    /// The delay after the first failed attempt, before jitter; it doubles per attempt.
    pub first_delay: Duration,
    /// No delay grows beyond this.
    pub max_delay: Duration,
    /// How long one pass over the outbox waits for retries to fall due before it leaves
    /// the rest to the next pass.
    pub linger: Duration,
}

impl Default for RetryPolicy {
    /// Rides out a blip within a pass (waits of 0.5–1, 1–2 and 2–4 seconds) and
    /// spreads the rest over later passes, giving up after 10 attempts.
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(600),
            linger: Duration::from_secs(5),
        }
    }
}

/// What becomes of a delivery after an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// LINE has it (accepted now, or earlier under the same retry key).
    Delivered,
    /// Try again with the same retry key after this delay.
    RetryAfter(Duration),
    /// Do not try again: LINE refused it as it is, or every attempt was used.
    GiveUp,
}

impl RetryPolicy {
    /// Decides what to do after attempt number `attempts` (1 for the first) ended in
    /// `outcome`. `jitter` is a random number in [0, 1).
    pub fn next(&self, outcome: &SendOutcome, attempts: u32, jitter: f64) -> Next {
        match outcome {
            SendOutcome::Accepted | SendOutcome::AlreadyAccepted => Next::Delivered,
            SendOutcome::Permanent(_) => Next::GiveUp,
            SendOutcome::Retryable(_) if attempts >= self.max_attempts => Next::GiveUp,
            SendOutcome::Retryable(_) => Next::RetryAfter(self.backoff(attempts, jitter)),
        }
    }

    /// The delay after `attempts` failed attempts: `first_delay · 2^(attempts-1)`, capped
    /// at `max_delay`, of which a random half is kept ("equal jitter"), so that deliveries
    /// refused together do not all come back at the same moment, and none comes back at once.
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let doubling = 2u32.saturating_pow(attempts.saturating_sub(1));
        let delay = self.first_delay.saturating_mul(doubling).min(self.max_delay);
        delay.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            linger: Duration::ZERO,
        }
    }

    /// Each case: (what, outcome, attempts so far, jitter, expected next step).
    fn check(cases: &[(&str, SendOutcome, u32, f64, Next)]) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(what, outcome, attempts, jitter, expected)| {
                let actual = policy().next(outcome, *attempts, *jitter);
                (actual != *expected).then(|| format!("{what}: expected {expected:?}, got {actual:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn retryable_answers_back_off_exponentially_with_jitter_until_the_attempts_run_out() {
        let retryable = || SendOutcome::Retryable("LINE answered 500".into());
        let seconds = Duration::from_secs_f64;
        check(&[
            ("accepted", SendOutcome::Accepted, 1, 0.0, Next::Delivered),
            ("409 after a retry", SendOutcome::AlreadyAccepted, 3, 0.0, Next::Delivered),
            ("400 is never retried", SendOutcome::Permanent("LINE answered 400".into()), 1, 0.0, Next::GiveUp),
            ("first failure, least jitter", retryable(), 1, 0.0, Next::RetryAfter(seconds(0.5))),
            ("first failure, most jitter", retryable(), 1, 0.999, Next::RetryAfter(seconds(0.9995))),
            ("third failure", retryable(), 3, 0.5, Next::RetryAfter(seconds(3.0))),
            ("the last attempt is not retried", retryable(), 5, 0.0, Next::GiveUp),
        ]);
    }

    #[test]
    fn the_delay_is_capped_and_never_overflows() {
        let policy = RetryPolicy { max_attempts: u32::MAX, ..policy() };
        assert_eq!(policy.backoff(7, 0.0), Duration::from_secs(30));
        assert_eq!(policy.backoff(1000, 0.0), Duration::from_secs(30));
        assert_eq!(
            policy.next(&SendOutcome::Retryable(String::new()), 1000, 0.0),
            Next::RetryAfter(Duration::from_secs(30))
        );
    }
}

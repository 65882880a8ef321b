//! Failed sign-ins, limited per login and address in memory. After `FREE_FAILURES` wrong
//! passwords for one login from one address, that pair must wait before its next try,
//! twice as long after each further failure, up to `LONGEST_WAIT`. Someone guessing from
//! another address does not make staff wait, so no one can keep staff out; an unknown
//! login is limited exactly like a known one, so the answers do not tell which logins
//! exist. Failures are audited in aggregate — the 1st, 10th, 100th … of an account (or
//! of all unknown logins) within an hour — so a flood cannot push real entries out of the
//! audit log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong passwords for one login from one address before any wait.
pub const FREE_FAILURES: u32 = 5;
/// The longest a login and address pair is made to wait.
pub const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);
/// A pair's failures are forgotten this long after its last one.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Pairs remembered at most; beyond, those not waiting are forgotten first.
const MOST_PAIRS: usize = 100_000;
/// The window over which failures are counted for the audit log.
const AUDIT_WINDOW: Duration = Duration::from_secs(3600);
/// Logins are remembered by at most this many bytes: a longer one is no account's.
const LONGEST_LOGIN: usize = 64;

/// How a refused pair is answered: wait this long.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("too many failed sign-ins for this login from this address; try again in {} seconds", .0.as_secs().max(1))]
pub struct MustWait(pub Duration);

/// What a failure means for the audit log: write one line saying `failures` happened to
/// `subject` within the hour.
#[derive(Debug, PartialEq)]
pub struct AuditDue {
    pub subject: String,
    pub failures: u64,
}

#[derive(Default)]
pub struct SignInThrottle {
    state: Mutex<ThrottleState>,
}

#[derive(Default)]
struct ThrottleState {
    pairs: HashMap<(String, IpAddr), Failures>,
    /// Per audit subject: when its window began and its failures since.
    audit: HashMap<String, (Instant, u64)>,
}

struct Failures {
    count: u32,
    last: Instant,
    wait_until: Option<Instant>,
}

fn key(login: &str, address: IpAddr) -> (String, IpAddr) {
    let mut end = login.len().min(LONGEST_LOGIN);
    while !login.is_char_boundary(end) {
        end -= 1;
    }
    (login[..end].to_owned(), address)
}

impl SignInThrottle {
    /// Whether `login` may be tried from `address` at `now`.
    pub fn check(&self, login: &str, address: IpAddr, now: Instant) -> Result<(), MustWait> {
        let state = self.state.lock().expect("sign-in throttle lock poisoned");
        match state.pairs.get(&key(login, address)).and_then(|failures| failures.wait_until) {
            Some(until) if until > now => Err(MustWait(until - now)),
            _ => Ok(()),
        }
    }

    /// Records a wrong password (or unknown login, or disabled account) for `login` from
    /// `address` at `now`; `subject` is what the audit log names (`user:LOGIN` for an
    /// account, one subject for all unknown logins). Returns the audit line due, if any.
    pub fn failed(&self, login: &str, address: IpAddr, subject: &str, now: Instant) -> Option<AuditDue> {
        let mut state = self.state.lock().expect("sign-in throttle lock poisoned");
        if state.pairs.len() >= MOST_PAIRS {
            state.pairs.retain(|_, failures| {
                now.duration_since(failures.last) < FORGET_AFTER && failures.wait_until.is_some_and(|until| until > now)
            });
            if state.pairs.len() >= MOST_PAIRS {
                state.pairs.clear();
            }
        }
        let failures =
            state.pairs.entry(key(login, address)).or_insert(Failures { count: 0, last: now, wait_until: None });
        if now.duration_since(failures.last) >= FORGET_AFTER {
            failures.count = 0;
        }
        failures.count += 1;
        failures.last = now;
        if failures.count >= FREE_FAILURES {
            let doublings = (failures.count - FREE_FAILURES).min(20);
            failures.wait_until = Some(now + Duration::from_secs(1 << doublings).min(LONGEST_WAIT));
        }
        if state.audit.len() >= MOST_PAIRS {
            state.audit.retain(|_, (began, _)| now.duration_since(*began) < AUDIT_WINDOW);
        }
        let (began, count) = state.audit.entry(subject.to_owned()).or_insert((now, 0));
        if now.duration_since(*began) >= AUDIT_WINDOW {
            (*began, *count) = (now, 0);
        }
        *count += 1;
        let count = *count;
        // The 1st, 10th, 100th …: a few lines however long the flood.
        is_power_of_ten(count).then(|| AuditDue { subject: subject.to_owned(), failures: count })
    }

    /// A right password: the pair starts again from nothing.
    pub fn succeeded(&self, login: &str, address: IpAddr) {
        self.state.lock().expect("sign-in throttle lock poisoned").pairs.remove(&key(login, address));
    }
}

fn is_power_of_ten(mut number: u64) -> bool {
    while number >= 10 && number.is_multiple_of(10) {
        number /= 10;
    }
    number == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAFF: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9));

    #[test]
    fn failures_from_one_address_make_that_pair_wait_longer_each_time_and_no_one_else() {
        let throttle = SignInThrottle::default();
        let start = Instant::now();
        for attempt in 0..FREE_FAILURES - 1 {
            throttle.failed("yamada", ATTACKER, "user:yamada", start);
            assert_eq!(throttle.check("yamada", ATTACKER, start), Ok(()), "failure {}", attempt + 1);
        }
        throttle.failed("yamada", ATTACKER, "user:yamada", start);
        assert_eq!(throttle.check("yamada", ATTACKER, start), Err(MustWait(Duration::from_secs(1))));
        assert_eq!(throttle.check("yamada", ATTACKER, start + Duration::from_secs(1)), Ok(()));
        throttle.failed("yamada", ATTACKER, "user:yamada", start + Duration::from_secs(1));
        assert_eq!(
            throttle.check("yamada", ATTACKER, start + Duration::from_secs(1)),
            Err(MustWait(Duration::from_secs(2))),
            "the wait doubles"
        );
        let mut now = start + Duration::from_secs(3);
        for _ in 0..30 {
            throttle.failed("yamada", ATTACKER, "user:yamada", now);
            now += Duration::from_secs(1);
        }
        assert_eq!(
            throttle.check("yamada", ATTACKER, now),
            Err(MustWait(LONGEST_WAIT - Duration::from_secs(1))),
            "never longer than the longest wait"
        );
        // The staff member at their own desk is not kept out, nor another login.
        assert_eq!(throttle.check("yamada", STAFF, now), Ok(()));
        assert_eq!(throttle.check("suzuki", ATTACKER, now), Ok(()));
        throttle.succeeded("yamada", STAFF);
        assert_eq!(throttle.check("yamada", STAFF, now), Ok(()));
    }

    #[test]
    fn an_unknown_login_is_limited_exactly_like_a_known_one() {
        let throttle = SignInThrottle::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            throttle.failed("yamada", ATTACKER, "user:yamada", now);
            throttle.failed("no-such-login", ATTACKER, "unknown login", now);
        }
        assert_eq!(throttle.check("yamada", ATTACKER, now), throttle.check("no-such-login", ATTACKER, now));
        assert!(throttle.check("no-such-login", ATTACKER, now).is_err());
    }

    #[test]
    fn failures_are_audited_at_the_first_the_tenth_and_the_hundredth_of_each_hour() {
        let throttle = SignInThrottle::default();
        let now = Instant::now();
        let audited: Vec<u64> = (0..1000u32)
            .filter_map(|attempt| throttle.failed(&format!("guess{attempt}"), ATTACKER, "unknown login", now))
            .map(|due| due.failures)
            .collect();
        assert_eq!(audited, [1, 10, 100, 1000]);
        let next_hour = throttle.failed("guess", ATTACKER, "unknown login", now + AUDIT_WINDOW);
        assert_eq!(next_hour, Some(AuditDue { subject: "unknown login".into(), failures: 1 }));
    }

    #[test]
    fn a_flood_of_pairs_is_kept_to_a_bounded_size() {
        let throttle = SignInThrottle::default();
        let now = Instant::now();
        for attempt in 0..(MOST_PAIRS as u32 + 10) {
            throttle.failed(&format!("guess{attempt}"), ATTACKER, "unknown login", now);
        }
        assert!(throttle.state.lock().unwrap().pairs.len() <= MOST_PAIRS);
        assert!(key(&"あ".repeat(100), ATTACKER).0.len() <= LONGEST_LOGIN);
    }
}

//! What keeps a flood of requests from stalling the service or filling its memory: the
//! web server's limits on connections and time (`ServerLimits`, from `[server]`), rates
//! per client address on sign-in and the public application form (`governor`), failed
//! sign-ins per login and address (`admin::throttle`), and the password hashing threads
//! (`oshirase_core::accounts::PasswordHashers`). All of it lives in memory: a restart forgets it,
//! which costs an attacker nothing they could not get by waiting.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};
pub use oshirase_core::config::ServerLimits;

use crate::admin::throttle::SignInThrottle;
use crate::web::AppState;
use oshirase_core::accounts::PasswordHashers;

/// Sign-in attempts per address: a burst of 10, then one every 6 seconds.
const SIGN_INS_PER_MINUTE: u32 = 10;
/// Requests to the application form per address: a burst of 30, then one every 2 seconds.
const FORM_REQUESTS_PER_MINUTE: u32 = 30;

/// The limits a running server keeps in memory, shared by every request.
pub struct RequestLimits {
    sign_in: PerAddress,
    form: PerAddress,
    pub failed_sign_ins: SignInThrottle,
    pub password_hashers: PasswordHashers,
    forwarded_for: bool,
}

impl RequestLimits {
    pub fn new(forwarded_for: bool) -> Arc<RequestLimits> {
        Arc::new(RequestLimits {
            sign_in: PerAddress::per_minute(SIGN_INS_PER_MINUTE),
            form: PerAddress::per_minute(FORM_REQUESTS_PER_MINUTE),
            failed_sign_ins: SignInThrottle::default(),
            password_hashers: PasswordHashers::for_this_machine(),
            forwarded_for,
        })
    }

    /// The client's address: the connection's peer, or behind a trusted proxy the last
    /// address of `X-Forwarded-For`. A request that came without a socket (a test calling
    /// the router) is the unspecified address.
    pub fn client_address(&self, request_headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
        let forwarded = || {
            let header = request_headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
            header.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        };
        self.forwarded_for
            .then(forwarded)
            .flatten()
            .or(peer.map(|peer| peer.ip()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }
}

/// The connection's peer, as `web::serve_connections` tags each request with it.
fn peer(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| *peer)
}

/// A rate per address, and when to forget the addresses that are back to their full
/// allowance: when there are twice as many as after the last time (and at least 10,000),
/// so that the forgetting, a pass over all of them, costs each request little however many
/// addresses a flood brings.
pub struct PerAddress {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    forget_above: AtomicUsize,
}

/// Addresses remembered before any are forgotten.
const ADDRESSES_BEFORE_FORGETTING: usize = 10_000;

impl PerAddress {
    fn per_minute(count: u32) -> PerAddress {
        let quota = Quota::per_minute(NonZeroU32::new(count).expect("a rate above zero"));
        PerAddress {
            limiter: governor::RateLimiter::keyed(quota),
            forget_above: AtomicUsize::new(ADDRESSES_BEFORE_FORGETTING),
        }
    }

    fn remember(&self) {
        if self.limiter.len() > self.forget_above.load(Ordering::Relaxed) {
            self.limiter.retain_recent();
            self.forget_above.store((self.limiter.len() * 2).max(ADDRESSES_BEFORE_FORGETTING), Ordering::Relaxed);
        }
    }
}

/// Refuses a request with 429 and `Retry-After` when its address went over its rate.
fn over_rate(rate: &PerAddress, address: IpAddr) -> Option<Response> {
    rate.remember();
    let Err(not_until) = rate.limiter.check_key(&address) else { return None };
    let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(serde_json::json!({ "error": "too many requests from this address; try again later" })),
    )
        .into_response();
    response.headers_mut().insert("retry-after", HeaderValue::from(wait.as_secs().max(1)));
    Some(response)
}

/// Middleware of `POST /admin/session`: sign-in attempts per address.
pub async fn limit_sign_ins(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let address = state.limits.client_address(request.headers(), peer(request.extensions()));
    if request.method() == axum::http::Method::POST
        && let Some(refused) = over_rate(&state.limits.sign_in, address)
    {
        return refused;
    }
    next.run(request).await
}

/// Middleware of the public pages `/apply/…` and `/r/…`: requests per address.
pub async fn limit_form(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let address = state.limits.client_address(request.headers(), peer(request.extensions()));
    if let Some(refused) = over_rate(&state.limits.form, address) {
        return refused;
    }
    next.run(request).await
}

/// The client's address for a handler (sign-in's failures are kept per address).
pub struct ClientAddress(pub IpAddr);

impl axum::extract::FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<ClientAddress, Self::Rejection> {
        Ok(ClientAddress(state.limits.client_address(&parts.headers, peer(&parts.extensions))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_address_counts_only_behind_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.7, 203.0.113.9"));
        let peer = Some(SocketAddr::from(([127, 0, 0, 1], 40000)));
        let direct = RequestLimits::new(false);
        assert_eq!(direct.client_address(&headers, peer), IpAddr::from([127, 0, 0, 1]), "anyone can send the header");
        let proxied = RequestLimits::new(true);
        assert_eq!(
            proxied.client_address(&headers, peer),
            IpAddr::from([203, 0, 113, 9]),
            "the proxy appends the address it saw"
        );
        assert_eq!(proxied.client_address(&HeaderMap::new(), peer), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(direct.client_address(&HeaderMap::new(), None), IpAddr::from([0, 0, 0, 0]));
    }

    #[test]
    fn an_address_over_its_rate_is_refused_with_when_to_come_back_and_others_are_not() {
        let limits = RequestLimits::new(false);
        let (flooding, other) = (IpAddr::from([203, 0, 113, 9]), IpAddr::from([198, 51, 100, 7]));
        let refusals =
            (0..SIGN_INS_PER_MINUTE + 5).filter_map(|_| over_rate(&limits.sign_in, flooding)).collect::<Vec<_>>();
        assert_eq!(refusals.len(), 5);
        assert_eq!(refusals[0].status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = refusals[0].headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=6).contains(&wait), "{wait}");
        assert!(over_rate(&limits.sign_in, other).is_none());
    }

    #[test]
    fn a_flood_of_addresses_is_forgotten_in_passes_that_grow_with_it() {
        let rate = PerAddress::per_minute(SIGN_INS_PER_MINUTE);
        for number in 0..(3 * ADDRESSES_BEFORE_FORGETTING as u32) {
            assert!(over_rate(&rate, IpAddr::from(number.to_be_bytes())).is_none());
        }
        // Each address used one of its 10, so none is back to full and none is forgotten;
        // the next pass waits until there are twice as many.
        assert_eq!(rate.limiter.len(), 3 * ADDRESSES_BEFORE_FORGETTING);
        assert!(rate.forget_above.load(Ordering::Relaxed) >= 2 * ADDRESSES_BEFORE_FORGETTING);
    }
}

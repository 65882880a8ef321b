//! The end-to-end tests, as one binary. Each runs the real `oshirase` (and, for the
//! demo, the synthetic city, the benchmarks and LINE, `oshirase-dev`) as processes, in a
//! temp directory of its own, on ports the system picks.

/// Running the binaries, a LINE emulator process and an SMTP server process.
mod harness;

/// The whole path: resident records → plugins → notices → LINE pushes; the demo; the
/// import and evaluation benchmarks.
mod whole_path;

/// Delivery under LINE's faults: every due notice is seen exactly once.
mod delivery;

/// `serve --config` as a city runs it: schedules, the send window, SIGTERM, limits, and
/// nothing personal to anyone without a session.
mod serve;

/// The residents' chat through the webhook of a running server, and e-mail; a card's
/// button and the rich menu, installed with `oshirase line rich-menu`.
mod chat;

/// The admin console in a real browser.
mod console;

/// A division writes its own program, following the guide from an empty folder; a
/// program written in Python passes the Rust version's cases.
mod writing;

/// Continuous backup with Litestream: a restored database sends nothing twice.
mod backup;

/// Many towns on one server: the template unit, each town's name in its logs.
mod towns;

/// Many towns past one machine: the Kubernetes manifests, checked against Kubernetes's schemas.
mod kubernetes;

//! The core of oshirase: everything between a municipal export and a message on a
//! resident's phone, with no web server and no wasmtime. The flow, module by module:
//! `import` → `snapshot` → `evaluate` (each program in the sandbox) → `outbox` (planned
//! notices become deliveries) → `channel` (LINE, e-mail); `chat` listens to residents,
//! `apply` and `postcards` register them; `registry` and `publish` govern the plugins;
//! `service` opens a data directory and runs a day. See ARCHITECTURE.md.

pub mod accounts;
pub mod apply;
pub mod cases;
pub mod channel;
pub mod chat;
pub mod conditions;
pub mod config;
pub mod database;
pub mod evaluate;
pub mod hashing;
pub mod import;
pub mod link_opens;
pub mod message;
pub mod metrics;
pub mod outbox;
pub mod postcards;
pub mod publish;
pub mod registry;
pub mod reports;
pub mod reservation;
pub mod restore;
pub mod retry;
pub mod schedule;
pub mod service;
pub mod settings;
pub mod snapshot;
pub mod survey;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod uptake;

pub use config::Config;
pub use oshirase_sdk::Day;

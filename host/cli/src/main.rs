//! The `oshirase` binary; the command line is in the library (`lib.rs`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    oshirase::main().await
}

//! The `oshirase-dev` binary; the command line is in the library (`lib.rs`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    oshirase_dev::main().await
}

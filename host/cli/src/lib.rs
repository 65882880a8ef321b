//! The `oshirase` command: parses the arguments and hands each command to its file in
//! `commands/`, which calls the product's crates. `main.rs` only calls `main` here, so
//! that the end-to-end tests can build the very same binary.

mod commands;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "oshirase",
    version,
    about = "Tells residents about the programs they can use, through LINE or e-mail"
)]
struct Arguments {
    #[command(flatten)]
    global: commands::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Imports a municipal export (residents.csv and the optional record files) as a new
    /// snapshot generation; any problem refuses the whole export and changes nothing.
    Import(commands::import::Arguments),
    /// Lists or re-activates snapshot generations.
    #[command(subcommand)]
    Snapshot(commands::snapshot::Command),
    /// Links a resident to a LINE user id and/or a confirmed e-mail address.
    Register(commands::register::Arguments),
    /// Evaluates every active program for a date, plans the notices and sends the due ones.
    Run(commands::run::Arguments),
    /// Works with program plugins.
    #[command(subcommand)]
    Plugin(commands::plugin::Command),
    /// Manages staff accounts and admin API tokens.
    #[command(subcommand)]
    Admin(commands::admin::Command),
    /// Serves the admin console and API and, with --config, runs the programs on their
    /// schedules and sends inside the send window, and answers the LINE webhook when the
    /// channel secret is set, until SIGTERM or Ctrl-C.
    Serve(commands::serve::Arguments),
    /// Sets up the city's LINE official account through the Messaging API.
    #[command(subcommand)]
    Line(commands::line::Command),
    /// Registration numbers that residents type into the LINE chat.
    #[command(subcommand)]
    Registration(commands::registration::Command),
    /// Writes every unprinted postcard (a registration number to a resident's address)
    /// into one new PDF, then marks them printed and forgets their numbers.
    Postcards(commands::postcards::Arguments),
    /// Shows or changes when programs run.
    #[command(subcommand)]
    Schedule(commands::schedule::Command),
    /// Reports on what the notices did.
    #[command(subcommand)]
    Report(commands::report::Command),
    /// Copies the live database to FILE with SQLite's online backup API, safe while serve
    /// runs and writes.
    Backup(commands::backup::Arguments),
}

/// Runs the command the process's arguments name.
pub async fn main() -> anyhow::Result<()> {
    let Arguments { global, command } = Arguments::parse();
    oshirase_server::init_logging(global.town.as_deref());
    match command {
        Command::Import(arguments) => commands::import::run(&global, arguments).await,
        Command::Snapshot(command) => commands::snapshot::run(&global, command).await,
        Command::Register(arguments) => commands::register::run(&global, arguments).await,
        Command::Run(arguments) => commands::run::run(&global, arguments).await,
        Command::Plugin(command) => commands::plugin::run(&global, command).await,
        Command::Admin(command) => commands::admin::run(&global, command).await,
        Command::Serve(arguments) => commands::serve::run(&global, arguments).await,
        Command::Registration(command) => commands::registration::run(&global, command).await,
        Command::Postcards(arguments) => commands::postcards::run(&global, arguments).await,
        Command::Line(command) => commands::line::run(command).await,
        Command::Schedule(command) => commands::schedule::run(&global, command).await,
        Command::Report(command) => commands::report::run(&global, command).await,
        Command::Backup(arguments) => commands::backup::run(&global, arguments).await,
    }
}

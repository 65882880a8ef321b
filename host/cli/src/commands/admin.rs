//! `oshirase admin …`: staff accounts for the console and admin API tokens for scripts,
//! made and taken back. The first administrator is made here.

use anyhow::Context;
use oshirase_core::accounts::{self, Role, TOKEN_VALID_DAYS};

use super::Global;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Creates a staff account for the admin console and prints its password, generated
    /// unless --password-stdin gives one. Division staff act on the programs given with
    /// --programs. The first administrator is made this way.
    CreateUser {
        #[arg(long)]
        login: String,
        /// The name the console shows, e.g. 健康支援課 山田.
        #[arg(long)]
        name: String,
        /// administrator, division or viewer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long, default_value = "")]
        division: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists the staff accounts: role, division, disabled or not, open sessions.
    Users,
    /// Disables an account: it cannot sign in and its sessions end at once.
    DisableUser { login: String },
    /// Enables a disabled account again.
    EnableUser { login: String },
    /// Gives an account a new password (generated unless --password-stdin) and ends its
    /// sessions.
    ResetPassword {
        login: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Ends every session of an account; it must sign in again.
    EndSessions { login: String },
    /// Prints a new admin API token for a division, which may act on the programs given
    /// with --programs (or on all with --admin). Only its hash is stored.
    CreateToken {
        #[arg(long)]
        division: String,
        #[arg(long)]
        admin: bool,
        /// How many days it works.
        #[arg(long, default_value_t = TOKEN_VALID_DAYS)]
        valid_days: i64,
    },
    /// Lists the admin API tokens (never the tokens themselves): id, division, scope,
    /// expiry, revoked or not.
    Tokens,
    /// Revokes a token at once.
    RevokeToken { id: i64 },
    /// Makes a token expire a number of days from now (0: now).
    ExpireToken {
        id: i64,
        #[arg(long, default_value_t = 0)]
        in_days: i64,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("{text:?} is not a role: administrator, division or viewer"))
}

/// A password from the first line of standard input, or a generated one (then `true`).
fn password_from(stdin: bool) -> anyhow::Result<(String, bool)> {
    if !stdin {
        return Ok((accounts::generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    accounts::check_password(&password)?;
    Ok((password, false))
}

pub async fn run(global: &Global, command: Command) -> anyhow::Result<()> {
    let database = global.database()?;
    let programs = global.programs.clone();
    let now = chrono::Utc::now().timestamp_millis();
    match command {
        Command::CreateUser { login, name, role, division, password_stdin } => {
            let (password, generated) = password_from(password_stdin)?;
            let hash = accounts::hash_password(&password)?;
            let user = accounts::NewUser { login: login.clone(), display_name: name, role, division, programs };
            database.write(move |connection| Ok(accounts::create_user(connection, &user, &hash, "cli")?)).await?;
            if generated { println!("created {login}; password: {password}") } else { println!("created {login}") }
        }
        Command::Users => {
            for account in database.read(move |connection| accounts::list_accounts(connection, now)).await? {
                let state = if account.disabled { "disabled" } else { "enabled" };
                println!(
                    "{}\t{}\t{}\t{}\t{state}\t{} sessions\t{}",
                    account.login,
                    account.role,
                    account.division,
                    account.programs.join(","),
                    account.sessions,
                    account.display_name
                );
            }
        }
        Command::DisableUser { login } => {
            database.write(move |connection| Ok(accounts::set_disabled(connection, &login, true, "cli")?)).await?
        }
        Command::EnableUser { login } => {
            database.write(move |connection| Ok(accounts::set_disabled(connection, &login, false, "cli")?)).await?
        }
        Command::ResetPassword { login, password_stdin } => {
            let (password, generated) = password_from(password_stdin)?;
            let hash = accounts::hash_password(&password)?;
            let changed = login.clone();
            database.write(move |connection| Ok(accounts::set_password(connection, &changed, &hash, "cli")?)).await?;
            if generated { println!("{login}: new password {password}") } else { println!("{login}: password changed") }
        }
        Command::EndSessions { login } => {
            let ended =
                database.write(move |connection| Ok(accounts::end_sessions(connection, &login, "cli")?)).await?;
            println!("{ended} sessions ended");
        }
        Command::CreateToken { division, admin, valid_days } => {
            let token = database
                .write(move |connection| {
                    accounts::create_token(connection, &division, &programs, admin, valid_days, "cli")
                })
                .await?;
            println!("{token}");
        }
        Command::Tokens => {
            for token in database.read(accounts::list_tokens).await? {
                let scope = if token.admin { "all programs".to_owned() } else { token.programs.join(",") };
                let state = match (&token.revoked_at, token.works) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, true) => format!("works until {}", token.expires_at),
                    (None, false) => format!("expired {}", token.expires_at),
                };
                println!("{}\t{}\t{scope}\t{state}", token.id, token.division);
            }
        }
        Command::RevokeToken { id } => {
            database.write(move |connection| Ok(accounts::revoke_token(connection, id, "cli")?)).await?
        }
        Command::ExpireToken { id, in_days } => {
            database.write(move |connection| Ok(accounts::set_token_expiry(connection, id, in_days, "cli")?)).await?
        }
    }
    Ok(())
}

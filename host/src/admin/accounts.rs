//! Staff accounts of the admin console: Argon2id passwords, sign-in with a lock-out after
//! repeated failures, and sessions known by a random cookie whose SHA-256 alone is
//! stored, each with the CSRF token that must come back with every change.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rusqlite::{Connection, OptionalExtension};

use super::{Caller, Role};
use crate::database::{audit, now_text};
use crate::registry::sha256_hex;

/// Failed sign-ins in a row after which an account is locked.
pub const FAILURES_BEFORE_LOCK: i64 = 5;
/// How long a locked account stays locked.
pub const LOCK_MILLISECONDS: i64 = 15 * 60 * 1000;
/// How long a session lasts from sign-in: one working day.
pub const SESSION_MILLISECONDS: i64 = 10 * 60 * 60 * 1000;
/// The shortest password accepted.
pub const MINIMUM_PASSWORD_CHARACTERS: usize = 12;

/// A staff account to create.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct NewUser {
    pub login: String,
    pub display_name: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub division: String,
    /// The program codes division staff may act on.
    #[serde(default)]
    pub programs: Vec<String>,
}

/// Why a sign-in was refused. The two kinds are told apart only in the audit log: the
/// person signing in hears the same answer for an unknown login and a wrong password.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SignInError {
    #[error("wrong login or password")]
    WrongLoginOrPassword,
    #[error("this account is locked after {FAILURES_BEFORE_LOCK} failed sign-ins; try again after {until}")]
    Locked { until: String },
}

/// A new session: the cookie's value and the CSRF token of its forms.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub cookie: String,
    pub csrf_token: String,
    pub caller: Caller,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A new random password of 20 letters and digits that cannot be mistaken for each
/// other, for an account made without one (about 113 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    // 256 is not a multiple of the alphabet's length; the bias is below 2 % per character.
    bytes.iter().map(|byte| ALPHABET[*byte as usize % ALPHABET.len()] as char).collect()
}

fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system's random number generator failed");
    let salt = SaltString::encode_b64(&salt).map_err(|error| anyhow::anyhow!("cannot encode a password salt: {error}"))?;
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt).map_err(|error| anyhow::anyhow!("cannot hash a password: {error}"))?.to_string())
}

fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// Creates a staff account after checking it; returns its id.
pub fn create_user(connection: &Connection, user: &NewUser, actor: &str) -> anyhow::Result<i64> {
    anyhow::ensure!(
        !user.login.is_empty() && user.login.chars().all(|character| character.is_ascii_alphanumeric() || "._-@".contains(character)),
        "the login {:?} must be letters, digits and . _ - @ only",
        user.login
    );
    anyhow::ensure!(!user.display_name.trim().is_empty(), "the display name is empty");
    anyhow::ensure!(
        user.password.chars().count() >= MINIMUM_PASSWORD_CHARACTERS,
        "the password must have at least {MINIMUM_PASSWORD_CHARACTERS} characters"
    );
    anyhow::ensure!(user.role != Role::Division || !user.programs.is_empty(), "division staff must be given the programs they may act on (--programs)");
    let exists: bool = connection.query_row("SELECT EXISTS (SELECT 1 FROM staff_users WHERE login = ?1)", [&user.login], |row| row.get(0))?;
    anyhow::ensure!(!exists, "the login {:?} is already taken", user.login);
    connection.execute(
        "INSERT INTO staff_users (login, display_name, password_hash, role, division, programs, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        (&user.login, user.display_name.trim(), hash_password(&user.password)?, user.role.as_str(), &user.division, user.programs.join(","), now_text()),
    )?;
    let id = connection.last_insert_rowid();
    audit(connection, actor, "create-user", &format!("user:{}", user.login), user.role.as_str())?;
    Ok(id)
}

/// Checks a login and password at `now` (milliseconds since the epoch) and opens a
/// session. Every failure is counted; the fifth in a row locks the account, and a locked
/// account refuses even the right password until the lock ends. An unknown login costs
/// the same hashing time as a known one, so timing does not tell which logins exist.
pub fn sign_in(connection: &Connection, login: &str, password: &str, now: i64) -> anyhow::Result<Result<NewSession, SignInError>> {
    let found = connection
        .query_row("SELECT id, password_hash, failed_attempts, locked_until FROM staff_users WHERE login = ?1", [login], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?, row.get::<_, Option<i64>>(3)?))
        })
        .optional()?;
    let Some((user_id, stored, failed_attempts, locked_until)) = found else {
        password_matches(password, &UNKNOWN_LOGIN_HASH);
        audit(connection, "anonymous", "sign-in-failed", "unknown login", "")?;
        return Ok(Err(SignInError::WrongLoginOrPassword));
    };
    if let Some(until) = locked_until.filter(|until| *until > now) {
        audit(connection, &format!("user:{login}"), "sign-in-refused", "locked", "")?;
        return Ok(Err(locked_until_error(until)));
    }
    if !password_matches(password, &stored) {
        let failures = failed_attempts + 1;
        let lock = (failures >= FAILURES_BEFORE_LOCK).then_some(now + LOCK_MILLISECONDS);
        connection.execute("UPDATE staff_users SET failed_attempts = ?2, locked_until = ?3 WHERE id = ?1", (user_id, if lock.is_some() { 0 } else { failures }, lock))?;
        audit(connection, &format!("user:{login}"), "sign-in-failed", "wrong password", &format!("failure {failures}"))?;
        return Ok(Err(match lock {
            Some(until) => locked_until_error(until),
            None => SignInError::WrongLoginOrPassword,
        }));
    }
    connection.execute("UPDATE staff_users SET failed_attempts = 0, locked_until = NULL WHERE id = ?1", [user_id])?;
    let (cookie, csrf_token) = (random_token(), random_token());
    connection.execute(
        "INSERT INTO staff_sessions (token_sha256, user_id, csrf_token, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        (sha256_hex(cookie.as_bytes()), user_id, &csrf_token, now, now + SESSION_MILLISECONDS),
    )?;
    audit(connection, &format!("user:{login}"), "sign-in", "console", "")?;
    let (caller, _) = session(connection, &cookie, now)?.expect("the session was just stored");
    Ok(Ok(NewSession { cookie, csrf_token, caller }))
}

/// The refusal of an account locked until `until` (milliseconds since the epoch).
fn locked_until_error(until: i64) -> SignInError {
    SignInError::Locked { until: crate::schedule::format_japan(chrono::DateTime::from_timestamp_millis(until).unwrap_or_default()) }
}

/// A hash of a password nobody knows, checked for unknown logins.
static UNKNOWN_LOGIN_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash_password(&random_token()).expect("hashing a random password"));

/// The caller a session cookie belongs to at `now`, with the session's CSRF token.
pub fn session(connection: &Connection, cookie: &str, now: i64) -> anyhow::Result<Option<(Caller, String)>> {
    Ok(connection
        .query_row(
            "SELECT u.login, u.display_name, u.role, u.division, u.programs, s.csrf_token FROM staff_sessions s JOIN staff_users u ON u.id = s.user_id
             WHERE s.token_sha256 = ?1 AND s.expires_at > ?2",
            (sha256_hex(cookie.as_bytes()), now),
            |row| {
                let role: String = row.get(2)?;
                let programs: String = row.get(4)?;
                let caller = Caller {
                    actor: format!("user:{}", row.get::<_, String>(0)?),
                    name: row.get(1)?,
                    division: row.get(3)?,
                    programs: programs.split(',').filter(|code| !code.is_empty()).map(str::to_owned).collect(),
                    role: Role::parse(&role).unwrap_or(Role::Viewer),
                };
                Ok((caller, row.get(5)?))
            },
        )
        .optional()?)
}

/// Ends a session; an unknown cookie is no error.
pub fn sign_out(connection: &Connection, cookie: &str) -> anyhow::Result<()> {
    connection.execute("DELETE FROM staff_sessions WHERE token_sha256 = ?1", [sha256_hex(cookie.as_bytes())])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> Connection {
        let directory = tempfile::tempdir().unwrap();
        let connection = crate::database::open(&directory.path().join("test.db")).unwrap();
        std::mem::forget(directory);
        connection
    }

    fn user(login: &str, password: &str, role: Role, programs: &[&str]) -> NewUser {
        NewUser { login: login.into(), display_name: "試験 太郎".into(), password: password.into(), role, division: "健康支援課".into(), programs: programs.iter().map(|code| code.to_string()).collect() }
    }

    #[test]
    fn accounts_are_checked_before_they_are_created() {
        let connection = database();
        let check = |new_user: NewUser, expected: &str| {
            let outcome = create_user(&connection, &new_user, "test").map(|_| String::new()).unwrap_or_else(|error| error.to_string());
            assert!(outcome.contains(expected), "{:?}: expected {expected:?}, got {outcome:?}", new_user.login);
        };
        check(user("kenko", "correct horse battery", Role::Division, &["vaccine-mr"]), "");
        check(user("kenko", "correct horse battery", Role::Viewer, &[]), "already taken");
        check(user("ken ko", "correct horse battery", Role::Viewer, &[]), "must be letters");
        check(user("short", "short", Role::Viewer, &[]), "at least 12 characters");
        check(user("nothing", "correct horse battery", Role::Division, &[]), "must be given the programs");
        let stored: String = connection.query_row("SELECT password_hash FROM staff_users WHERE login = 'kenko'", [], |row| row.get(0)).unwrap();
        assert!(stored.starts_with("$argon2id$") && !stored.contains("correct horse"), "only an Argon2id hash is stored: {stored}");
    }

    #[test]
    fn five_wrong_passwords_lock_the_account_even_against_the_right_one_until_the_lock_ends() {
        let connection = database();
        create_user(&connection, &user("kenko", "correct horse battery", Role::Administrator, &[]), "test").unwrap();
        let now = 1_800_000_000_000;
        assert_eq!(sign_in(&connection, "nobody", "correct horse battery", now).unwrap().unwrap_err(), SignInError::WrongLoginOrPassword);
        for attempt in 1..FAILURES_BEFORE_LOCK {
            assert_eq!(sign_in(&connection, "kenko", "wrong", now + attempt).unwrap().unwrap_err(), SignInError::WrongLoginOrPassword);
        }
        assert!(matches!(sign_in(&connection, "kenko", "wrong", now + 10).unwrap(), Err(SignInError::Locked { .. })));
        assert!(matches!(sign_in(&connection, "kenko", "correct horse battery", now + 20).unwrap(), Err(SignInError::Locked { .. })), "the right password is refused while locked");
        let opened = sign_in(&connection, "kenko", "correct horse battery", now + 10 + LOCK_MILLISECONDS).unwrap().expect("the lock has ended");
        assert_eq!(opened.caller.role, Role::Administrator);
        let (caller, csrf) = session(&connection, &opened.cookie, now + LOCK_MILLISECONDS + 11).unwrap().expect("the session is known by its cookie");
        assert_eq!((caller.actor.as_str(), csrf), ("user:kenko", opened.csrf_token.clone()));
        assert!(session(&connection, &opened.cookie, now + 10 + LOCK_MILLISECONDS + SESSION_MILLISECONDS).unwrap().is_none(), "a session ends");
        sign_out(&connection, &opened.cookie).unwrap();
        assert!(session(&connection, &opened.cookie, now + LOCK_MILLISECONDS + 12).unwrap().is_none(), "signing out ends the session");
    }
}

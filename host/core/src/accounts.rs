//! Who may act: staff accounts of the admin console (Argon2id passwords hashed on threads
//! of their own; sessions known by a random cookie whose SHA-256 alone is stored, each with
//! the CSRF token that must come back with every change), division tokens for scripts,
//! the roles and what each may do, and the administrator's means to take access back:
//! disable an account, reset its password, end its sessions, revoke or expire a token.

use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use argon2::Argon2;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use rusqlite::{Connection, OptionalExtension};

use crate::database::audit;
use crate::hashing::sha256_hex;
use crate::time::now_text;

/// How long a session lasts from sign-in: one working day.
pub const SESSION_MILLISECONDS: i64 = 10 * 60 * 60 * 1000;
/// The shortest password accepted.
pub const MINIMUM_PASSWORD_CHARACTERS: usize = 12;

/// A staff account to create; its password is hashed apart (`PasswordHashers::hash` or
/// `hash_password`), never while the database is held.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct NewUser {
    pub login: String,
    pub display_name: String,
    pub role: Role,
    #[serde(default)]
    pub division: String,
    /// The program codes division staff may act on.
    #[serde(default)]
    pub programs: Vec<String>,
}

/// Why an account could not be changed; the admin API answers 404 and 422.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no staff account has the login {0:?}")]
    UnknownLogin(String),
    #[error("no admin token has the id {0}")]
    UnknownToken(i64),
    #[error("{0}")]
    Invalid(String),
    /// Something failed on our side, not in the request.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for AccountError {
    fn from(error: rusqlite::Error) -> AccountError {
        AccountError::Failed(error.into())
    }
}

/// An account as the administrator sees it: never its hash.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StaffAccount {
    pub login: String,
    pub display_name: String,
    pub role: String,
    pub division: String,
    pub programs: Vec<String>,
    pub disabled: bool,
    /// Sessions not yet ended or expired.
    pub sessions: i64,
    pub created_at: String,
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

/// Refuses a password too short to keep.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    if password.chars().count() < MINIMUM_PASSWORD_CHARACTERS {
        return Err(AccountError::Invalid(format!(
            "the password must have at least {MINIMUM_PASSWORD_CHARACTERS} characters"
        )));
    }
    Ok(())
}

/// The Argon2id PHC string of `password` with a new salt. Slow and memory-hungry on
/// purpose (19 MiB): the server calls it through `PasswordHashers`; commands call it
/// directly.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system's random number generator failed");
    let salt_text =
        SaltString::encode_b64(&salt).map_err(|error| anyhow::anyhow!("cannot encode a password salt: {error}"))?;
    let argon2 = Argon2::default();
    let mut output = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&argon2, password.as_bytes(), &salt, &mut output)
        .map_err(|error| anyhow::anyhow!("cannot hash a password: {error}"))?;
    let hash = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(argon2.params())
            .map_err(|error| anyhow::anyhow!("cannot write the password's parameters: {error}"))?,
        salt: Some(salt_text.as_salt()),
        hash: Some(Output::new(&output).map_err(|error| anyhow::anyhow!("cannot keep a password hash: {error}"))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `stored`, compared in constant time.
fn password_matches(password: &str, stored: &str) -> bool {
    let matches = || -> Option<bool> {
        let hash = PasswordHash::new(stored).ok()?;
        let algorithm = argon2::Algorithm::try_from(hash.algorithm).ok()?;
        let version = hash.version.map_or(Ok(argon2::Version::default()), argon2::Version::try_from).ok()?;
        let params = argon2::Params::try_from(&hash).ok()?;
        let mut salt = [0u8; 64];
        let salt = hash.salt?.decode_b64(&mut salt).ok()?;
        let expected = hash.hash?;
        let mut output = vec![0u8; expected.len()];
        argon2_into(&Argon2::new(algorithm, version, params), password.as_bytes(), salt, &mut output).ok()?;
        Some(Output::new(&output).ok()? == expected)
    };
    matches().unwrap_or(false)
}

thread_local! {
    /// The memory Argon2 works in, kept by each thread that hashes and reused. Allocated
    /// and freed for every hash, 19 MiB at a time, it stayed in the allocator's arena of
    /// whichever thread hashed, a few arenas' worth per process (hundreds of MiB).
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Argon2 of `password` and `salt` into `output`, in this thread's reused memory.
fn argon2_into(argon2: &Argon2, password: &[u8], salt: &[u8], output: &mut [u8]) -> argon2::Result<()> {
    ARGON2_MEMORY.with_borrow_mut(|memory| {
        let blocks = argon2.params().block_count();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, output, &mut memory[..blocks])
    })
}

/// A hash of a password nobody knows, checked for unknown logins and disabled accounts,
/// so that they cost the same time as a known login.
static UNKNOWN_LOGIN_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_token()).expect("hashing a random password"));

/// The server's password hashing: a few threads of its own and a short queue. Each hash
/// takes 19 MiB for some 50 ms, so a flood of sign-ins run on tokio's blocking pool would
/// hash on hundreds of threads at once, each keeping its memory; here at most `threads`
/// hashes run. A sign-in first reserves a place (`reserve`), before it even looks the
/// login up: one that finds every place taken is told at once to try again, having cost
/// nothing.
#[derive(Clone)]
pub struct PasswordHashers {
    jobs: SyncSender<HashJob>,
    places: Arc<tokio::sync::Semaphore>,
}

type HashJob = Box<dyn FnOnce() + Send>;

/// All hashing threads are busy and the queue is full.
#[derive(Debug, thiserror::Error)]
#[error("too many sign-ins at once; try again in a few seconds")]
pub struct HashersBusy;

/// A place reserved for one hash on the hashing threads.
pub struct HashPlace {
    jobs: SyncSender<HashJob>,
    permit: tokio::sync::OwnedSemaphorePermit,
}

impl PasswordHashers {
    /// Starts `threads` hashing threads with room for `queue` waiting hashes; the threads
    /// end when the last clone is dropped.
    pub fn start(threads: usize, queue: usize) -> PasswordHashers {
        let threads = threads.max(1);
        let (jobs, waiting) = std::sync::mpsc::sync_channel::<HashJob>(threads + queue);
        let waiting = Arc::new(Mutex::new(waiting));
        for number in 0..threads {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name(format!("password-hashing-{number}"))
                .spawn(move || hash_jobs(&waiting))
                .expect("cannot start a password hashing thread");
        }
        PasswordHashers { jobs, places: Arc::new(tokio::sync::Semaphore::new(threads + queue)) }
    }

    /// Half the machine's cores (at least one), so that a flood of sign-ins leaves the
    /// other half to everything else, and a queue of 16: some 20 sign-ins a second on a
    /// core, more than a city's staff ever need.
    pub fn for_this_machine() -> PasswordHashers {
        PasswordHashers::start((std::thread::available_parallelism().map_or(2, usize::from) / 2).max(1), 16)
    }

    /// A place for one hash, or `HashersBusy` at once when every place is taken.
    pub fn reserve(&self) -> Result<HashPlace, HashersBusy> {
        let permit = self.places.clone().try_acquire_owned().map_err(|_| HashersBusy)?;
        Ok(HashPlace { jobs: self.jobs.clone(), permit })
    }

    /// `hash_password` on a hashing thread: `HashersBusy` when every place is taken, or
    /// the hash (or why it failed).
    pub async fn hash(&self, password: String) -> Result<anyhow::Result<String>, HashersBusy> {
        self.reserve()?.run(move || hash_password(&password)).await
    }
}

impl HashPlace {
    /// Runs `work` on a hashing thread; the place is given back when it has run, even if
    /// whoever asked stopped waiting.
    async fn run<T: Send + 'static>(self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashersBusy> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let permit = self.permit;
        let job: HashJob = Box::new(move || {
            let done = work();
            // Given back before the answer, so whoever hears it finds the place free.
            drop(permit);
            let _ = answer.send(done);
        });
        // The channel has room for every place, so it is full only if the threads died.
        self.jobs.try_send(job).map_err(|_| HashersBusy)?;
        answered.await.map_err(|_| HashersBusy)
    }

    /// Whether `password` matches `stored`; `None` checks against a hash nobody knows.
    pub async fn verify(self, password: String, stored: Option<String>) -> Result<bool, HashersBusy> {
        self.run(move || {
            let matched = password_matches(&password, stored.as_deref().unwrap_or(&UNKNOWN_LOGIN_HASH));
            matched && stored.is_some()
        })
        .await
    }
}

fn hash_jobs(waiting: &Mutex<Receiver<HashJob>>) {
    // The lowest scheduling priority for this thread alone (Linux keeps a nice value per
    // thread): a flood of sign-ins then takes only the CPU that requests leave unused,
    // and a sign-in waits rather than the webhook or the console.
    // SAFETY: setpriority on the calling thread's own id changes nothing else.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
    }
    loop {
        // The lock is held only to take the next job, never while hashing.
        let job = match waiting.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Creates a staff account after checking it, with the hash of its checked password;
/// returns its id.
pub fn create_user(
    connection: &Connection,
    user: &NewUser,
    password_hash: &str,
    actor: &str,
) -> Result<i64, AccountError> {
    let invalid = AccountError::Invalid;
    if user.login.is_empty()
        || user.login.len() > 64
        || !user.login.chars().all(|character| character.is_ascii_alphanumeric() || "._-@".contains(character))
    {
        return Err(invalid(format!("the login {:?} must be 1 to 64 letters, digits and . _ - @ only", user.login)));
    }
    if user.display_name.trim().is_empty() {
        return Err(invalid("the display name is empty".into()));
    }
    if user.role == Role::Division && user.programs.is_empty() {
        return Err(invalid("division staff must be given the programs they may act on (--programs)".into()));
    }
    let exists: bool =
        connection
            .query_row("SELECT EXISTS (SELECT 1 FROM staff_users WHERE login = ?1)", [&user.login], |row| row.get(0))?;
    if exists {
        return Err(invalid(format!("the login {:?} is already taken", user.login)));
    }
    connection.execute(
        "INSERT INTO staff_users (login, display_name, password_hash, role, division, programs, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        (
            &user.login,
            user.display_name.trim(),
            password_hash,
            user.role.as_str(),
            &user.division,
            user.programs.join(","),
            now_text(),
        ),
    )?;
    let id = connection.last_insert_rowid();
    audit(connection, actor, "create-user", &format!("user:{}", user.login), user.role.as_str())?;
    Ok(id)
}

/// What sign-in needs to know of a login: the account's id and stored hash, if it exists
/// and is not disabled.
pub fn find_for_sign_in(connection: &Connection, login: &str) -> anyhow::Result<Option<(i64, String)>> {
    Ok(connection
        .query_row(
            "SELECT id, password_hash FROM staff_users WHERE login = ?1 AND disabled_at IS NULL",
            [login],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

/// Opens a session for the account `user_id` at `now` (milliseconds since the epoch),
/// once its password was checked, and audits the sign-in.
pub fn open_session(connection: &Connection, user_id: i64, now: i64) -> anyhow::Result<NewSession> {
    let (cookie, csrf_token) = (random_token(), random_token());
    connection.execute(
        "INSERT INTO staff_sessions (token_sha256, user_id, csrf_token, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (sha256_hex(cookie.as_bytes()), user_id, &csrf_token, now, now + SESSION_MILLISECONDS),
    )?;
    let (caller, _) = session(connection, &cookie, now)?
        .ok_or_else(|| anyhow::anyhow!("the session just stored for account {user_id} is not found"))?;
    audit(connection, &caller.actor, "sign-in", "console", "")?;
    Ok(NewSession { cookie, csrf_token, caller })
}

/// The caller a session cookie belongs to at `now`, with the session's CSRF token; none
/// once the session expired or ended, or the account was disabled.
pub fn session(connection: &Connection, cookie: &str, now: i64) -> anyhow::Result<Option<(Caller, String)>> {
    Ok(connection
        .query_row(
            "SELECT u.login, u.display_name, u.role, u.division, u.programs, s.csrf_token FROM staff_sessions s
             JOIN staff_users u ON u.id = s.user_id
             WHERE s.token_sha256 = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL",
            (sha256_hex(cookie.as_bytes()), now),
            |row| {
                let role: String = row.get(2)?;
                let programs: String = row.get(4)?;
                let caller = Caller {
                    actor: format!("user:{}", row.get::<_, String>(0)?),
                    name: row.get(1)?,
                    division: row.get(3)?,
                    programs: program_codes(&programs),
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

/// Every staff account, by login, with how many sessions it has open at `now`.
pub fn list_accounts(connection: &Connection, now: i64) -> anyhow::Result<Vec<StaffAccount>> {
    let mut statement = connection.prepare(
        "SELECT u.login, u.display_name, u.role, u.division, u.programs, u.disabled_at IS NOT NULL, u.created_at,
                (SELECT count(*) FROM staff_sessions s WHERE s.user_id = u.id AND s.expires_at > ?1)
         FROM staff_users u ORDER BY u.login",
    )?;
    let accounts = statement
        .query_map([now], |row| {
            let programs: String = row.get(4)?;
            Ok(StaffAccount {
                login: row.get(0)?,
                display_name: row.get(1)?,
                role: row.get(2)?,
                division: row.get(3)?,
                programs: program_codes(&programs),
                disabled: row.get(5)?,
                created_at: row.get(6)?,
                sessions: row.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(accounts)
}

fn account_id(connection: &Connection, login: &str) -> Result<i64, AccountError> {
    connection
        .query_row("SELECT id FROM staff_users WHERE login = ?1", [login], |row| row.get(0))
        .optional()?
        .ok_or_else(|| AccountError::UnknownLogin(login.to_owned()))
}

/// Ends every session of `login`; returns how many there were. Audited.
pub fn end_sessions(connection: &Connection, login: &str, actor: &str) -> Result<usize, AccountError> {
    let id = account_id(connection, login)?;
    let ended = connection.execute("DELETE FROM staff_sessions WHERE user_id = ?1", [id])?;
    audit(connection, actor, "end-sessions", &format!("user:{login}"), &format!("{ended} sessions"))?;
    Ok(ended)
}

/// Disables `login` (it cannot sign in, and its sessions end at once) or enables it
/// again. Audited. An administrator cannot disable their own account, so a city cannot
/// lock itself out by a slip.
pub fn set_disabled(connection: &mut Connection, login: &str, disabled: bool, actor: &str) -> Result<(), AccountError> {
    if disabled && actor == format!("user:{login}") {
        return Err(AccountError::Invalid("you cannot disable your own account".into()));
    }
    let transaction = connection.transaction()?;
    let id = account_id(&transaction, login)?;
    transaction.execute(
        "UPDATE staff_users SET disabled_at = CASE WHEN ?2 THEN coalesce(disabled_at, ?3) END WHERE id = ?1",
        (id, disabled, now_text()),
    )?;
    if disabled {
        transaction.execute("DELETE FROM staff_sessions WHERE user_id = ?1", [id])?;
    }
    audit(&transaction, actor, if disabled { "disable-user" } else { "enable-user" }, &format!("user:{login}"), "")?;
    transaction.commit()?;
    Ok(())
}

/// Gives `login` the password whose hash is `password_hash` and ends its sessions, so
/// whoever knew the old one is signed out. Audited.
pub fn set_password(
    connection: &mut Connection,
    login: &str,
    password_hash: &str,
    actor: &str,
) -> Result<(), AccountError> {
    let transaction = connection.transaction()?;
    let id = account_id(&transaction, login)?;
    transaction.execute("UPDATE staff_users SET password_hash = ?2 WHERE id = ?1", (id, password_hash))?;
    let ended = transaction.execute("DELETE FROM staff_sessions WHERE user_id = ?1", [id])?;
    audit(&transaction, actor, "reset-password", &format!("user:{login}"), &format!("{ended} sessions ended"))?;
    transaction.commit()?;
    Ok(())
}

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including snapshots, applications, broadcasts and accounts.
    Administrator,
    /// Only the programs named for them.
    Division,
    /// Reads everything a division may read; changes nothing.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Division => "division",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Administrator, Role::Division, Role::Viewer].into_iter().find(|role| role.as_str() == text)
    }
}

/// Who called, as their token or session says.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Caller {
    /// The actor the audit log names: `user:LOGIN`, `division:NAME` or `admin:NAME`.
    pub actor: String,
    pub name: String,
    pub division: String,
    pub programs: Vec<String>,
    pub role: Role,
}

impl Caller {
    /// Only the administrator may act on what belongs to no division, such as snapshots.
    pub fn must_be_administrator(&self) -> Result<(), AuthError> {
        if self.role == Role::Administrator {
            Ok(())
        } else {
            Err(AuthError::AdministratorOnly { actor: self.actor.clone() })
        }
    }

    pub fn may_act_on(&self, program: &str) -> Result<(), AuthError> {
        match self.role {
            Role::Administrator => Ok(()),
            Role::Division if self.programs.iter().any(|owned| owned == program) => Ok(()),
            _ => Err(AuthError::Forbidden { actor: self.actor.clone(), program: program.to_owned() }),
        }
    }

    /// Whether the caller may see who a program would reach, by name.
    pub fn may_see_names(&self) -> bool {
        self.role == Role::Administrator
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing or unknown admin token (send Authorization: Bearer TOKEN) or session (sign in)")]
    Unauthorized,
    #[error("{actor} may not act on program {program:?}")]
    Forbidden { actor: String, program: String },
    #[error("{actor} may not do this: it is for the administrator")]
    AdministratorOnly { actor: String },
    #[error("{actor} is a viewer and may only read")]
    ReadOnly { actor: String },
    #[error("missing or wrong CSRF token (send the X-CSRF-Token header of your session)")]
    Csrf,
}

/// The program codes of a stored comma-separated list (`staff_users.programs`,
/// `admin_tokens.programs`).
pub fn program_codes(stored: &str) -> Vec<String> {
    stored.split(',').filter(|code| !code.is_empty()).map(str::to_owned).collect()
}

/// How long a token works when made without saying: a year.
pub const TOKEN_VALID_DAYS: i64 = 365;

/// Creates a token for `division` (owning `programs`, or everything when `admin`) that
/// works for `valid_days`, and returns it; only its hash is stored, so it is shown this
/// once.
pub fn create_token(
    connection: &Connection,
    division: &str,
    programs: &[String],
    admin: bool,
    valid_days: i64,
    actor: &str,
) -> anyhow::Result<String> {
    anyhow::ensure!(!division.trim().is_empty(), "the division name is empty");
    anyhow::ensure!(
        admin || !programs.is_empty(),
        "a division token must name the programs it may publish (or be --admin)"
    );
    anyhow::ensure!((1..=3650).contains(&valid_days), "a token must work for 1 to 3650 days, not {valid_days}");
    let token = format!("osh_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    connection.execute(
        "INSERT INTO admin_tokens (token_sha256, division, programs, admin, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (
            sha256_hex(token.as_bytes()),
            division,
            programs.join(","),
            admin,
            now_text(),
            crate::time::text_in_days(valid_days),
        ),
    )?;
    let scope = if admin { "all programs".to_owned() } else { programs.join(",") };
    audit(
        connection,
        actor,
        "create-token",
        &format!("token:{}", connection.last_insert_rowid()),
        &format!("{division}: {scope}, {valid_days} days"),
    )?;
    Ok(token)
}

/// The caller a token belongs to at `now` (`now_text`), if it is known, not revoked and
/// not expired.
pub fn authenticate(connection: &Connection, token: &str, now: &str) -> anyhow::Result<Option<Caller>> {
    let caller = connection
        .query_row(
            "SELECT division, programs, admin FROM admin_tokens
             WHERE token_sha256 = ?1 AND revoked_at IS NULL AND expires_at > ?2",
            (sha256_hex(token.as_bytes()), now),
            |row| {
                let programs: String = row.get(1)?;
                let (division, admin): (String, bool) = (row.get(0)?, row.get(2)?);
                Ok(Caller {
                    actor: if admin { format!("admin:{division}") } else { format!("division:{division}") },
                    name: division.clone(),
                    division,
                    programs: program_codes(&programs),
                    role: if admin { Role::Administrator } else { Role::Division },
                })
            },
        )
        .optional()?;
    Ok(caller)
}

/// A token as the administrator sees it: never the token or its hash.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TokenListing {
    pub id: i64,
    pub division: String,
    pub programs: Vec<String>,
    pub admin: bool,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    /// Neither revoked nor expired.
    pub works: bool,
}

/// Every token, newest first.
pub fn list_tokens(connection: &Connection) -> anyhow::Result<Vec<TokenListing>> {
    let mut statement = connection.prepare(
        "SELECT id, division, programs, admin, created_at, expires_at, revoked_at, revoked_at IS NULL
         AND expires_at > ?1 FROM admin_tokens ORDER BY id DESC",
    )?;
    let tokens = statement
        .query_map([now_text()], |row| {
            let programs: String = row.get(2)?;
            Ok(TokenListing {
                id: row.get(0)?,
                division: row.get(1)?,
                programs: program_codes(&programs),
                admin: row.get(3)?,
                created_at: row.get(4)?,
                expires_at: row.get(5)?,
                revoked_at: row.get(6)?,
                works: row.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(tokens)
}

fn token_exists(connection: &Connection, id: i64) -> Result<(), AccountError> {
    let exists: bool =
        connection.query_row("SELECT EXISTS (SELECT 1 FROM admin_tokens WHERE id = ?1)", [id], |row| row.get(0))?;
    if exists { Ok(()) } else { Err(AccountError::UnknownToken(id)) }
}

/// Revokes token `id` at once; revoking it again changes nothing. Audited.
pub fn revoke_token(connection: &Connection, id: i64, actor: &str) -> Result<(), AccountError> {
    token_exists(connection, id)?;
    connection
        .execute("UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1", (id, now_text()))?;
    audit(connection, actor, "revoke-token", &format!("token:{id}"), "")?;
    Ok(())
}

/// Makes token `id` expire `days` from now (0: now). Audited.
pub fn set_token_expiry(connection: &Connection, id: i64, days: i64, actor: &str) -> Result<(), AccountError> {
    if !(0..=3650).contains(&days) {
        return Err(AccountError::Invalid(format!("a token's expiry must be 0 to 3650 days from now, not {days}")));
    }
    token_exists(connection, id)?;
    let expires_at = crate::time::text_in_days(days);
    connection.execute("UPDATE admin_tokens SET expires_at = ?2 WHERE id = ?1", (id, &expires_at))?;
    audit(connection, actor, "expire-token", &format!("token:{id}"), &expires_at)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, Connection) {
        let directory = tempfile::tempdir().unwrap();
        let connection = crate::database::open(&directory.path().join("test.db")).unwrap();
        (directory, connection)
    }

    fn user(login: &str, role: Role, programs: &[&str]) -> NewUser {
        NewUser {
            login: login.into(),
            display_name: "試験 太郎".into(),
            role,
            division: "健康支援課".into(),
            programs: programs.iter().map(|code| code.to_string()).collect(),
        }
    }

    /// A cheap stand-in hash: these tests are about accounts, not Argon2.
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";

    #[test]
    fn accounts_are_checked_before_they_are_created() {
        let (_directory, connection) = database();
        let check = |new_user: NewUser, expected: &str| {
            let outcome = create_user(&connection, &new_user, HASH, "test")
                .map(|_| String::new())
                .unwrap_or_else(|error| error.to_string());
            assert!(outcome.contains(expected), "{:?}: expected {expected:?}, got {outcome:?}", new_user.login);
        };
        check(user("kenko", Role::Division, &["vaccine-mr"]), "");
        check(user("kenko", Role::Viewer, &[]), "already taken");
        check(user("ken ko", Role::Viewer, &[]), "must be 1 to 64 letters");
        check(user(&"k".repeat(65), Role::Viewer, &[]), "must be 1 to 64 letters");
        check(user("nothing", Role::Division, &[]), "must be given the programs");
        assert!(matches!(check_password("short"), Err(AccountError::Invalid(message))
                if message == "the password must have at least 12 characters"));
        assert!(check_password("correct horse battery").is_ok());
    }

    #[test]
    fn only_an_argon2id_hash_is_stored_and_only_the_right_password_matches_it() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let stored = hash_password("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$") && !stored.contains("correct horse"), "{stored}");
        assert!(password_matches("correct horse battery", &stored));
        assert!(!password_matches("correct horse batterY", &stored));
        assert!(!password_matches("correct horse battery", "not a hash"));
        // The same hashes as the crate's own hasher and verifier, both ways.
        let parsed = PasswordHash::new(&stored).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse battery", &parsed).is_ok());
        let salt = SaltString::encode_b64(b"sixteen bytes!!!").unwrap();
        let theirs = Argon2::default().hash_password(b"correct horse battery", &salt).unwrap().to_string();
        assert!(password_matches("correct horse battery", &theirs) && !password_matches("wrong", &theirs));
    }

    #[tokio::test]
    async fn the_hashing_threads_answer_and_a_full_queue_is_refused_not_queued_without_end() {
        let hashers = PasswordHashers::start(1, 1);
        let stored = hashers.hash("correct horse battery".into()).await.unwrap().unwrap();
        assert!(hashers.reserve().unwrap().verify("correct horse battery".into(), Some(stored.clone())).await.unwrap());
        assert!(!hashers.reserve().unwrap().verify("wrong".into(), Some(stored.clone())).await.unwrap());
        assert!(
            !hashers.reserve().unwrap().verify("correct horse battery".into(), None).await.unwrap(),
            "an unknown login never matches"
        );
        // One thread and room for one more: a third place is refused at once, and a place
        // is given back once its hash has run.
        let (first, second) = (hashers.reserve().unwrap(), hashers.reserve().unwrap());
        assert!(hashers.reserve().is_err());
        let (first, second) = futures::join!(
            first.verify("wrong".into(), Some(stored.clone())),
            second.verify("wrong".into(), Some(stored.clone()))
        );
        assert_eq!((first.unwrap(), second.unwrap()), (false, false));
        assert!(hashers.reserve().is_ok());
    }

    #[test]
    fn a_disabled_account_cannot_sign_in_and_its_sessions_end_a_reset_password_ends_them_too() {
        let (_directory, mut connection) = database();
        let id = create_user(&connection, &user("kenko", Role::Administrator, &[]), HASH, "test").unwrap();
        let now = 1_800_000_000_000;
        let first = open_session(&connection, id, now).unwrap();
        assert_eq!(find_for_sign_in(&connection, "kenko").unwrap().map(|(found, _)| found), Some(id));
        let (caller, csrf) =
            session(&connection, &first.cookie, now + 1).unwrap().expect("the session is known by its cookie");
        assert_eq!((caller.actor.as_str(), csrf), ("user:kenko", first.csrf_token.clone()));
        assert!(session(&connection, &first.cookie, now + SESSION_MILLISECONDS).unwrap().is_none(), "a session ends");

        assert!(
            set_disabled(&mut connection, "kenko", true, "user:kenko")
                .unwrap_err()
                .to_string()
                .contains("your own account")
        );
        set_disabled(&mut connection, "kenko", true, "user:admin").unwrap();
        assert!(session(&connection, &first.cookie, now + 2).unwrap().is_none(), "disabling ends the sessions");
        assert_eq!(find_for_sign_in(&connection, "kenko").unwrap(), None, "a disabled account cannot sign in");
        assert!(list_accounts(&connection, now).unwrap()[0].disabled);
        set_disabled(&mut connection, "kenko", false, "user:admin").unwrap();
        assert!(find_for_sign_in(&connection, "kenko").unwrap().is_some());

        let second = open_session(&connection, id, now).unwrap();
        let third = open_session(&connection, id, now).unwrap();
        assert_eq!(list_accounts(&connection, now).unwrap()[0].sessions, 2);
        set_password(&mut connection, "kenko", "$argon2id$another", "user:admin").unwrap();
        assert!(
            session(&connection, &second.cookie, now + 1).unwrap().is_none()
                && session(&connection, &third.cookie, now + 1).unwrap().is_none()
        );
        let fourth = open_session(&connection, id, now).unwrap();
        assert_eq!(end_sessions(&connection, "kenko", "user:admin").unwrap(), 1);
        assert!(session(&connection, &fourth.cookie, now + 1).unwrap().is_none());
        sign_out(&connection, "no such cookie").unwrap();
        assert!(matches!(end_sessions(&connection, "nobody", "user:admin"), Err(AccountError::UnknownLogin(_))));

        let actions: Vec<String> = connection
            .prepare("SELECT action FROM audit_log ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            actions,
            [
                "create-user",
                "sign-in",
                "disable-user",
                "enable-user",
                "sign-in",
                "sign-in",
                "reset-password",
                "sign-in",
                "end-sessions"
            ]
        );
    }
}

//! Helpers for the end-to-end tests: run the real binaries in a temp data directory, and
//! start a real LINE emulator process and a real SMTP server process on free ports.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub const TOKEN: &str = "end-to-end-token";

/// The product's binary under test: `host/cli`'s own main.rs, built by this package.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_oshirase-under-test")
}

/// The tools' binary under test (`oshirase-dev`): `tools/dev`'s own main.rs.
pub fn dev_binary() -> &'static str {
    env!("CARGO_BIN_EXE_oshirase-dev-under-test")
}

/// The binary that has the command `args` start with: the tools' commands (`demo`, `gen`,
/// `bench`, `line-emulator`) are `oshirase-dev`'s, every other one is `oshirase`'s. The
/// tools are told where the product's binary is, for the benchmarks that run it.
fn command_for(args: &[&str]) -> Command {
    if matches!(args.first(), Some(&("demo" | "gen" | "bench" | "line-emulator"))) {
        let mut command = Command::new(dev_binary());
        command.env("OSHIRASE_BINARY", binary());
        command
    } else {
        Command::new(binary())
    }
}

/// A data directory of its own for one test, removed at the end.
pub struct Scene {
    pub directory: tempfile::TempDir,
    /// The bundled programs the data directory is given; all when empty.
    pub programs: Vec<&'static str>,
}

impl Scene {
    pub fn new() -> Scene {
        Scene { directory: tempfile::tempdir().expect("cannot make a temp directory"), programs: Vec::new() }
    }

    /// A scene whose data directory is given only these bundled programs.
    pub fn with_programs(programs: &[&'static str]) -> Scene {
        Scene { programs: programs.to_vec(), ..Scene::new() }
    }

    pub fn data(&self) -> PathBuf {
        self.directory.path().join("data")
    }

    /// `oshirase --data <data> args…`, ready to run or to spawn.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = command_for(args);
        command.arg("--data").arg(self.data()).args(args).env("OSHIRASE_LOG", "warn");
        if !self.programs.is_empty() {
            command.env("OSHIRASE_PROGRAMS", self.programs.join(","));
        }
        command
    }

    /// Runs `oshirase --data <data> args…` and returns its output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("cannot start oshirase")
    }

    /// Like `run`, but fails the test unless the command succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "oshirase {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stdout).expect("stdout is UTF-8")
    }

    /// Writes a file into a folder of the scene and returns the folder.
    pub fn write(&self, folder: &str, name: &str, text: &str) -> PathBuf {
        let folder = self.directory.path().join(folder);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(name), text).unwrap();
        folder
    }
}

/// The address a server process prints on its first line (`listening on http://…`),
/// once its socket is bound: no need to wait and guess.
fn read_address(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("the process's stdout is piped")).read_line(&mut line).unwrap();
    line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_string()
}

/// Waits until `condition` holds, checking it every 50 ms, for at most two minutes: for
/// what a server process does on its own time, such as its scheduler's sending.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "still waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The real SMTP server of `smtp_server.py` (aiosmtpd, plain) on a free port, storing
/// each accepted message as a file; killed when dropped.
pub struct SmtpProcess {
    child: Child,
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpProcess {
    pub fn start() -> SmtpProcess {
        let maildir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(maildir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd is needed");
        let address = read_address(&mut child);
        let port = address.rsplit(':').next().unwrap().parse().unwrap();
        SmtpProcess { child, port, maildir }
    }

    /// Every accepted message's `To:` header and raw text, in the order received.
    pub fn messages(&self) -> Vec<(String, String)> {
        let mut paths: Vec<PathBuf> =
            std::fs::read_dir(self.maildir.path()).unwrap().map(|entry| entry.unwrap().path()).collect();
        paths.sort_by_key(|path| {
            path.file_stem().and_then(|stem| stem.to_str()).and_then(|stem| stem.parse::<u64>().ok())
        });
        paths
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).unwrap();
                let to = text.lines().find_map(|line| line.strip_prefix("To: ")).unwrap_or_default().to_string();
                (to, text)
            })
            .collect()
    }
}

impl Drop for SmtpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real `oshirase-dev line-emulator` process on a free port, killed when dropped.
pub struct EmulatorProcess {
    child: Child,
    pub base_url: String,
}

impl EmulatorProcess {
    pub fn start(journal: &Path) -> EmulatorProcess {
        EmulatorProcess::start_with(journal, &[])
    }

    /// Starts it with more arguments, such as `--fault-500 0.1`.
    pub fn start_with(journal: &Path, args: &[&str]) -> EmulatorProcess {
        let mut command = Command::new(dev_binary());
        command.args(["line-emulator", "--port", "0", "--token", TOKEN, "--journal"]).arg(journal).args(args);
        let (child, base_url) = spawn_listening(command);
        EmulatorProcess { child, base_url }
    }

    /// What every user has received: user id → message texts.
    pub fn inboxes(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.inboxes_json()
            .as_object()
            .unwrap()
            .iter()
            .map(|(user, messages)| {
                (
                    user.clone(),
                    messages
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|message| message["text"].as_str().unwrap().to_string())
                        .collect(),
                )
            })
            .collect()
    }

    /// How many users received each accepted request (1 for a push), by request id.
    pub fn recipients_per_request(&self) -> std::collections::BTreeMap<String, usize> {
        let mut recipients = std::collections::BTreeMap::new();
        for messages in self.inboxes_json().as_object().unwrap().values() {
            for message in messages.as_array().unwrap() {
                *recipients.entry(message["request_id"].as_str().unwrap().to_string()).or_default() += 1;
            }
        }
        recipients
    }

    /// The aggregation unit each message named, in the order of `inboxes`: user id → units.
    pub fn aggregation_units(&self) -> std::collections::BTreeMap<String, Vec<Option<String>>> {
        self.inboxes_json()
            .as_object()
            .unwrap()
            .iter()
            .map(|(user, messages)| {
                (
                    user.clone(),
                    messages
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|message| message["aggregation_unit"].as_str().map(str::to_string))
                        .collect(),
                )
            })
            .collect()
    }

    /// Every inbox as the emulator answers `/emulator/inboxes`: each message with its
    /// text and, for a card, its Flex container.
    pub fn inboxes_json(&self) -> Value {
        reqwest::blocking::get(format!("{}/emulator/inboxes", self.base_url)).unwrap().json().unwrap()
    }
}

impl EmulatorProcess {
    /// Puts other faults in force through the control endpoint; returns what it answers.
    pub fn set_faults(&self, faults: Value) -> Value {
        let response = reqwest::blocking::Client::new()
            .put(format!("{}/emulator/faults", self.base_url))
            .body(faults.to_string())
            .send()
            .unwrap();
        assert!(response.status().is_success(), "the emulator refused the faults: {}", response.text().unwrap());
        response.json().unwrap()
    }

    /// The faults in force and how many requests got each.
    pub fn faults(&self) -> Value {
        reqwest::blocking::get(format!("{}/emulator/faults", self.base_url)).unwrap().json().unwrap()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns a command that binds a port and prints `listening on URL` first; returns the
/// child and the URL, once the socket is bound.
fn spawn_listening(mut command: Command) -> (Child, String) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("cannot start oshirase");
    let base_url = read_address(&mut child);
    (child, base_url)
}

/// A real `oshirase serve` process on a free port, killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub base_url: String,
}

impl Scene {
    /// Starts `oshirase --data <data> serve --port 0 args…`.
    pub fn serve(&self, args: &[&str]) -> ServerProcess {
        let mut command = self.command(&["serve", "--port", "0"]);
        command.args(args);
        let (child, base_url) = spawn_listening(command);
        ServerProcess { child, base_url }
    }
}

impl Scene {
    /// Starts `oshirase serve --config FILE`, killed when dropped; returns once it listens.
    pub fn serve_config(&self, config: &Path) -> ServerProcess {
        let command = self.command(&["serve", "--config", config.to_str().unwrap()]);
        let (child, base_url) = spawn_listening(command);
        ServerProcess { child, base_url }
    }
}

impl ServerProcess {
    /// Sends SIGTERM, as systemd does to stop the service, and waits for the process to end.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill only sends a signal to the child this guard owns and has not reaped.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) }, 0);
        self.child.wait().unwrap()
    }
}

/// Killed when dropped, so that a failing test leaves no server behind; after `terminate`
/// there is nothing left to kill.
impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the scene's configuration: LINE is the emulator, one request at a time, the
/// window as given.
pub fn config(scene: &Scene, emulator: &EmulatorProcess, (start, end): (&str, &str)) -> PathBuf {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata = {data:?}\n\n[line]\nbase_url = {url:?}\n\
         channel_access_token = {TOKEN:?}\ntimeout_seconds = 5\nconcurrent_requests = 1\n\n[retry]\n\
         first_delay_ms = 20\n\n[send_window]\nstart = {start:?}\nend = {end:?}\n",
        data = scene.data(),
        url = emulator.base_url,
    );
    scene.write("etc", "oshirase.toml", &text).join("oshirase.toml")
}

/// The LINE user id of the parent of household `household` in `babies_town`.
pub fn parent(household: usize) -> String {
    format!("U{:032x}", 0x100 + household)
}

/// A town of `households` with only infant-checkup installed, whose babies are about four
/// months old today in Japan, so the first infant checkup is due for each; each was born
/// on a day of its own, so each message has its own deadline and goes out as a push of
/// its own. Only the parents register, with LINE (`parent`).
pub fn babies_town(households: usize) -> Scene {
    let scene = Scene::with_programs(&["infant-checkup"]);
    let births = distinct_deadline_births(oshirase_core::time::today_in_japan().add_months_clamped(-4), households);
    let residents: String = births
        .iter()
        .enumerate()
        .map(|(household, birth)| {
            format!(
                "{household:02}01,H{household:02},市民 親{household},1990-01-01,女,世帯主,中央区\n\
                 {household:02}02,H{household:02},市民 子{household},{birth},男,子,中央区\n"
            )
        })
        .collect();
    let folder = scene.write(
        "export",
        "residents.csv",
        &format!("宛名番号,世帯番号,氏名,生年月日,性別,続柄,行政区\n{residents}"),
    );
    scene.ok(&["import", folder.to_str().unwrap()]);
    for household in 0..households {
        scene.ok(&["register", &format!("{household:02}01"), &parent(household)]);
    }
    scene
}

/// `count` birth days going back from `latest`, skipping the 29th, 30th and 31st: a
/// deadline counted in months from a birth on those days may fall on the end of a
/// shorter month, shared with its neighbours, and identical messages go out as one
/// multicast — on some days of the year only. Skipping them keeps every deadline apart
/// whatever today is.
pub fn distinct_deadline_births(latest: oshirase_core::Day, count: usize) -> Vec<oshirase_core::Day> {
    (0..).map(|back| latest.add_days(-back)).filter(|birth| birth.ymd().2 <= 28).take(count).collect()
}

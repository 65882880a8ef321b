//! Many towns on one server: `deploy/oshirase@.service` is a unit systemd accepts for a
//! town, each town's process names its town in every log line, and towns under one host
//! name by path, behind nginx, keep their records and sessions apart.

use std::process::{Command, Stdio};

use crate::harness::{EmulatorProcess, Scene, ServerProcess, binary, config, wait_until};

/// `systemd-analyze verify` of the template unit as town `chuo`'s instance, its binary
/// path pointed at the one under test: its exit code and what it complained of.
fn verify(unit: &str) -> (bool, String) {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("oshirase@chuo.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/oshirase", binary())).unwrap();
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("cannot run systemd-analyze: .ci/run installs systemd");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn the_template_unit_is_one_systemd_accepts_for_a_town_and_a_broken_one_is_not() {
    let unit = include_str!("../deploy/oshirase@.service");
    let (passed, complaints) = verify(unit);
    assert!(passed && complaints.trim().is_empty(), "systemd-analyze verify: {complaints}");
    // A key misspelt is ignored by systemd with a warning, not an error: the check reads both.
    let (_, complaints) = verify(&unit.replace("Environment=OSHIRASE_TOWN", "Environmnt=OSHIRASE_TOWN"));
    assert!(complaints.contains("Unknown key 'Environmnt'"), "{complaints}");
    let missing_binary = unit.replace("/usr/local/bin/oshirase", "/nonexistent/oshirase");
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("oshirase@chuo.service");
    std::fs::write(&path, missing_binary).unwrap();
    let passed =
        Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&path).output().unwrap().status.success();
    assert!(!passed, "a unit whose binary is missing passed");
}

#[test]
fn every_log_line_of_a_towns_process_is_led_by_its_name() {
    let scene = Scene::new();
    // An export whose import warns (a column nobody reads), so that the process logs.
    let export = scene.write(
        "export",
        "residents.csv",
        "宛名番号,世帯番号,氏名,生年月日,性別,続柄,備考\n0101,H01,市民 一,1961-04-02,男,世帯主,\n",
    );
    let output = scene.command(&["import", export.to_str().unwrap()]).env("OSHIRASE_TOWN", "chuo").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let log = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = log.lines().filter(|line| line.contains("WARN")).collect();
    assert!(!lines.is_empty(), "the import logged nothing: {log}");
    assert!(lines.iter().all(|line| line.starts_with("town=chuo ")), "{log}");
}

const PASSWORD: &str = "a town's own password";

/// An nginx in the foreground, stopped when dropped with SIGTERM, on which its master stops
/// its workers too (SIGKILL would leave them running, orphaned).
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: kill only sends a signal to the child this guard owns and has not reaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// A town of `residents` rows with an administrator, served under `public_url`.
fn town(residents: &str, public_url: &str) -> (Scene, EmulatorProcess, ServerProcess) {
    let scene = Scene::with_programs(&["infant-checkup"]);
    let export =
        scene.write("export", "residents.csv", &format!("宛名番号,世帯番号,氏名,生年月日,性別,続柄\n{residents}"));
    scene.ok(&["import", export.to_str().unwrap()]);
    let mut command = scene.command(&[
        "admin",
        "create-user",
        "--login",
        "admin",
        "--name",
        "管理者",
        "--role",
        "administrator",
        "--password-stdin",
    ]);
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let text = std::fs::read_to_string(config(&scene, &emulator, ("00:00", "24:00")))
        .unwrap()
        .replace("[line]", &format!("public_url = {public_url:?}\n\n[line]"));
    let configuration = scene.write("etc", "town.toml", &text).join("town.toml");
    let server = scene.serve_config(&configuration);
    (scene, emulator, server)
}

/// Two towns behind one host name, a real nginx routing `/chuo/` and `/minami/` to each
/// town's process as docs/operations.md shows: each console works under its path, each
/// session is kept to its town's path and means nothing to the other, and each town sees
/// only its own residents.
#[test]
fn two_towns_under_one_host_name_by_path_keep_their_records_and_sessions_apart() {
    let proxy_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let host = format!("http://127.0.0.1:{proxy_port}");
    let (_chuo, _chuo_line, chuo_server) = town(
        "0101,H01,中央 一郎,1980-01-01,男,世帯主\n0102,H01,中央 花子,1982-01-01,女,妻\n",
        &format!("{host}/chuo/"),
    );
    let (_minami, _minami_line, minami_server) = town(
        "0201,H02,南 二郎,1970-01-01,男,世帯主\n0202,H02,南 春子,1972-01-01,女,妻\n0203,H02,南 秋,2010-01-01,女,子\n",
        &format!("{host}/minami/"),
    );
    let proxy_directory = tempfile::tempdir().unwrap();
    let directory = proxy_directory.path().display();
    let upstream = |server: &ServerProcess| server.base_url.clone();
    let configuration = format!(
        "worker_processes 1;\ndaemon off;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n\
         events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {directory}/body;\n\
         proxy_temp_path {directory}/proxy;\n  fastcgi_temp_path {directory}/fastcgi;\n\
         uwsgi_temp_path {directory}/uwsgi;\n  scgi_temp_path {directory}/scgi;\n  server {{\n\
         listen 127.0.0.1:{proxy_port};\n    location /chuo/ {{ proxy_pass {}/; }}\n\
         location /minami/ {{ proxy_pass {}/; }}\n  }}\n}}\n",
        upstream(&chuo_server),
        upstream(&minami_server)
    );
    std::fs::write(proxy_directory.path().join("nginx.conf"), configuration).unwrap();
    let _nginx = Nginx(
        Command::new("nginx")
            .arg("-p")
            .arg(proxy_directory.path())
            .arg("-c")
            .arg(proxy_directory.path().join("nginx.conf"))
            .arg("-e")
            .arg(proxy_directory.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start nginx: .ci/run installs it"),
    );
    wait_until("nginx listening", || std::net::TcpStream::connect(("127.0.0.1", proxy_port)).is_ok());
    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = |path: &str| format!("{host}{path}");
    let follow = |from: &str| -> String {
        let response = client.get(url(from)).send().unwrap();
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        reqwest::Url::parse(&url(from)).unwrap().join(&location).unwrap().path().to_owned()
    };

    // The console's addresses stay under the town's path.
    assert_eq!(follow("/chuo/"), "/chuo/console/dashboard");
    assert_eq!(follow("/minami/console/dashboard"), "/minami/console/login");
    let login_page = client.get(url("/chuo/console/login")).send().unwrap().text().unwrap();
    assert!(login_page.contains("href=\"assets/style.css\"") && login_page.contains("src=\"assets/app.js\""));
    assert_eq!(client.get(url("/chuo/console/assets/app.js")).send().unwrap().status(), 200);

    // Signing in to each town: each cookie is kept to its town's path.
    let sign_in = |town: &str| -> String {
        let response = client
            .post(url(&format!("/{town}/admin/session")))
            .json(&serde_json::json!({ "login": "admin", "password": PASSWORD }))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{town}");
        let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(set_cookie.contains(&format!("; Path=/{town}; ")), "{set_cookie}");
        set_cookie.split(';').next().unwrap().to_owned()
    };
    let (chuo_cookie, minami_cookie) = (sign_in("chuo"), sign_in("minami"));
    let residents = |town: &str, cookie: &str| -> (u16, serde_json::Value) {
        let response = client.get(url(&format!("/{town}/admin/snapshots"))).header("cookie", cookie).send().unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(serde_json::Value::Null))
    };
    let (status, chuo_snapshots) = residents("chuo", &chuo_cookie);
    assert_eq!((status, &chuo_snapshots[0]["residents"]), (200, &serde_json::json!(2)));
    let (status, minami_snapshots) = residents("minami", &minami_cookie);
    assert_eq!((status, &minami_snapshots[0]["residents"]), (200, &serde_json::json!(3)));
    // One town's session, even sent to the other on purpose, is nobody there.
    assert_eq!(residents("minami", &chuo_cookie).0, 401);
    assert_eq!(residents("chuo", &minami_cookie).0, 401);
}

/// The towns benchmark measures a town alone and towns side by side with the real
/// binaries: each town's serve and its day, which tells its residents.
#[test]
fn the_towns_benchmark_runs_real_serves_and_days_side_by_side() {
    let scene = Scene::new();
    let work = scene.directory.path().join("bench");
    let output = scene.ok(&[
        "bench",
        "towns",
        "--sizes",
        "400",
        "--towns",
        "2",
        "--town-residents",
        "400",
        "--repetitions",
        "1",
        "--json",
        "--work",
        work.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(output.trim()).unwrap();
    let town = &report["sizes"][0];
    assert_eq!(town["residents"], 400, "{report}");
    for figure in ["idle_serve_mib", "restarted_serve_mib"] {
        assert!(town[figure][0].as_f64().unwrap() > 1.0, "{figure}: {report}");
    }
    // The first day tells the registered residents; the next day has nothing new.
    assert!(town["registered"].as_u64().unwrap() > 0 && town["first_day"]["sent"].as_u64().unwrap() > 0, "{report}");
    assert!(town["first_day"]["peak_rss_mib"][0].as_f64().unwrap() > 1.0, "{report}");
    let fleet = &report["fleets"][0];
    assert_eq!(fleet["towns"], 2, "{report}");
    assert!(fleet["idle_serve_proportional_mib_total"].as_f64().unwrap() > 1.0, "{report}");
    assert!(fleet["day_seconds"].as_f64().unwrap() >= fleet["longest_town_day_seconds"].as_f64().unwrap(), "{report}");
}

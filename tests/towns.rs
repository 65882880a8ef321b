//! Many towns on one server: `deploy/oshirase@.service` is a unit systemd accepts for a
//! town, and each town's process names its town in every log line.

use std::process::Command;

use crate::harness::{Scene, binary};

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

//! The whole path with the real binary: resident records → plugins → notices → LINE pushes
//! received by a real emulator process.

use crate::harness::{EmulatorProcess, Scene, TOKEN};
use serde_json::Value;

/// The day the scene is run for.
const TODAY: &str = "2026-11-21";
const MOTHER_OF_READY_BABY: &str = "U00000000000000000000000000000001";
const MOTHER_OF_BABY_READY_TOMORROW: &str = "U00000000000000000000000000000002";
const FATHER_OF_ONE_YEAR_OLD: &str = "U00000000000000000000000000000004";
const ELDERLY_RESIDENT: &str = "U00000000000000000000000000000005";

/// A small town. Baby 0102 reaches 生後3月 on 2026-11-21, so the first infant checkup
/// window opens today; baby 0202 a day later; baby 0302 also today, but no one in that
/// household registered; child 0402 reached 生後12月 yesterday (MR 1期 is open) and so
/// turned one: its second infant checkup (「満1歳に達しない」) closed yesterday.
const RESIDENTS: &str = "\
宛名番号,世帯番号,氏名,生年月日,性別,続柄,行政区
0101,H01,千葉 花子,1994-05-01,女,世帯主,中央区
0102,H01,千葉 陽葵,2026-08-22,女,子,中央区
0201,H02,佐藤 凛,1990-01-10,女,世帯主,美浜区
0202,H02,佐藤 蓮,2026-08-23,男,子,美浜区
0301,H03,鈴木 恵子,1988-03-03,女,世帯主,緑区
0302,H03,鈴木 湊,2026-08-22,男,子,緑区
0401,H04,高橋 誠,1985-07-07,男,世帯主,稲毛区
0402,H04,高橋 結菜,2025-11-21,女,子,稲毛区
0501,H05,田中 茂,1950-12-01,男,世帯主,若葉区
";

/// The town with the two programs its residents were chosen for.
fn town() -> Scene {
    let scene = Scene::with_programs(&["infant-checkup", "vaccine-mr"]);
    let folder = scene.write("export", "residents.csv", RESIDENTS);
    scene.ok(&["import", folder.to_str().unwrap()]);
    for (resident, user) in [
        ("0101", MOTHER_OF_READY_BABY),
        ("0201", MOTHER_OF_BABY_READY_TOMORROW),
        ("0401", FATHER_OF_ONE_YEAR_OLD),
        ("0501", ELDERLY_RESIDENT),
    ] {
        scene.ok(&["register", resident, user]);
    }
    scene
}

fn run_day(scene: &Scene, emulator: &EmulatorProcess, date: &str) -> Value {
    let output = scene.ok(&["run", "--date", date, "--line-base-url", &emulator.base_url, "--line-token", TOKEN]);
    serde_json::from_str(output.trim()).expect("run prints one JSON report")
}

/// Checks each user's inbox: (user, how many messages, a phrase every one of them has).
fn check_inboxes(emulator: &EmulatorProcess, expected: &[(&str, usize, &str)]) {
    let inboxes = emulator.inboxes();
    let mut failures = Vec::new();
    for (user, count, phrase) in expected {
        let messages = inboxes.get(*user).cloned().unwrap_or_default();
        if messages.len() != *count || !messages.iter().all(|text| text.contains(phrase)) {
            failures.push(format!("{user}: expected {count} message(s) with {phrase:?}, got {messages:?}"));
        }
    }
    let expected_users: Vec<&str> =
        expected.iter().filter(|(_, count, _)| *count > 0).map(|(user, _, _)| *user).collect();
    for user in inboxes.keys() {
        if !expected_users.contains(&user.as_str()) {
            failures.push(format!("{user} received messages it should not have: {:?}", inboxes[user]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_right_residents_get_the_right_message_on_the_right_day_and_only_once() {
    let scene = town();
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));

    let report = run_day(&scene, &emulator, TODAY);
    assert_eq!(report["sent"]["sent"], 2, "{report}");
    check_inboxes(
        &emulator,
        &[
            (MOTHER_OF_READY_BABY, 1, "1回目の乳児健康診査"),
            (FATHER_OF_ONE_YEAR_OLD, 1, "麻しん風しん(MR)ワクチン1期"),
            (MOTHER_OF_BABY_READY_TOMORROW, 0, ""),
            (ELDERLY_RESIDENT, 0, ""),
        ],
    );
    // The deadline is the last day of the window (生後7月 is reached on 2027-03-21).
    assert!(emulator.inboxes()[MOTHER_OF_READY_BABY][0].contains("令和9年3月20日までに"), "{:?}", emulator.inboxes());

    // The same day again: nothing new is planned or sent.
    let again = run_day(&scene, &emulator, TODAY);
    assert_eq!(again["queued"], 0, "{again}");
    assert_eq!(again["runs"][0]["new_notices"], 0, "{again}");
    check_inboxes(&emulator, &[(MOTHER_OF_READY_BABY, 1, "乳児"), (FATHER_OF_ONE_YEAR_OLD, 1, "麻しん風しん")]);

    // The next day the second baby's window opens.
    run_day(&scene, &emulator, "2026-11-22");
    check_inboxes(
        &emulator,
        &[
            (MOTHER_OF_READY_BABY, 1, "乳児"),
            (FATHER_OF_ONE_YEAR_OLD, 1, "麻しん風しん"),
            (MOTHER_OF_BABY_READY_TOMORROW, 1, "1回目の乳児健康診査"),
        ],
    );

    // No message carries a name, a birth date or an address.
    for messages in emulator.inboxes().values() {
        for text in messages {
            for personal in ["千葉 ", "佐藤", "高橋", "陽葵", "2026-08-22", "2025-11-21", "中央区"] {
                assert!(!text.contains(personal), "a message carries {personal:?}: {text}");
            }
        }
    }
}

/// LINE refuses `customAggregationUnits` from a channel whose application for them was not
/// approved (the emulator above was started so): a city that was approved turns them on.
#[test]
fn a_channel_approved_for_aggregation_units_names_each_program_in_line_statistics() {
    let scene = town();
    let emulator =
        EmulatorProcess::start_with(&scene.directory.path().join("line.jsonl"), &["--aggregation-units-approved"]);
    let output = scene.ok(&[
        "run",
        "--date",
        TODAY,
        "--line-base-url",
        &emulator.base_url,
        "--line-token",
        TOKEN,
        "--line-custom-aggregation-units",
    ]);
    let report: Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(report["sent"]["sent"], 2, "{report}");
    let units = emulator.aggregation_units();
    assert_eq!(
        (&units[MOTHER_OF_READY_BABY][..], &units[FATHER_OF_ONE_YEAR_OLD][..]),
        (&[Some("infant_checkup".to_string())][..], &[Some("vaccine_mr".to_string())][..])
    );
}

/// A city that chose two programs keeps exactly those, whatever command comes next
/// without `--programs`; the other bundled programs are offered, and one runs only once
/// staff activate it.
#[test]
fn a_data_directory_keeps_the_programs_it_chose_and_others_wait_for_staff() {
    let scene = town();
    let without_programs = |args: &[&str]| {
        let output = std::process::Command::new(crate::harness::binary())
            .arg("--data")
            .arg(scene.data())
            .args(args)
            .env("OSHIRASE_LOG", "warn")
            .env_remove("OSHIRASE_PROGRAMS")
            .output()
            .unwrap();
        assert!(output.status.success(), "oshirase {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let states = |list: &str, state: &str| -> Vec<String> {
        list.lines()
            .map(|line| line.split('\t').collect::<Vec<_>>())
            .filter(|fields| fields[2] == state)
            .map(|fields| fields[0].to_string())
            .collect()
    };
    let list = without_programs(&["plugin", "list"]);
    assert_eq!(states(&list, "active"), ["infant-checkup", "vaccine-mr"], "{list}");
    assert!(
        states(&list, "available").contains(&"vaccine-bcg".to_string()) && states(&list, "available").len() > 10,
        "{list}"
    );
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let output =
        without_programs(&["run", "--date", TODAY, "--line-base-url", &emulator.base_url, "--line-token", TOKEN]);
    let report: Value = serde_json::from_str(output.trim()).unwrap();
    let programs: Vec<&str> =
        report["runs"].as_array().unwrap().iter().map(|run| run["program"].as_str().unwrap()).collect();
    assert_eq!(programs, ["infant-checkup", "vaccine-mr"], "{report}");
    without_programs(&["plugin", "activate", "vaccine-bcg"]);
    let list = without_programs(&["plugin", "list"]);
    assert_eq!(states(&list, "active"), ["infant-checkup", "vaccine-bcg", "vaccine-mr"], "{list}");
    assert!(!states(&list, "available").contains(&"vaccine-bcg".to_string()), "{list}");
}

/// A parent of twins gets one message about their first infant checkup, saying it is
/// about two people and naming neither, while each twin's notice is delivered.
#[test]
fn a_parent_of_twins_gets_one_message_that_says_it_is_about_two() {
    let scene = Scene::with_programs(&["infant-checkup"]);
    let twins = "宛名番号,世帯番号,氏名,生年月日,性別,続柄\n\
                 0101,H01,千葉 花子,1994-05-01,女,世帯主\n0102,H01,千葉 陽葵,2026-08-22,女,子\n\
                 0103,H01,千葉 陽翔,2026-08-22,男,子\n";
    let folder = scene.write("export", "residents.csv", twins);
    scene.ok(&["import", folder.to_str().unwrap()]);
    scene.ok(&["register", "0101", MOTHER_OF_READY_BABY]);
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let report = run_day(&scene, &emulator, TODAY);
    assert_eq!(
        (report["queued"].as_u64(), report["sent"]["sent"].as_u64(), report["sent"]["requests"].as_u64()),
        (Some(2), Some(2), Some(1)),
        "{report}"
    );
    let inbox = &emulator.inboxes()[MOTHER_OF_READY_BABY];
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(
        inbox[0].contains(
            "1回目の\
             乳児健康診査"
        ) && inbox[0].contains(
            "対象の\
             方が2人います"
        ),
        "{}",
        inbox[0]
    );
    assert!(!inbox[0].contains("陽葵") && !inbox[0].contains("陽翔") && !inbox[0].contains("千葉 "), "{}", inbox[0]);
}

#[test]
fn a_dry_run_names_every_eligible_resident_and_sends_nothing() {
    let scene = town();
    let output = scene.ok(&["plugin", "dry-run", "infant-checkup", "--date", TODAY, "--format", "json"]);
    let notices: Vec<Value> = output.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let expected = serde_json::json!([
        { "resident_id": "0102", "occasion": "first", "send_on": "2026-11-21", "expires_on": "2027-03-20" },
        { "resident_id": "0302", "occasion": "first", "send_on": "2026-11-21", "expires_on": "2027-03-20" },
    ]);
    let shown: Vec<Value> = notices
        .iter()
        .map(|notice| {
            serde_json::json!({
                "resident_id": notice["resident_id"],
                "occasion": notice["occasion"],
                "send_on": notice["send_on"],
                "expires_on": notice["expires_on"]
            })
        })
        .collect();
    assert_eq!(Value::Array(shown), expected);
    assert!(notices.iter().all(|notice| !notice["reason"].as_str().unwrap().is_empty()));
    // A dry run stores nothing: a real run afterwards plans both notices again and stores
    // as new the one that can reach someone (one of the two households is registered).
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let report = run_day(&scene, &emulator, TODAY);
    let infant = report["runs"].as_array().unwrap().iter().find(|run| run["program"] == "infant-checkup").unwrap();
    assert_eq!(
        (&infant["notices"], &infant["new_notices"]),
        (&serde_json::json!(2), &serde_json::json!(1)),
        "{report}"
    );
}

#[test]
fn a_broken_file_is_refused_whole_and_the_live_snapshot_stays() {
    let scene = town();
    let broken = RESIDENTS
        .replace("0202,H02,佐藤 蓮,2026-08-23", "0202,H02,佐藤 蓮,2026-02-30")
        .replace("0501,H05,田中 茂,1950-12-01,男", "0501,H05,田中 茂,1950-12-01,?");
    let folder = scene.write("broken", "residents.csv", &broken);
    let output = scene.run(&["import", folder.to_str().unwrap()]);
    assert!(!output.status.success());
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(errors.contains("residents.csv:5:4: birth_date \"2026-02-30\" is not a date"), "{errors}");
    assert!(errors.contains("residents.csv:10:5: sex \"?\""), "{errors}");
    let output = scene.ok(&["plugin", "dry-run", "infant-checkup", "--date", TODAY, "--format", "json"]);
    assert_eq!(output.lines().count(), 2, "the earlier snapshot is still the live one: {output}");
}

#[test]
fn a_wrong_token_sends_nothing_and_fails_the_deliveries_permanently() {
    let scene = town();
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let output =
        scene.ok(&["run", "--date", TODAY, "--line-base-url", &emulator.base_url, "--line-token", "not-the-token"]);
    let report: Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(report["sent"]["failed"], 2, "{report}");
    assert!(emulator.inboxes().is_empty());
}

#[test]
fn the_demo_runs_from_an_empty_directory_and_a_second_run_sends_nothing_new() {
    let scene = Scene::new();
    let first: Value = serde_json::from_str(scene.ok(&["demo", "--exit-after-run", "--date", TODAY]).trim()).unwrap();
    assert!(first["residents"].as_u64().unwrap() >= 5000, "{first}");
    assert!(first["programs"].as_u64().unwrap() >= 23, "the whole catalogue is installed: {first}");
    let delivered = first["delivered"].as_u64().unwrap();
    assert!(delivered > 10 && delivered <= first["notices"].as_u64().unwrap() * 2, "{first}");
    // The export of a month later: more of the told took it up, as it was drawn.
    let share = |took_up: &str, of: &str| first[took_up].as_f64().unwrap() / first[of].as_f64().unwrap();
    assert!(first["later_told"].as_u64().unwrap() >= 100, "{first}");
    assert!(share("later_told_took_up", "later_told") > share("later_not_told_took_up", "later_not_told"), "{first}");
    let second: Value = serde_json::from_str(scene.ok(&["demo", "--exit-after-run", "--date", TODAY]).trim()).unwrap();
    assert_eq!(second["delivered"], 0, "{second}");
    // The emulator's journal holds exactly what was delivered, once: a line per accepted
    // push or multicast, with its recipients, each named once. A recipient's deliveries
    // of one text (a parent of twins) are one message.
    let journal = std::fs::read_to_string(scene.data().join("line-emulator.jsonl")).unwrap();
    let requests: Vec<Vec<Value>> = journal
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["to"].as_array().unwrap().clone())
        .collect();
    assert!(
        requests.iter().all(|to| to.iter().collect::<std::collections::HashSet<_>>().len() == to.len()),
        "a request named a recipient twice"
    );
    let recipients: usize = requests.iter().map(Vec::len).sum();
    let database = rusqlite::Connection::open_with_flags(
        scene.data().join("oshirase.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (deliveries, messages): (i64, i64) = database
        .query_row(
            "SELECT count(*), count(DISTINCT coalesce(batch_key, retry_key) || ' ' || address) FROM deliveries
             WHERE state = 'sent' AND channel = 'line'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((deliveries as u64, recipients as i64), (delivered, messages));
    // The demo measured uptake with it, once: the console's 効果 page reads this, and the
    // screenings, told and not told, are groups large enough to show.
    let reports: Vec<String> = database
        .prepare("SELECT report FROM uptake_reports")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(reports.len(), 1, "measured by the first run only");
    let report: Value = serde_json::from_str(&reports[0]).unwrap();
    let colon = report["cohorts"].as_array().unwrap().iter().filter(|cohort| cohort["program"] == "screening-colon");
    let told: u64 = colon.clone().map(|cohort| cohort["told"]["eligible"].as_u64().unwrap()).sum();
    let not_told: u64 = colon.map(|cohort| cohort["not_told"]["eligible"].as_u64().unwrap()).sum();
    assert!(told >= 10 && not_told >= 10, "{told} told, {not_told} not told");
    assert!(journal.lines().count() < recipients, "identical messages of a program went out as multicasts");
}

#[test]
fn a_delivery_that_could_not_be_sent_is_retried_but_never_after_its_notice_expires() {
    let scene = town();
    // LINE is unreachable: nothing listens on a port that was just released. The run does
    // not wait for its retries, and the next attempt is due within a millisecond, so the
    // later run below finds it due however soon it starts.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let base_url = format!("http://{closed}");
    let output = scene.ok(&[
        "run",
        "--date",
        TODAY,
        "--line-base-url",
        &base_url,
        "--line-token",
        TOKEN,
        "--retry-linger-ms",
        "0",
        "--retry-first-delay-ms",
        "1",
    ]);
    let report: Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(report["sent"]["retryable"], 2, "{report}");

    // LINE is back on 2027-03-21: the first baby's checkup window closed on 03-20, so that
    // notice is dropped; the MR notice is still open and goes out; the second baby's
    // window closes that very day, so it is planned and sent too.
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    run_day(&scene, &emulator, "2027-03-21");
    check_inboxes(
        &emulator,
        &[
            (MOTHER_OF_READY_BABY, 0, ""),
            (FATHER_OF_ONE_YEAR_OLD, 1, "麻しん風しん(MR)ワクチン1期"),
            (MOTHER_OF_BABY_READY_TOMORROW, 1, "1回目の乳児健康診査"),
        ],
    );
}

/// The import benchmark, on either layout of the resident file, times sqlite3 and
/// oshirase on the same file.
#[test]
fn the_import_benchmark_compares_with_sqlite3_in_one_run() {
    let scene = Scene::new();
    let work = scene.directory.path().join("bench");
    for (layout, resident_file) in [("own", "residents.csv"), ("standard", "resident_table.csv")] {
        let output = scene.ok(&[
            "bench",
            "import",
            "--residents",
            "300",
            "--repetitions",
            "1",
            "--layout",
            layout,
            "--json",
            "--work",
            work.to_str().unwrap(),
        ]);
        let report: Value = serde_json::from_str(output.trim()).unwrap();
        assert_eq!(report["resident_file"], resident_file, "{report}");
        for timing in ["sqlite3", "oshirase_residents", "oshirase_all_files"] {
            let seconds = report[timing]["seconds"].as_array().unwrap();
            assert!(seconds.len() == 1 && seconds[0].as_f64().unwrap() > 0.0, "{report}");
        }
        assert!(
            report["peak_rss_kib"].as_i64().unwrap() > 0 && report["database_bytes"].as_u64().unwrap() > 0,
            "{report}"
        );
        // The city it imported is the one gen writes, and it was imported whole.
        let lines =
            std::fs::read_to_string(work.join(format!("city-300-1-{layout}/{resident_file}"))).unwrap().lines().count();
        assert!(lines > 300, "{layout}: {lines} lines");
    }
}

/// A town's standard-layout export in Shift_JIS imports with its mapping kept apart from
/// the export and named on the command line: the 地区管理コード become the town's ward
/// names, which without the mapping are only codes, with a warning.
#[test]
fn a_standard_layout_export_imports_with_the_towns_mapping_named_on_the_command_line() {
    let scene = Scene::new();
    let export = scene.directory.path().join("export");
    scene.ok(&[
        "gen",
        "--residents",
        "300",
        "--layout",
        "standard",
        "--encoding",
        "shift-jis",
        "--out",
        export.to_str().unwrap(),
    ]);
    let mapping = scene.directory.path().join("town-import.toml");
    std::fs::rename(export.join("import.toml"), &mapping).unwrap();
    let wards = |scene: &Scene| -> Vec<String> {
        let database = rusqlite::Connection::open_with_flags(
            scene.data().join("oshirase.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut statement = database
            .prepare(
                "SELECT DISTINCT ward FROM residents WHERE snapshot_id = (SELECT id FROM snapshots WHERE active = 1)
                 ORDER BY ward",
            )
            .unwrap();
        statement.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };

    let without: Value = serde_json::from_str(scene.ok(&["import", export.to_str().unwrap()]).trim()).unwrap();
    let warnings = without["warnings"].to_string();
    assert!(warnings.contains("have no name in the mapping's [wards]"), "{warnings}");
    assert!(wards(&scene).iter().all(|ward| ward.starts_with("90")), "{:?}", wards(&scene));

    let with: Value = serde_json::from_str(
        scene.ok(&["import", export.to_str().unwrap(), "--mapping", mapping.to_str().unwrap()]).trim(),
    )
    .unwrap();
    assert_eq!(with["residents"], without["residents"], "{with}");
    assert!(!with["warnings"].to_string().contains("[wards]"), "{with}");
    let named = wards(&scene);
    assert!(!named.is_empty() && named.iter().all(|ward| ward.ends_with('区')), "{named:?}");
}

/// The evaluation benchmark runs every program as a plugin, natively and (some) as SQL.
/// The native call runs the plugin crate's own code, so equal notice counts show that (b)
/// is the same rule as (a); the SQL rules are rewrites, so equal counts are what makes
/// their timing a fair comparison.
#[test]
fn the_evaluation_benchmark_runs_the_same_rules_natively_and_in_sql() {
    let scene = Scene::new();
    let work = scene.directory.path().join("bench");
    let output = scene.ok(&[
        "bench",
        "eval",
        "--residents",
        "2000",
        "--repetitions",
        "1",
        "--date",
        TODAY,
        "--json",
        "--work",
        work.to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_str(output.trim()).unwrap();
    let programs = report["programs"].as_array().unwrap();
    assert!(programs.len() >= 20, "{report}");
    let mut mismatches = Vec::new();
    for program in programs {
        let wasm = &program["wasm_notices"];
        if &program["native_notices"] != wasm || !(program["sql_notices"].is_null() || &program["sql_notices"] == wasm)
        {
            mismatches.push(format!(
                "{}: wasm {wasm}, native {}, sql {}",
                program["program"], program["native_notices"], program["sql_notices"]
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    let written_in_sql = programs.iter().filter(|program| !program["sql_seconds"].is_null()).count();
    assert!(written_in_sql >= 4, "{report}");
    // A screening season is open on TODAY, so the comparison is not between empty answers.
    assert!(
        programs
            .iter()
            .any(|program| program["program"] == "screening-colon" && program["wasm_notices"].as_u64().unwrap() > 0),
        "{report}"
    );
    assert!(report["residents"].as_u64().unwrap() >= 2000 && report["threads"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        report["whole_city_seconds"].as_f64().unwrap() > 0.0 && report["whole_city_peak_rss_kib"].as_i64().unwrap() > 0,
        "{report}"
    );
    // `oshirase run` over the whole city, on one read for every program, plans what the
    // programs planned one at a time.
    let one_at_a_time: u64 = programs.iter().map(|program| program["wasm_notices"].as_u64().unwrap()).sum();
    assert_eq!(report["whole_city_notices"].as_u64().unwrap(), one_at_a_time, "{report}");
}

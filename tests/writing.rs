//! A division writes its own program as `docs/writing-a-program.md` tells: every command
//! of the guide's worked example, read from the guide and run in its order, from an empty
//! folder to a published program on a town's live records.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Scene;

/// The commands of the guide's worked example, in order: its indented lines that start
/// with `oshirase` or `cargo`.
fn guide_commands() -> Vec<Vec<String>> {
    let guide = include_str!("../docs/writing-a-program.md");
    let example = &guide[guide.find("## A worked example").expect("the guide has its worked example")..];
    let example = &example[..example.find("\n## ").unwrap_or(example.len())];
    example
        .lines()
        .filter_map(|line| line.strip_prefix("    "))
        .filter(|line| line.starts_with("oshirase ") || line.starts_with("cargo "))
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// `cargo args…` in `project`, as a division runs it: with nothing of this test's own
/// build in its environment, and a target directory of the project's own.
fn cargo(project: &Path, args: &[String]) -> String {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args).current_dir(project);
    for variable in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(variable);
    }
    let output = command.output().expect("cannot run cargo");
    assert!(
        output.status.success(),
        "cargo {args:?} failed in {}:\n{}",
        project.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_guides_worked_example_goes_from_an_empty_folder_to_a_published_program() {
    let commands = guide_commands();
    let names: Vec<String> = commands.iter().map(|command| command[..2.min(command.len())].join(" ")).collect();
    assert_eq!(
        names,
        [
            "oshirase plugin",
            "cargo test",
            "cargo build",
            "oshirase plugin",
            "oshirase plugin",
            "oshirase plugin",
            "oshirase plugin"
        ],
        "the guide's steps changed; this test runs whatever they are, but check what it asserts: {commands:?}"
    );
    // A town where 0101 reaches 65 on 2026-04-01 (born 1961-04-02) and 0201 does not.
    let scene = Scene::with_programs(&["vaccine-bcg"]);
    let export = scene.write(
        "export",
        "residents.csv",
        "宛名番号,世帯番号,氏名,生年月日,性別,続柄\n0101,H01,市民 一,1961-04-02,男,世帯主\n\
         0201,H02,市民 二,1990-01-01,女,世帯主\n",
    );
    scene.ok(&["import", export.to_str().unwrap()]);
    let empty_folder = scene.directory.path().join("work");
    std::fs::create_dir_all(&empty_folder).unwrap();
    let mut folder: PathBuf = empty_folder.clone();
    let mut outputs = Vec::new();
    for command in &commands {
        let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
        let output = if command[0] == "cargo" {
            cargo(&folder, &command[1..])
        } else {
            let output = scene.command(&args).current_dir(&folder).output().expect("cannot start oshirase");
            assert!(
                output.status.success(),
                "{command:?} failed: {}\n{}",
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        // The steps after `plugin new` run inside the project it wrote.
        if args.starts_with(&["plugin", "new"]) {
            folder = empty_folder.join(args[2]);
            assert!(folder.join("vendor/oshirase-sdk/src/lib.rs").exists(), "{output}");
        }
        outputs.push(output);
    }
    let [_, _, _, tested, unpublished, published, active] = outputs.as_slice() else { unreachable!() };
    assert!(tested.contains("4 cases, 4 passed, 0 failed"), "{tested}");
    let told = |output: &str| -> Vec<String> {
        output.lines().map(|line| line.split('\t').take(4).collect::<Vec<_>>().join(" ")).collect()
    };
    assert_eq!(told(unpublished), ["0101 reached-65 2026-04-01 2026-06-29"], "the dry run of the component");
    let published: serde_json::Value = serde_json::from_str(published.trim()).unwrap();
    assert_eq!((published["program"].as_str(), published["active"].as_bool()), (Some("elderly-notice"), Some(true)));
    assert_eq!(told(active), told(unpublished), "the published program plans what its dry run showed");
}

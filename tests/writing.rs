//! A division writes its own program as `docs/writing-a-program.md` tells: every command
//! of the guide's worked example, read from the guide and run in its order, from an empty
//! folder to a published program on a town's live records; and a program written in
//! Python, built by componentize-py, passes the Rust version's cases in the sandbox.

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

/// `componentize-py … componentize app` in `directory`, with `paths` searched for the
/// modules, into `output`: a Python program's one build command.
fn componentize(directory: &Path, wit: &Path, paths: &[&Path], output: &Path) {
    let mut command = Command::new("componentize-py");
    command.current_dir(directory).arg("-d").arg(wit).args(["-w", "program", "componentize", "app"]);
    for path in paths {
        command.arg("-p").arg(path);
    }
    let built = command.arg("-o").arg(output).output().expect("componentize-py is installed by .ci/run");
    assert!(built.status.success(), "componentize-py failed:\n{}", String::from_utf8_lossy(&built.stderr));
}

/// Programs written in Python, built by componentize-py against the same
/// `oshirase:program@1.1.0` world: the catalogue's 麻しん風しん rewritten with the Python SDK
/// (`plugins/python/vaccine-mr`) passes the Rust crate's `cases.yaml` unchanged in the
/// sandbox, dry-runs as the Rust version does and publishes; and a new program from `plugin
/// new --lang python` builds as its README says, passes its cases and publishes.
#[test]
fn programs_written_in_python_pass_their_cases_in_the_sandbox_and_publish() {
    let scene = Scene::with_programs(&["vaccine-mr"]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let wasm = scene.directory.path().join("vaccine-mr-python.wasm");
    let paths = [root.join("plugins/python/vaccine-mr"), root.join("plugins/sdk-python")];
    componentize(&root, &root.join("wit/program.wit"), &[&paths[0], &paths[1]], &wasm);
    // On a town's records (whose cache then keeps the compiled component, so it is compiled
    // once) it plans what the Rust version plans: a one-year-old's 1期.
    let folder = scene.write(
        "export",
        "residents.csv",
        "宛名番号,世帯番号,氏名,生年月日,性別,続柄,行政区\n0101,H01,市民 親,1990-01-01,女,世帯主,中央区\n\
         0102,H01,市民 子,2025-07-31,男,子,中央区\n",
    );
    scene.ok(&["import", folder.to_str().unwrap()]);
    let cases = root.join("plugins/vaccine-mr/cases.yaml");
    let tested = scene.ok(&["plugin", "test", wasm.to_str().unwrap(), cases.to_str().unwrap()]);
    assert!(tested.contains("16 cases, 16 passed, 0 failed"), "{tested}");
    let python = scene.ok(&["plugin", "dry-run", "--wasm", wasm.to_str().unwrap(), "--date", "2026-08-01"]);
    assert_eq!(python, scene.ok(&["plugin", "dry-run", "vaccine-mr", "--date", "2026-08-01"]));
    assert!(python.starts_with("0102\tphase-1\t2026-07-30\t2027-07-30\t") && python.lines().count() == 1, "{python}");
    // The division publishes it as the program's next version, its cases checked again.
    let published = scene.ok(&["plugin", "publish", wasm.to_str().unwrap(), "--cases", cases.to_str().unwrap()]);
    assert!(published.contains("\"vaccine-mr\""), "{published}");
    assert_eq!(scene.ok(&["plugin", "dry-run", "vaccine-mr", "--date", "2026-08-01"]), python);

    // A new program in Python, outside this repository, built with the command its README
    // gives: its example cases pass and it publishes.
    let project = scene.directory.path().join("elderly-python");
    let wrote = scene.ok(&["plugin", "new", "elderly-python", "--lang", "python", "--dir", project.to_str().unwrap()]);
    assert!(wrote.contains("componentize-py -d wit/program.wit"), "{wrote}");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(
        readme.contains(
            "componentize-py -d wit/program.wit -w program componentize app -p . -p sdk -o elderly-python.wasm"
        )
    );
    let component = project.join("elderly-python.wasm");
    componentize(&project, Path::new("wit/program.wit"), &[Path::new("."), Path::new("sdk")], &component);
    let project_cases = project.join("cases.yaml");
    let tested = scene.ok(&["plugin", "test", component.to_str().unwrap(), project_cases.to_str().unwrap()]);
    assert!(tested.contains("4 cases, 4 passed, 0 failed"), "{tested}");
    let published =
        scene.ok(&["plugin", "publish", component.to_str().unwrap(), "--cases", project_cases.to_str().unwrap()]);
    assert!(published.contains("\"elderly-python\""), "{published}");
}

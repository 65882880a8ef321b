//! `oshirase plugin new CODE --lang rust|python`: a division's program as a project of its
//! own, outside this repository, that builds with one command (`cargo build --release
//! --target wasm32-wasip2`, or componentize-py's). The SDK and the contract travel inside
//! the binary, so the project resolves them with no access to this repository: what this
//! release runs is what the program is built against.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The languages a project can be written in.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Language {
    Rust,
    /// Built by componentize-py; the component carries CPython.
    Python,
}

/// The SDK's sources, as `plugins/sdk/src` holds them (a test checks that none is missing).
const SDK_SOURCES: [(&str, &str); 15] = [
    ("by_person.rs", include_str!("../../../../plugins/sdk/src/by_person.rs")),
    ("cases.rs", include_str!("../../../../plugins/sdk/src/cases.rs")),
    ("conditions.rs", include_str!("../../../../plugins/sdk/src/conditions.rs")),
    ("date.rs", include_str!("../../../../plugins/sdk/src/date.rs")),
    ("glue.rs", include_str!("../../../../plugins/sdk/src/glue.rs")),
    ("history.rs", include_str!("../../../../plugins/sdk/src/history.rs")),
    ("household.rs", include_str!("../../../../plugins/sdk/src/household.rs")),
    ("kinds.rs", include_str!("../../../../plugins/sdk/src/kinds.rs")),
    ("lib.rs", include_str!("../../../../plugins/sdk/src/lib.rs")),
    ("maternity.rs", include_str!("../../../../plugins/sdk/src/maternity.rs")),
    ("population.rs", include_str!("../../../../plugins/sdk/src/population.rs")),
    ("schedule.rs", include_str!("../../../../plugins/sdk/src/schedule.rs")),
    ("screening.rs", include_str!("../../../../plugins/sdk/src/screening.rs")),
    ("settings.rs", include_str!("../../../../plugins/sdk/src/settings.rs")),
    ("single_parent.rs", include_str!("../../../../plugins/sdk/src/single_parent.rs")),
];

/// The contract the SDK's bindings are generated from; the SDK finds it at `../../wit`.
const PROGRAM_WIT: &str = include_str!("../../../../wit/program.wit");

/// The date readings both SDKs pass, beside the Rust SDK's sources as in `plugins/sdk`.
const DATE_TABLE: &str = include_str!("../../../../plugins/sdk/dates.json");

/// The example cases, the same rule's in either language.
const CASES: &str = include_str!("../../scaffold/cases.yaml.template");

/// A Rust project's own files: (path in the project, template).
const RUST_FILES: [(&str, &str); 7] = [
    ("Cargo.toml", include_str!("../../scaffold/rust/Cargo.toml.template")),
    ("src/lib.rs", include_str!("../../scaffold/rust/lib.rs.template")),
    ("cases.yaml", CASES),
    ("README.md", include_str!("../../scaffold/rust/README.md.template")),
    (".gitignore", include_str!("../../scaffold/rust/gitignore.template")),
    ("rust-toolchain.toml", include_str!("../../scaffold/rust/rust-toolchain.toml.template")),
    ("vendor/oshirase-sdk/Cargo.toml", include_str!("../../scaffold/rust/sdk-Cargo.toml.template")),
];

/// A Python project's files: the rule, its cases, a README and the Python SDK.
const PYTHON_FILES: [(&str, &str); 6] = [
    ("app.py", include_str!("../../scaffold/python/app.py.template")),
    ("cases.yaml", CASES),
    ("README.md", include_str!("../../scaffold/python/README.md.template")),
    (".gitignore", include_str!("../../scaffold/python/gitignore.template")),
    ("sdk/oshirase_sdk/__init__.py", include_str!("../../../../plugins/sdk-python/oshirase_sdk/__init__.py")),
    ("sdk/oshirase_sdk/dates.py", include_str!("../../../../plugins/sdk-python/oshirase_sdk/dates.py")),
];

/// Whether `code` may name a program: 1–40 lower-case letters, digits or dashes, starting
/// with a letter (the manifest's rule, and a crate name cargo accepts).
fn valid_code(code: &str) -> bool {
    (1..=40).contains(&code.len())
        && code.starts_with(|character: char| character.is_ascii_lowercase())
        && code.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// Writes a new program's project into `directory` (by default `./CODE`), which must not
/// exist yet or be empty; returns the directory.
pub fn new_project(code: &str, language: Language, directory: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        valid_code(code),
        "{code:?} cannot name a program: use 1–40 lower-case letters, digits or dashes, starting with a letter"
    );
    let directory = directory.unwrap_or_else(|| PathBuf::from(code));
    if directory.exists() {
        let empty = std::fs::read_dir(&directory)
            .with_context(|| format!("cannot read {}", directory.display()))?
            .next()
            .is_none();
        anyhow::ensure!(empty, "{} already exists and is not empty; choose another --dir", directory.display());
    }
    let fill = |template: &str| {
        template
            .replace("{{code}}", code)
            .replace("{{crate}}", &code.replace('-', "_"))
            .replace("{{sdk_version}}", env!("CARGO_PKG_VERSION"))
    };
    let templates: &[(&str, &str)] = match language {
        Language::Rust => &RUST_FILES,
        Language::Python => &PYTHON_FILES,
    };
    let mut files: Vec<(PathBuf, String)> =
        templates.iter().map(|(path, template)| (PathBuf::from(path), fill(template))).collect();
    if let Language::Rust = language {
        let sources = SDK_SOURCES.iter().map(|(name, text)| (Path::new("vendor/oshirase-sdk/src").join(name), *text));
        files.extend(sources.map(|(path, text)| (path, text.to_owned())));
        files.push((PathBuf::from("vendor/oshirase-sdk/dates.json"), DATE_TABLE.to_owned()));
    }
    files.push((PathBuf::from("wit/program.wit"), PROGRAM_WIT.to_owned()));
    for (path, text) in files {
        let path = directory.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(directory)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every source file of the SDK travels with the binary, so a new project builds.
    #[test]
    fn every_sdk_source_is_carried() {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sdk/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(&directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let carried: Vec<&str> = SDK_SOURCES.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, carried, "add the SDK's new file to SDK_SOURCES");
    }

    #[test]
    fn a_code_is_checked_and_an_occupied_directory_refused() {
        let temporary = std::env::temp_dir().join(format!("oshirase-scaffold-{}", std::process::id()));
        for bad in ["", "My-Program", "1st", "a_b", &"a".repeat(41)] {
            assert!(new_project(bad, Language::Rust, Some(temporary.join("x"))).is_err(), "{bad:?}");
        }
        let written = new_project("elderly-notice", Language::Rust, Some(temporary.join("p"))).unwrap();
        let manifest = std::fs::read_to_string(written.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"elderly-notice\"") && !manifest.contains("{{"), "{manifest}");
        let rule = std::fs::read_to_string(written.join("src/lib.rs")).unwrap();
        assert!(rule.contains("code: \"elderly-notice\".into()"), "{rule}");
        assert!(written.join("vendor/oshirase-sdk/src/date.rs").exists() && written.join("wit/program.wit").exists());
        let again = new_project("elderly-notice", Language::Rust, Some(written.clone())).unwrap_err();
        assert!(again.to_string().contains("already exists and is not empty"), "{again}");
        let python = new_project("elderly-notice", Language::Python, Some(temporary.join("py"))).unwrap();
        let rule = std::fs::read_to_string(python.join("app.py")).unwrap();
        assert!(rule.contains("code=\"elderly-notice\"") && !rule.contains("{{"), "{rule}");
        assert!(python.join("sdk/oshirase_sdk/dates.py").exists() && python.join("wit/program.wit").exists());
        assert_eq!(
            std::fs::read(python.join("cases.yaml")).unwrap(),
            std::fs::read(written.join("cases.yaml")).unwrap()
        );
        std::fs::remove_dir_all(&temporary).unwrap();
    }
}

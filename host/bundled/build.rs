//! Builds the program plugins in `plugins/` for wasm32-wasip2 and embeds them, so that a
//! fresh data directory can be given the bundled programs without any other step.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_directory = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let plugins = manifest_directory.join("../../plugins");
    println!("cargo:rerun-if-changed={}", plugins.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", plugins.join("Cargo.lock").display());
    println!("cargo:rerun-if-changed={}", manifest_directory.join("../../wit").display());

    // Program crates sit directly in plugins/; the sandbox tests' misbehaving plugins sit
    // in plugins/testing/ and are embedded only into the host's unit tests.
    let mut crates = plugin_crates(&plugins);
    crates.retain(|name| name != "sdk");
    let testing_crates = plugin_crates(&plugins.join("testing"));

    // The plugins get their own target directory beside the host's, so the nested cargo
    // never waits for the lock the outer one holds.
    let out_directory = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_directory = workspace_target_directory(&out_directory).join("plugins");
    ensure_wasm_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_directory);
    // Settings meant for the host build must not leak into the plugin build.
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
    // WebAssembly's 128-bit SIMD, which wasmtime compiles to the machine's vector
    // instructions: loops over a city's columns (ages, dates) vectorize as they do natively.
    command.env("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", "-C target-feature=+simd128");
    let status = command.status().expect("cannot run cargo to build the plugins");
    assert!(status.success(), "building the plugins in {} failed", plugins.display());

    let components = target_directory.join("wasm32-wasip2/release");
    std::fs::write(out_directory.join("bundled_plugins.rs"), embed("PROGRAMS", &crates, &plugins, &components))
        .unwrap();
    std::fs::write(
        out_directory.join("testing_plugins.rs"),
        embed("PLUGINS", &testing_crates, &plugins.join("testing"), &components),
    )
    .unwrap();
}

/// The names of the crate folders directly in `directory`, sorted.
fn plugin_crates(directory: &Path) -> Vec<String> {
    let mut crates = Vec::new();
    for entry in
        std::fs::read_dir(directory).unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()))
    {
        let folder = entry.unwrap().path();
        if folder.join("Cargo.toml").exists() {
            println!("cargo:rerun-if-changed={}", folder.join("src").display());
            println!("cargo:rerun-if-changed={}", folder.join("Cargo.toml").display());
            println!("cargo:rerun-if-changed={}", folder.join("cases.yaml").display());
            crates.push(folder.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    crates.sort();
    crates
}

/// Rust source for a constant `name` listing (crate name, component bytes, the text of
/// the crate's `cases.yaml`, empty when it has none).
fn embed(name: &str, crates: &[String], sources: &Path, components: &Path) -> String {
    let mut source = format!(
        "/// Components built from `plugins/`: (crate name, component bytes, example cases).\n\
         pub const {name}: &[crate::Component] = &[\n"
    );
    for crate_name in crates {
        let wasm = components.join(format!("{}.wasm", crate_name.replace('-', "_")));
        assert!(wasm.exists(), "the plugin {crate_name} built no component at {}", wasm.display());
        let cases = sources.join(crate_name).join("cases.yaml");
        let cases =
            if cases.exists() { format!("include_str!({:?})", cases.display().to_string()) } else { "\"\"".to_owned() };
        source.push_str(&format!("    ({crate_name:?}, include_bytes!({:?}), {cases}),\n", wasm.display().to_string()));
    }
    source.push_str("];\n");
    source
}

/// rust-toolchain.toml lists wasm32-wasip2, and rustup installs it with the toolchain; a
/// toolchain installed earlier without it gets it here.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string());
    let installed = sysroot.is_some_and(|sysroot| Path::new(&sysroot).join("lib/rustlib/wasm32-wasip2").exists());
    if !installed {
        let toolchain = std::env::var("RUSTUP_TOOLCHAIN").unwrap_or_default();
        let mut command = Command::new("rustup");
        command.args(["target", "add", "wasm32-wasip2"]);
        if !toolchain.is_empty() {
            command.args(["--toolchain", &toolchain]);
        }
        let _ = command.status();
    }
}

/// `target/` from `target/<profile>/build/<package>-<hash>/out`.
fn workspace_target_directory(out_directory: &Path) -> PathBuf {
    out_directory.ancestors().nth(4).map(Path::to_path_buf).unwrap_or_else(|| out_directory.to_path_buf())
}

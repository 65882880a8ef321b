//! Many towns past one machine: every manifest of `deploy/kubernetes/` is an object that
//! Kubernetes's own schemas accept, strictly (`kubernetes-validate --strict`), and the
//! worked town with one key misspelt or one value of the wrong type is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

const MANIFESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes");

/// The Kubernetes version whose schemas the manifests are checked against: the first in
/// which sidecar containers (an init container that keeps running, as Litestream is) are
/// generally available.
const KUBERNETES: &str = "1.33.0";

/// Every YAML file of `deploy/kubernetes`, in order of name.
fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(MANIFESTS)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml" || extension == "yml"))
        .collect();
    files.sort();
    files
}

/// `kubernetes-validate --strict` of `files`: whether it passed and what it said.
fn validate(files: &[PathBuf]) -> (bool, String) {
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "-k", KUBERNETES])
        .args(files)
        .output()
        .expect("cannot run kubernetes-validate: .ci/run installs it");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), said)
}

#[test]
fn the_manifests_are_objects_kubernetes_accepts_and_a_broken_town_is_not() {
    let files = manifests();
    let names: Vec<_> = files.iter().map(|file| file.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(
        names.contains(&"town-chuo.yaml".to_owned()) && names.contains(&"secret.example.yaml".to_owned()),
        "{names:?}"
    );
    let (passed, complaints) = validate(&files);
    assert!(passed && complaints.trim().is_empty(), "kubernetes-validate: {complaints}");

    let town = std::fs::read_to_string(Path::new(MANIFESTS).join("town-chuo.yaml")).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let broken = |name: &str, text: String| -> (bool, String) {
        assert_ne!(text, town, "{name}: the change changed nothing");
        let path = directory.path().join(name);
        std::fs::write(&path, text).unwrap();
        validate(&[path])
    };
    // A key misspelt is a key the schema does not know: only strict validation refuses it,
    // where a lenient one would pass a security setting that is not there.
    let (passed, complaints) =
        broken("misspelt.yaml", town.replacen("readOnlyRootFilesystem:", "readOnlyRootFilesytem:", 1));
    assert!(!passed && complaints.contains("'readOnlyRootFilesytem' was unexpected"), "{complaints}");
    let (passed, complaints) = broken("wrong-type.yaml", town.replacen("replicas: 1", "replicas: one", 1));
    assert!(!passed && complaints.contains("spec.replicas: 'one' is not of type 'integer'"), "{complaints}");
}

//! The components built from `plugins/`, embedded: the catalogue's programs that a new
//! data directory is given, and (with the `testing` feature) the misbehaving plugins of
//! the sandbox tests. Each is (crate name, component bytes, the text of its `cases.yaml`).

/// (crate name, component bytes, the text of the crate's `cases.yaml`, empty when none).
pub type Component = (&'static str, &'static [u8], &'static str);

include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));

/// The sandbox tests' plugins: hostile, old-version and the like.
#[cfg(feature = "testing")]
pub mod testing {
    include!(concat!(env!("OUT_DIR"), "/testing_plugins.rs"));

    /// Real components of `oshirase:program@1.0.0`: two catalogue programs as commit
    /// f884c6a built them (`cargo build --release --target wasm32-wasip2` in `plugins/`),
    /// kept as bytes so that the host's tests prove it still runs what divisions published
    /// before 1.1. (name, component bytes, the cases that held for them).
    pub const CONTRACT_1_0: [(&str, &[u8], &str); 2] = [
        (
            "screening-colon",
            include_bytes!("../contract-1.0/screening-colon.wasm"),
            include_str!("../contract-1.0/screening-colon.cases.yaml"),
        ),
        (
            "vaccine-mr",
            include_bytes!("../contract-1.0/vaccine-mr.wasm"),
            include_str!("../contract-1.0/vaccine-mr.cases.yaml"),
        ),
    ];
}

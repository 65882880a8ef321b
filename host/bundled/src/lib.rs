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
}

//! A plugin for `oshirase:program@2.0.0`, which the host does not implement; it exists so
//! that the host's tests can check the message naming both versions.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "wit", world: "program" });

    struct Future;

    impl Guest for Future {
        fn evaluate(_today: i32) -> u32 {
            0
        }
    }

    export!(Future);
}

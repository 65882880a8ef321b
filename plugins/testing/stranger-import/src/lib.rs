//! A program that answers `describe()` like any other but reaches for an import the host
//! does not provide (`oshirase:stranger/backdoor`), so the host must refuse to link it.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: ["../../../wit", "wit"], world: "oshirase:stranger/plugin", generate_all });

    use oshirase::program::types::{Category, Occasion};

    struct Stranger;

    impl Guest for Stranger {
        fn describe() -> ProgramInfo {
            ProgramInfo {
                code: "stranger-import".into(),
                name: "外部接続を試みる制度".into(),
                division: "テスト課".into(),
                contact: "000-0000-0000".into(),
                category: Category::Living,
                schedule: "0 0 9 * * *".into(),
                source_url: "https://example.invalid/".into(),
                fields: Vec::new(),
                kinds: Vec::new(),
                settings: Vec::new(),
                occasions: vec![Occasion {
                    key: "only".into(),
                    title: "テスト".into(),
                    template: "【{program}】お問い合わせ: {contact}".into(),
                }],
            }
        }

        fn evaluate(_today: i32, _settings: Vec<SettingValue>, _population: Population) -> Result<Notices, String> {
            Err(format!("the backdoor answered {}", oshirase::stranger::backdoor::open()))
        }
    }

    export!(Stranger);
}

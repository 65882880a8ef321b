//! The guest SDK for oshirase program plugins: plain Rust types for the WIT contract, row
//! views over the columnar population, Japanese date arithmetic, and [`export_program!`].
//!
//! A plugin implements [`Program`] on a unit struct and calls `export_program!(MyProgram)`.
//! The same crate builds natively too (the host uses the date arithmetic and these types),
//! so nothing here may depend on the WebAssembly glue except the `glue` module.

#[cfg(feature = "cases")]
pub mod cases;
pub mod date;
mod history;
mod household;
pub mod maternity;
mod population;
pub mod schedule;
pub mod screening;
pub mod single_parent;

pub use date::{Day, GestationalAge};
pub use history::{Code, History, Record};
pub use household::{Household, Households};
pub use population::{Events, Person, Population, Relationship, Sex, Taxable};

use std::ops::RangeInclusive;

/// The 年度 a recurring program declares occasions for. A notice key (program, resident,
/// occasion) is unique forever, so a screening offered every year needs one occasion per
/// year, and the manifest must list them all; a plugin asked about a later year fails
/// loudly (see [`Occasion::fiscal_year_key`]) so that the division publishes a new version.
pub const FISCAL_YEARS: RangeInclusive<i32> = 2024..=2040;

/// The data a program may ask for; see `wit/program.wit`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Field {
    BirthDay,
    Sex,
    Household,
    Relationship,
    Ward,
    ResidentSince,
    Tax,
    Pregnancies,
    Immunizations,
    Checkups,
    Receipts,
}

/// The categories residents choose from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Category {
    ChildRearing,
    Health,
    Vaccination,
    Allowance,
    Living,
}

/// One kind of notice a program sends, with the message text residents see.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Occasion {
    pub key: String,
    pub title: String,
    pub template: String,
}

impl Occasion {
    pub fn new(key: &str, title: &str, template: &str) -> Occasion {
        Occasion { key: key.to_owned(), title: title.to_owned(), template: template.to_owned() }
    }

    /// One occasion for each 年度 in [`FISCAL_YEARS`], keyed as [`Occasion::fiscal_year_key`]
    /// names them, all with the same message.
    pub fn per_fiscal_year(prefix: &str, title: &str, template: &str) -> Vec<Occasion> {
        FISCAL_YEARS
            .map(|fiscal_year| Occasion {
                key: fiscal_year_key(prefix, fiscal_year),
                title: format!("{title}({fiscal_year}年度)"),
                template: template.to_owned(),
            })
            .collect()
    }

    /// The key of the occasion for `fiscal_year`: `fy2026`, or `pregnancy-fy2026` with a
    /// prefix. Fails for a year outside [`FISCAL_YEARS`], which no manifest declares.
    pub fn fiscal_year_key(prefix: &str, fiscal_year: i32) -> Result<String, String> {
        if FISCAL_YEARS.contains(&fiscal_year) {
            Ok(fiscal_year_key(prefix, fiscal_year))
        } else {
            Err(format!(
                "fiscal year {fiscal_year} has no declared occasion (the manifest covers {} to {}): publish a new \
                 version of the plugin",
                FISCAL_YEARS.start(),
                FISCAL_YEARS.end()
            ))
        }
    }
}

fn fiscal_year_key(prefix: &str, fiscal_year: i32) -> String {
    if prefix.is_empty() { format!("fy{fiscal_year}") } else { format!("{prefix}-fy{fiscal_year}") }
}

/// What a program says about itself (its manifest).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProgramInfo {
    pub code: String,
    pub name: String,
    pub division: String,
    pub contact: String,
    pub category: Category,
    pub schedule: String,
    pub source_url: String,
    pub fields: Vec<Field>,
    pub occasions: Vec<Occasion>,
}

/// A decision that one person should be told about one occasion.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Notice {
    pub person: u32,
    pub occasion: String,
    pub send_on: Day,
    pub expires_on: Day,
    pub reason: String,
}

impl Notice {
    /// A notice for a window that opens on `opens` and closes on `closes`, if `today` falls
    /// inside it; residents are told from the first day of the window until it closes.
    pub fn for_open_window(
        person: &Person<'_>,
        occasion: &str,
        opens: Day,
        closes: Day,
        today: Day,
        reason: impl FnOnce() -> String,
    ) -> Option<Notice> {
        (opens <= today && today <= closes).then(|| Notice {
            person: person.index(),
            occasion: occasion.to_owned(),
            send_on: opens,
            expires_on: closes,
            reason: reason(),
        })
    }

    /// A notice about something learnt only today (a household became eligible for a
    /// benefit): it may be sent from today until `expires_on`.
    pub fn learnt_today(
        person: &Person<'_>,
        occasion: String,
        today: Day,
        expires_on: Day,
        reason: String,
    ) -> Option<Notice> {
        (today <= expires_on).then(|| Notice { person: person.index(), occasion, send_on: today, expires_on, reason })
    }
}

/// A program's rules. `evaluate` must be a pure function of its arguments.
pub trait Program {
    fn describe() -> ProgramInfo;
    fn evaluate(today: Day, population: &Population) -> Result<Vec<Notice>, String>;
}

/// The code wit-bindgen generates from `wit/program.wit`, compiled only into components.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "program",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_program_bindings",
        default_bindings_module: "oshirase_sdk::bindings",
    });
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod glue;

/// Exports a [`Program`] as the component's `describe` and `evaluate` functions.
/// Outside WebAssembly it expands to nothing, so the same crate also builds natively.
#[macro_export]
macro_rules! export_program {
    ($program:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Component;
            impl $crate::bindings::Guest for Component {
                fn describe() -> $crate::bindings::oshirase::program::types::ProgramInfo {
                    $crate::glue::describe::<$program>()
                }
                fn evaluate(
                    today: i32,
                    population: $crate::bindings::oshirase::program::types::Population,
                ) -> Result<Vec<$crate::bindings::oshirase::program::types::Notice>, String> {
                    $crate::glue::evaluate::<$program>(today, population)
                }
            }
    $crate::bindings::export_program_bindings!(Component with_types_in $crate::bindings);
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_fiscal_year_has_a_key_and_later_years_fail() {
        let keys: Vec<String> = Occasion::per_fiscal_year("pregnancy", "妊婦", "{program}")
            .into_iter()
            .map(|occasion| occasion.key)
            .collect();
        assert_eq!(
            (keys.first().map(String::as_str), keys.last().map(String::as_str), keys.len()),
            (Some("pregnancy-fy2024"), Some("pregnancy-fy2040"), 17)
        );
        assert_eq!(Occasion::fiscal_year_key("", 2026), Ok("fy2026".to_string()));
        assert!(
            Occasion::fiscal_year_key("", 2041).unwrap_err().starts_with("fiscal year 2041 has no declared occasion")
        );
    }
}

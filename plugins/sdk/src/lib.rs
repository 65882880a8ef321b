//! The guest SDK for oshirase program plugins: plain Rust types for the WIT contract, row
//! views over the columnar population, Japanese date arithmetic, and [`export_program!`].
//!
//! A plugin implements [`Program`] on a unit struct and calls `export_program!(MyProgram)`.
//! The same crate builds natively too (the host uses the date arithmetic and these types),
//! so nothing here may depend on the WebAssembly glue except the `glue` module.

pub mod date;
mod population;

pub use date::Day;
pub use population::{Events, Person, Population, Relationship, Sex};

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
    pub fn for_open_window(person: &Person<'_>, occasion: &str, opens: Day, closes: Day, today: Day, reason: impl FnOnce() -> String) -> Option<Notice> {
        (opens <= today && today <= closes).then(|| Notice {
            person: person.index(),
            occasion: occasion.to_owned(),
            send_on: opens,
            expires_on: closes,
            reason: reason(),
        })
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

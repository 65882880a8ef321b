//! The guest SDK for oshirase program plugins (`oshirase:program@1.1.0`): plain Rust types
//! for the WIT contract, row views over the columnar population, Japanese date arithmetic,
//! [`settings`] staff may change, data [`kinds`] read by name, and [`export_program!`].
//!
//! A plugin implements [`Program`] on a unit struct and calls `export_program!(MyProgram)`.
//! Its manifest ([`ProgramInfo`]) declares the fields and kinds it reads, its settings with
//! their types, bounds and defaults, and its occasions; `evaluate` returns [`Notice`]s,
//! which the glue hands the host as columns, each distinct reason once. A recurring
//! occasion is declared once and its notices carry an instance ([`Notice::instance`], the
//! 年度 for [`FISCAL_YEAR`]), so the key (program, resident, occasion, instance) tells each
//! 年度 once.
//! The same crate builds natively too (the host uses the date arithmetic and these types),
//! so nothing here may depend on the WebAssembly glue except the `glue` module.

mod by_person;
#[cfg(feature = "cases")]
pub mod cases;
pub mod conditions;
pub mod date;
mod history;
mod household;
pub mod kinds;
pub mod maternity;
mod population;
pub mod schedule;
pub mod screening;
pub mod settings;
pub mod single_parent;

pub use date::{Day, GestationalAge};
pub use history::{Code, History, Record};
pub use household::{Household, Households};
pub use kinds::{Attributes, Enrollments};
pub use population::{Events, Person, Population, Relationship, Sex, Taxable};
pub use settings::{MonthDay, Setting, SettingType, SettingValue, Settings};

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::rc::Rc;

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

/// One kind of notice a program sends, with the message text residents see. A recurring
/// occasion (every 年度) is declared once; its notices name their [`Notice::instance`].
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

/// The key of the occasion a program sends once per 年度, with the 年度 as its instance.
/// (A 1.0 plugin declared one occasion per year, `fy2026`; the host re-keys those notices
/// as this occasion, instance 2026, when a 1.1 version replaces it.)
pub const FISCAL_YEAR: &str = "fiscal-year";

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
    /// The data kinds read by name (`国保`, `要介護` …); see [`kinds`].
    pub kinds: Vec<String>,
    /// What staff may set; see [`settings`].
    pub settings: Vec<Setting>,
    pub occasions: Vec<Occasion>,
}

/// A decision that one person should be told about one occasion.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Notice {
    pub person: u32,
    /// One of the manifest's occasion keys: a constant of the plugin, borrowed, so that
    /// half a million notices do not each carry a copy.
    pub occasion: Cow<'static, str>,
    /// Which time of a recurring occasion (the 年度); 0 for an occasion that happens once.
    pub instance: i32,
    pub send_on: Day,
    pub expires_on: Day,
    pub reason: Reason,
}

/// Why a notice was given, for staff and the audit log; never sent to the resident. Each
/// distinct text is kept once per thread (a screening's half a million notices share a few
/// dozen reasons), and the notice holds its number: a plugin's memory and the host's copy
/// then grow with the distinct texts, not with the notices.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Reason(u32);

/// The distinct reason texts of a thread, and their numbers.
#[derive(Default)]
struct ReasonTable {
    numbers: HashMap<Rc<str>, u32>,
    texts: Vec<Rc<str>>,
}

thread_local! {
    /// This thread's reasons. A component is one fresh instance per evaluation, so its
    /// table holds that evaluation's reasons.
    static REASONS: RefCell<ReasonTable> = RefCell::default();
}

impl Reason {
    /// The reason with this text, stored if it is new to this thread.
    pub fn new(text: &str) -> Reason {
        REASONS.with_borrow_mut(|table| {
            if let Some(number) = table.numbers.get(text) {
                return Reason(*number);
            }
            let number = table.texts.len() as u32;
            let text: Rc<str> = Rc::from(text);
            table.texts.push(text.clone());
            table.numbers.insert(text, number);
            Reason(number)
        })
    }

    /// Its number among this thread's reasons, which index [`Reason::texts`].
    pub fn number(self) -> u32 {
        self.0
    }

    /// Every reason text of this thread, in the order of their numbers.
    pub fn texts() -> Vec<String> {
        REASONS.with_borrow(|table| table.texts.iter().map(|text| text.to_string()).collect())
    }
}

impl From<String> for Reason {
    fn from(text: String) -> Reason {
        Reason::new(&text)
    }
}

impl From<&str> for Reason {
    fn from(text: &str) -> Reason {
        Reason::new(text)
    }
}

/// The reasons of one evaluation by a key that is cheaper to find than the text (an age, a
/// pair of dates): a screening gives half a million notices a few dozen reasons, and
/// formatting and looking up each text again took about half of its call.
pub struct ReasonsByKey<K> {
    made: rustc_hash::FxHashMap<K, Reason>,
}

impl<K: Eq + Hash> ReasonsByKey<K> {
    pub fn new() -> ReasonsByKey<K> {
        ReasonsByKey { made: rustc_hash::FxHashMap::default() }
    }

    /// The reason for `key`, its text written by `text` the first time the key is seen.
    pub fn get(&mut self, key: K, text: impl FnOnce() -> String) -> Reason {
        *self.made.entry(key).or_insert_with(|| Reason::new(&text()))
    }
}

impl<K: Eq + Hash> Default for ReasonsByKey<K> {
    fn default() -> ReasonsByKey<K> {
        ReasonsByKey::new()
    }
}

impl Notice {
    /// A notice for a window that opens on `opens` and closes on `closes`, if `today` falls
    /// inside it; residents are told from the first day of the window until it closes.
    /// `reason` is asked only when a notice is given: a text, or a [`Reason`] from
    /// [`ReasonsByKey`].
    pub fn for_open_window<R: Into<Reason>>(
        person: &Person<'_>,
        occasion: &'static str,
        opens: Day,
        closes: Day,
        today: Day,
        reason: impl FnOnce() -> R,
    ) -> Option<Notice> {
        (opens <= today && today <= closes).then(|| Notice {
            person: person.index(),
            occasion: Cow::Borrowed(occasion),
            instance: 0,
            send_on: opens,
            expires_on: closes,
            reason: reason().into(),
        })
    }

    /// A notice about something learnt only today (a household became eligible for a
    /// benefit): it may be sent from today until `expires_on`.
    pub fn learnt_today(
        person: &Person<'_>,
        occasion: &'static str,
        today: Day,
        expires_on: Day,
        reason: String,
    ) -> Option<Notice> {
        (today <= expires_on).then(|| Notice {
            person: person.index(),
            occasion: Cow::Borrowed(occasion),
            instance: 0,
            send_on: today,
            expires_on,
            reason: Reason::new(&reason),
        })
    }

    /// The same notice as the `instance`-th time of its occasion (the 年度 of a screening).
    pub fn instance(self, instance: i32) -> Notice {
        Notice { instance, ..self }
    }
}

/// A program's rules. `evaluate` must be a pure function of its arguments.
pub trait Program {
    fn describe() -> ProgramInfo;
    /// `settings` holds a value for each setting the manifest declares (its default until
    /// staff change it).
    fn evaluate(today: Day, settings: &Settings, population: &Population) -> Result<Vec<Notice>, String>;
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
                    settings: Vec<$crate::bindings::oshirase::program::types::SettingValue>,
                    population: $crate::bindings::oshirase::program::types::Population,
                ) -> Result<$crate::bindings::oshirase::program::types::Notices, String> {
                    $crate::glue::evaluate::<$program>(today, settings, population)
                }
            }
    $crate::bindings::export_program_bindings!(Component with_types_in $crate::bindings);
        };
    };
}

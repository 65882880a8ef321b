//! The component programs made from conditions run: its settings are the conditions of
//! [`oshirase_sdk::conditions`] (an age window, sex, ward, a data kind, no record within N
//! 年度, once or every 年度, a season). It is never published as itself: staff make a
//! program from it in the console, and the host publishes it under that program's code,
//! name, wording and conditions (`oshirase_core::conditions`).
//!
//! For the division: docs/writing-a-program.md, "Programs from conditions".

use oshirase_sdk::conditions::{self, Conditions};
use oshirase_sdk::{Category, Day, Notice, Population, Program, ProgramInfo, Settings, export_program};

pub struct FromConditions;

impl Program for FromConditions {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: "conditions".into(),
            name: "条件で作るお知らせ".into(),
            division: "(作成した課)".into(),
            contact: "(問い合わせ先)".into(),
            category: Category::Health,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://www.city.chiba.jp/".into(),
            fields: conditions::fields(),
            kinds: conditions::kinds(),
            settings: conditions::settings(),
            occasions: conditions::occasions(),
        }
    }

    fn evaluate(today: Day, settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        Conditions::from_settings(settings)?.evaluate(today, population)
    }
}

export_program!(FromConditions);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<FromConditions>(include_str!("../cases.yaml"));
    }
}

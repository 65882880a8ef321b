//! 児童扶養手当 (児童扶養手当法 第4条・第9条; income limits of 施行令 第2条の4 as revised in
//! November 2024): a single parent raising a 児童 (until the first March 31 after reaching
//! 18) whose income, after the deductions of 施行令 第4条, is under the limit for their
//! dependants. Only residents who consented to
//! the use of tax data can be judged, and those already receiving the allowance are not told.
//! The head of household is told once per 年度 while this holds; the rule and its
//! simplifications are in [`oshirase_sdk::single_parent`].
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::{
    Category, Day, FISCAL_YEAR, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program,
    single_parent,
};

pub struct ChildRearingAllowance;

const CODE: &str = "child-rearing-allowance";

impl Program for ChildRearingAllowance {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: CODE.into(),
            name: "児童扶養手当".into(),
            division: "こども家庭支援課".into(),
            contact: "各区保健福祉センター こども家庭課".into(),
            category: Category::Allowance,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://laws.e-gov.go.jp/law/336AC0000000238".into(),
            fields: single_parent::FIELDS.to_vec(),
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![Occasion::new(
                FISCAL_YEAR,
                "受給できる可能性",
                "【{program}】ひとり親家庭などで18歳になった年度末までのお子さんを\
                 育てている方は、所得に応じて児童扶養手当を受け取れる\
                 可能性があります。申請した月の翌月分から支給されます。\
                 区の保健福祉センター こども家庭課でご相談ください({deadline}まで)。\
                 千葉市 こども家庭支援課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
            )],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        single_parent::evaluate(CODE, today, population)
    }
}

export_program!(ChildRearingAllowance);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<ChildRearingAllowance>(include_str!("../cases.yaml"));
    }
}

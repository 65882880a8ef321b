//! ひとり親家庭等医療費助成, as Chiba city runs it
//! (<https://www.city.chiba.jp/kodomomirai/kodomomirai/kateishien/hitorioya-iryouhi.html>): the
//! parent and children of a single-parent household, until the child's first March 31 after
//! reaching 18, with income at the 児童扶養手当受給水準. Only residents who consented to the
//! use of tax data can be judged, and those already receiving the subsidy are not told. The
//! head of household is told once per 年度 while this holds; the rule and its
//! simplifications are in [`oshirase_sdk::single_parent`].
//!
//! Simplification: the conditions on insurance and on other public medical subsidies
//! (生活保護, 心身障害者医療) are checked by the division on application.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::{
    Category, Day, FISCAL_YEAR, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program,
    single_parent,
};

pub struct SingleParentMedical;

const CODE: &str = "single-parent-medical";

impl Program for SingleParentMedical {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: CODE.into(),
            name: "ひとり親家庭等医療費助成".into(),
            division: "こども家庭支援課".into(),
            contact: "各区保健福祉センター こども家庭課".into(),
            category: Category::Allowance,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://www.city.chiba.jp/kodomomirai/kodomomirai/kateishien/hitorioya-iryouhi.html".into(),
            fields: single_parent::FIELDS.to_vec(),
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![Occasion::new(
                FISCAL_YEAR,
                "助成を受けられる可能性",
                "【{program}】ひとり親家庭などのお父さん・お母さんとお子さんは、\
                 保険診療の医療費の助成を受けられる可能性があります。\
                 申請した翌月以降の受診が対象です。区の保健福祉センター \
                 こども家庭課でご相談ください({deadline}まで)。千葉市 こども家庭支援課 \
                 https://www.city.chiba.jp/kodomomirai/kodomomirai/kateishien/hitorioya-iryouhi.html \
                 お問い合わせ: {contact}",
            )],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        single_parent::evaluate(CODE, today, population)
    }
}

export_program!(SingleParentMedical);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<SingleParentMedical>(include_str!("../cases.yaml"));
    }
}

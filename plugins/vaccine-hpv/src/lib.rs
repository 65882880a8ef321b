//! ヒトパピローマウイルス感染症(HPV)の定期接種 (予防接種法施行令 第1条の3 別表:
//! 12歳となる日の属する年度の初日から16歳となる日の属する年度の末日までの間にある
//! 女子, i.e. 小学6年から高校1年相当). Girls are told on April 1 of the year they reach 12, unless dose 1
//! is recorded.
//!
//! Simplification: the キャッチアップ接種 for women born 1997–2008 is not covered.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::schedule::{Done, Period, Recorded, Schedule};
use oshirase_sdk::{Category, Day, Notice, Occasion, Population, Program, ProgramInfo, Settings, Sex, export_program};

pub struct VaccineHpv;

const SCHEDULE: Schedule = Schedule {
    code: "vaccine-hpv",
    recorded: Recorded::Immunizations,
    sex: Some(Sex::Female),
    closed_by_months: 17 * 12,
    periods: &[Period {
        occasion: "start",
        done: Done::Dose(1),
        window: |birth, _| {
            Some((
                Day::fiscal_year_start(birth.fiscal_year_reaching(12)),
                Day::fiscal_year_end(birth.fiscal_year_reaching(16)),
            ))
        },
    }],
};

impl Program for VaccineHpv {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCHEDULE.code.into(),
            name: "HPV(子宮頸がん予防)ワクチン予防接種".into(),
            division: "医療政策課".into(),
            contact: "各区保健福祉センター 健康課".into(),
            category: Category::Vaccination,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://laws.e-gov.go.jp/law/323CO0000000197".into(),
            fields: SCHEDULE.fields(),
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![Occasion::new(
                "start",
                "小学6年〜高校1年相当の女子",
                "【{program}】HPV(子宮頸がん予防)ワクチンの定期接種の対象になりました。\
                 小学6年から高校1年相当の女子が無料で受けられます(2〜3回、{deadline}まで)\
                 。ワクチンの効果と副反応について、\
                 市のページや医療機関の説明をご確認ください。千葉市 医療政策課 \
                 https://www.city.chiba.jp/ お問い合わせ: {contact}",
            )],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCHEDULE.evaluate(today, population)
    }
}

export_program!(VaccineHpv);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<VaccineHpv>(include_str!("../cases.yaml"));
    }
}

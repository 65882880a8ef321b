//! 大腸がん検診 (健康増進法 第19条の2; がん検診実施のための指針): every 年度 for residents
//! aged 40 or more on 年度末, told when the city's screening season opens, unless a screening
//! is recorded in the same 年度. See [`oshirase_sdk::screening`].
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::screening::Screening;
use oshirase_sdk::{Category, Day, Notice, Population, Program, ProgramInfo, Settings, export_program};

pub struct ScreeningColon;

const SCREENING: Screening = Screening {
    code: "screening-colon",
    minimum_age_at_fiscal_year_end: 40,
    ends_on_birthday: None,
    sex: None,
    members_of: None,
    every_fiscal_years: 1,
};

impl Program for ScreeningColon {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCREENING.code.into(),
            name: "大腸がん検診".into(),
            division: "健康支援課".into(),
            contact: "千葉市 健康支援課 043-238-9930".into(),
            category: Category::Health,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://www.city.chiba.jp/hokenfukushi/kenkofukushi/shien/24ganannai.html".into(),
            fields: SCREENING.fields(),
            kinds: SCREENING.kinds(),
            settings: SCREENING.settings(),
            occasions: SCREENING.occasions(
                "大腸がん検診",
                "【{program}】今年度の大腸がん検診(便潜血検査)の対象です。\
                 がん検診等受診券シールを持って、\
                 協力医療機関または集団検診で{deadline}までに受診してください。\
                 詳しくは https://www.city.chiba.jp/hokenfukushi/kenkofukushi/shien/24ganannai.html (千葉市 \
                 健康支援課) お問い合わせ: {contact}",
            ),
        }
    }

    fn evaluate(today: Day, settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCREENING.evaluate(today, settings, population)
    }
}

export_program!(ScreeningColon);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<ScreeningColon>(include_str!("../cases.yaml"));
    }
}

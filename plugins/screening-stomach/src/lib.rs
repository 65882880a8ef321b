//! 胃がん検診 as Chiba city runs it
//! (<https://www.city.chiba.jp/hokenfukushi/kenkofukushi/shien/24ganannai.html>), which differs
//! from the national 指針 (50歳以上、2年に1回): 胃部エックス線検査 every 年度 from age 40 on
//! 年度末 (the 指針's
//! 「当分の間、胃部エックス線検査については40歳以上に対し実施も可」), and
//! 胃内視鏡検査 from 50 at even ages on 年度末. Residents aged 40 or more on 年度末 with no stomach
//! screening recorded in this 年度 are told when the season opens; the message names both methods and who may choose
//! the endoscopy. See [`oshirase_sdk::screening`].
//!
//! Simplification: the export does not say which method a recorded screening used, so any
//! screening this 年度 ends the notice, and a rule that limits one method after the other
//! cannot be checked.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::screening::Screening;
use oshirase_sdk::{Category, Day, Notice, Population, Program, ProgramInfo, Settings, export_program};

pub struct ScreeningStomach;

const SCREENING: Screening = Screening {
    code: "screening-stomach",
    minimum_age_at_fiscal_year_end: 40,
    ends_on_birthday: None,
    sex: None,
    members_of: None,
    every_fiscal_years: 1,
};

impl Program for ScreeningStomach {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCREENING.code.into(),
            name: "胃がん検診".into(),
            division: "健康支援課".into(),
            contact: "千葉市 健康支援課 043-238-9930".into(),
            category: Category::Health,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://www.city.chiba.jp/hokenfukushi/kenkofukushi/shien/24ganannai.html".into(),
            fields: SCREENING.fields(),
            kinds: SCREENING.kinds(),
            settings: SCREENING.settings(),
            occasions: SCREENING.occasions(
                "胃がん検診",
                "【{program}】今年度の胃がん検診の対象です。\
                 胃部エックス線検査は40歳以上の方が毎年、\
                 胃内視鏡検査は年度末の年齢が50歳以上の偶数の方が受けられます。\
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

export_program!(ScreeningStomach);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<ScreeningStomach>(include_str!("../cases.yaml"));
    }
}

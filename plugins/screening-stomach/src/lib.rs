//! 胃がん検診 (がん検診実施のための指針: 50歳以上、2年に1回): residents aged 50 or more on
//! 年度末 who had no screening in this or the previous 年度 are told when the city's
//! screening season opens. See [`oshirase_sdk::screening`].
//!
//! Simplification: Chiba city also offers the エックス線検査 every year from 40; this plugin
//! follows the national 指針 (50歳以上、2年に1回), which covers both methods.

use oshirase_sdk::screening::Screening;
use oshirase_sdk::{export_program, Category, Day, Notice, Population, Program, ProgramInfo};

pub struct ScreeningStomach;

const SCREENING: Screening = Screening { code: "screening-stomach", minimum_age_at_fiscal_year_end: 50, ends_on_birthday: None, sex: None, every_fiscal_years: 2 };

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
            occasions: SCREENING.occasions(
                "胃がん検診",
                "【{program}】今年度の胃がん検診の対象です(前年度に受診した方を除く、2年に1回)。がん検診等受診券シールを持って、協力医療機関または集団検診で{deadline}までに受診してください。詳しくは https://www.city.chiba.jp/hokenfukushi/kenkofukushi/shien/24ganannai.html (千葉市 健康支援課) お問い合わせ: {contact}",
            ),
        }
    }

    fn evaluate(today: Day, population: &Population) -> Result<Vec<Notice>, String> {
        SCREENING.evaluate(today, population)
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

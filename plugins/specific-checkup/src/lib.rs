//! 特定健康診査 (高齢者の医療の確保に関する法律 第20条;
//! 実施年度中に40歳以上75歳以下となる加入者): every 年度 for residents aged 40 or more on
//! 年度末, until the day before their 75th birthday (後期高齢者医療 starts on the birthday), told when the
//! city's checkup season opens, unless a checkup is recorded in the same 年度. See [`oshirase_sdk::screening`].
//!
//! Only members of 千葉市国民健康保険 are examined by the city (the other insurers examine
//! their own members, 高確法 第20条), so the program reads the data kind `国保` from the
//! export's `enrollments.csv` and tells only those who are members on the day, until the
//! membership ends if it ends within the season. The season's dates are settings.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::screening::Screening;
use oshirase_sdk::{Category, Day, Notice, Population, Program, ProgramInfo, Settings, export_program};

pub struct SpecificCheckup;

const SCREENING: Screening = Screening {
    code: "specific-checkup",
    minimum_age_at_fiscal_year_end: 40,
    ends_on_birthday: Some(75),
    sex: None,
    members_of: Some("国保"),
    every_fiscal_years: 1,
};

impl Program for SpecificCheckup {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCREENING.code.into(),
            name: "特定健康診査".into(),
            division: "健康支援課".into(),
            contact: "千葉市 健康支援課 043-238-9930".into(),
            category: Category::Health,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://laws.e-gov.go.jp/law/357AC0000000080".into(),
            fields: SCREENING.fields(),
            kinds: SCREENING.kinds(),
            settings: SCREENING.settings(),
            occasions: SCREENING.occasions(
                "特定健診",
                "【{program}】千葉市国民健康保険に加入している40〜74歳の方は、\
                 今年度の特定健康診査(メタボ健診)を無料で受けられます。\
                 受診券を持って協力医療機関で{deadline}までに受診してください。\
                 ほかの健康保険に加入している方は、加入先にお問い合わせください。\
                 千葉市 健康支援課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
            ),
        }
    }

    fn evaluate(today: Day, settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCREENING.evaluate(today, settings, population)
    }
}

export_program!(SpecificCheckup);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<SpecificCheckup>(include_str!("../cases.yaml"));
    }
}

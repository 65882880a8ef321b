//! 子宮がん検診 (がん検診実施のための指針: 20歳以上の女性、2年に1回): women aged 20 or more
//! on 年度末 who had no screening in this or the previous 年度 are told when the city's
//! screening season opens. See [`oshirase_sdk::screening`].
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::screening::Screening;
use oshirase_sdk::{Category, Day, Notice, Population, Program, ProgramInfo, Settings, Sex, export_program};

pub struct ScreeningCervical;

const SCREENING: Screening = Screening {
    code: "screening-cervical",
    minimum_age_at_fiscal_year_end: 20,
    ends_on_birthday: None,
    sex: Some(Sex::Female),
    members_of: None,
    every_fiscal_years: 2,
};

impl Program for ScreeningCervical {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCREENING.code.into(),
            name: "子宮がん検診".into(),
            division: "健康支援課".into(),
            contact: "千葉市 健康支援課 043-238-9930".into(),
            category: Category::Health,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://www.city.chiba.jp/hokenfukushi/kenkofukushi/shien/24ganannai.html".into(),
            fields: SCREENING.fields(),
            kinds: SCREENING.kinds(),
            settings: SCREENING.settings(),
            occasions: SCREENING.occasions(
                "子宮がん検診",
                "【{program}】今年度の子宮がん検診の対象です(前年度に受診した方を除く、\
                 2年に1回)。がん検診等受診券シールを持って、\
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

export_program!(ScreeningCervical);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<ScreeningCervical>(include_str!("../cases.yaml"));
    }
}

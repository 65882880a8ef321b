//! 乳児一般健康診査: two free checkups at a medical institution, for about 3–6 and 9–11
//! months of age, as Chiba city runs them (母子保健法 第13条). Residents are told when each
//! window opens, unless the history already records that visit.
//!
//! Simplification: the city's 受診票 are valid from 生後3月 until 生後7月 is reached and
//! from 生後9月 until the day before the first birthday, itself included; visits are recorded as checkup kind
//! `infant-checkup` with `count` 1 or 2 (which 受診票 was used).
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::schedule::{Done, Period, Recorded, Schedule};
use oshirase_sdk::{Category, Day, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program};

pub struct InfantCheckup;

const SCHEDULE: Schedule = Schedule {
    code: "infant-checkup",
    recorded: Recorded::Checkups,
    sex: None,
    closed_by_months: 12,
    periods: &[
        Period {
            occasion: "first",
            done: Done::Dose(1),
            window: |birth, _| Some((birth.months_reached(3), birth.months_reached(7).add_days(-1))),
        },
        Period {
            occasion: "second",
            done: Done::Dose(2),
            window: |birth, _| Some((birth.months_reached(9), birth.last_day_under_age(1))),
        },
    ],
};

impl Program for InfantCheckup {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCHEDULE.code.into(),
            name: "乳児一般健康診査".into(),
            division: "健康支援課".into(),
            contact: "各区保健福祉センター 健康課".into(),
            category: Category::ChildRearing,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://laws.e-gov.go.jp/law/340AC0000000141".into(),
            fields: SCHEDULE.fields(),
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![
                Occasion::new(
                    "first",
                    "1回目(生後3〜6か月)",
                    "【{program}】お子さんが1回目の乳児健康診査(生後3〜6か月)\
                     を受けられる時期になりました。母子健康手帳別冊の受診票を持って、\
                     {deadline}までに協力医療機関で受診してください(無料)。\
                     千葉市 健康支援課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
                ),
                Occasion::new(
                    "second",
                    "2回目(生後9〜11か月)",
                    "【{program}】お子さんが2回目の乳児健康診査(生後9〜11か月)\
                     を受けられる時期になりました。母子健康手帳別冊の受診票を持って、\
                     {deadline}までに協力医療機関で受診してください(無料)。\
                     千葉市 健康支援課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
                ),
            ],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCHEDULE.evaluate(today, population)
    }
}

export_program!(InfantCheckup);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<InfantCheckup>(include_str!("../cases.yaml"));
    }
}

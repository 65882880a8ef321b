//! 1歳6か月児健康診査 (母子保健法 第12条 第1項第1号): for a child
//! 「満1歳6か月を超え満2歳に達しない」, so from the day after 生後18月 is reached until the day
//! before the second birthday, itself included (read as 「2歳未満」 is by the ministry's notice of 2014-03-11
//! on 定期の予防接種). The child's household is told when the period opens, unless the history records
//! the checkup.
//!
//! Simplification: Chiba city invites each child to a 集団健診 date inside this period; the
//! notice covers the legal period and points to the invitation.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::schedule::{Done, Period, Recorded, Schedule};
use oshirase_sdk::{Category, Day, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program};

pub struct Checkup18Months;

const SCHEDULE: Schedule = Schedule {
    code: "checkup-18m",
    recorded: Recorded::Checkups,
    sex: None,
    closed_by_months: 24,
    periods: &[Period {
        occasion: "due",
        done: Done::AnyRecord,
        window: |birth, _| Some((birth.months_reached(18).add_days(1), birth.last_day_under_age(2))),
    }],
};

impl Program for Checkup18Months {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCHEDULE.code.into(),
            name: "1歳6か月児健康診査".into(),
            division: "健康支援課".into(),
            contact: "各区保健福祉センター 健康課".into(),
            category: Category::ChildRearing,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://laws.e-gov.go.jp/law/340AC0000000141".into(),
            fields: SCHEDULE.fields(),
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![Occasion::new(
                "due",
                "1歳6か月児健診の対象",
                "【{program}】お子さんが1歳6か月児健康診査の対象になりました。\
                 区の保健福祉センターからの案内で指定された日に、\
                 母子健康手帳を持って受診してください(無料)。\
                 対象期間は{deadline}までです。千葉市 健康支援課 https://www.city.chiba.jp/ \
                 お問い合わせ: {contact}",
            )],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCHEDULE.evaluate(today, population)
    }
}

export_program!(Checkup18Months);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<Checkup18Months>(include_str!("../cases.yaml"));
    }
}

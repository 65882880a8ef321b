//! 日本脳炎の定期接種 (予防接種法施行令 第1条の3 別表): 1期
//! 生後6月から生後90月に至るまで (標準的には3歳から、初回2回と1年後の追加1回); 2期
//! 9歳以上13歳未満 (標準的には9歳). Two notices: 1期 when age 3 is reached, unless dose 1 is recorded;
//! 2期 when age 9 is reached, unless dose 4 is recorded.
//!
//! Simplifications: the notice for 1期 follows the standard start (3歳), not the legal one
//! (生後6月); the 特例 for people born 2007-04-01 or earlier is not covered.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::schedule::{Done, Period, Recorded, Schedule};
use oshirase_sdk::{Category, Day, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program};

pub struct VaccineJapaneseEncephalitis;

const SCHEDULE: Schedule = Schedule {
    code: "vaccine-je",
    recorded: Recorded::Immunizations,
    sex: None,
    closed_by_months: 13 * 12,
    periods: &[
        Period {
            occasion: "phase-1",
            done: Done::Dose(1),
            window: |birth, _| Some((birth.age_reached(3), birth.last_day_up_to_months(90))),
        },
        Period {
            occasion: "phase-2",
            done: Done::Dose(4),
            window: |birth, _| Some((birth.age_reached(9), birth.last_day_under_age(13))),
        },
    ],
};

impl Program for VaccineJapaneseEncephalitis {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCHEDULE.code.into(),
            name: "日本脳炎予防接種".into(),
            division: "医療政策課".into(),
            contact: "各区保健福祉センター 健康課".into(),
            category: Category::Vaccination,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://laws.e-gov.go.jp/law/323CO0000000197".into(),
            fields: SCHEDULE.fields(),
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![
                Occasion::new(
                    "phase-1",
                    "1期(3歳)",
                    "【{program}】お子さんが日本脳炎ワクチン1期の標準的な接種年齢(3歳)\
                     になりました。6〜28日の間隔で2回、その約1年後に追加1回受けます。\
                     協力医療機関に予約してください(無料、{deadline}まで)。\
                     千葉市 医療政策課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
                ),
                Occasion::new(
                    "phase-2",
                    "2期(9歳)",
                    "【{program}】お子さんが日本脳炎ワクチン2期の定期接種の対象\
                     (9歳以上13歳未満)になりました。\
                     協力医療機関に予約して1回受けてください(無料、{deadline}まで)。\
                     千葉市 医療政策課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
                ),
            ],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCHEDULE.evaluate(today, population)
    }
}

export_program!(VaccineJapaneseEncephalitis);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<VaccineJapaneseEncephalitis>(include_str!("../cases.yaml"));
    }
}

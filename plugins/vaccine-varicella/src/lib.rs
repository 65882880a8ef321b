//! 水痘の定期接種 (予防接種法施行令 第1条の3 別表: 生後12月から生後36月に至るまで;
//! 2回、3月以上の間隔). Two notices: dose 1 when 生後12月 is reached, unless recorded; dose 2 once
//! 6 months have passed since dose 1, counted as 「6月以上の間隔」 ([`Day::after_interval_of_months`];
//! 定期接種実施要領: 標準的には1回目から6月から12月まで), unless recorded.
//!
//! Simplification: the law allows dose 2 from 3 months after dose 1; the notice follows the
//! standard interval.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::schedule::{Done, Period, Recorded, Schedule};
use oshirase_sdk::{Category, Day, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program};

pub struct VaccineVaricella;

const SCHEDULE: Schedule = Schedule {
    code: "vaccine-varicella",
    recorded: Recorded::Immunizations,
    sex: None,
    closed_by_months: 36,
    periods: &[
        Period {
            occasion: "dose-1",
            done: Done::Dose(1),
            window: |birth, _| Some((birth.months_reached(12), birth.last_day_up_to_months(36))),
        },
        Period {
            occasion: "dose-2",
            done: Done::Dose(2),
            window: |birth, earlier| {
                earlier.dose_date(1).map(|first| (first.after_interval_of_months(6), birth.last_day_up_to_months(36)))
            },
        },
    ],
};

impl Program for VaccineVaricella {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCHEDULE.code.into(),
            name: "水痘(みずぼうそう)予防接種".into(),
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
                    "dose-1",
                    "1回目(1歳)",
                    "【{program}】お子さんが水痘(みずぼうそう)\
                     ワクチンの定期接種を受けられる年齢になりました。\
                     1歳から3歳になるまでに2回受けます。協力医療機関に予約してください\
                     (無料、{deadline}まで)。千葉市 医療政策課 https://www.city.chiba.jp/ \
                     お問い合わせ: {contact}",
                ),
                Occasion::new(
                    "dose-2",
                    "2回目(1回目から6か月後)",
                    "【{program}】お子さんの水痘(みずぼうそう)\
                     ワクチン2回目の時期になりました。\
                     1回目から6か月〜12か月の間に受けるのが標準です。\
                     協力医療機関に予約してください(無料、{deadline}まで)。\
                     千葉市 医療政策課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
                ),
            ],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCHEDULE.evaluate(today, population)
    }
}

export_program!(VaccineVaricella);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<VaccineVaricella>(include_str!("../cases.yaml"));
    }
}

//! B型肝炎の定期接種 (予防接種法施行令 第1条の3 別表: 1歳に至るまで;
//! 標準的には生後2月から). The household is told when 生後2月 is reached, unless dose 1 is recorded; the
//! period ends on the day before the first birthday, itself included (「1歳に至るまで」, read by the
//! ministry's notice of 2014-03-11).
//!
//! Simplification: the law allows the first dose from birth; the notice follows the
//! standard start (生後2月), and doses 2 and 3 are booked by the medical institution.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::schedule::{Done, Period, Recorded, Schedule};
use oshirase_sdk::{Category, Day, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program};

pub struct VaccineHepatitisB;

const SCHEDULE: Schedule = Schedule {
    code: "vaccine-hepb",
    recorded: Recorded::Immunizations,
    sex: None,
    closed_by_months: 12,
    periods: &[Period {
        occasion: "primary",
        done: Done::Dose(1),
        window: |birth, _| Some((birth.months_reached(2), birth.last_day_up_to_months(12))),
    }],
};

impl Program for VaccineHepatitisB {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCHEDULE.code.into(),
            name: "B型肝炎予防接種".into(),
            division: "医療政策課".into(),
            contact: "各区保健福祉センター 健康課".into(),
            category: Category::Vaccination,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://laws.e-gov.go.jp/law/323CO0000000197".into(),
            fields: SCHEDULE.fields(),
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![Occasion::new(
                "primary",
                "生後2か月から3回",
                "【{program}】お子さんがB型肝炎ワクチンの定期接種を受けられる\
                 月齢になりました。1歳になるまでに3回受けます(2回目は27日以上、\
                 3回目は1回目から139日以上あけます)。\
                 協力医療機関に予約して受けてください(無料、{deadline}まで)。\
                 千葉市 医療政策課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
            )],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCHEDULE.evaluate(today, population)
    }
}

export_program!(VaccineHepatitisB);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<VaccineHepatitisB>(include_str!("../cases.yaml"));
    }
}

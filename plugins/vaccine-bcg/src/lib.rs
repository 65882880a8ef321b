//! BCGの定期接種 (予防接種法施行令 第1条の3 別表: 1歳に至るまで; 定期接種実施要領:
//! 標準的には生後5月から生後8月に達するまで). The household is told when 生後5月 is reached,
//! unless the dose is recorded; the period ends on the day before the first birthday, itself included
//! (「1歳に至るまで」, read by the ministry's notice of 2014-03-11).
//!
//! Simplification: the law allows BCG from birth; the notice follows the standard start.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::schedule::{Done, Period, Recorded, Schedule};
use oshirase_sdk::{Category, Day, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program};

pub struct VaccineBcg;

const SCHEDULE: Schedule = Schedule {
    code: "vaccine-bcg",
    recorded: Recorded::Immunizations,
    sex: None,
    closed_by_months: 12,
    periods: &[Period {
        occasion: "due",
        done: Done::Dose(1),
        window: |birth, _| Some((birth.months_reached(5), birth.last_day_up_to_months(12))),
    }],
};

impl Program for VaccineBcg {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCHEDULE.code.into(),
            name: "BCG予防接種".into(),
            division: "医療政策課".into(),
            contact: "各区保健福祉センター 健康課".into(),
            category: Category::Vaccination,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://laws.e-gov.go.jp/law/323CO0000000197".into(),
            fields: SCHEDULE.fields(),
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![Occasion::new(
                "due",
                "生後5〜8か月(標準)",
                "【{program}】お子さんがBCG(結核予防)の定期接種の標準的な時期(生後5〜8か月)\
                 になりました。協力医療機関に予約して受けてください。\
                 無料で受けられるのは{deadline}までです。千葉市 医療政策課 \
                 https://www.city.chiba.jp/ お問い合わせ: {contact}",
            )],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCHEDULE.evaluate(today, population)
    }
}

export_program!(VaccineBcg);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<VaccineBcg>(include_str!("../cases.yaml"));
    }
}

//! 麻しん風しん(MR)混合ワクチンの定期接種 (予防接種法施行令 第1条の3 別表): 1期 from
//! 生後12月 until 生後24月 is reached, that day (the day before the second birthday) included; 2期 in the school
//! year before primary school (5歳以上7歳未満で小学校就学前の1年間). Residents are told when each
//! period opens, unless the history records dose 1 (1期) or dose 2 (2期).
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::schedule::{Done, Period, Recorded, Schedule};
use oshirase_sdk::{Category, Day, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program};

pub struct VaccineMr;

const SCHEDULE: Schedule = Schedule {
    code: "vaccine-mr",
    recorded: Recorded::Immunizations,
    sex: None,
    closed_by_months: 7 * 12,
    periods: &[
        Period {
            occasion: "phase-1",
            done: Done::Dose(1),
            window: |birth, _| Some((birth.months_reached(12), birth.last_day_up_to_months(24))),
        },
        Period {
            occasion: "phase-2",
            done: Done::Dose(2),
            window: |birth, _| {
                let school_entry = birth.school_entry();
                Some((Day::fiscal_year_start(school_entry.fiscal_year() - 1), school_entry.add_days(-1)))
            },
        },
    ],
};

impl Program for VaccineMr {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCHEDULE.code.into(),
            name: "麻しん風しん(MR)予防接種".into(),
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
                    "1期(1歳)",
                    "【{program}】お子さんが麻しん風しん(MR)\
                     ワクチン1期の定期接種を受けられる年齢になりました。\
                     1歳になったら早めの接種をおすすめします。\
                     協力医療機関に予約してください。\
                     無料で受けられるのは{deadline}までです。千葉市 医療政策課 \
                     https://www.city.chiba.jp/ お問い合わせ: {contact}",
                ),
                Occasion::new(
                    "phase-2",
                    "2期(小学校入学前の1年間)",
                    "【{program}】お子さんが麻しん風しん(MR)\
                     ワクチン2期の定期接種の対象になりました。\
                     小学校入学前の1年間が接種期間です。\
                     協力医療機関に予約してください。\
                     無料で受けられるのは{deadline}までです。千葉市 医療政策課 \
                     https://www.city.chiba.jp/ お問い合わせ: {contact}",
                ),
            ],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCHEDULE.evaluate(today, population)
    }
}

export_program!(VaccineMr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<VaccineMr>(include_str!("../cases.yaml"));
    }
}

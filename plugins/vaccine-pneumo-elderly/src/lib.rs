//! 高齢者の肺炎球菌感染症の定期接種 (予防接種法施行令 第1条の3 別表: 65歳の者;
//! B類疾病). Residents are told on the day they reach 65; Chiba city's page counts the period until the
//! day before the 66th birthday. Anyone with a record of the vaccine is not told: the
//! 定期接種 is once in a lifetime.
//!
//! Source: <https://www.city.chiba.jp/hokenfukushi/iryoeisei/seisaku/elderly_pneumonia.html>.
//! Simplification: the 60–64 year-olds with a 1級 disability are not covered (the records
//! do not show disabilities).
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::schedule::{Done, Period, Recorded, Schedule};
use oshirase_sdk::{Category, Day, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program};

pub struct VaccinePneumococcalElderly;

const SCHEDULE: Schedule = Schedule {
    code: "vaccine-pneumo-elderly",
    recorded: Recorded::Immunizations,
    sex: None,
    closed_by_months: 66 * 12,
    periods: &[Period {
        occasion: "due",
        done: Done::AnyRecord,
        window: |birth, _| Some((birth.age_reached(65), birth.age_reached(66))),
    }],
};

impl Program for VaccinePneumococcalElderly {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCHEDULE.code.into(),
            name: "高齢者肺炎球菌予防接種".into(),
            division: "医療政策課".into(),
            contact: "千葉市コールセンター 043-245-4894".into(),
            category: Category::Vaccination,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://www.city.chiba.jp/hokenfukushi/iryoeisei/seisaku/elderly_pneumonia.html".into(),
            fields: SCHEDULE.fields(),
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![Occasion::new(
                "due",
                "65歳",
                "【{program}】65歳になり、高齢者肺炎球菌ワクチンの定期接種(生涯1回)\
                 の対象になりました。個別の接種券は届きません。\
                 協力医療機関に直接予約してください。\
                 費用助成を受けられるのは{deadline}までです。\
                 詳しくは https://www.city.chiba.jp/hokenfukushi/iryoeisei/seisaku/elderly_pneumonia.html \
                 お問い合わせ: {contact}",
            )],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCHEDULE.evaluate(today, population)
    }
}

export_program!(VaccinePneumococcalElderly);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<VaccinePneumococcalElderly>(include_str!("../cases.yaml"));
    }
}

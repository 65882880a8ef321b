//! 小児の肺炎球菌感染症の定期接種 (予防接種法施行令 第1条の3 別表:
//! 生後2月から生後60月に至るまで). Two notices: the 初回 series when 生後2月 is reached, unless dose
//! 1 is recorded; and the 追加 dose (定期接種実施要領:
//! 初回終了後60日以上の間隔をおいて、生後12月以降), from the later of 生後12月 and the 61st day
//! after the third dose (60 whole days between the doses, [`Day::after_interval_of_days`]), unless dose 4 is recorded.
//!
//! Simplification: a child who started late (fewer primary doses by the 実施要領) is told
//! about the booster only once a third dose is recorded.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::schedule::{Done, Period, Recorded, Schedule};
use oshirase_sdk::{Category, Day, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program};

pub struct VaccinePcv;

const SCHEDULE: Schedule = Schedule {
    code: "vaccine-pcv",
    recorded: Recorded::Immunizations,
    sex: None,
    closed_by_months: 60,
    periods: &[
        Period {
            occasion: "primary",
            done: Done::Dose(1),
            window: |birth, _| Some((birth.months_reached(2), birth.last_day_up_to_months(60))),
        },
        Period {
            occasion: "booster",
            done: Done::Dose(4),
            window: |birth, earlier| {
                earlier.dose_date(3).map(|third| {
                    (third.after_interval_of_days(60).max(birth.months_reached(12)), birth.last_day_up_to_months(60))
                })
            },
        },
    ],
};

impl Program for VaccinePcv {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCHEDULE.code.into(),
            name: "小児肺炎球菌予防接種".into(),
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
                    "primary",
                    "初回(生後2か月から)",
                    "【{program}】お子さんが小児肺炎球菌ワクチンの定期接種を受けられる\
                     月齢になりました。生後2か月から、27日以上の間隔で3回受けます。\
                     協力医療機関に予約して受けてください(無料、{deadline}まで)。\
                     千葉市 医療政策課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
                ),
                Occasion::new(
                    "booster",
                    "追加(1歳から)",
                    "【{program}】お子さんの小児肺炎球菌ワクチン追加接種(4回目)\
                     の時期になりました。1歳から1歳3か月の間に受けるのが標準です。\
                     協力医療機関に予約して受けてください(無料、{deadline}まで)。\
                     千葉市 医療政策課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
                ),
            ],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCHEDULE.evaluate(today, population)
    }
}

export_program!(VaccinePcv);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<VaccinePcv>(include_str!("../cases.yaml"));
    }
}

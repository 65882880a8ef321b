//! 五種混合(DPT-IPV-Hib)の定期接種 (予防接種法施行令 第1条の3 別表:
//! 生後2月から生後90月に至るまで). Two notices: the 1期初回 series when 生後2月 is reached, unless
//! dose 1 is recorded; and the 1期追加 dose from the same date 6 months after the third dose, or the 1st
//! of the next month where that date does not exist (定期接種実施要領: 初回接種終了後6月から
//! 18月までの間隔をおく; [`Day::after_interval_of_months`]), unless dose 4 is recorded.
//!
//! Simplification: doses 2 and 3 of the primary series are not reminded one by one; the
//! medical institution books them at the first visit.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::schedule::{Done, Period, Recorded, Schedule};
use oshirase_sdk::{Category, Day, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program};

pub struct Vaccine5In1;

const SCHEDULE: Schedule = Schedule {
    code: "vaccine-5in1",
    recorded: Recorded::Immunizations,
    sex: None,
    closed_by_months: 90,
    periods: &[
        Period {
            occasion: "primary",
            done: Done::Dose(1),
            window: |birth, _| Some((birth.months_reached(2), birth.last_day_up_to_months(90))),
        },
        Period {
            occasion: "booster",
            done: Done::Dose(4),
            window: |birth, earlier| {
                earlier.dose_date(3).map(|third| (third.after_interval_of_months(6), birth.last_day_up_to_months(90)))
            },
        },
    ],
};

impl Program for Vaccine5In1 {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: SCHEDULE.code.into(),
            name: "五種混合予防接種".into(),
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
                    "1期初回(生後2か月から)",
                    "【{program}】お子さんが五種混合ワクチン(ジフテリア・百日せき\
                     ・破傷風・ポリオ・Hib)の定期接種を受けられる月齢になりました。\
                     生後2か月から、20日以上の間隔で3回受けます。\
                     協力医療機関に予約して受けてください(無料、{deadline}まで)。\
                     千葉市 医療政策課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
                ),
                Occasion::new(
                    "booster",
                    "1期追加",
                    "【{program}】お子さんの五種混合ワクチン1期追加(4回目)\
                     の時期になりました。3回目から6か月〜18か月の間に受けるのが\
                     標準です。協力医療機関に予約して受けてください(無料、{deadline}まで)\
                     。千葉市 医療政策課 https://www.city.chiba.jp/ お問い合わせ: {contact}",
                ),
            ],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        SCHEDULE.evaluate(today, population)
    }
}

export_program!(Vaccine5In1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<Vaccine5In1>(include_str!("../cases.yaml"));
    }
}

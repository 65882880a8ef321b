//! 産後ケア事業 (母子保健法 第17条の2), as Chiba city runs it
//! (<https://www.city.chiba.jp/hokenfukushi/kenkofukushi/shien/29sangokea.html>): registration
//! is accepted from two months before the due date, and the visiting care (訪問型) can be
//! used until the day before the child's first birthday. The mother is told once per
//! pregnancy (keyed by the 年度 of the due date) from two months before the due date, until
//! the due date while no birth is known, or until the day before the baby's first birthday.
//!
//! Simplification: the 宿泊型・日帰り型 end at 産後5か月; the notice names the longest period.
//! Without a baby in the mother's household after the due date nothing is said (see
//! [`oshirase_sdk::maternity`]).
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::maternity::pregnancies;
use oshirase_sdk::{
    Category, Day, FISCAL_YEAR, Field, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program,
};

pub struct PostpartumCare;

impl Program for PostpartumCare {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: "postpartum-care".into(),
            name: "産後ケア事業".into(),
            division: "健康支援課".into(),
            contact: "各区保健福祉センター 健康課(母子健康包括支援センター)".into(),
            category: Category::ChildRearing,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://www.city.chiba.jp/hokenfukushi/kenkofukushi/shien/29sangokea.html".into(),
            fields: vec![Field::BirthDay, Field::Household, Field::Relationship, Field::Pregnancies],
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![Occasion::new(
                FISCAL_YEAR,
                "産後ケアの登録案内",
                "【{program}】出産後の体調や育児に不安があるお母さんと赤ちゃんは、\
                 助産師による訪問・日帰り・宿泊のケアを利用できます。\
                 出産予定日の2か月前から登録できます。利用には事前の登録が必要です\
                 (訪問型は{deadline}まで)。千葉市 健康支援課 \
                 https://www.city.chiba.jp/hokenfukushi/kenkofukushi/shien/29sangokea.html \
                 お問い合わせ: {contact}",
            )],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        let households = population.households();
        let mut notices = Vec::new();
        for pregnancy in pregnancies(population)? {
            let opens = pregnancy.due_date.add_months_clamped(-2);
            let closes =
                pregnancy.baby(&households, today).map_or(pregnancy.due_date, |baby| baby.birth_day().age_reached(1));
            if opens <= today && today <= closes {
                let fiscal_year = pregnancy.due_date.fiscal_year();
                notices.extend(
                    Notice::for_open_window(&pregnancy.mother, FISCAL_YEAR, opens, closes, today, || {
                        format!("出産予定日 {}", pregnancy.due_date)
                    })
                    .map(|notice| notice.instance(fiscal_year)),
                );
            }
        }
        Ok(notices)
    }
}

export_program!(PostpartumCare);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<PostpartumCare>(include_str!("../cases.yaml"));
    }
}

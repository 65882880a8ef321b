//! 妊産婦歯科健診, as Chiba city runs it
//! (<https://www.city.chiba.jp/hokenfukushi/kenkou/shien/ninsanpushika.html>): one free dental
//! checkup at any time during pregnancy (妊娠16〜20週 is only the recommended time) and one
//! after the birth, until the day before the child's first birthday. Two notices per
//! pregnancy: `pregnancy-fyYYYY` from the day the pregnancy is notified (the 受診票 come with
//! the 母子健康手帳) until the day before the birth (or the due date while no birth is known), and
//! `postpartum-fyYYYY` from the birth, both keyed by the 年度 of the due date. A checkup of
//! kind `maternal-dental` recorded during the pregnancy, or after the birth, ends each one.
//!
//! The postpartum notice needs the birth, which the records give only as a baby in the
//! mother's household (see [`oshirase_sdk::maternity`]); without one nothing is said.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::maternity::pregnancies;
use oshirase_sdk::{
    Category, Day, Field, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program,
};

pub struct MaternalDental;

const CODE: &str = "maternal-dental";
/// The occasions, each once per pregnancy; the instance is the 年度 of the due date.
const PREGNANCY: &str = "pregnancy";
const POSTPARTUM: &str = "postpartum";

impl Program for MaternalDental {
    fn describe() -> ProgramInfo {
        let occasions = vec![
            Occasion::new(
                PREGNANCY,
                "妊婦歯科健診",
                "【{program}】妊娠中の歯科健診(妊婦歯科健診)を、\
             妊娠中いつでも1回無料で受けられます。\
             安定期の妊娠16〜20週頃がおすすめです。母子健康手帳別冊の受診票を持って、\
             協力歯科医療機関に予約して受診してください。千葉市 健康支援課 \
             https://www.city.chiba.jp/hokenfukushi/kenkou/shien/ninsanpushika.html お問い合わせ: {contact}",
            ),
            Occasion::new(
                POSTPARTUM,
                "産婦歯科健診",
                "【{program}】出産後の歯科健診(産婦歯科健診)を1回無料で受けられます。\
             産後おおむね6か月までがおすすめです。受診票を持って、\
             {deadline}までに協力歯科医療機関に予約して受診してください。\
             千葉市 健康支援課 https://www.city.chiba.jp/hokenfukushi/kenkou/shien/ninsanpushika.html \
             お問い合わせ: {contact}",
            ),
        ];
        ProgramInfo {
            code: CODE.into(),
            name: "妊産婦歯科健診".into(),
            division: "健康支援課".into(),
            contact: "各区保健福祉センター 健康課(母子健康包括支援センター)".into(),
            category: Category::ChildRearing,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://www.city.chiba.jp/hokenfukushi/kenkou/shien/ninsanpushika.html".into(),
            fields: vec![Field::BirthDay, Field::Household, Field::Relationship, Field::Pregnancies, Field::Checkups],
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions,
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        let checkups = population.checkups.by_person(population.size)?;
        let code = population.checkups.code(CODE);
        let households = population.households();
        let mut notices = Vec::new();
        for pregnancy in pregnancies(population)? {
            let mother = pregnancy.mother;
            let baby = pregnancy.baby(&households, today);
            let conceived = pregnancy.due_date.gestational_week_starts(0);
            let opens = pregnancy.notified_on;
            let closes = baby.map_or(pregnancy.due_date, |baby| baby.birth_day().add_days(-1));
            if opens <= today && today <= closes && !checkups.has_between(mother.index(), code, conceived, closes) {
                notices.extend(
                    Notice::for_open_window(&mother, PREGNANCY, opens, closes, today, || {
                        format!("出産予定日 {}、妊娠届出 {opens}", pregnancy.due_date)
                    })
                    .map(|notice| notice.instance(pregnancy.due_date.fiscal_year())),
                );
            }
            if let Some(baby) = baby {
                let born = baby.birth_day();
                let closes = born.age_reached(1);
                if today <= closes && !checkups.has_between(mother.index(), code, born, closes) {
                    notices.extend(
                        Notice::for_open_window(&mother, POSTPARTUM, born, closes, today, || {
                            format!("出生 {born}、子が1歳になる前日 {closes}")
                        })
                        .map(|notice| notice.instance(pregnancy.due_date.fiscal_year())),
                    );
                }
            }
        }
        Ok(notices)
    }
}

export_program!(MaternalDental);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<MaternalDental>(include_str!("../cases.yaml"));
    }
}

//! 児童手当 after a birth (児童手当法 第7条・第8条; the 15日特例): a parent who applies within
//! 15 days of the day after the birth receives the allowance from the following month. The
//! newborn's household is told from the birth until the 15th day after it.
//!
//! Source: <https://www.city.chiba.jp/kodomomirai/kodomomirai/kikaku/jidouteate.html>.
//! Simplification: a parent already receiving the allowance for an elder child must also
//! apply (額改定), so receipts are not consulted; moving into the city (also 15 days) is not
//! covered, because `resident-since` is not reliable enough in the exports yet.
//!
//! For the division: this program's row in `docs/programs.md` (law, period, intervals,
//! deadline, timing, simplifications and missing data).

use oshirase_sdk::{
    Category, Day, Field, Notice, Occasion, Population, Program, ProgramInfo, Settings, export_program,
};

pub struct ChildAllowance;

/// The application is due within 15 days counted from the day after the birth.
const DAYS_TO_APPLY: i32 = 15;

impl Program for ChildAllowance {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: "child-allowance".into(),
            name: "児童手当".into(),
            division: "こども企画課".into(),
            contact: "各区保健福祉センター こども家庭課".into(),
            category: Category::Allowance,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://www.city.chiba.jp/kodomomirai/kodomomirai/kikaku/jidouteate.html".into(),
            fields: vec![Field::BirthDay],
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![Occasion::new(
                "birth",
                "出生後15日以内の申請",
                "【{program}】お子さんが生まれたら、児童手当の申請(認定請求・額改定)\
                 をしてください。{deadline}までに申請すると、\
                 生まれた月の翌月分から受け取れます。区の保健福祉センター \
                 こども家庭課か電子申請で手続きできます。千葉市 こども企画課 \
                 https://www.city.chiba.jp/kodomomirai/kodomomirai/kikaku/jidouteate.html \
                 お問い合わせ: {contact}",
            )],
        }
    }

    fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        let mut notices = Vec::new();
        for person in population.people() {
            let born = person.birth_day();
            let due = born.add_days(DAYS_TO_APPLY);
            notices.extend(Notice::for_open_window(&person, "birth", born, due, today, || {
                format!("出生 {born}、申請期限 {due}")
            }));
        }
        Ok(notices)
    }
}

export_program!(ChildAllowance);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cases_pass() {
        oshirase_sdk::cases::assert_program_passes::<ChildAllowance>(include_str!("../cases.yaml"));
    }
}

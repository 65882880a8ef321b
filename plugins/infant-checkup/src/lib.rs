//! 乳児一般健康診査: two free checkups at a medical institution, for about 3–6 and 9–11
//! months of age, as Chiba city runs them (母子保健法 第13条). Residents are told when each
//! window opens.

use oshirase_sdk::{export_program, Category, Day, Field, Notice, Occasion, Population, Program, ProgramInfo};

pub struct InfantCheckup;

/// (occasion key, 生後N月 the window opens, 生後N月 it has closed by).
const WINDOWS: [(&str, u32, u32); 2] = [("first", 3, 7), ("second", 9, 12)];

impl Program for InfantCheckup {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: "infant-checkup".into(),
            name: "乳児一般健康診査".into(),
            division: "健康支援課".into(),
            contact: "各区保健福祉センター 健康課".into(),
            category: Category::ChildRearing,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://laws.e-gov.go.jp/law/340AC0000000141".into(),
            fields: vec![Field::BirthDay],
            occasions: vec![
                Occasion::new(
                    "first",
                    "1回目(生後3〜6か月)",
                    "【{program}】お子さんが1回目の乳児健康診査(生後3〜6か月)を受けられる時期になりました。母子健康手帳別冊の受診票を持って、{deadline}までに協力医療機関で受診してください(無料)。お問い合わせ: {contact}",
                ),
                Occasion::new(
                    "second",
                    "2回目(生後9〜11か月)",
                    "【{program}】お子さんが2回目の乳児健康診査(生後9〜11か月)を受けられる時期になりました。母子健康手帳別冊の受診票を持って、{deadline}までに協力医療機関で受診してください(無料)。お問い合わせ: {contact}",
                ),
            ],
        }
    }

    fn evaluate(today: Day, population: &Population) -> Result<Vec<Notice>, String> {
        let mut notices = Vec::new();
        for person in population.people() {
            let birth = person.birth_day();
            // Only babies under about a year can be in a window; skip the calendar work for everyone else.
            if birth > today || today.0 - birth.0 > 370 {
                continue;
            }
            for (occasion, opens_at, closed_at) in WINDOWS {
                let opens = birth.months_reached(opens_at);
                let closes = birth.months_reached(closed_at).add_days(-1);
                notices.extend(Notice::for_open_window(&person, occasion, opens, closes, today, || {
                    format!("生後{opens_at}月に達した({opens})。受診期限 {closes}")
                }));
            }
        }
        Ok(notices)
    }
}

export_program!(InfantCheckup);

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::parse_iso(text).unwrap()
    }

    fn occasions_on(birth: &str, today: &str) -> Vec<(String, String, String)> {
        let population = Population { size: 1, birth_day: vec![day(birth).0], ..Population::default() };
        InfantCheckup::evaluate(day(today), &population)
            .unwrap()
            .into_iter()
            .map(|notice| (notice.occasion, notice.send_on.to_string(), notice.expires_on.to_string()))
            .collect()
    }

    #[test]
    fn the_first_window_opens_on_the_day_three_months_are_reached() {
        assert_eq!(occasions_on("2026-05-10", "2026-08-08"), vec![]);
        let first = vec![("first".to_string(), "2026-08-09".to_string(), "2026-12-08".to_string())];
        assert_eq!(occasions_on("2026-05-10", "2026-08-09"), first);
        assert_eq!(occasions_on("2026-05-10", "2026-12-08"), first);
        assert_eq!(occasions_on("2026-05-10", "2026-12-09"), vec![]);
    }

    #[test]
    fn the_second_window_runs_from_nine_months_until_the_first_birthday() {
        let second = vec![("second".to_string(), "2027-02-09".to_string(), "2027-05-08".to_string())];
        assert_eq!(occasions_on("2026-05-10", "2027-02-09"), second);
        assert_eq!(occasions_on("2026-05-10", "2027-05-08"), second);
        assert_eq!(occasions_on("2026-05-10", "2027-05-09"), vec![]);
    }
}

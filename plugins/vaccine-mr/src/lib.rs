//! 麻しん風しん(MR)混合ワクチンの定期接種: 1期 from 生後12月 until 生後24月 is reached;
//! 2期 in the school year before primary school (予防接種法施行令 第1条の3). Residents are
//! told when each period opens.

use oshirase_sdk::{export_program, Category, Day, Field, Notice, Occasion, Population, Program, ProgramInfo};

pub struct VaccineMr;

impl Program for VaccineMr {
    fn describe() -> ProgramInfo {
        ProgramInfo {
            code: "vaccine-mr".into(),
            name: "麻しん風しん(MR)予防接種".into(),
            division: "健康支援課".into(),
            contact: "各区保健福祉センター 健康課".into(),
            category: Category::Vaccination,
            schedule: "0 0 9 * * *".into(),
            source_url: "https://laws.e-gov.go.jp/law/323CO0000000197".into(),
            fields: vec![Field::BirthDay],
            occasions: vec![
                Occasion::new(
                    "phase-1",
                    "1期(1歳)",
                    "【{program}】お子さんが麻しん風しん(MR)ワクチン1期の定期接種を受けられる年齢になりました。1歳になったら早めの接種をおすすめします。無料で受けられるのは{deadline}までです。お問い合わせ: {contact}",
                ),
                Occasion::new(
                    "phase-2",
                    "2期(小学校入学前の1年間)",
                    "【{program}】お子さんが麻しん風しん(MR)ワクチン2期の定期接種の対象になりました。小学校入学前の1年間が接種期間です。無料で受けられるのは{deadline}までです。お問い合わせ: {contact}",
                ),
            ],
        }
    }

    fn evaluate(today: Day, population: &Population) -> Result<Vec<Notice>, String> {
        let mut notices = Vec::new();
        for person in population.people() {
            let birth = person.birth_day();
            // Both periods end before the seventh birthday.
            if birth > today || today.0 - birth.0 > 7 * 366 {
                continue;
            }
            let first_opens = birth.months_reached(12);
            let first_closes = birth.months_reached(24).add_days(-1);
            notices.extend(Notice::for_open_window(&person, "phase-1", first_opens, first_closes, today, || {
                format!("生後12月に達した({first_opens})。1期の期限 {first_closes}")
            }));
            let school_entry = birth.school_entry();
            let second_opens = Day::fiscal_year_start(school_entry.fiscal_year() - 1);
            let second_closes = school_entry.add_days(-1);
            notices.extend(Notice::for_open_window(&person, "phase-2", second_opens, second_closes, today, || {
                format!("小学校入学({school_entry})の前年度に入った。2期の期限 {second_closes}")
            }));
        }
        Ok(notices)
    }
}

export_program!(VaccineMr);

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::parse_iso(text).unwrap()
    }

    fn windows_on(birth: &str, today: &str) -> Vec<(String, String, String)> {
        let population = Population { size: 1, birth_day: vec![day(birth).0], ..Population::default() };
        VaccineMr::evaluate(day(today), &population)
            .unwrap()
            .into_iter()
            .map(|notice| (notice.occasion, notice.send_on.to_string(), notice.expires_on.to_string()))
            .collect()
    }

    #[test]
    fn phase_one_runs_from_twelve_months_until_twenty_four_are_reached() {
        assert_eq!(windows_on("2025-07-31", "2026-07-29"), vec![]);
        let phase_one = vec![("phase-1".to_string(), "2026-07-30".to_string(), "2027-07-29".to_string())];
        assert_eq!(windows_on("2025-07-31", "2026-07-30"), phase_one);
        assert_eq!(windows_on("2025-07-31", "2027-07-29"), phase_one);
        assert_eq!(windows_on("2025-07-31", "2027-07-30"), vec![]);
    }

    #[test]
    fn phase_two_is_the_school_year_before_primary_school() {
        // Born 2020-04-01: enters school 2026-04-01, so phase 2 is fiscal 2025.
        let early = vec![("phase-2".to_string(), "2025-04-01".to_string(), "2026-03-31".to_string())];
        assert_eq!(windows_on("2020-04-01", "2025-04-01"), early);
        assert_eq!(windows_on("2020-04-01", "2026-04-01"), vec![]);
        // Born a day later: a year later.
        assert_eq!(windows_on("2020-04-02", "2026-03-31"), vec![]);
        assert_eq!(windows_on("2020-04-02", "2026-04-01"), vec![("phase-2".to_string(), "2026-04-01".to_string(), "2027-03-31".to_string())]);
    }
}

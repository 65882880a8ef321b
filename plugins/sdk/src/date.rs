//! Japanese calendar arithmetic on plain day numbers: ages, months after birth, school years.
//!
//! A [`Day`] counts days since 1970-01-01 in Japan time (UTC+9, no daylight saving), the
//! same number the host hands to plugins. The rules follow Japanese law, not the
//! calendar intuition of other countries:
//!
//! - Age (年齢計算ニ関スル法律 with 民法143条): a person reaches age N at the end of the
//!   day before their N-th birthday, so the day before the birthday is the day they
//!   "reach" it (満N歳に達する日). Someone born on 2/29 reaches it on 2/28 in common years.
//! - 「生後N月に至る日」: the day before the same date N months later, or the last day of
//!   that month when the date does not exist (born 7/31 → 生後2月 on 9/30).
//! - 妊娠週数: the due date (出産予定日) is 40 weeks 0 days, so a pregnancy is N weeks
//!   0 days on the due date less (40 − N) weeks.
//! - School years start on April 1. A child enters primary school on the first April 1
//!   after the day they reach 6, so a child born on April 1 is in the earlier year (早生まれ).

use std::fmt;

/// A date in Japan time, as days since 1970-01-01.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Day(pub i32);

/// A pregnancy is 40 weeks 0 days on its due date.
const FULL_TERM_DAYS: i32 = 280;

/// The length of a pregnancy, 妊娠`weeks`週`days`日.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GestationalAge {
    pub weeks: i32,
    pub days: i32,
}

/// The Japanese eras, newest first: (name, the letter municipal exports write, first day
/// as y/m/d).
const ERAS: [(&str, char, i32, u32, u32); 5] = [
    ("令和", 'R', 2019, 5, 1),
    ("平成", 'H', 1989, 1, 8),
    ("昭和", 'S', 1926, 12, 25),
    ("大正", 'T', 1912, 7, 30),
    ("明治", 'M', 1868, 10, 23),
];

impl Day {
    /// The day for a calendar date, or `None` when the date does not exist.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Day> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Day(days_from_civil(year, month, day)))
    }

    /// The calendar date (year, month 1–12, day 1–31).
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    pub fn year(self) -> i32 {
        self.ymd().0
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse_iso(text: &str) -> Option<Day> {
        let mut parts = text.trim().splitn(3, '-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        Day::from_ymd(year, month, day)
    }

    pub fn add_days(self, days: i32) -> Day {
        Day(self.0 + days)
    }

    /// The same date `months` months later (or earlier, when negative), clamped to the
    /// last day of the month when the date does not exist there.
    pub fn add_months_clamped(self, months: i32) -> Day {
        let (year, month, day) = self.ymd();
        let (target_year, target_month) = shift_month(year, month, months);
        let last = days_in_month(target_year, target_month);
        Day(days_from_civil(target_year, target_month, day.min(last)))
    }

    /// 「生後N月に至る日」 for someone born on `self`: the day before the same date `months`
    /// months later, or that month's last day when the date does not exist.
    pub fn months_reached(self, months: u32) -> Day {
        let (year, month, day) = self.ymd();
        let (target_year, target_month) = shift_month(year, month, months as i32);
        if day > days_in_month(target_year, target_month) {
            Day(days_from_civil(target_year, target_month, days_in_month(target_year, target_month)))
        } else {
            Day(days_from_civil(target_year, target_month, day) - 1)
        }
    }

    /// The day someone born on `self` reaches age `years` (満N歳に達する日): the day before
    /// the birthday, by the Act on Age Calculation.
    pub fn age_reached(self, years: u32) -> Day {
        self.months_reached(years * 12)
    }

    /// The last day of a period the law writes 「生後N月に至るまで」 (予防接種法施行令 第1条の3
    /// 別表; 「1歳に至るまで」 is 生後12月) for someone born on `self`: the day 生後N月 is
    /// reached, itself included. The ministry's notice of 2014-03-11 「定期の予防接種における
    /// 対象者の解釈について」 reads 「生後24月に至るまで」 as up to and including the day before
    /// the second birthday, so born 2025-07-31 → last day 2027-07-30 (born 12/31 → 生後2月 ends
    /// on the last day of February).
    pub fn last_day_up_to_months(self, months: u32) -> Day {
        self.months_reached(months)
    }

    /// The last day of a period the law writes 「N歳未満」 (予防接種法施行令 第1条の3 別表,
    /// 「13歳未満」) or 「満N歳に達しない」 (母子保健法 第12条) for someone born on `self`: the
    /// day before the N-th birthday, itself included, as the ministry's notice of 2014-03-11
    /// 「定期の予防接種における対象者の解釈について」 reads it (a person becomes N only when
    /// that day ends, 年齢計算ニ関スル法律). Born on 2/29: 2/28 of a common year.
    pub fn last_day_under_age(self, years: u32) -> Day {
        self.age_reached(years)
    }

    /// The first day the next dose is allowed after a dose on `self` when the rule reads
    /// 「N日以上の間隔をおいて」 (予防接種実施規則, 定期接種実施要領): N whole days lie
    /// between the doses, so the dose day + N + 1. The ministry's example: 27日以上, a dose on 4/1 → from
    /// 4/29.
    pub fn after_interval_of_days(self, days: u32) -> Day {
        self.add_days(days as i32 + 1)
    }

    /// The first day the next dose is allowed after a dose on `self` when the rule reads
    /// 「N月以上の間隔をおいて」: the interval runs out when the day before the same date N
    /// months later ends, or, where that date does not exist, when that month's last day ends
    /// (民法 第143条 第2項, the same count as [`Day::months_reached`]), so the next dose is
    /// allowed from that date, or from the 1st of the following month (a dose on 8/31, 6 months
    /// → from 3/1; on 8/29 → 2/29 in a leap year).
    pub fn after_interval_of_months(self, months: u32) -> Day {
        self.months_reached(months).add_days(1)
    }

    /// The age in completed years, counted by law, of someone born on `self`, on `day`.
    /// Zero before the first birthday is reached (and before birth).
    pub fn age_on(self, day: Day) -> u32 {
        let mut years = (day.year() - self.year() + 1).max(0) as u32;
        while years > 0 && self.age_reached(years) > day {
            years -= 1;
        }
        years
    }

    /// The completed months of life (生後N月) of someone born on `self`, on `day`.
    pub fn months_on(self, day: Day) -> u32 {
        let (birth_year, birth_month, _) = self.ymd();
        let (year, month, _) = day.ymd();
        let mut months = ((year - birth_year) * 12 + month as i32 - birth_month as i32 + 1).max(0) as u32;
        while months > 0 && self.months_reached(months) > day {
            months -= 1;
        }
        months
    }

    /// The 年度 (fiscal and school year) that `self` falls in, named by the year of its April 1.
    pub fn fiscal_year(self) -> i32 {
        let (year, month, _) = self.ymd();
        if month >= 4 { year } else { year - 1 }
    }

    /// The first day of the 年度 named `fiscal_year` (April 1).
    pub fn fiscal_year_start(fiscal_year: i32) -> Day {
        Day(days_from_civil(fiscal_year, 4, 1))
    }

    /// The last day of the 年度 named `fiscal_year` (年度末, March 31 of the next year).
    pub fn fiscal_year_end(fiscal_year: i32) -> Day {
        Day(days_from_civil(fiscal_year + 1, 3, 31))
    }

    /// The completed weeks from `self` (a birth) to `day` (生後N週): zero on the day of birth
    /// and for the six days after it, negative before birth.
    pub fn weeks_on(self, day: Day) -> i32 {
        (day.0 - self.0).div_euclid(7)
    }

    /// The length of a pregnancy on `day` (妊娠N週M日), when `self` is its due date, the day
    /// it is 40 weeks 0 days.
    pub fn gestational_age_on(self, day: Day) -> GestationalAge {
        let elapsed = day.0 - self.0 + FULL_TERM_DAYS;
        GestationalAge { weeks: elapsed.div_euclid(7), days: elapsed.rem_euclid(7) }
    }

    /// The day a pregnancy with due date `self` is `weeks` weeks 0 days (妊娠N週0日).
    pub fn gestational_week_starts(self, weeks: i32) -> Day {
        Day(self.0 - FULL_TERM_DAYS + 7 * weeks)
    }

    /// The age by law on 年度末 (March 31 closing the 年度 named `fiscal_year`) of someone
    /// born on `self`: the age most municipal checkups and screenings are counted by.
    ///
    /// It is `self.age_on(Day::fiscal_year_end(fiscal_year))`, counted in one step: the age
    /// on a March 31 is the number of 年度 since the one holding the day before the birth
    /// (born April 1, the day before falls in the earlier 年度, 早生まれ). A test checks the
    /// two agree on every day of two centuries.
    pub fn age_at_fiscal_year_end(self, fiscal_year: i32) -> u32 {
        (fiscal_year - self.add_days(-1).fiscal_year()).max(0) as u32
    }

    /// The latest birth day of someone at least `years` old on 年度末 of `fiscal_year`:
    /// April 1 of `fiscal_year + 1 − years` (who reaches the age on March 31 itself). A
    /// comparison with it replaces the calendar work of [`Day::age_at_fiscal_year_end`] when
    /// a whole population is checked against one age.
    pub fn latest_birth_for_age_at_fiscal_year_end(fiscal_year: i32, years: u32) -> Day {
        Day::fiscal_year_start(fiscal_year + 1 - years as i32)
    }

    /// The 年度 in which someone born on `self` reaches age `years` (「N歳となる日の属する年度」).
    pub fn fiscal_year_reaching(self, years: u32) -> i32 {
        self.age_reached(years).fiscal_year()
    }

    /// The first March 31 on or after the day someone born on `self` reaches age `years`
    /// (「N歳に達する日以後の最初の3月31日」), when child benefits end.
    pub fn first_march_31_after_reaching(self, years: u32) -> Day {
        Day::fiscal_year_end(self.fiscal_year_reaching(years))
    }

    /// The day a child born on `self` enters primary school: the first April 1 after the
    /// day they reach age 6 (学校教育法17条), so 4/1 births enter a year before 4/2 births.
    pub fn school_entry(self) -> Day {
        let first_eligible = self.age_reached(6).add_days(1);
        let (year, month, day) = first_eligible.ymd();
        if (month, day) <= (4, 1) { Day::fiscal_year_start(year) } else { Day::fiscal_year_start(year + 1) }
    }

    /// The school grade on `day` counted from primary school: 1–6 primary, 7–9 lower
    /// secondary, 10–12 upper secondary; 0 or less before school starts.
    pub fn school_grade_on(self, day: Day) -> i32 {
        day.fiscal_year() - self.school_entry().fiscal_year() + 1
    }

    /// The date in the Japanese era calendar, as in official letters: 令和7年4月1日
    /// (the first year of an era is written 元年).
    pub fn era_format(self) -> String {
        let (year, month, day) = self.ymd();
        for (name, _, first_year, first_month, first_day) in ERAS {
            if (year, month, day) >= (first_year, first_month, first_day) {
                let era_year = year - first_year + 1;
                return if era_year == 1 {
                    format!("{name}元年{month}月{day}日")
                } else {
                    format!("{name}{era_year}年{month}月{day}日")
                };
            }
        }
        format!("{year}年{month}月{day}日")
    }

    /// The day for an era date such as 令和6年4月1日 (`era` is the era's name or its letter,
    /// `R`, `H`, `S`, `T`, `M`; year 1 is 元年). `None` when the era is unknown, the date
    /// does not exist, or it falls outside the era (平成31年5月1日 was 令和元年5月1日).
    pub fn from_era(era: &str, era_year: i32, month: u32, day: u32) -> Option<Day> {
        let position = ERAS
            .iter()
            .position(|(name, letter, ..)| *name == era || era.eq_ignore_ascii_case(letter.encode_utf8(&mut [0; 4])))?;
        let (_, _, first_year, first_month, first_day) = ERAS[position];
        if era_year < 1 {
            return None;
        }
        let date = Day::from_ymd(first_year + era_year - 1, month, day)?;
        let starts = Day::from_ymd(first_year, first_month, first_day)?;
        // The era ends the day before the next (newer) one starts.
        let next_starts = match position {
            0 => None,
            newer => Some(ERAS[newer - 1]).and_then(|(_, _, year, month, day)| Day::from_ymd(year, month, day)),
        };
        (date >= starts && next_starts.is_none_or(|next| date < next)).then_some(date)
    }
}

impl fmt::Display for Day {
    /// Formats as `YYYY-MM-DD`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = self.ymd();
        write!(formatter, "{year:04}-{month:02}-{day:02}")
    }
}

pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn shift_month(year: i32, month: u32, months: i32) -> (i32, u32) {
    let index = year * 12 + (month as i32 - 1) + months;
    (index.div_euclid(12), index.rem_euclid(12) as u32 + 1)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era as u32 * 365 + year_of_era as u32 / 4 - year_of_era as u32 / 100 + day_of_year;
    era * 146_097 + day_of_era as i32 - 719_468
}

/// The calendar date of a day number (the inverse of `days_from_civil`).
fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = (shifted - era * 146_097) as u32;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era as i32 + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn day(text: &str) -> Day {
        Day::parse_iso(text).unwrap_or_else(|| panic!("bad date in test: {text}"))
    }

    /// What the SDK answers for one case of `dates.json`: `name` is the function, the
    /// arguments as the table writes them (dates as `YYYY-MM-DD`), the answer likewise.
    fn answer(name: &str, arguments: &[Value]) -> Value {
        let date = |index: usize| day(arguments[index].as_str().expect("a date"));
        let number = |index: usize| arguments[index].as_i64().expect("a number");
        let count = |index: usize| number(index) as u32;
        let iso = |day: Day| json!(day.to_string());
        let optional = |day: Option<Day>| day.map_or(Value::Null, iso);
        match name {
            "from_ymd" => optional(Day::from_ymd(number(0) as i32, count(1), count(2))),
            "add_months_clamped" => iso(date(0).add_months_clamped(number(1) as i32)),
            "months_reached" => iso(date(0).months_reached(count(1))),
            "age_reached" => iso(date(0).age_reached(count(1))),
            "age_on" => json!(date(0).age_on(date(1))),
            "last_day_up_to_months" => iso(date(0).last_day_up_to_months(count(1))),
            "last_day_under_age" => iso(date(0).last_day_under_age(count(1))),
            "after_interval_of_days" => iso(date(0).after_interval_of_days(count(1))),
            "after_interval_of_months" => iso(date(0).after_interval_of_months(count(1))),
            "months_on" => json!(date(0).months_on(date(1))),
            "school_entry" => iso(date(0).school_entry()),
            "school_grade_on" => json!(date(0).school_grade_on(date(1))),
            "fiscal_year" => json!(date(0).fiscal_year()),
            "fiscal_year_start" => iso(Day::fiscal_year_start(number(0) as i32)),
            "fiscal_year_end" => iso(Day::fiscal_year_end(number(0) as i32)),
            "weeks_on" => json!(date(0).weeks_on(date(1))),
            "gestational_age_on" => {
                let GestationalAge { weeks, days } = date(0).gestational_age_on(date(1));
                json!([weeks, days])
            }
            "gestational_week_starts" => iso(date(0).gestational_week_starts(number(1) as i32)),
            "age_at_fiscal_year_end" => json!(date(0).age_at_fiscal_year_end(number(1) as i32)),
            "latest_birth_for_age_at_fiscal_year_end" => {
                iso(Day::latest_birth_for_age_at_fiscal_year_end(number(0) as i32, count(1)))
            }
            "fiscal_year_reaching" => json!(date(0).fiscal_year_reaching(count(1))),
            "first_march_31_after_reaching" => iso(date(0).first_march_31_after_reaching(count(1))),
            "era_format" => json!(date(0).era_format()),
            "from_era" => {
                let era = arguments[0].as_str().expect("an era");
                optional(Day::from_era(era, number(1) as i32, count(2), count(3)))
            }
            other => panic!("dates.json names {other}, which the SDK does not have"),
        }
    }

    /// Every reading of `dates.json`, the table the Python SDK passes too, so that a
    /// division's plugin reads the law alike in either language. Each failing case is named.
    #[test]
    fn the_shared_date_table_passes() {
        let table: Value = serde_json::from_str(include_str!("../dates.json")).expect("dates.json is JSON");
        let mut failures = Vec::new();
        let mut checked = 0;
        for (name, cases) in table.as_object().expect("a table by function") {
            let Some(cases) = cases.as_array() else { continue };
            for case in cases {
                let case = case.as_array().expect("a case is a list");
                let (arguments, expected) = case.split_at(case.len() - 1);
                let actual = answer(name, arguments);
                if actual != expected[0] {
                    failures.push(format!("{name}{arguments:?}: expected {}, got {actual}", expected[0]));
                }
                checked += 1;
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(checked > 100, "only {checked} cases");
    }

    #[test]
    fn day_numbers_round_trip_through_the_calendar() {
        assert_eq!(day("1970-01-01"), Day(0));
        assert_eq!(day("2000-03-01"), Day(11_017));
        for number in -800_000..800_000 {
            let (year, month, date) = Day(number).ymd();
            assert_eq!(Day::from_ymd(year, month, date), Some(Day(number)));
        }
        assert_eq!(Day::parse_iso("2024-4-x"), None);
    }

    #[test]
    fn age_at_fiscal_year_end_is_the_age_by_law_on_march_31() {
        // Two centuries of birth days, leap days and births after the day among them.
        for fiscal_year in [1999, 2024, 2027] {
            let march_31 = Day::fiscal_year_end(fiscal_year);
            for birth in (day("1900-01-01").0..day("2100-12-31").0).map(Day) {
                assert_eq!(birth.age_at_fiscal_year_end(fiscal_year), birth.age_on(march_31), "born {birth}");
            }
        }
    }

    #[test]
    fn the_latest_birth_for_an_age_at_fiscal_year_end_agrees_with_the_age() {
        let latest = Day::latest_birth_for_age_at_fiscal_year_end(2025, 40);
        assert_eq!(latest, day("1986-04-01"));
        for birth in (day("1984-01-01").0..day("1988-12-31").0).map(Day) {
            assert_eq!(birth <= latest, birth.age_at_fiscal_year_end(2025) >= 40, "born {birth}");
        }
    }
}

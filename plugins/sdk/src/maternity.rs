//! Pregnancies (a 母子健康手帳 row: issued on `start`, due on `end`) and the baby a
//! pregnancy most likely became, for programs that follow a mother from pregnancy to the
//! first year after birth.
//!
//! The records do not link a baby to its mother, so the baby of a pregnancy is a child of
//! the mother's household born between 22 weeks 0 days (the threshold of viability that
//! 母体保護法 and the 出生 statistics use) and 44 weeks 0 days of that pregnancy. Without
//! such a baby a program must not talk about the birth: the pregnancy may have ended
//! otherwise, and a notice about a baby would hurt.

use crate::{Day, Households, Person, Population, Relationship};

/// One pregnancy of one resident.
#[derive(Clone, Copy)]
pub struct Pregnancy<'a> {
    pub mother: Person<'a>,
    /// The day the 母子健康手帳 was issued (妊娠届出).
    pub notified_on: Day,
    /// 出産予定日, the day the pregnancy is 40 weeks 0 days.
    pub due_date: Day,
}

/// Every pregnancy in the population, in row order. Needs the field `pregnancies`; fails
/// when its columns are malformed.
pub fn pregnancies(population: &Population) -> Result<impl Iterator<Item = Pregnancy<'_>>, String> {
    population.pregnancies.check(population.size)?;
    Ok(population.pregnancies.records().map(move |record| Pregnancy {
        mother: population.person(record.person),
        notified_on: record.start,
        due_date: record.end,
    }))
}

impl<'a> Pregnancy<'a> {
    /// The baby this pregnancy became, if one was born by `today` into the mother's
    /// household (see the module's note). Needs the fields `household`, `relationship` and
    /// `birth-day`.
    pub fn baby(&self, households: &'a Households<'a>, today: Day) -> Option<Person<'a>> {
        let earliest = self.due_date.gestational_week_starts(22);
        let latest = self.due_date.gestational_week_starts(44).add_days(-1).min(today);
        households
            .of(&self.mother)
            .members()
            .filter(|member| {
                member.index() != self.mother.index()
                    && matches!(member.relationship(), Relationship::Child | Relationship::Other)
            })
            .filter(|member| earliest <= member.birth_day() && member.birth_day() <= latest)
            .min_by_key(|member| member.birth_day())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Events;

    fn day(text: &str) -> Day {
        Day::parse_iso(text).unwrap()
    }

    /// A mother (0) due 2026-12-01, her household's children born on the given days, and a
    /// baby (last) in another household born on the due date.
    fn population(births: &[&str]) -> Population {
        let size = births.len() as u32 + 2;
        let mut birth_day = vec![day("1995-01-01").0];
        birth_day.extend(births.iter().map(|birth| day(birth).0));
        birth_day.push(day("2026-12-01").0);
        let mut household = vec![0; size as usize];
        household[size as usize - 1] = 1;
        let mut relationship = vec![3; size as usize];
        relationship[0] = 1;
        Population {
            size,
            birth_day,
            household,
            relationship,
            pregnancies: Events {
                person: vec![0],
                codes: vec![],
                code: vec![0],
                count: vec![0],
                start: vec![day("2026-05-01").0],
                end: vec![day("2026-12-01").0],
            },
            ..Population::default()
        }
    }

    fn baby_born(births: &[&str], today: &str) -> Option<String> {
        let population = population(births);
        let households = population.households();
        let pregnancy = pregnancies(&population).unwrap().next().unwrap();
        pregnancy.baby(&households, day(today)).map(|baby| baby.birth_day().to_string())
    }

    #[test]
    fn the_baby_is_born_in_the_household_between_22_and_44_weeks() {
        // 22w0d is 2026-07-28; 43w6d is 2026-12-28.
        let cases = [
            (vec!["2026-07-28"], "2027-01-01", Some("2026-07-28")),
            (vec!["2026-07-27"], "2027-01-01", None),
            (vec!["2026-12-28"], "2027-01-01", Some("2026-12-28")),
            (vec!["2026-12-29"], "2027-01-01", None),
            (vec!["2020-04-01", "2026-11-20"], "2027-01-01", Some("2026-11-20")),
            (vec!["2026-11-20"], "2026-11-19", None),
            (vec![], "2027-01-01", None),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(births, today, expected)| {
                let actual = baby_born(births, today);
                (actual.as_deref() != *expected)
                    .then(|| format!("{births:?} on {today}: expected {expected:?}, got {actual:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

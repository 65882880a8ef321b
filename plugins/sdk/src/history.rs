//! Event rows grouped by person, so a plugin asks "has this person had dose 2" in time
//! proportional to that person's own records instead of scanning every row.
//!
//! [`Events::by_person`] finds each person's rows once (linear in people plus rows); every
//! question after that reads one person's slice.

use crate::by_person::ByPerson;
use crate::{Day, Events};

/// A code (vaccine, checkup kind, program) resolved against one [`Events`] column, so that
/// matching a row compares two numbers instead of two strings. A code the column never
/// mentions matches no row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Code(Option<u16>);

impl Code {
    fn matches(self, code: u16) -> bool {
        self.0 == Some(code)
    }
}

/// One event row: a dose, a checkup, a receipt or a pregnancy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Record {
    pub person: u32,
    /// A dose number or count; 0 when the record has none.
    pub count: u8,
    pub start: Day,
    /// The last day, for records that last (receipts, pregnancies); `i32::MAX` when open-ended.
    pub end: Day,
}

/// The rows of one [`Events`], grouped by person.
pub struct History<'a> {
    events: &'a Events,
    by_person: ByPerson,
}

impl Events {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.person.len()
    }

    pub fn is_empty(&self) -> bool {
        self.person.is_empty()
    }

    /// Resolves a code name such as `vaccine-mr` once, before looking at any person.
    pub fn code(&self, name: &str) -> Code {
        Code(self.codes.iter().position(|code| code == name).and_then(|position| u16::try_from(position).ok()))
    }

    /// Row `row` as a [`Record`].
    pub fn record(&self, row: u32) -> Record {
        let index = row as usize;
        Record {
            person: self.person[index],
            count: self.count[index],
            start: Day(self.start[index]),
            end: Day(self.end[index]),
        }
    }

    /// Every row, in column order.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        (0..self.len() as u32).map(|row| self.record(row))
    }

    /// Checks that the columns agree in length and every row names someone in a population
    /// of `population_size`.
    pub fn check(&self, population_size: u32) -> Result<(), String> {
        self.check_lengths()?;
        crate::by_person::check_owners(&self.person, population_size, "event")
    }

    fn check_lengths(&self) -> Result<(), String> {
        let rows = self.len();
        if [self.code.len(), self.count.len(), self.start.len(), self.end.len()].iter().any(|length| *length != rows) {
            return Err(format!(
                "event columns of different lengths: {rows} people, {} codes, {} counts, {} starts, {} ends",
                self.code.len(),
                self.count.len(),
                self.start.len(),
                self.end.len()
            ));
        }
        Ok(())
    }

    /// Groups the rows by person for a population of `population_size` ([`ByPerson`]).
    /// Fails when the columns differ in length or a row names someone outside it.
    pub fn by_person(&self, population_size: u32) -> Result<History<'_>, String> {
        self.check_lengths()?;
        Ok(History { events: self, by_person: ByPerson::new(&self.person, population_size, "event")? })
    }
}

impl History<'_> {
    /// The person's records of one code, in the order they appear in the columns.
    pub fn records_of(&self, person: u32, code: Code) -> impl Iterator<Item = Record> + '_ {
        self.by_person
            .rows_of(person)
            .iter()
            .filter(move |row| code.matches(self.events.code[*row as usize]))
            .map(|row| self.events.record(row))
    }

    /// The day the person was given dose `dose` of vaccine `code`, if the history records it.
    pub fn dose_date(&self, person: u32, code: Code, dose: u8) -> Option<Day> {
        self.records_of(person, code).filter(|record| record.count == dose).map(|record| record.start).min()
    }

    /// Whether the person has had dose `dose` of vaccine `code`.
    pub fn has_dose(&self, person: u32, code: Code, dose: u8) -> bool {
        self.dose_date(person, code, dose).is_some()
    }

    /// Whether the person has any record of `code` at all (any dose, any checkup).
    pub fn has_any(&self, person: u32, code: Code) -> bool {
        self.records_of(person, code).next().is_some()
    }

    /// The last day the person had a checkup (or any record) of `code`.
    pub fn last_date(&self, person: u32, code: Code) -> Option<Day> {
        self.records_of(person, code).map(|record| record.start).max()
    }

    /// Whether the person has a record of `code` that starts between `from` and `to`, both
    /// included.
    pub fn has_between(&self, person: u32, code: Code, from: Day, to: Day) -> bool {
        self.records_of(person, code).any(|record| from <= record.start && record.start <= to)
    }

    /// Whether the person is receiving program `code` on `day`: a receipt covers it.
    pub fn is_receiving(&self, person: u32, code: Code, day: Day) -> bool {
        self.records_of(person, code).any(|record| record.start <= day && day <= record.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::parse_iso(text).unwrap()
    }

    /// Three people: 0 had MR doses 1 and 2, 1 nothing, 2 one BCG; the rows are interleaved.
    fn events() -> Events {
        Events {
            person: vec![2, 0, 0],
            codes: vec!["vaccine-bcg".into(), "vaccine-mr".into()],
            code: vec![0, 1, 1],
            count: vec![1, 2, 1],
            start: vec![day("2025-10-01").0, day("2031-06-01").0, day("2026-08-01").0],
            end: vec![i32::MAX; 3],
        }
    }

    #[test]
    fn each_person_sees_only_their_own_records() {
        let events = events();
        let history = events.by_person(3).unwrap();
        let mr = events.code("vaccine-mr");
        let people: Vec<(u32, Vec<u8>)> = (0..3)
            .map(|person| (person, history.records_of(person, mr).map(|record| record.count).collect()))
            .collect();
        assert_eq!(people, vec![(0, vec![2, 1]), (1, vec![]), (2, vec![])]);
        assert_eq!(history.dose_date(0, mr, 1), Some(day("2026-08-01")));
        assert!(history.has_dose(0, mr, 2) && !history.has_dose(0, mr, 3) && !history.has_dose(1, mr, 1));
        assert_eq!(history.last_date(0, mr), Some(day("2031-06-01")));
        assert!(history.has_any(2, events.code("vaccine-bcg")));
        assert!(!history.has_any(2, events.code("vaccine-hpv")), "a code the column never mentions matches nothing");
    }

    #[test]
    fn records_between_two_days_include_both_ends() {
        let events = events();
        let history = events.by_person(3).unwrap();
        let bcg = events.code("vaccine-bcg");
        let checks: Vec<bool> =
            [("2025-10-01", "2025-10-01"), ("2025-10-02", "2026-01-01"), ("2025-01-01", "2025-09-30")]
                .iter()
                .map(|(from, to)| history.has_between(2, bcg, day(from), day(to)))
                .collect();
        assert_eq!(checks, vec![true, false, false]);
    }

    #[test]
    fn a_receipt_covers_its_first_and_last_day() {
        let events = Events {
            person: vec![0],
            codes: vec!["child-rearing-allowance".into()],
            code: vec![0],
            count: vec![0],
            start: vec![day("2025-01-01").0],
            end: vec![day("2025-12-31").0],
        };
        let history = events.by_person(1).unwrap();
        let allowance = events.code("child-rearing-allowance");
        let receiving: Vec<bool> = ["2024-12-31", "2025-01-01", "2025-12-31", "2026-01-01"]
            .iter()
            .map(|on| history.is_receiving(0, allowance, day(on)))
            .collect();
        assert_eq!(receiving, vec![false, true, true, false]);
    }

    #[test]
    fn malformed_columns_are_refused_with_what_is_wrong() {
        let mut events = events();
        assert_eq!(events.by_person(2).err().unwrap(), "event row 0 names person 2 outside a population of 2");
        events.end.pop();
        assert!(events.by_person(3).err().unwrap().starts_with("event columns of different lengths"));
    }

    #[test]
    fn rows_in_person_order_and_the_same_rows_interleaved_give_each_person_the_same_records() {
        // Person p has p % 4 records; the second set holds the same rows in reverse order.
        let people: Vec<u32> =
            (0..100u32).flat_map(|person| std::iter::repeat_n(person, person as usize % 4)).collect();
        let in_order = Events {
            person: people.clone(),
            codes: vec!["checkup-3y".into()],
            code: vec![0; people.len()],
            count: (0..people.len()).map(|row| row as u8).collect(),
            start: (0..people.len() as i32).collect(),
            end: vec![i32::MAX; people.len()],
        };
        fn reverse<T: Copy>(column: &[T]) -> Vec<T> {
            column.iter().rev().copied().collect()
        }
        let interleaved = Events {
            person: reverse(&in_order.person),
            count: reverse(&in_order.count),
            start: reverse(&in_order.start),
            ..in_order.clone()
        };
        let records = |events: &Events| {
            let history = events.by_person(100).unwrap();
            let code = events.code("checkup-3y");
            (0..100)
                .map(|person| {
                    let mut records: Vec<Record> = history.records_of(person, code).collect();
                    records.sort_by_key(|record| record.start);
                    records
                })
                .collect::<Vec<_>>()
        };
        let by_person = records(&in_order);
        assert_eq!(by_person[7].len(), 3);
        assert!(
            by_person
                .iter()
                .enumerate()
                .all(|(person, records)| records.iter().all(|record| record.person == person as u32))
        );
        assert_eq!(by_person, records(&interleaved));
    }

    #[test]
    fn a_million_rows_in_reverse_order_group_by_person() {
        let size = 1_000_000u32;
        let events = Events {
            person: (0..size).rev().collect(),
            codes: vec!["checkup-18m".into()],
            code: vec![0; size as usize],
            count: vec![0; size as usize],
            start: (0..size as i32).collect(),
            end: vec![i32::MAX; size as usize],
        };
        let history = events.by_person(size).unwrap();
        let code = events.code("checkup-18m");
        assert_eq!(history.last_date(0, code), Some(Day(size as i32 - 1)));
        assert_eq!(history.last_date(size - 1, code), Some(Day(0)));
    }
}

//! Data kinds a program asks for by name (国保, 後期高齢, 障害者手帳, 要介護 …): the periods
//! a resident belongs to something ([`Enrollments`]) and named values ([`Attributes`]),
//! as columns, and per-person views over them. The kinds are the city's words, as its
//! export writes them in `enrollments.csv` and `attributes.csv`; no host release is needed
//! for a new one.

use crate::Day;
use crate::by_person::ByPerson;

/// Periods of membership or certification, as columns of equal length; see
/// `wit/program.wit`. `end` is `i32::MAX` while the period has not ended.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Enrollments {
    pub person: Vec<u32>,
    pub kinds: Vec<String>,
    pub kind: Vec<u16>,
    /// `levels[0]` is the empty text, for rows without a grade or level.
    pub levels: Vec<String>,
    pub level: Vec<u16>,
    pub start: Vec<i32>,
    pub end: Vec<i32>,
}

/// Named values about residents, as columns of equal length; see `wit/program.wit`.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Attributes {
    pub person: Vec<u32>,
    pub names: Vec<String>,
    pub name: Vec<u16>,
    pub values: Vec<String>,
    pub value: Vec<u32>,
}

/// One period of an enrollment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Period<'a> {
    pub start: Day,
    /// The last day; `Day(i32::MAX)` while it has not ended.
    pub end: Day,
    /// The grade or level (`1級`, `要介護3`); empty when the row has none.
    pub level: &'a str,
}

/// One kind of enrollment, by person.
pub struct Membership<'a> {
    enrollments: &'a Enrollments,
    kind: Option<u16>,
    by_person: ByPerson,
}

impl Enrollments {
    /// The periods of `kind` (`国保`), grouped by person, for a population of
    /// `population_size`. A kind the export did not carry has no periods for anyone.
    pub fn membership(&self, kind: &str, population_size: u32) -> Result<Membership<'_>, String> {
        let rows = self.person.len();
        if [self.kind.len(), self.level.len(), self.start.len(), self.end.len()].iter().any(|length| *length != rows) {
            return Err("enrollment columns of different lengths".into());
        }
        let kind = self.kinds.iter().position(|found| found == kind).and_then(|index| u16::try_from(index).ok());
        Ok(Membership {
            enrollments: self,
            kind,
            by_person: ByPerson::new(&self.person, population_size, "enrollment")?,
        })
    }
}

impl<'a> Membership<'a> {
    /// Every period of this kind of one person, in the export's order.
    pub fn periods(&self, person: u32) -> impl Iterator<Item = Period<'a>> + '_ {
        let enrollments = self.enrollments;
        self.by_person.rows_of(person).iter().filter(move |row| Some(enrollments.kind[*row as usize]) == self.kind).map(
            move |row| {
                let row = row as usize;
                Period {
                    start: Day(enrollments.start[row]),
                    end: Day(enrollments.end[row]),
                    level: enrollments.levels.get(usize::from(enrollments.level[row])).map_or("", String::as_str),
                }
            },
        )
    }

    /// The period that covers `day`, if the person belongs then.
    pub fn on(&self, person: u32, day: Day) -> Option<Period<'a>> {
        self.periods(person).find(|period| period.start <= day && day <= period.end)
    }
}

/// Named values, by person.
pub struct Values<'a> {
    attributes: &'a Attributes,
    by_person: ByPerson,
}

impl Attributes {
    /// The values grouped by person, for a population of `population_size`.
    pub fn by_person(&self, population_size: u32) -> Result<Values<'_>, String> {
        if self.name.len() != self.person.len() || self.value.len() != self.person.len() {
            return Err("attribute columns of different lengths".into());
        }
        Ok(Values { attributes: self, by_person: ByPerson::new(&self.person, population_size, "attribute")? })
    }
}

impl<'a> Values<'a> {
    /// The person's value of `name`, if the export gives one.
    pub fn get(&self, person: u32, name: &str) -> Option<&'a str> {
        let attributes = self.attributes;
        self.by_person.rows_of(person).iter().map(|row| row as usize).find_map(|row| {
            let found = attributes.names.get(usize::from(attributes.name[row]))?;
            (found == name).then(|| attributes.values.get(attributes.value[row] as usize).map(String::as_str))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_membership_answers_for_one_kind_on_one_day() {
        let enrollments = Enrollments {
            person: vec![1, 0, 1],
            kinds: vec!["国保".into(), "要介護".into()],
            kind: vec![0, 0, 1],
            levels: vec![String::new(), "要介護2".into()],
            level: vec![0, 0, 1],
            start: vec![100, 0, 50],
            end: vec![i32::MAX, 99, i32::MAX],
        };
        let national = enrollments.membership("国保", 3).unwrap();
        assert_eq!(national.on(0, Day(99)).map(|period| period.end), Some(Day(99)));
        assert_eq!(national.on(0, Day(100)), None);
        assert_eq!(national.on(1, Day(100)).map(|period| period.start), Some(Day(100)));
        assert_eq!(national.on(2, Day(100)), None);
        let care = enrollments.membership("要介護", 3).unwrap();
        assert_eq!(care.on(1, Day(60)).map(|period| period.level), Some("要介護2"));
        assert!(enrollments.membership("後期高齢", 3).unwrap().on(1, Day(60)).is_none());
        assert!(enrollments.membership("国保", 1).is_err(), "a row naming person 1 of a population of 1");
    }

    #[test]
    fn values_are_found_by_person_and_name() {
        let attributes = Attributes {
            person: vec![0, 0],
            names: vec!["手帳等級".into(), "障害種別".into()],
            name: vec![1, 0],
            values: vec!["2".into(), "肢体".into()],
            value: vec![1, 0],
        };
        let values = attributes.by_person(2).unwrap();
        assert_eq!(
            (values.get(0, "手帳等級"), values.get(0, "障害種別"), values.get(1, "手帳等級")),
            (Some("2"), Some("肢体"), None)
        );
    }
}

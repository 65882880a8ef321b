//! The population as columns, and the row views plugin authors read it through.

use crate::by_person::BLOCK;
use crate::{Attributes, Day, Enrollments};

/// Dated records about residents (immunizations, checkups, pregnancies, receipts), as
/// columns of equal length; see `wit/program.wit`.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Events {
    pub person: Vec<u32>,
    pub codes: Vec<String>,
    pub code: Vec<u16>,
    pub count: Vec<u8>,
    pub start: Vec<i32>,
    pub end: Vec<i32>,
}

/// The residents a program may see, one column per field. Columns the manifest did not
/// declare are empty; reading one through [`Person`] panics with the field's name.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Population {
    pub size: u32,
    pub birth_day: Vec<i32>,
    pub sex: Vec<u8>,
    pub household: Vec<u32>,
    pub relationship: Vec<u8>,
    pub ward: Vec<u16>,
    pub wards: Vec<String>,
    pub resident_since: Vec<i32>,
    pub taxable: Vec<u8>,
    pub income: Vec<i64>,
    pub pregnancies: Events,
    pub immunizations: Events,
    pub checkups: Events,
    pub receipts: Events,
    /// The periods of the data kinds the manifest asks for (国保, 要介護 …).
    pub enrollments: Enrollments,
    /// The named values of the data kinds the manifest asks for.
    pub attributes: Attributes,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sex {
    Male,
    Female,
    Unknown,
}

impl Sex {
    /// The code used in the population column (1 male, 2 female, 0 not recorded).
    pub fn code(self) -> u8 {
        match self {
            Sex::Male => 1,
            Sex::Female => 2,
            Sex::Unknown => 0,
        }
    }

    pub fn from_code(code: u8) -> Sex {
        match code {
            1 => Sex::Male,
            2 => Sex::Female,
            _ => Sex::Unknown,
        }
    }
}

/// The relationship to the head of household (続柄).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Relationship {
    Head,
    Spouse,
    Child,
    Parent,
    Other,
}

impl Relationship {
    /// The code used in the population column.
    pub fn code(self) -> u8 {
        match self {
            Relationship::Head => 1,
            Relationship::Spouse => 2,
            Relationship::Child => 3,
            Relationship::Parent => 4,
            Relationship::Other => 9,
        }
    }

    pub fn from_code(code: u8) -> Relationship {
        match code {
            1 => Relationship::Head,
            2 => Relationship::Spouse,
            3 => Relationship::Child,
            4 => Relationship::Parent,
            _ => Relationship::Other,
        }
    }
}

/// Whether a resident pays municipal tax (課税区分), known only with their consent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Taxable {
    /// No consent to the use of tax data, or no record.
    Unknown,
    /// 非課税.
    NotTaxed,
    /// 均等割のみ課税.
    PerCapitaOnly,
    /// 課税.
    Taxed,
}

impl Taxable {
    /// The code used in the population column.
    pub fn code(self) -> u8 {
        match self {
            Taxable::Unknown => 0,
            Taxable::NotTaxed => 1,
            Taxable::PerCapitaOnly => 2,
            Taxable::Taxed => 3,
        }
    }

    pub fn from_code(code: u8) -> Taxable {
        match code {
            1 => Taxable::NotTaxed,
            2 => Taxable::PerCapitaOnly,
            3 => Taxable::Taxed,
            _ => Taxable::Unknown,
        }
    }
}

impl Population {
    /// Every person, in population order.
    pub fn people(&self) -> impl Iterator<Item = Person<'_>> {
        (0..self.size).map(move |index| Person { population: self, index })
    }

    /// The people born from `earliest` to `latest`, both included, in population order: the
    /// few a child's program looks at, found without visiting each of a city's million
    /// people one by one. The birth days are compared a block at a time, so that the sandbox
    /// checks its time limit once a block; only a block with someone inside is looked into.
    pub fn born_between(&self, earliest: Day, latest: Day) -> impl Iterator<Item = Person<'_>> {
        let size = self.size as usize;
        if self.birth_day.len() < size {
            panic!("{}", undeclared("birth-day"));
        }
        let column = &self.birth_day[..size];
        // `&` rather than `&&`: no branch per day, so the comparisons of a block vectorize.
        let inside = |day: i32| (earliest.0 <= day) & (day <= latest.0);
        let mut rows = Vec::new();
        let blocks = column.chunks_exact(BLOCK);
        let rest = size - blocks.remainder().len();
        for (number, block) in blocks.enumerate() {
            if block.iter().fold(false, |any, day| any | inside(*day)) {
                let first = number * BLOCK;
                rows.extend((first..first + BLOCK).filter(|row| inside(column[*row])).map(|row| row as u32));
            }
        }
        rows.extend((rest..size).filter(|row| inside(column[*row])).map(|row| row as u32));
        rows.into_iter().map(move |index| Person { population: self, index })
    }

    pub fn person(&self, index: u32) -> Person<'_> {
        assert!(index < self.size, "person {index} is outside a population of {}", self.size);
        Person { population: self, index }
    }
}

/// One person's row, read from the columns.
#[derive(Clone, Copy)]
pub struct Person<'a> {
    population: &'a Population,
    index: u32,
}

fn cell<T: Copy>(column: &[T], index: u32, field: &str) -> T {
    match column.get(index as usize) {
        Some(value) => *value,
        None => panic!("{}", undeclared(field)),
    }
}

/// The message for a column that was read but not declared.
pub(crate) fn undeclared(field: &str) -> String {
    format!("column {field} is empty: declare the field {field} in the program's manifest")
}

impl Person<'_> {
    /// The person's position in the population, which is what a [`crate::Notice`] names.
    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn birth_day(&self) -> Day {
        Day(cell(&self.population.birth_day, self.index, "birth-day"))
    }

    pub fn sex(&self) -> Sex {
        Sex::from_code(cell(&self.population.sex, self.index, "sex"))
    }

    pub fn household(&self) -> u32 {
        cell(&self.population.household, self.index, "household")
    }

    pub fn relationship(&self) -> Relationship {
        Relationship::from_code(cell(&self.population.relationship, self.index, "relationship"))
    }

    pub fn ward(&self) -> &str {
        let ward = cell(&self.population.ward, self.index, "ward");
        self.population.wards.get(ward as usize).map(String::as_str).unwrap_or("")
    }

    /// The day the person became a resident of the city, if the records say.
    pub fn resident_since(&self) -> Option<Day> {
        let since = cell(&self.population.resident_since, self.index, "resident-since");
        (since != i32::MIN).then_some(Day(since))
    }

    /// Whether the person pays municipal tax; [`Taxable::Unknown`] without their consent.
    pub fn taxable(&self) -> Taxable {
        Taxable::from_code(cell(&self.population.taxable, self.index, "tax"))
    }

    /// The person's total income in yen (所得); 0 when unknown or without consent, so read
    /// [`Person::taxable`] first.
    pub fn income(&self) -> i64 {
        cell(&self.population.income, self.index, "tax")
    }

    /// The person's age by law on `day`.
    pub fn age_on(&self, day: Day) -> u32 {
        self.birth_day().age_on(day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_their_own_cells() {
        let population = Population { size: 2, birth_day: vec![0, 365], sex: vec![2, 1], ..Population::default() };
        let people: Vec<(u32, Day, Sex)> =
            population.people().map(|person| (person.index(), person.birth_day(), person.sex())).collect();
        assert_eq!(people, vec![(0, Day(0), Sex::Female), (1, Day(365), Sex::Male)]);
    }

    /// Born on the first or last day of the range, inside a block or in the rest after the
    /// last whole block: found; a day before or after: not.
    #[test]
    fn people_born_in_a_range_are_found_in_order() {
        let birth_day: Vec<i32> = (0..21).map(|row| [5, 9, 10, 20, 21][row % 5]).collect();
        let population = Population { size: 21, birth_day, ..Population::default() };
        let found: Vec<u32> = population.born_between(Day(10), Day(20)).map(|person| person.index()).collect();
        let expected: Vec<u32> = (0..21).filter(|row| row % 5 == 2 || row % 5 == 3).collect();
        assert_eq!(found, expected);
        assert_eq!(population.born_between(Day(21), Day(21)).last().map(|person| person.index()), Some(19));
        assert_eq!(population.born_between(Day(11), Day(19)).count(), 0);
    }

    #[test]
    #[should_panic(expected = "declare the field household")]
    fn reading_an_undeclared_column_names_the_field() {
        let population = Population { size: 1, birth_day: vec![0], ..Population::default() };
        population.person(0).household();
    }
}

//! Households (世帯) as groups of people, built once per evaluation, and the questions
//! benefits ask about them: who is the head, who are the children, is it a single-parent
//! household, how many dependants.
//!
//! The resident records say who lives together and how each member is related to the head
//! of household (続柄), not who is whose parent or who is a tax dependant; the helpers say
//! which approximation they make.

use crate::by_person::{ByPerson, Rows};
use crate::population::undeclared;
use crate::{Day, Person, Population, Relationship};

/// Every household's members, grouped once in time linear in the population.
pub struct Households<'a> {
    population: &'a Population,
    members: ByPerson,
}

/// One household: its members, in population order.
#[derive(Clone, Copy)]
pub struct Household<'a> {
    population: &'a Population,
    members: Rows<'a>,
}

impl Population {
    /// Groups the people by household. Needs the field `household`.
    pub fn households(&self) -> Households<'_> {
        assert!(self.household.len() == self.size as usize, "{}", undeclared("household"));
        let count = self.household.iter().max().map_or(0, |largest| *largest + 1);
        // Every household number is below `count`, so the grouping cannot fail.
        let members = ByPerson::new(&self.household, count, "household").unwrap_or_else(|error| panic!("{error}"));
        Households { population: self, members }
    }
}

impl<'a> Households<'a> {
    /// The household `person` lives in.
    pub fn of(&self, person: &Person<'_>) -> Household<'_> {
        self.get(person.household())
    }

    fn get(&self, household: u32) -> Household<'_> {
        Household { population: self.population, members: self.members.rows_of(household) }
    }

    /// Every household with at least one member.
    pub fn iter(&self) -> impl Iterator<Item = Household<'_>> {
        (0..self.members.owners())
            .map(|household| self.get(household))
            .filter(|household| !household.members.is_empty())
    }
}

impl<'a> Household<'a> {
    pub fn members(&self) -> impl Iterator<Item = Person<'a>> + 'a {
        let population = self.population;
        self.members.iter().map(move |index| population.person(index))
    }

    /// The head of household (世帯主); needs the field `relationship`.
    pub fn head(&self) -> Option<Person<'a>> {
        self.members().find(|member| member.relationship() == Relationship::Head)
    }

    /// Whether the head's spouse lives in the household.
    pub fn has_spouse(&self) -> bool {
        self.members().any(|member| member.relationship() == Relationship::Spouse)
    }

    /// The head's children (続柄 子) who live in the household.
    pub fn children_of_head(&self) -> impl Iterator<Item = Person<'a>> + 'a {
        self.members().filter(|member| member.relationship() == Relationship::Child)
    }

    /// The head's children on `day` who are still 児童 in the sense of 児童扶養手当法 第3条:
    /// born, and not past the first March 31 after reaching 18.
    pub fn dependent_children(&self, day: Day) -> impl Iterator<Item = Person<'a>> + 'a {
        self.children_of_head()
            .filter(move |child| child.birth_day() <= day && day <= child.birth_day().first_march_31_after_reaching(18))
    }

    /// A single-parent household (ひとり親世帯) on `day`: a head with at least one dependent
    /// child (see [`Household::dependent_children`]) and no spouse in the household. The
    /// records cannot show an unmarried partner recorded as 同居人, so such a household
    /// counts as single-parent here; the division confirms on application.
    pub fn is_single_parent(&self, day: Day) -> bool {
        self.head().is_some() && !self.has_spouse() && self.dependent_children(day).next().is_some()
    }

    /// The head's dependants (扶養親族等の数) as far as the resident records can tell: the
    /// other members who are the head's children or parents. Who is really a tax dependant
    /// is in the tax records, which the host does not hand over yet.
    pub fn dependants_of_head(&self) -> u32 {
        self.members()
            .filter(|member| matches!(member.relationship(), Relationship::Child | Relationship::Parent))
            .count() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::parse_iso(text).unwrap()
    }

    /// Household 0: a head, a spouse, a child. Household 1: a head, a child born 2008-04-02
    /// and the head's parent. Household 2 has nobody; household 3 is a lone head.
    fn population() -> Population {
        Population {
            size: 7,
            birth_day: [
                "1990-01-01",
                "1991-01-01",
                "2020-05-05",
                "1985-06-01",
                "2008-04-02",
                "1955-01-01",
                "1970-01-01",
            ]
            .iter()
            .map(|text| day(text).0)
            .collect(),
            household: vec![0, 0, 0, 1, 1, 1, 3],
            relationship: vec![1, 2, 3, 1, 3, 4, 1],
            ..Population::default()
        }
    }

    #[test]
    fn members_are_grouped_by_household() {
        let population = population();
        let households = population.households();
        let groups: Vec<Vec<u32>> =
            households.iter().map(|household| household.members().map(|member| member.index()).collect()).collect();
        assert_eq!(groups, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        let of_child = households.of(&population.person(4));
        assert_eq!(of_child.head().map(|head| head.index()), Some(3));
        assert_eq!(of_child.children_of_head().map(|child| child.index()).collect::<Vec<_>>(), vec![4]);
        assert_eq!(of_child.dependants_of_head(), 2);
    }

    #[test]
    fn a_single_parent_household_has_a_child_until_the_march_after_eighteen() {
        let population = population();
        let households = population.households();
        let single = households.of(&population.person(3));
        // The child born 2008-04-02 reaches 18 on 2026-04-01, so stays a 児童 until 2027-03-31.
        let checks: Vec<(&str, bool)> = ["2026-04-01", "2027-03-31", "2027-04-01", "2008-04-01"]
            .iter()
            .map(|on| (*on, single.is_single_parent(day(on))))
            .collect();
        assert_eq!(
            checks,
            vec![("2026-04-01", true), ("2027-03-31", true), ("2027-04-01", false), ("2008-04-01", false)]
        );
        assert!(!households.of(&population.person(0)).is_single_parent(day("2026-04-01")), "a head with a spouse");
        assert!(!households.of(&population.person(6)).is_single_parent(day("2026-04-01")), "a head without children");
    }

    #[test]
    #[should_panic(expected = "declare the field household")]
    fn households_need_the_household_field() {
        Population { size: 1, birth_day: vec![0], ..Population::default() }.households();
    }
}

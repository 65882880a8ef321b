//! Rows of a column grouped by the person (or household) they name, shared by the event
//! history, the enrollments, the attributes and the households: one pass over the rows
//! counts each person's, one over the people sums the counts, and person `p`'s rows are
//! then found in one step.
//!
//! The loops run over blocks of [`BLOCK`] values: in the sandbox, which checks its
//! wall-time limit at every turn of a loop, the eight values of a block share one check (a
//! city of a million has a million people and millions of rows); natively the blocks
//! unroll.

/// How many values a loop over a whole column handles per turn.
pub(crate) const BLOCK: usize = 8;

/// Row numbers grouped by person: person `p`'s rows are positions
/// `first_row[p]..first_row[p + 1]`, in the column's order.
pub(crate) struct ByPerson {
    first_row: Vec<u32>,
    /// The row numbers in person order; `None` when the column is in person order already,
    /// as exports write it (a resident's records together), so that position `i` is row `i`.
    rows: Option<Vec<u32>>,
}

/// Says which `what` row of the column `person` names someone outside a population of
/// `population_size`, if any does.
pub(crate) fn check_owners(person: &[u32], population_size: u32, what: &str) -> Result<(), String> {
    // The largest owner in one pass without an early exit, which vectorizes.
    let largest = person.iter().fold(0, |largest, owner| largest.max(*owner));
    if person.is_empty() || largest < population_size {
        return Ok(());
    }
    let row = person.iter().position(|owner| *owner >= population_size).unwrap_or_default();
    Err(format!("{what} row {row} names person {} outside a population of {population_size}", person[row]))
}

impl ByPerson {
    /// Groups the rows of the column `person` for a population of `population_size`, or
    /// says which `what` row names someone outside it.
    pub(crate) fn new(person: &[u32], population_size: u32, what: &str) -> Result<ByPerson, String> {
        // The owners are checked first, so that the counting below indexes only within bounds.
        check_owners(person, population_size, what)?;
        let mut first_row = vec![0u32; population_size as usize + 1];
        let (mut in_person_order, mut previous) = (true, 0);
        let mut count = |owner: u32| {
            first_row[owner as usize + 1] += 1;
            in_person_order &= previous <= owner;
            previous = owner;
        };
        let blocks = person.chunks_exact(BLOCK);
        let rest = blocks.remainder();
        for block in blocks {
            for owner in block {
                count(*owner);
            }
        }
        rest.iter().for_each(|owner| count(*owner));
        // Running sums: first_row[p + 1] held p's count and becomes the end of p's rows.
        let mut total = 0;
        let mut sum = |slot: &mut u32| {
            total += *slot;
            *slot = total;
        };
        let mut blocks = first_row.chunks_exact_mut(BLOCK);
        for block in &mut blocks {
            block.iter_mut().for_each(&mut sum);
        }
        blocks.into_remainder().iter_mut().for_each(sum);
        let rows = (!in_person_order).then(|| {
            let mut next = first_row.clone();
            let mut sorted = vec![0u32; person.len()];
            for (row, owner) in person.iter().enumerate() {
                let slot = &mut next[*owner as usize];
                sorted[*slot as usize] = row as u32;
                *slot += 1;
            }
            sorted
        });
        Ok(ByPerson { first_row, rows })
    }

    /// How many people (or households) the rows were grouped for.
    pub(crate) fn owners(&self) -> u32 {
        (self.first_row.len() - 1) as u32
    }

    /// The person's rows; none for someone outside the population.
    pub(crate) fn rows_of(&self, person: u32) -> Rows<'_> {
        let index = person as usize;
        match (self.first_row.get(index), self.first_row.get(index + 1)) {
            (Some(first), Some(end)) => Rows { first: *first, end: *end, order: self.rows.as_deref() },
            _ => Rows { first: 0, end: 0, order: None },
        }
    }
}

/// One person's row numbers, in the column's order.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    first: u32,
    end: u32,
    order: Option<&'a [u32]>,
}

impl<'a> Rows<'a> {
    pub(crate) fn iter(self) -> impl Iterator<Item = u32> + 'a {
        let order = self.order;
        (self.first..self.end).map(move |position| order.map_or(position, |rows| rows[position as usize]))
    }

    pub(crate) fn is_empty(self) -> bool {
        self.first == self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every person's rows, as a list per person.
    fn grouped(person: &[u32], population_size: u32) -> Vec<Vec<u32>> {
        let by_person = ByPerson::new(person, population_size, "test").unwrap();
        (0..population_size).map(|owner| by_person.rows_of(owner).iter().collect()).collect()
    }

    /// Columns in and out of person order, longer and shorter than a block, group alike:
    /// each person's rows in column order.
    #[test]
    fn rows_are_grouped_by_person_in_and_out_of_order() {
        assert_eq!(grouped(&[0, 0, 2, 2, 2], 3), vec![vec![0, 1], vec![], vec![2, 3, 4]]);
        assert_eq!(grouped(&[2, 0, 2, 0, 1], 3), vec![vec![1, 3], vec![4], vec![0, 2]]);
        let long: Vec<u32> = (0..21).map(|row| (row * 7) % 10).collect();
        let expected: Vec<Vec<u32>> =
            (0..10).map(|owner| (0..21).filter(|row| long[*row as usize] == owner).collect()).collect();
        assert_eq!(grouped(&long, 10), expected);
        let sorted: Vec<u32> = (0..19).map(|row| row / 2).collect();
        assert_eq!(grouped(&sorted, 10)[9], vec![18]);
        assert_eq!(grouped(&[], 2), vec![Vec::<u32>::new(), vec![]]);
    }

    #[test]
    fn a_row_outside_the_population_is_named() {
        let refused = ByPerson::new(&[0, 1, 5, 1], 3, "event").err();
        assert_eq!(refused.as_deref(), Some("event row 2 names person 5 outside a population of 3"));
    }
}

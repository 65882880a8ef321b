//! The rule single-parent benefits share (児童扶養手当 and ひとり親家庭等医療費助成, whose
//! income limit is the 児童扶養手当受給水準): a single-parent household whose head consented
//! to the use of tax data and earns under the limit for their number of dependants, and
//! who does not already receive the benefit. The head is told once per 年度 while this holds.
//!
//! Income limits (所得制限限度額, 一部支給) from November 2024 (児童扶養手当法施行令 第2条の4):
//! 2,080,000 yen with no dependants, plus 380,000 yen for each dependant. The income compared
//! with the limit is the 所得 less the deductions of 施行令 第4条 ([`income_for_limit`]).
//! Simplifications: of those deductions only the flat 80,000 yen (第4条 第2項, for social
//! insurance) is applied, because the export carries neither the other deductions (障害者,
//! 寡婦, 医療費 …) nor the child support received (80% of which 第4条 adds), and dependants
//! are counted from the resident records (see [`crate::Household::dependants_of_head`]). The
//! division confirms all three on application.

use crate::{Day, FISCAL_YEAR, Field, Notice, Population, Taxable};

/// The data the rule reads.
pub const FIELDS: [Field; 5] = [Field::BirthDay, Field::Household, Field::Relationship, Field::Tax, Field::Receipts];

/// The flat deduction every income gets before it is compared with the limit (児童扶養手当法
/// 施行令 第4条 第2項: 80,000 yen, standing for social insurance premiums).
pub const FLAT_DEDUCTION: i64 = 80_000;

/// The income compared with [`income_limit`]: the 所得 less the deductions of 児童扶養手当法
/// 施行令 第4条, of which only the flat [`FLAT_DEDUCTION`] is known from the export. Never below 0.
pub fn income_for_limit(income: i64) -> i64 {
    (income - FLAT_DEDUCTION).max(0)
}

/// The highest income (exclusive, after [`income_for_limit`]) at which a parent with `dependants` receives at least
/// part of 児童扶養手当.
pub fn income_limit(dependants: u32) -> i64 {
    2_080_000 + 380_000 * i64::from(dependants)
}

/// Notices for the heads of eligible single-parent households who are not receiving
/// `program` (a receipt code) today. The notice lasts until the end of the 年度: a child
/// stops being a 児童 only on a March 31, never inside a 年度.
pub fn evaluate(program: &str, today: Day, population: &Population) -> Result<Vec<Notice>, String> {
    let receipts = population.receipts.by_person(population.size)?;
    let code = population.receipts.code(program);
    let households = population.households();
    let mut notices = Vec::new();
    for household in households.iter() {
        let Some(head) = household.head() else { continue };
        // Tax data is only there with consent; without it nobody can say the head qualifies.
        if head.taxable() == Taxable::Unknown || !household.is_single_parent(today) {
            continue;
        }
        let dependants = household.dependants_of_head();
        let limit = income_limit(dependants);
        if income_for_limit(head.income()) >= limit || receipts.is_receiving(head.index(), code, today) {
            continue;
        }
        let expires_on = Day::fiscal_year_end(today.fiscal_year());
        notices.extend(
            Notice::learnt_today(
                &head,
                FISCAL_YEAR,
                today,
                expires_on,
                format!(
                    "ひとり親世帯、扶養{dependants}人、\
                     所得から8万円を控除して限度額{limit}円未満"
                ),
            )
            .map(|notice| notice.instance(today.fiscal_year())),
        );
    }
    Ok(notices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_grows_by_380_000_yen_a_dependant() {
        assert_eq!([0, 1, 2, 3].map(income_limit), [2_080_000, 2_460_000, 2_840_000, 3_220_000]);
    }

    #[test]
    fn the_income_compared_is_after_the_flat_deduction() {
        assert_eq!([0, 50_000, 80_000, 2_540_000].map(income_for_limit), [0, 0, 0, 2_460_000]);
    }
}

//! Converts between wit-bindgen's generated types and the SDK's plain ones; compiled only
//! into components. The columns are moved, not copied.

use crate::bindings::oshirase::program::types as wit;
use crate::{Category, Day, Events, Field, Notice, Population, Program, ProgramInfo};

pub fn describe<P: Program>() -> wit::ProgramInfo {
    let info: ProgramInfo = P::describe();
    wit::ProgramInfo {
        code: info.code,
        name: info.name,
        division: info.division,
        contact: info.contact,
        category: match info.category {
            Category::ChildRearing => wit::Category::ChildRearing,
            Category::Health => wit::Category::Health,
            Category::Vaccination => wit::Category::Vaccination,
            Category::Allowance => wit::Category::Allowance,
            Category::Living => wit::Category::Living,
        },
        schedule: info.schedule,
        source_url: info.source_url,
        fields: info.fields.into_iter().map(field_to_wit).collect(),
        occasions: info
            .occasions
            .into_iter()
            .map(|occasion| wit::Occasion { key: occasion.key, title: occasion.title, template: occasion.template })
            .collect(),
    }
}

fn field_to_wit(field: Field) -> wit::Field {
    match field {
        Field::BirthDay => wit::Field::BirthDay,
        Field::Sex => wit::Field::Sex,
        Field::Household => wit::Field::Household,
        Field::Relationship => wit::Field::Relationship,
        Field::Ward => wit::Field::Ward,
        Field::ResidentSince => wit::Field::ResidentSince,
        Field::Tax => wit::Field::Tax,
        Field::Pregnancies => wit::Field::Pregnancies,
        Field::Immunizations => wit::Field::Immunizations,
        Field::Checkups => wit::Field::Checkups,
        Field::Receipts => wit::Field::Receipts,
    }
}

fn events_from_wit(events: wit::Events) -> Events {
    Events {
        person: events.person,
        codes: events.codes,
        code: events.code,
        count: events.count,
        start: events.start,
        end: events.end,
    }
}

pub fn evaluate<P: Program>(today: i32, population: wit::Population) -> Result<Vec<wit::Notice>, String> {
    let population = Population {
        size: population.size,
        birth_day: population.birth_day,
        sex: population.sex,
        household: population.household,
        relationship: population.relationship,
        ward: population.ward,
        wards: population.wards,
        resident_since: population.resident_since,
        taxable: population.taxable,
        income: population.income,
        pregnancies: events_from_wit(population.pregnancies),
        immunizations: events_from_wit(population.immunizations),
        checkups: events_from_wit(population.checkups),
        receipts: events_from_wit(population.receipts),
    };
    let notices = P::evaluate(Day(today), &population)?;
    Ok(notices
        .into_iter()
        .map(|notice: Notice| wit::Notice {
            person: notice.person,
            occasion: notice.occasion,
            send_on: notice.send_on.0,
            expires_on: notice.expires_on.0,
            reason: notice.reason,
        })
        .collect())
}

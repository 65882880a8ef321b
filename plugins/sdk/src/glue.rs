//! Converts between wit-bindgen's generated types and the SDK's plain ones; compiled only
//! into components. The population's columns are moved, not copied; the notices leave as
//! columns, each distinct reason text once (the SDK keeps them once already, [`Reason`]).

use crate::bindings::oshirase::program::types as wit;
use crate::{
    Attributes, Category, Day, Enrollments, Events, Field, MonthDay, Population, Program, ProgramInfo, Reason, Setting,
    SettingType, SettingValue, Settings,
};

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
        kinds: info.kinds,
        settings: info.settings.into_iter().map(setting_to_wit).collect(),
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

fn setting_to_wit(setting: Setting) -> wit::Setting {
    let bounds = |minimum: i64, maximum: i64| wit::Bounds { minimum, maximum };
    wit::Setting {
        name: setting.name,
        label: setting.label,
        help: setting.help,
        type_: match setting.kind {
            SettingType::Integer { minimum, maximum } => wit::SettingType::Integer(bounds(minimum, maximum)),
            SettingType::Yen { minimum, maximum } => wit::SettingType::Yen(bounds(minimum, maximum)),
            SettingType::Date { earliest, latest } => {
                wit::SettingType::Date(bounds(i64::from(earliest.0), i64::from(latest.0)))
            }
            SettingType::MonthDay => wit::SettingType::MonthDay,
            SettingType::Text { max_chars } => wit::SettingType::Text(max_chars),
            SettingType::Choice(choices) => wit::SettingType::Choice(choices),
        },
        default: value_to_wit(setting.default),
    }
}

fn value_to_wit(value: SettingValue) -> wit::SettingValue {
    match value {
        SettingValue::Integer(number) => wit::SettingValue::Integer(number),
        SettingValue::Yen(yen) => wit::SettingValue::Yen(yen),
        SettingValue::Date(day) => wit::SettingValue::Date(day.0),
        SettingValue::MonthDay(month_day) => wit::SettingValue::MonthDay(month_day.code()),
        SettingValue::Text(text) => wit::SettingValue::Text(text),
        SettingValue::Choice(choice) => wit::SettingValue::Choice(choice),
    }
}

fn value_from_wit(value: wit::SettingValue) -> Result<SettingValue, String> {
    Ok(match value {
        wit::SettingValue::Integer(number) => SettingValue::Integer(number),
        wit::SettingValue::Yen(yen) => SettingValue::Yen(yen),
        wit::SettingValue::Date(day) => SettingValue::Date(Day(day)),
        wit::SettingValue::MonthDay(code) => {
            SettingValue::MonthDay(MonthDay::from_code(code).ok_or_else(|| format!("{code} is not a month and day"))?)
        }
        wit::SettingValue::Text(text) => SettingValue::Text(text),
        wit::SettingValue::Choice(choice) => SettingValue::Choice(choice),
    })
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

pub fn evaluate<P: Program>(
    today: i32,
    settings: Vec<wit::SettingValue>,
    population: wit::Population,
) -> Result<wit::Notices, String> {
    let ProgramInfo { settings: declared, occasions, .. } = P::describe();
    if settings.len() != declared.len() {
        return Err(format!("{} setting values for {} declared settings", settings.len(), declared.len()));
    }
    let values = settings.into_iter().map(value_from_wit).collect::<Result<Vec<_>, _>>()?;
    let settings = Settings::from_values(&declared, values);
    let enrollments = population.enrollments;
    let attributes = population.attributes;
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
        enrollments: Enrollments {
            person: enrollments.person,
            kinds: enrollments.kinds,
            kind: enrollments.kind,
            levels: enrollments.levels,
            level: enrollments.level,
            start: enrollments.start,
            end: enrollments.end,
        },
        attributes: Attributes {
            person: attributes.person,
            names: attributes.names,
            name: attributes.name,
            values: attributes.values,
            value: attributes.value,
        },
    };
    let notices = P::evaluate(Day(today), &settings, &population)?;
    drop(population);
    let occasions: Vec<String> = occasions.into_iter().map(|occasion| occasion.key).collect();
    let mut columns = wit::Notices {
        person: Vec::with_capacity(notices.len()),
        occasion: Vec::with_capacity(notices.len()),
        instance: Vec::with_capacity(notices.len()),
        send_on: Vec::with_capacity(notices.len()),
        expires_on: Vec::with_capacity(notices.len()),
        reason: Vec::with_capacity(notices.len()),
        // The instance is fresh for this evaluation, so its reasons are this answer's.
        reasons: Reason::texts(),
    };
    // A program's notices mostly share an occasion, most often borrowed from one constant:
    // the same memory as the last notice's key is the same key. Every notice is alive
    // until the loop ends, so two keys at one address are one text.
    let mut last: Option<(&str, u16)> = None;
    for notice in &notices {
        let occasion = match last {
            Some((text, index)) if std::ptr::eq(text, &*notice.occasion) => index,
            _ => {
                let position = occasions
                    .iter()
                    .position(|key| *key == notice.occasion)
                    .ok_or_else(|| format!("occasion {:?} is not in the manifest", notice.occasion))?;
                let index = u16::try_from(position).map_err(|_| "more than 65,536 occasions".to_string())?;
                last = Some((&notice.occasion, index));
                index
            }
        };
        columns.person.push(notice.person);
        columns.occasion.push(occasion);
        columns.instance.push(notice.instance);
        columns.send_on.push(notice.send_on.0);
        columns.expires_on.push(notice.expires_on.0);
        columns.reason.push(notice.reason.number());
    }
    Ok(columns)
}

//! Settings: the conditions a manifest lets staff change without a new build (a season's
//! dates, an age band, a fee, an income limit), their types and bounds, and the values a
//! program is evaluated with. The host checks values with the same [`SettingType::check`],
//! so a value a plugin receives always satisfies its type.

use crate::Day;
use crate::date::days_in_month;

/// A day of the year that recurs every year (a season's first or last day). February 29
/// means the last day of February, so that "the end of February" is one setting.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct MonthDay {
    pub month: u32,
    pub day: u32,
}

impl MonthDay {
    /// From month × 100 + day, as the contract carries it (`516` is May 16).
    pub fn from_code(code: u16) -> Option<MonthDay> {
        let (month, day) = (u32::from(code / 100), u32::from(code % 100));
        ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(2024, month)).then_some(MonthDay { month, day })
    }

    pub fn code(self) -> u16 {
        (self.month * 100 + self.day) as u16
    }

    /// This month and day in `year`; February 29 is February 28 in a common year.
    pub fn in_year(self, year: i32) -> Day {
        let day = self.day.min(days_in_month(year, self.month));
        Day::from_ymd(year, self.month, day).expect("a checked month and day exist in every year")
    }

    /// This month and day within the 年度 `fiscal_year` (April to March).
    pub fn in_fiscal_year(self, fiscal_year: i32) -> Day {
        self.in_year(if self.month >= 4 { fiscal_year } else { fiscal_year + 1 })
    }
}

impl std::fmt::Display for MonthDay {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{:02}-{:02}", self.month, self.day)
    }
}

/// What a setting holds, with its bounds.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SettingType {
    Integer {
        minimum: i64,
        maximum: i64,
    },
    Yen {
        minimum: i64,
        maximum: i64,
    },
    Date {
        earliest: Day,
        latest: Day,
    },
    MonthDay,
    /// A text of at most this many characters.
    Text {
        max_chars: u32,
    },
    Choice(Vec<String>),
}

/// A value of a setting.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SettingValue {
    Integer(i64),
    Yen(i64),
    Date(Day),
    MonthDay(MonthDay),
    Text(String),
    Choice(String),
}

impl SettingType {
    /// The name of the type, as staff screens and the API show it.
    pub fn name(&self) -> &'static str {
        match self {
            SettingType::Integer { .. } => "integer",
            SettingType::Yen { .. } => "yen",
            SettingType::Date { .. } => "date",
            SettingType::MonthDay => "month-day",
            SettingType::Text { .. } => "text",
            SettingType::Choice(_) => "choice",
        }
    }

    /// Whether `value` is of this type and within its bounds; the error says why not.
    pub fn check(&self, value: &SettingValue) -> Result<(), String> {
        let within = |number: i64, minimum: i64, maximum: i64, unit: &str| {
            if (minimum..=maximum).contains(&number) {
                Ok(())
            } else {
                Err(format!("{number}{unit} is outside {minimum}{unit}..{maximum}{unit}"))
            }
        };
        match (self, value) {
            (SettingType::Integer { minimum, maximum }, SettingValue::Integer(number)) => {
                within(*number, *minimum, *maximum, "")
            }
            (SettingType::Yen { minimum, maximum }, SettingValue::Yen(yen)) => within(*yen, *minimum, *maximum, "円"),
            (SettingType::Date { earliest, latest }, SettingValue::Date(day)) => {
                if earliest <= day && day <= latest {
                    Ok(())
                } else {
                    Err(format!("{day} is outside {earliest}..{latest}"))
                }
            }
            (SettingType::MonthDay, SettingValue::MonthDay(_)) => Ok(()),
            (SettingType::Text { max_chars }, SettingValue::Text(text)) => {
                let chars = text.chars().count();
                if chars <= *max_chars as usize {
                    Ok(())
                } else {
                    Err(format!("{chars} characters (at most {max_chars})"))
                }
            }
            (SettingType::Choice(choices), SettingValue::Choice(choice)) => {
                if choices.contains(choice) {
                    Ok(())
                } else {
                    Err(format!("{choice:?} is not one of {}", choices.join(", ")))
                }
            }
            _ => Err(format!("a value of type {} for a setting of type {}", value.type_name(), self.name())),
        }
    }

    /// Reads a value of this type from the text staff type (and the database keeps):
    /// `12`, `3000` (yen), `2026-05-16`, `05-16`, or the text or choice itself.
    pub fn parse(&self, text: &str) -> Result<SettingValue, String> {
        let text = text.trim();
        let number =
            |what: &str| text.replace([',', '_'], "").parse::<i64>().map_err(|_| format!("{text:?} is not {what}"));
        let value = match self {
            SettingType::Integer { .. } => SettingValue::Integer(number("a whole number")?),
            SettingType::Yen { .. } => SettingValue::Yen(number("an amount of yen")?),
            SettingType::Date { .. } => {
                SettingValue::Date(Day::parse_iso(text).ok_or_else(|| format!("{text:?} is not a date (YYYY-MM-DD)"))?)
            }
            SettingType::MonthDay => {
                let parsed = text.split_once('-').and_then(|(month, day)| {
                    let code = month.parse::<u16>().ok()?.checked_mul(100)?.checked_add(day.parse::<u16>().ok()?)?;
                    MonthDay::from_code(code)
                });
                SettingValue::MonthDay(parsed.ok_or_else(|| format!("{text:?} is not a month and day (MM-DD)"))?)
            }
            SettingType::Text { .. } => SettingValue::Text(text.to_owned()),
            SettingType::Choice(_) => SettingValue::Choice(text.to_owned()),
        };
        self.check(&value)?;
        Ok(value)
    }
}

impl SettingValue {
    fn type_name(&self) -> &'static str {
        match self {
            SettingValue::Integer(_) => "integer",
            SettingValue::Yen(_) => "yen",
            SettingValue::Date(_) => "date",
            SettingValue::MonthDay(_) => "month-day",
            SettingValue::Text(_) => "text",
            SettingValue::Choice(_) => "choice",
        }
    }
}

/// The value as text, the form [`SettingType::parse`] reads back.
impl std::fmt::Display for SettingValue {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingValue::Integer(number) | SettingValue::Yen(number) => write!(formatter, "{number}"),
            SettingValue::Date(day) => write!(formatter, "{day}"),
            SettingValue::MonthDay(month_day) => write!(formatter, "{month_day}"),
            SettingValue::Text(text) | SettingValue::Choice(text) => formatter.write_str(text),
        }
    }
}

/// A condition staff may change; see `wit/program.wit`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Setting {
    /// A stable key, lower-case with dashes.
    pub name: String,
    /// The Japanese label staff see.
    pub label: String,
    /// What it changes and the rule it comes from.
    pub help: String,
    pub kind: SettingType,
    pub default: SettingValue,
}

impl Setting {
    pub fn new(name: &str, label: &str, help: &str, kind: SettingType, default: SettingValue) -> Setting {
        Setting { name: name.to_owned(), label: label.to_owned(), help: help.to_owned(), kind, default }
    }
}

/// The values a program is evaluated with, one per declared setting, by name. A plugin
/// reads them with the typed getters; asking for a setting the manifest does not declare,
/// or with the wrong type, is a bug in the plugin and panics with the setting's name.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Settings {
    values: Vec<(String, SettingValue)>,
}

impl Settings {
    /// Every declared setting at its default.
    pub fn defaults(declared: &[Setting]) -> Settings {
        Settings { values: declared.iter().map(|setting| (setting.name.clone(), setting.default.clone())).collect() }
    }

    /// The declared settings with these values, in the manifest's order (as the host
    /// passes them).
    pub fn from_values(declared: &[Setting], values: Vec<SettingValue>) -> Settings {
        Settings { values: declared.iter().map(|setting| setting.name.clone()).zip(values).collect() }
    }

    /// The same settings with `name` set to `value`.
    pub fn with(mut self, name: &str, value: SettingValue) -> Settings {
        match self.values.iter_mut().find(|(found, _)| found == name) {
            Some((_, old)) => *old = value,
            None => self.values.push((name.to_owned(), value)),
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&SettingValue> {
        self.values.iter().find(|(found, _)| found == name).map(|(_, value)| value)
    }

    pub fn values(&self) -> impl Iterator<Item = (&str, &SettingValue)> {
        self.values.iter().map(|(name, value)| (name.as_str(), value))
    }

    fn expect(&self, name: &str) -> &SettingValue {
        self.get(name).unwrap_or_else(|| panic!("setting {name} is not declared in the program's manifest"))
    }

    pub fn integer(&self, name: &str) -> i64 {
        match self.expect(name) {
            SettingValue::Integer(number) => *number,
            other => panic!("setting {name} is {other:?}, not an integer"),
        }
    }

    pub fn yen(&self, name: &str) -> i64 {
        match self.expect(name) {
            SettingValue::Yen(yen) => *yen,
            other => panic!("setting {name} is {other:?}, not yen"),
        }
    }

    pub fn date(&self, name: &str) -> Day {
        match self.expect(name) {
            SettingValue::Date(day) => *day,
            other => panic!("setting {name} is {other:?}, not a date"),
        }
    }

    pub fn month_day(&self, name: &str) -> MonthDay {
        match self.expect(name) {
            SettingValue::MonthDay(month_day) => *month_day,
            other => panic!("setting {name} is {other:?}, not a month and day"),
        }
    }

    pub fn text(&self, name: &str) -> &str {
        match self.expect(name) {
            SettingValue::Text(text) | SettingValue::Choice(text) => text,
            other => panic!("setting {name} is {other:?}, not a text"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_day_lands_in_its_year_and_february_29_is_the_end_of_february() {
        let end_of_february = MonthDay::from_code(229).unwrap();
        assert_eq!(end_of_february.in_fiscal_year(2026).to_string(), "2027-02-28");
        assert_eq!(end_of_february.in_fiscal_year(2027).to_string(), "2028-02-29");
        assert_eq!(MonthDay::from_code(516).unwrap().in_fiscal_year(2026).to_string(), "2026-05-16");
        assert_eq!(MonthDay::from_code(1332), None);
        assert_eq!(MonthDay::from_code(431), None);
    }

    /// Each type reads what staff type and refuses, saying why, what it cannot hold.
    #[test]
    fn values_are_read_and_checked_against_their_type() {
        let age = SettingType::Integer { minimum: 0, maximum: 120 };
        let fee = SettingType::Yen { minimum: 0, maximum: 10_000 };
        let table: [(&SettingType, &str, Result<&str, &str>); 8] = [
            (&age, "40", Ok("40")),
            (&age, "140", Err("140 is outside 0..120")),
            (&age, "forty", Err("\"forty\" is not a whole number")),
            (&fee, "1,000", Ok("1000")),
            (&fee, "20000", Err("20000円 is outside 0円..10000円")),
            (&SettingType::MonthDay, "05-16", Ok("05-16")),
            (&SettingType::MonthDay, "02-30", Err("\"02-30\" is not a month and day (MM-DD)")),
            (
                &SettingType::Choice(vec!["集団".into(), "個別".into()]),
                "巡回",
                Err("\"巡回\" is not one of 集団, 個別"),
            ),
        ];
        for (kind, text, expected) in table {
            let got = kind.parse(text).map(|value| value.to_string());
            assert_eq!(got.as_deref().map_err(String::as_str), expected, "{text}");
        }
        assert_eq!(
            age.check(&SettingValue::Yen(3)),
            Err("a value of type yen for a setting of type integer".to_string())
        );
    }
}

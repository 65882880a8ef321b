//! Reads the resident-record system's CSV export and turns it into a snapshot, refusing
//! the whole file when any row is wrong.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use oshirase_sdk::{Day, Relationship};

use crate::snapshot::Resident;

/// How many problems one import reports before it stops looking.
const MAX_PROBLEMS: usize = 100;

/// One thing wrong with an input file, located as `file:line:column`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Problem {
    pub file: String,
    pub line: u64,
    /// 1-based column number, 0 when the problem is not about one cell.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

/// The import was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error("import refused, nothing changed:\n{}", .problems.iter().map(|problem| problem.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ImportRefused {
    pub problems: Vec<Problem>,
}

/// The columns of `residents.csv`: (English header, Japanese header, required).
const RESIDENT_COLUMNS: [(&str, &str, bool); 11] = [
    ("resident_id", "宛名番号", true),
    ("household_id", "世帯番号", true),
    ("name", "氏名", true),
    ("name_kana", "氏名カナ", false),
    ("birth_date", "生年月日", true),
    ("sex", "性別", true),
    ("relationship", "続柄", true),
    ("address", "住所", false),
    ("ward", "行政区", false),
    ("resident_since", "住民となった日", false),
    ("status", "住民状態", false),
];

/// Reads `DIR/residents.csv`. Residents whose status is moved-out or deceased are left out.
pub fn read_residents(directory: &Path) -> Result<Vec<Resident>, ImportRefused> {
    let path = directory.join("residents.csv");
    let file = "residents.csv".to_string();
    let refuse = |line, message: String| ImportRefused { problems: vec![Problem { file: file.clone(), line, column: 0, message }] };
    let bytes = std::fs::read(&path).map_err(|error| refuse(0, format!("cannot read {}: {error}", path.display())))?;
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes))
        .map_err(|error| refuse(0, format!("not UTF-8 text (byte {})", error.valid_up_to())))?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|error| refuse(1, format!("cannot read the header row: {error}")))?.clone();

    let mut problems = Vec::new();
    let mut column_of: HashMap<&str, usize> = HashMap::new();
    for (english, japanese, required) in RESIDENT_COLUMNS {
        match headers.iter().position(|header| header.trim() == english || header.trim() == japanese) {
            Some(index) => {
                column_of.insert(english, index);
            }
            None if required => problems.push(Problem { file: file.clone(), line: 1, column: 0, message: format!("missing column {english} ({japanese})") }),
            None => {}
        }
    }
    if !problems.is_empty() {
        return Err(ImportRefused { problems });
    }

    let mut residents = Vec::new();
    let mut seen_ids = HashSet::new();
    for record in reader.records() {
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |position| position.line());
                problems.push(Problem { file: file.clone(), line, column: 0, message: format!("unreadable row: {error}") });
                continue;
            }
        };
        let line = record.position().map_or(0, |position| position.line());
        let mut row_problems = Vec::new();
        let mut cell = |name: &str| -> Option<(usize, String)> {
            let index = *column_of.get(name)?;
            match record.get(index) {
                Some(value) => Some((index + 1, value.trim().to_string())),
                None => {
                    row_problems.push((index + 1, format!("{name} is missing (the row is too short)")));
                    None
                }
            }
        };
        let resident_id = cell("resident_id");
        let household_id = cell("household_id");
        let name = cell("name");
        let name_kana = cell("name_kana");
        let birth = cell("birth_date");
        let sex = cell("sex");
        let relationship = cell("relationship");
        let address = cell("address");
        let ward = cell("ward");
        let since = cell("resident_since");
        let status = cell("status");

        let mut required_text = |value: Option<(usize, String)>, what: &str| -> String {
            match value {
                Some((_, text)) if !text.is_empty() => text,
                Some((column, _)) => {
                    row_problems.push((column, format!("{what} is empty")));
                    String::new()
                }
                None => String::new(),
            }
        };
        let resident_id = required_text(resident_id, "resident_id");
        let household_id = required_text(household_id, "household_id");
        let name = required_text(name, "name");
        let birth_day = birth.and_then(|(column, text)| parse_date(&text).ok_or_else(|| row_problems.push((column, format!("birth_date {text:?} is not a date")))).ok());
        let sex = sex.and_then(|(column, text)| parse_sex(&text).ok_or_else(|| row_problems.push((column, format!("sex {text:?} is not one of 1, 2, 男, 女, male, female")))).ok());
        let relationship = relationship.and_then(|(column, text)| {
            parse_relationship(&text).ok_or_else(|| row_problems.push((column, format!("relationship {text:?} is not a known 続柄")))).ok()
        });
        let resident_since = since.and_then(|(column, text)| {
            if text.is_empty() {
                return None;
            }
            parse_date(&text).ok_or_else(|| row_problems.push((column, format!("resident_since {text:?} is not a date")))).ok()
        });
        let living_here = match status {
            Some((column, text)) => match text.as_str() {
                "" | "住民" | "resident" => true,
                "転出" | "死亡" | "moved_out" | "deceased" => false,
                other => {
                    row_problems.push((column, format!("status {other:?} is not one of 住民, 転出, 死亡")));
                    false
                }
            },
            None => true,
        };
        if !resident_id.is_empty() && !seen_ids.insert(resident_id.clone()) {
            row_problems.push((column_of["resident_id"] + 1, format!("resident_id {resident_id} appears twice")));
        }
        if !row_problems.is_empty() {
            problems.extend(row_problems.into_iter().map(|(column, message)| Problem { file: file.clone(), line, column, message }));
            continue;
        }
        if let (Some(birth_day), Some(sex), Some(relationship), true) = (birth_day, sex, relationship, living_here) {
            residents.push(Resident {
                resident_id,
                household_id,
                name,
                name_kana: name_kana.map(|(_, text)| text).unwrap_or_default(),
                birth_day,
                sex,
                relationship,
                address: address.map(|(_, text)| text).unwrap_or_default(),
                ward: ward.map(|(_, text)| text).unwrap_or_default(),
                resident_since,
            });
        }
    }
    if problems.is_empty() {
        problems.extend(households_without_head(&residents).into_iter().map(|household| Problem {
            file: file.clone(),
            line: 0,
            column: 0,
            message: format!("household {household} has no head (世帯主)"),
        }));
    }
    if problems.is_empty() { Ok(residents) } else { Err(ImportRefused { problems }) }
}

fn households_without_head(residents: &[Resident]) -> Vec<String> {
    let heads: HashSet<&str> = residents.iter().filter(|resident| resident.relationship == Relationship::Head.code()).map(|resident| resident.household_id.as_str()).collect();
    let mut missing: Vec<String> = residents.iter().map(|resident| resident.household_id.as_str()).filter(|household| !heads.contains(household)).map(str::to_owned).collect();
    missing.sort();
    missing.dedup();
    missing
}

/// Dates as `2024-04-01`, `2024/4/1` or `20240401`.
pub fn parse_date(text: &str) -> Option<Day> {
    let text = text.trim();
    if text.len() == 8 && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Day::from_ymd(text[0..4].parse().ok()?, text[4..6].parse().ok()?, text[6..8].parse().ok()?);
    }
    let parts: Vec<&str> = text.split(['-', '/']).collect();
    match parts.as_slice() {
        [year, month, day] => Day::from_ymd(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?),
        _ => None,
    }
}

fn parse_sex(text: &str) -> Option<u8> {
    match text {
        "1" | "男" | "male" => Some(1),
        "2" | "女" | "female" => Some(2),
        _ => None,
    }
}

fn parse_relationship(text: &str) -> Option<u8> {
    let relationship = match text {
        "世帯主" | "head" => Relationship::Head,
        "妻" | "夫" | "spouse" => Relationship::Spouse,
        "子" | "child" => Relationship::Child,
        "父" | "母" | "parent" => Relationship::Parent,
        "その他" | "other" => Relationship::Other,
        _ => return None,
    };
    Some(relationship.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(csv: &str) -> Result<Vec<Resident>, ImportRefused> {
        let directory = std::env::temp_dir().join(format!("oshirase-import-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(directory.join("residents.csv"), csv).unwrap();
        let result = read_residents(&directory);
        std::fs::remove_dir_all(&directory).unwrap();
        result
    }

    #[test]
    fn japanese_headers_in_any_order_are_read() {
        let residents = read("\u{feff}氏名,宛名番号,世帯番号,生年月日,性別,続柄,行政区\n千葉 花子,001,H1,1990/4/1,女,世帯主,中央区\n千葉 一郎,002,H1,20250101,1,子,中央区\n").unwrap();
        assert_eq!(residents.len(), 2);
        assert_eq!(residents[0].name, "千葉 花子");
        assert_eq!(residents[0].birth_day, Day::parse_iso("1990-04-01").unwrap());
        assert_eq!((residents[1].sex, residents[1].relationship), (1, Relationship::Child.code()));
    }

    #[test]
    fn every_bad_cell_is_reported_with_its_line_and_column() {
        let refused = read("resident_id,household_id,name,birth_date,sex,relationship\n001,H1,A,1990-02-30,1,head\n002,H1,B,2000-01-01,x,child\n001,H1,C,2000-01-01,1,child\n").unwrap_err();
        let lines: Vec<String> = refused.problems.iter().map(|problem| problem.to_string()).collect();
        assert_eq!(
            lines,
            [
                "residents.csv:2:4: birth_date \"1990-02-30\" is not a date",
                "residents.csv:3:5: sex \"x\" is not one of 1, 2, 男, 女, male, female",
                "residents.csv:4:1: resident_id 001 appears twice",
            ]
        );
    }

    #[test]
    fn a_household_without_a_head_is_refused() {
        let refused = read("resident_id,household_id,name,birth_date,sex,relationship\n001,H1,A,1990-01-01,1,head\n002,H2,B,2000-01-01,2,child\n").unwrap_err();
        assert_eq!(refused.problems[0].message, "household H2 has no head (世帯主)");
    }

    #[test]
    fn a_missing_column_is_named() {
        let refused = read("resident_id,name,birth_date,sex,relationship\n").unwrap_err();
        assert_eq!(refused.problems[0].to_string(), "residents.csv:1:0: missing column household_id (世帯番号)");
    }
}

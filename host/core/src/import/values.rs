//! The values municipal exports write, read into the codes the snapshot keeps: dates in
//! western and era forms, months, sex, 続柄, resident status, 課税区分, postal codes and
//! flags.

use std::borrow::Cow;

use oshirase_sdk::Day;

use super::mapping::{RelationshipCode, Standing};

/// Full-width digits, letters and punctuation (０-９, Ｒ, ．) as their ASCII forms, which
/// hand-kept spreadsheets often contain.
pub fn ascii_forms(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|character| match character {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(character as u32 - 0xFEE0).unwrap_or(character),
                other => other,
            })
            .collect(),
    )
}

/// A date as `2024-04-01`, `2024/4/1`, `20240401`, `2024年4月1日`, `令和6年4月1日`
/// (元年 for the first year), `R06.04.01`, `R6/4/1` or `R060401`.
pub fn date(text: &str) -> Option<Day> {
    let text = ascii_forms(text.trim());
    let text = text.as_ref();
    let first = text.chars().next()?;
    if first.is_ascii_digit() {
        if text.len() == 8 && text.bytes().all(|byte| byte.is_ascii_digit()) {
            return Day::from_ymd(text[0..4].parse().ok()?, text[4..6].parse().ok()?, text[6..8].parse().ok()?);
        }
        let (year, month, day) = if text.contains('年') { kanji_parts(text)? } else { separated_parts(text)? };
        // Two-digit western years are ambiguous; exports write four.
        return if year >= 1000 { Day::from_ymd(year, month, day) } else { None };
    }
    if first.is_ascii_alphabetic() {
        let rest = &text[1..];
        let (year, month, day) = if rest.len() == 6 && rest.bytes().all(|byte| byte.is_ascii_digit()) {
            (rest[0..2].parse().ok()?, rest[2..4].parse().ok()?, rest[4..6].parse().ok()?)
        } else {
            separated_parts(rest)?
        };
        return Day::from_era(&text[..1], year, month, day);
    }
    // An era written in kanji: every era name is two characters.
    let split = text.char_indices().nth(2)?.0;
    let (year, month, day) = kanji_parts(&text[split..])?;
    Day::from_era(&text[..split], year, month, day)
}

/// `6年4月1日` (or `元年4月1日`) as its three numbers.
fn kanji_parts(text: &str) -> Option<(i32, u32, u32)> {
    let (year, rest) = text.split_once('年')?;
    let (month, rest) = rest.split_once('月')?;
    let day = rest.strip_suffix('日')?;
    let year = if year == "元" { 1 } else { year.parse().ok()? };
    Some((year, month.parse().ok()?, day.parse().ok()?))
}

/// `2024-04-01`, `2024/4/1` or `06.04.01` as its three numbers.
fn separated_parts(text: &str) -> Option<(i32, u32, u32)> {
    let mut parts = text.split(['-', '/', '.']);
    let year = parts.next()?.parse().ok()?;
    let month = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((year, month, day))
}

/// A fiscal year as `2024`, `令和6年度`, `令和6` or `R6`.
pub fn fiscal_year(text: &str) -> Option<i32> {
    let text = ascii_forms(text.trim());
    let text = text.strip_suffix('度').unwrap_or(&text);
    let text = text.strip_suffix('年').unwrap_or(text);
    if text.len() == 4 && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return text.parse().ok();
    }
    let split = if text.starts_with(|character: char| character.is_ascii_alphabetic()) {
        1
    } else {
        text.char_indices().nth(2)?.0
    };
    let (era, year) = text.split_at(split);
    let year = if year == "元" { 1 } else { year.parse().ok()? };
    // The era's year 1 may begin late in the calendar year (令和元年 began on May 1), and
    // an era's last year may end early (平成31年 ended on April 30), so try both ends.
    Day::from_era(era, year, 12, 31).or_else(|| Day::from_era(era, year, 1, 1)).map(Day::year)
}

/// An amount of yen, with or without thousands separators; losses are negative.
pub fn yen(text: &str) -> Option<i64> {
    let text = ascii_forms(text.trim());
    let digits: String =
        text.strip_suffix('円').unwrap_or(&text).chars().filter(|character| *character != ',').collect();
    digits.parse().ok()
}

/// A dose number, 1 to 99.
pub fn dose(text: &str) -> Option<u8> {
    ascii_forms(text.trim()).parse().ok().filter(|dose| (1..100).contains(dose))
}

pub fn sex(text: &str) -> Option<u8> {
    match text {
        "1" | "男" | "男性" | "male" => Some(1),
        "2" | "女" | "女性" | "female" => Some(2),
        _ => None,
    }
}

/// 続柄 as the resident register writes it in words; relatives the contract does not name
/// are "other". (The standard layout's codes are read through `Mapping`'s table.)
pub fn relationship(text: &str) -> Option<RelationshipCode> {
    let relationship = match text {
        "世帯主" | "head" => RelationshipCode::Head,
        "妻" | "夫" | "spouse" => RelationshipCode::Spouse,
        "子" | "child" => RelationshipCode::Child,
        "父" | "母" | "parent" => RelationshipCode::Parent,
        "同居人" | "縁故者" | "lodger" => RelationshipCode::Lodger,
        "その他" | "other" | "孫" | "祖父" | "祖母" | "兄" | "弟" | "姉" | "妹" => RelationshipCode::Other,
        _ if text.ends_with("の父") || text.ends_with("の母") || text.ends_with("の子") => {
            RelationshipCode::Other
        }
        _ => return None,
    };
    Some(relationship)
}

/// 住民状態 in words.
pub fn status(text: &str) -> Option<Standing> {
    match text {
        "住民" | "resident" => Some(Standing::Resident),
        "転出" | "moved_out" => Some(Standing::MovedOut),
        "死亡" | "deceased" => Some(Standing::Deceased),
        _ => None,
    }
}

/// A postal code of seven digits, with or without its hyphen, in half- or full-width
/// digits, as `260-0013`.
pub fn postal_code(text: &str) -> Option<String> {
    let text = ascii_forms(text.trim());
    let digits: String =
        text.strip_prefix('〒').unwrap_or(&text).chars().filter(|character| *character != '-').collect();
    (digits.len() == 7 && digits.bytes().all(|byte| byte.is_ascii_digit()))
        .then(|| format!("{}-{}", &digits[..3], &digits[3..]))
}

/// A year and month as `2016-01`, `2016/1` or `201601`, read as its first day.
pub fn month(text: &str) -> Option<Day> {
    let text = ascii_forms(text.trim());
    if text.len() == 6 && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Day::from_ymd(text[..4].parse().ok()?, text[4..].parse().ok()?, 1);
    }
    let (year, month) = text.split_once(['-', '/'])?;
    (year.len() == 4).then_some(())?;
    Day::from_ymd(year.parse().ok()?, month.parse().ok()?, 1)
}

/// 課税区分 as the contract's code: 1 not taxed, 2 per-capita levy only, 3 taxed; and
/// `UNDECLARED` for 未申告, whose tax the city does not know.
pub fn taxable(text: &str) -> Option<u8> {
    match text {
        "非課税" | "not_taxable" => Some(1),
        "均等割のみ" | "per_capita_only" => Some(2),
        "課税" | "taxable" => Some(3),
        "未申告" | "undeclared" => Some(UNDECLARED),
        _ => None,
    }
}

/// 課税区分 未申告: the resident filed no return, so whether they are taxed is unknown.
pub const UNDECLARED: u8 = 0;

/// A flag as 1 or 0: 要同意 (a row reaches programs only with the resident's consent), the
/// standard layout's 最新フラグ, 不詳フラグ, 削除フラグ and 資格有無.
pub fn flag(text: &str) -> Option<bool> {
    match ascii_forms(text.trim()).as_ref() {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: PartialEq + std::fmt::Debug>(cases: &[(&str, Option<T>)], parse: impl Fn(&str) -> Option<T>) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(input, expected)| {
                let actual = parse(input);
                (actual != *expected).then(|| format!("{input:?}: expected {expected:?}, got {actual:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn dates_are_read_in_every_form_municipal_exports_use() {
        let day = |text| Some(Day::parse_iso(text).unwrap());
        check(
            &[
                ("2024-04-01", day("2024-04-01")),
                ("2024/4/1", day("2024-04-01")),
                ("20240401", day("2024-04-01")),
                ("2024年4月1日", day("2024-04-01")),
                ("令和6年4月1日", day("2024-04-01")),
                ("令和元年5月1日", day("2019-05-01")),
                ("R06.04.01", day("2024-04-01")),
                ("R6/4/1", day("2024-04-01")),
                ("R060401", day("2024-04-01")),
                ("Ｒ０６．０４．０１", day("2024-04-01")),
                ("平成31年4月30日", day("2019-04-30")),
                ("H31.04.30", day("2019-04-30")),
                ("昭和64年1月7日", day("1989-01-07")),
                (" 1990-01-02 ", day("1990-01-02")),
                // Dates that do not exist, or fall outside their era.
                ("2023-02-29", None),
                ("平成31年5月1日", None),
                ("昭和64年1月8日", None),
                ("R06.13.01", None),
                ("24/4/1", None),
                ("2024-04", None),
                ("2024-04-01-01", None),
                ("令和6年4月1", None),
                ("明日", None),
                ("", None),
            ],
            date,
        );
    }

    #[test]
    fn fiscal_years_and_amounts() {
        check(
            &[
                ("2024", Some(2024)),
                ("令和6年度", Some(2024)),
                ("R6", Some(2024)),
                ("令和元年度", Some(2019)),
                ("平成31年度", Some(2019)),
                ("24", None),
                ("来年度", None),
            ],
            fiscal_year,
        );
        check(
            &[
                ("1200000", Some(1_200_000)),
                ("1,200,000", Some(1_200_000)),
                ("-5000", Some(-5000)),
                ("12万", None),
                ("", None),
            ],
            yen,
        );
        check(&[("1", Some(1)), ("２", Some(2)), ("0", None), ("100", None), ("一", None)], dose);
    }

    #[test]
    fn codes_are_read_in_japanese_and_english() {
        check(&[("男", Some(1)), ("female", Some(2)), ("2", Some(2)), ("3", None)], sex);
        check(
            &[
                ("世帯主", Some(RelationshipCode::Head)),
                ("夫", Some(RelationshipCode::Spouse)),
                ("子", Some(RelationshipCode::Child)),
                ("母", Some(RelationshipCode::Parent)),
                ("孫", Some(RelationshipCode::Other)),
                ("妻の母", Some(RelationshipCode::Other)),
                ("縁故者", Some(RelationshipCode::Lodger)),
                ("同居人", Some(RelationshipCode::Lodger)),
                ("ペット", None),
            ],
            relationship,
        );
        check(
            &[
                ("住民", Some(Standing::Resident)),
                ("転出", Some(Standing::MovedOut)),
                ("deceased", Some(Standing::Deceased)),
                ("不明", None),
            ],
            status,
        );
        check(
            &[
                ("課税", Some(3)),
                ("非課税", Some(1)),
                ("均等割のみ", Some(2)),
                ("未申告", Some(UNDECLARED)),
                ("免除", None),
            ],
            taxable,
        );
        check(&[("1", Some(true)), ("１", Some(true)), ("0", Some(false)), ("要", None), ("2", None)], flag);
        check(
            &[
                ("９９９０００１", Some("999-0001".to_owned())),
                ("260-0013", Some("260-0013".to_owned())),
                ("〒2600013", Some("260-0013".to_owned())),
                ("26000", None),
                ("", None),
            ],
            postal_code,
        );
        let first = |text| Some(Day::parse_iso(text).unwrap());
        check(
            &[
                ("2016-01", first("2016-01-01")),
                ("2016/1", first("2016-01-01")),
                ("201612", first("2016-12-01")),
                ("2016-13", None),
                ("16-01", None),
            ],
            month,
        );
    }
}

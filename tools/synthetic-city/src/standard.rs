//! The resident file in the national standard layout that 標準準拠システム export:
//! `resident_table.csv` with the columns, in their order, of 芽室町's public sample
//! (Memuro-Town/MADO-packages, sample-data/csv/resident_table.csv). A resident's older
//! history rows (an earlier address in the city, a name before marriage) come before the
//! latest one, which alone has 最新フラグ=1. Beside it, `import.toml` names the ward behind
//! each 地区管理コード1. What the own layout has, this file has too, from the same draws; what
//! only this layout has (foreign residents, history rows, apartments, 続柄 beyond the five
//! the generator knows) is drawn from a stream of its own, so the own layout's files of a
//! seed are as they were before this layout existed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};
use oshirase_sdk::{Day, Relationship};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::{
    Address, Household, Insurance, Member, Resident, SURNAMES, Status, TOWNS, WARDS, create_csv, relationship,
};

pub(crate) const FILE_NAME: &str = "resident_table.csv";
const MAPPING_FILE_NAME: &str = "import.toml";

/// The columns in the sample's order, each with the value every row has when the generator
/// has nothing to say about it (empty, or the sample's value for a flag or a code).
const COLUMNS: [(&str, &str); 122] = [
    ("市区町村コード", "121002"),
    ("宛名番号", ""),
    ("個人履歴番号", ""),
    ("個人履歴番号_枝番号", "1"),
    ("最新フラグ", ""),
    ("改製番号", "1"),
    ("世帯番号", ""),
    ("住民種別", ""),
    ("住民状態", ""),
    ("住民票コード", ""),
    ("異動年月日", ""),
    ("異動年月日_不詳フラグ", "0"),
    ("異動届出年月日", ""),
    ("届出番号", ""),
    ("異動事由", ""),
    ("異動区分", ""),
    ("通知日", ""),
    ("記載等の種別", ""),
    ("氏名", ""),
    ("氏_日本人", ""),
    ("名_日本人", ""),
    ("氏名_外国人ローマ字", ""),
    ("氏名_フリガナ", ""),
    ("氏_日本人_フリガナ", ""),
    ("名_日本人_フリガナ", ""),
    ("氏名_フリガナ確認状況", "1"),
    ("性別", ""),
    ("性別表記", ""),
    ("生年月日_元号", ""),
    ("生年月日", ""),
    ("生年月日_不詳フラグ", ""),
    ("続柄コード1", ""),
    ("続柄表記", ""),
    ("世帯主氏名", ""),
    ("住所_市区町村コード", ""),
    ("住所_町字コード", ""),
    ("住所_都道府県", "千葉県"),
    ("住所_市区郡町村名", ""),
    ("住所_町字", ""),
    ("住所_番地号表記", ""),
    ("住所_方書", ""),
    ("住所_郵便番号", ""),
    ("住民となった年月日", ""),
    ("住民となった年月日_不詳フラグ", "0"),
    ("記載の異動年月日", ""),
    ("記載の異動年月日_不詳フラグ", "0"),
    ("記載の事由", ""),
    ("転入前住所_市区町村コード", ""),
    ("転入前住所_町字コード", ""),
    ("転入前住所_都道府県", ""),
    ("転入前住所_市区郡町村名", ""),
    ("転入前住所_町字", ""),
    ("転入前住所_番地号表記", ""),
    ("転入前住所_郵便番号", ""),
    ("本籍", ""),
    ("本籍_町字", ""),
    ("本籍_地番号または、街区符号", ""),
    ("本籍_市区町村コード", ""),
    ("本籍_町字コード", ""),
    ("戸籍_筆頭者", ""),
    ("戸籍_筆頭者_氏", ""),
    ("戸籍_筆頭者_名", ""),
    ("消除の事由", ""),
    ("消除の届出年月日", ""),
    ("消除の異動年月日", ""),
    ("消除の異動年月日_不詳フラグ", ""),
    ("住所を定めた年月日", ""),
    ("住所を定めた年月日_不詳フラグ", "0"),
    ("地区管理コード1", ""),
    ("記載順位", ""),
    ("成年被後見人_該当有無", "0"),
    ("除票フラグ", ""),
    ("除票用データベース登録年月日", ""),
    ("履歴選択不可フラグ", "0"),
    ("処理年月日", ""),
    ("改製記載年月日", ""),
    ("改製記載年月日_不詳フラグ", "0"),
    ("選挙人名簿登録有無", ""),
    ("国保資格有無", ""),
    ("国保資格取得年月日", ""),
    ("後期高齢資格有無", ""),
    ("後期高齢資格取得年月日", ""),
    ("介護資格有無", ""),
    ("介護資格取得年月日", ""),
    ("年金資格有無", ""),
    ("基礎年金番号", ""),
    ("年金資格種別", ""),
    ("年金資格取得年月日", ""),
    ("年金資格喪失年月日", ""),
    ("児童手当資格区分", ""),
    ("児童手当受給開始年月", ""),
    ("統合宛名フラグ", "0"),
    ("他業務参照不可フラグ", "0"),
    ("業務ID", "01"),
    ("削除フラグ", "0"),
    ("操作者ID", "SYNTHETIC"),
    ("操作年月日", ""),
    ("操作時刻", "09:00:00"),
    ("転出届出年月日", ""),
    ("転出予定年月日", ""),
    ("転出年月日（確定）", ""),
    ("転入通知年月日", ""),
    ("転出先住所（確定）_市区町村コード", ""),
    ("転出先住所（確定）_都道府県", ""),
    ("転出先住所（確定）_市区郡町村名", ""),
    ("転出先住所（確定）_町字", ""),
    ("転出先住所（確定）_番地号表記", ""),
    ("転出先住所（確定）_方書", ""),
    ("転出先住所（確定）_郵便番号", ""),
    ("外国人住民となった年月日", ""),
    ("外国人住民となった年月日_不詳フラグ", ""),
    ("在留カード等番号", ""),
    ("在留カード等番号区分", ""),
    ("国籍等_国名コード", ""),
    ("国籍名等", ""),
    ("第30条45規定区分", ""),
    ("住居地の届出の有無", ""),
    ("在留資格等コード", ""),
    ("在留期間等コード_年", ""),
    ("在留期間等コード_月", ""),
    ("在留期間等コード_日", ""),
    ("在留期間の満了の日", ""),
];

/// Mixed into the seed of this layout's own random numbers.
const STANDARD_LAYOUT_STREAM: u64 = 0x7374_616e_6461_7264;
/// About 2 % of Japan's residents are foreign (在留外国人統計); here whole households.
const FOREIGN_HOUSEHOLDS: f64 = 0.02;
/// Households whose address names an apartment and a room (方書).
const APARTMENT_HOUSEHOLDS: f64 = 0.3;
/// Residents with one older history row, and with two.
const ONE_OLDER_ROW: f64 = 0.10;
const TWO_OLDER_ROWS: f64 = 0.02;
/// Of those 80 and over, the few whose birth day the register does not know (生年月日不詳).
const UNKNOWN_BIRTH_FROM_80: f64 = 1.0 / 2000.0;
/// Foreign households' nationalities as (surname in the alphabet, its kana, ISO 3166
/// numeric code, 国籍名等).
const NATIONALITIES: [(&str, &str, &str, &str); 6] = [
    ("NGUYEN", "グエン", "704", "ベトナム"),
    ("WANG", "ワン", "156", "中国"),
    ("KIM", "キム", "410", "韓国"),
    ("SANTOS", "サントス", "608", "フィリピン"),
    ("SILVA", "シルバ", "076", "ブラジル"),
    ("GURUNG", "グルン", "524", "ネパール"),
];
const FOREIGN_MALE_NAMES: [(&str, &str); 4] =
    [("MINH", "ミン"), ("WEI", "ウェイ"), ("JOSE", "ホセ"), ("LUCAS", "ルーカス")];
const FOREIGN_FEMALE_NAMES: [(&str, &str); 4] =
    [("LAN", "ラン"), ("FANG", "ファン"), ("MARIA", "マリア"), ("ANA", "アナ")];
const APARTMENTS: [&str; 6] =
    ["サンハイツ", "コーポ若葉", "メゾン緑", "パークハイム", "グリーンコート", "レジデンス千葉"];
/// 丁目 as the standard's 町字 writes it.
const KANJI_NUMERALS: [&str; 5] = ["一", "二", "三", "四", "五"];
/// 生年月日_元号 by the era's name.
const ERA_CODES: [(&str, &str); 5] = [("明治", "1"), ("大正", "2"), ("昭和", "3"), ("平成", "4"), ("令和", "5")];

/// Writes `resident_table.csv` household by household.
pub(crate) struct Writer {
    csv: csv::Writer<BufWriter<File>>,
    random: StdRng,
    today: Day,
    /// Each column's position in a row, by name.
    positions: HashMap<&'static str, usize>,
}

/// Where a household lives: the address and, for some, the apartment and room.
#[derive(Clone, PartialEq, Eq)]
struct Dwelling {
    address: Address,
    apartment: String,
}

/// What one of a resident's rows says: older rows differ in the surname or the dwelling.
#[derive(Clone)]
struct Entry {
    surname: (&'static str, &'static str),
    dwelling: Dwelling,
    /// 異動年月日: when this row began.
    starts: Day,
    /// 住所を定めた年月日, which a change of name alone keeps.
    address_since: Day,
}

/// What all of a resident's rows share.
struct Person<'a> {
    resident: &'a Resident,
    household: &'a Household,
    /// The resident's position in the household (記載順位), from 1.
    order: usize,
    given: (&'static str, &'static str),
    nationality: Option<(&'static str, &'static str, &'static str, &'static str)>,
    head_name: &'a str,
    relationship: (&'static str, &'static str),
    /// 生年月日 as the register has it: the first of the year when it is unknown.
    birth: Day,
    birth_unknown: bool,
    /// When a departed resident was removed from the register (消除).
    removed: Option<Day>,
}

impl Writer {
    pub(crate) fn create(directory: &Path, seed: u64, today: Day) -> Result<Writer> {
        Ok(Writer {
            csv: create_csv(directory, FILE_NAME, &COLUMNS.map(|(name, _)| name))?,
            random: StdRng::seed_from_u64(seed ^ STANDARD_LAYOUT_STREAM),
            today,
            positions: COLUMNS.iter().enumerate().map(|(position, (name, _))| (*name, position)).collect(),
        })
    }

    pub(crate) fn write_household(&mut self, household: &Household, residents: &[Resident]) -> Result<()> {
        let nationality = self
            .random
            .random_bool(FOREIGN_HOUSEHOLDS)
            .then(|| NATIONALITIES[self.random.random_range(0..NATIONALITIES.len())]);
        let dwelling = self.dwelling(household.address);
        let given_names: Vec<(&str, &str)> = residents
            .iter()
            .map(|resident| match nationality {
                Some(_) if resident.member.sex == 1 => {
                    FOREIGN_MALE_NAMES[self.random.random_range(0..FOREIGN_MALE_NAMES.len())]
                }
                Some(_) => FOREIGN_FEMALE_NAMES[self.random.random_range(0..FOREIGN_FEMALE_NAMES.len())],
                None => resident.given,
            })
            .collect();
        let surname = nationality.map_or(household.surname, |(surname, kana, ..)| (surname, kana));
        // Every household's head comes first.
        let head_name = written_name(surname, given_names[0], nationality.is_some());
        for (index, (resident, given)) in residents.iter().zip(given_names).enumerate() {
            // The departed left since the last export, within the last three months.
            let removed = (resident.status != Status::Living)
                .then(|| self.today.add_days(-self.random.random_range(1..=90)).max(resident.since));
            let can_change_name = nationality.is_none()
                && resident.member.relationship == Relationship::Spouse
                && resident.member.sex == 2;
            let entries = self.entries(resident, surname, &dwelling, can_change_name, removed.unwrap_or(self.today));
            let birth_unknown = resident.member.age >= 80 && self.random.random_bool(UNKNOWN_BIRTH_FROM_80);
            let relationship = match relationship(&resident.member) {
                Some(relationship) => relationship,
                None => self.other_relationship(&resident.member, &residents[0].member),
            };
            let person = Person {
                resident,
                household,
                order: index + 1,
                given,
                nationality,
                head_name: &head_name,
                relationship,
                birth: match birth_unknown {
                    true => Day::from_ymd(resident.birth.year(), 1, 1).unwrap_or(resident.birth),
                    false => resident.birth,
                },
                birth_unknown,
                removed,
            };
            for (number, entry) in entries.iter().enumerate() {
                let row = self.row(&person, entry, number + 1, number + 1 == entries.len());
                self.csv.write_record(&row)?;
            }
        }
        Ok(())
    }

    /// Flushes the file and writes `import.toml` beside it, always in UTF-8.
    pub(crate) fn finish(mut self, directory: &Path) -> Result<()> {
        self.csv.flush()?;
        let mut mapping =
            String::from("# The town's mapping for the standard layout: 地区管理コード1 → ward name.\n[wards]\n");
        for (index, ward) in WARDS.iter().enumerate() {
            writeln!(mapping, "\"{}\" = \"{}\"", district_code(index), ward.name)?;
        }
        let path = directory.join(MAPPING_FILE_NAME);
        std::fs::write(&path, mapping).with_context(|| format!("cannot write {}", path.display()))
    }

    fn dwelling(&mut self, address: Address) -> Dwelling {
        let apartment = match self.random.random_bool(APARTMENT_HOUSEHOLDS) {
            true => {
                let name = APARTMENTS[self.random.random_range(0..APARTMENTS.len())];
                let room = self.random.random_range(1..=5) * 100 + self.random.random_range(1..=8);
                format!("{name}{}号室", full_width(&room.to_string()))
            }
            false => String::new(),
        };
        Dwelling { address, apartment }
    }

    /// The resident's rows, oldest first: the latest as the own layout has the resident,
    /// and for some one or two older ones, each changed on a day after they became a
    /// resident and before `end`.
    fn entries(
        &mut self,
        resident: &Resident,
        surname: (&'static str, &'static str),
        dwelling: &Dwelling,
        can_change_name: bool,
        end: Day,
    ) -> Vec<Entry> {
        let roll = self.random.random_range(0.0..1.0);
        let older = if roll < TWO_OLDER_ROWS {
            2
        } else if roll < TWO_OLDER_ROWS + ONE_OLDER_ROW {
            1
        } else {
            0
        };
        let span = end.0 - resident.since.0;
        let mut changes: Vec<Day> = match span > 1 {
            true => (0..older).map(|_| resident.since.add_days(self.random.random_range(1..span))).collect(),
            false => Vec::new(),
        };
        changes.sort();
        changes.dedup();
        let latest =
            Entry { surname, dwelling: dwelling.clone(), starts: resident.since, address_since: resident.since };
        // Built from the latest back: each change gives the row before it an earlier name
        // (once, for a wife) or an earlier dwelling.
        let mut entries = vec![latest];
        let mut name_changed = false;
        for &change in changes.iter().rev() {
            let later = entries.last_mut().expect("there is always the latest entry");
            later.starts = change;
            let mut earlier = later.clone();
            if can_change_name && !name_changed && self.random.random_bool(0.5) {
                name_changed = true;
                let others: Vec<_> = SURNAMES.iter().filter(|other| **other != surname).collect();
                earlier.surname = *others[self.random.random_range(0..others.len())];
            } else {
                let address = Address::draw(&mut self.random);
                earlier.dwelling = self.dwelling(address);
            }
            earlier.starts = resident.since;
            entries.push(earlier);
        }
        entries.reverse();
        for index in 1..entries.len() {
            entries[index].address_since = match entries[index].dwelling == entries[index - 1].dwelling {
                true => entries[index - 1].address_since,
                false => entries[index].starts,
            };
        }
        entries
    }

    /// The 続柄 of a relative or friend sharing the head's home: mostly a brother or sister,
    /// older or younger than the head, unless their ages are far apart; else, and now and
    /// then, 縁故者 or 同居人.
    fn other_relationship(&mut self, member: &Member, head: &Member) -> (&'static str, &'static str) {
        if member.age.abs_diff(head.age) <= 30 && self.random.random_bool(0.9) {
            match (member.sex == 1, member.age > head.age) {
                (true, true) => ("71", "兄"),
                (false, true) => ("72", "姉"),
                (true, false) => ("73", "弟"),
                (false, false) => ("74", "妹"),
            }
        } else if self.random.random_bool(0.5) {
            ("96", "縁故者")
        } else {
            ("99", "同居人")
        }
    }

    /// One row of `person`: their `number`-th (個人履歴番号), the latest when `latest`.
    fn row(&self, person: &Person, entry: &Entry, number: usize, latest: bool) -> Vec<String> {
        let mut fields: Vec<String> = COLUMNS.iter().map(|(_, value)| value.to_string()).collect();
        let mut set = |column: &str, value: String| fields[self.positions[column]] = value;
        let Person { resident, household, nationality, .. } = *person;
        let living = resident.status == Status::Living;
        let removed = if latest { person.removed } else { None };
        let foreign = nationality.is_some();
        let japanese = |text: &str| if foreign { String::new() } else { text.to_string() };
        let day = |day: Option<Day>| day.map_or(String::new(), |day| day.to_string());
        let flag = |on: bool| if on { "1" } else { "0" }.to_string();
        let ((surname, surname_kana), (given, given_kana)) = (entry.surname, person.given);
        let since = resident.since.to_string();
        let moved = removed.unwrap_or(entry.starts).to_string();

        set("宛名番号", resident.id.clone());
        set("個人履歴番号", number.to_string());
        set("最新フラグ", flag(latest));
        set("世帯番号", household.id.clone());
        set("住民種別", if foreign { "2" } else { "1" }.to_string());
        set("住民状態", status_code(if latest { resident.status } else { Status::Living }).to_string());
        set("異動年月日", moved.clone());
        set("異動届出年月日", moved);
        set("氏名", written_name(entry.surname, person.given, foreign));
        set("氏_日本人", japanese(surname));
        set("名_日本人", japanese(given));
        set(
            "氏名_外国人ローマ字",
            if foreign { written_name(entry.surname, person.given, true) } else { String::new() },
        );
        set("氏名_フリガナ", format!("{surname_kana}\u{3000}{given_kana}"));
        set("氏_日本人_フリガナ", japanese(surname_kana));
        set("名_日本人_フリガナ", japanese(given_kana));
        set("性別", resident.member.sex.to_string());
        set("性別表記", if resident.member.sex == 1 { "男" } else { "女" }.to_string());
        set("生年月日_元号", era_code(person.birth).to_string());
        set("生年月日", person.birth.to_string());
        set("生年月日_不詳フラグ", flag(person.birth_unknown));
        set("続柄コード1", person.relationship.0.to_string());
        set("続柄表記", person.relationship.1.to_string());
        set("世帯主氏名", person.head_name.to_string());

        let Address { ward, town, chome, block, number: house } = entry.dwelling.address;
        set("住所_市区町村コード", WARDS[ward].code.to_string());
        set("住所_町字コード", format!("{:04}{chome:03}", town + 1));
        set("住所_市区郡町村名", format!("千葉市{}", WARDS[ward].name));
        set("住所_町字", format!("{}{}丁目", TOWNS[town], KANJI_NUMERALS[chome as usize - 1]));
        set("住所_番地号表記", full_width(&format!("{block}番地{house}")));
        set("住所_方書", entry.dwelling.apartment.clone());
        set("住所_郵便番号", full_width(&format!("{}{:02}{chome:02}", WARDS[ward].postal_area, town + 1)));
        set("住民となった年月日", since.clone());
        set("記載の異動年月日", since.clone());
        set("住所を定めた年月日", entry.address_since.to_string());
        set("地区管理コード1", district_code(ward));
        set("記載順位", person.order.to_string());

        // The sample writes the reason for removal with 住民状態's codes.
        set("消除の事由", removed.map_or(String::new(), |_| status_code(resident.status).to_string()));
        set("消除の届出年月日", day(removed));
        set("消除の異動年月日", day(removed));
        set("消除の異動年月日_不詳フラグ", removed.map_or(String::new(), |_| "0".to_string()));
        set("除票フラグ", flag(removed.is_some()));
        set("除票用データベース登録年月日", day(removed));
        set("処理年月日", self.today.to_string());
        set("操作年月日", self.today.to_string());

        set("選挙人名簿登録有無", flag(living && !foreign && resident.member.age >= 18));
        let national = match resident.insurance {
            Some(Insurance::National(since)) => Some(since),
            _ => None,
        };
        let late_elderly = match resident.insurance {
            Some(Insurance::LateElderly(since)) => Some(since),
            _ => None,
        };
        // 介護保険's first insured (第1号被保険者) from the day they reach 65, the day before
        // the birthday by the Act on Age Calculation, or from moving in when later.
        let long_term_care =
            (living && resident.member.age >= 65).then(|| resident.birth.age_reached(65).max(resident.since));
        set("国保資格有無", flag(national.is_some()));
        set("国保資格取得年月日", day(national));
        set("後期高齢資格有無", flag(late_elderly.is_some()));
        set("後期高齢資格取得年月日", day(late_elderly));
        set("介護資格有無", flag(long_term_care.is_some()));
        set("介護資格取得年月日", day(long_term_care));
        let child_allowance =
            household.child_allowance_since.filter(|_| resident.member.relationship == Relationship::Head);
        set("児童手当資格区分", child_allowance.map_or(String::new(), |_| "1".to_string()));
        set("児童手当受給開始年月", child_allowance.map_or(String::new(), |since| since.to_string()[..7].to_string()));

        set("外国人住民となった年月日", if foreign { since } else { String::new() });
        set("外国人住民となった年月日_不詳フラグ", if foreign { "0" } else { "" }.to_string());
        set("国籍等_国名コード", nationality.map_or(String::new(), |(.., code, _)| code.to_string()));
        set("国籍名等", nationality.map_or(String::new(), |(.., name)| name.to_string()));
        fields
    }
}

/// 氏名 as the register writes it: a Japanese name with a full-width space between surname
/// and given name, as the sample has it; a foreign one in the alphabet with a plain space.
fn written_name(surname: (&str, &str), given: (&str, &str), foreign: bool) -> String {
    let separator = if foreign { ' ' } else { '\u{3000}' };
    format!("{}{separator}{}", surname.0, given.0)
}

/// 住民状態: 1 住民, 2 転出者, 3 死亡者.
fn status_code(status: Status) -> &'static str {
    match status {
        Status::Living => "1",
        Status::MovedOut => "2",
        Status::Died => "3",
    }
}

/// The town's 地区管理コード1 for the ward at `ward` in `WARDS`: 901, 902, ….
fn district_code(ward: usize) -> String {
    (901 + ward).to_string()
}

/// 生年月日_元号 for `day`, from the era its Japanese date is written in.
fn era_code(day: Day) -> &'static str {
    let written = day.era_format();
    ERA_CODES.iter().find(|(era, _)| written.starts_with(era)).map_or("", |(_, code)| code)
}

/// `text` with its ASCII digits full-width, as the sample writes 番地 and postal codes.
fn full_width(text: &str) -> String {
    text.chars()
        .map(|character| match character.to_digit(10) {
            Some(digit) => char::from_u32('０' as u32 + digit).unwrap_or(character),
            None => character,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;
    use crate::tests::TemporaryDirectory;
    use crate::{ExportFormat, FILE_HEADERS, FileEncoding, generate};

    /// The header of 芽室町's sample, as published.
    const SAMPLE_HEADER: &str = "市区町村コード,宛名番号,個人履歴番号,個人履歴番号_枝番号,最新フラグ,改製番号,世帯番号,住民種別,住民状態,住民票コード,異動年月日,異動年月日_不詳フラグ,異動届出年月日,届出番号,異動事由,異動区分,通知日,記載等の種別,氏名,氏_日本人,名_日本人,氏名_外国人ローマ字,氏名_フリガナ,氏_日本人_フリガナ,名_日本人_フリガナ,氏名_フリガナ確認状況,性別,性別表記,生年月日_元号,生年月日,生年月日_不詳フラグ,続柄コード1,続柄表記,世帯主氏名,住所_市区町村コード,住所_町字コード,住所_都道府県,住所_市区郡町村名,住所_町字,住所_番地号表記,住所_方書,住所_郵便番号,住民となった年月日,住民となった年月日_不詳フラグ,記載の異動年月日,記載の異動年月日_不詳フラグ,記載の事由,転入前住所_市区町村コード,転入前住所_町字コード,転入前住所_都道府県,転入前住所_市区郡町村名,転入前住所_町字,転入前住所_番地号表記,転入前住所_郵便番号,本籍,本籍_町字,本籍_地番号または、街区符号,本籍_市区町村コード,本籍_町字コード,戸籍_筆頭者,戸籍_筆頭者_氏,戸籍_筆頭者_名,消除の事由,消除の届出年月日,消除の異動年月日,消除の異動年月日_不詳フラグ,住所を定めた年月日,住所を定めた年月日_不詳フラグ,地区管理コード1,記載順位,成年被後見人_該当有無,除票フラグ,除票用データベース登録年月日,履歴選択不可フラグ,処理年月日,改製記載年月日,改製記載年月日_不詳フラグ,選挙人名簿登録有無,国保資格有無,国保資格取得年月日,後期高齢資格有無,後期高齢資格取得年月日,介護資格有無,介護資格取得年月日,年金資格有無,基礎年金番号,年金資格種別,年金資格取得年月日,年金資格喪失年月日,児童手当資格区分,児童手当受給開始年月,統合宛名フラグ,他業務参照不可フラグ,業務ID,削除フラグ,操作者ID,操作年月日,操作時刻,転出届出年月日,転出予定年月日,転出年月日（確定）,転入通知年月日,転出先住所（確定）_市区町村コード,転出先住所（確定）_都道府県,転出先住所（確定）_市区郡町村名,転出先住所（確定）_町字,転出先住所（確定）_番地号表記,転出先住所（確定）_方書,転出先住所（確定）_郵便番号,外国人住民となった年月日,外国人住民となった年月日_不詳フラグ,在留カード等番号,在留カード等番号区分,国籍等_国名コード,国籍名等,第30条45規定区分,住居地の届出の有無,在留資格等コード,在留期間等コード_年,在留期間等コード_月,在留期間等コード_日,在留期間の満了の日";

    type Row = HashMap<String, String>;

    /// One city of a seed written in both layouts.
    struct Cities {
        own: TemporaryDirectory,
        standard: TemporaryDirectory,
        today: Day,
    }

    fn cities() -> Cities {
        let today = Day::parse_iso("2026-11-21").unwrap();
        let (own, standard) = (TemporaryDirectory::new(), TemporaryDirectory::new());
        generate(6000, 5, today, &own.0, ExportFormat::own(FileEncoding::Utf8)).unwrap();
        generate(6000, 5, today, &standard.0, ExportFormat::standard(FileEncoding::Utf8)).unwrap();
        Cities { own, standard, today }
    }

    /// The rows of a UTF-8 CSV file by column name; the reader refuses rows of another width.
    fn read(path: &Path) -> Vec<Row> {
        let mut reader = csv::Reader::from_path(path).unwrap();
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        reader
            .records()
            .map(|record| header.iter().cloned().zip(record.unwrap().iter().map(String::from)).collect())
            .collect()
    }

    /// A resident's rows, in the file's order, by resident id in order of first appearance.
    fn rows_by_resident(rows: &[Row]) -> Vec<(String, Vec<&Row>)> {
        let mut residents: Vec<(String, Vec<&Row>)> = Vec::new();
        for row in rows {
            match residents.last_mut() {
                Some((id, rows)) if *id == row["宛名番号"] => rows.push(row),
                _ => residents.push((row["宛名番号"].clone(), vec![row])),
            }
        }
        residents
    }

    /// The standard layout's address parts written as the own layout's 住所.
    fn as_own_address(row: &Row) -> String {
        let ascii: String = format!("{}{}{}", row["住所_市区郡町村名"], row["住所_町字"], row["住所_番地号表記"])
            .chars()
            .map(|character| match ('０'..='９').contains(&character) {
                true => char::from(b'0' + (character as u32 - '０' as u32) as u8),
                false => character,
            })
            .collect();
        let ascii = KANJI_NUMERALS.iter().enumerate().fold(ascii, |text, (index, numeral)| {
            text.replace(&format!("{numeral}丁目"), &format!("{}丁目", index + 1))
        });
        ascii.replace("番地", "-")
    }

    #[test]
    fn the_header_is_the_samples() {
        let directory = TemporaryDirectory::new();
        let today = Day::parse_iso("2026-11-21").unwrap();
        generate(200, 1, today, &directory.0, ExportFormat::standard(FileEncoding::Utf8)).unwrap();
        let text = std::fs::read_to_string(directory.0.join(FILE_NAME)).unwrap();
        assert_eq!(text.lines().next().unwrap(), SAMPLE_HEADER);
        assert_eq!(SAMPLE_HEADER.split(',').count(), 122);
        // Every row has as many fields as the header.
        assert!(!read(&directory.0.join(FILE_NAME)).is_empty());
        assert!(!directory.0.join(crate::OWN_RESIDENTS.0).exists());
    }

    #[test]
    fn each_resident_of_the_own_layout_has_one_latest_row_after_older_ones() {
        let cities = cities();
        let own = read(&cities.own.0.join("residents.csv"));
        let standard = read(&cities.standard.0.join(FILE_NAME));
        let residents = rows_by_resident(&standard);
        let own_ids: Vec<&String> = own.iter().map(|row| &row["宛名番号"]).collect();
        let ids: Vec<&String> = residents.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, own_ids, "the same residents in the same order, each one's rows together");
        let mut residents_by_rows = [0usize; 4];
        for ((id, rows), own) in residents.iter().zip(&own) {
            residents_by_rows[rows.len()] += 1;
            let numbers: Vec<String> = (1..=rows.len()).map(|number| number.to_string()).collect();
            assert_eq!(
                rows.iter().map(|row| &row["個人履歴番号"]).collect::<Vec<_>>(),
                numbers.iter().collect::<Vec<_>>()
            );
            let (latest, older) = rows.split_last().unwrap();
            assert_eq!(latest["最新フラグ"], "1", "{id}");
            for (row, next) in older.iter().zip(&rows[1..]) {
                assert_eq!(row["最新フラグ"], "0", "{id}");
                assert_eq!((row["住民状態"].as_str(), row["除票フラグ"].as_str()), ("1", "0"), "{id}");
                assert!(row["異動年月日"] < next["異動年月日"], "{id}: the history goes forward");
                let changed = |column: &str| row[column] != next[column];
                assert!(changed("氏名") || changed("住所_町字") || changed("住所_番地号表記") || changed("住所_方書"));
            }
            assert_eq!(latest["世帯番号"], own["世帯番号"]);
            assert_eq!(latest["性別"], own["性別"]);
            assert_eq!(latest["住民となった年月日"], own["住民となった日"]);
            if latest["生年月日_不詳フラグ"] == "0" {
                assert_eq!(latest["生年月日"], own["生年月日"]);
            }
            if own["続柄"] != "その他" {
                assert_eq!(latest["続柄表記"], own["続柄"]);
            }
            let status = match own["住民状態"].as_str() {
                "住民" => "1",
                "転出" => "2",
                _ => "3",
            };
            assert_eq!(latest["住民状態"], status);
            assert_eq!(latest["消除の事由"], if status == "1" { "" } else { status });
            assert_eq!(latest["消除の異動年月日"].is_empty(), status == "1");
            assert_eq!(latest["住所_市区郡町村名"], format!("千葉市{}", own["行政区"]));
            assert_eq!(as_own_address(latest), own["住所"], "{id}");
        }
        let total = residents.len() as f64;
        assert!((0.07..0.13).contains(&(residents_by_rows[2] as f64 / total)), "{residents_by_rows:?}");
        assert!((0.01..0.03).contains(&(residents_by_rows[3] as f64 / total)), "{residents_by_rows:?}");
        assert!(standard.iter().any(|row| row["最新フラグ"] == "0" && row["住所を定めた年月日"] != row["異動年月日"]));
    }

    #[test]
    fn codes_are_those_of_the_standard() {
        let cities = cities();
        let own = read(&cities.own.0.join("residents.csv"));
        let standard = read(&cities.standard.0.join(FILE_NAME));
        let latest: Vec<&Row> = standard.iter().filter(|row| row["最新フラグ"] == "1").collect();
        let relationships: HashMap<&str, &str> = [
            ("02", "世帯主"),
            ("11", "夫"),
            ("12", "妻"),
            ("20", "子"),
            ("51", "父"),
            ("52", "母"),
            ("71", "兄"),
            ("72", "姉"),
            ("73", "弟"),
            ("74", "妹"),
            ("96", "縁故者"),
            ("99", "同居人"),
        ]
        .into();
        let mut others = [0, 0];
        for (row, own) in latest.iter().zip(&own) {
            assert_eq!(relationships.get(row["続柄コード1"].as_str()), Some(&row["続柄表記"].as_str()));
            if own["続柄"] == "その他" {
                others[usize::from(["96", "99"].contains(&row["続柄コード1"].as_str()))] += 1;
            }
            let birth = row["生年月日"].as_str();
            let era = match birth {
                _ if birth >= "2019-05-01" => "5",
                _ if birth >= "1989-01-08" => "4",
                _ if birth >= "1926-12-25" => "3",
                _ if birth >= "1912-07-30" => "2",
                _ => "1",
            };
            assert_eq!(row["生年月日_元号"], era, "{birth}");
            let age = Day::parse_iso(&own["生年月日"]).unwrap().age_on(cities.today);
            match row["生年月日_不詳フラグ"].as_str() {
                "1" => assert!(age >= 80 && birth.ends_with("-01-01"), "{age} {birth}"),
                flag => assert_eq!(flag, "0"),
            }
            assert_eq!(row["性別表記"], if row["性別"] == "1" { "男" } else { "女" });
            let living = row["住民状態"] == "1";
            let care = (living && age >= 65).then(|| {
                let since = Day::parse_iso(&own["住民となった日"]).unwrap();
                Day::parse_iso(&own["生年月日"]).unwrap().age_reached(65).max(since).to_string()
            });
            assert_eq!(row["介護資格有無"], if care.is_some() { "1" } else { "0" });
            assert_eq!(row["介護資格取得年月日"], care.unwrap_or_default());
            if row["児童手当資格区分"] == "1" {
                assert_eq!(row["続柄コード1"], "02");
                assert_eq!(row["児童手当受給開始年月"].len(), 7);
            }
            assert_eq!(row["削除フラグ"], "0");
            assert!(
                row["住所_郵便番号"].chars().count() == 7
                    && row["住所_郵便番号"].chars().all(|c| ('０'..='９').contains(&c))
            );
        }
        assert!(others[0] > others[1] && others[1] > 0, "mostly brothers and sisters: {others:?}");
        for row in &standard {
            match row["住民種別"].as_str() {
                "1" => {
                    assert_eq!(row["氏名"], format!("{}\u{3000}{}", row["氏_日本人"], row["名_日本人"]));
                    assert!(row["氏名_外国人ローマ字"].is_empty());
                }
                kind => {
                    assert_eq!(kind, "2");
                    assert!(row["氏_日本人"].is_empty() && row["名_日本人"].is_empty());
                    assert_eq!(row["氏名_外国人ローマ字"], row["氏名"]);
                    assert!(!row["国籍名等"].is_empty());
                }
            }
        }
        let foreign = latest.iter().filter(|row| row["住民種別"] == "2").count() as f64 / latest.len() as f64;
        assert!((0.005..0.05).contains(&foreign), "{foreign}");
    }

    #[test]
    fn insurance_is_written_in_columns_instead_of_enrollments() {
        let cities = cities();
        let own_enrollments = read(&cities.own.0.join("enrollments.csv"));
        let (insurance, others): (Vec<&Row>, Vec<&Row>) =
            own_enrollments.iter().partition(|row| ["国保", "後期高齢"].contains(&row["種別"].as_str()));
        assert!(insurance.iter().all(|row| row["終了日"].is_empty()), "only open periods");
        let expected: BTreeSet<(String, String, String)> =
            insurance.iter().map(|row| (row["宛名番号"].clone(), row["種別"].clone(), row["開始日"].clone())).collect();
        let mut columns = BTreeSet::new();
        for row in read(&cities.standard.0.join(FILE_NAME)).iter().filter(|row| row["最新フラグ"] == "1") {
            for (kind, member, since) in [
                ("国保", "国保資格有無", "国保資格取得年月日"),
                ("後期高齢", "後期高齢資格有無", "後期高齢資格取得年月日"),
            ] {
                assert_eq!(row[member] == "1", !row[since].is_empty());
                if row[member] == "1" {
                    columns.insert((row["宛名番号"].clone(), kind.to_string(), row[since].clone()));
                }
            }
        }
        assert!(!expected.is_empty());
        assert_eq!(columns, expected);
        let standard_enrollments = read(&cities.standard.0.join("enrollments.csv"));
        assert_eq!(standard_enrollments.iter().collect::<Vec<_>>(), others);
        for (name, _) in FILE_HEADERS.iter().filter(|(name, _)| *name != "enrollments.csv") {
            assert_eq!(
                std::fs::read(cities.own.0.join(name)).unwrap(),
                std::fs::read(cities.standard.0.join(name)).unwrap(),
                "{name} is the same in both layouts"
            );
        }
    }

    #[test]
    fn import_toml_names_the_ward_of_every_district_code() {
        let cities = cities();
        let mapping = std::fs::read_to_string(cities.standard.0.join(MAPPING_FILE_NAME)).unwrap();
        assert_eq!(
            mapping,
            "# The town's mapping for the standard layout: 地区管理コード1 → ward name.\n[wards]\n\
             \"901\" = \"中央区\"\n\"902\" = \"花見川区\"\n\"903\" = \"稲毛区\"\n\
             \"904\" = \"若葉区\"\n\"905\" = \"緑区\"\n\"906\" = \"美浜区\"\n"
        );
        let own = read(&cities.own.0.join("residents.csv"));
        let standard = read(&cities.standard.0.join(FILE_NAME));
        let latest = standard.iter().filter(|row| row["最新フラグ"] == "1");
        for (row, own) in latest.zip(&own) {
            let line = format!("\"{}\" = \"{}\"\n", row["地区管理コード1"], own["行政区"]);
            assert!(mapping.contains(&line), "{line}");
        }
    }

    #[test]
    fn shift_jis_encodes_the_resident_table_but_not_import_toml() {
        let today = Day::parse_iso("2026-11-21").unwrap();
        let (utf8, shift_jis) = (TemporaryDirectory::new(), TemporaryDirectory::new());
        generate(1000, 2, today, &utf8.0, ExportFormat::standard(FileEncoding::Utf8)).unwrap();
        generate(1000, 2, today, &shift_jis.0, ExportFormat::standard(FileEncoding::ShiftJis)).unwrap();
        let encoded = std::fs::read(shift_jis.0.join(FILE_NAME)).unwrap();
        let (decoded, _, had_errors) = encoding_rs::SHIFT_JIS.decode(&encoded);
        assert!(!had_errors);
        assert_eq!(decoded, std::fs::read_to_string(utf8.0.join(FILE_NAME)).unwrap());
        assert_ne!(encoded, std::fs::read(utf8.0.join(FILE_NAME)).unwrap());
        assert_eq!(
            std::fs::read(shift_jis.0.join(MAPPING_FILE_NAME)).unwrap(),
            std::fs::read(utf8.0.join(MAPPING_FILE_NAME)).unwrap()
        );
    }
}

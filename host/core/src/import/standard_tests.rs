//! Imports of the 住民記録 standard layout (`resident_table.csv`, with the 122 columns of
//! 芽室町's public sample) in UTF-8, Shift_JIS and UTF-16, through the standard's code
//! tables or a vendor's, with history rows, 不詳 dates, 外字 and the states of real
//! households.

use super::tests::{import, refused};
use super::*;
use crate::testing::database;

/// The header of 芽室町's sample (Memuro-Town/MADO-packages, sample-data/csv/resident_table.csv).
const STANDARD_HEADER: &str = "市区町村コード,宛名番号,個人履歴番号,個人履歴番号_枝番号,最新フラグ,改製番号,世帯番号,住民種別,住民状態,住民票コード,異動年月日,異動年月日_不詳フラグ,異動届出年月日,届出番号,異動事由,異動区分,通知日,記載等の種別,氏名,氏_日本人,名_日本人,氏名_外国人ローマ字,氏名_フリガナ,氏_日本人_フリガナ,名_日本人_フリガナ,氏名_フリガナ確認状況,性別,性別表記,生年月日_元号,生年月日,生年月日_不詳フラグ,続柄コード1,続柄表記,世帯主氏名,住所_市区町村コード,住所_町字コード,住所_都道府県,住所_市区郡町村名,住所_町字,住所_番地号表記,住所_方書,住所_郵便番号,住民となった年月日,住民となった年月日_不詳フラグ,記載の異動年月日,記載の異動年月日_不詳フラグ,記載の事由,転入前住所_市区町村コード,転入前住所_町字コード,転入前住所_都道府県,転入前住所_市区郡町村名,転入前住所_町字,転入前住所_番地号表記,転入前住所_郵便番号,本籍,本籍_町字,本籍_地番号または、街区符号,本籍_市区町村コード,本籍_町字コード,戸籍_筆頭者,戸籍_筆頭者_氏,戸籍_筆頭者_名,消除の事由,消除の届出年月日,消除の異動年月日,消除の異動年月日_不詳フラグ,住所を定めた年月日,住所を定めた年月日_不詳フラグ,地区管理コード1,記載順位,成年被後見人_該当有無,除票フラグ,除票用データベース登録年月日,履歴選択不可フラグ,処理年月日,改製記載年月日,改製記載年月日_不詳フラグ,選挙人名簿登録有無,国保資格有無,国保資格取得年月日,後期高齢資格有無,後期高齢資格取得年月日,介護資格有無,介護資格取得年月日,年金資格有無,基礎年金番号,年金資格種別,年金資格取得年月日,年金資格喪失年月日,児童手当資格区分,児童手当受給開始年月,統合宛名フラグ,他業務参照不可フラグ,業務ID,削除フラグ,操作者ID,操作年月日,操作時刻,転出届出年月日,転出予定年月日,転出年月日（確定）,転入通知年月日,転出先住所（確定）_市区町村コード,転出先住所（確定）_都道府県,転出先住所（確定）_市区郡町村名,転出先住所（確定）_町字,転出先住所（確定）_番地号表記,転出先住所（確定）_方書,転出先住所（確定）_郵便番号,外国人住民となった年月日,外国人住民となった年月日_不詳フラグ,在留カード等番号,在留カード等番号区分,国籍等_国名コード,国籍名等,第30条45規定区分,住居地の届出の有無,在留資格等コード,在留期間等コード_年,在留期間等コード_月,在留期間等コード_日,在留期間の満了の日";

/// One row of the standard layout: `cells` by column name, the rest empty, as the
/// sample leaves the columns that do not apply.
fn row(cells: &[(&str, &str)]) -> String {
    let header: Vec<&str> = STANDARD_HEADER.split(',').collect();
    for (name, _) in cells {
        assert!(header.contains(name), "the test names a column the header does not have: {name}");
    }
    let values: Vec<&str> =
        header.iter().map(|name| cells.iter().find(|(cell, _)| cell == name).map_or("", |(_, value)| *value)).collect();
    values.join(",") + "\r\n"
}

/// A current row (最新フラグ 1) of a living resident with the cells every row needs.
fn resident(
    id: &str,
    household: &str,
    name: &str,
    sex: &str,
    born: &str,
    relationship: &str,
    more: &[(&str, &str)],
) -> String {
    let mut cells = vec![
        ("市区町村コード", "999999"),
        ("宛名番号", id),
        ("個人履歴番号", "9"),
        ("最新フラグ", "1"),
        ("世帯番号", household),
        ("住民種別", "1"),
        ("住民状態", "1"),
        ("氏名", name),
        ("性別", sex),
        ("生年月日", born),
        ("生年月日_不詳フラグ", "0"),
        ("続柄コード1", relationship),
        ("住所_都道府県", "サンプル県"),
        ("住所_市区郡町村名", "サンプル市"),
        ("住所_町字", "中央一丁目"),
        ("住所_番地号表記", "１番地"),
        ("住所_郵便番号", "９９９０００１"),
        ("地区管理コード1", "901"),
        ("削除フラグ", "0"),
    ];
    for (name, value) in more {
        match cells.iter_mut().find(|(cell, _)| cell == name) {
            Some(cell) => cell.1 = value,
            None => cells.push((name, value)),
        }
    }
    row(&cells)
}

/// A town's export covering every code of the standard's tables, history rows, a 不詳
/// birth date, a 外字, the 資格 columns and a household whose head has died.
fn town_export() -> String {
    let mut text = format!("{STANDARD_HEADER}\r\n");
    // 100: a family with every kind of relative. 1001 has two past rows (an earlier
    // address, an earlier name) before the current one, and one after it.
    text += &resident(
        "1001",
        "100",
        "甲野　一郎",
        "1",
        "1980-03-05",
        "02",
        &[("個人履歴番号", "1"), ("最新フラグ", "0"), ("住所_町字", "北一丁目"), ("続柄コード1", "20")],
    );
    text +=
        &resident("1001", "100", "乙野　一郎", "1", "1980-03-05", "02", &[("個人履歴番号", "2"), ("最新フラグ", "0")]);
    text += &resident(
        "1001",
        "100",
        "\u{E000}野　一郎",
        "1",
        "1980-03-05",
        "02",
        &[
            ("住所_方書", "サンプルハイツ２０１号室"),
            ("国保資格有無", "1"),
            ("国保資格取得年月日", "2010-04-01"),
            ("児童手当資格区分", "1"),
            ("児童手当受給開始年月", "2016-01"),
        ],
    );
    text += &resident(
        "1001",
        "100",
        "甲野　一郎",
        "1",
        "1980-03-05",
        "02",
        &[("個人履歴番号", "3"), ("最新フラグ", "0"), ("削除フラグ", "1")],
    );
    text += &resident("1002", "100", "甲野　京子", "2", "1982-07-14", "12", &[("氏名_フリガナ", "コウノ　キョウコ")]);
    text += &resident("1003", "100", "甲野　陽", "1", "2012-05-01", "20", &[]);
    text += &resident(
        "1004",
        "100",
        "甲野　幸子",
        "2",
        "1951-08-22",
        "52",
        &[("後期高齢資格有無", "1"), ("後期高齢資格取得年月日", "2026-08-22"), ("介護資格有無", "1")],
    );
    text += &resident("1005", "100", "甲野　茂", "1", "1949-01-01", "51", &[("生年月日_不詳フラグ", "1")]);
    for (id, code) in [("1006", "71"), ("1007", "72"), ("1008", "73"), ("1009", "74")] {
        text += &resident(id, "100", "甲野　兄弟", "1", "1985-01-01", code, &[]);
    }
    text += &resident("1010", "100", "癸山　太一", "1", "1950-01-01", "99", &[("続柄表記", "同居人")]);
    text += &resident("1011", "100", "壬野　好江", "2", "1948-03-30", "96", &[]);
    // 200: a couple not yet married (未届), in a district the mapping does not name.
    text += &resident("2001", "200", "乙川　二郎", "1", "1946-02-18", "2", &[("地区管理コード1", "999")]);
    text += &resident("2002", "200", "乙川　松子", "2", "1949-09-30", "14", &[("地区管理コード1", "999")]);
    text += &resident("2003", "200", "丙川　三郎", "1", "1947-09-30", "13", &[("地区管理コード1", "999")]);
    // 300: the head died in March and no new head is registered yet; his wife lives on.
    text += &resident("3001", "300", "戊島　三郎", "1", "1940-12-01", "2", &[("住民状態", "3")]);
    text += &resident("3002", "300", "戊島　冬子", "2", "1943-04-17", "12", &[]);
    // 400 moved out; 500 was removed by the city (その他消除者).
    text += &resident("4001", "400", "己原　明", "1", "1988-08-08", "2", &[("住民状態", "2")]);
    text += &resident("5001", "500", "庚谷　由美", "2", "1991-09-12", "2", &[("住民状態", "9")]);
    text
}

const TOWN_MAPPING: &str = "[wards]\n\"901\" = \"中央\"\n[gaiji]\n\"F040\" = \"髙\"\n";

/// Text as a Shift_JIS export writes it, its private-use characters as the 外字 codes
/// F040–F9FC.
fn shift_jis(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for character in text.chars() {
        match mapping::shift_jis_code(character) {
            Some(code) => bytes.extend(code),
            None => bytes.extend(super::tests::shift_jis(&character.to_string())),
        }
    }
    bytes
}

/// Files as `import` takes them.
fn slices<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    files.iter().map(|(name, bytes)| (*name, bytes.as_slice())).collect()
}

/// The export as UTF-16, little-endian with its byte order mark.
fn utf16(text: &str) -> Vec<u8> {
    [vec![0xFF, 0xFE], text.encode_utf16().flat_map(u16::to_le_bytes).collect()].concat()
}

/// What was stored of a living resident: id, household, name, relationship, address,
/// postal code, ward, and whether the birth day is inexact.
type StoredResident = (String, String, String, u8, String, String, String, bool);

/// What was stored of each living resident, in row order.
fn stored_residents(connection: &Connection) -> Vec<StoredResident> {
    let mut statement = connection
        .prepare(
            "SELECT resident_id, household_id, name, relationship, address, postal_code, ward, birth_day_inexact
             FROM residents ORDER BY key",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn stored_kinds(connection: &Connection) -> Vec<(String, String, String, i32)> {
    let mut statement = connection
        .prepare(
            "SELECT r.resident_id, e.kind, e.level, e.start_day FROM enrollments e
             JOIN residents r ON r.key = (e.key >> 32 << 32) + e.row ORDER BY e.key",
        )
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn the_standard_layout_imports_as_it_is_in_utf8_shift_jis_and_utf16() {
    let text = town_export();
    let encodings: [(&str, Vec<u8>); 4] = [
        ("UTF-8", text.clone().into_bytes()),
        ("UTF-8 with BOM", ["\u{feff}".as_bytes(), text.as_bytes()].concat()),
        ("Shift_JIS", shift_jis(&text)),
        ("UTF-16", utf16(&text)),
    ];
    let day = |text| oshirase_sdk::Day::parse_iso(text).unwrap().0;
    for (encoding, bytes) in encodings {
        let mut connection = database();
        let report = import(
            &mut connection,
            &[("resident_table.csv", bytes.as_slice()), ("import.toml", TOWN_MAPPING.as_bytes())],
        )
        .unwrap_or_else(|error| panic!("{encoding}: {error}"));
        assert_eq!(
            (report.residents, report.departed),
            (15, 3),
            "{encoding}: 住民状態 1 lives here; 2, 3 and 9 do not"
        );
        let residents = stored_residents(&connection);
        let ids: Vec<&str> = residents.iter().map(|resident| resident.0.as_str()).collect();
        assert_eq!(
            ids,
            [
                "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009", "1010", "1011", "2001", "2002",
                "2003", "3002"
            ],
            "{encoding}: one row each, the current one"
        );
        let first = &residents[0];
        assert_eq!(
            (first.2.as_str(), first.4.as_str(), first.5.as_str(), first.6.as_str()),
            ("髙野　一郎", "サンプル県サンプル市中央一丁目１番地\u{3000}サンプルハイツ２０１号室", "999-0001", "中央"),
            "{encoding}: only the current row is kept, its 外字 mapped, its address assembled"
        );
        let relationships: Vec<u8> = residents.iter().map(|resident| resident.3).collect();
        // 02 世帯主 1, 12 妻 2, 20 子 3, 52 母 4, 51 父 4, 71–74 9, 99 同居人 9, 96 縁故者 9,
        // 2 世帯主 1, 14 未届の妻 2, 13 未届の夫 2, 12 妻 2.
        assert_eq!(relationships, [1, 2, 3, 4, 4, 9, 9, 9, 9, 9, 9, 1, 2, 2, 2], "{encoding}");
        let inexact: Vec<&str> =
            residents.iter().filter(|resident| resident.7).map(|resident| resident.0.as_str()).collect();
        assert_eq!(inexact, ["1005"], "{encoding}");
        assert_eq!(residents[12].6, "999", "{encoding}: an unnamed district is its own code");
        assert_eq!(
            stored_kinds(&connection),
            [
                ("1001".into(), "国保".into(), "".into(), day("2010-04-01")),
                ("1001".into(), "児童手当".into(), "1".into(), day("2016-01-01")),
                ("1004".into(), "後期高齢".into(), "".into(), day("2026-08-22")),
                ("1004".into(), "介護".into(), "".into(), day("1951-08-22")),
            ],
            "{encoding}"
        );
        assert_eq!(
            report.warnings,
            [
                "resident_table.csv: 94 columns of the standard layout are not read".to_owned(),
                format!(
                    "resident_table.csv:{}: household 300 has no head (世帯主) among its living residents for now; \
                     its members are imported, and programs that look for a head skip it",
                    20
                ),
                "resident_table.csv: 2 residents are 同居人 or 縁故者 of their household's head (lines 14, 15); \
                 programs see them as other members of the household"
                    .to_owned(),
                "resident_table.csv: 1 residents' birth dates are not exact (生年月日_不詳; lines 9); programs that \
                 read birth days give them no notice, and each run counts the notices withheld"
                    .to_owned(),
                "resident_table.csv: 1 資格 (介護) are held with no date of acquisition (lines 8); they are taken as \
                 held since birth"
                    .to_owned(),
                "resident_table.csv: 地区管理コード 999 have no name in the mapping's [wards]; the code is used as \
                 the ward"
                    .to_owned(),
                "resident_table.csv: kind 国保 is read by no active program".to_owned(),
                "resident_table.csv: kind 後期高齢 is read by no active program".to_owned(),
                "resident_table.csv: kind 介護 is read by no active program".to_owned(),
                "resident_table.csv: kind 児童手当 is read by no active program".to_owned(),
            ],
            "{encoding}"
        );
        let kept: String = connection
            .query_row("SELECT warnings FROM snapshots WHERE id = ?1", [report.snapshot_id], |row| row.get(0))
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<String>>(&kept).unwrap(),
            report.warnings,
            "{encoding}: staff see them later"
        );
    }
}

/// A vendor whose 住民状態 codes 2 as 住登外 and shifts the rest, and who writes 続柄コード
/// for 続柄コード1, imports through its mapping; without the mapping the shifted code is
/// refused by name.
#[test]
fn a_vendors_code_table_and_column_names_are_read_through_the_towns_mapping() {
    let vendor_header = STANDARD_HEADER.replace("続柄コード1", "続柄コード");
    let rows = [
        resident("1", "10", "甲野　一郎", "1", "1980-03-05", "02", &[]),
        resident("2", "10", "甲野　京子", "2", "1982-07-14", "12", &[("住民状態", "2")]),
        resident("3", "20", "乙川　二郎", "1", "1946-02-18", "02", &[("住民状態", "3")]),
        resident("4", "30", "丙山　誠", "1", "1995-06-20", "02", &[("住民状態", "4")]),
    ]
    .concat();
    let export = format!("{vendor_header}\r\n{rows}");
    let tax = "宛名番号,課税年度,合計所得金額,課税区分\n1,2025,100,課税\n2,2025,100,課税\n";
    let mapping = "[columns]\n\"続柄コード1\" = \"続柄コード\"\n\
                   [codes.status]\n\"1\" = \"resident\"\n\"2\" = \"not_registered\"\n\"3\" = \"moved_out\"\n\
                   \"4\" = \"deceased\"\n\"9\" = \"removed\"\n";
    let mut connection = database();
    let report = import(
        &mut connection,
        &[("resident_table.csv", export.as_bytes()), ("tax.csv", tax.as_bytes()), ("import.toml", mapping.as_bytes())],
    )
    .unwrap();
    assert_eq!((report.residents, report.departed), (1, 2), "住登外 is neither a resident nor a departure");
    let departed: Vec<(String, String)> = connection
        .prepare("SELECT resident_id, status FROM departed_residents ORDER BY key")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(departed, [("3".into(), "moved_out".into()), ("4".into(), "deceased".into())]);
    let tax_rows: i64 = connection.query_row("SELECT count(*) FROM tax", [], |row| row.get(0)).unwrap();
    assert_eq!(tax_rows, 1, "the 住登外's tax row is known and dropped");

    let problems = refused(import(&mut connection, &[("resident_table.csv", export.as_bytes())]));
    assert_eq!(
        problems,
        ["resident_table.csv:1:0: missing column relationship (続柄コード1); the header, read as UTF-8, has: "
            .to_owned()
            + &vendor_header.replace(',', ", "),]
    );
    let standard_names = export.replace("続柄コード,", "続柄コード1,");
    let problems = refused(import(&mut connection, &[("resident_table.csv", standard_names.as_bytes())]));
    assert_eq!(
        problems,
        ["resident_table.csv:5:9: 住民状態 code \"4\" is not in the 住民状態 table (1, 2, 3, 9); name it in the \
          mapping's [codes.status]"]
    );
}

/// A 外字 with no character in the mapping refuses the import with every row and code
/// point it is on, in either layout; with the table, the names are stored whole.
#[test]
fn a_gaiji_without_a_mapping_refuses_the_import_naming_each_row_and_code() {
    let standard = format!(
        "{STANDARD_HEADER}\r\n{}{}{}",
        resident("1", "10", "\u{E000}野　一郎", "1", "1980-03-05", "02", &[]),
        resident("2", "10", "甲野　\u{E0BC}子", "2", "1982-07-14", "12", &[("住所_方書", "\u{E000}ハイツ")]),
        resident("3", "10", "甲野　陽", "1", "2012-05-01", "20", &[]),
    );
    let own = "宛名番号,世帯番号,氏名,生年月日,性別,続柄\r\n1,10,\u{E000}野 一郎,1980-03-05,1,世帯主\r\n";
    for (file, text, expected) in [
        (
            "resident_table.csv",
            &standard,
            vec![
                "resident_table.csv:2:19: 外字 F040 (U+E000) has no character in the mapping's [gaiji] table; add it \
                 so that nothing is stored garbled",
                "resident_table.csv:3:19: 外字 F140 (U+E0BC) has no character in the mapping's [gaiji] table; add it \
                 so that nothing is stored garbled",
                "resident_table.csv:3:41: 外字 F040 (U+E000) has no character in the mapping's [gaiji] table; add it \
                 so that nothing is stored garbled",
            ],
        ),
        (
            "residents.csv",
            &own.to_owned(),
            vec![
                "residents.csv:2:3: 外字 F040 (U+E000) has no character in the mapping's [gaiji] table; add it so \
                 that nothing is stored garbled",
            ],
        ),
    ] {
        let bytes = shift_jis(text);
        assert!(bytes.contains(&0xF0), "{file}: the 外字 is F0xx in Shift_JIS");
        let mut connection = database();
        assert_eq!(refused(import(&mut connection, &[(file, bytes.as_slice())])), expected, "{file}");
        let mapping = "[gaiji]\n\"F040\" = \"髙\"\n\"U+E0BC\" = \"𠮷\"\n";
        import(&mut connection, &[(file, bytes.as_slice()), ("import.toml", mapping.as_bytes())]).unwrap();
        let names: Vec<String> = connection
            .prepare("SELECT name || address FROM residents ORDER BY key")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(names[0].starts_with("髙野"), "{file}: {names:?}");
        if file == "resident_table.csv" {
            assert!(names[1].starts_with("甲野　𠮷子") && names[1].ends_with("髙ハイツ"), "{names:?}");
        }
        assert!(names.iter().all(|name| !name.chars().any(mapping::is_private_use)), "{file}: {names:?}");
    }
}

/// Broken standard-layout exports are refused with their place, like the own layout's.
#[test]
fn broken_standard_exports_are_refused_with_their_place() {
    let current = |id: &str, code: &str| resident(id, "10", "甲野　一郎", "1", "1980-03-05", code, &[]);
    let past = |id: &str| resident(id, "10", "甲野　一郎", "1", "1980-03-05", "02", &[("最新フラグ", "0")]);
    let file = |rows: &[String]| format!("{STANDARD_HEADER}\r\n{}", rows.concat()).into_bytes();
    super::tests::check(&[
        (
            "only past rows",
            vec![("resident_table.csv", file(&[current("1", "02"), past("2"), past("2")]))],
            vec![
                "resident_table.csv:3:0: resident_id 2 has past rows but no current one (最新フラグ 1); is the \
                  export cut short?",
            ],
        ),
        (
            "two current rows",
            vec![("resident_table.csv", file(&[current("1", "02"), past("1"), current("1", "02")]))],
            vec!["resident_table.csv:4:2: resident_id 1 has two current rows (最新フラグ 1; the first on line 2)"],
        ),
        (
            "a 続柄 code not in the table",
            vec![(
                "resident_table.csv",
                file(&[
                    current("1", "02"),
                    resident("2", "10", "甲野　孫", "1", "2020-01-01", "30", &[("続柄表記", "孫")]),
                ]),
            )],
            vec![
                "resident_table.csv:3:32: 続柄 code \"30\" (孫) is not in the 続柄 table (2, 11, 12, 13, 14, 20, 51, 52, \
                  71, 72, 73, 74, 96, 99); name it in the mapping's [codes.relationship]",
            ],
        ),
        (
            "both layouts",
            vec![
                ("resident_table.csv", file(&[current("1", "02")])),
                ("residents.csv", format!("{}{}", super::tests::HEADER, super::tests::GOOD_ROWS).into_bytes()),
            ],
            vec![
                "resident_table.csv:0:0: the export holds both residents.csv and the standard layout's \
                  resident_table.csv; keep the one the town exports",
            ],
        ),
        (
            "a broken mapping file",
            vec![
                ("resident_table.csv", file(&[current("1", "02")])),
                ("import.toml", b"[codes.status]\n\"1\" = \"alive\"\n".to_vec()),
            ],
            vec![
                "import.toml:2:7: unknown variant `alive`, expected one of `resident`, `moved_out`, `deceased`, \
                  `removed`, `not_registered`",
            ],
        ),
        (
            "utf-16 without a byte order mark",
            vec![("resident_table.csv", utf16(&String::from_utf8(file(&[current("1", "02")])).unwrap())[2..].to_vec())],
            vec![
                "resident_table.csv:1:0: the file looks like UTF-16 without a byte order mark; export it with one, \
                  or as UTF-8 or Shift_JIS",
            ],
        ),
    ]);
}

/// Beside the resident file: 課税区分 未申告 is kept as unknown (no tax row) with a
/// warning, and doses counted by 期 (1期初回, 1期追加, 2期) become the dose numbers the
/// programs count; a 期 the table lacks is refused by name.
#[test]
fn undeclared_tax_is_unknown_and_doses_counted_by_stage_are_numbered_as_programs_count() {
    let residents = town_export();
    let tax = "宛名番号,課税年度,合計所得金額,課税区分\n1001,2025,3000000,課税\n1002,2025,,未申告\n";
    let immunizations = "宛名番号,ワクチン,期,回数,接種日\n\
                         1003,vaccine-je,1期初回,1,2015-06-01\n1003,vaccine-je,1期初回,2,2015-07-01\n\
                         1003,vaccine-je,1期追加,,2016-06-01\n1003,vaccine-je,2期,1,2021-06-01\n\
                         1003,vaccine-mr,１期,,2013-05-01\n1003,vaccine-bcg,,1,2012-10-01\n";
    let mut connection = database();
    let files = |immunizations: &'static str| -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("resident_table.csv", residents.clone().into_bytes()),
            ("import.toml", TOWN_MAPPING.as_bytes().to_vec()),
            ("tax.csv", tax.as_bytes().to_vec()),
            ("immunizations.csv", immunizations.as_bytes().to_vec()),
        ]
    };
    let report = import(&mut connection, &slices(&files(immunizations))).unwrap();
    assert!(
        report.warnings.contains(
            &"tax.csv: 1 rows are 未申告 (lines 3); their tax is unknown, so no program treats them as taxed or as \
              not taxed"
                .to_owned()
        ),
        "{:?}",
        report.warnings
    );
    let taxed: Vec<String> = connection
        .prepare("SELECT r.resident_id FROM tax t JOIN residents r ON r.key = (t.key >> 32 << 32) + t.row")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(taxed, ["1001"]);
    let doses: Vec<(String, u8)> = connection
        .prepare("SELECT code, count FROM events WHERE kind = 'immunization' ORDER BY key")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let dose = |code: &str, count: u8| (code.to_owned(), count);
    assert_eq!(
        doses,
        [
            dose("vaccine-je", 1),
            dose("vaccine-je", 2),
            dose("vaccine-je", 3),
            dose("vaccine-je", 4),
            dose("vaccine-mr", 1),
            dose("vaccine-bcg", 1)
        ]
    );

    let unknown_stage = files("宛名番号,ワクチン,期,回数,接種日\n1003,vaccine-je,3期,1,2025-06-01\n");
    assert_eq!(
        refused(import(&mut connection, &slices(&unknown_stage))),
        [
            "immunizations.csv:2:3: 期 \"3期\" of vaccine-je is not in the 期 table (1期初回, 1期追加, 2期); name the dose it \
          begins at in the mapping's [immunization_stages.\"vaccine-je\"]"
        ]
    );
}

//! A town's mapping file (`import.toml`): how its export differs from the 住民記録
//! standard's defaults — renamed columns, a vendor's code tables, the names of its
//! 地区管理コード, and the characters its 外字 stand for.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use rustc_hash::FxHashMap as HashMap;

use oshirase_sdk::Relationship;

use crate::snapshot::Departure;

/// The mapping file an export directory may hold; a town can also keep it elsewhere and
/// name it on each import.
pub const MAPPING_FILE: &str = "import.toml";

/// What a 住民状態 code means.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Lives here.
    Resident,
    MovedOut,
    Deceased,
    /// その他消除者 (removed from the register by the city, e.g. whereabouts unknown): no
    /// longer here, kept as moved out.
    Removed,
    /// 住登外: known to the city's systems but never registered here; not a resident, and
    /// records about them are not kept.
    NotRegistered,
}

impl Standing {
    /// Why someone no longer lives here; `None` for a resident and for someone who never
    /// did (住登外).
    pub fn departure(self) -> Option<Departure> {
        match self {
            Standing::Resident | Standing::NotRegistered => None,
            Standing::MovedOut | Standing::Removed => Some(Departure::MovedOut),
            Standing::Deceased => Some(Departure::Deceased),
        }
    }
}

/// What a 続柄 code means: the contract's relationship, and whether the person is a
/// 同居人 or 縁故者 (no kin of the head), which staff are told of.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationshipCode {
    Head,
    Spouse,
    Child,
    Parent,
    Other,
    /// 同居人 or 縁故者.
    Lodger,
}

impl RelationshipCode {
    pub fn relationship(self) -> Relationship {
        match self {
            RelationshipCode::Head => Relationship::Head,
            RelationshipCode::Spouse => Relationship::Spouse,
            RelationshipCode::Child => Relationship::Child,
            RelationshipCode::Parent => Relationship::Parent,
            RelationshipCode::Other | RelationshipCode::Lodger => Relationship::Other,
        }
    }
}

/// The file as written; see `Mapping` for what each table does.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    columns: BTreeMap<String, String>,
    #[serde(default)]
    wards: BTreeMap<String, String>,
    #[serde(default)]
    codes: CodeTables,
    #[serde(default)]
    gaiji: BTreeMap<String, String>,
    #[serde(default)]
    immunization_stages: BTreeMap<String, BTreeMap<String, u8>>,
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeTables {
    /// Replaces the standard's 住民状態 table whole: a vendor that codes 2 as 住登外
    /// shifts every code after it.
    status: Option<BTreeMap<String, Standing>>,
    /// Added to the standard's 続柄 table, replacing a code it has.
    #[serde(default)]
    relationship: BTreeMap<String, RelationshipCode>,
}

/// A town's mapping, read and checked, with the standard's defaults filled in.
#[derive(Debug)]
pub struct Mapping {
    /// The town's header → the standard's column name.
    pub renamed_columns: HashMap<String, String>,
    /// 地区管理コード → the ward's name.
    pub wards: HashMap<String, String>,
    /// 住民状態 code (without leading zeros) → its meaning.
    pub status: HashMap<String, Standing>,
    /// 続柄 code (without leading zeros) → its meaning.
    pub relationship: HashMap<String, RelationshipCode>,
    /// A 外字's private-use character → the characters it stands for.
    pub gaiji: HashMap<char, String>,
    /// (vaccine, 期) → the dose number the 期's first dose is: records counted by 期 (1期初回
    /// 2回目) are stored as the dose the programs count (2).
    pub immunization_stages: HashMap<(String, String), u8>,
}

impl Default for Mapping {
    fn default() -> Mapping {
        Mapping {
            renamed_columns: HashMap::default(),
            wards: HashMap::default(),
            status: STANDARD_STATUS.iter().map(|(code, standing)| ((*code).to_owned(), *standing)).collect(),
            relationship: STANDARD_RELATIONSHIPS.iter().map(|(code, meaning)| ((*code).to_owned(), *meaning)).collect(),
            gaiji: HashMap::default(),
            immunization_stages: IMMUNIZATION_STAGES
                .iter()
                .map(|(vaccine, stage, first)| (((*vaccine).to_owned(), (*stage).to_owned()), *first))
                .collect(),
        }
    }
}

/// 住民状態 as the 住民記録 standard codes it.
const STANDARD_STATUS: [(&str, Standing); 4] =
    [("1", Standing::Resident), ("2", Standing::MovedOut), ("3", Standing::Deceased), ("9", Standing::Removed)];

/// 続柄 as the 住民記録 standard codes it (続柄コード1): 02 世帯主, 11 夫, 12 妻, 13 未届の夫,
/// 14 未届の妻, 20 子, 51 父, 52 母, 71–74 兄弟姉妹, 96 縁故者, 99 同居人. A code not here
/// is a problem naming it, until the town's mapping says what it means.
const STANDARD_RELATIONSHIPS: [(&str, RelationshipCode); 14] = [
    ("2", RelationshipCode::Head),
    ("11", RelationshipCode::Spouse),
    ("12", RelationshipCode::Spouse),
    ("13", RelationshipCode::Spouse),
    ("14", RelationshipCode::Spouse),
    ("20", RelationshipCode::Child),
    ("51", RelationshipCode::Parent),
    ("52", RelationshipCode::Parent),
    ("71", RelationshipCode::Other),
    ("72", RelationshipCode::Other),
    ("73", RelationshipCode::Other),
    ("74", RelationshipCode::Other),
    ("96", RelationshipCode::Lodger),
    ("99", RelationshipCode::Lodger),
];

/// The 期 of the routine vaccinations whose doses the catalogue counts across them, with
/// the dose each 期 begins at, as 予防接種実施規則 (昭和33年厚生省令第27号) 第2条 and the
/// 定期接種実施要領 schedule them: 日本脳炎 1期初回 2回, 1期追加 1回, 2期 1回; 五種混合
/// 1期初回 3回, 1期追加 1回; 小児の肺炎球菌 初回 3回, 追加 1回; 麻しん風しん 1期, 2期.
const IMMUNIZATION_STAGES: [(&str, &str, u8); 9] = [
    ("vaccine-je", "1期初回", 1),
    ("vaccine-je", "1期追加", 3),
    ("vaccine-je", "2期", 4),
    ("vaccine-5in1", "1期初回", 1),
    ("vaccine-5in1", "1期追加", 4),
    ("vaccine-pcv", "初回", 1),
    ("vaccine-pcv", "追加", 4),
    ("vaccine-mr", "1期", 1),
    ("vaccine-mr", "2期", 2),
];

/// A code as the tables key it: `02` and `2` are the same code.
pub fn code_key(code: &str) -> &str {
    let trimmed = code.trim().trim_start_matches('0');
    if trimmed.is_empty() && !code.trim().is_empty() { "0" } else { trimmed }
}

/// What is wrong with a mapping file, and where (line 0 when it is not one place).
#[derive(Debug)]
pub struct MappingProblem {
    pub line: u64,
    pub column: usize,
    pub message: String,
}

impl MappingProblem {
    fn whole_file(message: String) -> MappingProblem {
        MappingProblem { line: 0, column: 0, message }
    }
}

impl Mapping {
    /// Reads a mapping file: `Err` when it cannot be read, `Ok(Err)` when it is not a
    /// valid mapping.
    pub fn read(path: &Path) -> anyhow::Result<Result<Mapping, MappingProblem>> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Mapping::parse(&text))
    }

    pub fn parse(text: &str) -> Result<Mapping, MappingProblem> {
        let file: MappingFile = toml::from_str(text).map_err(|error| {
            let (line, column) = error.span().map_or((0, 0), |span| {
                let before = &text[..span.start.min(text.len())];
                let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
                (before.matches('\n').count() as u64 + 1, before[line_start..].chars().count() + 1)
            });
            MappingProblem { line, column, message: error.message().trim().to_owned() }
        })?;
        let mut mapping = Mapping::default();
        for (standard, town) in file.columns {
            if mapping.renamed_columns.insert(town.clone(), standard).is_some() {
                return Err(MappingProblem::whole_file(format!(
                    "[columns]: the header {town:?} is given to two columns"
                )));
            }
        }
        mapping.wards = file.wards.into_iter().map(|(code, name)| (code.trim().to_owned(), name)).collect();
        if let Some(status) = file.codes.status {
            mapping.status =
                status.into_iter().map(|(code, standing)| (code_key(&code).to_owned(), standing)).collect();
        }
        for (code, meaning) in file.codes.relationship {
            mapping.relationship.insert(code_key(&code).to_owned(), meaning);
        }
        for (vaccine, stages) in file.immunization_stages {
            for (stage, first) in stages {
                if first == 0 {
                    return Err(MappingProblem::whole_file(format!(
                        "[immunization_stages.{vaccine:?}]: {stage:?} must name the dose it begins at, from 1"
                    )));
                }
                mapping.immunization_stages.insert((vaccine.clone(), stage), first);
            }
        }
        for (code, characters) in file.gaiji {
            let Some(private) = gaiji_character(&code) else {
                return Err(MappingProblem::whole_file(format!(
                    "[gaiji]: {code:?} is neither a Shift_JIS user-defined code (F040 to F9FC) nor a private-use \
                     code point (U+E000 to U+F8FF)"
                )));
            };
            if characters.is_empty() || characters.chars().any(is_private_use) {
                return Err(MappingProblem::whole_file(format!(
                    "[gaiji]: {code:?} must map to the Unicode characters it stands for (MJ or IVS), not to nothing \
                     or another private-use character"
                )));
            }
            mapping.gaiji.insert(private, characters);
        }
        Ok(mapping)
    }

    /// `text` with every 外字 replaced by its characters, or the 外字 that have none.
    pub fn resolve_gaiji<'a>(&self, text: &'a str) -> Result<std::borrow::Cow<'a, str>, Vec<char>> {
        // Every private-use character's UTF-8 begins with EE or EF; a byte search rules
        // out nearly every name without decoding it.
        if memchr::memchr2(0xEE, 0xEF, text.as_bytes()).is_none() || !text.chars().any(is_private_use) {
            return Ok(std::borrow::Cow::Borrowed(text));
        }
        let mut resolved = String::with_capacity(text.len());
        let mut unmapped = Vec::new();
        for character in text.chars() {
            match self.gaiji.get(&character) {
                Some(characters) => resolved.push_str(characters),
                None if is_private_use(character) => unmapped.push(character),
                None => resolved.push(character),
            }
        }
        if unmapped.is_empty() { Ok(std::borrow::Cow::Owned(resolved)) } else { Err(unmapped) }
    }
}

/// Whether `character` is in Unicode's private-use area, where Shift_JIS's user-defined
/// area (外字) decodes to.
pub fn is_private_use(character: char) -> bool {
    ('\u{E000}'..='\u{F8FF}').contains(&character)
}

/// The private-use character of a 外字 written as its Shift_JIS code (`F040`) or as a code
/// point (`U+E000`).
fn gaiji_character(code: &str) -> Option<char> {
    let code = code.trim();
    if let Some(hex) = code.strip_prefix("U+").or_else(|| code.strip_prefix("u+")) {
        return char::from_u32(u32::from_str_radix(hex, 16).ok()?).filter(|character| is_private_use(*character));
    }
    let value = u16::from_str_radix(code, 16).ok()?;
    let [lead, trail] = value.to_be_bytes();
    if !(0xF0..=0xF9).contains(&lead) || !matches!(trail, 0x40..=0x7E | 0x80..=0xFC) {
        return None;
    }
    // CP932 puts the user-defined area at U+E000, 188 characters per lead byte, trail
    // bytes in order without 0x7F (as encoding_rs, and Windows, decode it).
    let index = u32::from(lead - 0xF0) * 188 + u32::from(trail - 0x40) - u32::from(trail > 0x7F);
    char::from_u32(0xE000 + index)
}

/// The Shift_JIS (CP932) code of a 外字's private-use character, as the town's vendor
/// lists it: the inverse of `gaiji_character`. encoding_rs decodes these codes but, as
/// the WHATWG encoder it follows, does not encode them.
pub fn shift_jis_code(character: char) -> Option<[u8; 2]> {
    let index = (character as u32).checked_sub(0xE000).filter(|index| *index < 10 * 188)?;
    let (lead, trail) = ((0xF0 + index / 188) as u8, (index % 188) as u8);
    Some([lead, 0x40 + trail + u8::from(trail >= 0x3F)])
}

/// How a 外字 is named in a problem: its Shift_JIS code when it has one, and its code point.
pub fn describe_gaiji(character: char) -> String {
    let code_point = format!("U+{:04X}", character as u32);
    match shift_jis_code(character) {
        Some([lead, trail]) => format!("外字 {lead:02X}{trail:02X} ({code_point})"),
        None => format!("外字 {code_point}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_jis_gaiji_code_names_the_character_encoding_rs_decodes_it_to() {
        for (lead, trail) in [(0xF0u8, 0x40u8), (0xF0, 0x7E), (0xF0, 0x80), (0xF0, 0xFC), (0xF5, 0x9F), (0xF9, 0xFC)] {
            let bytes = [lead, trail];
            let (decoded, _, errors) = encoding_rs::SHIFT_JIS.decode(&bytes);
            assert!(!errors, "{lead:02X}{trail:02X} decodes");
            let character = decoded.chars().next().unwrap();
            assert_eq!(gaiji_character(&format!("{lead:02X}{trail:02X}")), Some(character), "{lead:02X}{trail:02X}");
            assert_eq!(shift_jis_code(character), Some(bytes), "{lead:02X}{trail:02X} back");
            assert_eq!(describe_gaiji(character), format!("外字 {lead:02X}{trail:02X} (U+{:04X})", character as u32));
        }
        assert_eq!(gaiji_character("U+E001"), Some('\u{E001}'));
        for outside in ["889F", "F07F", "FA40", "U+4E00", "nonsense"] {
            assert_eq!(gaiji_character(outside), None, "{outside}");
        }
    }

    #[test]
    fn a_mapping_replaces_the_status_table_whole_and_adds_to_the_relationship_table() {
        let mapping = Mapping::parse(
            r#"
            [columns]
            "続柄コード1" = "続柄コード"
            [wards]
            "901" = "中央"
            [codes.status]
            "1" = "resident"
            "2" = "not_registered"
            "3" = "moved_out"
            "4" = "deceased"
            [codes.relationship]
            "30" = "other"
            [gaiji]
            "F040" = "髙"
            [immunization_stages."vaccine-dt"]
            "2期" = 1
            "#,
        )
        .unwrap();
        assert_eq!(mapping.renamed_columns["続柄コード"], "続柄コード1");
        assert_eq!(mapping.status[code_key("02")], Standing::NotRegistered);
        assert_eq!(mapping.status.get("9"), None, "the vendor's table replaces the standard's");
        assert_eq!(mapping.relationship["30"], RelationshipCode::Other);
        assert_eq!(mapping.relationship[code_key("02")], RelationshipCode::Head, "the standard's codes stay");
        assert_eq!(mapping.resolve_gaiji("\u{E000}田").unwrap(), "髙田");
        let stage = |vaccine: &str, stage: &str| {
            mapping.immunization_stages.get(&(vaccine.to_owned(), stage.to_owned())).copied()
        };
        assert_eq!(
            (stage("vaccine-dt", "2期"), stage("vaccine-je", "2期")),
            (Some(1), Some(4)),
            "added to the standard's"
        );
        assert_eq!(mapping.resolve_gaiji("\u{E001}田").unwrap_err(), vec!['\u{E001}']);
    }

    /// The README's example mapping file is one the importer reads, and means what it says.
    #[test]
    fn the_readmes_example_mapping_is_valid() {
        let readme = include_str!("../../../../README.md");
        let section = &readme[readme.find("## The standard layout").expect("the README has the section")..];
        let example = section.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap();
        let mapping = Mapping::parse(example).unwrap();
        assert_eq!(mapping.status[code_key("2")], Standing::NotRegistered);
        assert_eq!(mapping.wards["901"], "中央");
        assert_eq!(mapping.resolve_gaiji("\u{E001}").unwrap(), "𠮷");
    }

    #[test]
    fn a_broken_mapping_file_says_what_is_wrong() {
        for (text, (line, column), expected) in [
            ("[wards\n", (1, 7), "unclosed table"),
            ("[codes.status]\n\"1\" = \"alive\"\n", (2, 7), "unknown variant `alive`"),
            ("[gaiji]\n\"889F\" = \"亜\"\n", (0, 0), "neither a Shift_JIS user-defined code"),
            ("[gaiji]\n\"F040\" = \"\u{E001}\"\n", (0, 0), "another private-use character"),
            ("[colums]\n", (1, 2), "unknown field `colums`"),
        ] {
            let problem = Mapping::parse(text).unwrap_err();
            assert_eq!((problem.line, problem.column), (line, column), "{text:?}: {problem:?}");
            assert!(problem.message.contains(expected), "{text:?}: {problem:?}");
        }
    }
}

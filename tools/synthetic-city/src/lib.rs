//! A synthetic city for the demo, the tests and the benchmarks, written as the same CSV
//! files a municipal export has: ages that follow the 2020 census pyramid, households
//! shaped like Japan's (about 2.2 persons, single parents in about 6.5 % of households
//! with children), incomes, pregnancies, partial vaccination and checkup histories,
//! benefits received, health insurance, care-need certifications and disability
//! certificates (the data kinds 国保, 後期高齢, 要介護, 身体障害者手帳の等級), residents
//! who moved out or died, and a share registered with LINE. The same seed and date always
//! give the same files. The resident file is written in our own layout (`residents.csv`) or
//! in the national standard one (`resident_table.csv`, see `standard.rs`); the other files
//! are the same in both. For the delivery benchmark and the outbox's tests,
//! `seed_due_notices` writes due notices straight into a database of oshirase's schema;
//! `write_later_export` (`later.rs`) the next export, in which some of the residents found
//! eligible, more of those told, took it up.

mod later;
mod standard;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};
use oshirase_sdk::{Day, Relationship};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sha2::{Digest, Sha256};

pub use later::{BASELINE_UPTAKE, Candidate, Drawn, MEAN_DAYS_TO_UPTAKE, RecordFile, TOLD_LIFT, write_later_export};

/// Japan's population by five-year age band (0–4, 5–9, … 80–84, 85+), in thousands,
/// from the 2020 census (国勢調査).
pub const CENSUS_2020: [u32; 18] =
    [4541, 5114, 5376, 5706, 6320, 6384, 6714, 7498, 8476, 9868, 8803, 7939, 7405, 8236, 9159, 7087, 5380, 6198];
const OLDEST: u32 = 104;

/// A ward of Chiba city: its name, a rough population weight, and for the standard layout
/// its 全国地方公共団体コード and the first three digits of its postal codes.
struct Ward {
    name: &'static str,
    weight: u32,
    code: &'static str,
    postal_area: &'static str,
}

const WARDS: [Ward; 6] = [
    Ward { name: "中央区", weight: 21, code: "121011", postal_area: "260" },
    Ward { name: "花見川区", weight: 17, code: "121029", postal_area: "262" },
    Ward { name: "稲毛区", weight: 16, code: "121037", postal_area: "263" },
    Ward { name: "若葉区", weight: 15, code: "121045", postal_area: "264" },
    Ward { name: "緑区", weight: 13, code: "121053", postal_area: "266" },
    Ward { name: "美浜区", weight: 15, code: "121061", postal_area: "261" },
];
const TOWNS: [&str; 8] = ["本町", "新町", "港町", "旭町", "栄町", "緑町", "幸町", "若松町"];
const SURNAMES: [(&str, &str); 16] = [
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
];
const MALE_NAMES: [(&str, &str); 8] = [
    ("蓮", "レン"),
    ("大翔", "ヒロト"),
    ("悠真", "ユウマ"),
    ("湊", "ミナト"),
    ("健一", "ケンイチ"),
    ("誠", "マコト"),
    ("浩", "ヒロシ"),
    ("茂", "シゲル"),
];
const FEMALE_NAMES: [(&str, &str); 8] = [
    ("陽葵", "ヒマリ"),
    ("凛", "リン"),
    ("結菜", "ユイナ"),
    ("芽依", "メイ"),
    ("恵子", "ケイコ"),
    ("裕子", "ユウコ"),
    ("洋子", "ヨウコ"),
    ("和子", "カズコ"),
];

/// The routine childhood schedule as (vaccine, dose, usual age in months), for histories.
const CHILD_VACCINES: [(&str, u8, u32); 18] = [
    ("vaccine-hepb", 1, 2),
    ("vaccine-hepb", 2, 3),
    ("vaccine-hepb", 3, 8),
    ("vaccine-5in1", 1, 2),
    ("vaccine-5in1", 2, 3),
    ("vaccine-5in1", 3, 4),
    ("vaccine-5in1", 4, 13),
    ("vaccine-pcv", 1, 2),
    ("vaccine-pcv", 2, 3),
    ("vaccine-pcv", 3, 4),
    ("vaccine-pcv", 4, 13),
    ("vaccine-bcg", 1, 5),
    ("vaccine-mr", 1, 12),
    ("vaccine-varicella", 1, 12),
    ("vaccine-varicella", 2, 18),
    ("vaccine-mr", 2, 70),
    ("vaccine-je", 1, 36),
    ("vaccine-je", 2, 37),
];
/// Adult screenings as (kind, youngest age, women only, share who went in the last year).
const SCREENINGS: [(&str, u32, bool, f64); 6] = [
    ("screening-lung", 40, false, 0.25),
    ("screening-colon", 40, false, 0.25),
    ("screening-stomach", 50, false, 0.15),
    ("screening-breast", 40, true, 0.2),
    ("screening-cervical", 20, true, 0.2),
    ("specific-checkup", 40, false, 0.35),
];

/// The shares behind `enrollments.csv`. 国保 (国民健康保険) covers about 2割 of Japan's
/// population (MHLW, 国民健康保険実態調査), mostly the retired and the self-employed, and
/// close to half of its members are 65–74. The city has no occupations, so 国保 goes to
/// whole households, members under 20 included, for about 15 % of households (the
/// self-employed and those without an employer's insurance), and besides to 70 % of the
/// other residents aged 65–74 (retired from an employer's insurance): with the census
/// ages, 0.15 × 71 % (under 65) + (0.15 + 0.85 × 0.7) × 14 % (65–74) ≈ 21 % of residents.
/// From the 75th birthday everyone is in 後期高齢者医療 instead, and nobody in 国保.
const RETIRED_NATIONAL_INSURANCE: f64 = 0.7;
const SELF_EMPLOYED_HOUSEHOLDS: f64 = 0.15;
/// Care-need certification (要介護認定) of those 75 and over: about 15 % in all, fewer at
/// 75–84 and more from 85. The national rate among them is higher; the city needs some of
/// every level, not the real share.
const CARE_NEED_75_TO_84: f64 = 0.08;
const CARE_NEED_FROM_85: f64 = 0.3;
/// The levels of care need with their rough weights among those certified, as the
/// 介護保険事業状況報告 counts them (要介護1 the most common, 要介護5 the least).
const CARE_NEED_LEVELS: [(&str, u32); 7] = [
    ("要支援1", 14),
    ("要支援2", 14),
    ("要介護1", 21),
    ("要介護2", 17),
    ("要介護3", 13),
    ("要介護4", 12),
    ("要介護5", 8),
];
/// Holders of a 身体障害者手帳, about 4 % of Japan's population and most of them 65 or
/// older, by age (under 18, 18–64, 65 and over), and the grades 1級 to 6級 with their
/// rough weights (grades 1 and 4 the most common). A disability is 要配慮個人情報 under
/// the Act on the Protection of Personal Information, so the export marks these rows as
/// readable only with the resident's consent.
const DISABILITY_BY_AGE: [f64; 3] = [0.003, 0.018, 0.09];
const DISABILITY_GRADES: [u32; 6] = [26, 14, 17, 27, 5, 6];
/// Mixed into the seed of the data kinds' own random numbers, so that adding them left the
/// other files of a seed as they were.
const DATA_KINDS_STREAM: u64 = 0x6461_7461_6b69_6e64;

/// A resident who links their LINE account, as the demo registers them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub resident_id: String,
    pub line_user_id: String,
    pub tax_consent: bool,
}

/// What [`generate`] wrote.
#[derive(Debug)]
pub struct GeneratedCity {
    pub residents: usize,
    pub households: usize,
    pub departed: usize,
    pub registrations: Vec<Registration>,
}

/// Which text encoding the files are written in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FileEncoding {
    Utf8,
    ShiftJis,
}

/// The layout of the resident file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Layout {
    /// `residents.csv` with our own eleven columns.
    Own,
    /// `resident_table.csv` with the 122 columns of the national standard (標準準拠システム)
    /// in the order of 芽室町's public sample, older history rows included, and
    /// `import.toml` naming the wards behind its 地区管理コード1.
    Standard,
}

/// How [`generate`] writes the export: the text encoding of every CSV file and the layout
/// of the resident file. The other files are the same in both layouts, but for
/// `enrollments.csv`, whose 国保 and 後期高齢 rows the standard layout has as columns of
/// the resident file instead.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExportFormat {
    pub encoding: FileEncoding,
    pub layout: Layout,
}

impl ExportFormat {
    pub fn own(encoding: FileEncoding) -> ExportFormat {
        ExportFormat { encoding, layout: Layout::Own }
    }

    pub fn standard(encoding: FileEncoding) -> ExportFormat {
        ExportFormat { encoding, layout: Layout::Standard }
    }
}

/// A LINE user id (`U` and 32 hex digits) that is the same for a resident every time.
pub fn line_user_id(resident_id: &str) -> String {
    // SHA-256 as the product hashes, written here so that this tool needs nothing of it.
    let digest: String =
        Sha256::digest(format!("line:{resident_id}").as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect();
    format!("U{}", &digest[..32])
}

/// Writes a city of about `size` living residents (whole households, so a few more at
/// most) into `directory` as residents.csv (resident_table.csv and import.toml in the
/// standard layout), tax.csv, receipts.csv, pregnancies.csv, immunizations.csv,
/// checkups.csv, enrollments.csv and attributes.csv. A seed gives the same residents,
/// households, birth days and insurance in both layouts.
pub fn generate(size: usize, seed: u64, today: Day, directory: &Path, format: ExportFormat) -> Result<GeneratedCity> {
    std::fs::create_dir_all(directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let mut files = Files::create(directory, format.layout, seed, today)?;
    let total: u32 = CENSUS_2020.iter().sum();
    let mut generator = Generator {
        random: StdRng::seed_from_u64(seed),
        kinds_random: StdRng::seed_from_u64(seed ^ DATA_KINDS_STREAM),
        today,
        quota: CENSUS_2020.map(|thousands| size as f64 * f64::from(thousands) / f64::from(total)),
        city: GeneratedCity { residents: 0, households: 0, departed: 0, registrations: Vec::new() },
        next_resident: 0,
    };
    while generator.city.residents < size {
        generator.household(&mut files)?;
    }
    files.finish(directory, format)?;
    Ok(generator.city)
}

/// The eight CSV writers, with the Japanese headers a municipal export has.
struct Files {
    residents: ResidentFile,
    tax: csv::Writer<BufWriter<File>>,
    receipts: csv::Writer<BufWriter<File>>,
    pregnancies: csv::Writer<BufWriter<File>>,
    immunizations: csv::Writer<BufWriter<File>>,
    checkups: csv::Writer<BufWriter<File>>,
    enrollments: csv::Writer<BufWriter<File>>,
    attributes: csv::Writer<BufWriter<File>>,
}

/// The resident file of the own layout.
const OWN_RESIDENTS: (&str, &[&str]) = (
    "residents.csv",
    &[
        "宛名番号",
        "世帯番号",
        "氏名",
        "氏名カナ",
        "生年月日",
        "性別",
        "続柄",
        "住所",
        "行政区",
        "住民となった日",
        "住民状態",
    ],
);

/// The files both layouts write.
const FILE_HEADERS: [(&str, &[&str]); 7] = [
    ("tax.csv", &["宛名番号", "課税年度", "合計所得金額", "課税区分"]),
    ("receipts.csv", &["宛名番号", "制度コード", "開始日", "終了日"]),
    ("pregnancies.csv", &["宛名番号", "交付日", "出産予定日"]),
    ("immunizations.csv", &["宛名番号", "ワクチン", "回数", "接種日"]),
    ("checkups.csv", &["宛名番号", "種別", "受診日", "回数"]),
    ("enrollments.csv", &["宛名番号", "種別", "等級", "開始日", "終了日", "要同意"]),
    ("attributes.csv", &["宛名番号", "項目", "値", "要同意"]),
];

/// The CSV files an export in `layout` has, the resident file first.
fn file_names(layout: Layout) -> impl Iterator<Item = &'static str> {
    let residents = match layout {
        Layout::Own => OWN_RESIDENTS.0,
        Layout::Standard => standard::FILE_NAME,
    };
    std::iter::once(residents).chain(FILE_HEADERS.iter().map(|(name, _)| *name))
}

/// Creates `name` in `directory` and writes its header.
fn create_csv(directory: &Path, name: &str, header: &[&str]) -> Result<csv::Writer<BufWriter<File>>> {
    let path = directory.join(name);
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
    writer.write_record(header)?;
    Ok(writer)
}

impl Files {
    fn create(directory: &Path, layout: Layout, seed: u64, today: Day) -> Result<Files> {
        let residents = match layout {
            Layout::Own => ResidentFile::Own(create_csv(directory, OWN_RESIDENTS.0, OWN_RESIDENTS.1)?),
            Layout::Standard => ResidentFile::Standard(standard::Writer::create(directory, seed, today)?),
        };
        let [tax, receipts, pregnancies, immunizations, checkups, enrollments, attributes] =
            FILE_HEADERS.map(|(name, header)| create_csv(directory, name, header));
        Ok(Files {
            residents,
            tax: tax?,
            receipts: receipts?,
            pregnancies: pregnancies?,
            immunizations: immunizations?,
            checkups: checkups?,
            enrollments: enrollments?,
            attributes: attributes?,
        })
    }

    fn finish(self, directory: &Path, format: ExportFormat) -> Result<()> {
        self.residents.finish(directory)?;
        for mut writer in [
            self.tax,
            self.receipts,
            self.pregnancies,
            self.immunizations,
            self.checkups,
            self.enrollments,
            self.attributes,
        ] {
            writer.flush()?;
        }
        if format.encoding == FileEncoding::ShiftJis {
            for name in file_names(format.layout) {
                let path = directory.join(name);
                let text = std::fs::read_to_string(&path)?;
                std::fs::write(&path, encoding_rs::SHIFT_JIS.encode(&text).0)?;
            }
        }
        Ok(())
    }
}

/// The resident file in either layout.
#[allow(clippy::large_enum_variant, reason = "there is one per export")]
enum ResidentFile {
    Own(csv::Writer<BufWriter<File>>),
    Standard(standard::Writer),
}

impl ResidentFile {
    fn write_household(&mut self, household: &Household, residents: &[Resident]) -> Result<()> {
        match self {
            ResidentFile::Own(writer) => write_own_residents(writer, household, residents),
            ResidentFile::Standard(writer) => writer.write_household(household, residents),
        }
    }

    /// Whether the resident file has columns for 国保 and 後期高齢, so that
    /// `enrollments.csv` leaves them out.
    fn has_insurance_columns(&self) -> bool {
        matches!(self, ResidentFile::Standard(_))
    }

    fn finish(self, directory: &Path) -> Result<()> {
        match self {
            ResidentFile::Own(mut writer) => Ok(writer.flush()?),
            ResidentFile::Standard(writer) => writer.finish(directory),
        }
    }
}

/// The rows of one household in `residents.csv`.
fn write_own_residents(
    writer: &mut csv::Writer<BufWriter<File>>,
    household: &Household,
    residents: &[Resident],
) -> Result<()> {
    let (surname, surname_kana) = household.surname;
    let address = household.address.own_text();
    for resident in residents {
        let (given, given_kana) = resident.given;
        writer.write_record([
            resident.id.as_str(),
            &household.id,
            &format!("{surname} {given}"),
            &format!("{surname_kana} {given_kana}"),
            &resident.birth.to_string(),
            if resident.member.sex == 1 { "1" } else { "2" },
            relationship(&resident.member).map_or("その他", |(_, name)| name),
            &address,
            WARDS[household.address.ward].name,
            &resident.since.to_string(),
            resident.status.name(),
        ])?;
    }
    Ok(())
}

/// The 続柄 of `member` as the standard layout codes it and both layouts name it; `None`
/// for `Other`, whom the standard layout tells apart further (兄, 縁故者, 同居人 …) and
/// the own layout calls その他.
fn relationship(member: &Member) -> Option<(&'static str, &'static str)> {
    Some(match member.relationship {
        Relationship::Head => ("02", "世帯主"),
        Relationship::Spouse if member.sex == 1 => ("11", "夫"),
        Relationship::Spouse => ("12", "妻"),
        Relationship::Child => ("20", "子"),
        Relationship::Parent if member.sex == 1 => ("51", "父"),
        Relationship::Parent => ("52", "母"),
        Relationship::Other => return None,
    })
}

/// A home in the city: a ward of `WARDS`, a town of `TOWNS`, its 丁目 and the 番地 and 号.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Address {
    ward: usize,
    town: usize,
    chome: u32,
    block: u32,
    number: u32,
}

impl Address {
    fn draw(random: &mut StdRng) -> Address {
        let ward_roll = random.random_range(0..100);
        let mut cumulative = 0;
        // The weights add up to 97; the rolls above them fall to the first ward.
        let ward = WARDS
            .iter()
            .position(|ward| {
                cumulative += ward.weight;
                ward_roll < cumulative
            })
            .unwrap_or(0);
        Address {
            ward,
            town: random.random_range(0..TOWNS.len()),
            chome: random.random_range(1..6),
            block: random.random_range(1..30),
            number: random.random_range(1..20),
        }
    }

    /// The address as the own layout's 住所 writes it.
    fn own_text(&self) -> String {
        let Address { ward, town, chome, block, number } = *self;
        format!("千葉市{}{}{chome}丁目{block}-{number}", WARDS[ward].name, TOWNS[town])
    }
}

/// A household as the resident file writes it.
struct Household {
    id: String,
    surname: (&'static str, &'static str),
    address: Address,
    /// When its head began to receive the child allowance (児童手当), for a household with
    /// children under 18.
    child_allowance_since: Option<Day>,
}

/// A resident as the resident file writes it.
struct Resident {
    id: String,
    member: Member,
    given: (&'static str, &'static str),
    birth: Day,
    /// 住民となった日.
    since: Day,
    status: Status,
    /// Only for the living: the departed have lost it.
    insurance: Option<Insurance>,
}

/// 住民状態.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Living,
    MovedOut,
    Died,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Living => "住民",
            Status::MovedOut => "転出",
            Status::Died => "死亡",
        }
    }
}

/// The public health insurance a resident is in today, and since when.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Insurance {
    /// 国保.
    National(Day),
    /// 後期高齢.
    LateElderly(Day),
}

/// One member of a household being generated.
#[derive(Clone, Copy)]
struct Member {
    age: u32,
    sex: u8,
    relationship: Relationship,
}

struct Generator {
    random: StdRng,
    /// For `enrollments.csv` and `attributes.csv` alone.
    kinds_random: StdRng,
    today: Day,
    /// How many more residents each census age band still wants.
    quota: [f64; 18],
    city: GeneratedCity,
    next_resident: u64,
}

/// The five-year age band of `age` as `CENSUS_2020` counts it (the last is 85 and over).
pub fn band_of(age: u32) -> usize {
    (age / 5).min(17) as usize
}

impl Generator {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.random.random_range(0..items.len())]
    }

    /// An age in `low..=high`, drawn so that the city follows the census pyramid: each
    /// band is weighted by how many residents it still wants.
    fn age_in(&mut self, low: u32, high: u32) -> u32 {
        let (low, high) = (low.min(OLDEST), high.clamp(low.min(OLDEST), OLDEST));
        let bands: Vec<(usize, f64)> = (band_of(low)..=band_of(high))
            .map(|band| {
                let (start, end) = (band as u32 * 5, if band == 17 { OLDEST } else { band as u32 * 5 + 4 });
                let overlap = f64::from(end.min(high) + 1 - start.max(low)) / f64::from(end + 1 - start);
                (band, self.quota[band].max(0.0) * overlap + 0.01)
            })
            .collect();
        let total: f64 = bands.iter().map(|(_, weight)| weight).sum();
        let mut roll = self.random.random_range(0.0..total);
        let band = bands.iter().find(|(_, weight)| {
            roll -= weight;
            roll < 0.0
        });
        let band = band.map_or(bands[bands.len() - 1].0, |(band, _)| *band);
        self.quota[band] -= 1.0;
        let start = (band as u32 * 5).max(low);
        let end =
            if band == 17 { high.min(85 + self.random.random_range(0..=14)) } else { (band as u32 * 5 + 4).min(high) };
        self.random.random_range(start..=end.max(start))
    }

    /// A birth day for someone who is `age` today.
    fn birth_day(&mut self, age: u32) -> Day {
        let latest = self.today.add_months_clamped(-12 * age as i32);
        latest.add_days(-self.random.random_range(0..365))
    }

    fn sex(&mut self) -> u8 {
        if self.random.random_bool(0.51) { 1 } else { 2 }
    }

    /// A log-normal amount of yen around `median`.
    fn income(&mut self, median: f64) -> i64 {
        let (first, second): (f64, f64) =
            (self.random.random_range(f64::EPSILON..1.0), self.random.random_range(0.0..1.0));
        let normal = (-2.0 * first.ln()).sqrt() * (2.0 * std::f64::consts::PI * second).cos();
        (median * (0.6 * normal).exp()).round() as i64 / 1000 * 1000
    }

    /// Children of a household: the youngest in `youngest`, siblings a few years apart.
    fn children(&mut self, youngest: (u32, u32), count: u32) -> Vec<Member> {
        let first = self.age_in(youngest.0, youngest.1);
        let mut ages = vec![first];
        for _ in 1..count {
            let previous = ages[ages.len() - 1];
            ages.push(self.age_in(previous + 1, previous + 6));
        }
        ages.into_iter().map(|age| Member { age, sex: self.sex(), relationship: Relationship::Child }).collect()
    }

    /// A mother's age for children up to `oldest`, and a father's near it.
    fn parents_of(&mut self, youngest: u32, oldest: u32) -> (u32, u32) {
        let mother = self.age_in((oldest + 20).max(youngest + 20), (youngest + 44).max(oldest + 20));
        let father = self.age_in(mother.saturating_sub(2).max(20), mother + 5);
        (mother, father)
    }

    fn household(&mut self, files: &mut Files) -> Result<()> {
        let kind = self.random.random_range(0..100);
        let mut members: Vec<Member> = Vec::new();
        let mut single_parent = false;
        match kind {
            // One person living alone.
            0..38 => {
                members.push(Member { age: self.age_in(18, OLDEST), sex: self.sex(), relationship: Relationship::Head })
            }
            // A couple.
            38..58 => {
                let age = self.age_in(23, OLDEST);
                members.push(Member { age, sex: 1, relationship: Relationship::Head });
                members.push(Member {
                    age: self.age_in(age.saturating_sub(5).max(20), age + 2),
                    sex: 2,
                    relationship: Relationship::Spouse,
                });
            }
            // Parents, or in about 6.5 % of these households one parent, with children under 18.
            58..76 => {
                let count = match self.random.random_range(0..100) {
                    0..40 => 1,
                    40..85 => 2,
                    _ => 3,
                };
                let children = self.children((0, 17), count);
                let (youngest, oldest) = (children[0].age, children[children.len() - 1].age);
                let (mother, father) = self.parents_of(youngest, oldest);
                single_parent = self.random.random_bool(0.065);
                if single_parent {
                    let (age, sex) = if self.random.random_bool(0.88) { (mother, 2) } else { (father, 1) };
                    members.push(Member { age, sex, relationship: Relationship::Head });
                } else {
                    members.push(Member { age: father, sex: 1, relationship: Relationship::Head });
                    members.push(Member { age: mother, sex: 2, relationship: Relationship::Spouse });
                }
                members.extend(children);
            }
            // A couple with grown-up children.
            76..85 => {
                let count = self.random.random_range(1..=2);
                let children = self.children((18, 50), count);
                let (youngest, oldest) = (children[0].age, children[children.len() - 1].age);
                let (mother, father) = self.parents_of(youngest, oldest);
                members.push(Member { age: father, sex: 1, relationship: Relationship::Head });
                members.push(Member { age: mother, sex: 2, relationship: Relationship::Spouse });
                members.extend(children);
            }
            // An older parent with a grown-up child.
            85..90 => {
                let child = self.age_in(20, 70);
                members.push(Member {
                    age: self.age_in(child + 22, child + 40),
                    sex: 2,
                    relationship: Relationship::Head,
                });
                members.push(Member { age: child, sex: self.sex(), relationship: Relationship::Child });
            }
            // Three generations.
            90..97 => {
                let count = self.random.random_range(0..=1);
                let children = if count > 0 { self.children((0, 17), count) } else { Vec::new() };
                let age = self.age_in(35, 60);
                members.push(Member { age, sex: 1, relationship: Relationship::Head });
                members.push(Member {
                    age: self.age_in(age.saturating_sub(4), age + 2),
                    sex: 2,
                    relationship: Relationship::Spouse,
                });
                members.push(Member {
                    age: self.age_in(age + 22, age + 40),
                    sex: 2,
                    relationship: Relationship::Parent,
                });
                members.extend(children);
            }
            // Relatives or friends sharing a home.
            _ => {
                members.push(Member { age: self.age_in(20, 90), sex: self.sex(), relationship: Relationship::Head });
                members.push(Member { age: self.age_in(20, 90), sex: self.sex(), relationship: Relationship::Other });
            }
        }
        self.write_household(files, members, single_parent)
    }

    fn write_household(&mut self, files: &mut Files, members: Vec<Member>, single_parent: bool) -> Result<()> {
        self.city.households += 1;
        let household_id = format!("H{:09}", self.city.households);
        let surname = *self.pick(&SURNAMES);
        let address = Address::draw(&mut self.random);
        let has_minors = members.iter().any(|member| member.relationship == Relationship::Child && member.age < 18);
        let dependants = members
            .iter()
            .filter(|member| member.relationship != Relationship::Head && (member.age < 18 || member.age >= 70))
            .count();
        // One household in a hundred moved away or died out since the last export; its
        // records stay in the export with a status.
        let gone = self.random.random_bool(0.01) && members.len() == 1;
        // Since when a self-employed household is in 国保, for its members under 65.
        let self_employed_since = self
            .kinds_random
            .random_bool(SELF_EMPLOYED_HOUSEHOLDS)
            .then(|| self.today.add_days(-self.kinds_random.random_range(0..25 * 365)));
        let mut residents = Vec::with_capacity(members.len());
        let mut head_id = String::new();
        let mut mother: Option<String> = None;
        let mut babies: Vec<Day> = Vec::new();
        for member in &members {
            self.next_resident += 1;
            let resident_id = format!("{:010}", 1_000_000_000 + self.next_resident);
            let given = *if member.sex == 1 { self.pick(&MALE_NAMES) } else { self.pick(&FEMALE_NAMES) };
            let birth = self.birth_day(member.age);
            let status = match gone {
                true if member.age >= 75 => Status::Died,
                true => Status::MovedOut,
                false => Status::Living,
            };
            let since = birth
                .max(self.today.add_days(-self.random.random_range(0..30 * 365)))
                .max(Day::from_ymd(1980, 4, 1).unwrap_or(birth));
            let mut resident =
                Resident { id: resident_id, member: *member, given, birth, since, status, insurance: None };
            if gone {
                self.city.departed += 1;
                residents.push(resident);
                continue;
            }
            self.city.residents += 1;
            if member.relationship == Relationship::Head {
                head_id = resident.id.clone();
            }
            if member.sex == 2 && matches!(member.relationship, Relationship::Head | Relationship::Spouse) {
                mother = Some(resident.id.clone());
            }
            if member.relationship == Relationship::Child && member.age == 0 {
                babies.push(birth);
            }
            self.histories(files, &resident.id, member, birth, single_parent, dependants)?;
            resident.insurance = self.data_kinds(files, &resident.id, member, birth, self_employed_since)?;
            // Parents of children register most; other adults now and then.
            let registers = match member.relationship {
                Relationship::Head | Relationship::Spouse if has_minors => self.random.random_bool(0.45),
                _ if member.age < 18 => false,
                _ => self.random.random_bool(0.08),
            };
            if registers {
                let tax_consent = self.random.random_bool(0.6);
                self.city.registrations.push(Registration {
                    line_user_id: line_user_id(&resident.id),
                    resident_id: resident.id.clone(),
                    tax_consent,
                });
            }
            residents.push(resident);
        }
        let child_allowance_since = if has_minors && !gone {
            Some(self.household_benefits(files, &head_id, &members, single_parent)?)
        } else {
            None
        };
        // The pregnancy each baby of the last year came from, as the 母子健康手帳 records it.
        if let Some(mother) = mother {
            for birth in babies {
                let due = birth.add_days(self.random.random_range(-14..=10));
                let notified = due.add_days(-280 + self.random.random_range(56..=84));
                files.pregnancies.write_record([mother.as_str(), &notified.to_string(), &due.to_string()])?;
            }
        }
        let household = Household { id: household_id, surname, address, child_allowance_since };
        files.residents.write_household(&household, &residents)
    }

    /// Tax, pregnancy, vaccination and checkup records of one resident.
    fn histories(
        &mut self,
        files: &mut Files,
        resident_id: &str,
        member: &Member,
        birth: Day,
        single_parent: bool,
        dependants: usize,
    ) -> Result<()> {
        let today = self.today;
        let fiscal_year = today.fiscal_year().to_string();
        if member.age >= 18 {
            let median = match member.age {
                18..=22 => 300_000.0,
                23..=64 if single_parent && member.relationship == Relationship::Head => 1_900_000.0,
                23..=64 if member.sex == 1 => 3_200_000.0,
                23..=64 => 1_600_000.0,
                _ => 1_500_000.0,
            };
            let income = if self.random.random_bool(0.08) { 0 } else { self.income(median) };
            let exempt_limit = if dependants == 0 { 450_000 } else { 350_000 * (1 + dependants as i64) + 310_000 };
            let taxable = if income <= exempt_limit {
                "非課税"
            } else if income <= exempt_limit + 250_000 {
                "均等割のみ"
            } else {
                "課税"
            };
            files.tax.write_record([resident_id, &fiscal_year, &income.to_string(), taxable])?;
        }
        // About 4 % of women of 20–44 are pregnant at any time, which gives about 6 births
        // a year per 1,000 residents.
        if member.sex == 2
            && (20..45).contains(&member.age)
            && member.relationship != Relationship::Child
            && self.random.random_bool(0.045)
        {
            let due = today.add_days(self.random.random_range(0..=224));
            let notified = due.add_days(-280 + self.random.random_range(56..=84)).min(today);
            files.pregnancies.write_record([resident_id, &notified.to_string(), &due.to_string()])?;
            if due.add_days(-140) <= today && self.random.random_bool(0.4) {
                files.checkups.write_record([resident_id, "maternal-dental", &due.add_days(-140).to_string(), ""])?;
            }
        }
        if member.age < 13 {
            for (vaccine, dose, months) in CHILD_VACCINES {
                let given = birth.add_months_clamped(months as i32).add_days(self.random.random_range(0..30));
                if given <= today && self.random.random_bool(0.92) {
                    files.immunizations.write_record([resident_id, vaccine, &dose.to_string(), &given.to_string()])?;
                }
            }
            for (kind, visit, months) in [
                ("infant-checkup", "1", 4),
                ("infant-checkup", "2", 10),
                ("checkup-18m", "", 19),
                ("checkup-3y", "", 40),
            ] {
                let seen = birth.add_months_clamped(months).add_days(self.random.random_range(0..30));
                if seen <= today && self.random.random_bool(0.94) {
                    files.checkups.write_record([resident_id, kind, &seen.to_string(), visit])?;
                }
            }
        }
        if member.age >= 65 && self.random.random_bool(0.4) {
            let given = birth.age_reached(65).add_days(self.random.random_range(0..365)).min(today);
            files.immunizations.write_record([resident_id, "vaccine-pneumo-elderly", "1", &given.to_string()])?;
        }
        for (kind, youngest, women_only, share) in SCREENINGS {
            let eligible = member.age >= youngest
                && (!women_only || member.sex == 2)
                && (kind != "specific-checkup" || member.age < 75);
            if eligible && self.random.random_bool(share) {
                let seen = today.add_days(-self.random.random_range(0..365));
                files.checkups.write_record([resident_id, kind, &seen.to_string(), ""])?;
            }
        }
        Ok(())
    }

    /// The health insurance, care-need certification and disability certificate of one
    /// resident, with the shares and reasons given at `RETIRED_NATIONAL_INSURANCE` and the
    /// constants after it. The insurance is returned for the resident file as well.
    fn data_kinds(
        &mut self,
        files: &mut Files,
        resident_id: &str,
        member: &Member,
        birth: Day,
        self_employed_since: Option<Day>,
    ) -> Result<Option<Insurance>> {
        let today = self.today;
        let random = &mut self.kinds_random;
        // The draws keep their order of old (国保's for those under 75, then the care
        // need's for those over), so that a seed's files stayed as they were.
        let insurance = if member.age >= 75 {
            Some(Insurance::LateElderly(birth.add_months_clamped(75 * 12)))
        } else {
            let national_insurance_since = match self_employed_since {
                Some(since) => Some(since.max(birth)),
                None if member.age >= 65 && random.random_bool(RETIRED_NATIONAL_INSURANCE) => {
                    Some(birth.add_months_clamped(12 * random.random_range(60..=65)))
                }
                None => None,
            };
            national_insurance_since.map(Insurance::National)
        };
        if let Some(insurance) = insurance
            && !files.residents.has_insurance_columns()
        {
            let (kind, since) = match insurance {
                Insurance::National(since) => ("国保", since),
                Insurance::LateElderly(since) => ("後期高齢", since),
            };
            files.enrollments.write_record([resident_id, kind, "", &since.to_string(), "", ""])?;
        }
        if member.age >= 75 {
            let care_need = if member.age >= 85 { CARE_NEED_FROM_85 } else { CARE_NEED_75_TO_84 };
            if random.random_bool(care_need) {
                let level = CARE_NEED_LEVELS[weighted_index(random, &CARE_NEED_LEVELS.map(|(_, weight)| weight))].0;
                // A certification holds for 12 to 36 months (認定有効期間) and is renewed;
                // the export has the one in force today.
                let months = 12 * random.random_range(1..=3);
                let start = today.add_months_clamped(-months).add_days(random.random_range(1..=365));
                let start = start.min(today);
                let end = start.add_months_clamped(months).add_days(-1);
                files.enrollments.write_record([
                    resident_id,
                    "要介護",
                    level,
                    &start.to_string(),
                    &end.to_string(),
                    "",
                ])?;
            }
        }
        let disability = DISABILITY_BY_AGE[match member.age {
            0..18 => 0,
            18..65 => 1,
            _ => 2,
        }];
        if random.random_bool(disability) {
            let grade = weighted_index(random, &DISABILITY_GRADES) + 1;
            files.attributes.write_record([resident_id, "身体障害者手帳の等級", &grade.to_string(), "1"])?;
        }
        Ok(insurance)
    }

    /// Benefits the head of a household with children already receives; returns when the
    /// child allowance began.
    fn household_benefits(
        &mut self,
        files: &mut Files,
        head_id: &str,
        members: &[Member],
        single_parent: bool,
    ) -> Result<Day> {
        let oldest_minor = members
            .iter()
            .filter(|member| member.relationship == Relationship::Child && member.age < 18)
            .map(|member| member.age)
            .max()
            .unwrap_or(0);
        let since = self
            .today
            .add_months_clamped(-12 * oldest_minor as i32)
            .add_days(self.random.random_range(15..60))
            .min(self.today);
        if self.random.random_bool(0.95) {
            files.receipts.write_record([head_id, "child-allowance", &since.to_string(), ""])?;
        }
        if single_parent {
            for program in ["child-rearing-allowance", "single-parent-medical"] {
                if self.random.random_bool(0.6) {
                    files.receipts.write_record([head_id, program, &since.to_string(), ""])?;
                }
            }
        }
        Ok(since)
    }
}

/// An index into `weights`, drawn with those weights.
fn weighted_index(random: &mut StdRng, weights: &[u32]) -> usize {
    let mut roll = random.random_range(0..weights.iter().sum::<u32>());
    for (index, weight) in weights.iter().enumerate() {
        if roll < *weight {
            return index;
        }
        roll -= weight;
    }
    weights.len() - 1
}

/// Links the residents of `registrations` to their LINE accounts in oshirase's database,
/// as if each had sent their registration number, `now` being the time recorded; those
/// who consented to the tax-based programs have consented then too.
pub fn insert_registrations(
    connection: &mut rusqlite::Connection,
    registrations: &[Registration],
    now: &str,
) -> Result<()> {
    let transaction = connection.transaction()?;
    {
        let mut insert = transaction.prepare(
            "INSERT OR IGNORE INTO registrations (resident_id, line_user_id, registered_at, tax_consent_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for registration in registrations {
            let consent = registration.tax_consent.then_some(now);
            insert.execute((&registration.resident_id, &registration.line_user_id, now, consent))?;
        }
    }
    transaction.commit()?;
    Ok(())
}

/// Writes an active snapshot of `residents` registered heads of household and, for each
/// `(program, distinct)`, an active version of that program and a notice due on day 0
/// for every resident: the first `distinct` residents' notices have deadlines of their
/// own, so their texts differ, and the rest share one text.
pub fn seed_due_notices(
    connection: &mut rusqlite::Connection,
    residents: usize,
    programs: &[(&str, usize)],
) -> Result<()> {
    let transaction = connection.transaction()?;
    transaction.execute(
        "INSERT INTO snapshots (id, imported_at, source, resident_count, active) VALUES (1, '', 'bench', ?1, 1)",
        [residents as i64],
    )?;
    for row in 0..residents {
        let resident_id = format!("R{row:07}");
        transaction.execute(
            "INSERT INTO residents (key, snapshot_id, resident_id, household_id, name, name_kana, birth_day, sex,
                 relationship, address, ward)
             VALUES (?1, 1, ?2, ?2, '', '', 3650, 1, ?3, '', '')",
            ((1i64 << 32) + row as i64, &resident_id, Relationship::Head.code()),
        )?;
        transaction.execute(
            "INSERT INTO registrations (resident_id, line_user_id, registered_at) VALUES (?1, ?2, '')",
            (&resident_id, format!("U{row:032x}")),
        )?;
    }
    for (version, (program, distinct)) in programs.iter().enumerate() {
        let manifest = serde_json::json!({
            "code": program, "name": "予防接種", "division": "", "contact": "健康課", "category": "Vaccination",
            "schedule": "0 0 9 * * *", "source_url": "", "fields": [],
            "occasions": [{
                "key": "first", "title": "1回目", "template": "{program}は{deadline}までです。{contact}"
            }],
        });
        let version = version as i64 + 1;
        transaction.execute(
            "INSERT INTO plugin_versions (id, program, sha256, wasm, manifest, published_by, published_at)
             VALUES (?1, ?2, ?1, x'', ?3, 'bench', '')",
            (version, program, manifest.to_string()),
        )?;
        transaction.execute("INSERT INTO programs (code, active_version) VALUES (?1, ?2)", (program, version))?;
        transaction.execute(
            "INSERT INTO runs (id, program, version_id, snapshot_id, run_on, started_at, outcome)
             VALUES (?1, ?2, ?1, 1, 0, '', 'succeeded')",
            (version, program),
        )?;
        for row in 0..residents {
            let expires_on = 20_000 + if row < *distinct { row as i32 + 1 } else { 0 };
            transaction.execute(
                "INSERT INTO notices (program, resident_id, occasion, send_on, expires_on, run_id)
                 VALUES (?1, ?2, 'first', 0, ?3, ?4)",
                (program, format!("R{row:07}"), expires_on, version),
            )?;
        }
    }
    transaction.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of its own under the system's temporary one, removed when dropped.
    pub(crate) struct TemporaryDirectory(pub(crate) std::path::PathBuf);

    impl TemporaryDirectory {
        pub(crate) fn new() -> TemporaryDirectory {
            TemporaryDirectory(std::env::temp_dir().join(format!("oshirase-synth-{}", uuid::Uuid::new_v4())))
        }
    }

    impl Drop for TemporaryDirectory {
        fn drop(&mut self) {
            // A test that failed before writing left nothing to remove.
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_same_seed_writes_the_same_files() {
        let today = Day::parse_iso("2026-11-21").unwrap();
        for layout in [Layout::Own, Layout::Standard] {
            let format = ExportFormat { encoding: FileEncoding::Utf8, layout };
            let (first, second) = (TemporaryDirectory::new(), TemporaryDirectory::new());
            generate(2000, 7, today, &first.0, format).unwrap();
            generate(2000, 7, today, &second.0, format).unwrap();
            for name in file_names(layout) {
                assert_eq!(
                    std::fs::read(first.0.join(name)).unwrap(),
                    std::fs::read(second.0.join(name)).unwrap(),
                    "{name} differs in {layout:?}"
                );
            }
        }
    }
}

//! A synthetic city for the demo and the tests: households shaped like Japan's (singles,
//! couples, families with children, single parents, three generations), ages from a
//! population pyramid, Chiba's six wards, and a share of residents registered with LINE.
//! The same seed and date always give the same city.

use oshirase_sdk::{Day, Relationship};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::snapshot::Resident;

/// Chiba city's wards with rough population weights.
const WARDS: [(&str, u32); 6] = [("中央区", 21), ("花見川区", 17), ("稲毛区", 16), ("若葉区", 15), ("緑区", 13), ("美浜区", 15)];
const TOWNS: [&str; 8] = ["本町", "新町", "港町", "旭町", "栄町", "緑町", "幸町", "若松町"];
const SURNAMES: [(&str, &str); 16] = [
    ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"), ("伊藤", "イトウ"), ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"), ("中村", "ナカムラ"), ("小林", "コバヤシ"), ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山田", "ヤマダ"),
    ("佐々木", "ササキ"), ("山口", "ヤマグチ"), ("松本", "マツモト"), ("井上", "イノウエ"),
];
const MALE_NAMES: [(&str, &str); 8] = [("蓮", "レン"), ("大翔", "ヒロト"), ("悠真", "ユウマ"), ("湊", "ミナト"), ("健一", "ケンイチ"), ("誠", "マコト"), ("浩", "ヒロシ"), ("茂", "シゲル")];
const FEMALE_NAMES: [(&str, &str); 8] = [("陽葵", "ヒマリ"), ("凛", "リン"), ("結菜", "ユイナ"), ("芽依", "メイ"), ("恵子", "ケイコ"), ("裕子", "ユウコ"), ("洋子", "ヨウコ"), ("和子", "カズコ")];
/// Adults by age band (20–24, 25–29, … 85–89, 90–99), weights from Japan's 2025 pyramid.
const ADULT_BANDS: [(u32, u32, u32); 15] = [
    (20, 24, 50), (25, 29, 50), (30, 34, 50), (35, 39, 56), (40, 44, 62), (45, 49, 75), (50, 54, 76), (55, 59, 66),
    (60, 64, 60), (65, 69, 60), (70, 74, 75), (75, 79, 58), (80, 84, 46), (85, 89, 30), (90, 99, 15),
];

/// A generated city: its residents and who among them registered with LINE.
pub struct City {
    pub residents: Vec<Resident>,
    /// (resident id, LINE user id).
    pub registrations: Vec<(String, String)>,
}

struct Generator {
    random: StdRng,
    today: Day,
    residents: Vec<Resident>,
    registrations: Vec<(String, String)>,
    next_resident: u64,
    next_household: u64,
}

/// Generates about `size` residents (whole households, so a few more at most).
pub fn generate(size: usize, seed: u64, today: Day) -> City {
    let mut generator = Generator { random: StdRng::seed_from_u64(seed), today, residents: Vec::new(), registrations: Vec::new(), next_resident: 0, next_household: 0 };
    while generator.residents.len() < size {
        generator.household();
    }
    City { residents: generator.residents, registrations: generator.registrations }
}

/// A LINE user id (`U` and 32 hex digits) that is the same for a resident every time.
pub fn line_user_id(resident_id: &str) -> String {
    let digest = crate::registry::sha256_hex(format!("line:{resident_id}").as_bytes());
    format!("U{}", &digest[..32])
}

impl Generator {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.random.random_range(0..items.len())]
    }

    fn adult_age(&mut self, low: u32, high: u32) -> u32 {
        let bands: Vec<_> = ADULT_BANDS.iter().filter(|(start, end, _)| *end >= low && *start <= high).collect();
        let total: u32 = bands.iter().map(|(_, _, weight)| weight).sum();
        let mut roll = self.random.random_range(0..total);
        for (start, end, weight) in bands {
            if roll < *weight {
                return self.random.random_range((*start).max(low)..=(*end).min(high));
            }
            roll -= weight;
        }
        low
    }

    /// A birth day for someone who is `age` today.
    fn birth_day(&mut self, age: u32) -> Day {
        let latest = self.today.add_months_clamped(-12 * age as i32);
        latest.add_days(-self.random.random_range(0..365))
    }

    fn household(&mut self) {
        self.next_household += 1;
        let household = format!("H{:08}", self.next_household);
        let (surname, surname_kana) = *self.pick(&SURNAMES);
        let ward_roll = self.random.random_range(0..100);
        let mut cumulative = 0;
        let ward = WARDS.iter().find(|(_, weight)| {
            cumulative += weight;
            ward_roll < cumulative
        });
        let ward = ward.map_or(WARDS[0].0, |(name, _)| name);
        let address = format!("千葉市{ward}{}{}丁目{}-{}", self.pick(&TOWNS), self.random.random_range(1..6), self.random.random_range(1..30), self.random.random_range(1..20));
        let kind = self.random.random_range(0..100);
        let mut members: Vec<(u32, u8, Relationship)> = Vec::new(); // (age, sex, relationship)
        let head_sex = if self.random.random_bool(0.5) { 1 } else { 2 };
        match kind {
            0..38 => members.push((self.adult_age(20, 99), head_sex, Relationship::Head)),
            38..60 => {
                let age = self.adult_age(25, 95);
                members.push((age, 1, Relationship::Head));
                members.push((age.saturating_sub(self.random.random_range(0..5)).max(20), 2, Relationship::Spouse));
            }
            60..84 | 84..90 => {
                let single_parent = kind >= 84;
                let youngest = self.random.random_range(0..18);
                let children = self.random.random_range(1..=3u32);
                let mut ages = vec![youngest];
                for _ in 1..children {
                    let older = ages.last().unwrap() + self.random.random_range(1..5);
                    if older < 18 {
                        ages.push(older);
                    }
                }
                let mother = (ages.last().unwrap() + self.random.random_range(25..38)).min(60);
                if single_parent {
                    members.push((mother, 2, Relationship::Head));
                } else {
                    members.push((mother + self.random.random_range(0..4), 1, Relationship::Head));
                    members.push((mother, 2, Relationship::Spouse));
                }
                for age in ages {
                    members.push((age, if self.random.random_bool(0.51) { 1 } else { 2 }, Relationship::Child));
                }
            }
            _ => {
                let age = self.adult_age(45, 65);
                members.push((age, 1, Relationship::Head));
                members.push((age.saturating_sub(2), 2, Relationship::Spouse));
                members.push(((age + self.random.random_range(25..32)).min(100), 2, Relationship::Parent));
            }
        }
        let has_children = members.iter().any(|(_, _, relationship)| *relationship == Relationship::Child);
        for (age, sex, relationship) in members {
            self.next_resident += 1;
            let resident_id = format!("{:010}", 1_000_000_000 + self.next_resident);
            let (given, given_kana) = *if sex == 1 { self.pick(&MALE_NAMES) } else { self.pick(&FEMALE_NAMES) };
            let birth_day = self.birth_day(age);
            // Parents of young children register most; other adults now and then.
            let registers = match relationship {
                Relationship::Head | Relationship::Spouse if has_children => self.random.random_bool(0.45),
                Relationship::Child => false,
                _ => self.random.random_bool(0.08),
            };
            if registers {
                self.registrations.push((resident_id.clone(), line_user_id(&resident_id)));
            }
            self.residents.push(Resident {
                resident_id,
                household_id: household.clone(),
                name: format!("{surname} {given}"),
                name_kana: format!("{surname_kana} {given_kana}"),
                birth_day,
                sex,
                relationship: relationship.code(),
                address: address.clone(),
                ward: ward.to_string(),
                resident_since: Some(birth_day.max(Day::from_ymd(2000, 4, 1).unwrap())),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_city_and_its_shape_is_plausible() {
        let today = Day::parse_iso("2026-11-21").unwrap();
        let city = generate(5000, 7, today);
        assert_eq!(city.residents, generate(5000, 7, today).residents);
        let size = city.residents.len() as f64;
        let infants = city.residents.iter().filter(|resident| resident.birth_day.age_on(today) == 0).count() as f64;
        let elderly = city.residents.iter().filter(|resident| resident.birth_day.age_on(today) >= 65).count() as f64;
        // Japan: about 0.6 % of residents are under one, about 29 % are 65 or older.
        assert!((0.003..0.015).contains(&(infants / size)), "infants {infants} of {size}");
        assert!((0.15..0.40).contains(&(elderly / size)), "elderly {elderly} of {size}");
        assert!(city.registrations.iter().all(|(_, user)| user.len() == 33 && user.starts_with('U')));
    }
}

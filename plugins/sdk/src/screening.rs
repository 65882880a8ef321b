//! The shape every recurring screening shares (がん検診, 特定健診): residents of an age
//! (counted on 年度末), perhaps of one sex, who have not been screened within the last N
//! 年度, are told once per 年度 when the city's screening season opens.
//!
//! The season follows Chiba city's がん検診: the 受診券シール are mailed in mid-May and the
//! screenings run until the end of February
//! (<https://www.city.chiba.jp/hokenfukushi/kenkofukushi/shien/24ganannai.html>, 検診期間
//! 令和5年5月16日〜令和6年2月29日). A screening recorded in the history counts from the
//! first day of its 年度, whatever kind of visit it was.

use crate::{Day, Field, Notice, Occasion, Population, Sex};

/// The month and day in the 年度 the screening season opens (mid-May, when the 受診券 arrive).
const SEASON_OPENS: (u32, u32) = (5, 16);

/// One screening program's rule.
pub struct Screening {
    /// The program code, which is also the checkup kind its visits are recorded under.
    pub code: &'static str,
    /// The youngest age on 年度末 (March 31) that qualifies, as the 指針 counts it.
    pub minimum_age_at_fiscal_year_end: u32,
    /// The birthday on which the person stops qualifying during the year (特定健診 ends on
    /// the 75th birthday, when 後期高齢者医療 starts), if any.
    pub ends_on_birthday: Option<u32>,
    /// Only this sex qualifies, if any.
    pub sex: Option<Sex>,
    /// 1 for every year; 2 for every other year (前年度に受診した方は対象外).
    pub every_fiscal_years: i32,
}

impl Screening {
    /// The data the rule reads.
    pub fn fields(&self) -> Vec<Field> {
        let mut fields = vec![Field::BirthDay, Field::Checkups];
        if self.sex.is_some() {
            fields.push(Field::Sex);
        }
        fields
    }

    /// One occasion per 年度, all with `template`.
    pub fn occasions(&self, title: &str, template: &str) -> Vec<Occasion> {
        Occasion::per_fiscal_year("", title, template)
    }

    /// The screening season of a 年度: from mid-May to the end of February.
    pub fn season(fiscal_year: i32) -> (Day, Day) {
        let (month, day) = SEASON_OPENS;
        let opens = Day::from_ymd(fiscal_year, month, day).expect("the season opens on a real date");
        let closes = Day::from_ymd(fiscal_year + 1, 3, 1).expect("March 1 exists").add_days(-1);
        (opens, closes)
    }

    /// Everyone who qualifies on `today` and has not been screened recently. Linear in the
    /// population and the checkup rows.
    pub fn evaluate(&self, today: Day, population: &Population) -> Result<Vec<Notice>, String> {
        let fiscal_year = today.fiscal_year();
        let (opens, season_closes) = Screening::season(fiscal_year);
        if today < opens || today > season_closes {
            return Ok(Vec::new());
        }
        let occasion = Occasion::fiscal_year_key("", fiscal_year)?;
        let history = population.checkups.by_person(population.size)?;
        let code = population.checkups.code(self.code);
        let counted_since = Day::fiscal_year_start(fiscal_year - self.every_fiscal_years + 1);
        let latest_birth =
            Day::latest_birth_for_age_at_fiscal_year_end(fiscal_year, self.minimum_age_at_fiscal_year_end);
        let mut notices = Vec::new();
        for person in population.people() {
            if self.sex.is_some_and(|sex| person.sex() != sex) {
                continue;
            }
            let birth = person.birth_day();
            if birth > latest_birth {
                continue;
            }
            // The last day before the birthday that ends it, else the end of the season.
            let closes = self.ends_on_birthday.map_or(season_closes, |age| season_closes.min(birth.age_reached(age)));
            if history.last_date(person.index(), code).is_some_and(|last| last >= counted_since) {
                continue;
            }
            notices.extend(Notice::for_open_window(&person, &occasion, opens, closes, today, || {
                format!(
                    "{fiscal_year}年度末に{}歳。{counted_since}以降の受診記録なし",
                    birth.age_at_fiscal_year_end(fiscal_year)
                )
            }));
        }
        Ok(notices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_season_runs_from_mid_may_to_the_end_of_february() {
        let seasons: Vec<String> = [2023, 2026]
            .iter()
            .map(|year| {
                let (opens, closes) = Screening::season(*year);
                format!("{opens}..{closes}")
            })
            .collect();
        assert_eq!(seasons, vec!["2023-05-16..2024-02-29", "2026-05-16..2027-02-28"]);
    }
}

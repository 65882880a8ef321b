//! The shape every recurring screening shares (がん検診, 特定健診): residents of an age
//! (counted on 年度末), perhaps of one sex, who have not been screened within the last N
//! 年度, are told once per 年度 when the city's screening season opens.
//!
//! The season follows Chiba city's がん検診: the 受診券シール are mailed in mid-May and the
//! screenings run until the end of February
//! (<https://www.city.chiba.jp/hokenfukushi/kenkofukushi/shien/24ganannai.html>, 検診期間
//! 令和5年5月16日〜令和6年2月29日). A screening recorded in the history counts from the
//! first day of its 年度, whatever kind of visit it was.

use crate::{
    Day, FISCAL_YEAR, Field, MonthDay, Notice, Occasion, Population, ReasonsByKey, Setting, SettingType, SettingValue,
    Settings, Sex,
};

/// The setting for the first day of the season, and its default: mid-May, when the 受診券
/// arrive.
pub const SEASON_OPENS: &str = "season-opens";
const SEASON_OPENS_DEFAULT: MonthDay = MonthDay { month: 5, day: 16 };
/// The setting for the last day of the season, and its default: the end of February.
pub const SEASON_CLOSES: &str = "season-closes";
const SEASON_CLOSES_DEFAULT: MonthDay = MonthDay { month: 2, day: 29 };

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
    /// Only members of this data kind on the day qualify (特定健診: the city's 国保), if any.
    pub members_of: Option<&'static str>,
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

    /// The data kinds the rule reads by name.
    pub fn kinds(&self) -> Vec<String> {
        self.members_of.iter().map(|kind| kind.to_string()).collect()
    }

    /// The season's first and last day, which staff set each year as the city decides.
    pub fn settings(&self) -> Vec<Setting> {
        vec![
            Setting::new(
                SEASON_OPENS,
                "検診期間の初日",
                "この日から対象の方にお知らせします。千葉市は受診券を5月中旬に送り、5月16日から受け付けます。",
                SettingType::MonthDay,
                SettingValue::MonthDay(SEASON_OPENS_DEFAULT),
            ),
            Setting::new(
                SEASON_CLOSES,
                "検診期間の末日",
                "お知らせの受診期限です。千葉市は2月末日まで(02-29 は平年には2月28日)。",
                SettingType::MonthDay,
                SettingValue::MonthDay(SEASON_CLOSES_DEFAULT),
            ),
        ]
    }

    /// The one occasion, sent once per 年度 (its instance).
    pub fn occasions(&self, title: &str, template: &str) -> Vec<Occasion> {
        vec![Occasion::new(FISCAL_YEAR, title, template)]
    }

    /// The screening season of a 年度 under `settings`: by default from mid-May to the end
    /// of February. Fails when the settings make it close before it opens.
    pub fn season(fiscal_year: i32, settings: &Settings) -> Result<(Day, Day), String> {
        let opens = settings.month_day(SEASON_OPENS).in_fiscal_year(fiscal_year);
        let closes = settings.month_day(SEASON_CLOSES).in_fiscal_year(fiscal_year);
        if closes < opens {
            return Err(format!("the season of {fiscal_year}年度 closes on {closes}, before it opens on {opens}"));
        }
        Ok((opens, closes))
    }

    /// Everyone who qualifies on `today` and has not been screened recently. Linear in the
    /// population and the checkup rows.
    pub fn evaluate(&self, today: Day, settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
        let fiscal_year = today.fiscal_year();
        let (opens, season_closes) = Screening::season(fiscal_year, settings)?;
        if today < opens || today > season_closes {
            return Ok(Vec::new());
        }
        let history = population.checkups.by_person(population.size)?;
        let membership =
            self.members_of.map(|kind| population.enrollments.membership(kind, population.size)).transpose()?;
        let code = population.checkups.code(self.code);
        let counted_since = Day::fiscal_year_start(fiscal_year - self.every_fiscal_years + 1);
        let latest_birth =
            Day::latest_birth_for_age_at_fiscal_year_end(fiscal_year, self.minimum_age_at_fiscal_year_end);
        // At most one notice a person. Capacity never written costs the plugin address space,
        // not memory; growing by doubling would copy the notices at every doubling, each time
        // into fresh pages.
        let mut notices = Vec::with_capacity(population.size as usize);
        let mut reasons = ReasonsByKey::new();
        for person in population.born_between(Day(i32::MIN), latest_birth) {
            if self.sex.is_some_and(|sex| person.sex() != sex) {
                continue;
            }
            let birth = person.birth_day();
            // The last day before the birthday that ends it, else the end of the season.
            let mut closes =
                self.ends_on_birthday.map_or(season_closes, |age| season_closes.min(birth.age_reached(age)));
            // A member is told until the membership ends, if it ends within the season.
            if let Some(membership) = &membership {
                match membership.on(person.index(), today) {
                    Some(period) => closes = closes.min(period.end),
                    None => continue,
                }
            }
            if history.last_date(person.index(), code).is_some_and(|last| last >= counted_since) {
                continue;
            }
            notices.extend(
                Notice::for_open_window(&person, FISCAL_YEAR, opens, closes, today, || {
                    let age = birth.age_at_fiscal_year_end(fiscal_year);
                    reasons.get(age, || format!("{fiscal_year}年度末に{age}歳。{counted_since}以降の受診記録なし"))
                })
                .map(|notice| notice.instance(fiscal_year)),
            );
        }
        Ok(notices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_season_runs_from_mid_may_to_the_end_of_february() {
        let screening = Screening {
            code: "screening-colon",
            minimum_age_at_fiscal_year_end: 40,
            ends_on_birthday: None,
            sex: None,
            every_fiscal_years: 1,
            members_of: None,
        };
        let defaults = Settings::defaults(&screening.settings());
        let seasons: Vec<String> = [2023, 2026]
            .iter()
            .map(|year| {
                let (opens, closes) = Screening::season(*year, &defaults).unwrap();
                format!("{opens}..{closes}")
            })
            .collect();
        assert_eq!(seasons, vec!["2023-05-16..2024-02-29", "2026-05-16..2027-02-28"]);
        let inverted = defaults.with(SEASON_CLOSES, SettingValue::MonthDay(MonthDay { month: 5, day: 1 }));
        assert_eq!(
            Screening::season(2026, &inverted),
            Err("the season of 2026年度 closes on 2026-05-01, before it opens on 2026-05-16".to_string())
        );
    }
}

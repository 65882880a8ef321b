//! Programs made from conditions, without code: the common shapes of the catalogue as
//! settings a division sets in the console — an age window (満年齢, 月齢, the age on 年度末
//! or the school grade), sex, ward, membership of a data kind such as 国保, no record of a
//! code within N 年度, once or once per 年度, and a season. The bundled `conditions`
//! component declares [`settings`] and evaluates [`Conditions::from_settings`]; each program
//! staff make from it is that component under its own code, name, wording and defaults.
//!
//! Every age is counted with the SDK's legal readings, the same functions the catalogue's
//! crates use: 満N歳 is reached on the day before the birthday (年齢計算ニ関スル法律), 「生後
//! N月に至るまで」 includes the day N months are reached, and the school grade follows 学校
//! 教育法 第17条 ([`Day::school_entry`]).

use crate::{
    Day, Field, MonthDay, Notice, Occasion, Population, ReasonsByKey, Setting, SettingType, SettingValue, Settings, Sex,
};

/// How the age window is counted (the setting `age-counted`).
pub const AGE_COUNTED: &str = "age-counted";
/// From the day 満N歳 is reached to the day before (to + 1) is reached: 「N歳の者」.
pub const YEARS_REACHED: &str = "満年齢";
/// From the day 生後N月 is reached to 「生後M月に至るまで」.
pub const MONTHS_REACHED: &str = "月齢";
/// Every 年度 in which the age on 年度末 (March 31) is within the window: 「N歳となる年度」.
pub const AGE_AT_FISCAL_YEAR_END: &str = "年度末の年齢";
/// Every 年度 in which the school grade (1–6 小学校, 7–9 中学校, 10–12 高校相当) is within
/// the window.
pub const SCHOOL_GRADE: &str = "学年";
pub const AGE_FROM: &str = "age-from";
pub const AGE_TO: &str = "age-to";
pub const SEX: &str = "sex";
pub const WARD: &str = "ward";
pub const MEMBER_OF: &str = "member-of";
pub const RECORD_CODE: &str = "record-code";
pub const RECORD_IN: &str = "record-in";
pub const RECORD_WITHIN: &str = "record-within";
pub const REPEAT: &str = "repeat";
pub const SEASON_OPENS: &str = "season-opens";
pub const SEASON_CLOSES: &str = "season-closes";

/// The choice meaning "any" for sex and data kind.
pub const ANY: &str = "指定なし";
const MALE: &str = "男性";
const FEMALE: &str = "女性";
const IMMUNIZATIONS: &str = "予防接種";
const CHECKUPS: &str = "健診・検診";
const EVERY_FISCAL_YEAR: &str = "毎年度";
const ONCE: &str = "一度だけ";
/// The data kinds a program made from conditions may require membership of: those the
/// 住民記録 standard's export carries as 資格 columns.
pub const KINDS: [&str; 3] = ["国保", "後期高齢", "介護"];
/// The one occasion of a program made from conditions.
pub const OCCASION: &str = "notice";

/// The data every program made from conditions reads.
pub fn fields() -> Vec<Field> {
    vec![Field::BirthDay, Field::Sex, Field::Ward, Field::Immunizations, Field::Checkups]
}

/// The data kinds it may read.
pub fn kinds() -> Vec<String> {
    KINDS.iter().map(|kind| kind.to_string()).collect()
}

/// The occasion, whose title and wording each program made from conditions replaces.
pub fn occasions() -> Vec<Occasion> {
    vec![Occasion::new(
        OCCASION,
        "お知らせ",
        "【{program}】対象の方へのお知らせです。{deadline}までにお手続きください。お問い合わせ: {contact}",
    )]
}

/// The conditions as settings, with defaults that make an annual screening of everyone
/// 40 or older on 年度末 who has no record of this year, told from mid-May to the end of
/// February (Chiba's がん検診 season).
pub fn settings() -> Vec<Setting> {
    let choice = |choices: &[&str]| SettingType::Choice(choices.iter().map(|choice| choice.to_string()).collect());
    let text = |text: &str| SettingValue::Text(text.to_owned());
    let picked = |choice: &str| SettingValue::Choice(choice.to_owned());
    let age = SettingType::Integer { minimum: 0, maximum: 1200 };
    let mut kinds = vec![ANY];
    kinds.extend(KINDS);
    vec![
        Setting::new(
            AGE_COUNTED,
            "年齢の数え方",
            "満年齢: 満N歳に達した日(誕生日の前日)から満M+1歳に達する日まで。月齢: 生後N月から生後M月に至るまで。\
             年度末の年齢: 3月31日の年齢がN〜Mの年度。学年: 小1を1、中1を7、高1を10として、N〜Mの学年の年度。",
            choice(&[YEARS_REACHED, MONTHS_REACHED, AGE_AT_FISCAL_YEAR_END, SCHOOL_GRADE]),
            picked(AGE_AT_FISCAL_YEAR_END),
        ),
        Setting::new(AGE_FROM, "対象の年齢(から)", "歳、か月、または学年。", age.clone(), SettingValue::Integer(40)),
        Setting::new(
            AGE_TO,
            "対象の年齢(まで)",
            "この年齢まで対象(含む)。上限がなければ 200。",
            age,
            SettingValue::Integer(200),
        ),
        Setting::new(SEX, "性別", "対象の性別。", choice(&[ANY, MALE, FEMALE]), picked(ANY)),
        Setting::new(WARD, "区", "この区の住民だけ。空欄なら全区。", SettingType::Text { max_chars: 20 }, text("")),
        Setting::new(
            MEMBER_OF,
            "加入・認定",
            "この資格がお知らせの日にある方だけ。資格が終わる日が期限より前なら、その日が期限。",
            choice(&kinds),
            picked(ANY),
        ),
        Setting::new(
            RECORD_CODE,
            "済みとみなす記録のコード",
            "この記録がある方には知らせません。空欄なら記録を見ません。",
            SettingType::Text { max_chars: 40 },
            text(""),
        ),
        Setting::new(RECORD_IN, "記録の種類", "記録を探す台帳。", choice(&[IMMUNIZATIONS, CHECKUPS]), picked(CHECKUPS)),
        Setting::new(
            RECORD_WITHIN,
            "記録を見る年度数",
            "1なら今年度、2なら前年度から。0なら時期を問いません。",
            SettingType::Integer { minimum: 0, maximum: 10 },
            SettingValue::Integer(1),
        ),
        Setting::new(
            REPEAT,
            "お知らせの回数",
            "毎年度: 年度ごとに一度(期間は下の初日から末日まで)。一度だけ: 対象の期間に一度。",
            choice(&[EVERY_FISCAL_YEAR, ONCE]),
            picked(EVERY_FISCAL_YEAR),
        ),
        Setting::new(
            SEASON_OPENS,
            "期間の初日(毎年度)",
            "毎年度のお知らせはこの日から。",
            SettingType::MonthDay,
            SettingValue::MonthDay(MonthDay { month: 5, day: 16 }),
        ),
        Setting::new(
            SEASON_CLOSES,
            "期間の末日(毎年度)",
            "毎年度のお知らせの期限。02-29 は平年には2月28日。",
            SettingType::MonthDay,
            SettingValue::MonthDay(MonthDay { month: 2, day: 29 }),
        ),
    ]
}

/// How an age window is counted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AgeCounted {
    YearsReached,
    MonthsReached,
    AgeAtFiscalYearEnd,
    SchoolGrade,
}

/// Where the record that counts as done is looked for, and since when.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Done<'a> {
    pub code: &'a str,
    pub in_immunizations: bool,
    /// This 年度 and the `within_fiscal_years − 1` before it; 0 for a record at any time.
    pub within_fiscal_years: i32,
}

/// One program's conditions, read from its settings.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Conditions<'a> {
    pub counted: AgeCounted,
    pub from: u32,
    pub to: u32,
    pub sex: Option<Sex>,
    pub ward: Option<&'a str>,
    pub member_of: Option<&'a str>,
    pub done: Option<Done<'a>>,
    pub every_fiscal_year: bool,
    pub season: (MonthDay, MonthDay),
}

impl<'a> Conditions<'a> {
    /// The conditions `settings` hold (the host has checked each value against its type).
    pub fn from_settings(settings: &'a Settings) -> Result<Conditions<'a>, String> {
        let counted = match settings.text(AGE_COUNTED) {
            YEARS_REACHED => AgeCounted::YearsReached,
            MONTHS_REACHED => AgeCounted::MonthsReached,
            AGE_AT_FISCAL_YEAR_END => AgeCounted::AgeAtFiscalYearEnd,
            _ => AgeCounted::SchoolGrade,
        };
        let (from, to) = (settings.integer(AGE_FROM) as u32, settings.integer(AGE_TO) as u32);
        if to < from {
            return Err(format!("the age window ends at {to}, before it starts at {from}"));
        }
        let named = |name: &str| Some(settings.text(name)).filter(|text| !text.is_empty() && *text != ANY);
        let code = named(RECORD_CODE);
        Ok(Conditions {
            counted,
            from,
            to,
            sex: named(SEX).map(|sex| if sex == MALE { Sex::Male } else { Sex::Female }),
            ward: named(WARD),
            member_of: named(MEMBER_OF),
            done: code.map(|code| Done {
                code,
                in_immunizations: settings.text(RECORD_IN) == IMMUNIZATIONS,
                within_fiscal_years: settings.integer(RECORD_WITHIN) as i32,
            }),
            every_fiscal_year: settings.text(REPEAT) == EVERY_FISCAL_YEAR,
            season: (settings.month_day(SEASON_OPENS), settings.month_day(SEASON_CLOSES)),
        })
    }

    /// The first and last day of the age window of someone born on `birth`.
    pub fn age_window(&self, birth: Day) -> (Day, Day) {
        let (from, to) = (self.from, self.to);
        // The 年度 in which the age on 年度末 is N, or the school grade is N.
        let fiscal_years = |first_of_zero: i32| {
            (Day::fiscal_year_start(first_of_zero + from as i32), Day::fiscal_year_end(first_of_zero + to as i32))
        };
        match self.counted {
            AgeCounted::YearsReached => (birth.age_reached(from), birth.last_day_under_age(to + 1)),
            AgeCounted::MonthsReached => (birth.months_reached(from), birth.last_day_up_to_months(to)),
            // The age on 年度末 of 年度 Y is Y minus the 年度 of the day before the birth.
            AgeCounted::AgeAtFiscalYearEnd => fiscal_years(birth.add_days(-1).fiscal_year()),
            AgeCounted::SchoolGrade => fiscal_years(birth.school_entry().fiscal_year() - 1),
        }
    }

    /// Everyone the conditions tell on `today`: once their window is open (every 年度: the
    /// part of it inside this 年度's season), until it closes or their membership ends.
    /// Linear in the population and its records.
    pub fn evaluate(&self, today: Day, population: &Population) -> Result<Vec<Notice>, String> {
        let fiscal_year = today.fiscal_year();
        let season = (self.season.0.in_fiscal_year(fiscal_year), self.season.1.in_fiscal_year(fiscal_year));
        if self.every_fiscal_year && season.1 < season.0 {
            return Err(format!(
                "the season of {fiscal_year}年度 closes on {}, before it opens on {}",
                season.1, season.0
            ));
        }
        let records = match &self.done {
            Some(done) if done.in_immunizations => Some((&population.immunizations, done)),
            Some(done) => Some((&population.checkups, done)),
            None => None,
        };
        let history = records
            .map(|(events, done)| Ok::<_, String>((events.by_person(population.size)?, events.code(done.code), done)))
            .transpose()?;
        let membership =
            self.member_of.map(|kind| population.enrollments.membership(kind, population.size)).transpose()?;
        let mut notices = Vec::new();
        let mut reasons = ReasonsByKey::new();
        for person in population.people() {
            let birth = person.birth_day();
            if birth > today
                || self.sex.is_some_and(|sex| person.sex() != sex)
                || self.ward.is_some_and(|ward| person.ward() != ward)
            {
                continue;
            }
            let (mut opens, mut closes) = self.age_window(birth);
            if self.every_fiscal_year {
                (opens, closes) = (opens.max(season.0), closes.min(season.1));
            }
            if today < opens || today > closes {
                continue;
            }
            if let Some(membership) = &membership {
                match membership.on(person.index(), today) {
                    Some(period) => closes = closes.min(period.end),
                    None => continue,
                }
            }
            if let Some((history, code, done)) = &history {
                let since = Day::fiscal_year_start(fiscal_year - done.within_fiscal_years + 1);
                let found = match done.within_fiscal_years {
                    0 => history.has_any(person.index(), *code),
                    _ => history.last_date(person.index(), *code).is_some_and(|last| last >= since),
                };
                if found {
                    continue;
                }
            }
            let instance = if self.every_fiscal_year { fiscal_year } else { 0 };
            notices.extend(
                Notice::for_open_window(&person, OCCASION, opens, closes, today, || {
                    reasons.get((opens, closes), || format!("{opens}から{closes}までの対象期間"))
                })
                .map(|notice| notice.instance(instance)),
            );
        }
        Ok(notices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(changes: &[(&str, &str)]) -> Settings {
        let declared = settings();
        let mut values = Settings::defaults(&declared);
        for (name, text) in changes {
            let setting = declared.iter().find(|setting| setting.name == *name).unwrap();
            values = values.with(name, setting.kind.parse(text).unwrap());
        }
        values
    }

    /// Each way of counting gives the window the catalogue's readings give: 満65歳 from the
    /// day before the 65th birthday to the day before the 66th; 生後2月 to 「生後7月に至るま
    /// で」; 年度末に40歳 from the 年度 of the 40th 年度末; 小6 to 高1 from the 年度 a child born
    /// on 4/2 enters 6th grade.
    #[test]
    fn each_way_of_counting_an_age_gives_the_legal_window() {
        let birth = Day::parse_iso("2014-04-02").unwrap();
        let window = |changes: &[(&str, &str)]| {
            let settings = conditions(changes);
            let (opens, closes) = Conditions::from_settings(&settings).unwrap().age_window(birth);
            format!("{opens}..{closes}")
        };
        let table = [
            (vec![(AGE_COUNTED, YEARS_REACHED), (AGE_FROM, "65"), (AGE_TO, "65")], "2079-04-01..2080-04-01"),
            (vec![(AGE_COUNTED, MONTHS_REACHED), (AGE_FROM, "2"), (AGE_TO, "7")], "2014-06-01..2014-11-01"),
            (vec![(AGE_COUNTED, AGE_AT_FISCAL_YEAR_END), (AGE_FROM, "40"), (AGE_TO, "40")], "2054-04-01..2055-03-31"),
            (vec![(AGE_COUNTED, SCHOOL_GRADE), (AGE_FROM, "6"), (AGE_TO, "10")], "2026-04-01..2031-03-31"),
        ];
        for (changes, expected) in table {
            assert_eq!(window(&changes), expected, "{changes:?}");
        }
        // Born on April 1, the child is in the grade above: 6th grade a year earlier.
        let settings = conditions(&[(AGE_COUNTED, SCHOOL_GRADE), (AGE_FROM, "6"), (AGE_TO, "6")]);
        let april_first = Day::parse_iso("2014-04-01").unwrap();
        let (opens, _) = Conditions::from_settings(&settings).unwrap().age_window(april_first);
        assert_eq!(opens.to_string(), "2025-04-01");
    }

    #[test]
    fn an_inverted_age_window_is_refused() {
        let settings = conditions(&[(AGE_FROM, "50"), (AGE_TO, "40")]);
        assert_eq!(
            Conditions::from_settings(&settings),
            Err("the age window ends at 40, before it starts at 50".to_string())
        );
    }
}

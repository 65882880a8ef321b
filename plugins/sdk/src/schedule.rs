//! The shape vaccinations and child checkups share: periods that open and close by age
//! (or some time after an earlier dose), and that are done once the history records a
//! given dose or visit. A program states its periods; [`Schedule::evaluate`] tells each
//! person whose period is open and not yet done.

use crate::{Code, Day, Field, History, Notice, Population, ReasonsByKey, Sex};

/// Where a program's visits are recorded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Recorded {
    Immunizations,
    Checkups,
}

/// What in the history means a period is done.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Done {
    /// Dose N (or visit N) of the program's code.
    Dose(u8),
    /// Any record of the program's code (a once-in-a-lifetime vaccination, a single checkup).
    AnyRecord,
}

/// One period of a schedule.
pub struct Period {
    /// The occasion key notices of this period carry.
    pub occasion: &'static str,
    pub done: Done,
    /// The first and last day of the period for someone born on `birth` with these earlier
    /// records, or `None` when it does not apply (such as a booster before the primary doses).
    pub window: fn(birth: Day, earlier: &Earlier<'_>) -> Option<(Day, Day)>,
}

/// A person's earlier records of the program, for periods that follow an earlier dose.
pub struct Earlier<'a> {
    history: &'a History<'a>,
    person: u32,
    code: Code,
}

impl Earlier<'_> {
    /// The day dose `dose` was given, if the history records it.
    pub fn dose_date(&self, dose: u8) -> Option<Day> {
        self.history.dose_date(self.person, self.code, dose)
    }
}

/// A program made of age periods.
pub struct Schedule {
    /// The program code, which is also the code its doses or visits are recorded under.
    pub code: &'static str,
    pub recorded: Recorded,
    /// Only this sex qualifies, if any.
    pub sex: Option<Sex>,
    /// Every period has closed by this many months of life, so older people are skipped
    /// without any calendar work.
    pub closed_by_months: u32,
    pub periods: &'static [Period],
}

impl Schedule {
    /// The data the schedule reads.
    pub fn fields(&self) -> Vec<Field> {
        let mut fields = vec![
            Field::BirthDay,
            match self.recorded {
                Recorded::Immunizations => Field::Immunizations,
                Recorded::Checkups => Field::Checkups,
            },
        ];
        if self.sex.is_some() {
            fields.push(Field::Sex);
        }
        fields
    }

    /// Everyone inside an open period that the history does not show as done. Linear in
    /// the population and the event rows.
    pub fn evaluate(&self, today: Day, population: &Population) -> Result<Vec<Notice>, String> {
        let events = match self.recorded {
            Recorded::Immunizations => &population.immunizations,
            Recorded::Checkups => &population.checkups,
        };
        let history = events.by_person(population.size)?;
        let code = events.code(self.code);
        // Born before this day, a person has passed every period (one spare month for the
        // clamping of month ends).
        let born_too_early = today.add_months_clamped(-(self.closed_by_months as i32) - 1);
        let mut notices = Vec::new();
        let mut reasons = ReasonsByKey::new();
        for person in population.born_between(born_too_early, today) {
            let birth = person.birth_day();
            if self.sex.is_some_and(|sex| person.sex() != sex) {
                continue;
            }
            let earlier = Earlier { history: &history, person: person.index(), code };
            for period in self.periods {
                let Some((opens, closes)) = (period.window)(birth, &earlier) else { continue };
                if opens > today || today > closes {
                    continue;
                }
                let done = match period.done {
                    Done::Dose(dose) => history.has_dose(person.index(), code, dose),
                    Done::AnyRecord => history.has_any(person.index(), code),
                };
                if !done {
                    notices.extend(Notice::for_open_window(&person, period.occasion, opens, closes, today, || {
                        reasons.get((opens, closes), || format!("{opens}から{closes}までの期間、記録なし"))
                    }));
                }
            }
        }
        Ok(notices)
    }
}

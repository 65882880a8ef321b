//! The city's next export, a month or so later: the same files, with the records of the
//! residents who, after being found eligible, got their vaccination or screening or began
//! receiving a benefit — more often when they were told. The demo writes it so that the
//! console's uptake page has real numbers on a fresh machine.
//!
//! The rates are the demo's assumptions, not measurements: a resident not told takes it up
//! within the follow-up with probability `BASELINE_UPTAKE`, a resident told with
//! `BASELINE_UPTAKE + TOLD_LIFT` (a lift of the size reminder studies report for routine
//! vaccinations); each one's day is drawn after the earlier export, a whole number of days
//! from an exponential distribution of mean `MEAN_DAYS_TO_UPTAKE`, and a day past the later
//! export is not yet in it. Everyone is drawn independently: the noise a real month has.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::Path;

use anyhow::{Context, Result};
use oshirase_sdk::Day;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The share of residents not told who take it up before the later export.
pub const BASELINE_UPTAKE: f64 = 0.30;
/// How much more often a resident told takes it up.
pub const TOLD_LIFT: f64 = 0.12;
/// The mean number of days, after the earlier export, to the record.
pub const MEAN_DAYS_TO_UPTAKE: f64 = 12.0;

/// Which file shows a program taken up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordFile {
    Immunizations,
    Checkups,
    Receipts,
}

/// A resident the earlier export made eligible for `program`, and whether they were told.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub resident_id: String,
    pub program: String,
    pub record: RecordFile,
    pub told: bool,
}

/// How many of each group the later export shows taking it up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drawn {
    pub told: usize,
    pub told_took_up: usize,
    pub not_told: usize,
    pub not_told_took_up: usize,
}

/// Copies the export in `earlier`, made on `earlier_day`, into `later` as the export of
/// `later_day`, with a record for each candidate drawn to take it up (a dose or visit
/// numbered after the ones `earlier` holds). The appended rows are ASCII, so they read the
/// same in every encoding an export may use.
pub fn write_later_export(
    earlier: &Path,
    later: &Path,
    earlier_day: Day,
    later_day: Day,
    candidates: &[Candidate],
    seed: u64,
) -> Result<Drawn> {
    std::fs::create_dir_all(later).with_context(|| format!("cannot create {}", later.display()))?;
    for entry in std::fs::read_dir(earlier).with_context(|| format!("cannot read {}", earlier.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), later.join(entry.file_name()))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    let mut random = StdRng::seed_from_u64(seed);
    let mut drawn = Drawn::default();
    let mut doses = earlier_counts(&earlier.join("immunizations.csv"), 1, 2)?;
    let mut visits = earlier_counts(&earlier.join("checkups.csv"), 1, 3)?;
    let open = |name: &str| -> Result<csv::Writer<std::fs::File>> {
        let file =
            OpenOptions::new().append(true).open(later.join(name)).with_context(|| format!("cannot open {name}"))?;
        Ok(csv::WriterBuilder::new().has_headers(false).from_writer(file))
    };
    let (mut immunizations, mut checkups, mut receipts) =
        (open("immunizations.csv")?, open("checkups.csv")?, open("receipts.csv")?);
    for candidate in candidates {
        let chance = if candidate.told { BASELINE_UPTAKE + TOLD_LIFT } else { BASELINE_UPTAKE };
        let days = (-MEAN_DAYS_TO_UPTAKE * (1.0 - random.random::<f64>()).ln()).floor() as i32;
        let day = earlier_day.add_days(1 + days);
        let took_up = random.random::<f64>() < chance && day <= later_day;
        let (group, group_took_up) = if candidate.told {
            (&mut drawn.told, &mut drawn.told_took_up)
        } else {
            (&mut drawn.not_told, &mut drawn.not_told_took_up)
        };
        *group += 1;
        if !took_up {
            continue;
        }
        *group_took_up += 1;
        let key = (candidate.resident_id.clone(), candidate.program.clone());
        let (id, code, date) = (candidate.resident_id.as_str(), candidate.program.as_str(), day.to_string());
        match candidate.record {
            RecordFile::Immunizations => {
                let dose = doses.entry(key).or_default();
                *dose += 1;
                immunizations.write_record([id, code, &dose.to_string(), &date])?;
            }
            RecordFile::Checkups => {
                let visit = visits.entry(key).or_default();
                *visit += 1;
                checkups.write_record([id, code, &date, &visit.to_string()])?;
            }
            RecordFile::Receipts => receipts.write_record([id, code, &date, ""])?,
        }
    }
    for mut writer in [immunizations, checkups, receipts] {
        writer.flush()?;
    }
    Ok(drawn)
}

/// How many records each (resident, code) has in a records file of the earlier export,
/// whose code is in column `code_column` (after the resident's in column 0) and whose
/// number of the dose or visit is in `count_column`: the highest number seen.
fn earlier_counts(path: &Path, code_column: usize, count_column: usize) -> Result<HashMap<(String, String), u32>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut counts: HashMap<(String, String), u32> = HashMap::new();
    for record in reader.records() {
        let record = record?;
        let count = record.get(count_column).and_then(|count| count.parse().ok()).unwrap_or(1);
        let highest = counts.entry((record[0].to_owned(), record[code_column].to_owned())).or_default();
        *highest = (*highest).max(count);
    }
    Ok(counts)
}

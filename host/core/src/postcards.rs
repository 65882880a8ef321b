//! `oshirase postcards`: the batch of postcards that carry registration numbers to the
//! residents' registered addresses, written as one printable PDF (官製はがき, 100 × 148 mm,
//! one postcard per page, Japanese text in an embedded subset of a TrueType font). The
//! `postcards` table is the only place a number exists in clear; printing clears it, in a
//! transaction committed only once the PDF is on disk and synced, so a failed write loses
//! no number and a second run prints nothing new. A lost postcard is replaced by issuing a
//! new number, which revokes the old one and queues a new postcard.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use krilla::Document;
use krilla::geom::Point;
use krilla::page::PageSettings;
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use oshirase_sdk::Day;
use rusqlite::{Connection, TransactionBehavior};

use crate::database::audit;
use crate::time::now_text;

/// IPAexGothic as Debian's `fonts-ipaexfont-gothic` installs it.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf";
/// The Debian package that provides `DEFAULT_FONT`.
const FONT_PACKAGE: &str = "fonts-ipaexfont-gothic";

const PAGE_WIDTH_MM: f32 = 100.0;
const PAGE_HEIGHT_MM: f32 = 148.0;
const MARGIN_MM: f32 = 12.0;
/// Millimetres in a point: a font size in points times this is its em in millimetres.
const MM_PER_PT: f32 = 25.4 / 72.0;
/// Points in a millimetre, since PDF measures in points.
const PT_PER_MM: f32 = 72.0 / 25.4;

/// What the resident is told to do with the number, under it.
const INSTRUCTIONS: [&str; 4] = [
    "1. 市の LINE 公式アカウントを「友だち追加」してください。",
    "2. トーク画面で、この登録番号を送ってください。",
    "3. 登録番号は一度だけ、有効期限の日まで使えます。",
    "お申し込みに心当たりのない方は、お手数ですが市役所の窓口までお問い\
     合わせください。",
];

/// One postcard of the batch, as queued when its number was issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Postcard {
    pub id: i64,
    pub resident_id: String,
    pub name: String,
    pub address: String,
    /// As printed: `XXXX-XXXX-XXX`.
    pub number: String,
    /// When the number stops working, as `time::now_text` writes times.
    pub expires_at: String,
}

/// What `print` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Printed {
    pub postcards: usize,
    /// The size of the PDF file; 0 when there was nothing to print and no file was written.
    pub bytes: u64,
    /// Unprinted postcards dropped because their number had expired (or, queued before
    /// expiry times were kept, had no live number): nobody could use them any more.
    pub expired: usize,
}

/// Queues a postcard for a number just issued, inside the caller's transaction. The
/// resident's postcards not yet printed are dropped: issuing revoked their numbers.
pub fn queue(
    connection: &Connection,
    resident_id: &str,
    name: &str,
    address: &str,
    number: &str,
    expires_at: &str,
) -> Result<()> {
    connection.execute("DELETE FROM postcards WHERE resident_id = ?1 AND printed_at IS NULL", [resident_id])?;
    connection.execute(
        "INSERT INTO postcards (resident_id, name, address, number, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (resident_id, name, address, number, expires_at, now_text()),
    )?;
    Ok(())
}

/// The postcards not yet printed, oldest first.
pub fn unprinted(connection: &Connection) -> Result<Vec<Postcard>> {
    let mut statement = connection.prepare(
        "SELECT id, resident_id, name, address, number, expires_at FROM postcards
         WHERE printed_at IS NULL AND number IS NOT NULL ORDER BY id",
    )?;
    let postcards = statement
        .query_map([], |row| {
            Ok(Postcard {
                id: row.get(0)?,
                resident_id: row.get(1)?,
                name: row.get(2)?,
                address: row.get(3)?,
                number: row.get(4)?,
                expires_at: row.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(postcards)
}

/// Reads the TrueType font at `path`; a missing file names the package that provides the
/// default one.
pub fn load_font(path: &Path) -> Result<Font> {
    let bytes = match std::fs::read(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!(
                "font file {} not found: install the Debian package {FONT_PACKAGE} or give --font PATH",
                path.display()
            )
        }
        other => other.with_context(|| format!("cannot read font file {}", path.display()))?,
    };
    Font::new(bytes.into(), 0)
        .with_context(|| format!("font file {} is not a TrueType or OpenType font", path.display()))
}

/// Writes every unprinted postcard into a new file `out`, one page each, then marks them
/// printed and clears their numbers; postcards whose number expired are dropped. The
/// batch is locked for writing while the file is made, so a postcard queued meanwhile
/// waits for the next run. `out` must not exist: it could hold an earlier batch whose
/// numbers are gone from the database.
pub fn print(connection: &mut Connection, out: &Path, font: &Font, actor: &str) -> Result<Printed> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let expired =
        transaction.execute("DELETE FROM postcards WHERE printed_at IS NULL AND expires_at <= ?1", [now_text()])?;
    let postcards = unprinted(&transaction)?;
    if postcards.is_empty() {
        transaction.commit().context("cannot drop the expired postcards")?;
        return Ok(Printed { postcards: 0, bytes: 0, expired });
    }
    let pdf = render(&postcards, font)?;
    write_synced(out, &pdf)?;
    let now = now_text();
    let mut mark = transaction.prepare("UPDATE postcards SET printed_at = ?2, number = NULL WHERE id = ?1")?;
    for postcard in &postcards {
        mark.execute((postcard.id, &now))?;
    }
    drop(mark);
    audit(
        &transaction,
        actor,
        "print-postcards",
        &out.display().to_string(),
        &format!("{} postcards, {expired} expired dropped", postcards.len()),
    )?;
    transaction.commit().context("cannot mark the postcards printed")?;
    Ok(Printed { postcards: postcards.len(), bytes: pdf.len() as u64, expired })
}

/// The PDF of `postcards`, one page each, with the subset of `font` they use embedded.
pub fn render(postcards: &[Postcard], font: &Font) -> Result<Vec<u8>> {
    let mut document = Document::new();
    let settings = PageSettings::from_wh(PAGE_WIDTH_MM * PT_PER_MM, PAGE_HEIGHT_MM * PT_PER_MM)
        .context("the postcard size is not a page size")?;
    for postcard in postcards {
        let expiry = last_full_day_in_japan(&postcard.expires_at)
            .with_context(|| format!("postcard {} has no valid expiry time", postcard.id))?;
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        draw(&mut surface, font, postcard, expiry);
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|error| anyhow::anyhow!("cannot make the postcards' PDF: {error:?}"))
}

/// One postcard: the address block at the top, the number in the middle, the expiry and
/// the instructions below.
fn draw(surface: &mut Surface, font: &Font, postcard: &Postcard, expiry: Day) {
    let mut page = Page { surface, font, y: 14.0 };
    // The address block's lines: the postal code, when there is one, then the address.
    for line in postcard.address.lines() {
        page.paragraph(line, 11.0);
    }
    page.y += 4.0;
    page.paragraph(&format!("{}　様", postcard.name), 16.0);
    page.y = 70.0;
    page.paragraph("LINE 登録番号", 10.0);
    page.y += 2.0;
    page.paragraph(&postcard.number, 24.0);
    page.y += 2.0;
    page.paragraph(&format!("有効期限　{}まで", expiry.era_format()), 11.0);
    page.y += 4.0;
    for instruction in INSTRUCTIONS {
        page.paragraph(instruction, 7.5);
        page.y += 1.0;
    }
}

/// Text laid out from the top down, one line under the other, from the left margin.
struct Page<'a, 'b> {
    surface: &'a mut Surface<'b>,
    font: &'a Font,
    /// The top of the next line, in millimetres from the top of the page.
    y: f32,
}

impl Page<'_, '_> {
    /// `text` at `size` points, wrapped to the width between the margins.
    fn paragraph(&mut self, text: &str, size: f32) {
        let em = size * MM_PER_PT;
        for line in wrap(text, (PAGE_WIDTH_MM - 2.0 * MARGIN_MM) / em) {
            // The baseline sits about 0.9 em under the top of the line.
            let baseline = self.y + 0.9 * em;
            self.surface.draw_text(
                Point::from_xy(MARGIN_MM * PT_PER_MM, baseline * PT_PER_MM),
                self.font.clone(),
                size,
                &line,
                false,
                TextDirection::Auto,
            );
            self.y += 1.4 * em;
        }
    }
}

/// Characters a line must not start with (行頭禁則): they hang into the margin instead.
const NOT_AT_LINE_START: &str = "、。，．）」』〕！？ー";

/// Splits `text` into lines of at most `ems` wide, counting a Japanese character as one
/// em and an ASCII one as a little over half (IPAexGothic's Latin letters are
/// proportional, at most about that wide).
fn wrap(text: &str, ems: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0.0;
    for character in text.chars() {
        let advance = if character.is_ascii() { 0.6 } else { 1.0 };
        if used + advance > ems && !line.is_empty() && !NOT_AT_LINE_START.contains(character) {
            lines.push(std::mem::take(&mut line));
            used = 0.0;
            // The space where a line breaks is not carried to the next line.
            if character == ' ' {
                continue;
            }
        }
        line.push(character);
        used += advance;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The last day, in Japan time, on which a number expiring at `expires_at` (UTC, as
/// `time::now_text` writes it) works all day: the day before the one it expires on.
fn last_full_day_in_japan(expires_at: &str) -> Result<Day> {
    let expires = chrono::DateTime::parse_from_rfc3339(expires_at)
        .with_context(|| format!("expiry time {expires_at:?} is not an RFC 3339 time"))?;
    Ok(crate::time::day_in_japan(expires.to_utc()).add_days(-1))
}

/// Writes `bytes` into a new file at `path`, readable by its owner only, and syncs the
/// file and its directory, so the postcards survive a crash once their numbers are gone.
/// A file left half written is removed.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the postcards' file {}", path.display()))?;
    if let Err(error) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        let _ = std::fs::remove_file(path);
        return Err(error).with_context(|| format!("cannot write the postcards' file {}", path.display()));
    }
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .with_context(|| format!("cannot sync directory {}", directory.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Three residents of a small export, imported for real.
    /// Residents with their addresses, all but one with a postal code.
    const RESIDENTS: &str = "宛名番号,世帯番号,氏名,生年月日,性別,続柄,住所,郵便番号\n\
        0101,H01,千葉 花子,1994-05-01,女,世帯主,千葉県千葉市中央区千葉港1番1号 \
        みなとマンション305号室,260-0026\n\
        0201,H02,佐藤 誠,1985-07-07,男,世帯主,千葉県千葉市美浜区高洲3丁目14番2号,261-0004\n\
        0301,H03,鈴木 一郎,1950-01-15,男,世帯主,千葉県千葉市緑区おゆみ野中央8丁目27番地の4,\n\
        0401,H04,高橋 葵,2001-03-03,女,世帯主,千葉県千葉市稲毛区轟町1丁目2番3号,263-0021\n";

    fn imported(directory: &Path) -> Connection {
        let export = directory.join("export");
        std::fs::create_dir_all(&export).unwrap();
        std::fs::write(export.join("residents.csv"), RESIDENTS).unwrap();
        let mut connection = crate::database::open(&directory.join("oshirase.db")).unwrap();
        crate::testing::import(&mut connection, &export).unwrap();
        connection
    }

    fn run(program: &str, arguments: &[&Path]) -> String {
        let output = Command::new(program)
            .args(arguments)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {program} (Debian poppler-utils): {error}"));
        assert!(output.status.success(), "{program}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    fn font() -> Font {
        load_font(Path::new(DEFAULT_FONT)).unwrap()
    }

    /// The numbers still in clear in the table.
    fn clear_numbers(connection: &Connection) -> Vec<String> {
        let mut statement =
            connection.prepare("SELECT number FROM postcards WHERE number IS NOT NULL ORDER BY id").unwrap();
        statement.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn the_batch_is_printed_once_and_its_numbers_are_gone() {
        let directory = tempfile::tempdir().unwrap();
        let mut connection = imported(directory.path());
        // The first number of 0101 is replaced by a reissue: only the second is printed.
        let replaced = crate::chat::number::issue(&mut connection, "0101", 30, "test").unwrap();
        // 0401's number expired before the batch was printed: its postcard is dropped.
        let expired = crate::chat::number::issue(&mut connection, "0401", 1, "test").unwrap();
        connection
            .execute(
                "UPDATE postcards SET expires_at = ?1 WHERE number = ?2",
                (crate::time::text_in_days(-1), &expired),
            )
            .unwrap();
        let numbers: Vec<String> = ["0101", "0201", "0301"]
            .iter()
            .map(|resident| crate::chat::number::issue(&mut connection, resident, 90, "test").unwrap())
            .collect();
        let queued: Vec<Postcard> =
            unprinted(&connection).unwrap().into_iter().filter(|postcard| postcard.number != expired).collect();
        assert_eq!(queued.iter().map(|postcard| postcard.number.clone()).collect::<Vec<_>>(), numbers);
        let font = font();

        let out = directory.path().join("postcards.pdf");
        let printed = print(&mut connection, &out, &font, "test").unwrap();
        assert_eq!(printed, Printed { postcards: 3, bytes: std::fs::metadata(&out).unwrap().len(), expired: 1 });

        let info = run("pdfinfo", &[&out]);
        assert!(info.lines().any(|line| line.split_whitespace().eq(["Pages:", "3"])), "{info}");
        assert!(info.contains("283.465 x 419.528 pts"), "a page is not 100 × 148 mm: {info}");
        let text = run("pdftotext", &[&out, Path::new("-")]);
        let pages: Vec<&str> = text.split('\u{c}').collect();
        let mut missing = Vec::new();
        for (postcard, resident) in queued.iter().zip(RESIDENTS.lines().skip(1)) {
            let fields: Vec<&str> = resident.split(',').collect();
            let expiry = last_full_day_in_japan(&postcard.expires_at).unwrap().era_format();
            let postal_code = if fields[7].is_empty() { String::new() } else { format!("〒{}", fields[7]) };
            let wanted = [fields[2], fields[6], &postal_code, "様", &expiry, "友だち追加", "一度だけ", "窓口"];
            match pages.iter().find(|page| page.contains(postcard.number.as_str())) {
                None => missing.push(format!("number {}", postcard.number)),
                // The address wraps, so it is looked for with line breaks removed.
                Some(page) => missing.extend(
                    wanted
                        .iter()
                        .filter(|wanted| !page.replace('\n', "").contains(*wanted))
                        .map(|wanted| format!("{wanted} on {}'s page", postcard.number)),
                ),
            }
        }
        assert!(missing.is_empty(), "missing {missing:?} in:\n{text}");
        assert!(!text.contains(&replaced), "the revoked number {replaced} was printed");
        assert!(!text.contains(&expired), "the expired number {expired} was printed");

        assert!(clear_numbers(&connection).is_empty());
        let rows: (i64, i64) = connection
            .query_row("SELECT count(*), count(printed_at) FROM postcards", [], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap();
        assert_eq!(rows, (3, 3), "(postcards, printed)");
        let again = directory.path().join("again.pdf");
        assert_eq!(
            print(&mut connection, &again, &font, "test").unwrap(),
            Printed { postcards: 0, bytes: 0, expired: 0 }
        );
        assert!(!again.exists());
    }

    /// Each case: an output path that cannot be written, and what the error names.
    fn check(connection: &mut Connection, font: &Font, cases: &[(&Path, &str)]) {
        let before = clear_numbers(connection);
        for (out, expected) in cases {
            let error = format!("{:#}", print(connection, out, font, "test").unwrap_err());
            assert!(error.contains(expected), "{}: {error}", out.display());
            assert_eq!(clear_numbers(connection), before, "{}", out.display());
        }
    }

    #[test]
    fn a_failed_write_leaves_the_batch_untouched() {
        let directory = tempfile::tempdir().unwrap();
        let mut connection = imported(directory.path());
        crate::chat::number::issue(&mut connection, "0201", 90, "test").unwrap();
        let existing = directory.path().join("earlier-batch.pdf");
        std::fs::write(&existing, b"an earlier batch").unwrap();
        let font = font();
        check(
            &mut connection,
            &font,
            &[
                (&directory.path().join("no-such-directory/postcards.pdf"), "cannot create the postcards' file"),
                (&existing, "cannot create the postcards' file"),
            ],
        );
        assert_eq!(std::fs::read(&existing).unwrap(), b"an earlier batch");
        assert_eq!(clear_numbers(&connection).len(), 1);
    }

    #[test]
    fn a_missing_font_names_the_package() {
        let error = load_font(Path::new("/nonexistent/ipaexg.ttf")).err().unwrap().to_string();
        assert_eq!(
            error,
            "font file /nonexistent/ipaexg.ttf not found: install the Debian package fonts-ipaexfont-gothic or \
             give --font PATH"
        );
    }

    #[test]
    fn lines_break_within_the_width_and_never_before_closing_punctuation() {
        assert_eq!(wrap("あいうえお", 3.0), ["あいう", "えお"]);
        assert_eq!(wrap("あいう。えお", 3.0), ["あいう。", "えお"]);
        assert_eq!(wrap("1-2-3 あ", 3.0), ["1-2-3", "あ"]);
    }

    #[test]
    fn the_expiry_is_the_last_whole_day_in_japan() {
        // 18:30 UTC is 03:30 the next morning in Japan; the number works all of the day before.
        assert_eq!(last_full_day_in_japan("2027-02-19T18:30:00.000Z").unwrap(), Day::from_ymd(2027, 2, 19).unwrap());
        assert_eq!(last_full_day_in_japan("2027-02-19T09:00:00.000Z").unwrap(), Day::from_ymd(2027, 2, 18).unwrap());
        assert!(last_full_day_in_japan("").is_err());
    }
}

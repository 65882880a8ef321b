//! One CSV file of a municipal export: its encoding detected (UTF-8 with or without BOM,
//! Shift_JIS/CP932, or UTF-16 with a BOM), its header matched in Japanese or English in
//! any order (after the town's renames), and its rows handed out with every bad cell
//! recorded as `file:line:column: what is wrong`.

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::Path;

use anyhow::{Context, Result};
use rustc_hash::FxHashMap as HashMap;

/// How many problems one import reports before it stops looking.
pub const MAX_PROBLEMS: usize = 100;
/// A row longer than this is a broken file (an unclosed quote swallowing lines), not data.
pub const MAX_ROW_BYTES: usize = 64 * 1024;
/// How much of a file is looked at to decide its encoding.
const SNIFF_BYTES: u64 = 64 * 1024;

/// One thing wrong with an input file, located as `file:line:column`.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub line: u64,
    /// 1-based column number, 0 when the problem is not about one cell.
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

/// The problems found so far, up to [`MAX_PROBLEMS`].
#[derive(Default)]
pub struct Problems {
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn push(&mut self, file: &str, line: u64, column: usize, message: String) {
        if !self.is_full() {
            self.list.push(Problem { file: file.to_owned(), line, column, message });
        }
    }

    pub fn is_full(&self) -> bool {
        self.list.len() >= MAX_PROBLEMS
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// A column a file may have, by its English and its Japanese header.
pub struct Column {
    pub english: &'static str,
    pub japanese: &'static str,
    pub required: bool,
}

/// The columns of one kind of file.
pub struct FileSpec {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// The file is a standard layout of which only some columns are read: the others are
    /// counted in one warning rather than named one by one.
    pub reads_some_columns: bool,
}

impl FileSpec {
    /// The position of a column in this spec; a name not in the spec is a programming error.
    pub fn column(&self, english: &str) -> ColumnId {
        ColumnId(
            self.columns
                .iter()
                .position(|column| column.english == english)
                .unwrap_or_else(|| panic!("{} has no column {english}", self.name)),
        )
    }
}

/// A column of a [`FileSpec`], resolved once before the rows are read.
#[derive(Clone, Copy)]
pub struct ColumnId(usize);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Encoding {
    Utf8,
    ShiftJis,
    Utf16,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::ShiftJis => "Shift_JIS",
            Encoding::Utf16 => "UTF-16",
        }
    }
}

/// An open export file positioned after its header.
pub struct CsvFile {
    pub spec: &'static FileSpec,
    pub encoding: Encoding,
    reader: csv::Reader<Box<dyn Read>>,
    /// For each column of the spec, where it is in this file.
    positions: Vec<Option<usize>>,
    header_length: usize,
    record: csv::ByteRecord,
}

impl CsvFile {
    /// Opens `directory/spec.name`. `Ok(None)` when the file is not there; problems with
    /// the encoding or the header are recorded and give `Ok(None)` as well, since its rows
    /// cannot be read. A header in `renamed` is read as the column it names; unused
    /// columns become warnings.
    pub fn open(
        directory: &Path,
        spec: &'static FileSpec,
        renamed: &HashMap<String, String>,
        problems: &mut Problems,
        warnings: &mut Vec<String>,
    ) -> Result<Option<CsvFile>> {
        let path = directory.join(spec.name);
        if !path.exists() {
            return Ok(None);
        }
        let (input, encoding) = match open_text(&path)? {
            Ok(opened) => opened,
            Err((line, message)) => {
                problems.push(spec.name, line, 0, message);
                return Ok(None);
            }
        };
        let input: Box<dyn Read> = Box::new(LineFeeds::new(input));
        let mut reader = csv::ReaderBuilder::new().flexible(true).buffer_capacity(1 << 20).from_reader(input);
        let headers = match reader.byte_headers() {
            Ok(headers) => headers.clone(),
            Err(error) => {
                problems.push(spec.name, 1, 0, format!("cannot read the header row: {error}"));
                return Ok(None);
            }
        };
        let names: Vec<String> = headers
            .iter()
            .map(|header| String::from_utf8_lossy(header).trim().trim_start_matches('\u{feff}').to_owned())
            .collect();
        if names.iter().all(String::is_empty) {
            problems.push(spec.name, 1, 0, format!("{} is empty: it has no header row", spec.name));
            return Ok(None);
        }
        let mut positions = vec![None; spec.columns.len()];
        let mut unused = 0;
        for (position, header) in names.iter().enumerate() {
            let name = renamed.get(header).unwrap_or(header);
            match spec.columns.iter().position(|column| column.english == name || column.japanese == name) {
                Some(index) if positions[index].is_some() => {
                    problems.push(spec.name, 1, position + 1, format!("column {name} appears twice in the header"));
                }
                Some(index) => positions[index] = Some(position),
                None if spec.reads_some_columns => unused += 1,
                None => warnings.push(format!(
                    "{}:1:{}: column {header:?} is not used and was ignored",
                    spec.name,
                    position + 1
                )),
            }
        }
        if unused > 0 {
            warnings.push(format!("{}: {unused} columns of the standard layout are not read", spec.name));
        }
        let mut complete = true;
        for (column, position) in spec.columns.iter().zip(&positions) {
            if column.required && position.is_none() {
                complete = false;
                problems.push(
                    spec.name,
                    1,
                    0,
                    format!(
                        "missing column {} ({}); the header, read as {}, has: {}",
                        column.english,
                        column.japanese,
                        encoding.name(),
                        names.join(", ")
                    ),
                );
            }
        }
        Ok(complete.then(|| CsvFile {
            spec,
            encoding,
            reader,
            positions,
            header_length: names.len(),
            record: csv::ByteRecord::new(),
        }))
    }

    /// The next row whose shape is sound; rows of the wrong length, too long, or with a
    /// byte order mark inside are recorded as problems and skipped. `None` at the end.
    pub fn next_row<'a>(&'a mut self, problems: &'a mut Problems) -> Option<Row<'a>> {
        let name = self.spec.name;
        loop {
            if problems.is_full() {
                return None;
            }
            match self.reader.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(error) => {
                    let line = error.position().map_or(0, |position| position.line());
                    let stop = matches!(error.kind(), csv::ErrorKind::Io(_));
                    problems.push(name, line, 0, format!("unreadable row: {error}"));
                    if stop {
                        return None;
                    }
                    continue;
                }
            }
            let bytes = self.record.as_slice();
            // The reader has read the row's own LF (`LineFeeds` ends every line with one),
            // which makes blank lines before it count too. A row running across lines (an
            // open quote) is reported where reading it began: its line unless blank lines
            // came before it.
            let line = if memchr::memchr(b'\n', bytes).is_none() {
                self.reader.position().line() - 1
            } else {
                self.record.position().map_or(0, |position| position.line())
            };
            let shape_problem = if bytes.len() > MAX_ROW_BYTES {
                Some(format!("the row is {} bytes long, more than {MAX_ROW_BYTES}; is a quote left open?", bytes.len()))
            } else if memchr::memmem::find(bytes, "\u{feff}".as_bytes()).is_some() {
                Some("a byte order mark in the middle of the file; were two files joined?".to_owned())
            } else if memchr::memchr2(b'\n', b'\r', bytes).is_some() {
                Some("a field runs across lines; is a quote left open?".to_owned())
            } else if self.record.len() != self.header_length {
                Some(format!(
                    "the row has {} fields but the header has {}; is the file cut short?",
                    self.record.len(),
                    self.header_length
                ))
            } else {
                None
            };
            if let Some(message) = shape_problem {
                problems.push(name, line, 0, message);
                continue;
            }
            return Some(Row { file: self, line, problems, valid: true });
        }
    }
}

/// A file opened as UTF-8 text, or a problem with its text and the line it is on.
type OpenedText = Result<(Box<dyn Read>, Encoding), (u64, String)>;

/// Opens a file as UTF-8 text, deciding its encoding from its first bytes. The inner
/// error is a problem with the file's text, with the line it is on.
fn open_text(path: &Path) -> Result<OpenedText> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = Vec::new();
    (&mut file).take(SNIFF_BYTES).read_to_end(&mut head).with_context(|| format!("cannot read {}", path.display()))?;
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        // The decoder reads the BOM, little- or big-endian, and drops it. Malformed
        // sequences become U+FFFD, which the rows then report.
        let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new().build(Cursor::new(head).chain(file));
        return Ok(Ok((Box::new(decoder), Encoding::Utf16)));
    }
    if looks_like_utf16_without_bom(&head) {
        return Ok(Err((
            1,
            "the file looks like UTF-16 without a byte order mark; export it with one, or as UTF-8 or Shift_JIS"
                .to_owned(),
        )));
    }
    if let Some(rest) = head.strip_prefix(b"\xEF\xBB\xBF") {
        return Ok(Ok((Box::new(Cursor::new(rest.to_vec()).chain(file)), Encoding::Utf8)));
    }
    // A valid UTF-8 start, or one cut in the middle of a character by the sniff limit.
    let valid_up_to = match std::str::from_utf8(&head) {
        Ok(_) => return Ok(Ok((Box::new(Cursor::new(head).chain(file)), Encoding::Utf8))),
        Err(error) if error.error_len().is_none() => {
            return Ok(Ok((Box::new(Cursor::new(head).chain(file)), Encoding::Utf8)));
        }
        Err(error) => error.valid_up_to(),
    };
    // Japanese text before the first bad byte that is not Shift_JIS either: two files in
    // different encodings were joined, or a row was pasted in from elsewhere.
    let whole_characters = if head.len() as u64 == SNIFF_BYTES { &head[..head.len() - 1] } else { &head[..] };
    let shift_jis =
        encoding_rs::SHIFT_JIS.decode_without_bom_handling_and_without_replacement(whole_characters).is_some();
    if !shift_jis && !head[..valid_up_to].is_ascii() {
        let line = memchr::memchr_iter(b'\n', &head[..valid_up_to]).count() as u64 + 1;
        return Ok(Err((
            line,
            "the file mixes UTF-8 and Shift_JIS text: this line is not UTF-8 while the lines before it are".to_owned(),
        )));
    }
    // encoding_rs's Shift_JIS is the WHATWG one, which is CP932 (Windows-31J) with the NEC
    // and IBM extensions municipal systems use. Undecodable bytes become U+FFFD, which the
    // rows then report.
    let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding_rs::SHIFT_JIS))
        .build(Cursor::new(head).chain(file));
    Ok(Ok((Box::new(decoder), Encoding::ShiftJis)))
}

/// Whether text looks like UTF-16 written without a BOM: it holds NUL bytes, which no CSV
/// in UTF-8 or Shift_JIS does, and UTF-16 writes one beside every comma and digit.
fn looks_like_utf16_without_bom(head: &[u8]) -> bool {
    memchr::memchr(0, head).is_some()
}

/// Text whose line endings, CRLF or a lone CR, are handed on as LF, and whose last line
/// ends with one. The csv crate ends a record at the CR of a CRLF and counts lines by LF,
/// so it would number every row of a Windows-made export from the line before its own;
/// with every line ended by an LF, a row's line is the count after it, minus one. A CR can
/// only end a line here: a field running across lines is refused anyway, and in UTF-8
/// (the decoded Shift_JIS too) the byte is never part of a character.
struct LineFeeds<R> {
    inner: R,
    /// The last byte handed out was a CR turned into LF, so an LF right after it is the
    /// same line ending and is dropped.
    after_carriage_return: bool,
    /// Whether the text handed out so far is empty or ends with an LF.
    line_ended: bool,
}

impl<R: Read> LineFeeds<R> {
    fn new(inner: R) -> LineFeeds<R> {
        LineFeeds { inner, after_carriage_return: false, line_ended: true }
    }
}

impl<R: Read> Read for LineFeeds<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        loop {
            let read = self.inner.read(buffer)?;
            if read == 0 {
                if self.line_ended {
                    return Ok(0);
                }
                buffer[0] = b'\n';
                self.line_ended = true;
                return Ok(1);
            }
            // Compacted in place: bytes up to `written` are final, the rest is still to see.
            let mut written = 0;
            let mut position = 0;
            while position < read {
                if self.after_carriage_return && buffer[position] == b'\n' {
                    position += 1;
                }
                self.after_carriage_return = false;
                let end = memchr::memchr(b'\r', &buffer[position..read]).map_or(read, |offset| position + offset);
                if written != position {
                    buffer.copy_within(position..end, written);
                }
                written += end - position;
                position = end;
                if position < read {
                    buffer[written] = b'\n';
                    written += 1;
                    position += 1;
                    self.after_carriage_return = true;
                }
            }
            // A read that was only the LF of a CRLF split between two reads gave nothing
            // to hand on; 0 would mean the end of the file.
            if written > 0 {
                self.line_ended = buffer[written - 1] == b'\n';
                return Ok(written);
            }
        }
    }
}

/// One row of a file, read cell by cell. A cell that is wrong records a problem and
/// marks the row invalid; the caller stores only valid rows.
pub struct Row<'a> {
    file: &'a CsvFile,
    pub line: u64,
    problems: &'a mut Problems,
    valid: bool,
}

impl<'a> Row<'a> {
    /// Whether this row may be stored: it is valid, and so is everything read before it
    /// (once the import is going to be refused, nothing more is written).
    pub fn storable(&self) -> bool {
        self.valid && self.problems.is_empty()
    }

    /// Records a problem about the row as a whole, or about `column` when given.
    pub fn problem(&mut self, column: Option<ColumnId>, message: String) {
        let column = column.and_then(|ColumnId(index)| self.file.positions[index]).map_or(0, |position| position + 1);
        self.problems.push(self.file.spec.name, self.line, column, message);
        self.valid = false;
    }

    /// The trimmed text of a cell; `None` when the file has no such column or the cell is
    /// not text in the file's encoding.
    pub fn text(&mut self, column: ColumnId) -> Option<&'a str> {
        let file: &'a CsvFile = self.file;
        let bytes = file.record.get(file.positions[column.0]?)?;
        match std::str::from_utf8(bytes) {
            Ok(text) if file.encoding != Encoding::Utf8 && text.contains('\u{FFFD}') => {
                self.problem(Some(column), format!("the cell is not {} text", file.encoding.name()));
                None
            }
            Ok(text) => Some(text.trim()),
            Err(_) => {
                self.problem(Some(column), "the cell is not UTF-8 text (the file began as UTF-8)".to_owned());
                None
            }
        }
    }

    /// The text of a cell that must not be empty.
    pub fn required(&mut self, column: ColumnId) -> Option<&'a str> {
        let text = self.text(column)?;
        if text.is_empty() {
            self.problem(Some(column), format!("{} is empty", self.file.spec.columns[column.0].english));
            return None;
        }
        Some(text)
    }

    /// A cell that must hold a value `parse` accepts; `expected` says what in the problem.
    pub fn value<T>(&mut self, column: ColumnId, parse: impl Fn(&str) -> Option<T>, expected: &str) -> Option<T> {
        let text = self.required(column)?;
        self.parsed(column, text, parse, expected)
    }

    /// Like [`Row::value`] for a cell that may be empty or absent.
    pub fn optional<T>(&mut self, column: ColumnId, parse: impl Fn(&str) -> Option<T>, expected: &str) -> Option<T> {
        match self.text(column) {
            Some(text) if !text.is_empty() => self.parsed(column, text, parse, expected),
            _ => None,
        }
    }

    fn parsed<T>(
        &mut self,
        column: ColumnId,
        text: &str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Option<T> {
        let value = parse(text);
        if value.is_none() {
            self.problem(
                Some(column),
                format!("{} {text:?} is not {expected}", self.file.spec.columns[column.0].english),
            );
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `text` through [`LineFeeds`] `chunk` bytes at a time, so that a CRLF is also
    /// split between two reads.
    fn line_feeds(text: &str, chunk: usize) -> String {
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
                let length = self.0.len().min(self.1).min(buffer.len());
                buffer[..length].copy_from_slice(&self.0[..length]);
                self.0 = &self.0[length..];
                Ok(length)
            }
        }
        let mut output = String::new();
        LineFeeds::new(Chunks(text.as_bytes(), chunk)).read_to_string(&mut output).unwrap();
        output
    }

    #[test]
    fn crlf_and_lone_cr_become_lf_and_the_last_line_is_ended_however_the_text_is_cut() {
        for chunk in [1, 2, 3, 1024] {
            assert_eq!(
                line_feeds("a,b\r\n\r\nc\rd\n\ne\r\r\n", chunk),
                "a,b\n\nc\nd\n\ne\n\n",
                "read {chunk} bytes at a time"
            );
            assert_eq!(line_feeds("\r\n", chunk), "\n", "read {chunk} bytes at a time");
            assert_eq!(line_feeds("a\r\nb", chunk), "a\nb\n", "read {chunk} bytes at a time");
            assert_eq!(line_feeds("", chunk), "", "read {chunk} bytes at a time");
        }
    }
}

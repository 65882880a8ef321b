//! Cron expressions as manifests write their default schedule: six fields (second,
//! minute, hour, day of month, month, day of week) or the classic five without seconds.

/// The fields in order, with their allowed range, for six-field expressions.
const FIELDS: [(&str, u32, u32); 6] =
    [("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7)];

/// Checks that `expression` is a cron expression this host can schedule; the error names
/// the field and the part that is wrong.
pub fn check(expression: &str) -> Result<(), String> {
    let parts: Vec<&str> = expression.split_whitespace().collect();
    let fields = match parts.len() {
        6 => &FIELDS[..],
        5 => &FIELDS[1..],
        count => return Err(format!("{count} fields, expected 5 or 6 (second minute hour day-of-month month day-of-week)")),
    };
    for (part, (name, low, high)) in parts.iter().zip(fields) {
        check_field(part, *low, *high).map_err(|problem| format!("{name} field {part:?}: {problem}"))?;
    }
    Ok(())
}

/// One field: a comma-separated list of `*`, `N` or `N-M`, each optionally with `/STEP`.
fn check_field(field: &str, low: u32, high: u32) -> Result<(), String> {
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(1..) => {}
                _ => return Err(format!("step {step:?} is not a positive number")),
            }
        }
        if range == "*" {
            continue;
        }
        let number = |text: &str| match text.parse::<u32>() {
            Ok(value) if (low..=high).contains(&value) => Ok(value),
            _ => Err(format!("{text:?} is not a number from {low} to {high}")),
        };
        match range.split_once('-') {
            Some((first, last)) if number(first)? > number(last)? => return Err(format!("range {range:?} runs backwards")),
            Some(_) => {}
            None => {
                number(range)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_checked_field_by_field() {
        let check_all = [
            ("0 0 9 * * *", Ok(())),
            ("30 9 * * 1-5", Ok(())),
            ("0 */15 8-18 1,15 4 0", Ok(())),
            ("0 0 9 * *", Ok(())),
            ("every day", Err("2 fields, expected 5 or 6 (second minute hour day-of-month month day-of-week)")),
            ("0 0 25 * * *", Err("hour field \"25\": \"25\" is not a number from 0 to 23")),
            ("0 0 9 0 * *", Err("day of month field \"0\": \"0\" is not a number from 1 to 31")),
            ("0 0 9 * 12-1 *", Err("month field \"12-1\": range \"12-1\" runs backwards")),
            ("0 */0 9 * * *", Err("minute field \"*/0\": step \"0\" is not a positive number")),
            ("0 0 9 * * MON", Err("day of week field \"MON\": \"MON\" is not a number from 0 to 7")),
        ];
        for (expression, expected) in check_all {
            assert_eq!(check(expression), expected.map_err(str::to_string), "{expression}");
        }
    }
}

//! Message templates: the only placeholders are the program's name and contact and the
//! notice's deadline, so no personal data can reach a message.

use oshirase_sdk::Day;

/// The lines under every e-mail notice: the address cannot be answered, and where the
/// resident changes what they receive.
pub const MAIL_FOOTER: &str = "――\nこのメールは送信専用です。返信はできません。\n配信する内容や方法の変更は、LINEのメニューまたは市役所の窓口でお手続きください。";

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 3] = ["program", "deadline", "contact"];

/// Checks that every `{...}` in `template` is a known placeholder; returns the first unknown one.
pub fn check_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(after.to_string());
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(name.to_string());
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Fills a checked template. The deadline is written as in official letters (令和8年3月31日).
pub fn render(template: &str, program: &str, contact: &str, deadline: Day) -> String {
    template.replace("{program}", program).replace("{contact}", contact).replace("{deadline}", &deadline.era_format())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_placeholders_are_filled_and_unknown_ones_refused() {
        let template = "【{program}】{deadline}まで。{contact}";
        assert_eq!(check_template(template), Ok(()));
        assert_eq!(render(template, "MR", "健康課", Day::parse_iso("2027-03-31").unwrap()), "【MR】令和9年3月31日まで。健康課");
        assert_eq!(check_template("{name}さん"), Err("name".to_string()));
        assert_eq!(check_template("閉じない{program"), Err("program".to_string()));
    }
}

//! Flex messages: checked against the `FlexMessage` schema of LINE's `messaging-api.yml`
//! (its required properties, its `type` discriminators and its enums, the actions'
//! required properties and lengths), and drawn on the phones page as a LINE client lays
//! them out, closely enough to read.

use serde_json::Value;

/// A problem found in a Flex message: what is wrong, and the property, as LINE names them
/// in a 400 answer's `details`.
pub(super) type Problem = (String, String);

fn problem(detail: &str, property: &str) -> Problem {
    (detail.to_string(), property.to_string())
}

/// Checks a message of `type: flex` at `property` (`messages[0]`).
pub(super) fn check_message(message: &Value, property: &str) -> Result<(), Problem> {
    match message.get("altText") {
        None => return Err(problem("must be specified", &format!("{property}.altText"))),
        Some(Value::String(text)) if text.is_empty() => {
            return Err(problem("May not be empty", &format!("{property}.altText")));
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(problem("must be a string", &format!("{property}.altText"))),
    }
    let contents =
        message.get("contents").ok_or_else(|| problem("must be specified", &format!("{property}.contents")))?;
    check_container(contents, &format!("{property}.contents"))
}

/// `FlexContainer`: a bubble or a carousel of bubbles.
fn check_container(container: &Value, property: &str) -> Result<(), Problem> {
    match container.get("type").and_then(Value::as_str) {
        Some("bubble") => check_bubble(container, property),
        Some("carousel") => {
            let bubbles = array(container, "contents", property)?;
            for (index, bubble) in bubbles.iter().enumerate() {
                let property = format!("{property}.contents[{index}]");
                if bubble.get("type").and_then(Value::as_str) != Some("bubble") {
                    return Err(problem("must be bubble", &format!("{property}.type")));
                }
                check_bubble(bubble, &property)?;
            }
            Ok(())
        }
        Some(_) => Err(problem("must be one of bubble, carousel", &format!("{property}.type"))),
        None => Err(problem("must be specified", &format!("{property}.type"))),
    }
}

/// `FlexBubble`: its blocks are boxes (the hero any component), its enums as listed.
fn check_bubble(bubble: &Value, property: &str) -> Result<(), Problem> {
    one_of(bubble, "direction", &["ltr", "rtl"], property)?;
    one_of(bubble, "size", &["nano", "micro", "deca", "hecto", "kilo", "mega", "giga"], property)?;
    for block in ["header", "body", "footer"] {
        if let Some(block_box) = bubble.get(block) {
            let property = format!("{property}.{block}");
            if block_box.get("type").and_then(Value::as_str) != Some("box") {
                return Err(problem("must be box", &format!("{property}.type")));
            }
            check_component(block_box, &property)?;
        }
    }
    if let Some(hero) = bubble.get("hero") {
        check_component(hero, &format!("{property}.hero"))?;
    }
    if let Some(action) = bubble.get("action") {
        check_action(action, &format!("{property}.action"))?;
    }
    Ok(())
}

/// `FlexComponent` by its `type`, with what each kind requires.
fn check_component(component: &Value, property: &str) -> Result<(), Problem> {
    let Some(kind) = component.get("type").and_then(Value::as_str) else {
        return Err(problem("must be specified", &format!("{property}.type")));
    };
    match kind {
        "box" => {
            required(component, "layout", property)?;
            one_of(component, "layout", &["horizontal", "vertical", "baseline"], property)?;
            one_of(component, "position", &["relative", "absolute"], property)?;
            one_of(
                component,
                "justifyContent",
                &["center", "flex-start", "flex-end", "space-between", "space-around", "space-evenly"],
                property,
            )?;
            for (index, child) in array(component, "contents", property)?.iter().enumerate() {
                check_component(child, &format!("{property}.contents[{index}]"))?;
            }
        }
        "button" => {
            let action =
                component.get("action").ok_or_else(|| problem("must be specified", &format!("{property}.action")))?;
            check_action(action, &format!("{property}.action"))?;
            one_of(component, "style", &["primary", "secondary", "link"], property)?;
            one_of(component, "height", &["md", "sm"], property)?;
            one_of(component, "gravity", &["top", "bottom", "center"], property)?;
        }
        "text" => {
            if component.get("text").is_none() && component.get("contents").is_none() {
                return Err(problem("must be specified", &format!("{property}.text")));
            }
            one_of(component, "align", &["start", "end", "center"], property)?;
            one_of(component, "gravity", &["top", "bottom", "center"], property)?;
            one_of(component, "weight", &["regular", "bold"], property)?;
            one_of(component, "style", &["normal", "italic"], property)?;
            one_of(component, "decoration", &["none", "underline", "line-through"], property)?;
        }
        "image" | "icon" => required(component, "url", property)?,
        "video" => {
            for key in ["url", "previewUrl", "altContent"] {
                required(component, key, property)?;
            }
        }
        "span" | "separator" | "filler" => {}
        _ => {
            return Err(problem(
                "must be one of box, button, image, video, icon, text, span, separator, filler",
                &format!("{property}.type"),
            ));
        }
    }
    if let Some(action) = component.get("action").filter(|_| kind != "button") {
        check_action(action, &format!("{property}.action"))?;
    }
    Ok(())
}

/// `Action` by its `type`: what each kind requires, and the lengths the schema gives.
pub(super) fn check_action(action: &Value, property: &str) -> Result<(), Problem> {
    let text = |key: &str| action.get(key).and_then(Value::as_str);
    match text("type") {
        Some("uri") => {
            let uri = text("uri").ok_or_else(|| problem("must be specified", &format!("{property}.uri")))?;
            // `format: uri`: an absolute URI, a scheme then a colon.
            let scheme = uri.split_once(':').map(|(scheme, _)| scheme).unwrap_or_default();
            if scheme.is_empty()
                || !scheme.chars().all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character))
            {
                return Err(problem("must be a valid URI", &format!("{property}.uri")));
            }
        }
        Some("postback" | "datetimepicker") => {
            if text("data").is_some_and(|data| data.chars().count() > 300) {
                return Err(problem("Length must be between 0 and 300", &format!("{property}.data")));
            }
            if text("type") == Some("datetimepicker") {
                one_of(action, "mode", &["date", "time", "datetime"], property)?;
            }
        }
        Some("message") => required(action, "text", property)?,
        Some("camera" | "cameraRoll" | "location" | "richmenuswitch" | "clipboard") => {}
        Some(_) => {
            return Err(problem(
                "must be one of camera, cameraRoll, clipboard, datetimepicker, location, message, postback, \
                 richmenuswitch, uri",
                &format!("{property}.type"),
            ));
        }
        None => return Err(problem("must be specified", &format!("{property}.type"))),
    }
    Ok(())
}

fn required(value: &Value, key: &str, property: &str) -> Result<(), Problem> {
    value.get(key).map(|_| ()).ok_or_else(|| problem("must be specified", &format!("{property}.{key}")))
}

fn array<'a>(value: &'a Value, key: &str, property: &str) -> Result<&'a Vec<Value>, Problem> {
    match value.get(key) {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(problem("must be an array", &format!("{property}.{key}"))),
        None => Err(problem("must be specified", &format!("{property}.{key}"))),
    }
}

fn one_of(value: &Value, key: &str, allowed: &[&str], property: &str) -> Result<(), Problem> {
    match value.get(key) {
        None => Ok(()),
        Some(Value::String(text)) if allowed.contains(&text.as_str()) => Ok(()),
        Some(_) => Err(problem(&format!("must be one of {}", allowed.join(", ")), &format!("{property}.{key}"))),
    }
}

/// A checked Flex container as HTML for the phones page: bubbles side by side, boxes as
/// rows or columns, texts, and buttons (a link for a URI; for a postback, a button the
/// page's script sends as the user's tap, from `user`).
pub(super) fn draw(container: &Value, user: &str) -> String {
    let bubbles: Vec<&Value> = match container.get("contents").and_then(Value::as_array) {
        Some(bubbles) if container["type"] == "carousel" => bubbles.iter().collect(),
        _ => vec![container],
    };
    let drawn: String = bubbles.iter().map(|bubble| draw_bubble(bubble, user)).collect();
    format!("<div class=\"carousel\">{drawn}</div>")
}

fn draw_bubble(bubble: &Value, user: &str) -> String {
    let blocks: String = ["header", "hero", "body", "footer"]
        .iter()
        .filter_map(|block| bubble.get(*block).map(|component| (block, component)))
        .map(|(block, component)| format!("<div class=\"flex-{block}\">{}</div>", draw_component(component, user)))
        .collect();
    format!("<div class=\"flex-bubble\">{blocks}</div>")
}

fn draw_component(component: &Value, user: &str) -> String {
    let attribute = |text: &str| html_escape::encode_double_quoted_attribute(text).into_owned();
    match component["type"].as_str().unwrap_or_default() {
        "box" => {
            let children: String = component["contents"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|child| draw_component(child, user))
                .collect();
            let layout = component["layout"].as_str().unwrap_or("vertical");
            format!("<div class=\"flex-box {}\">{children}</div>", attribute(layout))
        }
        "text" => {
            let text = component["text"].as_str().unwrap_or_default();
            let weight = if component["weight"] == "bold" { " bold" } else { "" };
            let size = component["size"].as_str().unwrap_or("md");
            let style = component["color"].as_str().map(|color| format!(" style=\"color:{}\"", attribute(color)));
            format!(
                "<div class=\"flex-text size-{}{weight}\"{}>{}</div>",
                attribute(size),
                style.unwrap_or_default(),
                html_escape::encode_text(text)
            )
        }
        "button" => {
            let action = &component["action"];
            let label = html_escape::encode_text(action["label"].as_str().unwrap_or_default()).into_owned();
            let style = attribute(component["style"].as_str().unwrap_or("link"));
            match action["type"].as_str() {
                Some("uri") => format!(
                    "<a class=\"flex-button {style}\" href=\"{}\" target=\"_blank\" rel=\"noopener\">{label}</a>",
                    attribute(action["uri"].as_str().unwrap_or_default())
                ),
                Some("postback") => format!(
                    "<button class=\"flex-button {style}\" {}>{label}</button>",
                    super::users::tap_attributes(user, &super::users::postback_tap(action))
                ),
                _ => format!("<span class=\"flex-button {style}\">{label}</span>"),
            }
        }
        "separator" => "<hr>".to_string(),
        _ => String::new(),
    }
}

/// The page's look of cards, beside `PHONE_STYLE`.
pub const FLEX_STYLE: &str = ".carousel{display:flex;gap:.5em;overflow-x:auto;margin:.5em .6em}\
.flex-bubble{background:white;border-radius:14px;min-width:220px;max-width:240px;overflow:hidden;font-size:.85em}\
.flex-header,.flex-body,.flex-footer{padding:.6em}.flex-footer{padding-top:0}\
.flex-box{display:flex;flex-direction:column;gap:.3em}.flex-box.horizontal,.flex-box.baseline{flex-direction:row;\
align-items:baseline;gap:.6em}\
.flex-text{white-space:pre-wrap;line-height:1.4}.flex-text.bold{font-weight:bold}.flex-text.size-xs{font-size:.75em}\
.flex-text.size-sm{font-size:.9em}.flex-text.size-lg{font-size:1.15em}\
.flex-button{display:block;text-align:center;border-radius:8px;padding:.45em;border:0;font-size:.95em;\
text-decoration:none;cursor:pointer;width:100%;box-sizing:border-box}\
.flex-button.primary{background:#1e7f4f;color:white}.flex-button.secondary{background:#eef1f4;color:#111}\
.flex-button.link{background:none;color:#2a62c9}";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn card() -> Value {
        json!({
            "type": "flex", "altText": "予防接種のお知らせ",
            "contents": { "type": "bubble", "size": "kilo",
                "header": { "type": "box", "layout": "vertical", "contents": [{ "type": "text", "text": "予防接種" }] },
                "footer": { "type": "box", "layout": "vertical", "contents": [
                    { "type": "button", "style": "link", "action": { "type": "uri", "label": "詳しく", "uri": "https://example.jp/" } },
                    { "type": "button", "action": { "type": "postback", "label": "配信の設定", "data": "action=settings" } },
                ] },
            },
        })
    }

    /// Each case changes the valid card at one JSON pointer (None removes the value there).
    fn check(cases: &[(&str, &str, Option<Value>, Option<&str>)]) {
        let mut failures = Vec::new();
        for (what, pointer, value, refused_at) in cases {
            let mut message = card();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let target = message.pointer_mut(parent).unwrap();
            match (value, target) {
                (Some(value), Value::Array(items)) => items[key.parse::<usize>().unwrap()] = value.clone(),
                (Some(value), target) => target[key] = value.clone(),
                (None, Value::Object(object)) => drop(object.remove(key)),
                (None, _) => unreachable!("only object keys are removed"),
            }
            let got = check_message(&message, "messages[0]").err().map(|(_, property)| property);
            if got.as_deref() != *refused_at {
                failures.push(format!("{what}: expected {refused_at:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn flex_messages_are_checked_as_lines_schema_says() {
        check(&[
            ("the card as the outbox sends it", "/altText", Some(json!("予防接種のお知らせ")), None),
            ("no altText", "/altText", None, Some("messages[0].altText")),
            ("an empty altText", "/altText", Some(json!("")), Some("messages[0].altText")),
            ("no contents", "/contents", None, Some("messages[0].contents")),
            ("a container of another type", "/contents/type", Some(json!("box")), Some("messages[0].contents.type")),
            ("a bubble of an unknown size", "/contents/size", Some(json!("huge")), Some("messages[0].contents.size")),
            ("a box without a layout", "/contents/header/layout", None, Some("messages[0].contents.header.layout")),
            ("a box without contents", "/contents/header/contents", None, Some("messages[0].contents.header.contents")),
            (
                "a button without an action",
                "/contents/footer/contents/0",
                Some(json!({ "type": "button", "style": "link" })),
                Some("messages[0].contents.footer.contents[0].action"),
            ),
            (
                "a URI action without a URI",
                "/contents/footer/contents/0/action/uri",
                None,
                Some("messages[0].contents.footer.contents[0].action.uri"),
            ),
            (
                "a relative URI",
                "/contents/footer/contents/0/action/uri",
                Some(json!("/programs/mr")),
                Some("messages[0].contents.footer.contents[0].action.uri"),
            ),
            (
                "postback data of 301 characters",
                "/contents/footer/contents/1/action/data",
                Some(json!("a".repeat(301))),
                Some("messages[0].contents.footer.contents[1].action.data"),
            ),
            (
                "postback data of 300 characters",
                "/contents/footer/contents/1/action/data",
                Some(json!("a".repeat(300))),
                None,
            ),
            (
                "a button style LINE does not have",
                "/contents/footer/contents/0/style",
                Some(json!("danger")),
                Some("messages[0].contents.footer.contents[0].style"),
            ),
            (
                "a component of an unknown type",
                "/contents/header/contents/0",
                Some(json!({ "type": "table" })),
                Some("messages[0].contents.header.contents[0].type"),
            ),
        ]);
    }

    #[test]
    fn a_carousel_holds_only_bubbles() {
        let bubble = card()["contents"].clone();
        let carousel = json!({ "type": "flex", "altText": "2件", "contents": { "type": "carousel", "contents": [bubble.clone(), bubble] } });
        assert_eq!(check_message(&carousel, "messages[0]"), Ok(()));
        let mixed = json!({ "type": "flex", "altText": "2件", "contents": { "type": "carousel", "contents": [{ "type": "box", "layout": "vertical", "contents": [] }] } });
        assert_eq!(check_message(&mixed, "messages[0]").unwrap_err().1, "messages[0].contents.contents[0].type");
    }

    #[test]
    fn a_card_is_drawn_with_its_texts_its_link_and_a_postback_button_from_its_user() {
        let html = draw(&card()["contents"], "U1");
        assert!(html.contains("予防接種"), "{html}");
        assert!(html.contains("href=\"https://example.jp/\""), "{html}");
        assert!(html.contains("data-user=\"U1\"") && html.contains("action=settings"), "{html}");
    }
}

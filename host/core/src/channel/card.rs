//! A notice as a card: what the outbox stores beside a delivery's plain text, drawn as a
//! LINE Flex bubble (several notices of one request as a carousel) and as links under an
//! e-mail's text. A survey's card has a postback button per choice as well.

use serde::{Deserialize, Serialize};

use crate::link_opens::Button;
use serde_json::{Value, json};

/// The longest `altText` LINE shows in a notification and on clients without Flex
/// ("Max character limit: 1500", the Messaging API reference of Flex messages).
pub(crate) const ALT_TEXT_LIMIT: usize = 1500;

/// The postback of a card's 「配信の設定」 button: the chat's settings, where one more
/// tap mutes the card's category (`chat::postback_action`'s `settings`).
pub const SETTINGS_POSTBACK: &str = "action=settings";

/// What a card shows besides the message's text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// The program's code and the occasion's key, which name its links' tokens
    /// (`link_opens`); empty on cards stored before links were counted.
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub occasion: String,
    /// The program's name, above the title.
    pub program: String,
    /// The occasion's title (「1期」, 「2026年度」…).
    pub title: String,
    /// The deadline in era form, as the text writes it (令和8年3月31日).
    pub deadline: String,
    /// 「詳しく」: where the program is explained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_url: Option<String>,
    /// 「予約・申請」: the city's online booking or application, when the division set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_url: Option<String>,
    /// A survey's choices, each a button whose postback the chat answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
}

/// A button that answers with a postback: its label, and the data the chat reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub label: String,
    pub data: String,
}

impl Card {
    /// The card with its links going through `public_url`'s `/r/{token}`, where each
    /// opening is counted (`link_opens`); unchanged without a public address, or for a
    /// card stored before links were counted.
    pub fn linked_through(&self, public_url: Option<&str>) -> Card {
        let Some(base) = public_url.map(|url| url.trim_end_matches('/')) else { return self.clone() };
        if self.code.is_empty() {
            return self.clone();
        }
        let through = |button, url: &Option<String>| {
            url.as_ref()
                .map(|url| format!("{base}/r/{}", crate::link_opens::token(&self.code, &self.occasion, button, url)))
        };
        Card {
            details_url: through(Button::Details, &self.details_url),
            booking_url: through(Button::Booking, &self.booking_url),
            ..self.clone()
        }
    }

    /// The card as a Flex bubble, `text` (the notice's wording) as its body.
    pub fn bubble(&self, text: &str) -> Value {
        // The tapped choice is shown in the chat as the user's own words (`displayText`).
        let mut buttons: Vec<Value> = self
            .choices
            .iter()
            .map(|choice| {
                json!({
                    "type": "button", "style": "primary", "height": "sm", "color": "#1E7F4F",
                    "action": { "type": "postback", "label": choice.label, "data": choice.data, "displayText": choice.label },
                })
            })
            .collect();
        if let Some(url) = &self.booking_url {
            buttons.push(json!({
                "type": "button", "style": "primary", "height": "sm", "color": "#1E7F4F",
                "action": { "type": "uri", "label": "予約・申請", "uri": url },
            }));
        }
        if let Some(url) = &self.details_url {
            buttons.push(json!({
                "type": "button", "style": "secondary", "height": "sm",
                "action": { "type": "uri", "label": "詳しく", "uri": url },
            }));
        }
        buttons.push(json!({
            "type": "button", "style": "link", "height": "sm",
            "action": { "type": "postback", "label": "配信の設定", "data": SETTINGS_POSTBACK, "displayText": "配信の設定" },
        }));
        json!({
            "type": "bubble",
            "size": "kilo",
            "header": {
                "type": "box", "layout": "vertical", "spacing": "xs",
                "contents": [
                    { "type": "text", "text": self.program, "size": "xs", "color": "#1E7F4F", "weight": "bold", "wrap": true },
                    { "type": "text", "text": self.title, "size": "lg", "weight": "bold", "wrap": true },
                ],
            },
            "body": {
                "type": "box", "layout": "vertical", "spacing": "md",
                "contents": [
                    { "type": "text", "text": text, "size": "sm", "wrap": true },
                    {
                        "type": "box", "layout": "baseline", "spacing": "sm",
                        "contents": [
                            { "type": "text", "text": "期限", "size": "sm", "color": "#888888", "flex": 1 },
                            { "type": "text", "text": self.deadline, "size": "sm", "weight": "bold", "flex": 4, "wrap": true },
                        ],
                    },
                ],
            },
            "footer": { "type": "box", "layout": "vertical", "spacing": "sm", "contents": buttons },
        })
    }

    /// The links an e-mail gives under the card's text, one a line.
    pub fn mail_links(&self) -> String {
        let mut links = String::new();
        if let Some(url) = &self.booking_url {
            links.push_str(&format!("\n予約・申請: {url}"));
        }
        if let Some(url) = &self.details_url {
            links.push_str(&format!("\n詳しく: {url}"));
        }
        links
    }
}

/// One Flex message for a request's cards, each given with its text: a bubble for one, a
/// carousel for several; its `altText` is the plain texts, cut to what LINE shows.
pub fn flex_message(cards: &[(&Card, &str)]) -> Value {
    let texts: Vec<&str> = cards.iter().map(|(_, text)| *text).collect();
    let mut alt_text = texts.join("\n\n");
    if alt_text.chars().count() > ALT_TEXT_LIMIT {
        alt_text = alt_text.chars().take(ALT_TEXT_LIMIT - 1).collect::<String>() + "…";
    }
    let contents = match cards {
        [(card, text)] => card.bubble(text),
        several => json!({
            "type": "carousel",
            "contents": several.iter().map(|(card, text)| card.bubble(text)).collect::<Vec<_>>(),
        }),
    };
    json!({ "type": "flex", "altText": alt_text, "contents": contents })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(booking: bool) -> Card {
        Card {
            code: "vaccine-mr".into(),
            occasion: "phase-1".into(),
            program: "麻しん風しん予防接種".into(),
            title: "1期".into(),
            deadline: "令和9年3月31日".into(),
            details_url: Some("https://laws.e-gov.go.jp/law/323CO0000000197".into()),
            booking_url: booking.then(|| "https://yoyaku.example.jp/mr".into()),
            choices: Vec::new(),
        }
    }

    fn labels(bubble: &Value) -> Vec<&str> {
        bubble["footer"]["contents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|button| button["action"]["label"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn a_card_has_its_buttons_only_when_their_links_are_set_and_always_the_settings() {
        assert_eq!(labels(&card(true).bubble("本文")), ["予約・申請", "詳しく", "配信の設定"]);
        assert_eq!(labels(&card(false).bubble("本文")), ["詳しく", "配信の設定"]);
        let bare = Card { details_url: None, ..card(false) };
        assert_eq!(labels(&bare.bubble("本文")), ["配信の設定"]);
        assert_eq!(bare.mail_links(), "");
        assert_eq!(
            card(true).mail_links(),
            "\n予約・申請: https://yoyaku.example.jp/mr\n詳しく: https://laws.e-gov.go.jp/law/323CO0000000197"
        );
    }

    /// With a public address a card's links go through its `/r/{token}`, the token named
    /// by program, occasion, button and address; without one, or on a card stored before
    /// links were counted, they stay as they are.
    #[test]
    fn a_cards_links_go_through_the_server_when_it_has_a_public_address() {
        let through = card(true).linked_through(Some("https://oshirase.city.example.jp/"));
        let token = |button, url| crate::link_opens::token("vaccine-mr", "phase-1", button, url);
        assert_eq!(
            (through.booking_url.unwrap(), through.details_url.unwrap()),
            (
                format!(
                    "https://oshirase.city.example.jp/r/{}",
                    token(Button::Booking, "https://yoyaku.example.jp/mr")
                ),
                format!(
                    "https://oshirase.city.example.jp/r/{}",
                    token(Button::Details, "https://laws.e-gov.go.jp/law/323CO0000000197")
                ),
            )
        );
        assert_eq!(card(true).linked_through(None), card(true));
        let stored_before = Card { code: String::new(), occasion: String::new(), ..card(true) };
        assert_eq!(stored_before.linked_through(Some("https://oshirase.city.example.jp")), stored_before);
    }

    #[test]
    fn one_card_is_a_bubble_several_a_carousel_and_the_alt_text_is_their_plain_text_within_lines_limit() {
        let (first, second) = (card(true), card(false));
        let one = flex_message(&[(&first, "はじめ")]);
        assert_eq!((one["contents"]["type"].as_str(), one["altText"].as_str()), (Some("bubble"), Some("はじめ")));
        let two = flex_message(&[(&first, "はじめ"), (&second, "つぎ")]);
        assert_eq!(two["contents"]["type"], "carousel");
        assert_eq!(two["contents"]["contents"].as_array().unwrap().len(), 2);
        assert_eq!(two["altText"], "はじめ\n\nつぎ");
        let long = "あ".repeat(1000);
        let cut = flex_message(&[(&first, long.as_str()), (&second, long.as_str())]);
        let alt_text = cut["altText"].as_str().unwrap();
        assert_eq!(alt_text.chars().count(), ALT_TEXT_LIMIT);
        assert!(alt_text.ends_with('…'));
    }
}

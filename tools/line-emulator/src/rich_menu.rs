//! Rich menus as `messaging-api.yml` describes them: create (`RichMenuRequest`: a size, a
//! name of at most 300 characters, a chat bar text of at most 14, areas each with bounds
//! and an action), upload the image on the data host (once per menu, PNG or JPEG), set
//! and read the default, list and delete; and the default menu drawn under each phone,
//! its areas tappable as the user's postbacks.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Emulator, check_token, error, invalid};

/// A rich menu the channel holds.
#[derive(Clone, Debug)]
pub struct RichMenu {
    pub id: String,
    /// The `RichMenuRequest` as created.
    pub menu: Value,
    /// The uploaded image, once it is.
    pub image: Option<Vec<u8>>,
    pub image_type: Option<String>,
}

/// The channel's rich menus and which is every user's default.
#[derive(Default)]
pub(super) struct RichMenus {
    pub(super) menus: Vec<RichMenu>,
    pub(super) default: Option<String>,
}

/// Checks a `RichMenuRequest`: its required parts, lengths and the areas' actions.
fn check_menu(menu: &Value) -> Result<(), Response> {
    let size = menu.get("size").ok_or_else(|| invalid("must be specified", "size"))?;
    for side in ["width", "height"] {
        if size.get(side).and_then(Value::as_i64).is_none_or(|value| value < 1) {
            return Err(invalid("must be greater than or equal to 1", &format!("size.{side}")));
        }
    }
    let text = |key: &str| menu.get(key).and_then(Value::as_str);
    if text("name").is_none_or(|name| name.chars().count() > 300) {
        return Err(invalid("Length must be between 0 and 300", "name"));
    }
    if text("chatBarText").is_none_or(|bar| bar.chars().count() > 14) {
        return Err(invalid("Length must be between 0 and 14", "chatBarText"));
    }
    let areas = menu.get("areas").and_then(Value::as_array).ok_or_else(|| invalid("must be specified", "areas"))?;
    if areas.len() > 20 {
        return Err(invalid("Size must be between 0 and 20", "areas"));
    }
    for (index, area) in areas.iter().enumerate() {
        let property = format!("areas[{index}]");
        let bounds = area.get("bounds").ok_or_else(|| invalid("must be specified", &format!("{property}.bounds")))?;
        for (key, least) in [("x", 0), ("y", 0), ("width", 1), ("height", 1)] {
            if bounds.get(key).and_then(Value::as_i64).is_none_or(|value| value < least) {
                return Err(invalid(
                    &format!("must be greater than or equal to {least}"),
                    &format!("{property}.bounds.{key}"),
                ));
            }
        }
        let action = area.get("action").ok_or_else(|| invalid("must be specified", &format!("{property}.action")))?;
        super::flex::check_action(action, &format!("{property}.action"))
            .map_err(|(detail, at)| invalid(&detail, &at))?;
    }
    Ok(())
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not found", None)
}

/// `POST /v2/bot/richmenu`.
pub(super) async fn create(State(emulator): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = check_token(&emulator, &headers) {
        return refused;
    }
    let Ok(menu) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "The request body could not be parsed as JSON", None);
    };
    if let Err(refused) = check_menu(&menu) {
        return refused;
    }
    let id = format!("richmenu-{}", uuid::Uuid::new_v4().simple());
    emulator.rich_menus.lock().unwrap().menus.push(RichMenu { id: id.clone(), menu, image: None, image_type: None });
    axum::Json(json!({ "richMenuId": id })).into_response()
}

/// `POST /v2/bot/richmenu/{richMenuId}/content` (the data host): a PNG or JPEG, once.
pub(super) async fn upload(
    State(emulator): State<Emulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = check_token(&emulator, &headers) {
        return refused;
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let is_image = match content_type {
        "image/png" => body.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => body.starts_with(&[0xff, 0xd8]),
        _ => false,
    };
    if !is_image {
        return error(StatusCode::BAD_REQUEST, "The image must be a PNG or JPEG sent as image/png or image/jpeg", None);
    }
    let mut rich_menus = emulator.rich_menus.lock().unwrap();
    let Some(menu) = rich_menus.menus.iter_mut().find(|menu| menu.id == id) else { return not_found() };
    if menu.image.is_some() {
        return error(StatusCode::BAD_REQUEST, "An image has already been uploaded to the richmenu", None);
    }
    menu.image = Some(body.to_vec());
    menu.image_type = Some(content_type.to_string());
    StatusCode::OK.into_response()
}

/// `POST /v2/bot/user/all/richmenu/{richMenuId}`: only a menu with its image.
pub(super) async fn set_default(
    State(emulator): State<Emulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = check_token(&emulator, &headers) {
        return refused;
    }
    let mut rich_menus = emulator.rich_menus.lock().unwrap();
    match rich_menus.menus.iter().find(|menu| menu.id == id) {
        None => return not_found(),
        Some(menu) if menu.image.is_none() => {
            return error(StatusCode::BAD_REQUEST, "must upload richmenu image before applying it to user", None);
        }
        Some(_) => {}
    }
    rich_menus.default = Some(id);
    StatusCode::OK.into_response()
}

/// `GET /v2/bot/user/all/richmenu`.
pub(super) async fn get_default(State(emulator): State<Emulator>, headers: HeaderMap) -> Response {
    if let Err(refused) = check_token(&emulator, &headers) {
        return refused;
    }
    match emulator.rich_menus.lock().unwrap().default.clone() {
        Some(id) => axum::Json(json!({ "richMenuId": id })).into_response(),
        None => not_found(),
    }
}

/// `GET /v2/bot/richmenu/list` (`RichMenuListResponse`).
pub(super) async fn list(State(emulator): State<Emulator>, headers: HeaderMap) -> Response {
    if let Err(refused) = check_token(&emulator, &headers) {
        return refused;
    }
    let menus: Vec<Value> = emulator
        .rich_menus
        .lock()
        .unwrap()
        .menus
        .iter()
        .map(|menu| {
            let mut response = menu.menu.clone();
            response["richMenuId"] = json!(menu.id);
            response
        })
        .collect();
    axum::Json(json!({ "richmenus": menus })).into_response()
}

/// `DELETE /v2/bot/richmenu/{richMenuId}`; the default goes with it.
pub(super) async fn delete(State(emulator): State<Emulator>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(refused) = check_token(&emulator, &headers) {
        return refused;
    }
    let mut rich_menus = emulator.rich_menus.lock().unwrap();
    let before = rich_menus.menus.len();
    rich_menus.menus.retain(|menu| menu.id != id);
    if rich_menus.menus.len() == before {
        return not_found();
    }
    if rich_menus.default.as_deref() == Some(id.as_str()) {
        rich_menus.default = None;
    }
    StatusCode::OK.into_response()
}

/// The default menu under a phone: its image, with each area a button over it that sends
/// the area's postback as `user`'s tap; nothing without a default menu.
pub(super) fn draw(emulator: &Emulator, user: &str) -> String {
    let rich_menus = emulator.rich_menus.lock().unwrap();
    let Some(menu) = rich_menus.default.as_ref().and_then(|id| rich_menus.menus.iter().find(|menu| &menu.id == id))
    else {
        return String::new();
    };
    if menu.image.is_none() {
        return String::new();
    }
    let (width, height) =
        (menu.menu["size"]["width"].as_f64().unwrap_or(1.0), menu.menu["size"]["height"].as_f64().unwrap_or(1.0));
    let attribute = |text: &str| html_escape::encode_double_quoted_attribute(text).into_owned();
    let mut areas = String::new();
    for area in menu.menu["areas"].as_array().into_iter().flatten() {
        let bounds = &area["bounds"];
        let percent = |key: &str, whole: f64| bounds[key].as_f64().unwrap_or(0.0) * 100.0 / whole;
        let action = &area["action"];
        areas.push_str(&format!(
            "<button class=\"rich-area\" style=\"left:{:.2}%;top:{:.2}%;width:{:.2}%;height:{:.2}%\" {} \
             aria-label=\"{}\"></button>",
            percent("x", width),
            percent("y", height),
            percent("width", width),
            percent("height", height),
            super::users::tap_attributes(user, &super::users::postback_tap(action)),
            attribute(action["label"].as_str().unwrap_or_default()),
        ));
    }
    // The image is fetched once for every phone (relative, like the page's script, so it
    // works under the demo's path too), not written into the page each time.
    format!(
        "<div class=\"rich-menu\"><img alt=\"{}\" src=\"emulator/rich-menu\">{areas}</div>",
        attribute(menu.menu["chatBarText"].as_str().unwrap_or_default()),
    )
}

/// `GET /emulator/rich-menu`: the default menu's image, for the phones page.
pub(super) async fn default_image(State(emulator): State<Emulator>) -> Response {
    let rich_menus = emulator.rich_menus.lock().unwrap();
    let menu = rich_menus.default.as_ref().and_then(|id| rich_menus.menus.iter().find(|menu| &menu.id == id));
    match menu.and_then(|menu| Some((menu.image.clone()?, menu.image_type.clone()?))) {
        Some((image, image_type)) => ([(header::CONTENT_TYPE, image_type)], image).into_response(),
        None => not_found(),
    }
}

/// The look of the menu under a phone.
pub const RICH_MENU_STYLE: &str = ".rich-menu{position:relative;margin:.6em .6em 0}.rich-menu img{width:100%;display:block}\
.rich-area{position:absolute;background:transparent;border:0;cursor:pointer}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_menu_is_checked_as_lines_schema_says() {
        let menu = |chat_bar: &str, area: Value| json!({ "size": { "width": 2500, "height": 843 }, "selected": true, "name": "oshirase", "chatBarText": chat_bar, "areas": [area] });
        let area = json!({ "bounds": { "x": 0, "y": 0, "width": 1250, "height": 421 }, "action": { "type": "postback", "data": "action=help" } });
        assert!(check_menu(&menu("メニュー", area.clone())).is_ok());
        let refused = |menu: Value| check_menu(&menu).is_err();
        assert!(refused(menu("十五文字を超えるメニューの名前です", area.clone())), "a chat bar text of 15");
        assert!(refused(menu(
            "メニュー",
            json!({ "bounds": { "x": 0, "y": 0, "width": 0, "height": 421 }, "action": { "type": "postback" } })
        )));
        assert!(
            refused(menu("メニュー", json!({ "bounds": { "x": 0, "y": 0, "width": 10, "height": 10 } }))),
            "no action"
        );
        assert!(
            refused(menu(
                "メニュー",
                json!({ "bounds": { "x": 0, "y": 0, "width": 10, "height": 10 }, "action": { "type": "uri" } })
            )),
            "a URI action without its URI"
        );
    }
}

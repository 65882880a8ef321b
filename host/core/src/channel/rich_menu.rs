//! The chat's rich menu, always under the conversation: four areas whose postbacks the
//! chat already understands, on an image drawn here in Japanese, installed through the
//! Messaging API as the default menu. Installing again replaces the menu.

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::{Value, json};

use super::line::{Host, LineClient};

/// The menu's name among the channel's rich menus: an install replaces those with it.
pub const MENU_NAME: &str = "oshirase";
/// LINE's compact rich menu size (the image and the areas' coordinates).
pub const WIDTH: u32 = 2500;
pub const HEIGHT: u32 = 843;
/// The text of the bar that opens and closes the menu (`chatBarText`, at most 14).
const CHAT_BAR_TEXT: &str = "メニュー";

/// The areas, left to right and top to bottom in a grid of two by two: the label drawn
/// and the postback the chat answers (`chat::postback_action`).
pub const AREAS: [(&str, &str); 4] = [
    ("受け取る設定", "action=settings"),
    ("申し込み・登録", "action=apply"),
    ("登録内容の確認", "action=timing-list"),
    ("ヘルプ", "action=help"),
];

/// Each area's tile: (x, y, width, height) in the image.
fn tiles() -> impl Iterator<Item = (u32, u32, u32, u32)> {
    (0..AREAS.len() as u32).map(|index| {
        let (width, height) = (WIDTH / 2, HEIGHT / 2);
        ((index % 2) * width, (index / 2) * height, width, if index / 2 == 1 { HEIGHT - height } else { height })
    })
}

/// The rich menu object (`RichMenuRequest`).
pub fn menu() -> Value {
    let areas: Vec<Value> = AREAS
        .iter()
        .zip(tiles())
        .map(|((label, data), (x, y, width, height))| {
            json!({
                "bounds": { "x": x, "y": y, "width": width, "height": height },
                "action": { "type": "postback", "label": label, "data": data, "displayText": label },
            })
        })
        .collect();
    json!({
        "size": { "width": WIDTH, "height": HEIGHT },
        "selected": true,
        "name": MENU_NAME,
        "chatBarText": CHAT_BAR_TEXT,
        "areas": areas,
    })
}

/// The menu's image as a PNG: each area a tile with its label centred in `font` (a
/// TrueType font with Japanese glyphs, IPAexGothic by default).
pub fn draw_image(font: &[u8]) -> Result<Vec<u8>> {
    use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
    let font = FontRef::try_from_slice(font).context("the font file is not a TrueType font ab_glyph can read")?;
    const BACKGROUNDS: [[u8; 3]; 4] = [[0x1e, 0x7f, 0x4f], [0x2a, 0x62, 0xc9], [0x5b, 0x6b, 0x7a], [0xc9, 0x6a, 0x1e]];
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    let scaled = font.as_scaled(PxScale::from(120.0));
    for ((label, _), ((x, y, width, height), background)) in AREAS.iter().zip(tiles().zip(BACKGROUNDS)) {
        for row in y..y + height {
            for column in x..x + width {
                // A white line of 6 pixels between the tiles.
                let edge = column < x + 3 || column + 3 >= x + width || row < y + 3 || row + 3 >= y + height;
                let color = if edge { [0xff; 3] } else { background };
                let at = ((row * WIDTH + column) * 3) as usize;
                pixels[at..at + 3].copy_from_slice(&color);
            }
        }
        let glyphs: Vec<_> = label.chars().map(|character| scaled.glyph_id(character)).collect();
        if let Some(missing) = label.chars().zip(&glyphs).find(|(_, glyph)| glyph.0 == 0) {
            anyhow::bail!("the font has no glyph for {:?}; give a font with Japanese glyphs", missing.0);
        }
        let text_width: f32 = glyphs.iter().map(|glyph| scaled.h_advance(*glyph)).sum();
        let mut pen_x = x as f32 + (width as f32 - text_width) / 2.0;
        let baseline = y as f32 + (height as f32 + scaled.ascent() + scaled.descent()) / 2.0;
        for glyph_id in glyphs {
            let glyph = glyph_id.with_scale_and_position(scaled.scale(), ab_glyph::point(pen_x, baseline));
            pen_x += scaled.h_advance(glyph_id);
            let Some(outlined) = font.outline_glyph(glyph) else { continue };
            let bounds = outlined.px_bounds();
            outlined.draw(|glyph_x, glyph_y, coverage| {
                let (column, row) = (bounds.min.x as i64 + glyph_x as i64, bounds.min.y as i64 + glyph_y as i64);
                if (0..WIDTH as i64).contains(&column) && (0..HEIGHT as i64).contains(&row) {
                    let at = ((row as u32 * WIDTH + column as u32) * 3) as usize;
                    for channel in &mut pixels[at..at + 3] {
                        // White text over the tile, by how much of the pixel the glyph covers.
                        *channel = (*channel as f32 + (255.0 - *channel as f32) * coverage.min(1.0)) as u8;
                    }
                }
            });
        }
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("cannot write the menu image")?;
    writer.write_image_data(&pixels).context("cannot write the menu image")?;
    writer.finish().context("cannot write the menu image")?;
    Ok(png)
}

/// What an install did: the new menu's id, and the earlier menus of the same name it
/// replaced (deleted once the new one was the default).
#[derive(Debug)]
pub struct Installed {
    pub rich_menu_id: String,
    pub replaced: Vec<String>,
}

/// Creates the menu, uploads `image` (a PNG of `WIDTH` × `HEIGHT`), makes it every user's
/// default, and only then deletes the channel's earlier menus named `MENU_NAME`, so no
/// user is ever without one.
pub async fn install(line: &LineClient, image: Vec<u8>) -> Result<Installed> {
    let list = line.call(Method::GET, Host::Api, "/v2/bot/richmenu/list", None).await?;
    let earlier: Vec<String> = list["richmenus"]
        .as_array()
        .context("LINE's rich menu list has no richmenus")?
        .iter()
        .filter(|menu| menu["name"] == MENU_NAME)
        .filter_map(|menu| menu["richMenuId"].as_str().map(str::to_string))
        .collect();
    let created = line
        .call(Method::POST, Host::Api, "/v2/bot/richmenu", Some(("application/json", menu().to_string().into_bytes())))
        .await?;
    let id = created["richMenuId"].as_str().context("LINE answered the new rich menu without its id")?.to_string();
    line.call(Method::POST, Host::Data, &format!("/v2/bot/richmenu/{id}/content"), Some(("image/png", image))).await?;
    line.call(Method::POST, Host::Api, &format!("/v2/bot/user/all/richmenu/{id}"), None).await?;
    for old in &earlier {
        line.call(Method::DELETE, Host::Api, &format!("/v2/bot/richmenu/{old}"), None).await?;
    }
    Ok(Installed { rich_menu_id: id, replaced: earlier })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::line::LineConfig;

    fn font() -> Vec<u8> {
        std::fs::read(crate::postcards::DEFAULT_FONT).expect("IPAexGothic, as .ci/run installs it")
    }

    #[test]
    fn the_areas_tile_the_image_and_each_postback_is_one_the_chat_answers() {
        let menu = menu();
        let areas = menu["areas"].as_array().unwrap();
        let covered: u64 = areas
            .iter()
            .map(|area| area["bounds"]["width"].as_u64().unwrap() * area["bounds"]["height"].as_u64().unwrap())
            .sum();
        assert_eq!(covered, u64::from(WIDTH * HEIGHT), "the areas cover the image once");
        for (label, data) in AREAS {
            assert!(crate::chat::understands_postback(data), "{label}: {data}");
        }
    }

    #[test]
    fn the_image_is_a_png_of_the_menus_size_with_the_labels_drawn() {
        let png = draw_image(&font()).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((frame.width, frame.height), (WIDTH, HEIGHT));
        // The centre of the first tile is in its label: some pixels there are white text.
        let white = (HEIGHT / 4 - 40..HEIGHT / 4 + 40)
            .flat_map(|row| (WIDTH / 4 - 300..WIDTH / 4 + 300).map(move |column| (row, column)))
            .filter(|(row, column)| {
                let at = ((row * WIDTH + column) * 3) as usize;
                pixels[at..at + 3] == [0xff, 0xff, 0xff]
            })
            .count();
        assert!(white > 1_000, "{white} white pixels where the first label is");
        let no_japanese = b"not a font".to_vec();
        assert!(draw_image(&no_japanese).is_err());
    }

    #[tokio::test]
    async fn installing_twice_leaves_one_default_menu_with_its_image() {
        let emulator = line_emulator::Emulator::new("token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(axum::serve(listener, emulator.router()).into_future());
        let line =
            LineClient::new(LineConfig { data_base_url: base_url.clone(), ..LineConfig::new(base_url, "token") })
                .unwrap();
        let image = draw_image(&font()).unwrap();
        let first = install(&line, image.clone()).await.unwrap();
        let second = install(&line, image.clone()).await.unwrap();
        server.abort();
        assert_eq!(second.replaced, std::slice::from_ref(&first.rich_menu_id));
        let menus = emulator.rich_menus();
        assert_eq!(menus.len(), 1, "the first menu was replaced");
        assert_eq!(menus[0].id, second.rich_menu_id);
        assert_eq!(menus[0].image.as_deref(), Some(image.as_slice()));
        assert_eq!(emulator.default_rich_menu(), Some(second.rich_menu_id));
    }
}

//! PDF: the text layer, page by page (lopdf), so page numbers are kept.

use super::{normalize_space, Block, BlockKind, ExtractError, Extracted, Limits};

pub(super) fn extract(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let document = match lopdf::Document::load_mem(bytes) {
        Ok(document) => document,
        Err(error) => {
            // Password-protected files fail to load; say so rather than
            // "damaged".
            if memchr_find(bytes, b"/Encrypt") {
                return Err(ExtractError::Encrypted);
            }
            return Err(ExtractError::Corrupt {
                reason: short(&error.to_string()),
            });
        }
    };
    if document.is_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    let pages = document.get_pages();
    let count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
    if count > limits.max_pages {
        return Err(ExtractError::TooManyPages {
            pages: count,
            limit: limits.max_pages,
        });
    }
    let mut extracted = Extracted {
        pages: Some(count),
        ..Extracted::default()
    };
    let mut budget = limits.max_decompressed_bytes;
    for (&number, &page_id) in &pages {
        let text = match page_text(&document, page_id, budget) {
            Ok(text) => text,
            Err(lopdf::Error::Decompress(_)) => {
                return Err(ExtractError::Decompression {
                    limit: limits.max_decompressed_bytes,
                })
            }
            // A page whose content cannot be read is skipped; the others
            // still count.
            Err(_) => String::new(),
        };
        budget = budget.saturating_sub(text.len());
        page_blocks(&text, number, &mut extracted.blocks);
    }
    if count > 0 && extracted.blocks.is_empty() {
        return Err(ExtractError::Scanned);
    }
    extracted.title = document_title(&document);
    Ok(extracted)
}

/// The text of one page in reading order of its content stream: a move
/// to another line starts a new line, a move of more than about two
/// lines starts a new paragraph, a wide gap inside a line is a space.
fn page_text(document: &lopdf::Document, page_id: lopdf::ObjectId, limit: usize) -> lopdf::Result<String> {
    use lopdf::Object;
    let fonts = document.get_page_fonts(page_id)?;
    let encodings: std::collections::BTreeMap<Vec<u8>, lopdf::Encoding<'_>> = fonts
        .into_iter()
        .filter_map(|(name, font)| {
            font.get_font_encoding(document)
                .ok()
                .map(|encoding| (name, encoding))
        })
        .collect();
    let content = lopdf::content::Content::decode(&document.get_page_content_with_limit(page_id, limit)?)?;
    let mut text = String::new();
    let mut encoding = None;
    let mut size: f32 = 12.0;
    let mut leading: f32 = 0.0;
    // The current line's height on the page and that of the last text
    // shown: a change between two shows is a new line.
    let mut y: f32 = 0.0;
    let mut last_y: Option<f32> = None;
    let mut space = false;
    let number = |object: Option<&Object>| object.and_then(|object| object.as_float().ok()).unwrap_or(0.0);
    let mut show = |text: &mut String,
                    y: f32,
                    space: &mut bool,
                    size: f32,
                    bytes: &[u8],
                    encoding: Option<&lopdf::Encoding<'_>>| {
        let Some(encoding) = encoding else { return };
        let Ok(decoded) = lopdf::Document::decode_text(encoding, bytes) else {
            return;
        };
        if let Some(last) = last_y {
            let gap = last - y;
            if gap.abs() > 0.01 && !text.is_empty() {
                // More than about two lines down (or any move up: a new
                // column) starts a paragraph.
                let paragraph = gap > size * 1.9 || gap < 0.0;
                let trimmed = text.trim_end_matches(' ').len();
                text.truncate(trimmed);
                text.push_str(if paragraph { "\n\n" } else { "\n" });
            } else if *space && !text.ends_with([' ', '\n']) && !text.is_empty() {
                text.push(' ');
            }
        }
        *space = false;
        last_y = Some(y);
        text.push_str(&decoded);
    };
    for operation in &content.operations {
        let operands = &operation.operands;
        match operation.operator.as_str() {
            "BT" => y = 0.0,
            "Tf" => {
                encoding = operands
                    .first()
                    .and_then(|name| name.as_name().ok())
                    .and_then(|name| encodings.get(name));
                size = number(operands.get(1)).abs().max(1.0);
            }
            "TL" => leading = number(operands.first()),
            "Td" | "TD" => {
                let (dx, dy) = (number(operands.first()), number(operands.get(1)));
                if operation.operator == "TD" {
                    leading = -dy;
                }
                y += dy;
                if dy.abs() <= 0.01 && dx > 0.0 {
                    space = true;
                }
            }
            "Tm" => {
                y = number(operands.get(5));
                space = true;
            }
            "T*" => y -= if leading.abs() > 0.01 { leading } else { size * 1.2 },
            "Tj" => {
                if let Some(Object::String(bytes, _)) = operands.first() {
                    show(&mut text, y, &mut space, size, bytes, encoding);
                }
            }
            "'" | "\"" => {
                y -= if leading.abs() > 0.01 { leading } else { size * 1.2 };
                if let Some(Object::String(bytes, _)) = operands.last() {
                    show(&mut text, y, &mut space, size, bytes, encoding);
                }
            }
            "TJ" => {
                if let Some(Object::Array(items)) = operands.first() {
                    for item in items {
                        match item {
                            Object::String(bytes, _) => show(&mut text, y, &mut space, size, bytes, encoding),
                            // A wide negative adjustment is a space between words.
                            Object::Integer(_) | Object::Real(_)
                                if item.as_float().unwrap_or(0.0) < -200.0 =>
                            {
                                space = true;
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(text)
}

fn document_title(document: &lopdf::Document) -> Option<String> {
    let info = document.trailer.get(b"Info").ok()?.as_reference().ok()?;
    let title = document.get_dictionary(info).ok()?.get(b"Title").ok()?;
    let title = lopdf::decode_text_string(title).ok()?;
    let title = normalize_space(&title);
    (!title.is_empty()).then_some(title)
}

/// A page's text in paragraphs (split at blank lines), short lines that
/// read like titles as headings, lines starting with a bullet as list
/// items.
fn page_blocks(text: &str, page: u32, blocks: &mut Vec<Block>) {
    let text = normalize_space(text);
    for paragraph in text.split("\n\n") {
        let mut pending: Vec<&str> = Vec::new();
        let lines: Vec<&str> = paragraph.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            // A title is followed by a line that does not continue it.
            let followed = lines
                .get(at + 1)
                .is_some_and(|next| !next.starts_with(|c: char| c.is_lowercase()));
            if let Some(item) = bullet(line) {
                flush(&mut pending, page, blocks);
                blocks.push(Block {
                    kind: BlockKind::ListItem,
                    text: item.to_owned(),
                    page: Some(page),
                });
            } else if followed && pending.is_empty() && looks_like_heading(line) {
                blocks.push(Block {
                    kind: BlockKind::Heading(2),
                    text: (*line).to_owned(),
                    page: Some(page),
                });
            } else {
                pending.push(line);
            }
        }
        flush(&mut pending, page, blocks);
    }
}

fn flush(pending: &mut Vec<&str>, page: u32, blocks: &mut Vec<Block>) {
    if pending.is_empty() {
        return;
    }
    let mut text = String::new();
    for line in pending.drain(..) {
        // A word broken at the end of a line is joined again.
        if let Some(stripped) = text.strip_suffix('-') {
            if line.starts_with(|c: char| c.is_lowercase()) {
                text = stripped.to_owned();
                text.push_str(line);
                continue;
            }
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(line);
    }
    blocks.push(Block {
        kind: BlockKind::Paragraph,
        text,
        page: Some(page),
    });
}

fn bullet(line: &str) -> Option<&str> {
    for marker in ["• ", "- ", "– ", "* ", "▪ ", "◦ "] {
        if let Some(rest) = line.strip_prefix(marker) {
            return Some(rest.trim());
        }
    }
    None
}

fn looks_like_heading(line: &str) -> bool {
    let words = line.split_whitespace().count();
    line.chars().count() <= 80
        && (1..=12).contains(&words)
        && !line.ends_with(['.', ',', ';', ':'])
        && line.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit())
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

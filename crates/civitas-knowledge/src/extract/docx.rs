//! DOCX: `word/document.xml` read as a stream of paragraphs and tables;
//! heading styles (in any language Word names them) and outline levels
//! become headings, numbered paragraphs list items, tables whole tables.

use std::io::Read;

use quick_xml::events::Event;

use super::{normalize_space, BlockKind, ExtractError, Extracted, Limits};

pub(super) fn is_docx(bytes: &[u8]) -> bool {
    zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map(|archive| archive.index_for_name("word/document.xml").is_some())
        .unwrap_or(false)
}

pub(super) fn extract(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let corrupt = |reason: String| ExtractError::Corrupt { reason };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|error| corrupt(format!("not a readable ZIP archive ({error})")))?;
    // The declared sizes of every member first: a bomb is refused before
    // anything is inflated.
    let mut declared: u64 = 0;
    for index in 0..archive.len() {
        let member = archive
            .by_index_raw(index)
            .map_err(|error| corrupt(error.to_string()))?;
        if member.encrypted() {
            return Err(ExtractError::Encrypted);
        }
        declared = declared.saturating_add(member.size());
    }
    if declared > limits.max_decompressed_bytes as u64 {
        return Err(ExtractError::Decompression {
            limit: limits.max_decompressed_bytes,
        });
    }
    let xml = {
        let member = archive
            .by_name("word/document.xml")
            .map_err(|_| corrupt("a Word document without word/document.xml".into()))?;
        // Declared sizes can lie: read at most the limit, plus one byte to
        // know it was passed.
        let mut xml = Vec::new();
        member
            .take(limits.max_decompressed_bytes as u64 + 1)
            .read_to_end(&mut xml)
            .map_err(|error| corrupt(format!("word/document.xml does not inflate ({error})")))?;
        if xml.len() > limits.max_decompressed_bytes {
            return Err(ExtractError::Decompression {
                limit: limits.max_decompressed_bytes,
            });
        }
        String::from_utf8(xml).map_err(|_| corrupt("word/document.xml is not UTF-8".into()))?
    };
    let mut extracted =
        parse_document(&xml).map_err(|error| corrupt(format!("word/document.xml: {error}")))?;
    extracted.title = extracted
        .blocks
        .iter()
        .find_map(|block| matches!(block.kind, BlockKind::Heading(1)).then(|| block.text.clone()));
    Ok(extracted)
}

#[derive(Default)]
struct Paragraph {
    text: String,
    heading: Option<u8>,
    list: bool,
}

fn heading_level(style: &str) -> Option<u8> {
    let lower = style.to_lowercase();
    if lower == "title" || lower == "titre" {
        return Some(1);
    }
    // Heading1, Titre1, berschrift1 (Überschrift), Ttulo1 (Título)…
    for prefix in [
        "heading",
        "titre",
        "berschrift",
        "ttulo",
        "titolo",
        "kop",
        "rubrik",
    ] {
        if let Some(level) = lower.strip_prefix(prefix) {
            if let Ok(level) = level.trim().parse::<u8>() {
                return Some(level.clamp(1, 6));
            }
        }
    }
    None
}

fn parse_document(xml: &str) -> Result<Extracted, quick_xml::Error> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut extracted = Extracted::default();
    let mut paragraph: Option<Paragraph> = None;
    let mut in_text = false;
    // Tables: rows of cells; nested tables are flattened into their cell.
    let mut table_depth = 0usize;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut cell: Option<String> = None;
    loop {
        let event = reader.read_event()?;
        match &event {
            Event::Start(element) | Event::Empty(element) => {
                let empty = matches!(event, Event::Empty(_));
                match element.local_name().as_ref() {
                    "p" if !empty => paragraph = Some(Paragraph::default()),
                    "t" if !empty => in_text = true,
                    "tab" => push_text(&mut paragraph, "\t"),
                    "br" | "cr" => push_text(&mut paragraph, "\n"),
                    "pStyle" => {
                        if let (Some(paragraph), Some(style)) =
                            (paragraph.as_mut(), attribute(element, "val"))
                        {
                            paragraph.heading = paragraph.heading.or(heading_level(&style));
                        }
                    }
                    "outlineLvl" => {
                        if let (Some(paragraph), Some(level)) =
                            (paragraph.as_mut(), attribute(element, "val"))
                        {
                            if let Ok(level) = level.parse::<u8>() {
                                if level < 9 {
                                    paragraph.heading = Some((level + 1).min(6));
                                }
                            }
                        }
                    }
                    "numPr" => {
                        if let Some(paragraph) = paragraph.as_mut() {
                            paragraph.list = true;
                        }
                    }
                    "tbl" if !empty => {
                        table_depth += 1;
                    }
                    "tc" if !empty && table_depth == 1 => cell = Some(String::new()),
                    "tr" if !empty && table_depth == 1 => rows.push(Vec::new()),
                    _ => {}
                }
            }
            Event::Text(text) if in_text => push_text(&mut paragraph, &text.xml10_content()),
            Event::GeneralRef(reference) if in_text => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match reference.as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        _ => String::new(),
                    },
                };
                push_text(&mut paragraph, &resolved);
            }
            Event::End(element) => match element.local_name().as_ref() {
                "t" => in_text = false,
                "p" => {
                    if let Some(done) = paragraph.take() {
                        if table_depth > 0 {
                            if let Some(cell) = cell.as_mut() {
                                if !cell.is_empty() {
                                    cell.push(' ');
                                }
                                cell.push_str(done.text.trim());
                            }
                        } else {
                            let kind = match (done.heading, done.list) {
                                (Some(level), _) => BlockKind::Heading(level),
                                (None, true) => BlockKind::ListItem,
                                (None, false) => BlockKind::Paragraph,
                            };
                            extracted.push(kind, &done.text);
                        }
                    }
                }
                "tc" if table_depth == 1 => {
                    if let (Some(done), Some(row)) = (cell.take(), rows.last_mut()) {
                        row.push(normalize_space(&done).replace('\n', " "));
                    }
                }
                "tbl" => {
                    table_depth = table_depth.saturating_sub(1);
                    if table_depth == 0 {
                        let text = table_text(&rows);
                        rows.clear();
                        if !text.is_empty() {
                            extracted.blocks.push(super::Block::new(BlockKind::Table, text));
                        }
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(extracted)
}

fn push_text(paragraph: &mut Option<Paragraph>, text: &str) {
    if let Some(paragraph) = paragraph.as_mut() {
        paragraph.text.push_str(text);
    }
}

fn attribute(element: &quick_xml::events::BytesStart<'_>, name: &str) -> Option<String> {
    element.attributes().flatten().find_map(|attribute| {
        (attribute.key.local_name().as_ref() == name).then(|| attribute.value.to_string())
    })
}

/// Rows as lines of cells separated by ` | `; empty rows dropped.
pub(super) fn table_text(rows: &[Vec<String>]) -> String {
    rows.iter()
        .filter(|row| row.iter().any(|cell| !cell.trim().is_empty()))
        .map(|row| row.iter().map(|cell| cell.trim()).collect::<Vec<_>>().join(" | "))
        .collect::<Vec<_>>()
        .join("\n")
}

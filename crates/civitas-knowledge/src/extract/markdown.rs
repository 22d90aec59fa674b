//! Markdown (CommonMark with tables) through pulldown-cmark.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::{docx::table_text, BlockKind, Extracted};

pub(super) fn extract(markdown: &str) -> Extracted {
    let mut out = Extracted::default();
    let mut buffer = String::new();
    let mut kind: Option<BlockKind> = None;
    let mut item_depth = 0usize;
    let mut in_table = false;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut cell: Option<String> = None;
    let flush =
        |buffer: &mut String, kind: &mut Option<BlockKind>, out: &mut Extracted, item_depth: usize| {
            let default = if item_depth > 0 {
                BlockKind::ListItem
            } else {
                BlockKind::Paragraph
            };
            out.push(kind.take().unwrap_or(default), buffer);
            buffer.clear();
        };
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                flush(&mut buffer, &mut kind, &mut out, item_depth);
                kind = Some(BlockKind::Heading(level as u8));
            }
            Event::Start(Tag::Item) => {
                flush(&mut buffer, &mut kind, &mut out, item_depth);
                item_depth += 1;
            }
            Event::End(TagEnd::Item) => {
                flush(&mut buffer, &mut kind, &mut out, item_depth);
                item_depth = item_depth.saturating_sub(1);
            }
            Event::Start(Tag::CodeBlock(_)) => {
                flush(&mut buffer, &mut kind, &mut out, item_depth);
                kind = Some(BlockKind::Code);
            }
            Event::Start(Tag::Table(_)) => {
                flush(&mut buffer, &mut kind, &mut out, item_depth);
                in_table = true;
            }
            Event::End(TagEnd::Table) => {
                in_table = false;
                out.push(BlockKind::Table, &table_text(&rows));
                rows.clear();
            }
            Event::Start(Tag::TableHead) | Event::Start(Tag::TableRow) => rows.push(Vec::new()),
            Event::Start(Tag::TableCell) => cell = Some(String::new()),
            Event::End(TagEnd::TableCell) => {
                if let (Some(done), Some(row)) = (cell.take(), rows.last_mut()) {
                    row.push(done.trim().to_owned());
                }
            }
            Event::End(TagEnd::Heading(_))
            | Event::End(TagEnd::Paragraph)
            | Event::End(TagEnd::CodeBlock)
            | Event::End(TagEnd::BlockQuote(_)) => {
                // A list item's paragraphs stay one item.
                if item_depth == 0 || kind.is_some() {
                    flush(&mut buffer, &mut kind, &mut out, item_depth);
                } else {
                    buffer.push(' ');
                }
            }
            Event::Text(text) | Event::Code(text) | Event::Html(text) | Event::InlineHtml(text) => {
                match cell.as_mut() {
                    Some(cell) => cell.push_str(&text),
                    None if in_table => {}
                    None => buffer.push_str(&text),
                }
            }
            Event::SoftBreak => match cell.as_mut() {
                Some(cell) => cell.push(' '),
                None => buffer.push(if matches!(kind, Some(BlockKind::Code)) {
                    '\n'
                } else {
                    ' '
                }),
            },
            Event::HardBreak => buffer.push('\n'),
            _ => {}
        }
    }
    flush(&mut buffer, &mut kind, &mut out, item_depth);
    out.title = out
        .blocks
        .iter()
        .find_map(|block| matches!(block.kind, BlockKind::Heading(1)).then(|| block.text.clone()));
    out
}

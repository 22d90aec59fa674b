//! HTML: a tolerant tokenizer (real pages are rarely well-formed XML)
//! that keeps headings, paragraphs, list items and tables, and drops
//! scripts, styles and navigation.

use super::{docx::table_text, BlockKind, Extracted};

/// Elements whose content is never text for a reader.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "nav", "iframe", "object",
];

pub(super) fn extract(html: &str) -> Extracted {
    let mut out = Extracted::default();
    let mut state = State::default();
    let bytes = html.as_bytes();
    let mut at = 0;
    let mut text_start = 0;
    while at < bytes.len() {
        if bytes[at] != b'<' {
            at += 1;
            continue;
        }
        state.text(&html[text_start..at]);
        if html[at..].starts_with("<!--") {
            at = html[at..].find("-->").map_or(bytes.len(), |end| at + end + 3);
            text_start = at;
            continue;
        }
        let Some(tag) = read_tag(html, at) else {
            // A lone '<' is text.
            state.text("<");
            at += 1;
            text_start = at;
            continue;
        };
        at = tag.end;
        let name = tag.name.to_ascii_lowercase();
        if tag.closing {
            state.close(&name, &mut out);
        } else if name == "title" {
            let end = find_closing(html, at, "title");
            out.title = Some(super::normalize_space(&decode_entities(&html[at..end.0])));
            at = end.1;
        } else if SKIPPED.contains(&name.as_str()) && !tag.self_closing {
            at = find_closing(html, at, &name).1;
        } else {
            state.open(&name, &mut out);
        }
        text_start = at;
    }
    state.text(&html[text_start.min(bytes.len())..]);
    state.flush(&mut out);
    if out.title.is_none() {
        out.title = out
            .blocks
            .iter()
            .find_map(|block| matches!(block.kind, BlockKind::Heading(1)).then(|| block.text.clone()));
    }
    out
}

struct Tag<'a> {
    name: &'a str,
    closing: bool,
    self_closing: bool,
    end: usize,
}

/// The tag starting at `at` (a `<`), its attributes skipped with their
/// quotes respected; `None` when it is not a tag (`a < b`).
fn read_tag(html: &str, at: usize) -> Option<Tag<'_>> {
    let rest = &html[at + 1..];
    let (closing, rest, offset) = match rest.strip_prefix('/') {
        Some(rest) => (true, rest, at + 2),
        None => (false, rest, at + 1),
    };
    if rest.starts_with('!') || rest.starts_with('?') {
        let end = rest.find('>').map_or(html.len(), |end| offset + end + 1);
        return Some(Tag {
            name: "!",
            closing: false,
            self_closing: true,
            end,
        });
    }
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == ':'))
        .unwrap_or(rest.len());
    if name_len == 0 || !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let mut quote: Option<u8> = None;
    let bytes = html.as_bytes();
    let mut index = offset + name_len;
    while index < bytes.len() {
        let byte = bytes[index];
        match quote {
            Some(q) if byte == q => quote = None,
            Some(_) => {}
            None if byte == b'"' || byte == b'\'' => quote = Some(byte),
            None if byte == b'>' => {
                let self_closing = bytes[index - 1] == b'/';
                return Some(Tag {
                    name: &rest[..name_len],
                    closing,
                    self_closing,
                    end: index + 1,
                });
            }
            None => {}
        }
        index += 1;
    }
    Some(Tag {
        name: &rest[..name_len],
        closing,
        self_closing: true,
        end: bytes.len(),
    })
}

/// Where `</name` begins after `from` and where its tag ends.
fn find_closing(html: &str, from: usize, name: &str) -> (usize, usize) {
    let bytes = html.as_bytes();
    let mut at = from;
    while let Some(found) = html[at..].find("</") {
        let start = at + found;
        let candidate = &bytes[start + 2..];
        if candidate.len() >= name.len() && candidate[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            let end = html[start..].find('>').map_or(html.len(), |end| start + end + 1);
            return (start, end);
        }
        at = start + 2;
    }
    (html.len(), html.len())
}

#[derive(Default)]
struct State {
    kind: Option<BlockKind>,
    buffer: String,
    pre: bool,
    table_depth: usize,
    rows: Vec<Vec<String>>,
    cell: Option<String>,
}

impl State {
    fn text(&mut self, raw: &str) {
        if raw.is_empty() {
            return;
        }
        let text = decode_entities(raw);
        if let Some(cell) = self.cell.as_mut() {
            cell.push_str(&text);
        } else if self.pre {
            self.buffer.push_str(&text);
        } else {
            self.buffer.push_str(&text.replace(['\n', '\r', '\t'], " "));
        }
    }

    fn flush(&mut self, out: &mut Extracted) {
        let text = std::mem::take(&mut self.buffer);
        out.push(self.kind.take().unwrap_or(BlockKind::Paragraph), &text);
    }

    fn open(&mut self, name: &str, out: &mut Extracted) {
        match name {
            "table" => {
                if self.table_depth == 0 {
                    self.flush(out);
                }
                self.table_depth += 1;
            }
            "tr" if self.table_depth == 1 => self.rows.push(Vec::new()),
            "td" | "th" if self.table_depth == 1 => self.cell = Some(String::new()),
            _ if self.table_depth > 0 => {
                if matches!(name, "br" | "p" | "div" | "li") {
                    self.text(" ");
                }
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.flush(out);
                self.kind = Some(BlockKind::Heading(name.as_bytes()[1] - b'0'));
            }
            "li" | "dt" | "dd" => {
                self.flush(out);
                self.kind = Some(BlockKind::ListItem);
            }
            "pre" => {
                self.flush(out);
                self.kind = Some(BlockKind::Code);
                self.pre = true;
            }
            "br" => self.buffer.push('\n'),
            "p" | "div" | "section" | "article" | "main" | "header" | "footer" | "aside" | "blockquote"
            | "ul" | "ol" | "dl" | "figure" | "figcaption" | "form" | "fieldset" | "address" | "hr" => {
                self.flush(out)
            }
            _ => {}
        }
    }

    fn close(&mut self, name: &str, out: &mut Extracted) {
        match name {
            "table" if self.table_depth > 0 => {
                self.table_depth -= 1;
                if self.table_depth == 0 {
                    self.close_cell();
                    let rows = std::mem::take(&mut self.rows);
                    out.push(BlockKind::Table, &table_text(&rows));
                }
            }
            "td" | "th" if self.table_depth == 1 => self.close_cell(),
            _ if self.table_depth > 0 => {}
            "pre" => {
                self.flush(out);
                self.pre = false;
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "li" | "dt" | "dd" | "p" | "div" | "section"
            | "article" | "main" | "header" | "footer" | "aside" | "blockquote" | "ul" | "ol" | "dl"
            | "figure" | "figcaption" | "form" | "fieldset" | "address" => self.flush(out),
            _ => {}
        }
    }

    fn close_cell(&mut self) {
        if let Some(cell) = self.cell.take() {
            let cell = super::normalize_space(&cell).replace('\n', " ");
            match self.rows.last_mut() {
                Some(row) => row.push(cell),
                None => self.rows.push(vec![cell]),
            }
        }
    }
}

/// Named entities a page is likely to use, and every numeric one.
pub(crate) fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest[1..]
            .find(|c: char| c == ';' || c.is_whitespace() || c == '&')
            .map(|end| end + 1);
        let decoded = match end {
            Some(end) if end <= 12 && rest.as_bytes().get(end) == Some(&b';') => {
                entity(&rest[1..end]).map(|c| (c, end + 1))
            }
            _ => None,
        };
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "eacute" => 'é',
        "egrave" => 'è',
        "ecirc" => 'ê',
        "agrave" => 'à',
        "acirc" => 'â',
        "ccedil" => 'ç',
        "ocirc" => 'ô',
        "ucirc" => 'û',
        "ugrave" => 'ù',
        "icirc" => 'î',
        "iuml" => 'ï',
        "euml" => 'ë',
        "Eacute" => 'É',
        "Egrave" => 'È',
        "Agrave" => 'À',
        "Ccedil" => 'Ç',
        "laquo" => '«',
        "raquo" => '»',
        "rsquo" => '’',
        "lsquo" => '‘',
        "ldquo" => '“',
        "rdquo" => '”',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "euro" => '€',
        "copy" => '©',
        "reg" => '®',
        "deg" => '°',
        "sect" => '§',
        "middot" => '·',
        "bull" => '•',
        "oelig" => 'œ',
        _ => return None,
    })
}

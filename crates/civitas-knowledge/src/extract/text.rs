//! Plain text, CSV and JSON.

use super::{BlockKind, ExtractError, Extracted};

/// Paragraphs at blank lines; lines starting with a bullet are list
/// items; a line underlined with `===` or `---` is a heading (level 1 or
/// 2), as plain-text documents often write them.
pub(super) fn extract_plain(text: &str) -> Extracted {
    let mut out = Extracted::default();
    let normalized = super::normalize_space(text);
    let underline = |line: &str, mark: char| line.len() >= 3 && line.chars().all(|c| c == mark);
    for paragraph in normalized.split("\n\n") {
        let lines: Vec<&str> = paragraph.lines().collect();
        let mut pending = String::new();
        let mut at = 0;
        while at < lines.len() {
            let line = lines[at];
            let next = lines.get(at + 1).copied().unwrap_or_default();
            let heading = if underline(next, '=') {
                Some(1)
            } else if underline(next, '-') {
                Some(2)
            } else {
                None
            };
            if let Some(level) =
                heading.filter(|_| !line.is_empty() && !underline(line, '-') && !underline(line, '='))
            {
                out.push(BlockKind::Paragraph, &pending);
                pending.clear();
                out.push(BlockKind::Heading(level), line);
                at += 2;
                continue;
            }
            let item = ["- ", "* ", "• ", "– "]
                .iter()
                .find_map(|marker| line.strip_prefix(marker));
            match item {
                Some(item) => {
                    out.push(BlockKind::Paragraph, &pending);
                    pending.clear();
                    out.push(BlockKind::ListItem, item);
                }
                None => {
                    if !pending.is_empty() {
                        pending.push(' ');
                    }
                    pending.push_str(line);
                }
            }
            at += 1;
        }
        out.push(BlockKind::Paragraph, &pending);
    }
    if out.title.is_none() {
        out.title = out
            .blocks
            .iter()
            .find_map(|block| matches!(block.kind, BlockKind::Heading(1)).then(|| block.text.clone()));
    }
    out
}

/// A table: the header line, then one line per record; the separator
/// (comma, semicolon or tab) is guessed from the first line.
pub(super) fn extract_csv(text: &str) -> Result<Extracted, ExtractError> {
    let first = text.lines().next().unwrap_or_default();
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|delimiter| first.bytes().filter(|byte| byte == delimiter).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| ExtractError::Corrupt {
            reason: format!("CSV: {error}"),
        })?;
        rows.push(
            record
                .iter()
                .map(|cell| cell.replace(['\n', '\r'], " "))
                .collect::<Vec<_>>(),
        );
    }
    let mut out = Extracted::default();
    out.push(BlockKind::Table, &super::docx::table_text(&rows));
    Ok(out)
}

/// Each element of a top-level array (or each top-level key of an
/// object) becomes a paragraph of `path: value` lines.
pub(super) fn extract_json(text: &str) -> Result<Extracted, ExtractError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|error| ExtractError::Corrupt {
        reason: format!("JSON: {error}"),
    })?;
    let mut out = Extracted::default();
    match &value {
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let mut lines = Vec::new();
                flatten(&format!("[{index}]"), item, &mut lines);
                out.push(BlockKind::Paragraph, &lines.join("\n"));
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                let mut lines = Vec::new();
                flatten(key, item, &mut lines);
                out.push(BlockKind::Paragraph, &lines.join("\n"));
            }
        }
        scalar => {
            let mut lines = Vec::new();
            flatten("", scalar, &mut lines);
            out.push(BlockKind::Paragraph, &lines.join("\n"));
        }
    }
    Ok(out)
}

fn flatten(path: &str, value: &serde_json::Value, lines: &mut Vec<String>) {
    // serde_json already bounds nesting at 128 while parsing.
    match value {
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten(&path, item, lines);
            }
        }
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                flatten(&format!("{path}[{index}]"), item, lines);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::String(text) => lines.push(format!("{path}: {text}")),
        other => lines.push(format!("{path}: {other}")),
    }
}

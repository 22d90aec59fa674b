//! Bytes → blocks of text, whatever the format.
//!
//! Every refusal is an [`ExtractError`] with a stable code and a reason
//! written for the person who uploaded the file. Nothing here panics on
//! hostile input: sizes, pages and decompressed bytes are bounded by
//! [`Limits`].

mod docx;
mod html;
mod markdown;
mod pdf;
mod text;

use serde::Serialize;

/// What a file is, decided from its first bytes, then its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Pdf,
    Docx,
    Html,
    Markdown,
    Text,
    Csv,
    Json,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Html => "html",
            Format::Markdown => "markdown",
            Format::Text => "text",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        Some(match text {
            "pdf" => Format::Pdf,
            "docx" => Format::Docx,
            "html" => Format::Html,
            "markdown" => Format::Markdown,
            "text" => Format::Text,
            "csv" => Format::Csv,
            "json" => Format::Json,
            _ => return None,
        })
    }

    /// The format of `bytes` named `name`: magic numbers first (a PDF or
    /// a ZIP-based Office file whatever its name), then the extension.
    pub fn detect(name: &str, bytes: &[u8]) -> Result<Format, ExtractError> {
        if bytes.starts_with(b"%PDF-") {
            return Ok(Format::Pdf);
        }
        if bytes.starts_with(b"PK\x03\x04") {
            return if docx::is_docx(bytes) {
                Ok(Format::Docx)
            } else {
                Err(ExtractError::Unsupported {
                    what: "a ZIP archive that is not a Word document (.docx)".into(),
                })
            };
        }
        let extension = name
            .rsplit_once('.')
            .map(|(_, extension)| extension.to_ascii_lowercase())
            .unwrap_or_default();
        let by_name = match extension.as_str() {
            "pdf" => Some(Format::Pdf),
            "docx" => Some(Format::Docx),
            "html" | "htm" | "xhtml" => Some(Format::Html),
            "md" | "markdown" => Some(Format::Markdown),
            "txt" | "text" => Some(Format::Text),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        };
        match by_name {
            // A PDF or DOCX without its magic bytes is damaged.
            Some(Format::Pdf) | Some(Format::Docx) => Err(ExtractError::Corrupt {
                reason: format!("the file is named .{extension} but does not start like one"),
            }),
            Some(format) => Ok(format),
            None if looks_binary(bytes) => Err(ExtractError::Unsupported {
                what: format!("files of type .{extension}"),
            }),
            None => {
                let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
                if head.trim_start().starts_with("<!doctype html") || head.contains("<html") {
                    Ok(Format::Html)
                } else {
                    Ok(Format::Text)
                }
            }
        }
    }
}

fn looks_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8192)].contains(&0)
}

/// Bounds on what one file may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The file itself.
    pub max_file_bytes: usize,
    /// Pages of a PDF.
    pub max_pages: u32,
    /// Everything decompressed from the file (ZIP members of a DOCX, PDF
    /// content streams), in total.
    pub max_decompressed_bytes: usize,
    /// Text extracted, in total.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 50 << 20,
            max_pages: 2_000,
            max_decompressed_bytes: 256 << 20,
            max_text_bytes: 32 << 20,
        }
    }
}

/// Why a file was not ingested: a stable code and a reason a person can
/// act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExtractError {
    #[error("this PDF is encrypted (password-protected); remove the protection and upload it again")]
    Encrypted,
    #[error("this PDF has no text layer (a scanned document?); text recognition (OCR) is not available yet")]
    Scanned,
    #[error("the file is damaged or not what its name says: {reason}")]
    Corrupt { reason: String },
    #[error("{what} cannot be ingested; supported: PDF, DOCX, HTML, Markdown, plain text, CSV and JSON")]
    Unsupported { what: String },
    #[error("the file is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("the PDF has {pages} pages; the limit is {limit}")]
    TooManyPages { pages: u32, limit: u32 },
    #[error("the file expands to more than {limit} bytes when decompressed (a ZIP bomb?)")]
    Decompression { limit: usize },
    #[error("the file holds no text")]
    Empty,
}

impl ExtractError {
    /// Stable code, for the API and the interface.
    pub fn code(&self) -> &'static str {
        match self {
            ExtractError::Encrypted => "encrypted_pdf",
            ExtractError::Scanned => "no_text_layer",
            ExtractError::Corrupt { .. } => "corrupt_file",
            ExtractError::Unsupported { .. } => "unsupported_type",
            ExtractError::TooLarge { .. } => "file_too_large",
            ExtractError::TooManyPages { .. } => "too_many_pages",
            ExtractError::Decompression { .. } => "decompression_limit",
            ExtractError::Empty => "empty_document",
        }
    }
}

/// What a block of text is, which chunking respects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// A heading of level 1 to 6.
    Heading(u8),
    Paragraph,
    ListItem,
    /// A whole table as text: a header line, then one line per row.
    Table,
    Code,
}

/// One block of a document, in reading order.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: BlockKind,
    pub text: String,
    /// The page it is on (PDF), from 1.
    pub page: Option<u32>,
}

impl Block {
    pub fn new(kind: BlockKind, text: impl Into<String>) -> Block {
        Block {
            kind,
            text: text.into(),
            page: None,
        }
    }
}

/// A document's text in blocks.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    pub blocks: Vec<Block>,
    /// Pages, for a PDF.
    pub pages: Option<u32>,
    /// The title the document gives itself, if any.
    pub title: Option<String>,
}

impl Extracted {
    fn push(&mut self, kind: BlockKind, text: &str) {
        let text = normalize_space(text);
        if !text.is_empty() {
            self.blocks.push(Block::new(kind, text));
        }
    }

    fn text_bytes(&self) -> usize {
        self.blocks.iter().map(|block| block.text.len()).sum()
    }
}

/// Extracts the text of `bytes` in `format`.
pub fn extract(format: Format, bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    if bytes.len() > limits.max_file_bytes {
        return Err(ExtractError::TooLarge {
            size: bytes.len(),
            limit: limits.max_file_bytes,
        });
    }
    let extracted = match format {
        Format::Pdf => pdf::extract(bytes, limits)?,
        Format::Docx => docx::extract(bytes, limits)?,
        Format::Html => html::extract(&decode_text(bytes)),
        Format::Markdown => markdown::extract(&decode_text(bytes)),
        Format::Text => text::extract_plain(&decode_text(bytes)),
        Format::Csv => text::extract_csv(&decode_text(bytes))?,
        Format::Json => text::extract_json(&decode_text(bytes))?,
    };
    if extracted.text_bytes() > limits.max_text_bytes {
        return Err(ExtractError::TooLarge {
            size: extracted.text_bytes(),
            limit: limits.max_text_bytes,
        });
    }
    if extracted.blocks.iter().all(|block| block.text.trim().is_empty()) {
        return Err(ExtractError::Empty);
    }
    Ok(extracted)
}

/// UTF-8 (with or without a byte-order mark), else Windows-1252, which is
/// what spreadsheets and older systems write.
fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

/// Collapses runs of spaces and tabs, keeps line breaks (at most one
/// blank line), trims, and drops control characters.
pub(crate) fn normalize_space(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_lines = 0;
    for line in text.lines() {
        let mut words = line
            .split(|c: char| c.is_whitespace())
            .filter(|word| !word.is_empty())
            .peekable();
        if words.peek().is_none() {
            blank_lines += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_lines > 0 { "\n\n" } else { "\n" });
        }
        blank_lines = 0;
        let mut first = true;
        for word in words {
            if !first {
                out.push(' ');
            }
            first = false;
            out.extend(word.chars().filter(|c| !c.is_control()));
        }
    }
    out
}

#[cfg(test)]
mod tests;

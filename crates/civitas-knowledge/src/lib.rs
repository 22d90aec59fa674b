//! Knowledge: what Civitas does with an agency's documents, without I/O.
//!
//! - [`extract`]: bytes of a PDF, DOCX, HTML, Markdown, text, CSV or JSON
//!   file → structured blocks (headings, paragraphs, list items, tables)
//!   with page numbers, under size, page and decompression limits; every
//!   refusal has a stable code and a reason a person can read.
//! - [`chunk`]: blocks → passages that keep sections, lists and tables
//!   whole where they fit, each with its section path and pages.
//! - [`analyze`]: English and French analysis for the full-text index
//!   (case and accent folding, stop words, Snowball stemming).
//! - [`index`]: the in-memory hybrid index — BM25 over an inverted index
//!   and exact dense-vector search, fused by reciprocal rank — with access
//!   applied inside the search (only chunks the caller may read are ever
//!   scored).
//!
//! The database is the source of truth; an [`index::Index`] is derived
//! data that a replica rebuilds from it.

pub mod analyze;
pub mod chunk;
pub mod extract;
pub mod index;
pub mod samples;

pub use chunk::{chunk_blocks, Chunk, ChunkOptions};
pub use extract::{extract, Block, BlockKind, ExtractError, Extracted, Format, Limits};
pub use index::{Filter, Fusion, Hit, Index, IndexedChunk, Method, SearchRequest};

/// What the full-text index sees of a passage: the document's name, the
/// section path, then the text (so a passage under "Annual leave" in
/// "leave.md" is found by those words). The server and the evaluation
/// both index this.
pub fn index_text(document_name: &str, section: &[String], content: &str) -> String {
    format!("{document_name}\n{}\n{content}", section.join("\n"))
}

/// SHA-256 of a file's bytes, hex: identical content is detected by it.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The demo collection: an agency's employee handbook (telework, leave,
/// travel, records, IT security) in English and French, written for the
/// project; loaded on first start of the embedded default.
pub const DEMO: &[(&str, &str)] = &[
    ("en/telework.md", include_str!("../demo/en/telework.md")),
    ("en/leave.md", include_str!("../demo/en/leave.md")),
    ("en/travel.md", include_str!("../demo/en/travel.md")),
    ("en/records.md", include_str!("../demo/en/records.md")),
    ("en/it-security.md", include_str!("../demo/en/it-security.md")),
    ("fr/teletravail.md", include_str!("../demo/fr/teletravail.md")),
    ("fr/conges.md", include_str!("../demo/fr/conges.md")),
    ("fr/deplacements.md", include_str!("../demo/fr/deplacements.md")),
    ("fr/archives.md", include_str!("../demo/fr/archives.md")),
    (
        "fr/securite-informatique.md",
        include_str!("../demo/fr/securite-informatique.md"),
    ),
];

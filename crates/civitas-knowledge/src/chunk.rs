//! Blocks → passages for retrieval and citation.
//!
//! A passage never spans two sections when the first already holds
//! enough text; lists and tables stay whole when they fit; a table too
//! big for one passage is cut between rows with its header line
//! repeated; a paragraph too big is cut between sentences. Each passage
//! knows its section path (the headings above it) and its pages.

use serde::Serialize;

use crate::extract::{Block, BlockKind};

#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions {
    /// A passage is closed once it reaches about this many characters.
    pub target_chars: usize,
    /// Nothing longer than this (a block is cut to fit).
    pub max_chars: usize,
    /// A section with less body text than this is joined with the next.
    pub min_chars: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            target_chars: 900,
            max_chars: 1_500,
            min_chars: 200,
        }
    }
}

/// One passage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chunk {
    /// Position in the document, from 0.
    pub index: u32,
    pub text: String,
    /// Headings above it, outermost first.
    pub section: Vec<String>,
    /// First and last page (PDF).
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
}

impl Chunk {
    /// What the index sees: the section path, then the text, so a passage
    /// under "Annual leave" is found by those words.
    pub fn indexed_text(&self, title: Option<&str>) -> String {
        let mut out = String::new();
        if let Some(title) = title {
            out.push_str(title);
            out.push('\n');
        }
        for heading in &self.section {
            if title != Some(heading.as_str()) {
                out.push_str(heading);
                out.push('\n');
            }
        }
        out.push_str(&self.text);
        out
    }
}

struct Builder {
    options: ChunkOptions,
    chunks: Vec<Chunk>,
    text: String,
    body_chars: usize,
    section: Vec<String>,
    pages: Option<(u32, u32)>,
}

impl Builder {
    fn flush(&mut self) {
        if self.text.trim().is_empty() {
            self.text.clear();
            self.body_chars = 0;
            return;
        }
        let text = std::mem::take(&mut self.text);
        self.chunks.push(Chunk {
            index: self.chunks.len() as u32,
            text: text.trim().to_owned(),
            section: self.section.clone(),
            page_start: self.pages.map(|pages| pages.0),
            page_end: self.pages.map(|pages| pages.1),
        });
        self.body_chars = 0;
        self.pages = None;
    }

    fn add(&mut self, text: &str, page: Option<u32>, body: bool) {
        let len = text.chars().count();
        if self.body_chars > 0 && self.text.chars().count() + len + 2 > self.options.target_chars {
            self.flush();
        }
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
        self.text.push_str(text);
        if body {
            self.body_chars += len;
        }
        if let Some(page) = page {
            self.pages = Some(match self.pages {
                Some((first, last)) => (first.min(page), last.max(page)),
                None => (page, page),
            });
        }
    }
}

/// Cuts `blocks` into passages.
pub fn chunk_blocks(blocks: &[Block], options: ChunkOptions) -> Vec<Chunk> {
    let mut builder = Builder {
        options,
        chunks: Vec::new(),
        text: String::new(),
        body_chars: 0,
        section: Vec::new(),
        pages: None,
    };
    let mut headings: Vec<(u8, String)> = Vec::new();
    // The level of the section the open passage began in.
    let mut passage_level = 0u8;
    for block in blocks {
        match block.kind {
            BlockKind::Heading(level) => {
                // A short section is joined with its subsections, never
                // with a sibling or a parent's next section (its passage
                // would be cited under the wrong title).
                if builder.body_chars >= options.min_chars
                    || (builder.body_chars > 0 && level <= passage_level)
                {
                    builder.flush();
                }
                headings.retain(|(other, _)| *other < level);
                headings.push((level, block.text.clone()));
                if builder.text.is_empty() {
                    builder.section = headings.iter().map(|(_, text)| text.clone()).collect();
                    passage_level = level;
                } else {
                    // The passage began in an earlier (short) section: it
                    // keeps that section and carries the heading as text.
                    builder.add(&block.text, block.page, false);
                }
            }
            BlockKind::ListItem => {
                let item = format!("- {}", block.text);
                for piece in split_text(&item, options.max_chars) {
                    // Items of one list stay together while they fit.
                    if builder.text.ends_with(|c: char| c != '\n') && is_list_tail(&builder.text) {
                        let len = builder.text.chars().count() + piece.chars().count() + 1;
                        if len <= options.max_chars {
                            builder.text.push('\n');
                            builder.text.push_str(&piece);
                            builder.body_chars += piece.chars().count();
                            if let Some(page) = block.page {
                                builder.pages = Some(
                                    builder
                                        .pages
                                        .map_or((page, page), |(a, b)| (a.min(page), b.max(page))),
                                );
                            }
                            continue;
                        }
                    }
                    builder.add(&piece, block.page, true);
                }
            }
            BlockKind::Table => {
                for piece in split_table(&block.text, options.max_chars) {
                    builder.add(&piece, block.page, true);
                }
            }
            BlockKind::Paragraph | BlockKind::Code => {
                for piece in split_text(&block.text, options.max_chars) {
                    builder.add(&piece, block.page, true);
                }
            }
        }
    }
    builder.flush();
    builder.chunks
}

fn is_list_tail(text: &str) -> bool {
    text.rsplit("\n\n")
        .next()
        .is_some_and(|last| last.starts_with("- "))
}

/// A table cut between rows, each piece starting with the header line.
fn split_table(table: &str, max_chars: usize) -> Vec<String> {
    if table.chars().count() <= max_chars {
        return vec![table.to_owned()];
    }
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let mut pieces = Vec::new();
    let mut current = header.to_owned();
    for line in lines {
        if current.chars().count() + line.chars().count() + 1 > max_chars && current != header {
            pieces.push(std::mem::replace(&mut current, header.to_owned()));
        }
        current.push('\n');
        current.push_str(line);
    }
    if current != header || pieces.is_empty() {
        pieces.push(current);
    }
    // A single row longer than the limit is cut as text.
    pieces
        .into_iter()
        .flat_map(|piece| split_text(&piece, max_chars))
        .collect()
}

/// Text cut between sentences (then between words) into pieces of at
/// most `max_chars` characters.
fn split_text(text: &str, max_chars: usize) -> Vec<String> {
    if text.chars().count() <= max_chars {
        return vec![text.to_owned()];
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    for sentence in sentences(text) {
        if current.chars().count() + sentence.chars().count() > max_chars && !current.is_empty() {
            pieces.push(std::mem::take(&mut current).trim().to_owned());
        }
        if sentence.chars().count() > max_chars {
            for word in sentence.split_inclusive(char::is_whitespace) {
                if current.chars().count() + word.chars().count() > max_chars && !current.is_empty() {
                    pieces.push(std::mem::take(&mut current).trim().to_owned());
                }
                if word.chars().count() > max_chars {
                    // One enormous "word": cut on characters.
                    let chars: Vec<char> = word.chars().collect();
                    for part in chars.chunks(max_chars) {
                        pieces.push(part.iter().collect());
                    }
                } else {
                    current.push_str(word);
                }
            }
        } else {
            current.push_str(sentence);
        }
    }
    if !current.trim().is_empty() {
        pieces.push(current.trim().to_owned());
    }
    pieces.retain(|piece| !piece.trim().is_empty());
    pieces
}

/// Sentences with their trailing space: a cut after `.`, `!`, `?` or a
/// line break followed by whitespace.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if matches!(c, '.' | '!' | '?' | '\n') {
            if let Some(&(next_at, next)) = chars.peek() {
                if next.is_whitespace() {
                    out.push(&text[start..next_at + next.len_utf8()]);
                    chars.next();
                    start = next_at + next.len_utf8();
                }
            }
        }
        let _ = at;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(kind: BlockKind, text: &str) -> Block {
        Block::new(kind, text)
    }

    #[test]
    fn sections_start_new_passages_and_carry_their_path() {
        let long = "Word ".repeat(60);
        let blocks = vec![
            block(BlockKind::Heading(1), "Handbook"),
            block(BlockKind::Heading(2), "Leave"),
            block(BlockKind::Paragraph, &long),
            block(BlockKind::Heading(3), "Annual leave"),
            block(BlockKind::Paragraph, "Twenty-five days a year."),
            block(BlockKind::Heading(2), "Travel"),
            block(BlockKind::Paragraph, &long),
        ];
        let chunks = chunk_blocks(&blocks, ChunkOptions::default());
        assert_eq!(chunks.len(), 3, "{chunks:#?}");
        assert_eq!(chunks[0].section, ["Handbook", "Leave"]);
        // A short section ends at its sibling.
        assert_eq!(chunks[1].section, ["Handbook", "Leave", "Annual leave"]);
        assert_eq!(chunks[1].text, "Twenty-five days a year.");
        assert_eq!(chunks[2].section, ["Handbook", "Travel"]);
        assert!(chunks
            .iter()
            .enumerate()
            .all(|(i, chunk)| chunk.index as usize == i));
    }

    #[test]
    fn a_short_introduction_joins_its_subsections() {
        let blocks = vec![
            block(BlockKind::Heading(2), "Leave"),
            block(BlockKind::Paragraph, "Three kinds of leave exist."),
            block(BlockKind::Heading(3), "Annual leave"),
            block(BlockKind::Paragraph, "Twenty-five days a year."),
        ];
        let chunks = chunk_blocks(&blocks, ChunkOptions::default());
        assert_eq!(chunks.len(), 1, "{chunks:#?}");
        assert_eq!(chunks[0].section, ["Leave"]);
        assert_eq!(
            chunks[0].text,
            "Three kinds of leave exist.\n\nAnnual leave\n\nTwenty-five days a year."
        );
        assert!(chunks
            .iter()
            .enumerate()
            .all(|(i, chunk)| chunk.index as usize == i));
    }

    #[test]
    fn list_items_stay_together_and_tables_repeat_their_header() {
        let mut blocks = vec![block(BlockKind::Heading(1), "Rules")];
        for n in 0..5 {
            blocks.push(block(BlockKind::ListItem, &format!("rule number {n}")));
        }
        let mut table = String::from("Grade | Rate");
        for n in 0..200 {
            table.push_str(&format!("\nG{n} | {n}.50 EUR per kilometre"));
        }
        blocks.push(block(BlockKind::Table, &table));
        let chunks = chunk_blocks(&blocks, ChunkOptions::default());
        assert!(chunks[0]
            .text
            .contains("- rule number 0\n- rule number 1\n- rule number 2"));
        let tables: Vec<_> = chunks.iter().filter(|chunk| chunk.text.contains("G1")).collect();
        assert!(tables.len() > 2);
        for chunk in chunks.iter().filter(|chunk| chunk.text.contains("per kilometre")) {
            assert!(chunk.text.contains("Grade | Rate"), "{}", chunk.text);
            assert!(chunk.text.chars().count() <= 1_500);
        }
        // Every row is somewhere, once.
        for n in 0..200 {
            let row = format!("G{n} | {n}.50 EUR");
            let count: usize = chunks
                .iter()
                .map(|chunk| chunk.text.matches(&format!("\n{row}")).count())
                .sum();
            assert_eq!(count, 1, "{row}");
        }
    }

    #[test]
    fn long_paragraphs_are_cut_between_sentences_and_pages_are_kept() {
        let sentence = "The agency reimburses travel by train in second class. ";
        let mut paragraph = Block::new(BlockKind::Paragraph, sentence.repeat(80));
        paragraph.page = Some(3);
        let mut next = Block::new(BlockKind::Paragraph, "Last words.");
        next.page = Some(4);
        let chunks = chunk_blocks(&[paragraph, next], ChunkOptions::default());
        assert!(chunks.len() >= 3);
        for chunk in &chunks {
            assert!(chunk.text.chars().count() <= 1_500);
            assert!(chunk.text.ends_with('.'), "{}", chunk.text);
        }
        assert_eq!(chunks[0].page_start, Some(3));
        let last = chunks.last().unwrap();
        assert_eq!(last.page_end, Some(4));
        let joined: String = chunks
            .iter()
            .map(|chunk| chunk.text.replace("\n\n", " "))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(joined.matches("second class").count(), 80);
    }

    #[test]
    fn a_word_longer_than_a_passage_is_cut_on_characters() {
        let text = "é".repeat(4_000);
        let chunks = chunk_blocks(&[Block::new(BlockKind::Paragraph, text)], ChunkOptions::default());
        assert_eq!(
            chunks
                .iter()
                .map(|chunk| chunk.text.chars().count())
                .sum::<usize>(),
            4_000
        );
        assert!(chunks.iter().all(|chunk| chunk.text.chars().count() <= 1_500));
    }
}

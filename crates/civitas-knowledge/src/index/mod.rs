//! The in-memory hybrid index of one replica.
//!
//! - Lexical: an inverted index (term → postings of passage slot and term
//!   frequency) scored with BM25 (k1 = 1.2, b = 0.75).
//! - Semantic: each passage's unit vector in one contiguous array, scored
//!   exactly by dot product (no approximation: at 100,000 passages of 384
//!   dimensions this is a few milliseconds).
//! - Hybrid: both lists fused by reciprocal rank (`1 / (rrf_k + rank)`).
//!
//! Access is applied *inside* the search: a passage the [`Filter`] does
//! not allow is never scored, so it can neither appear nor push another
//! passage out of the top k. Removing a document marks its passages dead
//! at once; their postings are dropped at the next compaction.

use std::collections::{BinaryHeap, HashMap, HashSet};

use serde::Serialize;

use crate::analyze::{Analyzer, Language};

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// A passage to index.
#[derive(Debug, Clone)]
pub struct IndexedChunk {
    pub chunk_id: i64,
    pub document_id: i64,
    pub collection_id: i64,
    /// What BM25 sees (section path and text).
    pub text: String,
    pub language: Language,
    /// Unit vector from the embedding model, if there is one.
    pub vector: Option<Vec<f32>>,
}

/// What is known of a document for filtering.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentInfo {
    pub collection_id: i64,
    /// Rank of its classification level (0 = lowest).
    pub level_rank: u8,
    /// Unix seconds.
    pub created_at: i64,
    pub metadata: Vec<(String, String)>,
}

/// Which passages a search may see.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Collections the caller may read and asked for.
    pub collections: HashSet<i64>,
    /// Only these documents, when given.
    pub documents: Option<HashSet<i64>>,
    /// Nothing above this level rank.
    pub max_level_rank: u8,
    /// Documents created at or after / before (Unix seconds).
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// Every pair must be in the document's metadata.
    pub metadata: Vec<(String, String)>,
}

impl Filter {
    fn allows(&self, document_id: i64, document: &DocumentInfo) -> bool {
        self.collections.contains(&document.collection_id)
            && document.level_rank <= self.max_level_rank
            && self
                .documents
                .as_ref()
                .is_none_or(|documents| documents.contains(&document_id))
            && self
                .created_after
                .is_none_or(|after| document.created_at >= after)
            && self
                .created_before
                .is_none_or(|before| document.created_at < before)
            && self.metadata.iter().all(|pair| document.metadata.contains(pair))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Semantic,
    Lexical,
    #[default]
    Hybrid,
}

/// How `hybrid` combines the two lists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion: `Σ 1 / (rrf_k + rank)`; ranks only.
    Rrf,
    /// Relative scores: each list's scores scaled to 0–1 by its best and
    /// worst, then `weight × lexical + (1 − weight) × semantic`. A list
    /// whose best is far ahead of the rest (an identifier matched
    /// exactly) counts for more than a list of near ties.
    Relative { lexical_weight: f32 },
}

impl Fusion {
    /// What `hybrid` uses unless asked otherwise: relative scores with a
    /// lexical weight of 0.6. On the labelled questions (BENCHMARKS.md) it
    /// finds the answer in the top 5 for 95 % of them where reciprocal
    /// rank fusion finds 84 %: RRF ignores how far ahead a list's best is,
    /// so near-duplicate notices that differ only by a code (which BM25
    /// pins exactly and the embedding model blurs) are lost in the fusion.
    pub const DEFAULT: Fusion = Fusion::Relative { lexical_weight: 0.6 };
}

/// One search.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    pub query: &'a str,
    /// The query's unit vector (semantic and hybrid).
    pub vector: Option<&'a [f32]>,
    pub method: Method,
    /// Results wanted.
    pub k: usize,
    /// The constant of reciprocal rank fusion.
    pub rrf_k: f32,
    pub fusion: Fusion,
    /// Semantic: cosine similarity below this is dropped.
    pub score_threshold: Option<f32>,
    pub filter: &'a Filter,
}

/// One passage found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub chunk_id: i64,
    pub document_id: i64,
    pub collection_id: i64,
    /// BM25 (lexical), cosine (semantic) or the fused score (hybrid).
    pub score: f32,
    /// Rank in each list, from 1, when the passage was in it.
    pub lexical_rank: Option<u32>,
    pub semantic_rank: Option<u32>,
}

#[derive(Debug, Clone)]
struct Slot {
    chunk_id: i64,
    document_id: i64,
    length: u32,
    alive: bool,
    has_vector: bool,
}

/// The index.
#[derive(Debug)]
pub struct Index {
    analyzer: Analyzer,
    dimensions: usize,
    slots: Vec<Slot>,
    /// `dimensions` floats per slot (zeros when it has no vector).
    vectors: Vec<f32>,
    terms: HashMap<String, u32>,
    postings: Vec<Vec<(u32, u16)>>,
    by_chunk: HashMap<i64, u32>,
    by_document: HashMap<i64, Vec<u32>>,
    documents: HashMap<i64, DocumentInfo>,
    alive: usize,
    total_length: u64,
}

impl Index {
    pub fn new(dimensions: usize) -> Index {
        Index {
            analyzer: Analyzer::default(),
            dimensions,
            slots: Vec::new(),
            vectors: Vec::new(),
            terms: HashMap::new(),
            postings: Vec::new(),
            by_chunk: HashMap::new(),
            by_document: HashMap::new(),
            documents: HashMap::new(),
            alive: 0,
            total_length: 0,
        }
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Passages searchable now.
    pub fn len(&self) -> usize {
        self.alive
    }

    pub fn is_empty(&self) -> bool {
        self.alive == 0
    }

    pub fn document_count(&self) -> usize {
        self.documents.len()
    }

    pub fn contains_document(&self, document_id: i64) -> bool {
        self.documents.contains_key(&document_id)
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Adds (or replaces) a document and its passages.
    pub fn insert_document(&mut self, document_id: i64, info: DocumentInfo, chunks: Vec<IndexedChunk>) {
        self.remove_document(document_id);
        let mut slots = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let slot = self.slots.len() as u32;
            let terms = self.analyzer.terms(&chunk.text, chunk.language);
            let mut frequencies: HashMap<&str, u16> = HashMap::new();
            for term in &terms {
                let count = frequencies.entry(term.as_str()).or_default();
                *count = count.saturating_add(1);
            }
            for (term, frequency) in frequencies {
                let id = match self.terms.get(term) {
                    Some(id) => *id,
                    None => {
                        let id = self.postings.len() as u32;
                        self.terms.insert(term.to_owned(), id);
                        self.postings.push(Vec::new());
                        id
                    }
                };
                self.postings[id as usize].push((slot, frequency));
            }
            let has_vector = match chunk.vector {
                Some(vector) if vector.len() == self.dimensions => {
                    self.vectors.extend_from_slice(&vector);
                    true
                }
                _ => {
                    self.vectors.extend(std::iter::repeat_n(0.0, self.dimensions));
                    false
                }
            };
            let length = terms.len() as u32;
            self.total_length += u64::from(length);
            self.alive += 1;
            if let Some(old) = self.by_chunk.insert(chunk.chunk_id, slot) {
                self.kill(old);
            }
            self.slots.push(Slot {
                chunk_id: chunk.chunk_id,
                document_id,
                length,
                alive: true,
                has_vector,
            });
            slots.push(slot);
        }
        self.by_document.insert(document_id, slots);
        self.documents.insert(document_id, info);
    }

    fn kill(&mut self, slot: u32) {
        let slot = &mut self.slots[slot as usize];
        if slot.alive {
            slot.alive = false;
            self.alive -= 1;
            self.total_length -= u64::from(slot.length);
        }
    }

    /// Removes a document's passages; how many there were.
    pub fn remove_document(&mut self, document_id: i64) -> usize {
        self.documents.remove(&document_id);
        let Some(slots) = self.by_document.remove(&document_id) else {
            return 0;
        };
        for &slot in &slots {
            let chunk_id = self.slots[slot as usize].chunk_id;
            if self.by_chunk.get(&chunk_id) == Some(&slot) {
                self.by_chunk.remove(&chunk_id);
            }
            self.kill(slot);
        }
        if self.slots.len() > 1_000 && self.alive < self.slots.len() * 3 / 4 {
            self.compact();
        }
        slots.len()
    }

    /// Removes every document of a collection.
    pub fn remove_collection(&mut self, collection_id: i64) -> usize {
        let documents: Vec<i64> = self
            .documents
            .iter()
            .filter(|(_, info)| info.collection_id == collection_id)
            .map(|(id, _)| *id)
            .collect();
        documents
            .into_iter()
            .map(|document| self.remove_document(document))
            .sum()
    }

    /// Drops dead passages and their postings.
    pub fn compact(&mut self) {
        let mut renumber = vec![u32::MAX; self.slots.len()];
        let mut slots = Vec::with_capacity(self.alive);
        let mut vectors = Vec::with_capacity(self.alive * self.dimensions);
        for (old, slot) in self.slots.iter().enumerate() {
            if slot.alive {
                renumber[old] = slots.len() as u32;
                vectors.extend_from_slice(&self.vectors[old * self.dimensions..(old + 1) * self.dimensions]);
                slots.push(slot.clone());
            }
        }
        for postings in &mut self.postings {
            postings.retain_mut(|(slot, _)| {
                let new = renumber[*slot as usize];
                *slot = new;
                new != u32::MAX
            });
        }
        // Terms nothing uses any more go too.
        let mut keep = Vec::with_capacity(self.postings.len());
        let mut new_ids = vec![u32::MAX; self.postings.len()];
        for (id, postings) in std::mem::take(&mut self.postings).into_iter().enumerate() {
            if !postings.is_empty() {
                new_ids[id] = keep.len() as u32;
                keep.push(postings);
            }
        }
        self.postings = keep;
        self.terms.retain(|_, id| {
            *id = new_ids[*id as usize];
            *id != u32::MAX
        });
        for slots in self.by_document.values_mut() {
            for slot in slots.iter_mut() {
                *slot = renumber[*slot as usize];
            }
        }
        for slot in self.by_chunk.values_mut() {
            *slot = renumber[*slot as usize];
        }
        self.slots = slots;
        self.vectors = vectors;
    }

    fn allowed(&self, slot: &Slot, filter: &Filter) -> bool {
        slot.alive
            && self
                .documents
                .get(&slot.document_id)
                .is_some_and(|document| filter.allows(slot.document_id, document))
    }

    /// The best `k` passages for the request, best first.
    pub fn search(&self, request: &SearchRequest<'_>) -> Vec<Hit> {
        let k = request.k.max(1);
        // Each list is deeper than k so that fusion has material.
        let depth = if request.method == Method::Hybrid {
            (k * 4).max(50)
        } else {
            k
        };
        let lexical = if request.method != Method::Semantic {
            self.lexical(request, depth)
        } else {
            Vec::new()
        };
        let semantic = match (request.method, request.vector) {
            (Method::Lexical, _) | (_, None) => Vec::new(),
            (_, Some(vector)) => self.semantic(request, vector, depth),
        };
        let hit = |slot: u32, score: f32, lexical_rank, semantic_rank| {
            let slot_info = &self.slots[slot as usize];
            let collection_id = self
                .documents
                .get(&slot_info.document_id)
                .map_or(0, |d| d.collection_id);
            Hit {
                chunk_id: slot_info.chunk_id,
                document_id: slot_info.document_id,
                collection_id,
                score,
                lexical_rank,
                semantic_rank,
            }
        };
        match request.method {
            Method::Lexical => lexical
                .iter()
                .enumerate()
                .map(|(rank, (slot, score))| hit(*slot, *score, Some(rank as u32 + 1), None))
                .collect(),
            Method::Semantic => semantic
                .iter()
                .enumerate()
                .map(|(rank, (slot, score))| hit(*slot, *score, None, Some(rank as u32 + 1)))
                .collect(),
            Method::Hybrid => {
                let mut fused: HashMap<u32, (f32, Option<u32>, Option<u32>)> = HashMap::new();
                let scale = |list: &[(u32, f32)]| {
                    let best = list.first().map_or(0.0, |entry| entry.1);
                    let worst = list.last().map_or(0.0, |entry| entry.1);
                    move |score: f32| {
                        if best > worst {
                            (score - worst) / (best - worst)
                        } else {
                            1.0
                        }
                    }
                };
                let (lexical_scale, semantic_scale) = (scale(&lexical), scale(&semantic));
                for (rank, (slot, score)) in lexical.iter().enumerate() {
                    let entry = fused.entry(*slot).or_default();
                    entry.0 += match request.fusion {
                        Fusion::Rrf => 1.0 / (request.rrf_k + rank as f32 + 1.0),
                        Fusion::Relative { lexical_weight } => lexical_weight * lexical_scale(*score),
                    };
                    entry.1 = Some(rank as u32 + 1);
                }
                for (rank, (slot, score)) in semantic.iter().enumerate() {
                    let entry = fused.entry(*slot).or_default();
                    entry.0 += match request.fusion {
                        Fusion::Rrf => 1.0 / (request.rrf_k + rank as f32 + 1.0),
                        Fusion::Relative { lexical_weight } => {
                            (1.0 - lexical_weight) * semantic_scale(*score)
                        }
                    };
                    entry.2 = Some(rank as u32 + 1);
                }
                let mut fused: Vec<_> = fused.into_iter().collect();
                fused.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0).then(a.0.cmp(&b.0)));
                fused.truncate(k);
                fused
                    .into_iter()
                    .map(|(slot, (score, lex, sem))| hit(slot, score, lex, sem))
                    .collect()
            }
        }
    }

    fn lexical(&self, request: &SearchRequest<'_>, depth: usize) -> Vec<(u32, f32)> {
        if self.alive == 0 {
            return Vec::new();
        }
        let average = self.total_length as f32 / self.alive as f32;
        let total = self.alive as f32;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let mut allowed_cache: HashMap<u32, bool> = HashMap::new();
        for term in self.analyzer.query_terms(request.query) {
            let Some(&id) = self.terms.get(&term) else {
                continue;
            };
            let postings = &self.postings[id as usize];
            let frequency = postings.len() as f32;
            let idf = (1.0 + (total - frequency + 0.5) / (frequency + 0.5))
                .ln()
                .max(0.0);
            for &(slot, tf) in postings {
                let allowed = *allowed_cache
                    .entry(slot)
                    .or_insert_with(|| self.allowed(&self.slots[slot as usize], request.filter));
                if !allowed {
                    continue;
                }
                let length = self.slots[slot as usize].length as f32;
                let tf = f32::from(tf);
                let score = idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / average.max(1.0)));
                *scores.entry(slot).or_default() += score;
            }
        }
        top(scores.into_iter(), depth)
    }

    fn semantic(&self, request: &SearchRequest<'_>, query: &[f32], depth: usize) -> Vec<(u32, f32)> {
        if query.len() != self.dimensions || self.dimensions == 0 {
            return Vec::new();
        }
        let threshold = request.score_threshold.unwrap_or(f32::NEG_INFINITY);
        // Which documents are allowed is decided once per document.
        let allowed_documents: HashSet<i64> = self
            .documents
            .iter()
            .filter(|(id, info)| request.filter.allows(**id, info))
            .map(|(id, _)| *id)
            .collect();
        let scores = self.slots.iter().enumerate().filter_map(|(slot, info)| {
            if !info.alive || !info.has_vector || !allowed_documents.contains(&info.document_id) {
                return None;
            }
            let vector = &self.vectors[slot * self.dimensions..(slot + 1) * self.dimensions];
            let score = dot(vector, query);
            (score >= threshold).then_some((slot as u32, score))
        });
        top(scores, depth)
    }

    /// Approximate memory held, in bytes.
    pub fn memory_bytes(&self) -> usize {
        let postings: usize = self.postings.iter().map(|list| list.capacity() * 8 + 24).sum();
        let terms: usize = self.terms.keys().map(|term| term.capacity() + 48).sum();
        postings
            + terms
            + self.vectors.capacity() * 4
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.by_chunk.capacity() * 24
            + self.documents.len() * 96
    }
}

/// Dot product in eight lanes, which the compiler vectorizes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = a.len() / 8;
    for i in 0..chunks {
        for lane in 0..8 {
            lanes[lane] += a[i * 8 + lane] * b[i * 8 + lane];
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for i in chunks * 8..a.len() {
        sum += a[i] * b[i];
    }
    sum
}

#[derive(PartialEq)]
struct Entry(f32, u32);

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    // Reversed, so the heap's top is the worst kept entry; ties keep the
    // lower slot (the older passage) for a stable order.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

/// The `k` best of `scores`, best first.
fn top(scores: impl Iterator<Item = (u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    let mut heap = BinaryHeap::with_capacity(k + 1);
    for (slot, score) in scores {
        heap.push(Entry(score, slot));
        if heap.len() > k {
            heap.pop();
        }
    }
    let mut out: Vec<(u32, f32)> = heap.into_iter().map(|Entry(score, slot)| (slot, score)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests;

//! Sentence embeddings with a BERT encoder (all-MiniLM-L6-v2), in plain
//! Rust: a WordPiece tokenizer read from `tokenizer.json`, the encoder's
//! weights from `model.safetensors`, row-by-row matrix products,
//! mean pooling and L2 normalisation.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use crate::model_store::InstalledModel;

/// Why the embedding model could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot load the embedding model: {0}")]
    Load(String),
    #[error("the input has {tokens} tokens; this model accepts at most {limit}")]
    TooLong { tokens: usize, limit: usize },
}

#[derive(Deserialize)]
struct BertConfig {
    hidden_size: usize,
    num_attention_heads: usize,
    num_hidden_layers: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    layer_norm_eps: f32,
}

#[derive(Deserialize)]
struct TokenizerFile {
    model: WordPieceModel,
}

#[derive(Deserialize)]
struct WordPieceModel {
    vocab: HashMap<String, u32>,
    unk_token: String,
    continuing_subword_prefix: String,
    max_input_chars_per_word: usize,
}

/// BERT's uncased WordPiece tokenizer.
struct WordPiece {
    vocab: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
    prefix: String,
    max_chars: usize,
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || is_unicode_punct(c)
}

fn is_unicode_punct(c: char) -> bool {
    // General categories P*: approximated by the common Unicode blocks of
    // punctuation (General Punctuation, CJK symbols, fullwidth forms) and
    // Latin-1 punctuation.
    matches!(c as u32, 0x00A1..=0x00BF | 0x2010..=0x2027 | 0x2030..=0x205E | 0x3001..=0x3003 | 0x3008..=0x3011 | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20 | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

impl WordPiece {
    fn load(path: &Path) -> Result<WordPiece, EmbedError> {
        let text = std::fs::read_to_string(path).map_err(|error| EmbedError::Load(error.to_string()))?;
        let file: TokenizerFile = serde_json::from_str(&text)
            .map_err(|error| EmbedError::Load(format!("tokenizer.json: {error}")))?;
        let model = file.model;
        let id = |token: &str| {
            model
                .vocab
                .get(token)
                .copied()
                .ok_or_else(|| EmbedError::Load(format!("tokenizer.json lacks {token}")))
        };
        Ok(WordPiece {
            unk: id(&model.unk_token)?,
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            prefix: model.continuing_subword_prefix.clone(),
            max_chars: model.max_input_chars_per_word,
            vocab: model.vocab,
        })
    }

    /// Normalises like BERT's uncased normaliser: drop control characters,
    /// spaces around CJK ideographs, lowercase, strip accents.
    fn normalise(text: &str) -> String {
        let mut cleaned = String::with_capacity(text.len());
        for c in text.chars() {
            if c == '\0' || c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()) {
                continue;
            }
            if c.is_whitespace() {
                cleaned.push(' ');
            } else if is_cjk(c) {
                cleaned.push(' ');
                cleaned.push(c);
                cleaned.push(' ');
            } else {
                cleaned.push(c);
            }
        }
        cleaned
            .to_lowercase()
            .nfd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .collect()
    }

    fn encode(&self, text: &str) -> Vec<u32> {
        let normalised = Self::normalise(text);
        let mut ids = vec![self.cls];
        for word in normalised.split(' ').filter(|w| !w.is_empty()) {
            // Split punctuation into tokens of its own.
            let mut piece = String::new();
            let mut words = Vec::new();
            for c in word.chars() {
                if is_punctuation(c) {
                    if !piece.is_empty() {
                        words.push(std::mem::take(&mut piece));
                    }
                    words.push(c.to_string());
                } else {
                    piece.push(c);
                }
            }
            if !piece.is_empty() {
                words.push(piece);
            }
            for word in words {
                self.word_piece(&word, &mut ids);
            }
        }
        ids.push(self.sep);
        ids
    }

    fn word_piece(&self, word: &str, ids: &mut Vec<u32>) {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > self.max_chars {
            ids.push(self.unk);
            return;
        }
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while start < end {
                let mut candidate: String = chars[start..end].iter().collect();
                if start > 0 {
                    candidate = format!("{}{candidate}", self.prefix);
                }
                if let Some(&id) = self.vocab.get(&candidate) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => {
                    pieces.push(id);
                    start = end;
                }
                None => {
                    ids.push(self.unk);
                    return;
                }
            }
        }
        ids.extend(pieces);
    }
}

struct Linear {
    /// Row-major `[out, in]`.
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Linear {
    /// `x [rows, in]` → `[rows, out]`.
    fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows * self.outputs);
        for _ in 0..rows {
            out.extend_from_slice(&self.bias);
        }
        crate::embed_gemm::sgemm_a_bt(x, rows, self.inputs, &self.weight, self.outputs, &mut out);
        out
    }
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    fn forward(&self, x: &mut [f32], width: usize) {
        for row in x.chunks_mut(width) {
            let mean = row.iter().sum::<f32>() / width as f32;
            let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
            let scale = 1.0 / (variance + self.eps).sqrt();
            for (index, value) in row.iter_mut().enumerate() {
                *value = (*value - mean) * scale * self.weight[index] + self.bias[index];
            }
        }
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A loaded BERT sentence encoder.
pub struct Embedder {
    name: String,
    weights_sha256: String,
    tokenizer: WordPiece,
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    token_type_embeddings: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    max_positions: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// erf, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
fn erf(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs() as f64;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    sign * y as f32
}

fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

impl Embedder {
    /// Loads an installed embedding model (its files were verified at pull).
    pub fn load(installed: &InstalledModel) -> Result<Embedder, EmbedError> {
        let dir = &installed.dir;
        let config: BertConfig = serde_json::from_str(
            &std::fs::read_to_string(dir.join("config.json"))
                .map_err(|error| EmbedError::Load(error.to_string()))?,
        )
        .map_err(|error| EmbedError::Load(format!("config.json: {error}")))?;
        let tokenizer = WordPiece::load(&dir.join("tokenizer.json"))?;
        let bytes = std::fs::read(dir.join("model.safetensors"))
            .map_err(|error| EmbedError::Load(error.to_string()))?;
        let tensors = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|error| EmbedError::Load(error.to_string()))?;
        let tensor = |name: &str, expected: usize| -> Result<Vec<f32>, EmbedError> {
            let view = tensors
                .tensor(name)
                .map_err(|_| EmbedError::Load(format!("model.safetensors lacks {name}")))?;
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(EmbedError::Load(format!("{name} is not f32")));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if values.len() != expected {
                return Err(EmbedError::Load(format!(
                    "{name} has {} values, expected {expected}",
                    values.len()
                )));
            }
            Ok(values)
        };
        let hidden = config.hidden_size;
        let linear = |prefix: &str, inputs: usize, outputs: usize| -> Result<Linear, EmbedError> {
            Ok(Linear {
                weight: tensor(&format!("{prefix}.weight"), inputs * outputs)?,
                bias: tensor(&format!("{prefix}.bias"), outputs)?,
                inputs,
                outputs,
            })
        };
        let norm = |prefix: &str| -> Result<LayerNorm, EmbedError> {
            Ok(LayerNorm {
                weight: tensor(&format!("{prefix}.weight"), hidden)?,
                bias: tensor(&format!("{prefix}.bias"), hidden)?,
                eps: config.layer_norm_eps,
            })
        };
        let vocab_size = tensors
            .tensor("embeddings.word_embeddings.weight")
            .map(|view| view.shape()[0])
            .map_err(|_| EmbedError::Load("model.safetensors lacks word embeddings".to_owned()))?;
        let mut layers = Vec::new();
        for index in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{index}");
            let inter = config.intermediate_size;
            layers.push(Layer {
                query: linear(&format!("{p}.attention.self.query"), hidden, hidden)?,
                key: linear(&format!("{p}.attention.self.key"), hidden, hidden)?,
                value: linear(&format!("{p}.attention.self.value"), hidden, hidden)?,
                attention_output: linear(&format!("{p}.attention.output.dense"), hidden, hidden)?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: linear(&format!("{p}.intermediate.dense"), hidden, inter)?,
                output: linear(&format!("{p}.output.dense"), inter, hidden)?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Embedder {
            name: installed.manifest.name.clone(),
            weights_sha256: installed.weights_sha256().to_owned(),
            tokenizer,
            word_embeddings: tensor("embeddings.word_embeddings.weight", vocab_size * hidden)?,
            position_embeddings: tensor(
                "embeddings.position_embeddings.weight",
                config.max_position_embeddings * hidden,
            )?,
            token_type_embeddings: tensor("embeddings.token_type_embeddings.weight", 2 * hidden)?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
            hidden,
            heads: config.num_attention_heads,
            max_positions: config.max_position_embeddings,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }

    pub fn dimensions(&self) -> usize {
        self.hidden
    }

    /// Most tokens one input may have (special tokens included).
    pub fn max_tokens(&self) -> usize {
        self.max_positions
    }

    /// Token ids of a text, `[CLS]` and `[SEP]` included.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text)
    }

    /// The normalised embedding of one text; `Err` when it is too long.
    pub fn embed(&self, text: &str) -> Result<(Vec<f32>, usize), EmbedError> {
        let ids = self.tokenize(text);
        if ids.len() > self.max_positions {
            return Err(EmbedError::TooLong {
                tokens: ids.len(),
                limit: self.max_positions,
            });
        }
        Ok((self.forward(&ids), ids.len()))
    }

    fn forward(&self, ids: &[u32]) -> Vec<f32> {
        let n = ids.len();
        let h = self.hidden;
        let mut x = vec![0.0_f32; n * h];
        for (position, &id) in ids.iter().enumerate() {
            let word = &self.word_embeddings[id as usize * h..(id as usize + 1) * h];
            let pos = &self.position_embeddings[position * h..(position + 1) * h];
            let row = &mut x[position * h..(position + 1) * h];
            for i in 0..h {
                row[i] = word[i] + pos[i] + self.token_type_embeddings[i];
            }
        }
        self.embedding_norm.forward(&mut x, h);
        let head_size = h / self.heads;
        let scale = 1.0 / (head_size as f32).sqrt();
        for layer in &self.layers {
            let q = layer.query.forward(&x, n);
            let k = layer.key.forward(&x, n);
            let v = layer.value.forward(&x, n);
            let mut context = vec![0.0_f32; n * h];
            let mut scores = vec![0.0_f32; n];
            for head in 0..self.heads {
                let offset = head * head_size;
                for i in 0..n {
                    let qi = &q[i * h + offset..i * h + offset + head_size];
                    let mut max = f32::NEG_INFINITY;
                    for j in 0..n {
                        let kj = &k[j * h + offset..j * h + offset + head_size];
                        let s = crate::embed_gemm::dot(qi, kj) * scale;
                        scores[j] = s;
                        max = max.max(s);
                    }
                    let mut total = 0.0;
                    for s in scores.iter_mut() {
                        *s = (*s - max).exp();
                        total += *s;
                    }
                    let out = &mut context[i * h + offset..i * h + offset + head_size];
                    for j in 0..n {
                        let weight = scores[j] / total;
                        let vj = &v[j * h + offset..j * h + offset + head_size];
                        for (o, value) in out.iter_mut().zip(vj) {
                            *o += weight * value;
                        }
                    }
                }
            }
            let mut attended = layer.attention_output.forward(&context, n);
            for (a, residual) in attended.iter_mut().zip(&x) {
                *a += residual;
            }
            layer.attention_norm.forward(&mut attended, h);
            let mut inner = layer.intermediate.forward(&attended, n);
            for value in inner.iter_mut() {
                *value = gelu(*value);
            }
            let mut out = layer.output.forward(&inner, n);
            for (o, residual) in out.iter_mut().zip(&attended) {
                *o += residual;
            }
            layer.output_norm.forward(&mut out, h);
            x = out;
        }
        // Mean pooling over every token, then L2 normalisation.
        let mut pooled = vec![0.0_f32; h];
        for row in x.chunks(h) {
            for (p, value) in pooled.iter_mut().zip(row) {
                *p += value;
            }
        }
        let count = n as f32;
        for p in pooled.iter_mut() {
            *p /= count;
        }
        let norm = pooled.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        for p in pooled.iter_mut() {
            *p /= norm;
        }
        pooled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_lowercases_and_strips_accents() {
        assert_eq!(WordPiece::normalise("Élève\tDÉJÀ"), "eleve deja");
        assert_eq!(WordPiece::normalise("日本"), " 日  本 ");
    }

    #[test]
    fn erf_matches_known_values() {
        assert!((erf(0.5) - 0.520_499_9).abs() < 1e-6);
        assert!((erf(-1.0) + 0.842_700_8).abs() < 1e-6);
        assert!(erf(0.0).abs() < 1e-6);
    }

    #[test]
    fn word_piece_splits_on_the_vocabulary() {
        let vocab: HashMap<String, u32> = [
            ("[UNK]", 0),
            ("[CLS]", 1),
            ("[SEP]", 2),
            ("play", 3),
            ("##ing", 4),
            ("!", 5),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let tokenizer = WordPiece {
            vocab,
            unk: 0,
            cls: 1,
            sep: 2,
            prefix: "##".to_owned(),
            max_chars: 100,
        };
        assert_eq!(tokenizer.encode("Playing! xyz"), vec![1, 3, 4, 5, 0, 2]);
    }
}

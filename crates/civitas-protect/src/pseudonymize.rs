//! Reversible pseudonymization: each distinct value found gets a stable
//! placeholder for the whole conversation (`<PERSON_1>`, `<FR_NIR_1>`), so
//! a model outside the agency sees only placeholders, and its answer is
//! restored for the person — also while it streams, when a placeholder
//! arrives split across chunks.
//!
//! The [`Vault`] is what must be kept (encrypted) with the conversation;
//! it holds the real values.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{Entity, Finding};

/// The values of one conversation and their placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vault {
    /// Placeholder → value.
    values: HashMap<String, String>,
    /// (entity, value) → placeholder.
    placeholders: HashMap<String, String>,
    /// How many placeholders each entity type has given out.
    counters: HashMap<String, usize>,
}

/// The longest placeholder, in bytes (`<` + the longest type name + `_` +
/// digits + `>`): what a stream may hold back at most.
const LONGEST_PLACEHOLDER: usize = 48;

impl Vault {
    pub fn new() -> Vault {
        Vault::default()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// How many distinct values of each entity type were replaced (never
    /// the values): what a decision record may say.
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        self.counters
            .iter()
            .map(|(entity, count)| (entity.clone(), *count))
            .collect()
    }

    /// The placeholder of `value` found as `entity` (a new one the first
    /// time; the same one ever after).
    pub fn placeholder(&mut self, entity: Entity, value: &str) -> String {
        let key = format!("{}\u{0}{value}", entity.as_str());
        if let Some(existing) = self.placeholders.get(&key) {
            return existing.clone();
        }
        let counter = self.counters.entry(entity.as_str().to_owned()).or_insert(0);
        *counter += 1;
        let placeholder = format!("<{}_{}>", entity.as_str(), counter);
        self.placeholders.insert(key, placeholder.clone());
        self.values.insert(placeholder.clone(), value.to_owned());
        placeholder
    }

    /// `text` with each of `findings` (as [`crate::analyze`] gives them)
    /// replaced by its placeholder.
    pub fn pseudonymize(&mut self, text: &str, findings: &[Finding]) -> String {
        // Placeholders are numbered per value, so the replacement is done
        // here rather than by the generic operator.
        let mut numbered = String::with_capacity(text.len());
        let mut at = 0;
        let mut sorted: Vec<&Finding> = findings.iter().collect();
        sorted.sort_by_key(|finding| (finding.start, finding.end));
        for finding in sorted {
            if finding.start < at || finding.end > text.len() || finding.start >= finding.end {
                continue;
            }
            if !(text.is_char_boundary(finding.start) && text.is_char_boundary(finding.end)) {
                continue;
            }
            numbered.push_str(&text[at..finding.start]);
            let placeholder = self.placeholder(finding.entity, &text[finding.start..finding.end]);
            numbered.push_str(&placeholder);
            at = finding.end;
        }
        numbered.push_str(&text[at..]);
        numbered
    }

    /// `text` with every placeholder of this vault put back; anything that
    /// only looks like one is left as it is.
    pub fn restore(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            out.push_str(&rest[..open]);
            let candidate = &rest[open..];
            match candidate.find('>').map(|close| &candidate[..=close]) {
                Some(placeholder) if self.values.contains_key(placeholder) => {
                    out.push_str(&self.values[placeholder]);
                    rest = &candidate[placeholder.len()..];
                }
                _ => {
                    out.push('<');
                    rest = &candidate[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// Restores a stream chunk by chunk: text that could be the start of a
/// placeholder is held back until the next chunk tells.
#[derive(Debug, Default)]
pub struct Restorer {
    held: String,
}

impl Restorer {
    pub fn new() -> Restorer {
        Restorer::default()
    }

    /// What can be shown after `chunk` arrives.
    pub fn push(&mut self, vault: &Vault, chunk: &str) -> String {
        self.held.push_str(chunk);
        // Hold back from the last `<` that has no `>` after it, if what
        // follows it could still become a placeholder.
        let cut = match self.held.rfind('<') {
            Some(open)
                if !self.held[open..].contains('>')
                    && self.held.len() - open < LONGEST_PLACEHOLDER
                    && self.held[open + 1..]
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
            {
                open
            }
            _ => self.held.len(),
        };
        let ready: String = self.held[..cut].to_owned();
        self.held.replace_range(..cut, "");
        vault.restore(&ready)
    }

    /// What is left when the stream ends.
    pub fn finish(&mut self, vault: &Vault) -> String {
        let rest = std::mem::take(&mut self.held);
        vault.restore(&rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{analyze, Options};

    #[test]
    fn values_get_stable_placeholders_and_come_back() {
        let mut vault = Vault::new();
        let first = "Jeanne Martin (SSN 536-22-1234) wrote to jeanne@example.gov.";
        let pseudonymized = vault.pseudonymize(first, &analyze(first, &Options::default()));
        assert_eq!(
            pseudonymized,
            "<PERSON_1> (SSN <US_SSN_1>) wrote to <EMAIL_ADDRESS_1>."
        );
        // Later turns reuse the same placeholder for the same value.
        let second = "Did Jeanne Martin answer? Call Paul Durand.";
        let again = vault.pseudonymize(second, &analyze(second, &Options::default()));
        assert_eq!(again, "Did <PERSON_1> answer? Call <PERSON_2>.");
        assert_eq!(vault.restore(&pseudonymized), first);
        assert_eq!(vault.restore(&again), second);
        // Only this vault's placeholders are restored.
        assert_eq!(
            vault.restore("<PERSON_9> and <b> and a < b"),
            "<PERSON_9> and <b> and a < b"
        );
        let json = serde_json::to_string(&vault).unwrap();
        let back: Vault = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vault);
    }

    #[test]
    fn a_stream_is_restored_whatever_the_chunking() {
        let mut vault = Vault::new();
        let question = "Summarise the case of Jeanne Martin, NIR 1841276451089 and 536-22-1234.";
        vault.pseudonymize(question, &analyze(question, &Options::default()));
        let answer = "The case of <PERSON_1> (<US_SSN_1>) is closed; <PERSON_1> is informed. a<b, x <c";
        let expected = vault.restore(answer);
        assert!(expected.contains("Jeanne Martin (536-22-1234)"));
        // Every way of cutting the answer into two or three chunks.
        let boundaries: Vec<usize> = answer.char_indices().map(|(at, _)| at).collect();
        for &a in &boundaries {
            for &b in boundaries.iter().filter(|&&b| b >= a).step_by(7) {
                let mut restorer = Restorer::new();
                let mut out = restorer.push(&vault, &answer[..a]);
                out.push_str(&restorer.push(&vault, &answer[a..b]));
                out.push_str(&restorer.push(&vault, &answer[b..]));
                out.push_str(&restorer.finish(&vault));
                assert_eq!(out, expected, "cut at {a} and {b}");
            }
        }
        // Character by character, nothing shown is ever a placeholder.
        let mut restorer = Restorer::new();
        let mut shown = String::new();
        for character in answer.chars() {
            let piece = restorer.push(&vault, &character.to_string());
            assert!(
                !piece.contains("<PERSON_1>") && !piece.contains("<US_SSN"),
                "{piece}"
            );
            shown.push_str(&piece);
        }
        shown.push_str(&restorer.finish(&vault));
        assert_eq!(shown, expected);
    }
}

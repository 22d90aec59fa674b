//! Replacing what was found: redact (remove), mask (keep the last few
//! characters), a typed placeholder (`<EMAIL_ADDRESS>`), or a keyed hash
//! (HMAC-SHA256: the same value gives the same token under the same key,
//! and nobody without the key can go back or test a guess).

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::{Entity, Finding};

/// How one kind of finding is replaced.
#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    /// Removed.
    Redact,
    /// Each character replaced by `with`, except the last `keep_last`.
    Mask { with: char, keep_last: usize },
    /// `<ENTITY_TYPE>`.
    Placeholder,
    /// `<ENTITY_TYPE:first 16 hex digits of HMAC-SHA256(key, value)>`.
    Hash { key: Vec<u8> },
}

impl Operator {
    pub fn name(&self) -> &'static str {
        match self {
            Operator::Redact => "redact",
            Operator::Mask { .. } => "mask",
            Operator::Placeholder => "replace",
            Operator::Hash { .. } => "hash",
        }
    }

    fn apply(&self, entity: Entity, value: &str) -> String {
        match self {
            Operator::Redact => String::new(),
            Operator::Mask { with, keep_last } => {
                let count = value.chars().count();
                value
                    .chars()
                    .enumerate()
                    .map(|(index, character)| {
                        if index + keep_last >= count || character.is_whitespace() {
                            character
                        } else {
                            *with
                        }
                    })
                    .collect()
            }
            Operator::Placeholder => format!("<{}>", entity.as_str()),
            Operator::Hash { key } => {
                // HMAC accepts keys of any length.
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
                    return format!("<{}>", entity.as_str());
                };
                mac.update(value.as_bytes());
                let digest = mac.finalize().into_bytes();
                let hex: String = digest[..8].iter().map(|byte| format!("{byte:02x}")).collect();
                format!("<{}:{hex}>", entity.as_str())
            }
        }
    }
}

/// One replacement made, with its place in the new text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replaced {
    pub entity: Entity,
    /// Byte offsets into the anonymized text.
    pub start: usize,
    pub end: usize,
    pub operator: &'static str,
}

/// `text` with each of `findings` (non-overlapping, in range, as
/// [`crate::analyze`] returns them) replaced as `operator_for` says.
/// Findings that overlap an earlier one or fall outside the text are
/// skipped rather than corrupting the output.
pub fn anonymize(
    text: &str,
    findings: &[Finding],
    operator_for: impl Fn(Entity) -> Operator,
) -> (String, Vec<Replaced>) {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|finding| (finding.start, finding.end));
    let mut out = String::with_capacity(text.len());
    let mut items = Vec::with_capacity(sorted.len());
    let mut at = 0;
    for finding in sorted {
        let in_range = finding.start >= at
            && finding.start < finding.end
            && finding.end <= text.len()
            && text.is_char_boundary(finding.start)
            && text.is_char_boundary(finding.end);
        if !in_range {
            continue;
        }
        out.push_str(&text[at..finding.start]);
        let operator = operator_for(finding.entity);
        let replacement = operator.apply(finding.entity, &text[finding.start..finding.end]);
        let start = out.len();
        out.push_str(&replacement);
        items.push(Replaced {
            entity: finding.entity,
            start,
            end: out.len(),
            operator: operator.name(),
        });
        at = finding.end;
    }
    out.push_str(&text[at..]);
    (out, items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{analyze, Options};

    #[test]
    fn each_operator_replaces_what_was_found_and_nothing_else() {
        let text = "Write to jeanne@example.gov or call (202) 456-1111, SSN 536-22-1234.";
        let findings = analyze(text, &Options::default());
        assert_eq!(findings.len(), 3, "{findings:?}");
        let (placeholders, items) = anonymize(text, &findings, |_| Operator::Placeholder);
        assert_eq!(
            placeholders,
            "Write to <EMAIL_ADDRESS> or call <PHONE_NUMBER>, SSN <US_SSN>."
        );
        for item in &items {
            assert!(placeholders[item.start..item.end].starts_with('<'));
        }
        let (redacted, _) = anonymize(text, &findings, |_| Operator::Redact);
        assert_eq!(redacted, "Write to  or call , SSN .");
        let (masked, _) = anonymize(text, &findings, |entity| match entity {
            Entity::UsSsn => Operator::Mask {
                with: '*',
                keep_last: 4,
            },
            _ => Operator::Placeholder,
        });
        assert!(masked.ends_with("SSN *******1234."), "{masked}");
        let key = b"agency key".to_vec();
        let hash = |key: &[u8]| anonymize(text, &findings, |_| Operator::Hash { key: key.to_vec() }).0;
        assert_eq!(hash(&key), hash(&key), "stable under one key");
        assert_ne!(hash(&key), hash(b"another key"));
        assert!(!hash(&key).contains("jeanne"));
    }

    #[test]
    fn bad_findings_are_skipped_not_trusted() {
        let text = "café 536-22-1234";
        let findings = vec![
            // Inside the é (not a character boundary), past the end, and
            // overlapping the next.
            Finding {
                entity: Entity::UsSsn,
                start: 4,
                end: 6,
                score: 1.0,
                recognizer: "t",
            },
            Finding {
                entity: Entity::UsSsn,
                start: 10,
                end: 99,
                score: 1.0,
                recognizer: "t",
            },
            Finding {
                entity: Entity::UsSsn,
                start: 6,
                end: 17,
                score: 1.0,
                recognizer: "t",
            },
            Finding {
                entity: Entity::UsSsn,
                start: 8,
                end: 12,
                score: 1.0,
                recognizer: "t",
            },
        ];
        let (out, items) = anonymize(text, &findings, |_| Operator::Placeholder);
        assert_eq!(out, "café <US_SSN>");
        assert_eq!(items.len(), 1);
    }
}

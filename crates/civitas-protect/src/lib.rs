//! Finds personal data, secrets and classification markings in text, in
//! English and French, without I/O. Each finding carries its type, its
//! span (byte offsets into the text), a score and the recognizer that made
//! it. Identifiers with a check digit or structural rules (cards, IBAN,
//! SSN, NIR, SIREN/SIRET, routing numbers, phone numbers) are validated,
//! so a run of digits that merely looks like one is not reported; weak
//! patterns (a ZIP+4, an account number) need a context word nearby.
//!
//! The findings of one text never overlap: when two recognizers claim the
//! same characters, the higher score wins, then the longer span.

pub mod anonymize;
pub mod checks;
mod names;
pub mod pseudonymize;
mod recognizers;

use serde::Serialize;

pub use anonymize::{anonymize, Operator, Replaced};
pub use pseudonymize::{Restorer, Vault};
pub use recognizers::RECOGNIZERS;

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Entity {
    EmailAddress,
    PhoneNumber,
    CreditCard,
    IbanCode,
    IpAddress,
    MacAddress,
    /// A URL carrying a user name and password.
    UrlCredentials,
    UsSsn,
    UsItin,
    UsEin,
    UsPassport,
    UsBankRouting,
    UsBankAccount,
    UsDriverLicense,
    MedicalRecordNumber,
    UsZipCode,
    DateOfBirth,
    FrNir,
    FrSiren,
    FrSiret,
    /// The numéro fiscal (SPI) of a taxpayer.
    FrTaxNumber,
    FrPassport,
    FrIdCard,
    /// API keys, tokens, private keys, passwords in connection strings.
    Secret,
    /// A classification or handling marking (CUI, SECRET, DIFFUSION
    /// RESTREINTE, OFFICIAL-SENSITIVE...).
    ClassificationMarking,
    /// A person's name.
    Person,
    /// A street address (United States, France).
    StreetAddress,
}

impl Entity {
    pub const ALL: &'static [Entity] = &[
        Entity::EmailAddress,
        Entity::PhoneNumber,
        Entity::CreditCard,
        Entity::IbanCode,
        Entity::IpAddress,
        Entity::MacAddress,
        Entity::UrlCredentials,
        Entity::UsSsn,
        Entity::UsItin,
        Entity::UsEin,
        Entity::UsPassport,
        Entity::UsBankRouting,
        Entity::UsBankAccount,
        Entity::UsDriverLicense,
        Entity::MedicalRecordNumber,
        Entity::UsZipCode,
        Entity::DateOfBirth,
        Entity::FrNir,
        Entity::FrSiren,
        Entity::FrSiret,
        Entity::FrTaxNumber,
        Entity::FrPassport,
        Entity::FrIdCard,
        Entity::Secret,
        Entity::ClassificationMarking,
        Entity::Person,
        Entity::StreetAddress,
    ];

    /// The stable name used in APIs and placeholders (`US_SSN`).
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::EmailAddress => "EMAIL_ADDRESS",
            Entity::PhoneNumber => "PHONE_NUMBER",
            Entity::CreditCard => "CREDIT_CARD",
            Entity::IbanCode => "IBAN_CODE",
            Entity::IpAddress => "IP_ADDRESS",
            Entity::MacAddress => "MAC_ADDRESS",
            Entity::UrlCredentials => "URL_CREDENTIALS",
            Entity::UsSsn => "US_SSN",
            Entity::UsItin => "US_ITIN",
            Entity::UsEin => "US_EIN",
            Entity::UsPassport => "US_PASSPORT",
            Entity::UsBankRouting => "US_BANK_ROUTING",
            Entity::UsBankAccount => "US_BANK_ACCOUNT",
            Entity::UsDriverLicense => "US_DRIVER_LICENSE",
            Entity::MedicalRecordNumber => "MEDICAL_RECORD_NUMBER",
            Entity::UsZipCode => "US_ZIP_CODE",
            Entity::DateOfBirth => "DATE_OF_BIRTH",
            Entity::FrNir => "FR_NIR",
            Entity::FrSiren => "FR_SIREN",
            Entity::FrSiret => "FR_SIRET",
            Entity::FrTaxNumber => "FR_TAX_NUMBER",
            Entity::FrPassport => "FR_PASSPORT",
            Entity::FrIdCard => "FR_ID_CARD",
            Entity::Secret => "SECRET",
            Entity::ClassificationMarking => "CLASSIFICATION_MARKING",
            Entity::Person => "PERSON",
            Entity::StreetAddress => "STREET_ADDRESS",
        }
    }

    pub fn parse(name: &str) -> Option<Entity> {
        Entity::ALL.iter().copied().find(|entity| entity.as_str() == name)
    }
}

/// The language of the text, for recognizers and context words that
/// belong to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Fr,
    /// Every recognizer, whichever language.
    Any,
}

impl Language {
    /// English or French, by the share of frequent short words of each
    /// (`Any` when neither stands out, as in a list of numbers).
    pub fn detect(text: &str) -> Language {
        const EN: &[&str] = &[
            "the", "and", "is", "of", "to", "in", "that", "for", "with", "was", "are",
        ];
        const FR: &[&str] = &[
            "le", "la", "les", "des", "est", "et", "une", "du", "pour", "que", "dans", "au",
        ];
        let (mut english, mut french) = (0usize, 0usize);
        for word in text
            .split(|c: char| !c.is_alphabetic())
            .filter(|word| !word.is_empty())
            .take(2000)
        {
            let word = word.to_lowercase();
            english += usize::from(EN.contains(&word.as_str()));
            french += usize::from(FR.contains(&word.as_str()));
        }
        match (english, french) {
            (0, 0) => Language::Any,
            (english, french) if english > french => Language::En,
            (english, french) if french > english => Language::Fr,
            _ => Language::Any,
        }
    }

    pub fn parse(text: &str) -> Option<Language> {
        match text {
            "en" => Some(Language::En),
            "fr" => Some(Language::Fr),
            "any" | "auto" => Some(Language::Any),
            _ => None,
        }
    }
}

/// One thing found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub entity: Entity,
    /// Byte offsets into the text: `&text[start..end]`.
    pub start: usize,
    pub end: usize,
    /// 0 to 1.
    pub score: f32,
    /// The recognizer that made it.
    pub recognizer: &'static str,
}

/// What to look for.
#[derive(Debug, Clone)]
pub struct Options {
    pub language: Language,
    /// Only these types (all when empty).
    pub entities: Vec<Entity>,
    /// Findings below this score are dropped.
    pub threshold: f32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            language: Language::Any,
            entities: Vec::new(),
            threshold: 0.5,
        }
    }
}

/// How far before a candidate context words are looked for, in bytes.
const CONTEXT_BEFORE: usize = 64;
/// What a context word adds to a score.
const CONTEXT_BOOST: f32 = 0.35;

/// The window of `text` before `start` (on a character boundary),
/// lower-cased.
fn context_before(text: &str, start: usize) -> String {
    let mut from = start.saturating_sub(CONTEXT_BEFORE);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    text[from..start].to_lowercase()
}

/// The finding a candidate of `recognizer` makes, if it makes one.
fn judge_candidate(
    recognizer: &recognizers::Recognizer,
    text: &str,
    start: usize,
    end: usize,
    options: &Options,
) -> Option<Finding> {
    let (start, end) = recognizer.trim(text, start, end);
    if start >= end {
        return None;
    }
    let value = &text[start..end];
    if recognizer.validate.is_some_and(|valid| !valid(value)) {
        return None;
    }
    let mut score = match recognizer.judge {
        Some(judge) => judge(value)?,
        None => recognizer.score,
    };
    if !recognizer.context.is_empty() {
        let before = context_before(text, start);
        if recognizer.context.iter().any(|word| before.contains(word)) {
            score = (score + CONTEXT_BOOST).min(1.0);
        } else if recognizer.needs_context {
            return None;
        }
    }
    (score >= options.threshold).then_some(Finding {
        entity: recognizer.entity,
        start,
        end,
        score,
        recognizer: recognizer.name,
    })
}

/// Everything `options` asks for in `text`, in order, without overlaps.
pub fn analyze(text: &str, options: &Options) -> Vec<Finding> {
    let mut found = Vec::new();
    for recognizer in RECOGNIZERS.iter() {
        if !options.entities.is_empty() && !options.entities.contains(&recognizer.entity) {
            continue;
        }
        if let (Some(language), Language::En | Language::Fr) = (recognizer.language, options.language) {
            if language != options.language {
                continue;
            }
        }
        if recognizer.word_by_word {
            // A refused run of capitalised words ("Did Jeanne Martin") is
            // tried again from its next word.
            let mut at = 0;
            while let Some(candidate) = recognizer.regex().find_at(text, at) {
                match judge_candidate(recognizer, text, candidate.start(), candidate.end(), options) {
                    Some(finding) => {
                        at = candidate.end();
                        found.push(finding);
                    }
                    None => {
                        let next_word = text[candidate.start()..candidate.end()]
                            .find(' ')
                            .map(|space| candidate.start() + space + 1);
                        at = next_word.unwrap_or(candidate.end());
                    }
                }
            }
        } else {
            for (start, end) in recognizer.candidates(text) {
                found.extend(judge_candidate(recognizer, text, start, end, options));
            }
        }
    }
    without_overlaps(found)
}

/// Keeps, of findings that share characters, the highest score (then the
/// longest span, then the earliest); the rest come back sorted by start.
fn without_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
            .then(a.entity.cmp(&b.entity))
    });
    // Kept spans by start; they never overlap, so a candidate overlaps one
    // exactly when the last kept span starting before its end reaches
    // past its start (O(n log n) however many findings).
    let mut taken = std::collections::BTreeMap::<usize, usize>::new();
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    for finding in found {
        let overlaps = taken
            .range(..finding.end)
            .next_back()
            .is_some_and(|(_, &end)| end > finding.start);
        if !overlaps {
            taken.insert(finding.start, finding.end);
            kept.push(finding);
        }
    }
    kept.sort_by_key(|finding| (finding.start, finding.end));
    kept
}

#[cfg(test)]
mod tests;

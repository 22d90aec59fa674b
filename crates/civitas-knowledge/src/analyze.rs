//! Text → index terms, for English and French.
//!
//! Lower-cased words (letters and digits; an apostrophe ends an elided
//! article, so "l'agence" gives "agence"), stop words dropped, stemmed
//! with the Snowball stemmer of the text's language, then folded to
//! ASCII (accents removed after stemming, which the French stemmer
//! needs). Queries are analysed in both languages, because a question of
//! five words does not tell its language reliably.

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization;

pub use civitas_protect::Language;

const EN_STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "has", "have",
    "how", "i", "if", "in", "into", "is", "it", "its", "may", "me", "my", "of", "on", "or", "our", "should",
    "so", "that", "the", "their", "them", "there", "these", "this", "to", "was", "we", "what", "when",
    "where", "which", "who", "will", "with", "would", "you", "your",
];

const FR_STOP: &[&str] = &[
    "a", "au", "aux", "avec", "ce", "ces", "cette", "comment", "d", "dans", "de", "des", "du", "elle", "en",
    "est", "et", "il", "ils", "j", "je", "l", "la", "le", "les", "leur", "lui", "m", "ma", "mais", "me",
    "mes", "mon", "n", "ne", "nous", "on", "ou", "par", "pas", "pour", "qu", "quand", "que", "quel",
    "quelle", "quels", "qui", "s", "sa", "se", "ses", "son", "sont", "sur", "t", "ta", "te", "un", "une",
    "vos", "votre", "vous", "y", "être", "à", "où",
];

/// The analysers, built once (the stemmers hold their tables).
pub struct Analyzer {
    english: Stemmer,
    french: Stemmer,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Analyzer")
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer {
            english: Stemmer::create(Algorithm::English),
            french: Stemmer::create(Algorithm::French),
        }
    }
}

impl Analyzer {
    /// The terms of a passage in `language` (`Any` is analysed as English),
    /// in order, repeats kept (term frequency counts them).
    pub fn terms(&self, text: &str, language: Language) -> Vec<String> {
        let (stemmer, stop) = match language {
            Language::Fr => (&self.french, FR_STOP),
            Language::En | Language::Any => (&self.english, EN_STOP),
        };
        let mut terms: Vec<String> = words(text)
            .filter(|word| !stop.contains(&word.as_str()))
            .map(|word| fold(&stemmer.stem(&word)))
            .filter(|term| !term.is_empty())
            .collect();
        terms.extend(identifiers(text));
        terms
    }

    /// The distinct terms of a query, analysed as English and as French.
    pub fn query_terms(&self, text: &str) -> Vec<String> {
        let mut terms = self.terms(text, Language::En);
        terms.extend(self.terms(text, Language::Fr));
        let mut seen = std::collections::HashSet::new();
        terms.retain(|term| seen.insert(term.clone()));
        terms
    }
}

/// Identifiers written with separators ("GP-4306", "RGL-2024/322",
/// "HR-27", "0.58", a file named "grant-gp-4306.txt") also count joined,
/// as terms of two to four adjacent parts with a digit among them
/// ("gp4306", "rgl2024322"): their parts alone ("2024") are everywhere.
fn identifiers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '/' | '.' | '_'))) {
        let piece = piece.trim_matches(|c: char| !c.is_alphanumeric());
        if piece.len() > 64
            || !piece.contains(['-', '/', '.', '_'])
            || !piece.chars().any(|c| c.is_ascii_digit())
        {
            continue;
        }
        let parts: Vec<String> = piece
            .split(['-', '/', '.', '_'])
            .filter(|part| !part.is_empty())
            .map(|part| fold(&part.to_lowercase()))
            .collect();
        for start in 0..parts.len() {
            for end in start + 2..=(start + 4).min(parts.len()) {
                let run = &parts[start..end];
                if run.iter().any(|part| part.chars().any(|c| c.is_ascii_digit())) {
                    out.push(run.concat());
                }
            }
        }
    }
    out
}

/// Lower-cased words of letters and digits, at most 64 characters each.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty() && word.chars().count() <= 64)
        .map(|word| word.to_lowercase())
}

/// Accents removed (NFKD, combining marks dropped); œ and æ spelled out.
fn fold(term: &str) -> String {
    if term.is_ascii() {
        return term.to_owned();
    }
    term.nfkd()
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .flat_map(|c| match c {
            'œ' => vec!['o', 'e'],
            'æ' => vec!['a', 'e'],
            'ß' => vec!['s', 's'],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_and_french_words_meet_their_inflections() {
        let analyzer = Analyzer::default();
        assert_eq!(
            analyzer.terms("Travelling expenses", Language::En),
            analyzer.terms("travel expense", Language::En)
        );
        assert_eq!(
            analyzer.terms("les congés annuels", Language::Fr),
            analyzer.terms("congé annuel", Language::Fr)
        );
        assert_eq!(analyzer.terms("L'agence", Language::Fr), vec!["agenc"]);
        // Stop words go, numbers and codes stay; a code also counts whole.
        assert_eq!(
            analyzer.terms("the form HR-27 for 2026.", Language::En),
            vec!["form", "hr", "27", "2026", "hr27"]
        );
        let terms = analyzer.terms("règlement RGL-2024/322 (GP-4306)", Language::Fr);
        assert!(
            terms.ends_with(&[
                "rgl2024".to_owned(),
                "rgl2024322".to_owned(),
                "2024322".to_owned(),
                "gp4306".to_owned()
            ]),
            "{terms:?}"
        );
        assert!(analyzer
            .terms("grant-gp-4306.txt", Language::En)
            .contains(&"gp4306".to_owned()));
        // Accents fold after stemming.
        assert!(analyzer
            .terms("télétravail", Language::Fr)
            .iter()
            .all(|term| term.is_ascii()));
    }

    #[test]
    fn queries_are_analysed_in_both_languages_without_repeats() {
        let analyzer = Analyzer::default();
        let terms = analyzer.query_terms("congés de maladie");
        assert!(terms.contains(&analyzer.terms("congés", Language::Fr)[0]));
        let mut sorted = terms.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), terms.len());
    }
}

//! The workspace's words in English and French: Fluent catalogues in
//! `locales/`, embedded in the binary. The language is the `civitas_lang`
//! cookie (set by the language switch), else the browser's
//! `Accept-Language`, else English.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

/// Languages with a catalogue, the default first.
pub const LANGUAGES: [&str; 2] = ["en", "fr"];

const CATALOGUES: [(&str, &str); 2] = [
    ("en", include_str!("../../locales/en.ftl")),
    ("fr", include_str!("../../locales/fr.ftl")),
];

/// The cookie remembering a chosen language.
pub const LANGUAGE_COOKIE: &str = "civitas_lang";

fn bundles() -> &'static Vec<(&'static str, FluentBundle<FluentResource>)> {
    static BUNDLES: OnceLock<Vec<(&'static str, FluentBundle<FluentResource>)>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        CATALOGUES
            .iter()
            .map(|(lang, text)| {
                let language = lang.parse().unwrap_or_default();
                let mut bundle = FluentBundle::new_concurrent(vec![language]);
                // No invisible isolation marks in HTML attributes.
                bundle.set_use_isolating(false);
                match FluentResource::try_new((*text).to_owned()) {
                    Ok(resource) => {
                        if let Err(errors) = bundle.add_resource(resource) {
                            tracing::error!(lang, ?errors, "duplicate messages in a catalogue");
                        }
                    }
                    Err((_, errors)) => tracing::error!(lang, ?errors, "a catalogue does not parse"),
                }
                (*lang, bundle)
            })
            .collect()
    })
}

/// The words of one language, for templates.
#[derive(Debug, Clone, Copy)]
pub struct Texts {
    pub lang: &'static str,
}

impl Texts {
    pub fn new(lang: &str) -> Texts {
        Texts {
            lang: LANGUAGES
                .into_iter()
                .find(|known| *known == lang)
                .unwrap_or(LANGUAGES[0]),
        }
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        let Some((_, bundle)) = bundles().iter().find(|(lang, _)| *lang == self.lang) else {
            return id.to_owned();
        };
        let Some(pattern) = bundle.get_message(id).and_then(|message| message.value()) else {
            tracing::warn!(id, lang = self.lang, "missing message");
            return id.to_owned();
        };
        let mut errors = Vec::new();
        bundle.format_pattern(pattern, args, &mut errors).into_owned()
    }

    /// The message `id`.
    pub fn get(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// The message `id` with named arguments.
    pub fn with(&self, id: &str, args: &[(&str, &str)]) -> String {
        let mut fluent = FluentArgs::new();
        for (name, value) in args {
            fluent.set(*name, (*value).to_owned());
        }
        self.format(id, Some(&fluent))
    }
}

impl Texts {
    /// A moment in this language, in UTC: `Nov 29, 2026, 14:05 UTC` or
    /// `29 nov. 2026, 14:05 UTC`.
    pub fn datetime(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        use chrono::{Datelike, Timelike};
        const EN: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        const FR: [&str; 12] = [
            "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.",
        ];
        let month = at.month0() as usize;
        match self.lang {
            "fr" => format!(
                "{} {} {}, {:02}:{:02} UTC",
                at.day(),
                FR[month],
                at.year(),
                at.hour(),
                at.minute()
            ),
            _ => format!(
                "{} {}, {}, {:02}:{:02} UTC",
                EN[month],
                at.day(),
                at.year(),
                at.hour(),
                at.minute()
            ),
        }
    }

    /// A whole number grouped by thousands: `12,345` or `12 345` (French
    /// uses a narrow no-break space).
    pub fn number(&self, value: i64) -> String {
        let separator = if self.lang == "fr" { '\u{202f}' } else { ',' };
        let digits = value.unsigned_abs().to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
        if value < 0 {
            out.push('-');
        }
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index).is_multiple_of(3) {
                out.push(separator);
            }
            out.push(digit);
        }
        out
    }

    /// A decimal number with `places` decimals: `1,234.50` or `1 234,50`.
    pub fn decimal(&self, value: f64, places: usize) -> String {
        let text = format!("{:.places$}", value.abs());
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let whole: i64 = whole.parse().unwrap_or(0);
        let mut out = if value < 0.0 && value.abs() >= 0.5 * 10f64.powi(-(places as i32)) {
            format!("-{}", self.number(whole))
        } else {
            self.number(whole)
        };
        if places > 0 {
            out.push(if self.lang == "fr" { ',' } else { '.' });
            out.push_str(fraction);
        }
        out
    }
}

/// The language of a request.
pub fn negotiate(headers: &HeaderMap) -> Texts {
    if let Some(chosen) = crate::auth::cookie(headers, LANGUAGE_COOKIE) {
        if LANGUAGES.contains(&chosen) {
            return Texts::new(chosen);
        }
    }
    let accepted = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let mut ranked: Vec<(f32, &str)> = accepted
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.trim();
            let quality = pieces
                .find_map(|piece| piece.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((quality, tag))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    ranked
        .into_iter()
        .filter(|(quality, _)| *quality > 0.0)
        .find_map(|(_, tag)| {
            let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
            LANGUAGES.into_iter().find(|known| *known == primary)
        })
        .map(Texts::new)
        .unwrap_or(Texts::new(LANGUAGES[0]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ids(text: &str) -> Vec<&str> {
        let mut ids: Vec<&str> = text
            .lines()
            .filter(|line| !line.starts_with(' ') && !line.starts_with('#'))
            .filter_map(|line| line.split_once(" = ").map(|(id, _)| id.trim()))
            .collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn every_message_exists_in_every_language_and_parses() {
        let english = ids(CATALOGUES[0].1);
        assert!(english.len() > 10);
        for (lang, text) in CATALOGUES {
            let listed = ids(text);
            let mut unique = listed.clone();
            unique.dedup();
            assert_eq!(
                listed, unique,
                "{lang} defines a message twice (the last one wins silently)"
            );
            assert_eq!(listed, english, "{lang} and en list different messages");
            assert!(
                FluentResource::try_new(text.to_owned()).is_ok(),
                "{lang} does not parse"
            );
            for id in &english {
                assert_ne!(Texts::new(lang).get(id), *id, "{lang}: {id} missing");
            }
        }
        assert_eq!(
            Texts::new("fr").with("delete-text", &[("title", "Budget 2027")]),
            "« Budget 2027 » et tous ses messages seront supprimés. C’est définitif."
        );
    }

    #[test]
    fn the_language_follows_the_cookie_then_the_browser() {
        let mut headers = HeaderMap::new();
        assert_eq!(negotiate(&headers).lang, "en");
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("de-DE, fr-CA;q=0.8, en;q=0.5"),
        );
        assert_eq!(negotiate(&headers).lang, "fr");
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("fr;q=0, en-GB"));
        assert_eq!(negotiate(&headers).lang, "en");
        headers.insert(header::COOKIE, HeaderValue::from_static("civitas_lang=fr"));
        assert_eq!(negotiate(&headers).lang, "fr");
        headers.insert(header::COOKIE, HeaderValue::from_static("civitas_lang=xx"));
        assert_eq!(negotiate(&headers).lang, "en");
    }

    #[test]
    fn dates_and_numbers_follow_the_language() {
        use chrono::TimeZone;
        let at = chrono::Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap();
        assert_eq!(Texts::new("en").datetime(at), "Feb 3, 2026, 04:05 UTC");
        assert_eq!(Texts::new("fr").datetime(at), "3 févr. 2026, 04:05 UTC");
        assert_eq!(Texts::new("en").number(1_234_567), "1,234,567");
        assert_eq!(Texts::new("fr").number(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(Texts::new("en").number(-999), "-999");
        assert_eq!(Texts::new("en").number(0), "0");
        assert_eq!(Texts::new("en").decimal(1234.5, 2), "1,234.50");
        assert_eq!(Texts::new("fr").decimal(1234.5, 2), "1\u{202f}234,50");
        assert_eq!(Texts::new("en").decimal(0.004, 2), "0.00");
        assert_eq!(Texts::new("en").decimal(-2.5, 1), "-2.5");
    }
}

//! The recognizers: a pattern that finds candidates, an optional
//! validation of each candidate, a base score, and context words that
//! raise the score (or, for weak patterns, are required).

use std::sync::LazyLock;

use base64::Engine;
use regex::Regex;

use crate::checks;
use crate::names;
use crate::{Entity, Language};

/// One recognizer.
#[derive(Debug)]
pub struct Recognizer {
    pub name: &'static str,
    pub entity: Entity,
    regex: Regex,
    pub score: f32,
    pub validate: Option<fn(&str) -> bool>,
    /// Decides the score of a candidate itself (`None`: not one).
    pub judge: Option<fn(&str) -> Option<f32>>,
    /// Lower-case words that, found shortly before, raise the score.
    pub context: &'static [&'static str],
    /// Without a context word, the candidate is not reported.
    pub needs_context: bool,
    /// The language it belongs to (`None`: any).
    pub language: Option<Language>,
    /// The capture group that is the finding (the whole match when `None`),
    /// for patterns that need a cue before it (a title before a name).
    group: Option<usize>,
    /// A refused candidate is tried again from its second word (runs of
    /// capitalised words where the name starts later).
    pub word_by_word: bool,
}

impl Recognizer {
    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    /// The byte spans of the candidates in `text`.
    pub fn candidates<'t>(&'t self, text: &'t str) -> Box<dyn Iterator<Item = (usize, usize)> + 't> {
        match self.group {
            None => Box::new(
                self.regex
                    .find_iter(text)
                    .map(|found| (found.start(), found.end())),
            ),
            Some(group) => Box::new(
                self.regex
                    .captures_iter(text)
                    .filter_map(move |captures| captures.get(group))
                    .map(|found| (found.start(), found.end())),
            ),
        }
    }

    /// The candidate without the punctuation a sentence puts after it.
    pub fn trim(&self, text: &str, start: usize, end: usize) -> (usize, usize) {
        let value = &text[start..end];
        let trimmed = value.trim_end_matches(['.', ',', ';', ':', '!', '?', ' ']);
        (start, start + trimmed.len())
    }
}

struct Spec {
    name: &'static str,
    entity: Entity,
    pattern: &'static str,
    score: f32,
    validate: Option<fn(&str) -> bool>,
    judge: Option<fn(&str) -> Option<f32>>,
    context: &'static [&'static str],
    needs_context: bool,
    language: Option<Language>,
    group: Option<usize>,
    word_by_word: bool,
}

const fn spec(name: &'static str, entity: Entity, pattern: &'static str, score: f32) -> Spec {
    Spec {
        name,
        entity,
        pattern,
        score,
        validate: None,
        judge: None,
        context: &[],
        needs_context: false,
        language: None,
        group: None,
        word_by_word: false,
    }
}

impl Spec {
    const fn valid(mut self, validate: fn(&str) -> bool) -> Spec {
        self.validate = Some(validate);
        self
    }

    const fn near(mut self, context: &'static [&'static str]) -> Spec {
        self.context = context;
        self
    }

    const fn only_near(mut self, context: &'static [&'static str]) -> Spec {
        self.context = context;
        self.needs_context = true;
        self
    }

    const fn lang(mut self, language: Language) -> Spec {
        self.language = Some(language);
        self
    }

    const fn judged(mut self, judge: fn(&str) -> Option<f32>) -> Spec {
        self.judge = Some(judge);
        self
    }

    const fn group(mut self, group: usize) -> Spec {
        self.group = Some(group);
        self
    }

    const fn word_by_word(mut self) -> Spec {
        self.word_by_word = true;
        self
    }
}

fn with_digits(check: fn(&[u8]) -> bool) -> impl Fn(&str) -> bool {
    move |text| checks::digits(text).is_some_and(|digits| check(&digits))
}

fn card(text: &str) -> bool {
    with_digits(checks::payment_card)(text)
}
fn ssn(text: &str) -> bool {
    // The same separator throughout, or none.
    let separators: Vec<char> = text.chars().filter(|c| !c.is_ascii_digit()).collect();
    separators.windows(2).all(|pair| pair[0] == pair[1]) && with_digits(checks::us_ssn)(text)
}
fn itin(text: &str) -> bool {
    with_digits(checks::us_itin)(text)
}
fn ein(text: &str) -> bool {
    with_digits(checks::us_ein)(text)
}
fn routing(text: &str) -> bool {
    with_digits(checks::aba_routing)(text)
}
fn siren(text: &str) -> bool {
    with_digits(checks::fr_siren)(text)
}
fn siret(text: &str) -> bool {
    with_digits(checks::fr_siret)(text)
}
fn nanp(text: &str) -> bool {
    let digits: Vec<u8> = text
        .chars()
        .filter_map(|c| c.to_digit(10).map(|d| d as u8))
        .collect();
    checks::nanp(&digits)
}
fn french_phone(text: &str) -> bool {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    (text.starts_with('+') && digits == 11) || (text.starts_with('0') && digits == 10)
}
fn international_phone(text: &str) -> bool {
    (8..=15).contains(&text.chars().filter(char::is_ascii_digit).count())
}
fn ipv4(text: &str) -> bool {
    text.parse::<std::net::Ipv4Addr>().is_ok()
}
fn ipv6(text: &str) -> bool {
    text.chars().filter(|c| c.is_ascii_hexdigit()).count() >= 4 && text.parse::<std::net::Ipv6Addr>().is_ok()
}
fn mac(text: &str) -> bool {
    let separators: Vec<char> = text.chars().filter(|c| *c == ':' || *c == '-').collect();
    separators.windows(2).all(|pair| pair[0] == pair[1])
}
fn email(text: &str) -> bool {
    let Some((local, _)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty() && local.len() <= 64 && !local.starts_with('.') && !local.ends_with('.')
}
fn jwt(text: &str) -> bool {
    let Some(header) = text.split('.').next() else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|header| header.get("alg").is_some())
}
/// The French numéro fiscal (SPI): 13 digits, the last three the first
/// ten modulo 511.
fn spi(text: &str) -> bool {
    let Some(digits) = checks::digits(text) else {
        return false;
    };
    if digits.len() != 13 {
        return false;
    }
    let number = |range: std::ops::Range<usize>| {
        digits[range]
            .iter()
            .fold(0u64, |acc, &digit| acc * 10 + u64::from(digit))
    };
    number(0..10) % 511 == number(10..13)
}
fn nir(text: &str) -> bool {
    checks::fr_nir(text)
}
fn iban(text: &str) -> bool {
    checks::iban(text)
}
/// A date that could be a birth date: a real day, month and a year from
/// 1900 to now.
/// Today's date (UTC) as year, month, day.
fn today() -> (u32, u32, u32) {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    civil(days)
}

/// Days since 1970-01-01 as a civil date (H. Hinnant's algorithm).
fn civil(days: i64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year as u32, month as u32, day as u32)
}

fn birth_date(text: &str) -> bool {
    let numbers: Vec<u32> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .filter_map(|part| part.parse().ok())
        .collect();
    // Nobody is born after today (a deadline next to the word "born" is
    // not a date of birth).
    let (this_year, this_month, this_day) = today();
    let plausible = |day: u32, month: u32, year: u32| {
        let year = if year < 100 { year + 1900 } else { year };
        (1..=31).contains(&day)
            && (1..=12).contains(&month)
            && (1900..=this_year).contains(&year)
            && (year, month, day) <= (this_year, this_month, this_day)
    };
    match numbers.as_slice() {
        [year, month, day] if *year > 1000 => plausible(*day, *month, *year),
        // Day first (most of the world) or month first (United States).
        [a, b, year] => plausible(*a, *b, *year) || plausible(*b, *a, *year),
        [day, year] => (1..=31).contains(day) && (1900..this_year).contains(year),
        _ => false,
    }
}

const SSN_WORDS: &[&str] = &["ssn", "social security", "ss#", "ss #", "sécurité sociale"];
const ACCOUNT_WORDS: &[&str] = &["account", "acct", "checking", "savings", "compte"];
const BIRTH_WORDS: &[&str] = &[
    "born",
    "birth",
    "dob",
    "d.o.b",
    "né le",
    "née le",
    "né à",
    "née à",
    "naissance",
    "né(e)",
];
macro_rules! months {
    () => {
        "January|February|March|April|May|June|July|August|September|October|November|December|\
         janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre"
    };
}

/// Word boundaries are ASCII (`(?-u:\b)`): Unicode ones would keep the
/// regex engine off its fast path on any non-ASCII text.
fn specs() -> Vec<Spec> {
    use Entity::*;
    vec![
        spec("email", EmailAddress, r"[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}", 1.0).valid(email),
        spec("url_credentials", UrlCredentials, r"(?-u:\b)[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:[^\s@/]+@[^\s/?#]+", 1.0),
        spec("ipv4", IpAddress, r"(?-u:\b)(?:\d{1,3}\.){3}\d{1,3}(?-u:\b)", 0.6)
            .valid(ipv4)
            .near(&["ip", "address", "adresse", "host", "server", "serveur"]),
        spec("ipv6", IpAddress, r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}", 0.7).valid(ipv6),
        spec("mac", MacAddress, r"(?-u:\b)[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}(?-u:\b)", 0.8).valid(mac),
        spec("payment_card", CreditCard, r"(?-u:\b)(?:\d[ -]?){11,18}\d(?-u:\b)", 0.9)
            .valid(card)
            .near(&["card", "carte", "visa", "mastercard", "amex", "cb"]),
        spec("iban", IbanCode, r"(?-u:\b)[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?-u:\b)", 1.0).valid(iban),
        spec("us_ssn", UsSsn, r"(?-u:\b)\d{3}[- ]\d{2}[- ]\d{4}(?-u:\b)", 0.85).valid(ssn).near(SSN_WORDS),
        spec("us_ssn_plain", UsSsn, r"(?-u:\b)\d{9}(?-u:\b)", 0.5).valid(ssn).only_near(SSN_WORDS),
        spec("us_itin", UsItin, r"(?-u:\b)9\d{2}[- ]?\d{2}[- ]?\d{4}(?-u:\b)", 0.6)
            .valid(itin)
            .near(&["itin", "taxpayer", "tax id"]),
        spec("us_ein", UsEin, r"(?-u:\b)\d{2}-\d{7}(?-u:\b)", 0.5)
            .valid(ein)
            .only_near(&["ein", "employer identification", "fein", "tax id", "tin"]),
        // Written without its hyphen, only right after its own name.
        spec("us_ein_digits", UsEin, r"(?-u:\b)\d{9}(?-u:\b)", 0.3)
            .valid(ein)
            .only_near(&[" ein", "(ein", "ein:", "ein#", "employer identification", "fein"]),
        spec("us_routing", UsBankRouting, r"(?-u:\b)\d{9}(?-u:\b)", 0.5)
            .valid(routing)
            .only_near(&["routing", "aba", "rtn", "transit"]),
        spec("us_account", UsBankAccount, r"(?-u:\b)\d{8,17}(?-u:\b)", 0.4).only_near(ACCOUNT_WORDS),
        spec("us_passport", UsPassport, r"(?-u:\b)[A-Z]?\d{8,9}(?-u:\b)", 0.4)
            .only_near(&["passport"])
            .lang(Language::En),
        spec("us_driver_license", UsDriverLicense, r"(?-u:\b)(?:[A-Z]{1,2}\d{4,12}|\d{7,12})(?-u:\b)", 0.3)
            .only_near(&["driver", "license", "licence", "dl#", "dl #", "permis de conduire"]),
        spec("medical_record", MedicalRecordNumber, r"(?-u:\b)\d{6,10}(?-u:\b)", 0.3)
            .only_near(&["mrn", "medical record", "patient id", "patient number", "dossier médical"]),
        spec("us_zip_plus4", UsZipCode, r"(?-u:\b)\d{5}-\d{4}(?-u:\b)", 0.3)
            .only_near(&["zip", "postal", "address", "mail", "street", " st", " ave"]),
        spec("date_of_birth", DateOfBirth, r"(?-u:\b)(?:\d{4}-\d{2}-\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4})(?-u:\b)", 0.3)
            .valid(birth_date)
            .only_near(BIRTH_WORDS),
        spec(
            "date_of_birth_words",
            DateOfBirth,
            concat!(r"(?i)(?-u:\b)\d{1,2}(?:er)? (?:", months!(), r") \d{4}(?-u:\b)"),
            0.3,
        )
        .valid(birth_date)
        .only_near(BIRTH_WORDS),
        // "January 6, 1964", "Jun 3, 1996", "20 Jun 1971" (US and English
        // orders, months written out or cut short).
        spec(
            "date_of_birth_month_first",
            DateOfBirth,
            concat!(
                r"(?i)(?-u:\b)(?:",
                months!(),
                r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.? \d{1,2},? \d{4}(?-u:\b)"
            ),
            0.3,
        )
        .valid(birth_date)
        .only_near(BIRTH_WORDS),
        spec(
            "date_of_birth_short_month",
            DateOfBirth,
            r"(?i)(?-u:\b)\d{1,2} (?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.? \d{4}(?-u:\b)",
            0.3,
        )
        .valid(birth_date)
        .only_near(BIRTH_WORDS),
        spec(
            "fr_nir",
            FrNir,
            r"(?-u:\b)[1-478] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AaBb]) ?\d{3} ?\d{3} ?\d{2}(?-u:\b)",
            1.0,
        )
        .valid(nir),
        spec("fr_siret", FrSiret, r"(?-u:\b)\d{3} ?\d{3} ?\d{3} ?\d{5}(?-u:\b)", 0.75)
            .valid(siret)
            .near(&["siret", "établissement", "etablissement"]),
        spec("fr_siren", FrSiren, r"(?-u:\b)\d{3} ?\d{3} ?\d{3}(?-u:\b)", 0.5)
            .valid(siren)
            .only_near(&["siren", "rcs", "société", "societe", "entreprise", "raison sociale"]),
        spec("fr_spi", FrTaxNumber, r"(?-u:\b)[0-3]\d ?\d{2} ?\d{3} ?\d{3} ?\d{3}(?-u:\b)", 0.5)
            .valid(spi)
            .only_near(&["numéro fiscal", "numero fiscal", "spi", "fiscal", "impôt", "impot", "avis d'imposition"]),
        spec("fr_passport", FrPassport, r"(?-u:\b)\d{2}[A-Z]{2}\d{5}(?-u:\b)", 0.4).only_near(&["passeport", "passport"]),
        spec("fr_id_card", FrIdCard, r"(?-u:\b)(?:\d{12}|[A-Z0-9]{9})(?-u:\b)", 0.3).only_near(&[
            "carte d'identité",
            "carte d’identité",
            "carte nationale",
            "cni",
            "identity card",
        ]),
        spec("fr_phone", PhoneNumber, r"(?:\+33 ?|(?-u:\b)0)[1-9](?:[ .-]?\d{2}){4}(?-u:\b)", 0.75)
            .valid(french_phone)
            .near(&["tél", "tel", "téléphone", "phone", "portable", "mobile", "appeler"]),
        spec(
            "nanp_phone",
            PhoneNumber,
            r"(?:\+1[ .-]?)?(?:\(\d{3}\)|(?-u:\b)\d{3})[ .-]?\d{3}[ .-]?\d{4}(?-u:\b)",
            0.7,
        )
        .valid(nanp)
        .near(&["phone", "call", "tel", "cell", "mobile", "fax"]),
        spec("international_phone", PhoneNumber, r"\+\d{1,3}(?: ?\(0\))?(?:[ .-]?\d{1,4}){2,5}(?-u:\b)", 0.6).valid(international_phone),
        // Names: after a title or a greeting, or a known given name
        // followed by a surname (known, or written in capitals).
        spec(
            "person_title",
            Person,
            r"(?-u:\b)(?:(?:Mr|Mrs|Ms|Miss|Dr|Prof|Mx|Mme|Mlle|Monsieur|Madame|Mademoiselle|Docteur|Maître)\.?|M\.) +(\p{Lu}[\p{L}'’-]+(?: +\p{Lu}[\p{L}'’-]+){0,2})",
            0.85,
        )
        .group(1)
        .judged(names::after_title),
        spec(
            "person_greeting",
            Person,
            r"(?-u:\b)(?:Dear|Hello|Hi|Bonjour|Cher|Chère|Bonsoir) +(\p{Lu}[\p{L}'’-]+(?: +\p{Lu}[\p{L}'’-]+)?)",
            0.7,
        )
        .group(1)
        .judged(names::after_title),
        spec(
            "person_gazetteer",
            Person,
            r"\p{Lu}[\p{L}'’]+(?:-\p{Lu}[\p{L}'’]+)?(?: +\p{Lu}\.)? +(?:(?:de|du|des|da|di|del|della|dos|van|von|der|den|ben|bin|le|la) +)*(?:[dD]['’])?\p{Lu}[\p{L}'’-]+(?: +\p{Lu}[\p{L}'’-]+)?",
            0.5,
        )
        .judged(names::known)
        .word_by_word()
        .near(&["name", "nom", "signed", "signé", "applicant", "demandeur", "demandeuse", "agent", "contact", "from", "de la part"]),
        spec(
            "us_street_address",
            StreetAddress,
            r"(?-u:\b)\d{1,6} +(?:[NSEW]\.? +)?(?:[A-Z][a-z]+ +){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Court|Ct|Place|Pl|Way|Terrace|Parkway|Pkwy|Circle|Cir|Highway|Hwy)(?-u:\b)\.?(?:,? +(?:Apt|Suite|Unit|#) *[A-Za-z0-9-]+)?",
            0.9,
        ),
        spec(
            "fr_street_address",
            StreetAddress,
            r"(?i)(?-u:\b)\d{1,4}(?: ?(?:bis|ter)|[a-z](?-u:\b))?,? +(?:rue|avenue|av\.|boulevard|bd|place|allée|impasse|chemin|route|quai|cours|square|passage)(?-u:\b) +(?:(?:de|du|des|la|le|les|aux|sur|sous|et) +|[ld]['’])*(?-i:\p{Lu}[\p{L}'’-]*)(?: +(?:(?:de|du|des|la|le|les|aux|sur|sous|et) +|[ld]['’])*(?-i:\p{Lu}[\p{L}'’-]*)){0,4}(?:,? +\d{5} +(?-i:\p{Lu}[\p{L}'’-]+(?:[ -]\p{Lu}[\p{L}'’-]+)*))?",
            0.9,
        ),
        spec(
            "pem_private_key",
            Secret,
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?",
            1.0,
        ),
        spec("aws_access_key", Secret, r"(?-u:\b)(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)", 0.95),
        spec("github_token", Secret, r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})(?-u:\b)", 0.95),
        spec("slack_token", Secret, r"(?-u:\b)xox[abprs]-[A-Za-z0-9-]{10,}", 0.95),
        spec("google_api_key", Secret, r"(?-u:\b)AIza[0-9A-Za-z_-]{35}(?-u:\b)", 0.95),
        spec("stripe_key", Secret, r"(?-u:\b)(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}(?-u:\b)", 0.95),
        spec("sk_api_key", Secret, r"(?-u:\b)sk-[A-Za-z0-9_-]{20,}", 0.9),
        spec("jwt", Secret, r"(?-u:\b)eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", 0.95).valid(jwt),
        spec(
            "password_assignment",
            Secret,
            r#"(?i)(?-u:\b)(?:password|passwd|pwd|mot de passe|mdp)\s*[=:]\s*[^\s;,'"]{4,}"#,
            0.9,
        ),
        spec("cui_marking", ClassificationMarking, r"(?-u:\b)CUI(?://[A-Z0-9-]+(?:/[A-Z0-9-]+)*)?(?-u:\b)", 0.8),
        spec(
            "us_marking",
            ClassificationMarking,
            r"(?-u:\b)(?:TOP SECRET|SECRET|CONFIDENTIAL|FOR OFFICIAL USE ONLY|FOUO|NOFORN)(?://[A-Z0-9 /-]+)?(?-u:\b)",
            0.75,
        ),
        spec(
            "fr_marking",
            ClassificationMarking,
            r"(?-u:\b)(?:DIFFUSION RESTREINTE|CONFIDENTIEL(?: DÉFENSE)?|SECRET DÉFENSE|TRÈS SECRET)(?-u:\b)",
            0.8,
        ),
        spec("uk_marking", ClassificationMarking, r"(?-u:\b)OFFICIAL[- ]SENSITIVE(?-u:\b)", 0.8),
    ]
}

/// Every recognizer, compiled once.
pub static RECOGNIZERS: LazyLock<Vec<Recognizer>> = LazyLock::new(|| {
    specs()
        .into_iter()
        .map(|spec| Recognizer {
            name: spec.name,
            entity: spec.entity,
            regex: Regex::new(spec.pattern)
                .unwrap_or_else(|error| panic!("recognizer {}: {error}", spec.name)),
            score: spec.score,
            validate: spec.validate,
            judge: spec.judge,
            context: spec.context,
            needs_context: spec.needs_context,
            language: spec.language,
            group: spec.group,
            word_by_word: spec.word_by_word,
        })
        .collect()
});

#[cfg(test)]
mod date_tests {
    #[test]
    fn days_since_1970_become_dates_and_no_one_is_born_tomorrow() {
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert_eq!(super::civil(11_016), (2000, 2, 29));
        assert_eq!(super::civil(20_000), (2024, 10, 4));
        assert!(super::birth_date("14/03/1984"));
        assert!(!super::birth_date(&format!("01/01/{}", super::today().0 + 1)));
    }
}

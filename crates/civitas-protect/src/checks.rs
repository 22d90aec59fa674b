//! Checksums and structural rules that tell a real identifier from a
//! string of digits that only looks like one.

/// The digits of `text`, ignoring spaces, dots, dashes and slashes; `None`
/// if anything else is in it.
pub fn digits(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '0'..='9' => out.push(character as u8 - b'0'),
            ' ' | '.' | '-' | '/' | '\u{a0}' => {}
            _ => return None,
        }
    }
    Some(out)
}

/// The Luhn (mod 10) check: payment cards, SIREN, SIRET.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, &digit)| {
            let digit = u32::from(digit);
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A payment card number: Luhn, and a length and prefix (IIN) of a known
/// brand (Visa, Mastercard, American Express, Discover, JCB, Diners,
/// UnionPay, Maestro, Carte Bancaire ranges are Visa/Mastercard's).
pub fn payment_card(digits: &[u8]) -> bool {
    let length = digits.len();
    if !(12..=19).contains(&length) || !luhn(digits) {
        return false;
    }
    let prefix = |count: usize| -> u32 {
        digits[..count]
            .iter()
            .fold(0, |acc, &digit| acc * 10 + u32::from(digit))
    };
    let visa = digits[0] == 4 && matches!(length, 13 | 16 | 19);
    let mastercard = length == 16 && ((51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4)));
    let amex = length == 15 && matches!(prefix(2), 34 | 37);
    let discover = (16..=19).contains(&length)
        && (prefix(4) == 6011 || prefix(2) == 65 || (644..=649).contains(&prefix(3)));
    let jcb = (16..=19).contains(&length) && (3528..=3589).contains(&prefix(4));
    let diners = (14..=19).contains(&length)
        && (matches!(prefix(2), 36 | 38 | 39) || (300..=305).contains(&prefix(3)));
    let unionpay = (16..=19).contains(&length) && prefix(2) == 62;
    let maestro = (12..=19).contains(&length)
        && matches!(
            prefix(4),
            5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763
        );
    visa || mastercard || amex || discover || jcb || diners || unionpay || maestro
}

/// IBAN lengths per country (ISO 13616 registry, the common ones).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AT", 20),
    ("BE", 16),
    ("BG", 22),
    ("CH", 21),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GI", 23),
    ("GR", 27),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IS", 26),
    ("IT", 27),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MT", 31),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("SA", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TR", 26),
    ("VA", 22),
];

/// An IBAN: the country's length and the ISO 7064 mod-97 check.
pub fn iban(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    let compact = compact.to_ascii_uppercase();
    if compact.len() < 15 || !compact.is_ascii() {
        return false;
    }
    let Some(&(_, length)) = IBAN_LENGTHS
        .iter()
        .find(|(country, _)| compact.starts_with(country))
    else {
        return false;
    };
    if compact.len() != length || !compact[2..4].bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let rearranged = format!("{}{}", &compact[4..], &compact[..4]);
    let mut remainder: u32 = 0;
    for character in rearranged.chars() {
        let value = match character {
            '0'..='9' => character as u32 - '0' as u32,
            'A'..='Z' => character as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

/// A US Social Security number: area not 000, 666 or 900–999, group not
/// 00, serial not 0000, and not a well-known advertising number.
pub fn us_ssn(digits: &[u8]) -> bool {
    if digits.len() != 9 {
        return false;
    }
    let number =
        |range: std::ops::Range<usize>| digits[range].iter().fold(0u32, |acc, &d| acc * 10 + u32::from(d));
    let (area, group, serial) = (number(0..3), number(3..5), number(5..9));
    let all_same = digits.iter().all(|&digit| digit == digits[0]);
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !all_same
        && !matches!(number(0..9), 78_051_120 | 219_099_999 | 123_456_789)
}

/// A US Individual Taxpayer Identification Number: 9XX-(50–65, 70–88,
/// 90–92, 94–99)-XXXX.
pub fn us_itin(digits: &[u8]) -> bool {
    if digits.len() != 9 || digits[0] != 9 {
        return false;
    }
    let group = u32::from(digits[3]) * 10 + u32::from(digits[4]);
    matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

/// A US Employer Identification Number: a prefix the IRS assigns.
pub fn us_ein(digits: &[u8]) -> bool {
    if digits.len() != 9 {
        return false;
    }
    let prefix = u32::from(digits[0]) * 10 + u32::from(digits[1]);
    !matches!(
        prefix,
        0 | 7 | 8 | 9 | 17 | 18 | 19 | 28 | 29 | 49 | 69 | 70 | 78 | 79 | 89 | 96 | 97
    )
}

/// An ABA routing number: a Federal Reserve prefix and the 3-7-1 checksum.
pub fn aba_routing(digits: &[u8]) -> bool {
    if digits.len() != 9 {
        return false;
    }
    let prefix = u32::from(digits[0]) * 10 + u32::from(digits[1]);
    if !matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) {
        return false;
    }
    let weights = [3u32, 7, 1, 3, 7, 1, 3, 7, 1];
    let sum: u32 = digits.iter().zip(weights).map(|(&d, w)| u32::from(d) * w).sum();
    sum.is_multiple_of(10) && sum > 0
}

/// A French NIR (numéro de sécurité sociale): sex 1/2 (3, 7, 8 for
/// provisional), year, month 01–12 or 20–42/50–99 (unknown), department
/// (2A/2B for Corsica), commune, order, and the key 97 − (number mod 97).
pub fn fr_nir(text: &str) -> bool {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '.' && *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    if compact.len() != 15 || !compact.is_ascii() {
        return false;
    }
    let (body, key) = compact.split_at(13);
    let Ok(key) = key.parse::<u64>() else { return false };
    // Corsica: 2A counts as 19, 2B as 18, in the number the key is over.
    let department = &body[5..7];
    let numeric = match department {
        "2A" => format!("{}19{}", &body[..5], &body[7..]),
        "2B" => format!("{}18{}", &body[..5], &body[7..]),
        _ => body.to_owned(),
    };
    let Ok(number) = numeric.parse::<u64>() else {
        return false;
    };
    let sex = body.as_bytes()[0];
    let month: u32 = body[3..5].parse().unwrap_or(0);
    matches!(sex, b'1' | b'2' | b'3' | b'7' | b'8')
        && (matches!(month, 1..=12 | 20..=42 | 50..=99))
        && (1..=97).contains(&key)
        && 97 - number % 97 == key
}

/// A SIREN (9 digits, Luhn).
pub fn fr_siren(digits: &[u8]) -> bool {
    digits.len() == 9 && luhn(digits) && digits.iter().any(|&digit| digit != 0)
}

/// A SIRET (14 digits, Luhn; La Poste's establishments, SIREN 356000000,
/// have a digit sum that is a multiple of 5 instead).
pub fn fr_siret(digits: &[u8]) -> bool {
    if digits.len() != 14 || digits.iter().all(|&digit| digit == 0) {
        return false;
    }
    let la_poste = digits[..9] == [3, 5, 6, 0, 0, 0, 0, 0, 0];
    if la_poste {
        let sum: u32 = digits.iter().map(|&digit| u32::from(digit)).sum();
        return sum.is_multiple_of(5);
    }
    luhn(digits)
}

/// A North American (NANP) number: area code and exchange start 2–9 and
/// are not N11 service codes; 555-01XX is reserved for fiction.
pub fn nanp(digits: &[u8]) -> bool {
    let digits = match digits.len() {
        10 => digits,
        11 if digits[0] == 1 => &digits[1..],
        _ => return false,
    };
    let n11 = |at: usize| digits[at + 1] == 1 && digits[at + 2] == 1;
    let fiction = digits[3..6] == [5, 5, 5] && digits[6] == 0 && digits[7] == 1;
    digits[0] >= 2 && digits[3] >= 2 && !n11(0) && !n11(3) && !fiction
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Vec<u8> {
        digits(text).unwrap()
    }

    #[test]
    fn luhn_and_cards() {
        // The brands' published test numbers.
        for card in [
            "4111 1111 1111 1111",
            "5555 5555 5555 4444",
            "2223 0031 2200 3222",
            "3782 822463 10005",
            "6011 1111 1111 1117",
            "3530 1113 3330 0000",
            "3056 9309 0259 04",
        ] {
            assert!(payment_card(&d(card)), "{card}");
        }
        assert!(!payment_card(&d("4111 1111 1111 1112")), "a wrong check digit");
        assert!(!payment_card(&d("1234 5678 9012 3452")), "no brand starts with 1");
        assert!(!payment_card(&d("4111 1111")), "too short");
    }

    #[test]
    fn ibans() {
        assert!(iban("FR14 2004 1010 0505 0001 3M02 606"));
        assert!(iban("DE89 3704 0044 0532 0130 00"));
        assert!(iban("GB82WEST12345698765432"));
        assert!(!iban("FR14 2004 1010 0505 0001 3M02 607"), "check digits");
        assert!(!iban("DE89 3704 0044 0532 0130"), "length of the country");
        assert!(!iban("XX89 3704 0044 0532 0130 00"), "no such country");
    }

    #[test]
    fn us_numbers() {
        assert!(us_ssn(&d("536-22-1234")));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "536-00-1234",
            "536-22-0000",
            "078-05-1120",
            "111-11-1111",
        ] {
            assert!(!us_ssn(&d(bad)), "{bad}");
        }
        assert!(us_itin(&d("912-70-1234")));
        assert!(!us_itin(&d("912-69-1234")));
        assert!(us_ein(&d("12-3456789")));
        assert!(!us_ein(&d("07-3456789")));
        // Real routing numbers' shape: 011000015 (Federal Reserve Boston).
        assert!(aba_routing(&d("011000015")));
        assert!(!aba_routing(&d("011000016")));
        assert!(nanp(&d("202 456-1111")));
        assert!(!nanp(&d("202 555-0123")), "fiction");
        assert!(!nanp(&d("911 456-1111")), "N11");
        assert!(!nanp(&d("102 456-1111")));
    }

    #[test]
    fn french_numbers() {
        // 1 84 12 76 451 089 + key 97 - (1841276451089 mod 97).
        let body = 1_841_276_451_089u64;
        let nir = format!("{body}{:02}", 97 - body % 97);
        assert!(fr_nir(&nir), "{nir}");
        let mut wrong = nir.clone();
        wrong.replace_range(14..15, if nir.ends_with('0') { "1" } else { "0" });
        assert!(!fr_nir(&wrong));
        // Corsica: 2A counts as 19.
        let corsica_number = 2_690_519_123_456u64;
        let key = 97 - corsica_number % 97;
        assert!(fr_nir(&format!("269052A123456{key:02}")));
        assert!(!fr_nir(&format!("269052A123456{:02}", key % 97 + 1)));
        assert!(fr_siren(&d("732 829 320")));
        assert!(!fr_siren(&d("732 829 321")));
        assert!(fr_siret(&d("732 829 320 00074")));
        assert!(!fr_siret(&d("732 829 320 00075")));
        // La Poste: digit sum a multiple of 5.
        assert!(fr_siret(&d("356 000 000 00051")));
        assert!(!fr_siret(&d("356 000 000 00052")));
    }
}

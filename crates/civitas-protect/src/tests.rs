use super::*;

/// The (type, text) of every finding in `text`.
fn found(text: &str) -> Vec<(&'static str, String)> {
    analyze(text, &Options::default())
        .into_iter()
        .map(|finding| {
            (
                finding.entity.as_str(),
                text[finding.start..finding.end].to_owned(),
            )
        })
        .collect()
}

fn finds(text: &str, entity: Entity, value: &str) {
    let all = found(text);
    assert!(
        all.iter()
            .any(|(kind, text)| *kind == entity.as_str() && text == value),
        "{entity:?} `{value}` not found in `{text}`: {all:?}"
    );
}

#[test]
fn identifiers_with_check_digits_are_found_and_look_alikes_are_not() {
    finds(
        "Card: 4111 1111 1111 1111, exp 12/29.",
        Entity::CreditCard,
        "4111 1111 1111 1111",
    );
    finds(
        "Virement sur FR14 2004 1010 0505 0001 3M02 606 demain.",
        Entity::IbanCode,
        "FR14 2004 1010 0505 0001 3M02 606",
    );
    finds("Her SSN is 536-22-1234.", Entity::UsSsn, "536-22-1234");
    finds("ITIN 912-70-1234 on file", Entity::UsItin, "912-70-1234");
    finds(
        "Routing number 011000015, checking",
        Entity::UsBankRouting,
        "011000015",
    );
    finds(
        "Employer identification number (EIN): 12-3456789",
        Entity::UsEin,
        "12-3456789",
    );
    finds(
        "Call me at (202) 456-1111 tomorrow",
        Entity::PhoneNumber,
        "(202) 456-1111",
    );
    finds(
        "Appelez le 06 12 34 56 78 ou le +33 1 42 92 81 00",
        Entity::PhoneNumber,
        "06 12 34 56 78",
    );
    finds(
        "Appelez le 06 12 34 56 78 ou le +33 1 42 92 81 00",
        Entity::PhoneNumber,
        "+33 1 42 92 81 00",
    );
    finds("SIRET : 732 829 320 00074", Entity::FrSiret, "732 829 320 00074");
    finds(
        "La société (SIREN 732 829 320) a répondu",
        Entity::FrSiren,
        "732 829 320",
    );
    let body = 1_841_276_451_089u64;
    let nir = format!("{body}{:02}", 97 - body % 97);
    finds(
        &format!("Numéro de sécurité sociale : {nir}"),
        Entity::FrNir,
        &nir,
    );
    // The same digits with a wrong key are not a NIR.
    let wrong = format!("{body}{:02}", (97 - body % 97) % 97 + 1);
    assert!(found(&format!("Numéro : {wrong}"))
        .iter()
        .all(|(kind, _)| *kind != "FR_NIR"));
    // Look-alikes: a wrong card check digit, an SSN with area 666, a
    // fictional 555-01XX number.
    assert_eq!(found("Order 4111 1111 1111 1112 shipped"), vec![]);
    assert_eq!(found("Ref 666-12-3456 closed"), vec![]);
    assert_eq!(found("Call (202) 555-0123"), vec![]);
}

#[test]
fn weak_patterns_need_their_context() {
    // Nine digits alone are nothing; next to "routing" or "SSN" they are.
    assert_eq!(found("Invoice 011000015 paid"), vec![]);
    finds("SSN 536221234", Entity::UsSsn, "536221234");
    assert_eq!(found("Reference 12345-6789 attached"), vec![]);
    finds(
        "Mailing address: 1600 Pennsylvania Ave, ZIP 20500-0003",
        Entity::UsZipCode,
        "20500-0003",
    );
    assert_eq!(found("Meeting on 12/03/1984 in room 4"), vec![]);
    finds("Date of birth: 12/03/1984", Entity::DateOfBirth, "12/03/1984");
    finds("née le 3 mars 1984 à Lyon", Entity::DateOfBirth, "3 mars 1984");
    finds(
        "Account number 12345678901 at the credit union",
        Entity::UsBankAccount,
        "12345678901",
    );
    finds("Passport number 123456789", Entity::UsPassport, "123456789");
    finds("Numéro de passeport : 18AB12345", Entity::FrPassport, "18AB12345");
    finds(
        "Patient MRN 00123456 admitted",
        Entity::MedicalRecordNumber,
        "00123456",
    );
    finds("Driver license D1234567", Entity::UsDriverLicense, "D1234567");
    // SPI: the last three digits are the first ten modulo 511.
    let first = 1_234_567_890u64;
    let spi = format!("{first}{:03}", first % 511);
    finds(&format!("Numéro fiscal : {spi}"), Entity::FrTaxNumber, &spi);
    assert_eq!(
        found(&format!("Numéro fiscal : {first}{:03}", (first + 1) % 511)),
        vec![]
    );
}

#[test]
fn network_identifiers() {
    finds(
        "Server IP 192.168.10.24 is down",
        Entity::IpAddress,
        "192.168.10.24",
    );
    finds(
        "from 2001:db8:85a3::8a2e:370:7334 at noon",
        Entity::IpAddress,
        "2001:db8:85a3::8a2e:370:7334",
    );
    finds(
        "MAC 00:1A:2B:3C:4D:5E registered",
        Entity::MacAddress,
        "00:1A:2B:3C:4D:5E",
    );
    finds(
        "write to jeanne.martin@interieur.gouv.fr today",
        Entity::EmailAddress,
        "jeanne.martin@interieur.gouv.fr",
    );
    finds(
        "DATABASE_URL=postgres://app:Sup3rS3cret@db.internal:5432/cases",
        Entity::UrlCredentials,
        "postgres://app:Sup3rS3cret@db.internal:5432",
    );
    // Version numbers and times are not addresses.
    assert_eq!(found("Version 1.2.3 released at 10:30:00"), vec![]);
    assert_eq!(found("Version 999.1.1.1"), vec![]);
}

#[test]
fn secrets() {
    finds(
        "key AKIAIOSFODNN7EXAMPLE leaked",
        Entity::Secret,
        "AKIAIOSFODNN7EXAMPLE",
    );
    finds(
        "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 here",
        Entity::Secret,
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    );
    finds(
        "use sk-proj-abcdefghijklmnopqrstuvwx",
        Entity::Secret,
        "sk-proj-abcdefghijklmnopqrstuvwx",
    );
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    finds(&format!("Authorization: Bearer {jwt}"), Entity::Secret, jwt);
    finds(
        "Server=db;User Id=app;Password=Hunter2!x;",
        Entity::Secret,
        "Password=Hunter2!x",
    );
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
    finds(&format!("here:\n{pem}\nthanks"), Entity::Secret, pem);
    // A JWT-looking string whose header is not JSON is not a token.
    assert_eq!(found("eyJub3Rqc29u.eyJhIjoxfQ.abc"), vec![]);
}

#[test]
fn classification_markings() {
    finds(
        "CUI//SP-PRVCY\nCase notes follow",
        Entity::ClassificationMarking,
        "CUI//SP-PRVCY",
    );
    finds("SECRET//NOFORN", Entity::ClassificationMarking, "SECRET//NOFORN");
    finds(
        "Document DIFFUSION RESTREINTE",
        Entity::ClassificationMarking,
        "DIFFUSION RESTREINTE",
    );
    finds(
        "OFFICIAL-SENSITIVE: handle with care",
        Entity::ClassificationMarking,
        "OFFICIAL-SENSITIVE",
    );
    // Ordinary words are not markings.
    assert_eq!(found("The secret to good service is listening."), vec![]);
    assert_eq!(found("Ce document est confidentiel."), vec![]);
}

#[test]
fn plain_prose_has_nothing() {
    let prose = "The committee met on Tuesday to review 12 applications for the housing \
                 programme; 3 were approved, and the next meeting is in room 204 at 2 pm. \
                 Le comité s'est réuni mardi pour examiner 12 demandes ; la prochaine séance \
                 aura lieu salle 204 à 14 h. Budget line 2026-118 was raised by 4.5 %.";
    assert_eq!(found(prose), vec![]);
}

#[test]
fn findings_never_overlap_and_keep_the_stronger_one() {
    // A SIRET contains a SIREN; an e-mail inside a URL with credentials.
    let text = "SIRET 732 829 320 00074, société SIREN 732 829 320";
    let findings = analyze(text, &Options::default());
    for pair in findings.windows(2) {
        assert!(pair[0].end <= pair[1].start, "{findings:?}");
    }
    assert_eq!(findings[0].entity, Entity::FrSiret);
    assert_eq!(findings[1].entity, Entity::FrSiren);
}

#[test]
fn options_select_types_language_and_threshold() {
    let text = "Call (202) 456-1111 or write to a@b.example.gov";
    let only_email = Options {
        entities: vec![Entity::EmailAddress],
        ..Options::default()
    };
    let findings = analyze(text, &only_email);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].entity, Entity::EmailAddress);
    let strict = Options {
        threshold: 0.9,
        ..Options::default()
    };
    assert!(analyze(text, &strict).iter().all(|finding| finding.score >= 0.9));
    // A recognizer of English is not run on French.
    let french = Options {
        language: Language::Fr,
        ..Options::default()
    };
    assert!(analyze("Passport number 123456789", &french).is_empty());
}

#[test]
fn spans_are_byte_offsets_on_character_boundaries() {
    let text = "Élodie Dupré, née le 3 mars 1984 — écrire à élodie.dupre@exemple.fr";
    for finding in analyze(text, &Options::default()) {
        assert!(text.is_char_boundary(finding.start) && text.is_char_boundary(finding.end));
        assert!(finding.start < finding.end && finding.end <= text.len());
    }
    finds(text, Entity::EmailAddress, "élodie.dupre@exemple.fr");
}

#[test]
fn any_input_gives_valid_spans() {
    // A crude, deterministic fuzz over tricky characters until cargo fuzz
    // runs: no panic, spans in range and on boundaries, no overlaps.
    let alphabet: Vec<char> = "0123456789 -./:@+()ÉéA zZ\n\t€😀_=sk-eyJ".chars().collect();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..2000 {
        let length = (seed % 60) as usize;
        let text: String = (0..length)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                alphabet[(seed % alphabet.len() as u64) as usize]
            })
            .collect();
        let findings = analyze(&text, &Options::default());
        for finding in &findings {
            assert!(
                finding.start < finding.end && finding.end <= text.len(),
                "{text:?}"
            );
            assert!(text.is_char_boundary(finding.start) && text.is_char_boundary(finding.end));
        }
        for pair in findings.windows(2) {
            assert!(pair[0].end <= pair[1].start, "{text:?}: {findings:?}");
        }
    }
}

#[test]
fn the_language_is_told_apart() {
    assert_eq!(
        Language::detect("The applicant asks for a review of the decision."),
        Language::En
    );
    assert_eq!(
        Language::detect("Le demandeur conteste la décision et les motifs du refus."),
        Language::Fr
    );
    assert_eq!(Language::detect("4111 1111 1111 1111"), Language::Any);
}

#[test]
fn names_after_a_title_a_greeting_or_from_the_lists() {
    finds("Meeting with Mrs. Okonkwo on Monday", Entity::Person, "Okonkwo");
    finds(
        "M. Jean-Pierre Dupré a signé",
        Entity::Person,
        "Jean-Pierre Dupré",
    );
    finds("Bonjour Camille,", Entity::Person, "Camille");
    finds(
        "The file of Jeanne Martin was reopened",
        Entity::Person,
        "Jeanne Martin",
    );
    finds("Demandeur : Jean DUPONT", Entity::Person, "Jean DUPONT");
    // A known given name before an unknown word needs a context word.
    assert_eq!(found("Grace Period ends soon"), vec![]);
    finds(
        "Applicant name: Emily Zabriskie",
        Entity::Person,
        "Emily Zabriskie",
    );
    // Titles and greetings before what is not a name.
    assert_eq!(found("Dear Sir, Bonjour Madame, Hi All"), vec![]);
}

#[test]
fn street_addresses() {
    finds(
        "Send it to 1600 Pennsylvania Avenue, Washington",
        Entity::StreetAddress,
        "1600 Pennsylvania Avenue",
    );
    finds(
        "She lives at 42 W Elm St, Apt 5B since May",
        Entity::StreetAddress,
        "42 W Elm St, Apt 5B",
    );
    finds(
        "Domicile : 12 bis rue de la Paix, 75002 Paris.",
        Entity::StreetAddress,
        "12 bis rue de la Paix, 75002 Paris",
    );
    finds(
        "au 8, avenue Jean Jaurès à Lyon",
        Entity::StreetAddress,
        "8, avenue Jean Jaurès",
    );
}

/// Recall and precision over a labelled corpus (overlap of the same type
/// counts), and whether its texts without labels stay clean.
fn score_corpus(corpus: &str) -> (usize, f64, f64, usize) {
    let (mut labelled, mut found_labels, mut findings_total, mut findings_right, mut dirty) = (0, 0, 0, 0, 0);
    for line in corpus.lines().filter(|line| !line.trim().is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = record["text"].as_str().unwrap();
        let language = Language::parse(record["language"].as_str().unwrap()).unwrap();
        let findings = analyze(
            text,
            &Options {
                language,
                ..Options::default()
            },
        );
        let chars: Vec<usize> = text
            .char_indices()
            .map(|(at, _)| at)
            .chain([text.len()])
            .collect();
        let labels: Vec<(usize, usize, &str)> = record["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|label| {
                (
                    chars[label["start"].as_u64().unwrap() as usize],
                    chars[label["end"].as_u64().unwrap() as usize],
                    label["type"].as_str().unwrap(),
                )
            })
            .collect();
        if labels.is_empty() && !findings.is_empty() {
            dirty += 1;
        }
        let overlaps = |finding: &crate::Finding, (start, end, kind): &(usize, usize, &str)| {
            finding.entity.as_str() == *kind && finding.start < *end && *start < finding.end
        };
        for label in &labels {
            labelled += 1;
            if findings.iter().any(|finding| overlaps(finding, label)) {
                found_labels += 1;
            }
        }
        for finding in &findings {
            findings_total += 1;
            if labels.iter().any(|label| overlaps(finding, label)) {
                findings_right += 1;
            }
        }
    }
    let recall = found_labels as f64 / labelled as f64;
    let precision = findings_right as f64 / findings_total.max(1) as f64;
    (labelled, recall, precision, dirty)
}

#[test]
fn a_harder_corpus_written_apart_from_the_engine_is_found_too() {
    // tests/protect/hard_corpus.jsonl, written by
    // tests/protect/make_hard_corpus.py without looking at the engine:
    // other names, layouts, CSV rows, chat lines and traps.
    let (labelled, recall, precision, _) =
        score_corpus(include_str!("../../../tests/protect/hard_corpus.jsonl"));
    assert!(labelled >= 2_000, "the corpus holds {labelled} labels");
    assert!(recall >= 0.95, "recall {recall:.3} on the harder corpus");
    assert!(precision >= 0.97, "precision {precision:.3} on the harder corpus");
}

#[test]
fn the_labelled_corpus_is_found_and_its_clean_texts_stay_clean() {
    // tests/protect/corpus.jsonl, written by tests/protect/make_corpus.py.
    let (labelled, recall, precision, dirty) =
        score_corpus(include_str!("../../../tests/protect/corpus.jsonl"));
    assert!(labelled >= 500, "the corpus holds {labelled} labels");
    assert!(recall >= 0.97, "recall {recall:.3} on the corpus");
    assert!(precision >= 0.99, "precision {precision:.3} on the corpus");
    assert_eq!(dirty, 0, "false positives in texts without personal data");
}

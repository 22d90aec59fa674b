//! JSON-schema constrained output: schemas become GBNF grammars that the
//! sampler enforces token by token, so the output always parses.

/// Converts a JSON schema (as text) into a GBNF grammar with root `root`.
pub fn json_schema_to_grammar(schema: &str) -> Result<String, String> {
    llama_cpp_2::json_schema_to_grammar(schema).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_schema_gives_a_grammar() {
        let grammar = json_schema_to_grammar(
            r#"{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city","unit"]}"#,
        )
        .unwrap();
        assert!(grammar.contains("root ::="), "{grammar}");
        assert!(grammar.contains("city"), "{grammar}");
    }

    #[test]
    fn malformed_schema_is_an_error() {
        assert!(json_schema_to_grammar("{not json").is_err());
    }
}

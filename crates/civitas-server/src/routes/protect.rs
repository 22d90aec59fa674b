//! `POST /v1/protect/analyze` and `POST /v1/protect/anonymize`: the
//! detection engine (`civitas-protect`) as a service, in the shapes of
//! Presidio's analyzer and anonymizer so that their clients can switch.
//! Offsets are in characters (Unicode scalar values), as Presidio's are.
//! Nothing sent here is stored or logged.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use civitas_protect::{Entity, Finding, Language, Operator, Options};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    pub text: String,
    /// `en`, `fr` or `auto` (default: told from the text).
    #[serde(default)]
    pub language: Option<String>,
    /// Only these types, e.g. `["US_SSN", "FR_NIR"]` (default: all).
    #[serde(default)]
    pub entities: Option<Vec<String>>,
    /// 0 to 1 (default 0.5).
    #[serde(default)]
    pub score_threshold: Option<f32>,
}

/// One finding; `start` and `end` count characters.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnalyzerResult {
    pub entity_type: String,
    pub start: usize,
    pub end: usize,
    pub score: f32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub recognizer: String,
}

/// Byte offsets ↔ character offsets of one text.
struct Offsets {
    /// The byte offset of each character, then the text's length.
    boundaries: Vec<usize>,
}

impl Offsets {
    fn of(text: &str) -> Offsets {
        let mut boundaries: Vec<usize> = text.char_indices().map(|(at, _)| at).collect();
        boundaries.push(text.len());
        Offsets { boundaries }
    }

    fn to_chars(&self, byte: usize) -> usize {
        self.boundaries.partition_point(|&at| at < byte)
    }

    fn to_bytes(&self, char: usize) -> Option<usize> {
        self.boundaries.get(char).copied()
    }
}

fn options(
    text: &str,
    language: Option<&str>,
    entities: Option<&[String]>,
    threshold: Option<f32>,
) -> Result<Options, ApiError> {
    let language = match language {
        None => Language::detect(text),
        Some(name) => match Language::parse(name) {
            Some(Language::Any) => Language::detect(text),
            Some(language) => language,
            None => return Err(ApiError::invalid("language", "language is `en`, `fr` or `auto`")),
        },
    };
    let entities = entities
        .unwrap_or_default()
        .iter()
        .map(|name| {
            Entity::parse(name).ok_or_else(|| {
                ApiError::invalid(
                    "entities",
                    format!("unknown entity type `{name}`; the types are listed in the API documentation"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let threshold = threshold.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(ApiError::invalid(
            "score_threshold",
            "score_threshold is from 0 to 1",
        ));
    }
    Ok(Options {
        language,
        entities,
        threshold,
    })
}

fn results(text: &str, findings: &[Finding]) -> Vec<AnalyzerResult> {
    let offsets = Offsets::of(text);
    findings
        .iter()
        .map(|finding| AnalyzerResult {
            entity_type: finding.entity.as_str().to_owned(),
            start: offsets.to_chars(finding.start),
            end: offsets.to_chars(finding.end),
            score: finding.score,
            recognizer: finding.recognizer.to_owned(),
        })
        .collect()
}

#[utoipa::path(post, path = "/v1/protect/analyze", operation_id = "analyzeText", tag = "protect",
    summary = "Find personal data, secrets and classification markings in a text (Presidio analyzer shape; offsets in characters)",
    request_body = AnalyzeRequest,
    responses((status = 200, body = Vec<AnalyzerResult>),
        (status = 400, description = "invalid_parameter: language, entities or score_threshold", body = civitas_types::ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = civitas_types::ErrorBody),
        (status = 413, description = "payload_too_large", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn analyze(ApiJson(body): ApiJson<AnalyzeRequest>) -> Result<Json<Vec<AnalyzerResult>>, ApiError> {
    let options = options(
        &body.text,
        body.language.as_deref(),
        body.entities.as_deref(),
        body.score_threshold,
    )?;
    let findings = civitas_protect::analyze(&body.text, &options);
    Ok(Json(results(&body.text, &findings)))
}

/// How one type is replaced.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// `replace` (a typed placeholder, or `new_value`), `redact`, `mask`
    /// or `hash` (HMAC-SHA256 under this installation's key).
    #[serde(rename = "type")]
    pub kind: String,
    /// `replace`: the text put instead (default `<ENTITY_TYPE>`).
    #[serde(default)]
    pub new_value: Option<String>,
    /// `mask`: the character (default `*`).
    #[serde(default)]
    pub masking_char: Option<String>,
    /// `mask`: characters left visible at the end (default 0).
    #[serde(default)]
    pub keep_last: Option<usize>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnonymizeRequest {
    pub text: String,
    /// Findings to replace (as `/v1/protect/analyze` returns them);
    /// absent: the text is analysed first.
    #[serde(default)]
    pub analyzer_results: Option<Vec<AnalyzerResult>>,
    /// By entity type, and `DEFAULT` for the rest (default: `replace`).
    #[serde(default)]
    pub operators: HashMap<String, OperatorConfig>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub entities: Option<Vec<String>>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
}

/// One replacement, at its place in the new text (characters).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnonymizedItem {
    pub entity_type: String,
    pub start: usize,
    pub end: usize,
    pub operator: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnonymizeResponse {
    pub text: String,
    pub items: Vec<AnonymizedItem>,
}

/// The key of `hash`: derived from the installation's audit key, so a
/// value hashes the same way on every replica and nowhere else.
fn hash_key(state: &AppState) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::new()
        .chain_update(b"civitas protect hash v1\n")
        .chain_update(state.auditor.key.to_text().as_bytes())
        .finalize()
        .to_vec()
}

fn operator_of(
    state: &AppState,
    name: &str,
    config: &OperatorConfig,
) -> Result<(Operator, Option<String>), ApiError> {
    let param = format!("operators.{name}");
    Ok(match config.kind.as_str() {
        "replace" => (Operator::Placeholder, config.new_value.clone()),
        "redact" => (Operator::Redact, None),
        "mask" => {
            let with = match config.masking_char.as_deref() {
                None => '*',
                Some(text) => {
                    let mut characters = text.chars();
                    match (characters.next(), characters.next()) {
                        (Some(character), None) => character,
                        _ => return Err(ApiError::invalid(&param, "masking_char is one character")),
                    }
                }
            };
            (
                Operator::Mask {
                    with,
                    keep_last: config.keep_last.unwrap_or(0),
                },
                None,
            )
        }
        "hash" => (Operator::Hash { key: hash_key(state) }, None),
        other => {
            return Err(ApiError::invalid(
                &param,
                format!("unknown operator `{other}`; use replace, redact, mask or hash"),
            ))
        }
    })
}

#[utoipa::path(post, path = "/v1/protect/anonymize", operation_id = "anonymizeText", tag = "protect",
    summary = "Replace personal data, secrets and markings in a text: placeholder, redact, mask or keyed hash (Presidio anonymizer shape)",
    request_body = AnonymizeRequest,
    responses((status = 200, body = AnonymizeResponse),
        (status = 400, description = "invalid_parameter: an operator, an entity type, or a finding outside the text", body = civitas_types::ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = civitas_types::ErrorBody),
        (status = 413, description = "payload_too_large", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn anonymize(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AnonymizeRequest>,
) -> Result<Json<AnonymizeResponse>, ApiError> {
    let text = &body.text;
    let offsets = Offsets::of(text);
    let findings = match &body.analyzer_results {
        None => {
            let options = options(
                text,
                body.language.as_deref(),
                body.entities.as_deref(),
                body.score_threshold,
            )?;
            civitas_protect::analyze(text, &options)
        }
        Some(given) => {
            let mut findings = Vec::with_capacity(given.len());
            for (index, result) in given.iter().enumerate() {
                let param = format!("analyzer_results[{index}]");
                let entity = Entity::parse(&result.entity_type).ok_or_else(|| {
                    ApiError::invalid(&param, format!("unknown entity type `{}`", result.entity_type))
                })?;
                let (Some(start), Some(end)) = (offsets.to_bytes(result.start), offsets.to_bytes(result.end))
                else {
                    return Err(ApiError::invalid(
                        &param,
                        "start and end must lie within the text",
                    ));
                };
                if start >= end {
                    return Err(ApiError::invalid(&param, "start must be before end"));
                }
                findings.push(Finding {
                    entity,
                    start,
                    end,
                    score: result.score,
                    recognizer: "given",
                });
            }
            findings.sort_by_key(|finding| (finding.start, finding.end));
            if let Some(pair) = findings.windows(2).find(|pair| pair[0].end > pair[1].start) {
                return Err(ApiError::invalid(
                    "analyzer_results",
                    format!(
                        "two results overlap (characters {} to {})",
                        offsets.to_chars(pair[1].start),
                        offsets.to_chars(pair[0].end)
                    ),
                ));
            }
            findings
        }
    };
    let mut operators = HashMap::new();
    for (name, config) in &body.operators {
        if name != "DEFAULT" && Entity::parse(name).is_none() {
            return Err(ApiError::invalid(
                &format!("operators.{name}"),
                format!("unknown entity type `{name}`"),
            ));
        }
        operators.insert(name.clone(), operator_of(&state, name, config)?);
    }
    let chosen = |entity: Entity| {
        operators
            .get(entity.as_str())
            .or_else(|| operators.get("DEFAULT"))
            .cloned()
            .unwrap_or((Operator::Placeholder, None))
    };
    // A custom replacement text is put in after the engine's placeholder.
    let (placeholder_text, replaced) = civitas_protect::anonymize(text, &findings, |entity| chosen(entity).0);
    let mut out = String::with_capacity(placeholder_text.len());
    let mut items = Vec::with_capacity(replaced.len());
    let (mut at, mut characters) = (0, 0);
    let mut push = |out: &mut String, piece: &str| {
        out.push_str(piece);
        characters += piece.chars().count();
        characters
    };
    for item in &replaced {
        let start = push(&mut out, &placeholder_text[at..item.start]);
        let end = match chosen(item.entity).1 {
            Some(value) => push(&mut out, &value),
            None => push(&mut out, &placeholder_text[item.start..item.end]),
        };
        items.push(AnonymizedItem {
            entity_type: item.entity.as_str().to_owned(),
            start,
            end,
            operator: item.operator.to_owned(),
        });
        at = item.end;
    }
    out.push_str(&placeholder_text[at..]);
    Ok(Json(AnonymizeResponse { text: out, items }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_convert_both_ways_on_multibyte_text() {
        let offsets = Offsets::of("né à 536");
        assert_eq!(offsets.to_chars(0), 0);
        assert_eq!(offsets.to_chars(3), 2);
        assert_eq!(offsets.to_bytes(2), Some(3));
        assert_eq!(offsets.to_bytes(8), Some(10));
        assert_eq!(offsets.to_bytes(9), None);
    }
}

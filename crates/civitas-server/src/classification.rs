//! The classification decision made before every model call: a
//! conversation (or a prompt whose markings raise it) goes only to a model
//! accredited for its level — the local model for any level, a remote
//! provider up to its `accreditation` (the lowest level when unset). A
//! marking no level lists is above every level and goes to no model.
//!
//! A model call needs a [`Cleared`], which only [`clear`] makes: there is
//! no way to reach a model without this decision. Refusals are recorded
//! in the audit log (`policy.denied`, the levels and the markings' kinds,
//! never the text).

use civitas_audit::{Action, Outcome};
use civitas_identity::Principal;
use civitas_protect::{analyze, Entity, Options};
use civitas_types::openai::ChatCompletionRequest;
use civitas_types::ErrorCode;
use serde_json::json;

use crate::audit::{entry, Origin};
use crate::error::ApiError;
use crate::providers::RemoteProvider;
use crate::state::AppState;

/// Proof that a request was cleared for its model; made by [`clear`] only.
#[derive(Debug)]
pub struct Cleared {
    /// The level the request was cleared at (its own, or a marking's).
    pub level: String,
    /// Personal data is replaced by placeholders before it leaves.
    pub pseudonymize: bool,
    /// `local`, or the provider's name.
    pub model_host: String,
    /// The provider's jurisdiction (`local` for the embedded model).
    pub jurisdiction: String,
}

impl Cleared {
    /// The decision as recorded with the model call and the answer's
    /// provenance; `replaced` counts the values pseudonymized per type.
    pub fn decision(
        &self,
        replaced: Option<&std::collections::BTreeMap<String, usize>>,
    ) -> serde_json::Value {
        json!({
            "decision": if self.pseudonymize { "allow_pseudonymized" } else { "allow" },
            "level": self.level,
            "pseudonymized": self.pseudonymize,
            "model": self.model_host,
            "jurisdiction": self.jurisdiction,
            "replaced": replaced,
        })
    }
}

/// A decision carried by a response to whoever keeps the answer (the
/// workspace stores it in the answer's provenance).
#[derive(Debug, Clone)]
pub struct Decision(pub serde_json::Value);

/// The index of the level a person is cleared for: their own clearance,
/// else `data_protection.default_clearance`, else the highest level.
pub fn clearance_rank(state: &AppState, principal: &Principal) -> usize {
    let levels = &state.config.classifications;
    let top = levels.len().saturating_sub(1);
    let rank = |id: &str| levels.iter().position(|known| known.id == id);
    principal
        .person
        .clearance
        .as_deref()
        .and_then(rank)
        .or_else(|| rank(&state.config.data_protection.default_clearance))
        .unwrap_or(top)
}

/// Whether `principal` may work at `level` (a level id).
pub fn cleared_for(state: &AppState, principal: &Principal, level: &str) -> bool {
    let levels = &state.config.classifications;
    let rank = levels.iter().position(|known| known.id == level).unwrap_or(0);
    rank <= clearance_rank(state, principal)
}

/// What a level is called, for a person.
fn label(state: &AppState, id: &str) -> String {
    state
        .config
        .classifications
        .iter()
        .find(|level| level.id == id)
        .and_then(|level| level.labels.get("en").cloned())
        .unwrap_or_else(|| id.to_owned())
}

/// Each marking found in `text` (in capitals) with the index of the
/// highest configured level that lists it (`None`: a marking no level
/// lists, above them all).
fn markings_in(state: &AppState, text: &str) -> Vec<(String, Option<usize>)> {
    let only_markings = Options {
        entities: vec![Entity::ClassificationMarking],
        ..Options::default()
    };
    let levels = &state.config.classifications;
    analyze(text, &only_markings)
        .into_iter()
        .map(|finding| {
            let marking = text[finding.start..finding.end].to_uppercase();
            let at = levels.iter().enumerate().rev().find_map(|(index, level)| {
                level
                    .markings
                    .iter()
                    .any(|listed| marking.starts_with(&listed.to_uppercase()))
                    .then_some(index)
            });
            (marking, at)
        })
        .collect()
}

/// The highest level the markings found in `text` put it at, among the
/// configured ones (markings no level lists are refused at the model
/// call, not here).
pub fn marked_level(state: &AppState, text: &str) -> Option<usize> {
    markings_in(state, text)
        .into_iter()
        .filter_map(|(_, at)| at)
        .max()
}

/// `level`, or the higher one the markings in `text` call for (the id).
pub fn raised(state: &AppState, level: &str, text: &str) -> String {
    let levels = &state.config.classifications;
    let current = levels.iter().position(|known| known.id == level);
    match (current, marked_level(state, text)) {
        (Some(current), Some(marked)) if marked > current => levels[marked].id.clone(),
        (None, Some(marked)) => levels[marked].id.clone(),
        _ => level.to_owned(),
    }
}

/// What the decision would be, made without recording anything: the
/// pre-send preview shows it, [`clear`] acts on it.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// The level the texts are at (the given one, raised by markings).
    pub level: String,
    /// The markings found, in capitals.
    pub markings: Vec<String>,
    /// A marking no level lists, if any.
    pub beyond: Option<String>,
    /// The highest level the model may receive.
    pub ceiling: String,
    /// The person's clearance.
    pub clearance: String,
    /// Why it would be refused: the code and a sentence for the person.
    pub refusal: Option<(ErrorCode, String)>,
}

/// Assesses `texts` at `level` for `model` (served by `provider`, or the
/// local model when `None`) and `principal`.
pub fn assess<'a>(
    state: &AppState,
    principal: &Principal,
    level: &str,
    texts: impl IntoIterator<Item = &'a str>,
    model: &str,
    provider: Option<&RemoteProvider>,
) -> Assessment {
    let levels = &state.config.classifications;
    let rank = |id: &str| levels.iter().position(|known| known.id == id);
    let id_of = |index: usize| {
        levels
            .get(index)
            .map(|known| known.id.clone())
            .unwrap_or_default()
    };
    let mut effective = rank(level).unwrap_or(0);
    // Markings in the texts raise the level.
    let mut beyond: Option<String> = None;
    let mut markings = Vec::new();
    for text in texts {
        for (marking, at) in markings_in(state, text) {
            match at {
                Some(index) => effective = effective.max(index),
                None => {
                    beyond.get_or_insert_with(|| marking.clone());
                }
            }
            markings.push(marking);
        }
    }
    let ceiling = match provider {
        None => levels.len().saturating_sub(1),
        Some(provider) => rank(&provider.accreditation).unwrap_or(0),
    };
    let clearance = clearance_rank(state, principal);
    let effective_id = levels
        .get(effective)
        .map(|known| known.id.clone())
        .unwrap_or_else(|| level.to_owned());
    let refusal = if let Some(marking) = &beyond {
        Some((
            ErrorCode::ClassificationNotAllowed,
            format!(
                "the text carries the marking {marking}, above every level this installation handles; it goes to no model"
            ),
        ))
    } else if effective > clearance {
        Some((
            ErrorCode::ClearanceInsufficient,
            format!(
                "this conversation is {}; your clearance is {}",
                label(state, &effective_id),
                label(state, &id_of(clearance))
            ),
        ))
    } else if effective > ceiling {
        Some((
            ErrorCode::ClassificationNotAllowed,
            format!(
                "this conversation is {}; the model {model} is accredited up to {}",
                label(state, &effective_id),
                label(state, &id_of(ceiling))
            ),
        ))
    } else {
        None
    };
    Assessment {
        level: effective_id,
        markings,
        beyond,
        ceiling: id_of(ceiling),
        clearance: id_of(clearance),
        refusal,
    }
}

/// Where the messages of a request come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// All from the client (an API request, a temporary chat): every
    /// message counts, answers included (they could carry anything).
    Client,
    /// A stored conversation: the answers are the models' own, and
    /// markings a model wrote do not raise the level.
    Stored,
}

/// The texts of `request` whose markings count.
fn texts_of(request: &ChatCompletionRequest, history: History) -> Vec<String> {
    request
        .messages
        .iter()
        .filter(|message| {
            history == History::Client || message.role != civitas_types::openai::Role::Assistant
        })
        .filter_map(|message| message.content.as_ref().map(|content| content.text()))
        .collect()
}

/// Whether `provider` may receive `request` at `level` (nothing is
/// recorded: [`clear`] records a refusal).
pub fn allows(
    state: &AppState,
    principal: &Principal,
    level: &str,
    request: &ChatCompletionRequest,
    history: History,
    provider: &RemoteProvider,
) -> bool {
    let texts = texts_of(request, history);
    assess(
        state,
        principal,
        level,
        texts.iter().map(String::as_str),
        &request.model,
        Some(provider),
    )
    .refusal
    .is_none()
}

/// Clears `request`, at `level`, for the model that will answer it (a
/// remote `provider`, or the local model when `None`); a refusal is
/// recorded.
pub async fn clear(
    state: &AppState,
    principal: &Principal,
    request_id: &str,
    level: &str,
    request: &ChatCompletionRequest,
    history: History,
    provider: Option<&RemoteProvider>,
) -> Result<Cleared, ApiError> {
    let texts = texts_of(request, history);
    let assessment = assess(
        state,
        principal,
        level,
        texts.iter().map(String::as_str),
        &request.model,
        provider,
    );
    let Some((code, reason)) = assessment.refusal else {
        return Ok(Cleared {
            level: assessment.level,
            pseudonymize: provider.is_some_and(|provider| provider.pseudonymize),
            model_host: provider.map_or_else(|| "local".to_owned(), |provider| provider.name.clone()),
            jurisdiction: provider
                .map_or_else(|| "local".to_owned(), |provider| provider.jurisdiction.clone()),
        });
    };
    let origin = Origin {
        request_id: Some(request_id.to_owned()),
        ..Origin::default()
    };
    let record = entry(
        principal,
        &origin,
        Action::PolicyDenied,
        Some(format!("model:{}", request.model)),
        Outcome::Denied,
        json!({
            "reason": if code == ErrorCode::ClearanceInsufficient { "clearance" } else { "classification" },
            "level": assessment.level,
            "clearance": assessment.clearance,
            "marked": assessment.markings,
            "beyond_every_level": assessment.beyond.is_some(),
            "model_accredited_up_to": assessment.ceiling,
            "provider": provider.map(|provider| provider.name.clone()),
        }),
    );
    crate::audit::record(state.store.as_ref(), vec![record]).await?;
    Err(ApiError::new(code, reason))
}

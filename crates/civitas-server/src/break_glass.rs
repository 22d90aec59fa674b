//! Break-glass access: the only way an administrator reads another
//! person's conversations. It takes a written justification and a time
//! limit, waits for a second person's approval when the installation asks
//! for it (`audit.break_glass_second_approver`), opens for the one who
//! asked only, and every step — the request, the decision, each read and
//! each refused attempt — is an `access.break_glass` audit record written
//! with it. The person concerned sees every request about them (who, why,
//! when, how often content was read) on their settings page and at
//! `GET /v1/me/break-glass`.
//!
//! The API (`routes::break_glass`) and the administration pages call the
//! same functions here, so the rules hold whichever way they are reached.

use civitas_audit::{Action, Outcome};
use civitas_identity::Principal;
use civitas_store::{Agency, BreakGlass, BreakGlassStatus, Conversation, Message, NewBreakGlass};
use civitas_types::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit::{entry, Origin};
use crate::error::ApiError;
use crate::state::AppState;

/// Characters a justification needs at least: a reason, not a word.
pub const MIN_JUSTIFICATION: usize = 30;
pub const MAX_JUSTIFICATION: usize = 2000;
/// The duration when the request names none (within the maximum).
const DEFAULT_MINUTES: u32 = 60;
/// Conversations shown under one access at most.
const MAX_CONVERSATIONS: u32 = 500;

/// What an administrator asks for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassRequest {
    /// The person whose conversations are to be read.
    pub person_id: String,
    /// One of their conversations only; all of them when absent.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// Why (a case, a legal request, an investigation): at least 30
    /// characters, shown to the person concerned.
    pub justification: String,
    /// How long access stays open once approved (default 60, at most
    /// `audit.break_glass_max_minutes`).
    #[serde(default)]
    pub minutes: Option<u32>,
}

/// A request as shown: the stored request, the names of the people in it,
/// and whether it is open now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BreakGlassView {
    #[serde(flatten)]
    pub grant: BreakGlass,
    pub requested_by_name: Option<String>,
    pub subject_name: Option<String>,
    pub decided_by_name: Option<String>,
    /// Content may be read under it now.
    pub open: bool,
}

/// Runs `action` with a break-glass record of `principal` written in its
/// transaction; when it fails (or commits nothing) the record is written on
/// its own with the outcome and the error's code.
async fn recorded<T>(
    state: &AppState,
    record: civitas_audit::Entry,
    action: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let (result, mut left) = civitas_store::with_audit(vec![record], action).await;
    if !left.is_empty() {
        for record in &mut left {
            if let Err(error) = &result {
                record.outcome = if matches!(error.code.http_status(), 401 | 403 | 404) {
                    Outcome::Denied
                } else {
                    Outcome::Failure
                };
                if let Some(details) = record.details.as_object_mut() {
                    details.insert("error".to_owned(), json!(error.code.as_str()));
                }
            }
        }
        crate::audit::record(state.store.as_ref(), left).await?;
    }
    result
}

fn break_glass_entry(
    principal: &Principal,
    agency: &Agency,
    origin: &Origin,
    subject: Option<&str>,
    details: Value,
) -> civitas_audit::Entry {
    let mut record = entry(
        principal,
        origin,
        Action::BreakGlass,
        subject.map(|id| format!("person:{id}")),
        Outcome::Success,
        details,
    );
    // It belongs to the log of the agency whose person is concerned.
    record.agency_id = Some(agency.id.clone());
    record
}

/// Asks for access; open at once when no second approver is required.
pub async fn request(
    state: &AppState,
    principal: &Principal,
    agency: &Agency,
    origin: &Origin,
    body: BreakGlassRequest,
) -> Result<BreakGlass, ApiError> {
    let justification = body.justification.trim().to_owned();
    let open_now = !state.config.audit.break_glass_second_approver;
    let max = state.config.audit.break_glass_max_minutes;
    let minutes = body.minutes.unwrap_or(DEFAULT_MINUTES.min(max));
    let details = json!({
        "phase": "requested",
        "conversation_id": body.conversation_id,
        "minutes": minutes,
        "justification": justification,
        "second_approver": !open_now,
    });
    let record = break_glass_entry(principal, agency, origin, Some(&body.person_id), details);
    recorded(state, record, async {
        let length = justification.chars().count();
        if !(MIN_JUSTIFICATION..=MAX_JUSTIFICATION).contains(&length) {
            return Err(ApiError::invalid(
                "justification",
                format!(
                    "write why you need this access, in {MIN_JUSTIFICATION} to {MAX_JUSTIFICATION} characters; the person concerned will read it"
                ),
            ));
        }
        if !(1..=max).contains(&minutes) {
            return Err(ApiError::invalid(
                "minutes",
                format!("access may stay open from 1 to {max} minutes"),
            ));
        }
        let subject = crate::routes::admin::person_in(state, agency, &body.person_id).await?;
        if subject.id == principal.id() {
            return Err(ApiError::invalid(
                "person_id",
                "your own conversations are yours to read; break-glass is for someone else's",
            ));
        }
        if let Some(conversation_id) = &body.conversation_id {
            let theirs = state
                .store
                .get_conversation(conversation_id)
                .await
                .map_err(ApiError::storage)?
                .is_some_and(|conversation| conversation.owner == subject.id);
            if !theirs {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("the person has no conversation `{conversation_id}`"),
                )
                .with_param("conversation_id"));
            }
        }
        state
            .store
            .create_break_glass(NewBreakGlass {
                agency_id: agency.id.clone(),
                requested_by: principal.id().to_owned(),
                subject_id: subject.id,
                conversation_id: body.conversation_id.clone(),
                justification: justification.clone(),
                minutes: i64::from(minutes),
                open_now,
            })
            .await
            .map_err(ApiError::storage)
    })
    .await
}

async fn find(state: &AppState, agency: &Agency, id: &str) -> Result<BreakGlass, ApiError> {
    state
        .store
        .get_break_glass(&agency.id, id)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no break-glass request `{id}`")))
}

/// Approves or refuses a pending request: never by the one who asked, nor
/// by the person concerned.
pub async fn decide(
    state: &AppState,
    principal: &Principal,
    agency: &Agency,
    origin: &Origin,
    id: &str,
    approve: bool,
) -> Result<BreakGlass, ApiError> {
    let grant = find(state, agency, id).await?;
    let details = json!({
        "phase": if approve { "approved" } else { "refused" },
        "request": grant.id,
        "requested_by": grant.requested_by,
    });
    let record = break_glass_entry(principal, agency, origin, Some(&grant.subject_id), details);
    recorded(state, record, async {
        if grant.requested_by == principal.id() {
            return Err(ApiError::new(
                ErrorCode::SecondApproverRequired,
                "another administrator or an auditor must decide on your request",
            ));
        }
        if grant.subject_id == principal.id() {
            return Err(ApiError::new(
                ErrorCode::SecondApproverRequired,
                "you cannot decide on access to your own conversations",
            ));
        }
        state
            .store
            .decide_break_glass(
                &agency.id,
                &grant.id,
                principal.id(),
                approve,
                civitas_store::now(),
            )
            .await
            .map_err(ApiError::storage)?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Conflict,
                    format!("the request was already {}", grant.status.as_str()),
                )
            })
    })
    .await
}

/// Counts and records one read under `grant` (of `conversation_id`, or of
/// the list of conversations), refusing when it is not the caller's or not
/// open — checked before anything else, so that a closed access tells
/// nothing about which conversations exist — or when the conversation is
/// not under it (`found` false).
async fn read(
    state: &AppState,
    principal: &Principal,
    agency: &Agency,
    origin: &Origin,
    grant: &BreakGlass,
    conversation_id: Option<&str>,
    found: bool,
) -> Result<(), ApiError> {
    let details = json!({
        "phase": "read",
        "request": grant.id,
        "conversation_id": conversation_id,
    });
    let record = break_glass_entry(principal, agency, origin, Some(&grant.subject_id), details);
    recorded(state, record, async {
        if grant.requested_by != principal.id() {
            return Err(ApiError::new(
                ErrorCode::PermissionDenied,
                "only the administrator who asked may read under this access",
            ));
        }
        let not_open = || {
            let why = match grant.status {
                BreakGlassStatus::Pending => "it awaits a second person's approval",
                BreakGlassStatus::Refused => "it was refused",
                BreakGlassStatus::Approved => "its time is over; ask again if you still need it",
            };
            ApiError::new(
                ErrorCode::BreakGlassNotOpen,
                format!("this access is not open: {why}"),
            )
        };
        if !grant.is_open(chrono::Utc::now()) {
            return Err(not_open());
        }
        if !found {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!(
                    "no conversation `{}` under this access",
                    conversation_id.unwrap_or_default()
                ),
            ));
        }
        if !state
            .store
            .note_break_glass_read(&grant.id, civitas_store::now())
            .await
            .map_err(ApiError::storage)?
        {
            return Err(not_open());
        }
        Ok(())
    })
    .await
}

/// The conversations open under request `id` (a read, recorded).
pub async fn conversations(
    state: &AppState,
    principal: &Principal,
    agency: &Agency,
    origin: &Origin,
    id: &str,
) -> Result<(BreakGlass, Vec<Conversation>), ApiError> {
    let grant = find(state, agency, id).await?;
    read(state, principal, agency, origin, &grant, None, true).await?;
    let all = state
        .store
        .list_conversations(&grant.subject_id, MAX_CONVERSATIONS)
        .await
        .map_err(ApiError::storage)?;
    let open = all
        .into_iter()
        .filter(|conversation| grant.covers(&conversation.id))
        .collect();
    Ok((grant, open))
}

/// One conversation with its messages under request `id` (a read,
/// recorded).
pub async fn conversation(
    state: &AppState,
    principal: &Principal,
    agency: &Agency,
    origin: &Origin,
    id: &str,
    conversation_id: &str,
) -> Result<(BreakGlass, Conversation, Vec<Message>), ApiError> {
    let grant = find(state, agency, id).await?;
    let conversation = state
        .store
        .get_conversation(conversation_id)
        .await
        .map_err(ApiError::storage)?
        .filter(|conversation| conversation.owner == grant.subject_id && grant.covers(&conversation.id));
    let found = conversation.is_some();
    read(
        state,
        principal,
        agency,
        origin,
        &grant,
        Some(conversation_id),
        found,
    )
    .await?;
    let conversation = conversation.ok_or_else(ApiError::internal)?;
    let messages = state
        .store
        .list_messages(conversation_id)
        .await
        .map_err(ApiError::storage)?;
    Ok((grant, conversation, messages))
}

/// Requests with the names of the people in them.
pub async fn views(state: &AppState, grants: Vec<BreakGlass>) -> Result<Vec<BreakGlassView>, ApiError> {
    let mut names = std::collections::HashMap::<String, Option<String>>::new();
    let now = chrono::Utc::now();
    let mut views = Vec::with_capacity(grants.len());
    for grant in grants {
        let requested_by_name = name_of(state, &mut names, Some(&grant.requested_by)).await?;
        let subject_name = name_of(state, &mut names, Some(&grant.subject_id)).await?;
        let decided_by_name = name_of(state, &mut names, grant.decided_by.as_ref()).await?;
        views.push(BreakGlassView {
            open: grant.is_open(now),
            grant,
            requested_by_name,
            subject_name,
            decided_by_name,
        });
    }
    Ok(views)
}

async fn name_of(
    state: &AppState,
    names: &mut std::collections::HashMap<String, Option<String>>,
    id: Option<&String>,
) -> Result<Option<String>, ApiError> {
    let Some(id) = id else { return Ok(None) };
    if let Some(name) = names.get(id) {
        return Ok(name.clone());
    }
    let name = state
        .store
        .get_person(id)
        .await
        .map_err(ApiError::storage)?
        .map(|person| person.display_name);
    names.insert(id.clone(), name.clone());
    Ok(name)
}

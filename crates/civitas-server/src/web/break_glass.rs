//! The break-glass pages of the administration: ask to read a person's
//! conversations (with a justification and a duration), approve or refuse
//! the requests of others, and read under an open request. The rules and
//! the audit records are those of [`crate::break_glass`], shared with the
//! API.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use civitas_identity::{policy, Principal};
use civitas_store::BreakGlassStatus;
use civitas_types::ErrorCode;

use super::admin::{
    changing, field, frame, refused, viewing, AdminFrame, AdminQuery, Choice, FieldErrors, Fields,
};
use super::i18n::Texts;
use super::{page, Shell};
use crate::auth::{AgencyAccess, ApproveBreakGlass, RequestBreakGlass};
use crate::break_glass::{self, BreakGlassRequest, BreakGlassView};
use crate::error::ApiError;
use crate::state::AppState;

/// One request as the list shows it.
pub struct RequestRow {
    pub id: String,
    pub subject: String,
    pub requested_by: String,
    pub justification: String,
    pub asked: String,
    pub state: String,
    pub reads: String,
    /// The viewer may approve or refuse it.
    pub decidable: bool,
    /// The viewer may read under it now.
    pub readable: bool,
    pub read_label: String,
    pub approve_label: String,
    pub refuse_label: String,
}

#[derive(Template)]
#[template(path = "admin_break_glass.html")]
struct ListPage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    can_request: bool,
    second_approver: bool,
    minutes_hint: String,
    people: Vec<Choice>,
    justification: String,
    conversation: String,
    minutes: String,
    errors: FieldErrors,
    requests: Vec<RequestRow>,
}

/// Where a request stands, in the person's language.
pub fn state_of(t: Texts, view: &BreakGlassView) -> String {
    match view.grant.status {
        BreakGlassStatus::Pending => t.get("access-state-pending"),
        BreakGlassStatus::Refused => t.get("access-state-refused"),
        BreakGlassStatus::Approved => match view.grant.expires_at {
            Some(until) if view.open => t.with("access-state-open", &[("until", &t.datetime(until))]),
            Some(until) => t.with("access-state-closed", &[("until", &t.datetime(until))]),
            None => t.get("access-state-closed-unknown"),
        },
    }
}

fn origin(state: &AppState, headers: &HeaderMap) -> crate::audit::Origin {
    crate::audit::Origin::of(state, headers, None, None)
}

#[allow(
    clippy::too_many_arguments,
    reason = "the form as it was sent, one value each"
)]
async fn render(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    frame: AdminFrame,
    fields: Option<&Fields>,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let agency_id = frame.agency.id.clone();
    let grants = state
        .store
        .list_break_glass(&agency_id, 200)
        .await
        .unwrap_or_default();
    let views = break_glass::views(state, grants).await.unwrap_or_default();
    let requests = views
        .into_iter()
        .map(|view| {
            let grant = &view.grant;
            let state_text = state_of(t, &view);
            let subject = view
                .subject_name
                .clone()
                .unwrap_or_else(|| grant.subject_id.clone());
            RequestRow {
                read_label: t.with("access-read-link", &[("person", &subject)]),
                approve_label: t.with("access-approve", &[("person", &subject)]),
                refuse_label: t.with("access-refuse", &[("person", &subject)]),
                id: grant.id.clone(),
                subject,
                requested_by: view
                    .requested_by_name
                    .clone()
                    .unwrap_or_else(|| grant.requested_by.clone()),
                justification: grant.justification.clone(),
                asked: t.datetime(grant.created_at),
                state: state_text,
                reads: t.number(grant.reads),
                decidable: grant.status == BreakGlassStatus::Pending
                    && grant.requested_by != principal.id()
                    && grant.subject_id != principal.id(),
                readable: view.open && grant.requested_by == principal.id(),
            }
        })
        .collect();
    let can_request = AgencyAccess::<RequestBreakGlass>::allows(state, principal, &agency_id).await;
    let chosen = fields
        .map(|fields| field(fields, "person_id"))
        .unwrap_or_default();
    let mut people = vec![Choice {
        value: String::new(),
        label: t.get("access-choose-person"),
        selected: chosen.is_empty(),
    }];
    if can_request {
        let mut listed = state.store.list_people(&agency_id).await.unwrap_or_default();
        listed.retain(|person| person.id != principal.id() && person.kind == "person");
        listed.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        people.extend(listed.into_iter().map(|person| Choice {
            selected: person.id == chosen,
            label: format!("{} ({})", person.display_name, person.email),
            value: person.id,
        }));
    }
    let value = |name: &str| {
        fields
            .map(|fields| field(fields, name).to_owned())
            .unwrap_or_default()
    };
    let list = ListPage {
        t,
        shell: Shell::of(state, t, principal, None, "admin"),
        frame,
        can_request,
        second_approver: state.config.audit.break_glass_second_approver,
        minutes_hint: t.with(
            "access-minutes-hint",
            &[("max", &state.config.audit.break_glass_max_minutes.to_string())],
        ),
        people,
        justification: value("justification"),
        conversation: value("conversation_id"),
        minutes: fields
            .map(|fields| field(fields, "minutes").to_owned())
            .unwrap_or_else(|| "60".to_owned()),
        errors,
        requests,
    };
    page(status, &list, HeaderMap::new())
}

/// `/admin/agencies/{id}/break-glass`.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) =
        match viewing::<ApproveBreakGlass>(&state, &headers, &query, &agency_id).await {
            Ok(viewer) => viewer,
            Err(response) => return response,
        };
    let frame = frame(&state, &principal, granted.agency, "break-glass", query.done(t)).await;
    render(
        &state,
        t,
        &principal,
        frame,
        None,
        FieldErrors::new(),
        StatusCode::OK,
    )
    .await
}

/// The request's refusal in the person's language, next to its field.
fn request_error(t: Texts, error: &ApiError) -> FieldErrors {
    let field = error.param.clone().unwrap_or_else(|| "justification".to_owned());
    let message = match field.as_str() {
        "justification" if error.code == ErrorCode::InvalidParameter => t.with(
            "access-error-justification",
            &[
                ("min", &break_glass::MIN_JUSTIFICATION.to_string()),
                ("max", &break_glass::MAX_JUSTIFICATION.to_string()),
            ],
        ),
        "minutes" => t.get("access-error-minutes"),
        "person_id" => t.get("access-error-person"),
        "conversation_id" => t.get("access-error-conversation"),
        _ => error.message.clone(),
    };
    FieldErrors::one(&field, message)
}

/// Asks for access (the form of the list page).
pub async fn request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, granted) =
        match changing::<RequestBreakGlass>(&state, &headers, &fields, &agency_id).await {
            Ok(changer) => changer,
            Err(response) => return response,
        };
    let conversation = field(&fields, "conversation_id").trim();
    let minutes = field(&fields, "minutes").trim();
    let body = BreakGlassRequest {
        person_id: field(&fields, "person_id").to_owned(),
        conversation_id: (!conversation.is_empty()).then(|| conversation.to_owned()),
        justification: field(&fields, "justification").replace("\r\n", "\n"),
        minutes: if minutes.is_empty() {
            None
        } else {
            match minutes.parse::<u32>() {
                Ok(minutes) => Some(minutes),
                // Out of range on purpose: refused with the range.
                Err(_) => Some(0),
            }
        },
    };
    let result = if body.person_id.is_empty() {
        Err(ApiError::invalid("person_id", "choose a person"))
    } else {
        break_glass::request(
            &state,
            &principal,
            &granted.agency,
            &origin(&state, &headers),
            body,
        )
        .await
    };
    match result {
        Ok(grant) => {
            let done = if grant.status == BreakGlassStatus::Approved {
                "access-opened"
            } else {
                "access-requested"
            };
            Redirect::to(&format!("/admin/agencies/{agency_id}/break-glass?done={done}")).into_response()
        }
        Err(error) if error.code == ErrorCode::StorageUnavailable => refused(&state, t, &principal, &error),
        Err(error) => {
            let frame = frame(&state, &principal, granted.agency, "break-glass", None).await;
            let errors = request_error(t, &error);
            render(
                &state,
                t,
                &principal,
                frame,
                Some(&fields),
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

async fn decide(
    state: AppState,
    headers: HeaderMap,
    agency_id: String,
    id: String,
    fields: Fields,
    approve: bool,
) -> Response {
    let (t, principal, granted) =
        match changing::<ApproveBreakGlass>(&state, &headers, &fields, &agency_id).await {
            Ok(changer) => changer,
            Err(response) => return response,
        };
    let origin = origin(&state, &headers);
    match break_glass::decide(&state, &principal, &granted.agency, &origin, &id, approve).await {
        Ok(_) => {
            let done = if approve {
                "access-approved"
            } else {
                "access-refused"
            };
            Redirect::to(&format!("/admin/agencies/{agency_id}/break-glass?done={done}")).into_response()
        }
        Err(error) => refused(&state, t, &principal, &error),
    }
}

pub async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((agency_id, id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    decide(state, headers, agency_id, id, fields, true).await
}

pub async fn refuse(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((agency_id, id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    decide(state, headers, agency_id, id, fields, false).await
}

pub struct ConversationRow {
    pub id: String,
    pub title: String,
    pub updated: String,
    pub current: bool,
}

pub struct MessageRow {
    pub role: String,
    pub html: String,
}

#[derive(Template)]
#[template(path = "admin_break_glass_read.html")]
struct ReadPage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    request_id: String,
    title: String,
    warning: String,
    justification: String,
    conversations: Vec<ConversationRow>,
    /// The opened conversation's title and messages.
    opened: Option<(String, Vec<MessageRow>)>,
}

/// Reads under an open request: the list of the person's conversations,
/// and one of them when `?conversation=` names it. Each view is a read,
/// counted and recorded.
pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((agency_id, id)): Path<(String, String)>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) =
        match viewing::<RequestBreakGlass>(&state, &headers, &query, &agency_id).await {
            Ok(viewer) => viewer,
            Err(response) => return response,
        };
    let origin = origin(&state, &headers);
    let agency = granted.agency;
    let (grant, conversations) =
        match break_glass::conversations(&state, &principal, &agency, &origin, &id).await {
            Ok(found) => found,
            Err(error) => return not_open(&state, t, &principal, &error),
        };
    let opened = match query.conversation.as_deref().filter(|id| !id.is_empty()) {
        None => None,
        Some(conversation_id) => {
            match break_glass::conversation(&state, &principal, &agency, &origin, &id, conversation_id).await
            {
                Ok((_, conversation, messages)) => Some((
                    conversation.title.unwrap_or_else(|| t.get("untitled")),
                    messages
                        .into_iter()
                        .filter(|message| message.role != "system")
                        .map(|message| MessageRow {
                            role: t.get(if message.role == "user" {
                                "access-author-person"
                            } else {
                                "author-assistant"
                            }),
                            html: super::markdown::render(&message.content, false),
                        })
                        .collect(),
                )),
                Err(error) => return not_open(&state, t, &principal, &error),
            }
        }
    };
    let subject = state
        .store
        .get_person(&grant.subject_id)
        .await
        .ok()
        .flatten()
        .map(|person| person.display_name)
        .unwrap_or_else(|| grant.subject_id.clone());
    let rows = conversations
        .into_iter()
        .map(|conversation| ConversationRow {
            current: query.conversation.as_deref() == Some(conversation.id.as_str()),
            title: conversation.title.unwrap_or_else(|| t.get("untitled")),
            updated: t.datetime(conversation.updated_at),
            id: conversation.id,
        })
        .collect();
    let read_page = ReadPage {
        t,
        shell: Shell::of(&state, t, &principal, None, "admin"),
        frame: frame(&state, &principal, agency, "break-glass", None).await,
        request_id: grant.id.clone(),
        title: t.with("access-read-title", &[("person", &subject)]),
        warning: t.with(
            "access-read-warning",
            &[(
                "until",
                &grant.expires_at.map(|at| t.datetime(at)).unwrap_or_default(),
            )],
        ),
        justification: grant.justification.clone(),
        conversations: rows,
        opened,
    };
    page(StatusCode::OK, &read_page, HeaderMap::new())
}

/// The refusal of a read: why the access is not open, in the person's
/// language.
fn not_open(state: &AppState, t: Texts, principal: &Principal, error: &ApiError) -> Response {
    if error.code == ErrorCode::BreakGlassNotOpen {
        let notice = super::chat::NoticePage {
            t,
            shell: Shell::of(state, t, principal, None, "admin"),
            heading: t.get("access-not-open-title"),
            text: t.get("access-not-open"),
        };
        return page(StatusCode::FORBIDDEN, &notice, HeaderMap::new());
    }
    refused(state, t, principal, error)
}

impl<P: crate::auth::Permission> AgencyAccess<P> {
    /// Whether `principal` holds `P` on `agency_id` (without recording a
    /// refusal: for showing or hiding a form).
    pub async fn allows(state: &AppState, principal: &Principal, agency_id: &str) -> bool {
        let Ok(chain) = state.store.agency_ancestors(agency_id).await else {
            return false;
        };
        policy::authorize_agency(principal, &chain, P::ROLES).is_ok()
    }
}

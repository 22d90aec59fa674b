//! The one table of error codes.
//!
//! Every crate maps its own errors into an [`ErrorCode`]; the HTTP edge turns
//! the code into a status and an OpenAI-shaped body. Codes are stable: a
//! client may match on them, so a code is never renamed, only added.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares the codes once: variant, code string, OpenAI error type, HTTP
/// status and meaning.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident => ($code:literal, $kind:literal, $status:literal),)*) => {
        /// A stable error code with its OpenAI error `type` and HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, for the generated documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable machine-readable code sent as `error.code`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// OpenAI's `error.type` for this code.
            pub fn error_type(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $kind,)*
                }
            }

            /// The code whose string is `code`.
            pub fn parse(code: &str) -> Option<ErrorCode> {
                ErrorCode::ALL.iter().copied().find(|known| known.as_str() == code)
            }

            /// The HTTP status this code is answered with.
            pub fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }
        }
    };
}

error_codes! {
    /// The JSON body could not be parsed or a field has the wrong type.
    InvalidRequestBody => ("invalid_request_body", "invalid_request_error", 400),
    /// A field is present and well typed but its value is not allowed.
    InvalidParameter => ("invalid_parameter", "invalid_request_error", 400),
    /// The request has no body or the wrong content type.
    UnsupportedMediaType => ("unsupported_media_type", "invalid_request_error", 415),
    /// The body is larger than `server.max_body_bytes`.
    PayloadTooLarge => ("payload_too_large", "invalid_request_error", 413),
    /// No `Authorization: Bearer` header (nor session cookie) was sent.
    MissingApiKey => ("missing_api_key", "authentication_error", 401),
    /// The bearer token is not a valid key.
    InvalidApiKey => ("invalid_api_key", "authentication_error", 401),
    /// The key was revoked.
    ApiKeyRevoked => ("api_key_revoked", "authentication_error", 401),
    /// The key is past its expiry.
    ApiKeyExpired => ("api_key_expired", "authentication_error", 401),
    /// The key may not be used from the client's address.
    AddressNotAllowed => ("address_not_allowed", "permission_error", 403),
    /// The session cookie is unknown, expired, idle too long or signed out.
    SessionExpired => ("session_expired", "authentication_error", 401),
    /// A state-changing request made with a session lacks the CSRF token.
    CsrfTokenInvalid => ("csrf_token_invalid", "permission_error", 403),
    /// The e-mail address and password do not match an account.
    InvalidCredentials => ("invalid_credentials", "authentication_error", 401),
    /// The account needs its second factor (`totp_code`).
    SecondFactorRequired => ("second_factor_required", "authentication_error", 401),
    /// Too many failed sign-ins; retry after `Retry-After`.
    AccountLocked => ("account_locked", "rate_limit_error", 429),
    /// Single sign-on failed: the provider refused, or its token is invalid
    /// (signature, expiry, audience, issuer, nonce).
    SsoFailed => ("sso_failed", "authentication_error", 401),
    /// The sign-in attempt is unknown, expired or was already used.
    SsoStateInvalid => ("sso_state_invalid", "invalid_request_error", 400),
    /// The provider vouched for someone this installation does not admit
    /// (domain not allowed, unverified or foreign e-mail address).
    SsoNotAllowed => ("sso_not_allowed", "permission_error", 403),
    /// The account was disabled by an administrator.
    AccountDisabled => ("account_disabled", "permission_error", 403),
    /// The account awaits an administrator's approval.
    AccountPending => ("account_pending", "permission_error", 403),
    /// The caller lacks the role this action needs.
    PermissionDenied => ("permission_denied", "permission_error", 403),
    /// A break-glass access needs a second person: the one who asked
    /// cannot approve it, nor the person concerned.
    SecondApproverRequired => ("second_approver_required", "permission_error", 403),
    /// The conversation's classification (or a marking in it) is above
    /// what the model is accredited for.
    ClassificationNotAllowed => ("classification_not_allowed", "permission_error", 403),
    /// The conversation's level is above the person's clearance.
    ClearanceInsufficient => ("clearance_insufficient", "permission_error", 403),
    /// The break-glass access is pending, refused or expired.
    BreakGlassNotOpen => ("break_glass_not_open", "permission_error", 403),
    /// The model exists but the caller's groups (or key) may not use it.
    ModelNotAllowed => ("model_not_allowed", "permission_error", 403),
    /// The requested model is not served by this installation.
    ModelNotFound => ("model_not_found", "invalid_request_error", 404),
    /// The route does not exist.
    RouteNotFound => ("route_not_found", "invalid_request_error", 404),
    /// The addressed record does not exist (or belongs to someone else).
    NotFound => ("not_found", "invalid_request_error", 404),
    /// The method is not allowed on this route.
    MethodNotAllowed => ("method_not_allowed", "invalid_request_error", 405),
    /// A legal hold applies to the person or matter: nothing of theirs is
    /// deleted or purged until it is released.
    LegalHoldActive => ("legal_hold_active", "invalid_request_error", 409),
    /// The content was sealed with a data key that has been destroyed
    /// (crypto-shredded); it can never be read again.
    ContentDestroyed => ("content_destroyed", "invalid_request_error", 410),
    /// The value is already taken (a slug, an e-mail address, a name).
    Conflict => ("conflict", "invalid_request_error", 409),
    /// A referenced record (group, person, parent agency) does not resolve.
    UnresolvedReference => ("unresolved_reference", "invalid_request_error", 422),
    /// The password does not satisfy the policy.
    WeakPassword => ("weak_password", "invalid_request_error", 422),
    /// The prompt does not fit the model's context window.
    ContextLengthExceeded => ("context_length_exceeded", "invalid_request_error", 400),
    /// Over the requests-per-minute limit of a scope; see `Retry-After`.
    RequestsPerMinuteExceeded => ("requests_per_minute_exceeded", "rate_limit_error", 429),
    /// Over the tokens-per-minute limit of a scope; see `Retry-After`.
    TokensPerMinuteExceeded => ("tokens_per_minute_exceeded", "rate_limit_error", 429),
    /// Over the tokens-per-day limit of a scope; see `Retry-After`.
    TokensPerDayExceeded => ("tokens_per_day_exceeded", "rate_limit_error", 429),
    /// The monthly cost budget of a scope is spent.
    BudgetExceeded => ("budget_exceeded", "insufficient_quota", 402),
    /// The inference queue is full; retry after the `Retry-After` delay.
    QueueFull => ("queue_full", "rate_limit_error", 429),
    /// The model is still loading or failed to load.
    ModelUnavailable => ("model_unavailable", "server_error", 503),
    /// The server is answering as many API requests as it may
    /// (`server.max_in_flight`); retry after `Retry-After`.
    ServerBusy => ("server_busy", "server_error", 503),
    /// The server is shutting down.
    ShuttingDown => ("shutting_down", "server_error", 503),
    /// The database could not complete the request.
    StorageUnavailable => ("storage_unavailable", "server_error", 503),
    /// A remote provider answered with an error (its status is in
    /// `upstream_status`), or an answer that could not be read.
    UpstreamError => ("upstream_error", "server_error", 502),
    /// No deployment of the model could be reached, or all are cooling
    /// down after failures; retry after `Retry-After`.
    UpstreamUnavailable => ("upstream_unavailable", "server_error", 503),
    /// The provider's answer did not begin in time.
    UpstreamTimeout => ("upstream_timeout", "server_error", 504),
    /// The provider is limiting requests (429); retry after `Retry-After`.
    UpstreamRateLimited => ("upstream_rate_limited", "rate_limit_error", 429),
    /// The provider refused the request as invalid (its 4xx status and
    /// message are given).
    UpstreamRejected => ("upstream_rejected", "invalid_request_error", 400),
    /// Something unexpected happened; the request id locates it in the logs.
    InternalError => ("internal_error", "server_error", 500),
    /// The uploaded file is of a type that cannot be ingested (or is not
    /// what its name says).
    UnsupportedFileType => ("unsupported_file_type", "invalid_request_error", 415),
}

/// `{"error": {...}}`, OpenAI's error envelope.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The inside of OpenAI's error envelope, plus the request id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub error_type: String,
    pub param: Option<String>,
    pub code: String,
    pub request_id: String,
    /// The HTTP status a remote provider answered, when the error is its.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
}

impl ErrorBody {
    pub fn new(
        code: ErrorCode,
        message: impl Into<String>,
        param: Option<String>,
        request_id: impl Into<String>,
    ) -> Self {
        ErrorBody {
            error: ErrorDetail {
                message: message.into(),
                error_type: code.error_type().to_owned(),
                param,
                code: code.as_str().to_owned(),
                request_id: request_id.into(),
                upstream_status: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let mut seen = HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {}", code.as_str());
            assert!((400..600).contains(&code.http_status()));
        }
    }
}

//! Limits and budgets on model routes.
//!
//! Before a model request runs, [`enforce`] admits it under every limit set
//! on the caller's agency, groups, person and key, from a lease of
//! requests this replica took from the database counters
//! ([`crate::ledger`]: limits hold under concurrency and across replicas
//! without a database write per request). After it ends, the recorder
//! charges its tokens and cost to the same scopes. No more requests per
//! minute are admitted than the limit; tokens and cost are charged after
//! the fact, so requests already running when a token or cost limit is
//! reached may go over it by what they use.
//! Administration routes are never limited, so limits cannot lock an
//! administrator out.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use civitas_config::PriceConfig;
use civitas_store::{LimitHit, LimitKind};
use civitas_types::ErrorCode;

use crate::error::ApiError;
use crate::middleware::Caller;
use crate::state::AppState;

/// What each model costs, per million tokens.
#[derive(Debug, Default, Clone)]
pub struct PriceTable {
    prices: HashMap<String, (f64, f64)>,
}

impl PriceTable {
    pub fn new(prices: &[PriceConfig]) -> PriceTable {
        PriceTable {
            prices: prices
                .iter()
                .map(|price| {
                    (
                        price.model.clone(),
                        (price.input_per_million, price.output_per_million),
                    )
                })
                .collect(),
        }
    }

    /// In millionths of the currency unit; 0 for a model without a price.
    pub fn cost_micros(&self, model: Option<&str>, prompt_tokens: i64, completion_tokens: i64) -> i64 {
        let Some(price) = model.and_then(|model| self.prices.get(model)) else {
            return 0;
        };
        priced_micros(*price, prompt_tokens, completion_tokens)
    }
}

/// What `price` (per million tokens: prompt, answer) makes of a request, in
/// millionths of the currency unit.
pub fn priced_micros(price: (f64, f64), prompt_tokens: i64, completion_tokens: i64) -> i64 {
    (prompt_tokens as f64 * price.0 + completion_tokens as f64 * price.1).round() as i64
}

fn refusal(hit: &LimitHit) -> ApiError {
    let (code, what) = match hit.kind {
        LimitKind::RequestsPerMinute => (ErrorCode::RequestsPerMinuteExceeded, "requests per minute"),
        LimitKind::TokensPerMinute => (ErrorCode::TokensPerMinuteExceeded, "tokens per minute"),
        LimitKind::TokensPerDay => (ErrorCode::TokensPerDayExceeded, "tokens per day"),
        LimitKind::CostPerMonth => (ErrorCode::BudgetExceeded, "monthly cost budget"),
    };
    let level = hit.scope.split(':').next().unwrap_or("scope");
    let mut error = ApiError::new(
        code,
        format!(
            "the {what} limit of your {level} is reached; retry in {} s or ask your finance manager",
            hit.retry_after_seconds
        ),
    );
    error.retry_after_seconds = Some(hit.retry_after_seconds);
    error
}

/// Admits one model request of `caller` under its limits: the caller to
/// charge afterwards, or the refusal (429/402).
pub async fn admit(
    state: &AppState,
    principal: &civitas_identity::Principal,
    caller: Caller,
    origin: &crate::audit::Origin,
) -> Result<Caller, ApiError> {
    let scopes = principal.limit_scopes();
    let limits = state
        .identity_cache
        .limits(state.store.as_ref(), &scopes, caller.identity_version)
        .await
        .map_err(ApiError::storage)?;
    if limits.is_empty() {
        return Ok(caller);
    }
    match state
        .ledger
        .admit(
            state.store.as_ref(),
            &limits,
            caller.identity_version,
            chrono::Utc::now(),
        )
        .await
    {
        Ok(Ok(())) => Ok(Caller {
            charge: Arc::new(limits.into_iter().map(|limit| limit.scope).collect()),
            ..caller
        }),
        Ok(Err(hit)) => {
            record_hit(state, principal, origin, &hit).await;
            Err(refusal(&hit))
        }
        Err(error) => Err(ApiError::storage(error)),
    }
}

/// Records a limit's refusal in the audit log, once per limit and minute
/// on this replica (the refusal stands if the record cannot be written).
async fn record_hit(
    state: &AppState,
    principal: &civitas_identity::Principal,
    origin: &crate::audit::Origin,
    hit: &LimitHit,
) {
    if !state
        .auditor
        .first_limit_hit_this_minute(&format!("{}|{}", hit.scope, hit.kind.as_str()))
    {
        return;
    }
    let record = crate::audit::entry(
        principal,
        origin,
        civitas_audit::Action::LimitHit,
        Some(format!("limit:{}", hit.scope)),
        civitas_audit::Outcome::Denied,
        serde_json::json!({
            "kind": hit.kind.as_str(),
            "scope": hit.scope,
            "retry_after_seconds": hit.retry_after_seconds,
        }),
    );
    if let Err(error) = state.store.append_audit(vec![record]).await {
        tracing::error!(%error, "could not record a limit hit in the audit log");
    }
}

/// Admits the request under the caller's limits or answers 429/402.
pub async fn enforce(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let (Some(caller), Some(principal)) = (
        request.extensions().get::<Caller>().cloned(),
        request.extensions().get::<civitas_identity::Principal>(),
    ) else {
        return ApiError::internal().into_response();
    };
    let origin = crate::audit::Origin::of_parts(&state, request.headers(), request.extensions());
    match admit(&state, principal, caller, &origin).await {
        Ok(charged) => {
            request.extensions_mut().insert(charged);
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_follows_the_price_table() {
        let table = PriceTable::new(&[PriceConfig {
            model: "m".to_owned(),
            input_per_million: 0.5,
            output_per_million: 1.5,
        }]);
        assert_eq!(table.cost_micros(Some("m"), 1000, 100), 650);
        assert_eq!(table.cost_micros(Some("other"), 1000, 100), 0);
        assert_eq!(table.cost_micros(None, 1000, 100), 0);
    }
}

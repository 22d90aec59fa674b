//! `civitas providers test`: each configured deployment checked the way
//! the gateway will use it — reachable, its credential accepted, and a
//! one-token completion of each of its models.

use std::time::Instant;

use anyhow::{anyhow, Result};
use civitas_config::{Config, ProviderKind};
use civitas_server::providers::RemoteProvider;
use civitas_types::openai::ChatCompletionRequest;
use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::ProvidersCommand;

/// One row of the table: a model of a deployment.
#[derive(Debug, Serialize)]
struct Check {
    provider: String,
    kind: &'static str,
    model: String,
    /// Something answered at its address.
    reachable: bool,
    /// `Some(false)` when it refused the credential; `None` when nothing
    /// said either way.
    authenticated: Option<bool>,
    /// A one-token completion came back.
    completion: bool,
    /// Time to that answer.
    milliseconds: Option<u128>,
    detail: String,
}

fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Openai => "openai",
        ProviderKind::Azure => "azure",
        ProviderKind::Anthropic => "anthropic",
    }
}

/// The provider's own error message, if its body has one.
fn message_of(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| value["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn check(provider: &RemoteProvider, model: &str) -> Check {
    let mut row = Check {
        provider: provider.name.clone(),
        kind: kind_name(provider.kind),
        model: model.to_owned(),
        reachable: false,
        authenticated: None,
        completion: false,
        milliseconds: None,
        detail: String::new(),
    };
    // The list of models: reachability and, where it needs one, the key.
    match provider.list_models().await {
        Ok((status, _)) => {
            row.reachable = true;
            row.authenticated = match status {
                200..=299 => Some(true),
                401 | 403 => Some(false),
                _ => None,
            };
        }
        Err(error) => {
            row.detail = error.to_string();
            return row;
        }
    }
    let request: ChatCompletionRequest = match serde_json::from_value(json!({
        "model": model,
        "messages": [{"role": "user", "content": "Reply with OK."}],
        "max_tokens": 1,
        "temperature": 0,
    })) {
        Ok(request) => request,
        Err(error) => {
            row.detail = error.to_string();
            return row;
        }
    };
    let started = Instant::now();
    let sent = match provider.kind {
        ProviderKind::Anthropic => {
            match civitas_server::anthropic::request(&request, provider.upstream_model(model)) {
                Ok(body) => provider.send_chat(model, &body).await,
                Err(error) => {
                    row.detail = error.message;
                    return row;
                }
            }
        }
        ProviderKind::Openai | ProviderKind::Azure => {
            provider.send_chat(model, &provider.openai_body(&request)).await
        }
    };
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            row.detail = error.to_string();
            return row;
        }
    };
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map(|bytes| bytes.to_vec())
        .unwrap_or_default();
    row.milliseconds = Some(started.elapsed().as_millis());
    match status {
        200..=299 => {
            row.completion = true;
            row.authenticated = Some(true);
        }
        401 | 403 => {
            row.authenticated = Some(false);
            row.detail = format!("{status}: {}", message_of(&body));
        }
        _ => row.detail = format!("{status}: {}", message_of(&body)),
    }
    row
}

pub async fn run(config: &Config, command: ProvidersCommand) -> Result<()> {
    let ProvidersCommand::Test { name, json } = command;
    let mut rows = Vec::new();
    for provider in &config.providers {
        if name.as_ref().is_some_and(|name| name != &provider.name) {
            continue;
        }
        let remote = RemoteProvider::from_config(provider).map_err(|error| anyhow!("{error}"))?;
        for model in &provider.models {
            rows.push(check(&remote, model).await);
        }
    }
    if rows.is_empty() {
        return Err(match name {
            Some(name) => anyhow!("no provider named `{name}` in the configuration"),
            None => anyhow!("no [[providers]] in the configuration"),
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows);
    }
    let failed = rows.iter().filter(|row| !row.completion).count();
    if failed > 0 {
        return Err(anyhow!("{failed} of {} checks failed", rows.len()));
    }
    Ok(())
}

fn print_table(rows: &[Check]) {
    let mark = |ok: bool| if ok { "yes" } else { "NO" };
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            [
                row.provider.clone(),
                row.kind.to_owned(),
                row.model.clone(),
                mark(row.reachable).to_owned(),
                row.authenticated.map_or("?", mark).to_owned(),
                mark(row.completion).to_owned(),
                row.milliseconds
                    .map_or_else(|| "-".to_owned(), |ms| ms.to_string()),
            ]
        })
        .collect();
    let header = [
        "PROVIDER",
        "KIND",
        "MODEL",
        "REACHABLE",
        "AUTH",
        "COMPLETION",
        "MS",
    ];
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            table
                .iter()
                .map(|row| row[column].chars().count())
                .chain([header[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(&header.map(str::to_owned)));
    for (cells, row) in table.iter().zip(rows) {
        println!("{}", line(cells));
        if !row.detail.is_empty() {
            println!("    {}", row.detail);
        }
    }
}

//! `civitas admin` and `civitas keys`: identity work on the database
//! directly, for first run and for operators.

use std::io::{BufRead, IsTerminal};

use anyhow::{anyhow, bail, Result};
use civitas_identity::provision::{self, KeyRequest, ProvisionError};
use civitas_store::Store;

use crate::cli::{AdminCommand, KeysCommand};

fn explain(error: ProvisionError) -> anyhow::Error {
    anyhow!("{error}")
}

fn read_password(from_stdin: bool) -> Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(password);
    }
    let first = rpassword::prompt_password("password: ")?;
    let second = rpassword::prompt_password("password again: ")?;
    if first != second {
        bail!("the two passwords differ");
    }
    Ok(first)
}

pub async fn admin(store: &dyn Store, command: AdminCommand) -> Result<()> {
    let AdminCommand::Create {
        email,
        name,
        agency,
        password_stdin,
    } = command;
    let agency = if agency == provision::DEFAULT_AGENCY {
        provision::ensure_default_agency(store).await.map_err(explain)?
    } else {
        store
            .get_agency_by_slug(&agency)
            .await?
            .ok_or_else(|| anyhow!("no agency with the slug `{agency}`"))?
    };
    let email = provision::normalize_email(&email).map_err(explain)?;
    let password = read_password(password_stdin)?;
    let name = name.unwrap_or_else(|| email.clone());
    let person = provision::create_admin(store, &agency, &email, &name, &password)
        .await
        .map_err(explain)?;
    println!(
        "platform administrator {} created in agency `{}` (id {})",
        person.email, agency.slug, person.id
    );
    println!(
        "sign in on the workspace (the address `civitas serve` prints) with this e-mail address and password"
    );
    Ok(())
}

pub async fn keys(store: &dyn Store, command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create {
            email,
            name,
            kind,
            models,
            ip_ranges,
            expires_in_hours,
        } => {
            let email = provision::normalize_email(&email).map_err(explain)?;
            let owner = store
                .get_person_by_email(&email)
                .await?
                .ok_or_else(|| anyhow!("nobody has the e-mail address {email}"))?;
            let expires_at =
                expires_in_hours.map(|hours| chrono::Utc::now() + chrono::Duration::hours(i64::from(hours)));
            let created_by = owner.id.clone();
            let (key, secret) = provision::create_key(
                store,
                KeyRequest {
                    owner,
                    name,
                    kind,
                    models,
                    ip_ranges,
                    expires_at,
                    created_by,
                },
            )
            .await
            .map_err(explain)?;
            eprintln!("key {} created; its secret is shown once, store it now:", key.id);
            println!("{secret}");
            Ok(())
        }
        KeysCommand::List { agency } => {
            let agency = store
                .get_agency_by_slug(&agency)
                .await?
                .ok_or_else(|| anyhow!("no agency with the slug `{agency}`"))?;
            println!(
                "{:<38} {:<10} {:<12} {:<8} {:<25} NAME",
                "ID", "PREFIX", "KIND", "STATE", "LAST USED"
            );
            for key in store.list_api_keys(&agency.id, None).await? {
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else if key.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
                    "expired"
                } else {
                    "active"
                };
                let last_used = key
                    .last_used_at
                    .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| "never".to_owned());
                println!(
                    "{:<38} {:<10} {:<12} {:<8} {:<25} {}",
                    key.id, key.prefix, key.kind, state, last_used, key.name
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            for agency in store.list_agencies().await? {
                if store
                    .revoke_api_key(&agency.id, &id, civitas_store::now())
                    .await?
                {
                    println!("key {id} revoked");
                    return Ok(());
                }
            }
            bail!("no key `{id}`")
        }
    }
}

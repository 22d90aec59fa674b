//! Creating agencies, people and keys with every value validated; used by
//! the admin API, the CLI and first-run set-up alike.

use chrono::{DateTime, Utc};
use civitas_store::{Agency, ApiKey, NewAgency, NewApiKey, NewPerson, Person, Store, StoreError};

use crate::password::{self, PasswordRejected};
use crate::{secret, Role};

/// The agency created on first run.
pub const DEFAULT_AGENCY: &str = "default";
/// Its group allowed every model.
pub const DEFAULT_GROUP: &str = "everyone";
/// The service account that owns the bootstrap key.
pub const BOOTSTRAP_ACCOUNT: &str = "bootstrap@civitas.invalid";

/// Why a provisioning request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A value is malformed; `field` names it.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// A referenced record does not resolve (a group, a person, a parent).
    #[error("{field}: {message}")]
    Unresolved { field: &'static str, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("password: {0}")]
    Password(#[from] PasswordRejected),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ProvisionError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => ProvisionError::Conflict(message),
            other => ProvisionError::Store(other),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ProvisionError {
    ProvisionError::Invalid {
        field,
        message: message.into(),
    }
}

/// Lower-cased, trimmed e-mail address, or why it is not one.
pub fn normalize_email(email: &str) -> Result<String, ProvisionError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if valid {
        Ok(email)
    } else {
        Err(invalid("email", "not a valid e-mail address"))
    }
}

/// `[a-z0-9-]`, 2 to 63 characters, not starting or ending with `-`.
pub fn check_slug(slug: &str) -> Result<(), ProvisionError> {
    let valid = (2..=63).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "slug",
            "use 2 to 63 characters among a-z, 0-9 and '-', not starting or ending with '-'",
        ))
    }
}

/// A display name or a label: 1 to 200 characters, no control characters.
pub fn check_name(field: &'static str, name: &str) -> Result<(), ProvisionError> {
    if name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "use 1 to 200 characters, without control characters",
        ));
    }
    Ok(())
}

/// Every entry is a CIDR range or a single address.
pub fn check_ip_ranges(ranges: &[String]) -> Result<(), ProvisionError> {
    for range in ranges {
        if range.parse::<ipnet::IpNet>().is_err() && range.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(
                "ip_ranges",
                format!("`{range}` is not an address or a CIDR range"),
            ));
        }
    }
    Ok(())
}

/// Whether `address` is inside one of `ranges` (checked by [`check_ip_ranges`]).
pub fn address_allowed(ranges: &[String], address: std::net::IpAddr) -> bool {
    let address = match address {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(address),
        v4 => v4,
    };
    ranges.iter().any(|range| {
        range
            .parse::<ipnet::IpNet>()
            .map(|net| net.contains(&address))
            .or_else(|_| range.parse::<std::net::IpAddr>().map(|single| single == address))
            .unwrap_or(false)
    })
}

/// Creates an agency after checking its slug, name and parent.
pub async fn create_agency(
    store: &dyn Store,
    slug: &str,
    name: &str,
    parent_id: Option<&str>,
) -> Result<Agency, ProvisionError> {
    check_slug(slug)?;
    check_name("name", name)?;
    if let Some(parent) = parent_id {
        if store.get_agency(parent).await?.is_none() {
            return Err(ProvisionError::Unresolved {
                field: "parent_id",
                message: format!("no agency `{parent}`"),
            });
        }
    }
    Ok(store
        .create_agency(NewAgency {
            slug: slug.to_owned(),
            name: name.to_owned(),
            parent_id: parent_id.map(str::to_owned),
        })
        .await?)
}

/// The default agency, created (with its `everyone` group allowed every
/// model) when missing.
pub async fn ensure_default_agency(store: &dyn Store) -> Result<Agency, ProvisionError> {
    if let Some(agency) = store.get_agency_by_slug(DEFAULT_AGENCY).await? {
        return Ok(agency);
    }
    let agency = match create_agency(store, DEFAULT_AGENCY, "Default agency", None).await {
        Ok(agency) => agency,
        // Another replica created it at the same moment.
        Err(ProvisionError::Conflict(_)) => store
            .get_agency_by_slug(DEFAULT_AGENCY)
            .await?
            .ok_or(StoreError::NotFound { what: "agency" })?,
        Err(other) => return Err(other),
    };
    match store.create_group(&agency.id, DEFAULT_GROUP, None).await {
        Ok(group) => {
            store
                .set_group_models(&agency.id, &group.id, &["*".to_owned()])
                .await?;
        }
        Err(StoreError::Conflict(_)) => {}
        Err(other) => return Err(other.into()),
    }
    Ok(agency)
}

/// What a new person needs.
#[derive(Debug, Clone)]
pub struct PersonRequest {
    pub agency_id: String,
    pub email: String,
    pub display_name: String,
    /// `person` or `service`.
    pub kind: String,
    /// `active` or `pending`.
    pub status: String,
    pub external_id: Option<String>,
    /// Checked against the policy, then hashed; `None` for SSO-only
    /// people and service accounts.
    pub password: Option<String>,
}

/// Creates a person after checking every field and the password policy.
pub async fn create_person(store: &dyn Store, request: PersonRequest) -> Result<Person, ProvisionError> {
    let email = normalize_email(&request.email)?;
    check_name("display_name", &request.display_name)?;
    if !matches!(request.kind.as_str(), "person" | "service") {
        return Err(invalid("kind", "use `person` or `service`"));
    }
    if !matches!(request.status.as_str(), "active" | "pending" | "disabled") {
        return Err(invalid("status", "use `active`, `pending` or `disabled`"));
    }
    let password_hash = match &request.password {
        Some(_) if request.kind == "service" => {
            return Err(invalid(
                "password",
                "service accounts sign in with keys, not passwords",
            ))
        }
        Some(password) => {
            password::check_policy(password, &email, &request.display_name)?;
            Some(hash_password(password)?)
        }
        None => None,
    };
    Ok(store
        .create_person(NewPerson {
            agency_id: request.agency_id,
            email,
            display_name: request.display_name.trim().to_owned(),
            kind: request.kind,
            status: request.status,
            external_id: request.external_id,
            password_hash,
        })
        .await?)
}

pub fn hash_password(password: &str) -> Result<String, ProvisionError> {
    password::hash(password).map_err(|error| ProvisionError::Store(StoreError::Invalid(error.to_string())))
}

/// Creates a platform administrator with a password (`civitas admin create`).
pub async fn create_admin(
    store: &dyn Store,
    agency: &Agency,
    email: &str,
    display_name: &str,
    password: &str,
) -> Result<Person, ProvisionError> {
    let person = create_person(
        store,
        PersonRequest {
            agency_id: agency.id.clone(),
            email: email.to_owned(),
            display_name: display_name.to_owned(),
            kind: "person".to_owned(),
            status: "active".to_owned(),
            external_id: None,
            password: Some(password.to_owned()),
        },
    )
    .await?;
    store
        .set_roles(&person.id, &agency.id, &[Role::PlatformAdmin.as_str().to_owned()])
        .await?;
    // In the default agency the first administrator joins the group that
    // may use every model, so the workspace answers them at once.
    if let Some(everyone) = store
        .list_groups(&agency.id)
        .await?
        .into_iter()
        .find(|group| group.name == DEFAULT_GROUP)
    {
        store
            .set_memberships(&agency.id, &person.id, &[everyone.id])
            .await?;
    }
    Ok(person)
}

/// Makes the bootstrap secret an ordinary platform-admin key, owned by a
/// service account of the default agency. Idempotent.
pub async fn ensure_bootstrap_key(store: &dyn Store, bootstrap_secret: &str) -> Result<(), ProvisionError> {
    let hash = secret::hash(bootstrap_secret);
    if store.find_api_key(&hash).await?.is_some() {
        return Ok(());
    }
    let agency = ensure_default_agency(store).await?;
    let account = match store.get_person_by_email(BOOTSTRAP_ACCOUNT).await? {
        Some(account) => account,
        None => {
            let created = store
                .create_person(NewPerson {
                    agency_id: agency.id.clone(),
                    email: BOOTSTRAP_ACCOUNT.to_owned(),
                    display_name: "Bootstrap key".to_owned(),
                    kind: "service".to_owned(),
                    status: "active".to_owned(),
                    external_id: None,
                    password_hash: None,
                })
                .await;
            match created {
                Ok(account) => account,
                Err(StoreError::Conflict(_)) => store
                    .get_person_by_email(BOOTSTRAP_ACCOUNT)
                    .await?
                    .ok_or(StoreError::NotFound { what: "person" })?,
                Err(other) => return Err(other.into()),
            }
        }
    };
    store
        .set_roles(
            &account.id,
            &account.agency_id,
            &[Role::PlatformAdmin.as_str().to_owned()],
        )
        .await?;
    let created = store
        .create_api_key(NewApiKey {
            secret_hash: hash,
            prefix: secret::display_prefix(bootstrap_secret),
            person_id: account.id.clone(),
            agency_id: account.agency_id.clone(),
            name: "bootstrap".to_owned(),
            kind: "service".to_owned(),
            models: None,
            ip_ranges: None,
            expires_at: None,
            created_by: account.id,
        })
        .await;
    match created {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

/// What a new key needs.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    pub owner: Person,
    pub name: String,
    /// `personal`, `service` or `short_lived`.
    pub kind: String,
    pub models: Option<Vec<String>>,
    pub ip_ranges: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: String,
}

/// Issues a SCIM provisioning token for `agency`: a key of kind `scim`,
/// owned by the agency's provisioning service account (created on first
/// use), accepted only on the SCIM routes.
pub async fn create_scim_key(
    store: &dyn Store,
    agency: &Agency,
    created_by: &str,
) -> Result<(ApiKey, String), ProvisionError> {
    let email = format!("scim@{}.civitas.invalid", agency.slug);
    let account = match store.get_person_by_email(&email).await? {
        Some(account) => account,
        None => {
            store
                .create_person(NewPerson {
                    agency_id: agency.id.clone(),
                    email,
                    display_name: "SCIM provisioning".to_owned(),
                    kind: "service".to_owned(),
                    status: "active".to_owned(),
                    external_id: None,
                    password_hash: None,
                })
                .await?
        }
    };
    let secret_value = secret::new_api_key();
    let key = store
        .create_api_key(NewApiKey {
            secret_hash: secret::hash(&secret_value),
            prefix: secret::display_prefix(&secret_value),
            person_id: account.id,
            agency_id: agency.id.clone(),
            name: "scim".to_owned(),
            kind: "scim".to_owned(),
            models: Some(Vec::new()),
            ip_ranges: None,
            expires_at: None,
            created_by: created_by.to_owned(),
        })
        .await?;
    Ok((key, secret_value))
}

/// Longest life of a `short_lived` key.
pub const SHORT_LIVED_MAX_HOURS: i64 = 24;

/// Creates a key; returns it with its secret, which is never stored.
pub async fn create_key(store: &dyn Store, request: KeyRequest) -> Result<(ApiKey, String), ProvisionError> {
    check_name("name", &request.name)?;
    let now = Utc::now();
    match request.kind.as_str() {
        "personal" | "service" => {}
        "short_lived" => match request.expires_at {
            Some(at) if at <= now + chrono::Duration::hours(SHORT_LIVED_MAX_HOURS) => {}
            _ => {
                return Err(invalid(
                    "expires_at",
                    format!("a short_lived key must expire within {SHORT_LIVED_MAX_HOURS} hours"),
                ))
            }
        },
        _ => return Err(invalid("kind", "use `personal`, `service` or `short_lived`")),
    }
    if request.kind == "service" && request.owner.kind != "service" {
        return Err(invalid("kind", "service keys belong to service accounts"));
    }
    if request.owner.status != "active" {
        return Err(invalid(
            "person_id",
            "keys can only be created for active accounts",
        ));
    }
    if request.expires_at.is_some_and(|at| at <= now) {
        return Err(invalid("expires_at", "the expiry is in the past"));
    }
    if let Some(models) = &request.models {
        if models.is_empty() || models.iter().any(|m| m.trim().is_empty() || m.len() > 200) {
            return Err(invalid(
                "models",
                "list one or more model names, or leave it out for all",
            ));
        }
    }
    if let Some(ranges) = &request.ip_ranges {
        if ranges.is_empty() {
            return Err(invalid(
                "ip_ranges",
                "list one or more ranges, or leave it out for any address",
            ));
        }
        check_ip_ranges(ranges)?;
    }
    let secret_value = secret::new_api_key();
    let key = store
        .create_api_key(NewApiKey {
            secret_hash: secret::hash(&secret_value),
            prefix: secret::display_prefix(&secret_value),
            person_id: request.owner.id.clone(),
            agency_id: request.owner.agency_id.clone(),
            name: request.name.trim().to_owned(),
            kind: request.kind,
            models: request.models,
            ip_ranges: request.ip_ranges,
            expires_at: request.expires_at,
            created_by: request.created_by,
        })
        .await?;
    Ok((key, secret_value))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use civitas_store::IdentityStore as _;

    #[test]
    fn emails_slugs_and_ranges_are_checked() {
        assert_eq!(
            normalize_email("  Jeanne.Dupont@Interieur.Gouv.FR ").unwrap(),
            "jeanne.dupont@interieur.gouv.fr"
        );
        for bad in ["", "nobody", "a@b", "a b@c.gov", "@c.gov", "a@.gov", "a@b.gov."] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        assert!(check_slug("dinum-etalab").is_ok());
        for bad in ["A", "-x", "x-", "has space", "é-t", ""] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
        let ranges = vec![
            "10.0.0.0/8".to_owned(),
            "2001:db8::/32".to_owned(),
            "192.0.2.7".to_owned(),
        ];
        check_ip_ranges(&ranges).unwrap();
        assert!(check_ip_ranges(&["10.0.0.0/33".to_owned()]).is_err());
        assert!(address_allowed(&ranges, "10.1.2.3".parse().unwrap()));
        assert!(address_allowed(&ranges, "::ffff:10.1.2.3".parse().unwrap()));
        assert!(address_allowed(&ranges, "192.0.2.7".parse().unwrap()));
        assert!(!address_allowed(&ranges, "192.0.2.8".parse().unwrap()));
        assert!(address_allowed(&ranges, "2001:db8::1".parse().unwrap()));
    }

    async fn store() -> (tempfile::TempDir, civitas_store_sqlite::SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store =
            civitas_store_sqlite::SqliteStore::open(&url, 2, civitas_store::crypt::Keyring::ephemeral())
                .await
                .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn bootstrap_is_idempotent_and_makes_a_platform_admin_key() {
        let (_dir, store) = store().await;
        ensure_bootstrap_key(&store, "sk-bootstrap-0123456789")
            .await
            .unwrap();
        ensure_bootstrap_key(&store, "sk-bootstrap-0123456789")
            .await
            .unwrap();
        let key = store
            .find_api_key(&secret::hash("sk-bootstrap-0123456789"))
            .await
            .unwrap()
            .unwrap();
        let grants = store.grants(&key.person_id).await.unwrap();
        assert_eq!(grants.roles[0].role, "platform-admin");
        let agency = store.get_agency_by_slug(DEFAULT_AGENCY).await.unwrap().unwrap();
        let groups = store.list_groups(&agency.id).await.unwrap();
        assert_eq!(groups[0].models, vec!["*".to_owned()]);
        assert_eq!(store.list_api_keys(&agency.id, None).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn keys_are_validated_and_their_secret_is_not_stored() {
        let (_dir, store) = store().await;
        let agency = ensure_default_agency(&store).await.unwrap();
        let owner = create_person(
            &store,
            PersonRequest {
                agency_id: agency.id.clone(),
                email: "Analyst@Example.gov".to_owned(),
                display_name: "Analyst".to_owned(),
                kind: "person".to_owned(),
                status: "active".to_owned(),
                external_id: None,
                password: Some("Vélo-rouge-sous-la-pluie".to_owned()),
            },
        )
        .await
        .unwrap();
        assert_eq!(owner.email, "analyst@example.gov");
        let request = |kind: &str, expires_at| KeyRequest {
            owner: owner.clone(),
            name: "notebook".to_owned(),
            kind: kind.to_owned(),
            models: None,
            ip_ranges: None,
            expires_at,
            created_by: owner.id.clone(),
        };
        let (key, secret_value) = create_key(&store, request("personal", None)).await.unwrap();
        assert!(secret_value.starts_with("civ_"));
        assert!(store
            .find_api_key(&secret::hash(&secret_value))
            .await
            .unwrap()
            .is_some());
        assert_eq!(key.prefix, secret_value[..8]);
        let refused = create_key(&store, request("service", None)).await.unwrap_err();
        assert!(
            matches!(refused, ProvisionError::Invalid { field: "kind", .. }),
            "{refused}"
        );
        let unbounded = create_key(&store, request("short_lived", None))
            .await
            .unwrap_err();
        assert!(matches!(
            unbounded,
            ProvisionError::Invalid {
                field: "expires_at",
                ..
            }
        ));
        let soon = Some(Utc::now() + chrono::Duration::hours(1));
        create_key(&store, request("short_lived", soon)).await.unwrap();
        let weak = create_person(
            &store,
            PersonRequest {
                agency_id: agency.id,
                email: "weak@example.gov".to_owned(),
                display_name: "Weak".to_owned(),
                kind: "person".to_owned(),
                status: "active".to_owned(),
                external_id: None,
                password: Some("Password2026!".to_owned()),
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(weak, ProvisionError::Password(PasswordRejected::Common)),
            "{weak}"
        );
    }
}

//! Who may do what in Civitas.
//!
//! - [`Role`]: the well-known roles, held per agency (and, through it, in
//!   the agencies below it).
//! - [`Principal`]: an authenticated caller — a person or service account,
//!   what their roles and groups allow, and the key or session used.
//! - [`policy`]: the one place where authorization is decided.
//! - [`secret`], [`password`], [`totp`]: API keys and session tokens,
//!   argon2id passwords with a policy, RFC 6238 second factors.
//! - [`oidc`]: PKCE and ID-token verification for single sign-on.
//! - [`provision`]: first-run set-up (default agency, bootstrap key,
//!   administrators) and key creation, shared by the server and the CLI.
//!
//! No HTTP here: the server maps [`policy::Denied`] to status codes.

pub mod oidc;
pub mod password;
pub mod policy;
pub mod provision;
pub mod secret;
pub mod totp;

use std::collections::BTreeSet;

use civitas_store::{ApiKey, Grants, Person};
use serde::Serialize;

/// The well-known roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, in every agency.
    PlatformAdmin,
    /// People, groups, roles, model access, limits and keys of an agency.
    AgencyAdmin,
    /// Which models the agency's groups may use.
    ModelManager,
    /// Limits and budgets.
    FinanceManager,
    /// API keys of the agency's people and service accounts.
    KeyAdmin,
    /// Reads usage and (later) the audit log; never content.
    Auditor,
    /// Uses the models their groups allow.
    Member,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::PlatformAdmin,
        Role::AgencyAdmin,
        Role::ModelManager,
        Role::FinanceManager,
        Role::KeyAdmin,
        Role::Auditor,
        Role::Member,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform-admin",
            Role::AgencyAdmin => "agency-admin",
            Role::ModelManager => "model-manager",
            Role::FinanceManager => "finance-manager",
            Role::KeyAdmin => "key-admin",
            Role::Auditor => "auditor",
            Role::Member => "member",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }
}

/// Which models a caller may use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelAccess {
    all: bool,
    names: BTreeSet<String>,
}

impl ModelAccess {
    pub fn everything() -> ModelAccess {
        ModelAccess {
            all: true,
            names: BTreeSet::new(),
        }
    }

    /// The union of lists in which `*` means every model.
    pub fn from_lists<'a>(lists: impl IntoIterator<Item = &'a [String]>) -> ModelAccess {
        let mut access = ModelAccess::default();
        for list in lists {
            for name in list {
                if name == "*" {
                    access.all = true;
                } else {
                    access.names.insert(name.clone());
                }
            }
        }
        access
    }

    pub fn allows(&self, model: &str) -> bool {
        self.all || self.names.contains(model)
    }

    /// Both allow it.
    pub fn intersect(&self, other: &ModelAccess) -> ModelAccess {
        match (self.all, other.all) {
            (true, _) => other.clone(),
            (_, true) => self.clone(),
            _ => ModelAccess {
                all: false,
                names: self.names.intersection(&other.names).cloned().collect(),
            },
        }
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    Key(Box<ApiKey>),
    /// A browser session (the SHA-256 of its cookie and its CSRF token).
    Session {
        id_hash: String,
        csrf_token: String,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub person: Person,
    pub grants: Grants,
    pub credential: Credential,
    /// Models this caller may use, key restrictions included.
    pub models: ModelAccess,
}

impl Principal {
    pub fn new(person: Person, grants: Grants, credential: Credential) -> Principal {
        let platform_admin = grants
            .roles
            .iter()
            .any(|grant| grant.role == Role::PlatformAdmin.as_str());
        let from_groups = if platform_admin {
            ModelAccess::everything()
        } else {
            ModelAccess::from_lists(grants.groups.iter().map(|group| group.models.as_slice()))
        };
        let models = match &credential {
            Credential::Key(key) => match &key.models {
                Some(list) => from_groups.intersect(&ModelAccess::from_lists([list.as_slice()])),
                None => from_groups,
            },
            Credential::Session { .. } => from_groups,
        };
        Principal {
            person,
            grants,
            credential,
            models,
        }
    }

    pub fn id(&self) -> &str {
        &self.person.id
    }

    pub fn agency_id(&self) -> &str {
        &self.person.agency_id
    }

    pub fn key(&self) -> Option<&ApiKey> {
        match &self.credential {
            Credential::Key(key) => Some(key.as_ref()),
            Credential::Session { .. } => None,
        }
    }

    pub fn is_platform_admin(&self) -> bool {
        self.holds_anywhere(&[Role::PlatformAdmin])
    }

    /// Holds one of `roles` in some agency.
    pub fn holds_anywhere(&self, roles: &[Role]) -> bool {
        self.grants
            .roles
            .iter()
            .any(|grant| Role::parse(&grant.role).is_some_and(|role| roles.contains(&role)))
    }

    /// The scopes whose limits apply to this caller's model requests.
    pub fn limit_scopes(&self) -> Vec<String> {
        let mut scopes = vec![
            format!("agency:{}", self.person.agency_id),
            format!("person:{}", self.person.id),
        ];
        scopes.extend(
            self.grants
                .groups
                .iter()
                .map(|group| format!("group:{}", group.id)),
        );
        if let Some(key) = self.key() {
            scopes.push(format!("key:{}", key.id));
        }
        scopes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn model_access_unions_groups_and_narrows_by_key() {
        let groups = ModelAccess::from_lists([list(&["a", "b"]).as_slice(), list(&["c"]).as_slice()]);
        assert!(groups.allows("a") && groups.allows("c") && !groups.allows("d"));
        let key = ModelAccess::from_lists([list(&["b", "d"]).as_slice()]);
        let both = groups.intersect(&key);
        assert!(both.allows("b") && !both.allows("a") && !both.allows("d"));
        let star = ModelAccess::from_lists([list(&["*"]).as_slice()]);
        assert!(star.allows("anything"));
        assert_eq!(star.intersect(&key), key);
        assert!(!ModelAccess::default().allows("a"));
    }

    #[test]
    fn roles_round_trip_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}

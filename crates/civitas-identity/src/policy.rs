//! The one place where authorization is decided.
//!
//! A role held in an agency applies there and in every agency below it.
//! `platform-admin` applies everywhere. A caller who can see an agency
//! (it is their own, or they hold a role in it or above it) but lacks the
//! role gets [`Denied::Forbidden`]; anyone else gets [`Denied::NotFound`],
//! so that the existence of other agencies' records never leaks.

use civitas_store::{ApiKey, Collection};

use crate::{Principal, Role};

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Answered exactly like a record that does not exist.
    NotFound,
    /// The caller sees the agency but lacks the role.
    Forbidden,
}

use Role::{AgencyAdmin, Auditor, FinanceManager, KeyAdmin, ModelManager};

/// Read an agency's settings, groups and people (never content).
pub const AGENCY_READERS: &[Role] = &[AgencyAdmin, ModelManager, FinanceManager, KeyAdmin, Auditor];
/// Create and change people, groups, memberships and roles.
pub const PEOPLE_MANAGERS: &[Role] = &[AgencyAdmin];
/// Decide which models groups may use.
pub const MODEL_MANAGERS: &[Role] = &[AgencyAdmin, ModelManager];
/// Set limits and budgets.
pub const LIMIT_MANAGERS: &[Role] = &[AgencyAdmin, FinanceManager];
/// Read limits, budgets and the agency's usage.
pub const USAGE_READERS: &[Role] = &[AgencyAdmin, FinanceManager, Auditor];
/// Read the agency's audit log (metadata, never content).
pub const AUDIT_READERS: &[Role] = &[Auditor];
/// Set retention schedules, rotate the agency's data key, set clearances,
/// answer access and erasure requests.
pub const RECORDS_MANAGERS: &[Role] = &[AgencyAdmin];
/// Place, list and release legal holds.
pub const LEGAL_HOLD_MANAGERS: &[Role] = &[AgencyAdmin, Auditor];
/// Ask for break-glass access to someone's conversations (and read under
/// it once open).
pub const BREAK_GLASS_REQUESTERS: &[Role] = &[AgencyAdmin];
/// See and decide the agency's break-glass requests (never by the one who
/// asked).
pub const BREAK_GLASS_APPROVERS: &[Role] = &[AgencyAdmin, Auditor];
/// Create and revoke other people's keys.
pub const KEY_MANAGERS: &[Role] = &[AgencyAdmin, KeyAdmin];
/// List the agency's keys (never their secrets).
pub const KEY_READERS: &[Role] = &[AgencyAdmin, KeyAdmin, Auditor];

/// May `principal` act with one of `roles` on the agency whose chain
/// (itself, then its ancestors, as `IdentityStore::agency_ancestors`
/// returns) is `chain`?
pub fn authorize_agency(principal: &Principal, chain: &[String], roles: &[Role]) -> Result<(), Denied> {
    if principal.is_platform_admin() {
        return Ok(());
    }
    let in_chain = |agency_id: &String| chain.contains(agency_id);
    let holds = principal.grants.roles.iter().any(|grant| {
        in_chain(&grant.agency_id) && Role::parse(&grant.role).is_some_and(|role| roles.contains(&role))
    });
    if holds {
        return Ok(());
    }
    let sees = chain
        .first()
        .is_some_and(|target| target == principal.agency_id())
        || principal
            .grants
            .roles
            .iter()
            .any(|grant| in_chain(&grant.agency_id));
    Err(if sees { Denied::Forbidden } else { Denied::NotFound })
}

/// Only a platform administrator creates agencies and grants
/// `platform-admin`.
pub fn authorize_platform(principal: &Principal) -> Result<(), Denied> {
    if principal.is_platform_admin() {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

/// Roles `principal` may grant: any but `platform-admin`, which only a
/// platform administrator grants.
pub fn may_grant(principal: &Principal, role: Role) -> bool {
    role != Role::PlatformAdmin || principal.is_platform_admin()
}

/// Who manages an agency's own collections (create, share, delete).
pub const KNOWLEDGE_MANAGERS: &[Role] = &[AgencyAdmin];

/// What a principal may do with a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CollectionAccess {
    /// Search it and read its passages.
    Read,
    /// Also add and delete documents, rename, share.
    Write,
}

/// A collection's access for `principal` (`None`: it does not exist for
/// them). Its owner (the person, the members of the owning group) and
/// groups it is shared with for writing may write; groups it is shared
/// with for reading, and everyone in the owning agency for an agency's
/// collection, may read; the agency's knowledge managers manage the
/// agency's collections. Administrators get nothing of a person's or a
/// group's collection by their role: that is content. Classification is
/// decided on top of this, by the caller's clearance.
pub fn collection_access(principal: &Principal, collection: &Collection) -> Option<CollectionAccess> {
    let in_group = |group_id: &str| principal.grants.groups.iter().any(|group| group.id == group_id);
    let mut access = None;
    let mut grant = |level: CollectionAccess| access = access.max(Some(level));
    match collection.owner_kind.as_str() {
        "person" if collection.owner_id == principal.id() => grant(CollectionAccess::Write),
        "group" if in_group(&collection.owner_id) => grant(CollectionAccess::Write),
        "agency" => {
            if principal.agency_id() == collection.agency_id {
                grant(CollectionAccess::Read);
            }
            if authorize_agency(
                principal,
                std::slice::from_ref(&collection.agency_id),
                KNOWLEDGE_MANAGERS,
            )
            .is_ok()
            {
                grant(CollectionAccess::Write);
            }
        }
        _ => {}
    }
    for share in &collection.shares {
        if in_group(&share.group_id) {
            grant(if share.access == "write" {
                CollectionAccess::Write
            } else {
                CollectionAccess::Read
            });
        }
    }
    access
}

/// A person may always revoke their own keys.
pub fn owns_key(principal: &Principal, key: &ApiKey) -> bool {
    key.person_id == principal.id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Credential;
    use civitas_store::{Grants, Person, RoleGrant};

    fn principal(home: &str, roles: &[(&str, Role)]) -> Principal {
        let person = Person {
            id: "p".to_owned(),
            agency_id: home.to_owned(),
            email: "p@example.gov".to_owned(),
            display_name: "P".to_owned(),
            kind: "person".to_owned(),
            status: "active".to_owned(),
            external_id: None,
            clearance: None,
            created_at: chrono::Utc::now(),
        };
        let grants = Grants {
            roles: roles
                .iter()
                .map(|(agency, role)| RoleGrant {
                    agency_id: (*agency).to_owned(),
                    role: role.as_str().to_owned(),
                })
                .collect(),
            groups: Vec::new(),
        };
        Principal::new(
            person,
            grants,
            Credential::Session {
                id_hash: String::new(),
                csrf_token: String::new(),
            },
        )
    }

    fn chain(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    fn collection(owner_kind: &str, owner_id: &str, shares: &[(&str, &str)]) -> Collection {
        Collection {
            id: 1,
            agency_id: "home".to_owned(),
            owner_kind: owner_kind.to_owned(),
            owner_id: owner_id.to_owned(),
            name: "c".to_owned(),
            description: None,
            classification: "unclassified".to_owned(),
            created_by: "p".to_owned(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            documents: 0,
            shares: shares
                .iter()
                .map(|(group_id, access)| civitas_store::CollectionShare {
                    group_id: (*group_id).to_owned(),
                    access: (*access).to_owned(),
                })
                .collect(),
        }
    }

    fn in_groups(mut principal: Principal, groups: &[&str]) -> Principal {
        for id in groups {
            principal.grants.groups.push(civitas_store::Group {
                id: (*id).to_owned(),
                agency_id: "home".to_owned(),
                name: (*id).to_owned(),
                external_id: None,
                models: Vec::new(),
                created_at: chrono::Utc::now(),
            });
        }
        principal
    }

    #[test]
    fn collections_are_read_by_their_agency_and_written_by_owners_and_writers() {
        use CollectionAccess::{Read, Write};
        let member = principal("home", &[("home", Role::Member)]);
        let admin = principal("home", &[("home", Role::AgencyAdmin)]);
        let outsider = principal("elsewhere", &[("elsewhere", Role::AgencyAdmin)]);
        let agency = collection("agency", "", &[]);
        assert_eq!(collection_access(&member, &agency), Some(Read));
        assert_eq!(collection_access(&admin, &agency), Some(Write));
        assert_eq!(collection_access(&outsider, &agency), None);
        // A person's collection is theirs alone; an administrator's role
        // gives no access to it.
        let own = collection("person", "p", &[]);
        assert_eq!(collection_access(&member, &own), Some(Write));
        let others = collection("person", "someone-else", &[]);
        assert_eq!(collection_access(&admin, &others), None);
        // Groups: the owning group writes; shares give what they say.
        let team = collection(
            "group",
            "g-team",
            &[("g-readers", "read"), ("g-writers", "write")],
        );
        assert_eq!(
            collection_access(&in_groups(member.clone(), &["g-team"]), &team),
            Some(Write)
        );
        assert_eq!(
            collection_access(&in_groups(member.clone(), &["g-readers"]), &team),
            Some(Read)
        );
        assert_eq!(
            collection_access(&in_groups(member.clone(), &["g-writers", "g-readers"]), &team),
            Some(Write)
        );
        assert_eq!(collection_access(&member, &team), None);
        assert_eq!(collection_access(&admin, &team), None);
    }

    #[test]
    fn roles_apply_down_the_hierarchy_and_nowhere_else() {
        let ministry_admin = principal("ministry", &[("ministry", Role::AgencyAdmin)]);
        assert_eq!(
            authorize_agency(&ministry_admin, &chain(&["ministry"]), PEOPLE_MANAGERS),
            Ok(())
        );
        assert_eq!(
            authorize_agency(
                &ministry_admin,
                &chain(&["directorate", "ministry"]),
                PEOPLE_MANAGERS
            ),
            Ok(())
        );
        assert_eq!(
            authorize_agency(&ministry_admin, &chain(&["elsewhere"]), PEOPLE_MANAGERS),
            Err(Denied::NotFound)
        );
        let directorate_admin = principal("directorate", &[("directorate", Role::AgencyAdmin)]);
        assert_eq!(
            authorize_agency(&directorate_admin, &chain(&["ministry"]), PEOPLE_MANAGERS),
            Err(Denied::NotFound)
        );
    }

    #[test]
    fn own_agency_without_the_role_is_forbidden_not_hidden() {
        let member = principal("home", &[("home", Role::Member)]);
        assert_eq!(
            authorize_agency(&member, &chain(&["home"]), AGENCY_READERS),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            authorize_agency(&member, &chain(&["other"]), AGENCY_READERS),
            Err(Denied::NotFound)
        );
        let auditor = principal("home", &[("home", Role::Auditor)]);
        assert_eq!(
            authorize_agency(&auditor, &chain(&["home"]), USAGE_READERS),
            Ok(())
        );
        assert_eq!(
            authorize_agency(&auditor, &chain(&["home"]), LIMIT_MANAGERS),
            Err(Denied::Forbidden)
        );
        assert!(!may_grant(&auditor, Role::PlatformAdmin));
        assert_eq!(authorize_platform(&auditor), Err(Denied::Forbidden));
        let platform = principal("home", &[("home", Role::PlatformAdmin)]);
        assert_eq!(
            authorize_agency(&platform, &chain(&["other"]), PEOPLE_MANAGERS),
            Ok(())
        );
        assert!(may_grant(&platform, Role::PlatformAdmin));
    }
}

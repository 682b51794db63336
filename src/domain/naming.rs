//! Azure names derived from who asks, never random. The same resource asking for the same grant
//! always yields the same name, so a retry after a crash finds what the first attempt created
//! instead of creating a second copy; and the name is the operator's proof of ownership: an Azure
//! object belongs to a resource only when its name is the one derived from *that resource's*
//! identity and the object's own properties as Azure returns them. Nothing a tenant can write
//! (status, annotations) enters that proof. Pure, no I/O.
//!
//! Names are UUID version 5 (SHA-1, RFC 9562) in the namespace [`NAMESPACE`]
//! (`9e4f6a8e-3c1b-5d2a-8f7e-2b6c1d0a4e57`, fixed forever), over a UTF-8 input string, every part
//! lower-cased:
//!
//! - role assignment: `roleAssignment/v2\n{instance}\n{namespace}\n{name}\n{scope}\n{roleGuid}\n{principalId}`,
//!   the scope in canonical ARM form with its leading slash and no trailing slash;
//! - custom role definition: `roleDefinition/v2\n{instance}\n{namespace}\n{name}` (definition
//!   GUIDs are unique in the tenant; moving the role to another subscription updates it; two
//!   namespaces never derive the same definition, and a role name another one holds is refused as
//!   taken, never updated).
//!
//! `{instance}` is the operator instance (`--instance-id`; by default the UID of the cluster's
//! `kube-system` namespace), so two clusters managing one subscription never claim each other's
//! objects. Names of earlier versions (`legacy_*`, without instance or resource) are recognised
//! only to report them: anyone asking for the same grant would derive them, so they prove nothing.
//!
//! Anyone can recompute a name, e.g. in Python:
//! `uuid.uuid5(uuid.UUID('9e4f6a8e-3c1b-5d2a-8f7e-2b6c1d0a4e57'), 'roleAssignment/v2\n' + ...)`.

use std::fmt;

use uuid::Uuid;

use super::grant::Grant;

/// The namespace UUID of every name this operator derives.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x9e4f6a8e_3c1b_5d2a_8f7e_2b6c1d0a4e57);

/// Who asks: the operator instance and the custom resource (namespace and name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub instance: String,
    pub namespace: String,
    pub name: String,
}

impl Owner {
    pub fn new(instance: &str, namespace: &str, name: &str) -> Owner {
        Owner { instance: instance.into(), namespace: namespace.into(), name: name.into() }
    }

    fn key(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.instance.trim().to_lowercase(),
            self.namespace.trim().to_lowercase(),
            self.name.trim().to_lowercase()
        )
    }

    /// The role assignment name this owner derives for `grant`.
    pub fn assignment_name(&self, grant: &Grant) -> Uuid {
        let input = format!(
            "roleAssignment/v2\n{}\n{}\n{}\n{}",
            self.key(),
            grant.scope.key(),
            grant.role.hyphenated(),
            grant.principal_id.trim().to_ascii_lowercase()
        );
        Uuid::new_v5(&NAMESPACE, input.as_bytes())
    }

    /// The custom role definition GUID this owner derives.
    pub fn definition_name(&self) -> Uuid {
        Uuid::new_v5(&NAMESPACE, format!("roleDefinition/v2\n{}", self.key()).as_bytes())
    }

    /// The tag written at the end of an Azure object's description, naming who asked for it
    /// (the name, not the tag, is the proof; the tag says which identity to check it against).
    pub fn tag(&self) -> String {
        format!("[{TAG_PREFIX} {} {}/{}]", self.instance, self.namespace, self.name)
    }

    /// The tag of a grant this owner made and handed over to `heir` (another resource of the
    /// same operator instance that wants the same grant): only the heir may take it over once
    /// this owner is gone. A grant left without one (`deletionPolicy: Orphan`, a resource deleted
    /// unmanaged or by force) belongs to nobody.
    pub fn handed_over_tag(&self, heir: &Owner) -> String {
        format!(
            "[{TAG_PREFIX} {} {}/{} for {}/{}]",
            self.instance, self.namespace, self.name, heir.namespace, heir.name
        )
    }

    /// The owner a description's last tag names, if any.
    pub fn from_tag(description: &str) -> Option<Owner> {
        Tag::parse(description).map(|t| t.owner)
    }
}

/// What the last tag of a description says: who made the object, and who it was handed over to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub owner: Owner,
    pub heir: Option<Owner>,
}

impl Tag {
    /// The last tag of ours in `description` (a tenant's text before it cannot forge it: the
    /// operator always writes its tag last).
    pub fn parse(description: &str) -> Option<Tag> {
        let start = description.rfind(&format!("[{TAG_PREFIX} "))?;
        let inner = description[start + TAG_PREFIX.len() + 2..].strip_suffix(']')?;
        let mut words = inner.split(' ');
        let (instance, resource) = (words.next()?, words.next()?);
        let heir = match (words.next(), words.next(), words.next()) {
            (None, ..) => None,
            (Some("for"), Some(heir), None) => Some(heir),
            _ => return None,
        };
        let resource_of = |r: &str| {
            let (namespace, name) = r.split_once('/')?;
            (!instance.is_empty() && !namespace.is_empty() && !name.is_empty() && !name.contains('/'))
                .then(|| Owner::new(instance, namespace, name))
        };
        let owner = resource_of(resource)?;
        let heir = match heir {
            None => None,
            Some(h) => Some(resource_of(h)?),
        };
        Some(Tag { owner, heir })
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

const TAG_PREFIX: &str = "managed by iothub-access-operator";

/// A description with `owner`'s tag appended (and any earlier tag of ours replaced).
pub fn tagged_description(description: Option<&str>, owner: &Owner) -> String {
    with_tag(description, &owner.tag())
}

/// `description` with its last tag of ours replaced by `tag`.
pub fn with_tag(description: Option<&str>, tag: &str) -> String {
    let base = description.unwrap_or_default();
    let base = match base.rfind(&format!("[{TAG_PREFIX} ")) {
        Some(i) if base.ends_with(']') => base[..i].trim_end(),
        _ => base.trim_end(),
    };
    if base.is_empty() { tag.to_string() } else { format!("{base} {tag}") }
}

/// The role assignment name of earlier versions: (scope, role, principal) only.
pub fn legacy_assignment_name(grant: &Grant) -> Uuid {
    let input = format!(
        "roleAssignment\n{}\n{}\n{}",
        grant.scope.key(),
        grant.role.hyphenated(),
        grant.principal_id.trim().to_ascii_lowercase()
    );
    Uuid::new_v5(&NAMESPACE, input.as_bytes())
}

/// The custom role definition GUID of earlier versions: (subscription, role name) only.
pub fn legacy_definition_name(subscription_id: &str, role_name: &str) -> Uuid {
    let input =
        format!("roleDefinition\n{}\n{}", subscription_id.trim().to_ascii_lowercase(), role_name.trim().to_lowercase());
    Uuid::new_v5(&NAMESPACE, input.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Scope;

    fn scope() -> Scope {
        Scope::parse("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-iot").unwrap()
    }

    #[test]
    fn names_are_stable_case_insensitive_and_pinned() {
        let upper = Scope::parse("/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000001/RESOURCEGROUPS/RG-IOT").unwrap();
        let role = Uuid::parse_str("b447c946-2db7-41ec-983d-d8bf3b1c77e3").unwrap();
        let me = Owner::new("cluster-1", "team-a", "reader");
        let a = me.assignment_name(&Grant::new(scope(), role, "AAAAAAAA-0000-0000-0000-000000000001"));
        assert_eq!(
            a,
            Owner::new("CLUSTER-1", "team-a", "reader").assignment_name(&Grant::new(
                upper,
                role,
                "aaaaaaaa-0000-0000-0000-000000000001"
            ))
        );
        assert_eq!(a.get_version_num(), 5);
        // Pinned: changing the derivation would make every existing object unprovable.
        let expected = Uuid::new_v5(
            &NAMESPACE,
            b"roleAssignment/v2\ncluster-1\nteam-a\nreader\n/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg-iot\nb447c946-2db7-41ec-983d-d8bf3b1c77e3\naaaaaaaa-0000-0000-0000-000000000001",
        );
        assert_eq!(a, expected);
        assert_eq!(NAMESPACE.to_string(), "9e4f6a8e-3c1b-5d2a-8f7e-2b6c1d0a4e57");
    }

    #[test]
    fn another_resource_namespace_or_cluster_derives_other_names() {
        let role = Uuid::parse_str("b447c946-2db7-41ec-983d-d8bf3b1c77e3").unwrap();
        let p = "aaaaaaaa-0000-0000-0000-000000000001";
        let me = Owner::new("c1", "team-a", "reader");
        let grant = Grant::new(scope(), role, p);
        let mine = me.assignment_name(&grant);
        for other in [
            Owner::new("c1", "team-b", "reader"),
            Owner::new("c1", "team-a", "copy"),
            Owner::new("c2", "team-a", "reader"),
        ] {
            assert_ne!(mine, other.assignment_name(&grant), "{other:?}");
            assert_ne!(me.definition_name(), other.definition_name(), "{other:?}");
        }
        assert_ne!(mine, legacy_assignment_name(&grant));
    }

    #[test]
    fn tags_round_trip_and_only_the_last_one_counts() {
        let me = Owner::new("c1", "team-a", "reader");
        let d = tagged_description(Some("telemetry reader"), &me);
        assert_eq!(d, "telemetry reader [managed by iothub-access-operator c1 team-a/reader]");
        assert_eq!(Owner::from_tag(&d), Some(me.clone()));
        assert_eq!(tagged_description(Some(&d), &me), d, "re-tagging replaces, never stacks");
        // A tenant can write anything into spec.description; our tag always comes last.
        let forged = tagged_description(Some("[managed by iothub-access-operator c1 team-b/victim]"), &me);
        assert_eq!(Owner::from_tag(&forged), Some(me));
        assert_eq!(Owner::from_tag("no tag"), None);
    }

    #[test]
    fn a_hand_over_names_the_heir_and_only_the_last_tag_counts() {
        let (me, heir) = (Owner::new("c1", "team-a", "reader"), Owner::new("c1", "team-b", "copy"));
        let d = with_tag(Some(&tagged_description(Some("telemetry"), &me)), &me.handed_over_tag(&heir));
        assert_eq!(d, "telemetry [managed by iothub-access-operator c1 team-a/reader for team-b/copy]");
        assert_eq!(Tag::parse(&d), Some(Tag { owner: me.clone(), heir: Some(heir) }));
        assert_eq!(Tag::parse(&me.tag()), Some(Tag { owner: me, heir: None }));
        for garbled in [
            "[managed by iothub-access-operator c1 team-a/reader for]",
            "[managed by iothub-access-operator c1 team-a/reader to team-b/copy]",
            "[managed by iothub-access-operator c1 team-a/reader for team-b/copy extra]",
        ] {
            assert_eq!(Tag::parse(garbled), None, "{garbled}");
        }
    }
}

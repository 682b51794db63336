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

use super::ids::Scope;

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

    /// The role assignment name this owner derives for (scope, role definition, principal).
    pub fn assignment_name(&self, scope: &Scope, role_definition: Uuid, principal_id: &str) -> Uuid {
        let input = format!(
            "roleAssignment/v2\n{}\n{}\n{}\n{}",
            self.key(),
            scope.key(),
            role_definition.hyphenated(),
            principal_id.trim().to_ascii_lowercase()
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

    /// The owner a description's last tag names, if any.
    pub fn from_tag(description: &str) -> Option<Owner> {
        let start = description.rfind(&format!("[{TAG_PREFIX} "))?;
        let inner = description[start + TAG_PREFIX.len() + 2..].strip_suffix(']')?;
        let (instance, resource) = inner.split_once(' ')?;
        let (namespace, name) = resource.split_once('/')?;
        (!instance.is_empty() && !namespace.is_empty() && !name.is_empty() && !name.contains([' ', '/']))
            .then(|| Owner::new(instance, namespace, name))
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
    let base = description.unwrap_or_default();
    let base = match base.rfind(&format!("[{TAG_PREFIX} ")) {
        Some(i) if base.ends_with(']') => base[..i].trim_end(),
        _ => base.trim_end(),
    };
    if base.is_empty() { owner.tag() } else { format!("{base} {}", owner.tag()) }
}

/// The role assignment name of earlier versions: (scope, role, principal) only.
pub fn legacy_assignment_name(scope: &Scope, role_definition: Uuid, principal_id: &str) -> Uuid {
    let input = format!(
        "roleAssignment\n{}\n{}\n{}",
        scope.key(),
        role_definition.hyphenated(),
        principal_id.trim().to_ascii_lowercase()
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

    fn scope() -> Scope {
        Scope::parse("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-iot").unwrap()
    }

    #[test]
    fn names_are_stable_case_insensitive_and_pinned() {
        let upper = Scope::parse("/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000001/RESOURCEGROUPS/RG-IOT").unwrap();
        let role = Uuid::parse_str("b447c946-2db7-41ec-983d-d8bf3b1c77e3").unwrap();
        let me = Owner::new("cluster-1", "team-a", "reader");
        let a = me.assignment_name(&scope(), role, "AAAAAAAA-0000-0000-0000-000000000001");
        assert_eq!(
            a,
            Owner::new("CLUSTER-1", "team-a", "reader").assignment_name(
                &upper,
                role,
                "aaaaaaaa-0000-0000-0000-000000000001"
            )
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
        let mine = me.assignment_name(&scope(), role, p);
        for other in [
            Owner::new("c1", "team-b", "reader"),
            Owner::new("c1", "team-a", "copy"),
            Owner::new("c2", "team-a", "reader"),
        ] {
            assert_ne!(mine, other.assignment_name(&scope(), role, p), "{other:?}");
            assert_ne!(me.definition_name(), other.definition_name(), "{other:?}");
        }
        assert_ne!(mine, legacy_assignment_name(&scope(), role, p));
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
}

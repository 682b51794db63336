//! Content-derived Azure names. The same desire always yields the same name, so a retry after a
//! crash finds what the first attempt created instead of creating a second copy, and the operator
//! can recognise what it created without any bookkeeping in Azure. Pure, no I/O.
//!
//! Both names are UUID version 5 (SHA-1, RFC 9562) in the namespace [`NAMESPACE`]
//! (`9e4f6a8e-3c1b-5d2a-8f7e-2b6c1d0a4e57`, itself fixed forever), over a UTF-8 input string:
//!
//! - role assignment: `roleAssignment\n{scope}\n{roleDefinitionGuid}\n{principalId}`, each part
//!   lower-cased, the scope in canonical ARM form with its leading slash and no trailing slash
//!   (e.g. `/subscriptions/…/resourcegroups/rg/providers/microsoft.devices/iothubs/hub-a`);
//! - custom role definition: `roleDefinition\n{subscriptionId}\n{roleName}`, each part
//!   lower-cased (Azure role names are unique per tenant regardless of case).
//!
//! Anyone can recompute a name from a manifest, e.g. in Python:
//! `uuid.uuid5(uuid.UUID('9e4f6a8e-3c1b-5d2a-8f7e-2b6c1d0a4e57'), 'roleAssignment\n' + ...)`.

use uuid::Uuid;

use super::ids::Scope;

/// The namespace UUID of every name this operator derives.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x9e4f6a8e_3c1b_5d2a_8f7e_2b6c1d0a4e57);

/// The role assignment name for (scope, role definition, principal).
pub fn role_assignment_name(scope: &Scope, role_definition: Uuid, principal_id: &str) -> Uuid {
    let input = format!(
        "roleAssignment\n{}\n{}\n{}",
        scope.key(),
        role_definition.hyphenated(),
        principal_id.trim().to_ascii_lowercase()
    );
    Uuid::new_v5(&NAMESPACE, input.as_bytes())
}

/// The custom role definition GUID for (subscription, role name).
pub fn role_definition_name(subscription_id: &str, role_name: &str) -> Uuid {
    let input =
        format!("roleDefinition\n{}\n{}", subscription_id.trim().to_ascii_lowercase(), role_name.trim().to_lowercase());
    Uuid::new_v5(&NAMESPACE, input.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_case_insensitive() {
        let scope = Scope::parse("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-iot").unwrap();
        let upper = Scope::parse("/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000001/RESOURCEGROUPS/RG-IOT").unwrap();
        let role = Uuid::parse_str("b447c946-2db7-41ec-983d-d8bf3b1c77e3").unwrap();
        let a = role_assignment_name(&scope, role, "AAAAAAAA-0000-0000-0000-000000000001");
        assert_eq!(a, role_assignment_name(&upper, role, "aaaaaaaa-0000-0000-0000-000000000001"));
        assert_eq!(a.get_version_num(), 5);
        // Pinned: changing the derivation would orphan every assignment already created.
        assert_eq!(
            a.to_string(),
            role_assignment_name(&scope, role, "aaaaaaaa-0000-0000-0000-000000000001").to_string()
        );
        let expected = Uuid::new_v5(
            &NAMESPACE,
            b"roleAssignment\n/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg-iot\nb447c946-2db7-41ec-983d-d8bf3b1c77e3\naaaaaaaa-0000-0000-0000-000000000001",
        );
        assert_eq!(a, expected);
        assert_ne!(a, role_assignment_name(&scope, role, "aaaaaaaa-0000-0000-0000-000000000002"));
    }

    #[test]
    fn role_definition_names_depend_on_subscription_and_name() {
        let a = role_definition_name("S1", "Device Registry Reader");
        assert_eq!(a, role_definition_name("s1", "device registry reader"));
        assert_ne!(a, role_definition_name("s2", "Device Registry Reader"));
        assert_eq!(NAMESPACE.to_string(), "9e4f6a8e-3c1b-5d2a-8f7e-2b6c1d0a4e57");
    }
}

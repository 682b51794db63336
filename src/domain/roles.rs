//! Role definitions as the operator reasons about them: permissions, the built-in roles it knows
//! (parsed from the verbatim docs JSON in `data/builtin-roles.json`), and the questions the
//! planner asks of a role ("which IoT Hub data actions does it grant?", "does it hand out SAS
//! keys through listkeys?"). Pure, no I/O.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::catalog::{self, LISTKEYS_ACTION};

/// One `permissions[]` entry of an Azure role definition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub not_actions: Vec<String>,
    #[serde(default)]
    pub data_actions: Vec<String>,
    #[serde(default)]
    pub not_data_actions: Vec<String>,
}

impl Permission {
    /// Same permission, comparing each list as a case-insensitive set (Azure keeps the order and
    /// casing it was given, neither of which changes what the role grants).
    pub fn equivalent(&self, other: &Permission) -> bool {
        fn set(v: &[String]) -> std::collections::BTreeSet<String> {
            v.iter().map(|s| s.to_ascii_lowercase()).collect()
        }
        set(&self.actions) == set(&other.actions)
            && set(&self.not_actions) == set(&other.not_actions)
            && set(&self.data_actions) == set(&other.data_actions)
            && set(&self.not_data_actions) == set(&other.not_data_actions)
    }

    pub fn grants_action(&self, action: &str) -> bool {
        self.actions.iter().any(|p| catalog::action_matches(p, action))
            && !self.not_actions.iter().any(|p| catalog::action_matches(p, action))
    }

    pub fn grants_data_action(&self, action: &str) -> bool {
        self.data_actions.iter().any(|p| catalog::action_matches(p, action))
            && !self.not_data_actions.iter().any(|p| catalog::action_matches(p, action))
    }
}

/// Built-in or custom, as Azure's `properties.type` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RoleType {
    BuiltInRole,
    CustomRole,
}

/// A role definition: what it is called and what it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleDefinition {
    /// The definition's GUID (its ARM `name`), lower-case.
    pub guid: Uuid,
    pub role_name: String,
    pub description: String,
    pub role_type: RoleType,
    pub permissions: Vec<Permission>,
    /// ARM ids, as Azure returns them.
    pub assignable_scopes: Vec<String>,
}

impl RoleDefinition {
    /// True when some permission grants the control-plane action (wildcards honoured).
    pub fn grants_action(&self, action: &str) -> bool {
        self.permissions.iter().any(|p| p.grants_action(action))
    }

    /// True when the role lets its holder read every shared access key of a hub
    /// (`Microsoft.Devices/iotHubs/listkeys/action`, e.g. Owner and Contributor through `*`).
    pub fn grants_listkeys(&self) -> bool {
        catalog::LISTKEYS_ACTIONS.iter().any(|a| self.grants_action(a))
    }

    /// May this role be granted through the operator? Only when it gives nothing an
    /// `IotHubCustomRole` could not: IoT Hub data actions (documented ones or their wildcards)
    /// and control-plane reads. `Err` says what it grants beyond that.
    pub fn grantable(&self) -> Result<(), String> {
        let mut beyond = Vec::new();
        for p in &self.permissions {
            for a in &p.actions {
                if !a.to_ascii_lowercase().ends_with("/read") {
                    beyond.push(format!("control-plane action '{a}'"));
                }
            }
            for a in &p.data_actions {
                if catalog::canonical_data_action(a).is_none() {
                    beyond.push(format!("data action '{a}'"));
                }
            }
        }
        if self.grants_listkeys() {
            beyond.push(format!("{LISTKEYS_ACTION} (every shared access key)"));
        }
        if beyond.is_empty() {
            return Ok(());
        }
        beyond.dedup();
        Err(format!(
            "role '{}' ({}) grants more than IoT Hub data access: {}",
            self.role_name,
            self.guid,
            beyond.join(", ")
        ))
    }

    /// The documented IoT Hub data actions this role grants, in catalog order.
    pub fn effective_data_actions(&self) -> Vec<&'static str> {
        catalog::DATA_ACTIONS
            .iter()
            .copied()
            .filter(|a| self.permissions.iter().any(|p| p.grants_data_action(a)))
            .collect()
    }

    /// True when the role grants at least one IoT Hub data action: its holder can use the hub's
    /// service APIs with an Entra ID token.
    pub fn grants_iothub_data_access(&self) -> bool {
        !self.effective_data_actions().is_empty()
    }
}

/// The built-in roles a spec can name in `role.builtIn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum BuiltInRole {
    /// IoT Hub Data Contributor: every IoT Hub data action.
    IoTHubDataContributor,
    /// IoT Hub Data Reader: read everything, receive file upload notifications.
    IoTHubDataReader,
    /// IoT Hub Registry Contributor: the device registry.
    IoTHubRegistryContributor,
    /// IoT Hub Twin Contributor: device and module twins.
    IoTHubTwinContributor,
    /// Reader: control-plane read only (no data actions).
    Reader,
}

impl BuiltInRole {
    pub const ALL: &'static [BuiltInRole] = &[
        BuiltInRole::IoTHubDataContributor,
        BuiltInRole::IoTHubDataReader,
        BuiltInRole::IoTHubRegistryContributor,
        BuiltInRole::IoTHubTwinContributor,
        BuiltInRole::Reader,
    ];

    /// Azure's display name of the role.
    pub fn role_name(self) -> &'static str {
        match self {
            BuiltInRole::IoTHubDataContributor => "IoT Hub Data Contributor",
            BuiltInRole::IoTHubDataReader => "IoT Hub Data Reader",
            BuiltInRole::IoTHubRegistryContributor => "IoT Hub Registry Contributor",
            BuiltInRole::IoTHubTwinContributor => "IoT Hub Twin Contributor",
            BuiltInRole::Reader => "Reader",
        }
    }

    /// The role's definition GUID (the same in every tenant and cloud).
    pub fn guid(self) -> Uuid {
        self.definition().guid
    }

    /// The full built-in definition.
    pub fn definition(self) -> &'static RoleDefinition {
        builtin_by_name(self.role_name()).unwrap_or_else(|| {
            // The table is compiled in and covered by a test; reaching this is a build defect.
            unreachable!("built-in role {} missing from data/builtin-roles.json", self.role_name())
        })
    }
}

#[derive(Deserialize)]
struct BuiltinFile {
    roles: Vec<BuiltinEntry>,
}

#[derive(Deserialize)]
struct BuiltinEntry {
    definition: BuiltinDefinition,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuiltinDefinition {
    name: Uuid,
    role_name: String,
    description: String,
    permissions: Vec<Permission>,
    assignable_scopes: Vec<String>,
}

/// Every built-in role the operator knows (the IoT Hub data roles, Reader, Owner, Contributor).
pub static BUILTIN_ROLES: LazyLock<Vec<RoleDefinition>> = LazyLock::new(|| {
    let file: BuiltinFile = match serde_json::from_str(include_str!("../../data/builtin-roles.json")) {
        Ok(f) => f,
        Err(e) => unreachable!("data/builtin-roles.json is compiled in and must parse: {e}"),
    };
    file.roles
        .into_iter()
        .map(|e| RoleDefinition {
            guid: e.definition.name,
            role_name: e.definition.role_name,
            description: e.definition.description,
            role_type: RoleType::BuiltInRole,
            permissions: e.definition.permissions,
            assignable_scopes: e.definition.assignable_scopes,
        })
        .collect()
});

/// Built-in roles that grant everything, or the right to grant anything: refused by name at
/// admission (`definitionId`) whatever Azure would say of them.
pub const PRIVILEGED_BUILTIN_ROLES: &[(&str, &str)] = &[
    ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"),
    ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
    ("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator"),
    ("f58310d9-a9f6-439a-9e8d-f62e7b41a168", "Role Based Access Control Administrator"),
];

/// A known built-in role by its GUID.
pub fn builtin_by_guid(guid: Uuid) -> Option<&'static RoleDefinition> {
    BUILTIN_ROLES.iter().find(|r| r.guid == guid)
}

/// A known built-in role by its display name (exact, as Azure spells it).
pub fn builtin_by_name(name: &str) -> Option<&'static RoleDefinition> {
    BUILTIN_ROLES.iter().find(|r| r.role_name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_guids_match_the_docs() {
        assert_eq!(BuiltInRole::IoTHubDataContributor.guid().to_string(), "4fc6c259-987e-4a07-842e-c321cc9d413f");
        assert_eq!(BuiltInRole::IoTHubDataReader.guid().to_string(), "b447c946-2db7-41ec-983d-d8bf3b1c77e3");
        assert_eq!(BuiltInRole::IoTHubRegistryContributor.guid().to_string(), "4ea46cd5-c1b2-4a8e-910b-273211f9ce47");
        assert_eq!(BuiltInRole::IoTHubTwinContributor.guid().to_string(), "494bdba2-168f-4f31-a0a1-191d2f7c028c");
        assert_eq!(BuiltInRole::Reader.guid().to_string(), "acdd72a7-3385-48ef-bd42-f606fba81ae7");
    }

    #[test]
    fn only_roles_within_iot_hub_data_access_are_grantable() {
        for r in BuiltInRole::ALL {
            assert_eq!(r.definition().grantable(), Ok(()), "{r:?}");
        }
        for name in ["Owner", "Contributor"] {
            let e = builtin_by_name(name).unwrap().grantable().unwrap_err();
            assert!(e.contains("control-plane action '*'") && e.contains("listkeys"), "{e}");
        }
        let custom = |actions: &[&str], data: &[&str]| RoleDefinition {
            guid: Uuid::nil(),
            role_name: "custom".into(),
            description: String::new(),
            role_type: RoleType::CustomRole,
            permissions: vec![Permission {
                actions: actions.iter().map(|s| s.to_string()).collect(),
                data_actions: data.iter().map(|s| s.to_string()).collect(),
                ..Permission::default()
            }],
            assignable_scopes: vec![],
        };
        assert!(custom(&["*/read"], &["Microsoft.Devices/IotHubs/*"]).grantable().is_ok());
        assert!(custom(&["Microsoft.Devices/IotHubs/write"], &[]).grantable().unwrap_err().contains("IotHubs/write"));
        assert!(custom(&["Microsoft.Authorization/*"], &[]).grantable().is_err());
        assert!(custom(&[], &["Microsoft.Storage/*"]).grantable().unwrap_err().contains("data action"));
        let per_key = custom(&["Microsoft.Devices/iotHubs/IOTHUBKEYS/listKeys/Action"], &[]);
        assert!(per_key.grants_listkeys(), "the per-policy listkeys, any casing");
        assert!(per_key.grantable().is_err());
    }

    #[test]
    fn owner_and_contributor_hand_out_keys_data_roles_do_not() {
        assert!(builtin_by_name("Owner").unwrap().grants_listkeys());
        assert!(builtin_by_name("Contributor").unwrap().grants_listkeys());
        for r in BuiltInRole::ALL {
            assert!(!r.definition().grants_listkeys(), "{r:?}");
        }
    }

    #[test]
    fn data_reader_reads_and_receives_file_notifications_only() {
        let eff = BuiltInRole::IoTHubDataReader.definition().effective_data_actions();
        assert!(eff.contains(&"Microsoft.Devices/IotHubs/devices/read"));
        assert!(eff.contains(&"Microsoft.Devices/IotHubs/fileUpload/notifications/action"));
        assert!(!eff.contains(&"Microsoft.Devices/IotHubs/devices/write"));
        assert!(!BuiltInRole::Reader.definition().grants_iothub_data_access());
        assert_eq!(BuiltInRole::IoTHubDataContributor.definition().effective_data_actions().len(), 19);
    }
}

//! The seed: the emulator's state in a serializable form (YAML or JSON, camelCase, every field
//! optional). Used to start the emulator, for persistence and for snapshots.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything the emulator knows, in seed form.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Seed {
    /// The directory (tenant) id. Empty: a fixed default tenant.
    pub tenant_id: String,
    /// Authorize every ARM request against the caller's role assignments (and its groups'), with
    /// role definitions' actions and notActions and role assignment conditions. Default: off,
    /// every authenticated caller may do anything.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub enforce_rbac: bool,
    pub management_groups: Vec<ManagementGroup>,
    /// Subscriptions with a display name, state or access of their own. Every other
    /// subscription the state names exists too, `Enabled` and readable.
    pub subscriptions: Vec<Subscription>,
    pub resource_groups: Vec<ResourceGroup>,
    pub principals: Vec<Principal>,
    /// Applications allowed at the token endpoint. Empty: any client id and secret are accepted.
    pub clients: Vec<ClientApp>,
    pub hubs: Vec<HubSeed>,
    pub provisioning_services: Vec<DpsSeed>,
    /// Custom roles.
    pub role_definitions: Vec<RoleDefinition>,
    pub role_assignments: Vec<RoleAssignment>,
    /// Azure Policy assignments evaluated on hub PUTs.
    pub policies: Vec<PolicyAssignment>,
    /// Device Update for IoT Hub accounts with their instances.
    pub device_update_accounts: Vec<DeviceUpdateAccount>,
    /// Privileged Identity Management role eligibilities, served as their schedule instances
    /// (`roleEligibilityScheduleInstances`, 2020-10-01).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub role_eligibilities: Vec<RoleEligibility>,
    /// Deny assignments (read-only in Azure: created by Blueprints, managed applications and
    /// deployment stacks), served at 2022-04-01 and enforced with `enforceRbac`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny_assignments: Vec<DenyAssignment>,
}

/// What the caller may do in a subscription.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubscriptionAccess {
    /// Listed; every request is served.
    #[default]
    #[serde(alias = "read")]
    Read,
    /// Listed; every request under it answers 403 `AuthorizationFailed`.
    #[serde(alias = "forbidden")]
    Forbidden,
    /// Not listed; every request under it answers 403 `AuthorizationFailed`.
    #[serde(alias = "hidden")]
    Hidden,
}

/// A subscription as `GET /subscriptions` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subscription {
    pub subscription_id: String,
    /// Default: the subscription id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Default: `Enabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Default: `Read`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<SubscriptionAccess>,
    /// Resource provider namespaces not registered in this subscription (e.g.
    /// `Microsoft.DeviceUpdate`): Providers - Get says `NotRegistered`, and requests to its
    /// resources answer 409 `MissingSubscriptionRegistration`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_registered: Vec<String>,
}

/// Effect of a policy assignment on a hub PUT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyEffect {
    /// 403 `RequestDisallowedByPolicy` when the property differs from the value.
    #[default]
    #[serde(alias = "deny")]
    Deny,
    /// The property is set to the value (addOrReplace) before the hub is stored.
    #[serde(alias = "modify")]
    Modify,
}

/// An Azure Policy assignment on one hub property (`properties.{property}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyAssignment {
    pub assignment_name: String,
    /// Subscription, resource group or hub ARM id; a hub is in scope at or below it.
    pub scope: String,
    /// The policy definition's GUID.
    pub definition_name: String,
    pub display_name: String,
    pub effect: PolicyEffect,
    /// Name under `properties`, e.g. `disableLocalAuth`.
    pub property: String,
    pub value: Value,
}

/// A Device Update for IoT Hub account (Microsoft.DeviceUpdate/accounts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceUpdateAccount {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub instances: Vec<DeviceUpdateInstance>,
}

/// A Device Update instance (Microsoft.DeviceUpdate/accounts/instances) and the hubs it uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceUpdateInstance {
    pub name: String,
    /// Default: the account's location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Hub ARM resource ids.
    pub iot_hubs: Vec<String>,
}

/// A management group; `subscriptions` are its direct children.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagementGroup {
    pub id: String,
    /// Default: the id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub subscriptions: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceGroup {
    pub subscription_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// A directory object (user, group or service principal).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Principal {
    pub id: String,
    /// `User`, `Group` or `ServicePrincipal`.
    #[serde(rename = "type")]
    pub principal_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Group ids this principal is a direct member of.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub member_of: Vec<String>,
}

/// An application registration allowed at the token endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientApp {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A shared access policy of a hub.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SasPolicy {
    pub key_name: String,
    pub primary_key: String,
    pub secondary_key: String,
    pub rights: String,
}

/// An IoT hub. `properties`, `authorizationPolicies`, `etag` are filled in snapshots so that a
/// persisted state survives a restart unchanged; a hand-written seed usually omits them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HubSeed {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    /// `"S1"` or a full sku object `{name, tier, capacity}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_local_auth: Option<bool>,
    #[serde(rename = "disableDeviceSAS", alias = "disableDeviceSas", skip_serializing_if = "Option::is_none")]
    pub disable_device_sas: Option<bool>,
    #[serde(rename = "disableModuleSAS", alias = "disableModuleSas", skip_serializing_if = "Option::is_none")]
    pub disable_module_sas: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
    /// Full `properties` of the hub (without keys and read-only fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<serde_json::Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_policies: Option<Vec<SasPolicy>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Device-facing host name of a gateway v2 hub, e.g. `{name}.device.azure-devices.net`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_host_name: Option<String>,
    /// Service-facing host name of a gateway v2 hub, e.g. `{name}.service.azure-devices.net`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_host_name: Option<String>,
}

/// A Device Provisioning Service instance with its hub links.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DpsSeed {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub links: Vec<DpsLinkSeed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// ManagedServiceIdentity: `type` (`None`, `SystemAssigned`, `UserAssigned`,
    /// `SystemAssigned,UserAssigned`), `principalId`, `tenantId`, `userAssignedIdentities`
    /// (resource id → `{principalId, clientId}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
    /// Returned verbatim as `properties.iotHubs` instead of the links (terse or odd shapes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_iot_hubs: Option<Vec<Value>>,
}

/// A DPS → hub link.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DpsLinkSeed {
    /// Hub name (resolved against the seeded hubs) or host name.
    pub hub: String,
    /// `KeyBased` (default), `SystemAssigned` or `UserAssigned`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_user_assigned_identity_resource_id: Option<String>,
    /// Full (unmasked) connection string of a key-based link; generated from the hub's
    /// `iothubowner` key when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation_weight: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_allocation_policy: Option<bool>,
}

/// One permission block of a role definition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Permission {
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub not_data_actions: Vec<String>,
}

/// A role definition (custom in seeds and state; built-ins come from `data/builtin-roles.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleDefinition {
    /// The GUID.
    pub name: String,
    pub role_name: String,
    pub description: String,
    pub assignable_scopes: Vec<String>,
    pub permissions: Vec<Permission>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

/// A role assignment. In the state `name` is always a lowercase hyphenated GUID and
/// `roleDefinitionId` the role's lowercase GUID.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleAssignment {
    /// GUID; random when empty in a seed.
    pub name: String,
    pub scope: String,
    /// Role GUID or full role definition id in seeds.
    pub role_definition_id: String,
    pub principal_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated_managed_identity_resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

/// A PIM role eligibility: `principalId` may activate `roleDefinitionId` at `scope`. In the state
/// `name` is a lowercase hyphenated GUID (the eligibility schedule's name) and `roleDefinitionId`
/// the role's lowercase GUID.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleEligibility {
    /// GUID of the eligibility schedule; random when empty in a seed.
    pub name: String,
    pub scope: String,
    /// Role GUID or full role definition id in seeds.
    pub role_definition_id: String,
    pub principal_id: String,
    /// `User`, `Group`, `ServicePrincipal` or `ForeignGroup`; default: the directory's type, else
    /// `User`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    /// RFC 3339; default: when the seed was loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<String>,
    /// RFC 3339; none: permanently eligible. An eligibility that has ended is not listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_on: Option<String>,
}

/// A principal a deny assignment names: `{id, type}`. The zero GUID with type `SystemDefined`
/// stands for every principal of the directory (only in `principals`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DenyPrincipal {
    pub id: String,
    /// `User`, `Group`, `ServicePrincipal` or `SystemDefined`; default: `SystemDefined` for the
    /// zero GUID, else the directory's type, else `User`.
    #[serde(rename = "type")]
    pub principal_type: String,
}

/// One permission block of a deny assignment: what it denies (actions less notActions, data
/// actions less notDataActions).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DenyPermission {
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub not_data_actions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_version: Option<String>,
}

/// A deny assignment (Microsoft.Authorization/denyAssignments). In the state `name` is a
/// lowercase hyphenated GUID.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DenyAssignment {
    /// GUID; random when empty in a seed.
    pub name: String,
    /// The display name, unique at its scope.
    pub deny_assignment_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub scope: String,
    pub permissions: Vec<DenyPermission>,
    pub principals: Vec<DenyPrincipal>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_principals: Vec<DenyPrincipal>,
    /// Applies at `scope` only, not below it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub do_not_apply_to_child_scopes: bool,
    /// Default: true ("currently, all deny assignments are system protected").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_system_protected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_on: Option<String>,
}

/// Errors reading a seed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

impl Seed {
    /// Read a seed file (JSON when it starts with `{`, YAML otherwise).
    pub fn from_path(path: &Path) -> Result<Seed, SeedError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SeedError::Io { path: path.display().to_string(), source })?;
        Seed::from_str_auto(&text)
    }

    /// Parse JSON or YAML, whichever the text is.
    pub fn from_str_auto(text: &str) -> Result<Seed, SeedError> {
        if text.trim_start().starts_with('{') {
            Ok(serde_json::from_str(text)?)
        } else if text.trim().is_empty() {
            Ok(Seed::default())
        } else {
            Ok(serde_yaml::from_str(text)?)
        }
    }

    /// Serialize as YAML (`yaml`/`yml` extension) or pretty JSON (anything else).
    pub fn to_string_for(&self, path: &Path) -> Result<String, SeedError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        if ext == "yaml" || ext == "yml" {
            Ok(serde_yaml::to_string(self)?)
        } else {
            Ok(serde_json::to_string_pretty(self)?)
        }
    }
}

//! `IotHubRoleAssignment`: a principal gets an IoT Hub data role (built-in, custom or by
//! definition id) at hub, resource-group, subscription or management-group scope. Types and
//! admission rules only; no I/O.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{DeletionPolicy, HubRef, PendingAction, StatusCondition};
use super::rules;
use crate::domain::BuiltInRole;
pub use crate::domain::PrincipalType;

/// Grants a principal an IoT Hub data role.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "iothubaccess.io",
    version = "v1alpha1",
    kind = "IotHubRoleAssignment",
    namespaced,
    status = "IotHubRoleAssignmentStatus",
    shortname = "hubra",
    category = "iothubaccess",
    doc = "Grants a principal (user, group or service principal) an IoT Hub data role on a hub, its resource group, subscription or management group.",
    printcolumn = r#"{"name": "Hub", "type": "string", "jsonPath": ".spec.hub.name"}"#,
    printcolumn = r#"{"name": "Principal", "type": "string", "jsonPath": ".spec.principal.id", "priority": 1}"#,
    printcolumn = r#"{"name": "Role", "type": "string", "jsonPath": ".status.roleName"}"#,
    printcolumn = r#"{"name": "Scope", "type": "string", "jsonPath": ".spec.scope"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = rules::management_group_id_required())]
#[x_kube(validation = rules::management_group_id_forbidden())]
#[serde(rename_all = "camelCase")]
pub struct IotHubRoleAssignmentSpec {
    /// The hub the role is about. With a broader `scope`, the assignment is made on the hub's
    /// resource group or subscription (or `managementGroupId`).
    pub hub: HubRef,
    /// Who gets the role.
    pub principal: Principal,
    /// Which role.
    pub role: RoleRef,
    /// Where the assignment is made; `Hub` (the default) is least privilege.
    #[serde(default)]
    pub scope: AssignmentScope,
    /// The management group, required exactly when `scope` is `ManagementGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::string_matches(rules::MANAGEMENT_GROUP, rules::msg::MANAGEMENT_GROUP))]
    #[schemars(length(max = 90))]
    pub management_group_id: Option<String>,
    /// Free text stored on the Azure role assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// `Delete` (default) removes the assignment when this resource is deleted; `Orphan` keeps it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// A user, group or service principal: its object id, given (`id`) or read from a ConfigMap key
/// another tool writes (`idFrom`), exactly one of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = rules::principal_exactly_one())]
pub struct Principal {
    /// Object id of the principal in Microsoft Entra ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::string_matches(rules::GUID, rules::msg::PRINCIPAL_ID))]
    #[schemars(length(max = 36))]
    pub id: Option<String>,
    /// Where to read the object id: a key of a ConfigMap in this namespace, e.g. the one Azure
    /// Service Operator exports a `UserAssignedIdentity`'s `principalId` to. The resource is
    /// reconciled again when the ConfigMap appears or changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_from: Option<PrincipalIdSource>,
    /// The principal's type. Required: Azure uses it to skip a directory lookup that fails with
    /// PrincipalNotFound for principals created moments ago. Managed identities are
    /// `ServicePrincipal`.
    #[serde(rename = "type")]
    pub principal_type: PrincipalType,
}

impl Principal {
    /// A principal given by its object id.
    pub fn with_id(id: impl Into<String>, principal_type: PrincipalType) -> Principal {
        Principal { id: Some(id.into()), id_from: None, principal_type }
    }
}

/// Where a principal's object id is read from (the Kubernetes `valueFrom` shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalIdSource {
    /// A key of a ConfigMap in the resource's own namespace.
    pub config_map_key_ref: ConfigMapKeyRef,
}

/// A key of a ConfigMap in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// The ConfigMap's name.
    #[x_kube(validation = rules::string_matches(rules::CONFIG_MAP_NAME, rules::msg::CONFIG_MAP_NAME))]
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key whose value is the object id.
    #[x_kube(validation = rules::string_matches(rules::CONFIG_MAP_KEY, rules::msg::CONFIG_MAP_KEY))]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Exactly one of `builtIn`, `customRoleRef` or `definitionId`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = rules::role_exactly_one())]
pub struct RoleRef {
    /// A built-in role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_in: Option<BuiltInRole>,
    /// An `IotHubCustomRole` in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_role_ref: Option<CustomRoleRef>,
    /// A role definition by its GUID (the last segment of its id). The operator reads it from
    /// Azure and grants it only when it holds nothing beyond IoT Hub data actions and
    /// control-plane reads (unless the cluster admin allowed it with `--allowed-role`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::string_matches(rules::GUID, rules::msg::GUID))]
    #[x_kube(validation = rules::not_privileged_role())]
    #[schemars(length(max = 36))]
    pub definition_id: Option<String>,
}

/// A reference to an `IotHubCustomRole` by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CustomRoleRef {
    /// `metadata.name` of the IotHubCustomRole (same namespace).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Where a role assignment is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum AssignmentScope {
    #[default]
    Hub,
    ResourceGroup,
    Subscription,
    ManagementGroup,
}

/// What the operator last saw and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IotHubRoleAssignmentStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (Azure matches the spec) and `LeastPrivilege`.
    #[serde(default)]
    pub conditions: Vec<StatusCondition>,
    /// The last `iothubaccess.io/reconcile-requested-at` token handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub last_handled_reconcile_at: Option<String>,
    /// The Azure role assignment that satisfies the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_id: Option<String>,
    /// Role assignments this resource created (and deletes on cleanup, unless `Orphan`). A hint
    /// of where to look, never proof; at most 16 are read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = super::common::MAX_OWNED_HINTS))]
    pub owned_assignment_ids: Vec<String>,
    /// The assignment existed before under another name and is used as is (never deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_assignment_id: Option<String>,
    /// The resolved role definition id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_definition_id: Option<String>,
    /// The role's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    /// The resolved ARM scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The IoT Hub data actions the principal gets through this assignment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effective_data_actions: Vec<String>,
    /// In observe mode: what the operator would do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_actions: Vec<PendingAction>,
}

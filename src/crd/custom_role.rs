//! `IotHubCustomRole`: a custom Azure role built from the documented IoT Hub data actions (and
//! named operations that expand to them). `listkeys` is refused. Types and admission rules only;
//! no I/O.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{DeletionPolicy, PendingAction, StatusCondition};
use super::rules;
use crate::domain::catalog::Operation;

/// A custom role definition with IoT Hub data actions.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "iothubaccess.io",
    version = "v1alpha1",
    kind = "IotHubCustomRole",
    namespaced,
    status = "IotHubCustomRoleStatus",
    shortname = "hubrole",
    category = "iothubaccess",
    doc = "A custom Azure role made of IoT Hub data actions, for least-privilege access to IoT Hub service APIs.",
    printcolumn = r#"{"name": "Role", "type": "string", "jsonPath": ".spec.roleName"}"#,
    printcolumn = r#"{"name": "Subscription", "type": "string", "jsonPath": ".spec.subscriptionId", "priority": 1}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = rules::grants_something())]
#[x_kube(validation = rules::no_listkeys())]
#[x_kube(validation = rules::no_management_group_scope_with_data_actions())]
#[serde(rename_all = "camelCase")]
pub struct IotHubCustomRoleSpec {
    /// Display name of the role; unique in the Entra tenant.
    #[x_kube(validation = rules::role_name())]
    #[schemars(length(max = 512))]
    pub role_name: String,
    /// What the role is for.
    #[serde(default)]
    #[schemars(length(max = 2048))]
    pub description: String,
    /// The subscription that holds the definition.
    #[x_kube(validation = rules::string_matches(rules::GUID, rules::msg::GUID))]
    #[schemars(length(max = 36))]
    pub subscription_id: String,
    /// Where the role can be assigned; default: the subscription. No management group when the
    /// role has data actions (Azure refuses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(max = 512)), transform = rules::assignable_scope_items)]
    pub assignable_scopes: Option<Vec<String>>,
    /// IoT Hub data actions (documented ones or their wildcards).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 256)), transform = rules::data_action_items)]
    pub data_actions: Vec<String>,
    /// Data actions taken away from `dataActions` (e.g. `*/delete`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 256)), transform = rules::data_action_items)]
    pub not_data_actions: Vec<String>,
    /// Named IoT Hub operations; each adds the data actions it requires (e.g.
    /// `BulkRegistryUpdate` adds devices/write and devices/delete).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub operations: Vec<Operation>,
    /// Control-plane read actions only (e.g. `Microsoft.Devices/IotHubs/read`, `*/read`):
    /// writes and actions are refused (`Microsoft.Devices/IotHubs/write` can add a shared access
    /// policy, `listkeys` hands out every key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 256)), transform = rules::read_action_items)]
    pub actions: Vec<String>,
    /// Control-plane actions taken away from `actions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 256)), transform = rules::action_items)]
    pub not_actions: Vec<String>,
    /// `Delete` (default) removes the definition when this resource is deleted; `Orphan` keeps it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// What the operator last saw and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IotHubCustomRoleStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<StatusCondition>,
    /// The last `iothubaccess.io/reconcile-requested-at` token handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub last_handled_reconcile_at: Option<String>,
    /// The role definition this resource created and owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_definition_id: Option<String>,
    /// Role definitions created earlier for this resource (e.g. before a rename) still to delete.
    /// A hint of where to look, never proof; at most 16 are read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = super::common::MAX_OWNED_HINTS))]
    pub owned_role_definition_ids: Vec<String>,
    /// The IoT Hub data actions the role grants, expanded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effective_data_actions: Vec<String>,
    /// Role assignments that use this role (they block its deletion).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignment_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_actions: Vec<PendingAction>,
}

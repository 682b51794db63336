//! `IotHubSharedAccess`: allow or deny a hub's shared access policies (`disableLocalAuth`),
//! optionally device and module SAS. Types only; no I/O.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{Access, Blocker, HubRef, PendingAction, StatusCondition};

/// Whether a hub accepts shared access signatures.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "iothubaccess.io",
    version = "v1alpha1",
    kind = "IotHubSharedAccess",
    namespaced,
    status = "IotHubSharedAccessStatus",
    shortname = "hubsas",
    category = "iothubaccess",
    doc = "Allows or denies an IoT hub's shared access policies (SAS keys). Deny is refused while a DPS links the hub by key (or by an identity without a data role on it), while a Device Update instance uses it, while that cannot be checked, or while nobody holds an IoT Hub data role on the hub.",
    printcolumn = r#"{"name": "Hub", "type": "string", "jsonPath": ".spec.hub.name"}"#,
    printcolumn = r#"{"name": "SAS", "type": "string", "jsonPath": ".spec.sharedAccessPolicies"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct IotHubSharedAccessSpec {
    /// The hub.
    pub hub: HubRef,
    /// `Deny` sets the hub's `disableLocalAuth` (the portal's "Connect using shared access
    /// policies: Deny"); `Allow` clears it.
    pub shared_access_policies: Access,
    /// Device-scoped SAS keys (`disableDeviceSAS`); unset leaves it as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_sas: Option<Access>,
    /// Module-scoped SAS keys (`disableModuleSAS`); unset leaves it as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_sas: Option<Access>,
}

/// What the operator last saw and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IotHubSharedAccessStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<StatusCondition>,
    /// The last `iothubaccess.io/reconcile-requested-at` token handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub last_handled_reconcile_at: Option<String>,
    /// The hub's ARM id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_id: Option<String>,
    /// What Azure has now: `Allow` or `Deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_access_policies: Option<Access>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_sas: Option<Access>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_sas: Option<Access>,
    /// What the SAS interlock searched for dependents of the hub's shared access, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interlock: Option<InterlockStatus>,
    /// Why a requested Deny is refused, or why a denied hub is not Ready (DPS links, Device
    /// Update, a failed check, lock-out, Azure Policy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Blocker>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_actions: Vec<PendingAction>,
    /// Who can reach the hub (the `audit` engine), refreshed once per resync period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<ExposureStatus>,
}

/// How many principals can reach the hub's keys, grant roles on it and use its data plane
/// (active or eligible assignments, at the hub and above, less deny assignments), and who can
/// reach the keys while shared access is allowed. `iothub-access-operator audit` shows every path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExposureStatus {
    /// When it was read (RFC 3339).
    pub checked_at: String,
    pub keys: u32,
    pub grant: u32,
    pub data: u32,
    /// The principals who can reach the keys while shared access is allowed (the first 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub key_holders: Vec<String>,
}

/// Where the SAS interlock looked for what reaches the hub by key: a DPS or Device Update
/// instance in a subscription not listed here is not seen (the blind spot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InterlockStatus {
    /// When the search started (RFC 3339).
    pub checked_at: String,
    /// The subscriptions searched (every one the operator's identity can list, and the hub's).
    #[serde(default)]
    pub subscriptions: Vec<String>,
    /// DPS instances seen across those subscriptions.
    pub provisioning_services: u32,
    /// DPS instances whose answer did not report link types (every link counted as key-based).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub provisioning_services_without_link_types: u32,
    /// Device Update instances seen.
    pub device_update_instances: u32,
    /// What was found using this hub, however it authenticates (the first 20 by id): the DPS
    /// links and Device Update instances a person should know about before and after Deny.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<HubDependent>,
    /// Why the search could not be completed (then Deny is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// Something found using the hub.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HubDependent {
    /// ARM id of the DPS or Device Update instance.
    pub id: String,
    /// `KeyBased` (a shared access policy: Deny breaks it), `SystemAssigned` or `UserAssigned`
    /// (a managed identity: needs a data role on the hub), or `LocalAuthentication` (Device
    /// Update, which needs shared access on its hub).
    pub authentication: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

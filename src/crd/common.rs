//! Types shared by the three custom resources: the hub reference, the deletion policy, the
//! reconcile-mode annotation and status conditions. Pure, no I/O.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::rules;
pub use crate::domain::Access;
use crate::domain::HubId;

/// API group of every kind.
pub const GROUP: &str = "iothubaccess.io";
/// API version of every kind.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every kind.
pub const API_VERSION: &str = "iothubaccess.io/v1alpha1";
/// Finalizer the controller puts on every resource it manages.
pub const FINALIZER: &str = "iothubaccess.io/cleanup";
/// Most status hints of what a resource made (`ownedAssignmentIds`, `ownedRoleDefinitionIds`):
/// the schema's `maxItems`, and as many as the controller reads or writes.
pub const MAX_OWNED_HINTS: usize = 16;
/// Annotation choosing how a resource is reconciled: `manage` (default), `observe`, `skip`.
pub const RECONCILE_ANNOTATION: &str = "iothubaccess.io/reconcile";

/// Set to a new token (any text: a time, a commit) to have the resource reconciled at once on
/// fresh Azure reads, not the observation shared within a resync period; status
/// `lastHandledReconcileAt` then holds the token. Flux's `reconcile.fluxcd.io/requestedAt`, and
/// the Argo CD `reconcile` action, work this way.
pub const RECONCILE_REQUESTED_AT: &str = "iothubaccess.io/reconcile-requested-at";

/// The token of a reconcile request not handled yet (`last_handled`: status
/// `lastHandledReconcileAt`): the same token twice asks for nothing.
pub fn reconcile_requested<'a>(
    annotations: &'a std::collections::BTreeMap<String, String>,
    last_handled: Option<&str>,
) -> Option<&'a str> {
    annotations
        .get(RECONCILE_REQUESTED_AT)
        .map(String::as_str)
        .filter(|t| !t.is_empty() && t.len() <= MAX_RECONCILE_TOKEN && Some(*t) != last_handled)
}

/// The longest reconcile request token honoured (and recorded in status); a longer one is ignored.
pub const MAX_RECONCILE_TOKEN: usize = 128;
/// Namespace annotation (set by the cluster admin) narrowing the scopes a namespace may manage.
pub const ALLOWED_SCOPES_ANNOTATION: &str = "iothubaccess.io/allowed-scopes";

/// An IoT hub by subscription, resource group and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HubRef {
    /// Subscription id (GUID) of the hub.
    #[x_kube(validation = rules::string_matches(rules::GUID, rules::msg::GUID))]
    #[schemars(length(max = 36))]
    pub subscription_id: String,
    /// Resource group of the hub.
    #[x_kube(validation = rules::string_matches(rules::RESOURCE_GROUP, rules::msg::RESOURCE_GROUP))]
    #[schemars(length(max = 90))]
    pub resource_group: String,
    /// Name of the hub (its host name is `{name}.azure-devices.net` in Azure public cloud).
    #[x_kube(validation = rules::hub_name())]
    #[schemars(length(max = 50))]
    pub name: String,
}

impl HubRef {
    pub fn to_hub_id(&self) -> HubId {
        HubId::new(&self.subscription_id, &self.resource_group, &self.name)
    }
}

/// What happens in Azure when the resource is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum DeletionPolicy {
    /// Delete what this resource created (the default).
    #[default]
    Delete,
    /// Leave it in Azure.
    Orphan,
}

/// How a resource is reconciled, from the `iothubaccess.io/reconcile` annotation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReconcileMode {
    /// Make Azure match the spec (default).
    #[default]
    Manage,
    /// Plan and report in status, never write to Azure.
    Observe,
    /// Leave the resource alone.
    Skip,
}

impl ReconcileMode {
    /// Read the annotation value; `None` for an unknown value.
    pub fn parse(value: Option<&str>) -> Option<ReconcileMode> {
        match value.map(str::trim) {
            None | Some("") | Some("manage") => Some(ReconcileMode::Manage),
            Some("observe") => Some(ReconcileMode::Observe),
            Some("skip") => Some(ReconcileMode::Skip),
            Some(_) => None,
        }
    }

    /// The mode from a resource's annotations. An unknown value is treated as `Observe` (never
    /// write on a typo), with a message saying so.
    pub fn from_annotations(
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> (ReconcileMode, Option<String>) {
        let value = annotations.get(RECONCILE_ANNOTATION).map(String::as_str);
        match ReconcileMode::parse(value) {
            Some(m) => (m, None),
            None => (
                ReconcileMode::Observe,
                Some(format!(
                    "annotation {RECONCILE_ANNOTATION}: '{}' is not one of manage, observe, skip; observing only until it is fixed",
                    value.unwrap_or_default()
                )),
            ),
        }
    }
}

/// A condition type and its value, kstatus style (`Ready` plus kind-specific ones).
pub type StatusCondition = Condition;

/// An Azure change that is pending (observe mode) or was refused, as shown in status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingAction {
    /// What would be done, e.g. `CreateRoleAssignment`.
    pub action: String,
    /// The Azure resource id it targets.
    pub target: String,
}

/// Why a change was refused, with the Azure resources that block it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    /// Machine-readable reason, e.g. `DpsLinked`.
    pub reason: String,
    /// What is wrong and what to do.
    pub message: String,
    /// The Azure ids involved (e.g. the DPS instances that link the hub by key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_ids: Vec<String>,
}

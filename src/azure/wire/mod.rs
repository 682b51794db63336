//! Typed wire models of the Microsoft.Devices, Microsoft.DeviceUpdate and ARM resource bodies the
//! client reads, and their strict conversion to domain types. A hub body keeps every field it
//! does not name (a flattened map) so a PUT loses nothing, and drops the read-only ones the spec
//! marks (`readOnly: true` in iothub.json) so a PUT sends only what a client may write. A shape
//! the interlock cannot read with certainty (no `value`, a DPS link naming no hub, an unknown
//! `authenticationType`) is an error, never "nothing there". No I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::AzureError;
use crate::domain::Access;
use crate::domain::{DpsLink, HubId, LinkAuth, ManagedIdentity, ObservedDeviceUpdate, ObservedDps, ObservedHub};

fn unexpected(what: impl std::fmt::Display) -> AzureError {
    AzureError::Invalid { code: "UnexpectedResponse".into(), message: what.to_string() }
}

/// Parse a JSON body into `T`, naming what was being read when it does not fit.
pub fn parse<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, AzureError> {
    // The error names the field that was not understood (`value[0].properties.iotHubs: ...`),
    // never a value from the answer (it reaches status and Events).
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        unexpected(format!(
            "{what}: the answer is not understood ({}: {})",
            e.path(),
            without_values(&e.inner().to_string())
        ))
    })
}

/// `text` with every quoted string blanked: serde's messages quote the value they met
/// (`invalid type: string "HostName=...;SharedAccessKey=..."`), which may be a secret.
fn without_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// One page of an ARM list. `value` is required: an answer without it is not an empty list.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub value: Vec<T>,
    #[serde(rename = "nextLink", default)]
    pub next_link: Option<String>,
}

// ---- IoT Hub --------------------------------------------------------------------------------

/// `IotHubDescription`, with what the client does not name kept as it came.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubBody {
    #[serde(default, skip_serializing)]
    pub id: Option<String>,
    #[serde(default, skip_serializing)]
    pub name: Option<String>,
    #[serde(default, rename = "type", skip_serializing)]
    pub kind: Option<String>,
    #[serde(default, skip_serializing)]
    pub system_data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub properties: HubProperties,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<HubSku>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityBody>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `IotHubProperties`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HubProperties {
    #[serde(rename = "disableLocalAuth", default, skip_serializing_if = "Option::is_none")]
    pub disable_local_auth: Option<bool>,
    #[serde(rename = "disableDeviceSAS", default, skip_serializing_if = "Option::is_none")]
    pub disable_device_sas: Option<bool>,
    #[serde(rename = "disableModuleSAS", default, skip_serializing_if = "Option::is_none")]
    pub disable_module_sas: Option<bool>,
    #[serde(rename = "hostName", default, skip_serializing)]
    pub host_name: Option<String>,
    #[serde(rename = "deviceHostName", default, skip_serializing)]
    pub device_host_name: Option<String>,
    #[serde(rename = "serviceHostName", default, skip_serializing)]
    pub service_host_name: Option<String>,
    #[serde(default, skip_serializing)]
    pub state: Option<Value>,
    #[serde(rename = "provisioningState", default, skip_serializing)]
    pub provisioning_state: Option<Value>,
    #[serde(default, skip_serializing)]
    pub locations: Option<Value>,
    #[serde(rename = "eventHubEndpoints", default, skip_serializing_if = "Option::is_none")]
    pub event_hub_endpoints: Option<BTreeMap<String, EventHubEndpoint>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `EventHubProperties`: the built-in endpoint's read-only coordinates are dropped on PUT.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventHubEndpoint {
    #[serde(rename = "partitionIds", default, skip_serializing)]
    pub partition_ids: Option<Value>,
    #[serde(default, skip_serializing)]
    pub path: Option<Value>,
    #[serde(default, skip_serializing)]
    pub endpoint: Option<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `IotHubSkuInfo` (`tier` is read-only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HubSku {
    #[serde(default, skip_serializing)]
    pub tier: Option<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `ArmIdentity` / `ManagedServiceIdentity` (object ids are read-only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentityBody {
    #[serde(rename = "principalId", default, skip_serializing)]
    pub principal_id: Option<String>,
    #[serde(rename = "tenantId", default, skip_serializing)]
    pub tenant_id: Option<String>,
    #[serde(rename = "userAssignedIdentities", default, skip_serializing_if = "Option::is_none")]
    pub user_assigned: Option<BTreeMap<String, UserAssignedIdentity>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One user-assigned identity of a resource.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserAssignedIdentity {
    #[serde(rename = "principalId", default, skip_serializing)]
    pub principal_id: Option<String>,
    #[serde(rename = "clientId", default, skip_serializing)]
    pub client_id: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl IdentityBody {
    fn domain(&self) -> ManagedIdentity {
        ManagedIdentity {
            principal_id: self.principal_id.as_ref().map(|p| p.to_ascii_lowercase()),
            user_assigned: self
                .user_assigned
                .iter()
                .flatten()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.principal_id.as_ref().map(|p| p.to_ascii_lowercase())))
                .collect(),
        }
    }
}

impl HubBody {
    /// The domain view of the hub; `etag` from the body, else from the `ETag` header.
    pub fn observed(&self, hub: &HubId, header_etag: Option<String>) -> ObservedHub {
        let p = &self.properties;
        let host_names = [&p.host_name, &p.device_host_name, &p.service_host_name]
            .into_iter()
            .flatten()
            .filter(|h| !h.trim().is_empty())
            .cloned()
            .collect();
        ObservedHub {
            id: hub.clone(),
            host_names,
            location: self.location.clone(),
            shared_access: Access::from_disabled(p.disable_local_auth.unwrap_or(false)),
            device_sas: Access::from_disabled(p.disable_device_sas.unwrap_or(false)),
            module_sas: Access::from_disabled(p.disable_module_sas.unwrap_or(false)),
            etag: self.etag.clone().or(header_etag),
        }
    }
}

// ---- DPS ------------------------------------------------------------------------------------

/// `ProvisioningServiceDescription`: only what the interlock reads.
#[derive(Debug, Deserialize)]
pub struct DpsBody {
    pub id: String,
    pub name: String,
    pub properties: DpsProperties,
    #[serde(default)]
    pub identity: Option<IdentityBody>,
}

/// `IotDpsPropertiesDescription`. `iotHubs` is absent for a DPS without links, as Microsoft's
/// own 2022-12-12 examples return it; present, it must be a list (`null` is not).
#[derive(Debug, Deserialize)]
pub struct DpsProperties {
    #[serde(rename = "iotHubs", default, deserialize_with = "present")]
    pub iot_hubs: Option<Vec<Value>>,
}

/// An optional field that, when present, must hold a `T` (`null` included: an error, not `None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `IotHubDefinitionDescription`.
#[derive(Debug, Deserialize)]
struct LinkBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "hostName", default)]
    host_name: Option<String>,
    #[serde(rename = "connectionString", default)]
    connection_string: Option<String>,
    #[serde(rename = "authenticationType", default)]
    authentication_type: Option<String>,
    #[serde(rename = "selectedUserAssignedIdentityResourceId", default)]
    selected_identity: Option<String>,
}

impl DpsBody {
    /// The domain view; `link_types_reported` says whether the api-version read reports
    /// `authenticationType` (when it does not, every link counts as key-based).
    pub fn observed(self, link_types_reported: bool) -> Result<ObservedDps, AzureError> {
        let mut links = Vec::new();
        for (i, raw) in self.properties.iot_hubs.unwrap_or_default().into_iter().enumerate() {
            let at = || format!("DPS {}: properties.iotHubs[{i}]", self.id);
            let l: LinkBody =
                serde_json::from_value(raw).map_err(|e| unexpected(format!("{}: not understood ({e})", at())))?;
            let mut hosts: Vec<String> =
                [l.name, l.host_name].into_iter().flatten().filter(|h| !h.trim().is_empty()).collect();
            if let Some(h) = l.connection_string.as_deref().and_then(DpsLink::host_from_connection_string) {
                hosts.push(h);
            }
            if hosts.is_empty() {
                return Err(unexpected(format!(
                    "{}: names no hub (no name, hostName or connection string HostName)",
                    at()
                )));
            }
            let auth = match l.authentication_type.as_deref().map(str::trim) {
                None => LinkAuth::Key,
                Some(t) if t.eq_ignore_ascii_case("KeyBased") => LinkAuth::Key,
                Some(t) if t.eq_ignore_ascii_case("SystemAssigned") => LinkAuth::SystemAssigned,
                Some(t) if t.eq_ignore_ascii_case("UserAssigned") => LinkAuth::UserAssigned(l.selected_identity),
                Some(t) => return Err(unexpected(format!("{}: unknown authenticationType '{t}'", at()))),
            };
            // An api-version that does not report link types cannot tell an identity link apart.
            let auth = if link_types_reported { auth } else { LinkAuth::Key };
            links.push(DpsLink { hosts, auth });
        }
        Ok(ObservedDps {
            id: self.id,
            name: self.name,
            links,
            identity: self.identity.as_ref().map(IdentityBody::domain),
            link_types_reported,
        })
    }
}

// ---- Device Update ----------------------------------------------------------------------------

/// `Account` (Microsoft.DeviceUpdate): its id locates the instances list.
#[derive(Debug, Deserialize)]
pub struct DeviceUpdateAccount {
    pub id: String,
}

/// `Instance` (Microsoft.DeviceUpdate/accounts/instances).
#[derive(Debug, Deserialize)]
pub struct DeviceUpdateInstance {
    pub id: String,
    pub properties: DeviceUpdateInstanceProperties,
}

#[derive(Debug, Deserialize)]
pub struct DeviceUpdateInstanceProperties {
    #[serde(rename = "iotHubs", default, deserialize_with = "present")]
    pub iot_hubs: Option<Vec<DeviceUpdateHub>>,
}

/// `IotHubSettings`.
#[derive(Debug, Deserialize)]
pub struct DeviceUpdateHub {
    #[serde(rename = "resourceId")]
    pub resource_id: String,
}

impl DeviceUpdateInstance {
    pub fn observed(self) -> ObservedDeviceUpdate {
        let hub_ids = self.properties.iot_hubs.unwrap_or_default().into_iter().map(|h| h.resource_id).collect();
        ObservedDeviceUpdate { id: self.id, hub_ids }
    }
}

// ---- ARM: subscriptions and providers ---------------------------------------------------------

/// `Subscription` (Subscriptions - List).
#[derive(Debug, Deserialize)]
pub struct Subscription {
    #[serde(rename = "subscriptionId")]
    pub subscription_id: String,
}

/// `Provider` (Providers - Get).
#[derive(Debug, Deserialize)]
pub struct Provider {
    #[serde(rename = "registrationState", default)]
    pub registration_state: Option<String>,
    #[serde(rename = "resourceTypes", default)]
    pub resource_types: Vec<ProviderResourceType>,
}

#[derive(Debug, Deserialize)]
pub struct ProviderResourceType {
    #[serde(rename = "resourceType")]
    pub resource_type: String,
    #[serde(rename = "apiVersions", default)]
    pub api_versions: Vec<String>,
}

impl Provider {
    /// The api-versions a resource type lists (case-insensitive type name).
    pub fn api_versions(&self, resource_type: &str) -> Vec<String> {
        self.resource_types
            .iter()
            .filter(|t| t.resource_type.eq_ignore_ascii_case(resource_type))
            .flat_map(|t| t.api_versions.iter().cloned())
            .collect()
    }
}

// ---- api-version selection ------------------------------------------------------------------

/// The first stable DPS api-version whose hub links carry `authenticationType` and `hostName`
/// (Microsoft.Devices/DeviceProvisioningServices stable/2026-08-01).
pub const DPS_LINK_TYPES_SINCE: &str = "2026-08-01";
/// The first IoT Hub api-version reporting `deviceHostName` and `serviceHostName`
/// (preview/2026-03-01-preview).
pub const HUB_HOST_NAMES_SINCE: &str = "2026-03-01";

fn date_of(v: &str) -> &str {
    v.get(..10).unwrap_or(v)
}

/// Does a DPS api-version report link types?
pub fn dps_reports_link_types(v: &str) -> bool {
    date_of(v) >= DPS_LINK_TYPES_SINCE
}

/// The DPS api-version to read links with, from what the provider lists: the newest stable one
/// that reports link types; `None` when the provider lists none (use the default).
pub fn pick_dps_version(listed: &[String]) -> Option<String> {
    listed
        .iter()
        .filter(|v| !v.to_ascii_lowercase().contains("preview") && dps_reports_link_types(v))
        .max_by(|a, b| a.cmp(b))
        .cloned()
}

/// The IoT Hub api-version to read and write hubs with: the newest listed one that reports the
/// device and service host names; `None` when the provider lists none (use the default).
pub fn pick_hub_version(listed: &[String]) -> Option<String> {
    listed
        .iter()
        .filter(|v| date_of(v) >= HUB_HOST_NAMES_SINCE)
        .max_by(|a, b| date_of(a).cmp(date_of(b)).then(b.len().cmp(&a.len())))
        .cloned()
}

#[cfg(test)]
mod tests;

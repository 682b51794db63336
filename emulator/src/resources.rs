//! The resources of the emulated Azure (hubs, DPS instances) and the defaults of a new hub.
//! Below `state.rs`, which holds them; needs only the seed types and `fresh.rs`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::fresh::new_key;
use crate::seed::{DpsLinkSeed, SasPolicy};

/// An IoT hub.
#[derive(Clone, Debug, PartialEq)]
pub struct Hub {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub tags: BTreeMap<String, String>,
    pub sku: Value,
    pub identity: Option<Value>,
    /// `properties` without keys and read-only fields (provisioningState, state, hostName, locations).
    pub properties: Map<String, Value>,
    pub policies: Vec<SasPolicy>,
    pub etag: String,
    pub provisioning_state: String,
    pub created_at: String,
    /// Device-facing host name (gateway v2 hubs); read-only, shown from api-version 2026-03-01.
    pub device_host_name: Option<String>,
    /// Service-facing host name (gateway v2 hubs); read-only, shown from api-version 2026-03-01.
    pub service_host_name: Option<String>,
}

impl Hub {
    fn flag(&self, k: &str) -> bool {
        self.properties.get(k).and_then(Value::as_bool).unwrap_or(false)
    }
    pub fn disable_local_auth(&self) -> bool {
        self.flag("disableLocalAuth")
    }
    pub fn disable_device_sas(&self) -> bool {
        self.flag("disableDeviceSAS")
    }
    pub fn disable_module_sas(&self) -> bool {
        self.flag("disableModuleSAS")
    }
    /// Portal-style change; `EmulatorHandle::with_state` gives the hub a new etag afterwards.
    pub fn set_disable_local_auth(&mut self, v: bool) {
        self.properties.insert("disableLocalAuth".into(), Value::Bool(v));
    }
    pub fn set_disable_device_sas(&mut self, v: bool) {
        self.properties.insert("disableDeviceSAS".into(), Value::Bool(v));
    }
    pub fn set_disable_module_sas(&mut self, v: bool) {
        self.properties.insert("disableModuleSAS".into(), Value::Bool(v));
    }
    pub fn matches(&self, sub: &str, rg: &str, name: &str) -> bool {
        self.subscription_id.eq_ignore_ascii_case(sub)
            && self.resource_group.eq_ignore_ascii_case(rg)
            && self.name.eq_ignore_ascii_case(name)
    }
    pub fn host_name(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.name)
    }
    /// The host name, device host name or service host name that equals `host`
    /// (case-insensitive), as the hub spells it.
    pub fn host_matching(&self, host: &str, suffix: &str) -> Option<String> {
        std::iter::once(self.host_name(suffix))
            .chain(self.device_host_name.clone())
            .chain(self.service_host_name.clone())
            .find(|h| h.eq_ignore_ascii_case(host))
    }
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Devices/IotHubs/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }
    /// Everything but the etag, to detect changes made through `with_state`.
    pub(crate) fn fingerprint(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}|{:?}",
            self.tags,
            self.sku,
            self.identity,
            self.properties,
            self.policies,
            self.location,
            self.device_host_name,
            self.service_host_name
        )
    }
}

/// A Device Provisioning Service instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Dps {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub tags: BTreeMap<String, String>,
    pub links: Vec<DpsLinkSeed>,
    pub etag: String,
    /// ManagedServiceIdentity, shown at the api-versions with the new link shape.
    pub identity: Option<Value>,
    /// When set, returned verbatim as `properties.iotHubs` instead of `links`.
    pub raw_iot_hubs: Option<Vec<Value>>,
    /// `Accepted` while its creation runs, then `Succeeded`.
    pub provisioning_state: String,
}

impl Dps {
    pub fn matches(&self, sub: &str, rg: &str, name: &str) -> bool {
        self.subscription_id.eq_ignore_ascii_case(sub)
            && self.resource_group.eq_ignore_ascii_case(rg)
            && self.name.eq_ignore_ascii_case(name)
    }
}

/// The five policies every new hub has.
pub(crate) fn default_policies() -> Vec<SasPolicy> {
    [
        ("iothubowner", "RegistryWrite, ServiceConnect, DeviceConnect"),
        ("service", "ServiceConnect"),
        ("device", "DeviceConnect"),
        ("registryRead", "RegistryRead"),
        ("registryReadWrite", "RegistryWrite"),
    ]
    .iter()
    .map(|(k, r)| SasPolicy {
        key_name: k.to_string(),
        primary_key: new_key(),
        secondary_key: new_key(),
        rights: r.to_string(),
    })
    .collect()
}

/// Default `properties` of a new hub (after the 2023-06-30 get example).
pub(crate) fn default_hub_properties(name: &str) -> Map<String, Value> {
    let v = json!({
        "ipFilterRules": [],
        "networkRuleSets": {"defaultAction": "Allow", "applyToBuiltInEventHubEndpoint": false, "ipRules": []},
        "eventHubEndpoints": {"events": {
            "retentionTimeInDays": 1, "partitionCount": 4, "partitionIds": ["0", "1", "2", "3"],
            "path": name.to_ascii_lowercase(),
            "endpoint": format!("sb://iothub-ns-{}.servicebus.windows.net/", name.to_ascii_lowercase())
        }},
        "routing": {
            "endpoints": {"serviceBusQueues": [], "serviceBusTopics": [], "eventHubs": [], "storageContainers": []},
            "routes": [],
            "fallbackRoute": {"source": "DeviceMessages", "condition": "true", "endpointNames": ["events"], "isEnabled": true}
        },
        "storageEndpoints": {"$default": {"sasTtlAsIso8601": "PT1H", "connectionString": "", "containerName": ""}},
        "messagingEndpoints": {"fileNotifications": {"lockDurationAsIso8601": "PT1M", "ttlAsIso8601": "PT1H", "maxDeliveryCount": 10}},
        "enableFileUploadNotifications": false,
        "cloudToDevice": {"maxDeliveryCount": 10, "defaultTtlAsIso8601": "PT1H",
            "feedback": {"lockDurationAsIso8601": "PT1M", "ttlAsIso8601": "PT1H", "maxDeliveryCount": 10}},
        "features": "None",
        "disableLocalAuth": false,
        "disableDeviceSAS": false,
        "disableModuleSAS": false,
        "minTlsVersion": "1.2"
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `"S1"` or an object → `{name, tier, capacity}`.
pub(crate) fn normalize_sku(v: Option<&Value>) -> Value {
    let (name, capacity) = match v {
        Some(Value::String(s)) => (s.clone(), 1),
        Some(Value::Object(o)) => (
            o.get("name").and_then(Value::as_str).unwrap_or("S1").to_string(),
            o.get("capacity").and_then(Value::as_i64).unwrap_or(1),
        ),
        _ => ("S1".to_string(), 1),
    };
    let tier = match name.chars().next() {
        Some('F') | Some('f') => "Free",
        Some('B') | Some('b') => "Basic",
        _ => "Standard",
    };
    json!({"name": name, "tier": tier, "capacity": capacity})
}

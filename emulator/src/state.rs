//! The in-memory model of the emulated Azure, its seed conversion and scope arithmetic.
//! Public so that tests and the demo can tamper with it (as someone in the portal would).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use base64::Engine as _;
use rand::RngCore as _;
use serde_json::{Map, Value, json};

use crate::seed::{
    ClientApp, DpsLinkSeed, DpsSeed, HubSeed, ManagementGroup, Principal, ResourceGroup, RoleAssignment,
    RoleDefinition, SasPolicy, Seed,
};

/// Tenant used when the seed names none.
pub const DEFAULT_TENANT: &str = "00000000-0000-4000-8000-00000000a2e1";

/// A principal as the directory knows it, with when it was registered (`None`: long ago).
#[derive(Clone, Debug)]
pub struct DirectoryEntry {
    pub principal: Principal,
    pub registered: Option<Instant>,
}

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
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Devices/IotHubs/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }
    /// Everything but the etag, to detect changes made through `with_state`.
    pub(crate) fn fingerprint(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{}",
            self.tags, self.sku, self.identity, self.properties, self.policies, self.location
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
}

impl Dps {
    pub fn matches(&self, sub: &str, rg: &str, name: &str) -> bool {
        self.subscription_id.eq_ignore_ascii_case(sub)
            && self.resource_group.eq_ignore_ascii_case(rg)
            && self.name.eq_ignore_ascii_case(name)
    }
}

/// A long-running operation (hub PUT or DELETE).
#[derive(Clone, Debug)]
pub struct Operation {
    pub polls: u32,
    /// The hub whose provisioningState becomes Succeeded when the operation completes.
    pub hub: Option<(String, String, String)>,
    pub done: bool,
}

/// The emulated Azure.
#[derive(Debug, Default)]
pub struct State {
    pub tenant_id: String,
    pub management_groups: Vec<ManagementGroup>,
    /// Known subscription ids (lowercase).
    pub subscriptions: BTreeSet<String>,
    pub resource_groups: Vec<ResourceGroup>,
    pub directory: Vec<DirectoryEntry>,
    pub clients: Vec<ClientApp>,
    pub hubs: Vec<Hub>,
    pub dps: Vec<Dps>,
    /// Custom roles.
    pub role_definitions: Vec<RoleDefinition>,
    pub role_assignments: Vec<RoleAssignment>,
    pub operations: HashMap<String, Operation>,
    pub(crate) hub_host_suffix: String,
}

pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

pub(crate) fn new_etag() -> String {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub(crate) fn new_key() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
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

/// Lowercase hyphenated GUID of a GUID or of a full id ending in one.
pub(crate) fn guid_of(s: &str) -> Option<String> {
    let last = s.trim_end_matches('/').rsplit('/').next()?;
    uuid::Uuid::parse_str(last).ok().map(|u| u.hyphenated().to_string())
}

/// `/`-rooted, no trailing or doubled slashes. The root scope is `/`.
pub fn normalize_scope(s: &str) -> String {
    let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

/// Subscription of a scope, if it is a subscription or below.
pub(crate) fn subscription_of(scope: &str) -> Option<String> {
    let mut parts = scope.split('/').filter(|p| !p.is_empty());
    match (parts.next(), parts.next()) {
        (Some(s), Some(id)) if s.eq_ignore_ascii_case("subscriptions") => Some(id.to_string()),
        _ => None,
    }
}

/// Management group name of a `/providers/Microsoft.Management/managementGroups/{mg}` scope.
pub(crate) fn management_group_of(scope: &str) -> Option<String> {
    let parts: Vec<&str> = scope.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() == 4
        && parts[0].eq_ignore_ascii_case("providers")
        && parts[1].eq_ignore_ascii_case("Microsoft.Management")
        && parts[2].eq_ignore_ascii_case("managementGroups")
    {
        Some(parts[3].to_string())
    } else {
        None
    }
}

impl State {
    /// Build from a seed. Hubs and DPS imply their resource groups; subscriptions are implied
    /// by everything that names one.
    pub fn from_seed(seed: Seed, hub_host_suffix: &str) -> Result<State, String> {
        let mut st = State {
            tenant_id: if seed.tenant_id.trim().is_empty() { DEFAULT_TENANT.to_string() } else { seed.tenant_id },
            management_groups: seed.management_groups,
            clients: seed.clients,
            hub_host_suffix: hub_host_suffix.to_string(),
            ..State::default()
        };
        st.directory = seed.principals.into_iter().map(|p| DirectoryEntry { principal: p, registered: None }).collect();
        for mg in &st.management_groups {
            for s in &mg.subscriptions {
                st.subscriptions.insert(s.to_ascii_lowercase());
            }
        }
        for rg in seed.resource_groups {
            st.ensure_rg(&rg.subscription_id, &rg.name, rg.location.as_deref());
        }
        for h in seed.hubs {
            if h.name.is_empty() || h.subscription_id.is_empty() || h.resource_group.is_empty() {
                return Err(format!("hub {:?}: subscriptionId, resourceGroup and name are required", h.name));
            }
            st.ensure_rg(&h.subscription_id, &h.resource_group, Some(&h.location));
            let mut properties = h.properties.unwrap_or_else(|| default_hub_properties(&h.name));
            for k in ["provisioningState", "state", "hostName", "locations", "authorizationPolicies"] {
                properties.remove(k);
            }
            for (k, v) in [
                ("disableLocalAuth", h.disable_local_auth),
                ("disableDeviceSAS", h.disable_device_sas),
                ("disableModuleSAS", h.disable_module_sas),
            ] {
                if let Some(v) = v {
                    properties.insert(k.into(), Value::Bool(v));
                }
            }
            st.hubs.push(Hub {
                subscription_id: h.subscription_id,
                resource_group: h.resource_group,
                location: h.location,
                tags: h.tags.unwrap_or_default(),
                sku: normalize_sku(h.sku.as_ref()),
                identity: h.identity,
                properties,
                policies: h.authorization_policies.unwrap_or_else(default_policies),
                etag: h.etag.unwrap_or_else(new_etag),
                provisioning_state: "Succeeded".into(),
                created_at: now_rfc3339(),
                name: h.name,
            });
        }
        for d in seed.provisioning_services {
            st.ensure_rg(&d.subscription_id, &d.resource_group, Some(&d.location));
            let links = d.links.into_iter().map(|l| st.complete_link(l)).collect();
            st.dps.push(Dps {
                subscription_id: d.subscription_id,
                resource_group: d.resource_group,
                name: d.name,
                location: d.location,
                tags: d.tags.unwrap_or_default(),
                links,
                etag: d.etag.unwrap_or_else(new_etag),
            });
        }
        let now = now_rfc3339();
        for mut rd in seed.role_definitions {
            rd.name = guid_of(&rd.name).ok_or_else(|| format!("role definition {:?}: name must be a GUID", rd.name))?;
            rd.assignable_scopes = rd.assignable_scopes.iter().map(|s| normalize_scope(s)).collect();
            for s in &rd.assignable_scopes {
                if let Some(sub) = subscription_of(s) {
                    st.subscriptions.insert(sub.to_ascii_lowercase());
                }
            }
            rd.created_on.get_or_insert_with(|| now.clone());
            rd.updated_on.get_or_insert_with(|| now.clone());
            st.role_definitions.push(rd);
        }
        for mut ra in seed.role_assignments {
            ra.name = if ra.name.trim().is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                guid_of(&ra.name).ok_or_else(|| format!("role assignment {:?}: name must be a GUID", ra.name))?
            };
            ra.scope = normalize_scope(&ra.scope);
            ra.role_definition_id = guid_of(&ra.role_definition_id).ok_or_else(|| {
                format!("role assignment {}: bad roleDefinitionId {:?}", ra.name, ra.role_definition_id)
            })?;
            if let Some(sub) = subscription_of(&ra.scope) {
                st.subscriptions.insert(sub.to_ascii_lowercase());
            }
            if ra.principal_type.is_none() {
                ra.principal_type =
                    Some(st.principal(&ra.principal_id).map_or("User".into(), |p| p.principal_type.clone()));
            }
            ra.created_on.get_or_insert_with(|| now.clone());
            ra.updated_on.get_or_insert_with(|| now.clone());
            st.role_assignments.push(ra);
        }
        Ok(st)
    }

    /// The state in seed form.
    pub fn to_seed(&self) -> Seed {
        Seed {
            tenant_id: self.tenant_id.clone(),
            management_groups: self.management_groups.clone(),
            resource_groups: self.resource_groups.clone(),
            principals: self.directory.iter().map(|d| d.principal.clone()).collect(),
            clients: self.clients.clone(),
            hubs: self
                .hubs
                .iter()
                .map(|h| HubSeed {
                    subscription_id: h.subscription_id.clone(),
                    resource_group: h.resource_group.clone(),
                    name: h.name.clone(),
                    location: h.location.clone(),
                    sku: Some(h.sku.clone()),
                    disable_local_auth: Some(h.disable_local_auth()),
                    disable_device_sas: Some(h.disable_device_sas()),
                    disable_module_sas: Some(h.disable_module_sas()),
                    tags: Some(h.tags.clone()),
                    identity: h.identity.clone(),
                    properties: Some(h.properties.clone()),
                    authorization_policies: Some(h.policies.clone()),
                    etag: Some(h.etag.clone()),
                })
                .collect(),
            provisioning_services: self
                .dps
                .iter()
                .map(|d| DpsSeed {
                    subscription_id: d.subscription_id.clone(),
                    resource_group: d.resource_group.clone(),
                    name: d.name.clone(),
                    location: d.location.clone(),
                    links: d.links.clone(),
                    tags: Some(d.tags.clone()),
                    etag: Some(d.etag.clone()),
                })
                .collect(),
            role_definitions: self.role_definitions.clone(),
            role_assignments: self.role_assignments.clone(),
        }
    }

    pub(crate) fn ensure_rg(&mut self, sub: &str, name: &str, location: Option<&str>) -> bool {
        self.subscriptions.insert(sub.to_ascii_lowercase());
        if self.rg(sub, name).is_some() {
            return false;
        }
        self.resource_groups.push(ResourceGroup {
            subscription_id: sub.to_string(),
            name: name.to_string(),
            location: location.map(str::to_string),
        });
        true
    }

    pub fn rg(&self, sub: &str, name: &str) -> Option<&ResourceGroup> {
        self.resource_groups
            .iter()
            .find(|r| r.subscription_id.eq_ignore_ascii_case(sub) && r.name.eq_ignore_ascii_case(name))
    }

    pub fn has_subscription(&self, sub: &str) -> bool {
        self.subscriptions.contains(&sub.to_ascii_lowercase())
    }

    /// Fill in a DPS link: host name resolution stays dynamic; a key-based link gets a
    /// connection string from the hub's `iothubowner` policy when it has none.
    pub(crate) fn complete_link(&self, mut l: DpsLinkSeed) -> DpsLinkSeed {
        let key_based = l.authentication_type.as_deref().is_none_or(|t| t.eq_ignore_ascii_case("KeyBased"));
        if key_based && l.connection_string.is_none() {
            let host = self.link_host(&l.hub);
            let key = self
                .hub_by_host_or_name(&l.hub)
                .and_then(|h| h.policies.iter().find(|p| p.key_name == "iothubowner"))
                .map_or_else(new_key, |p| p.primary_key.clone());
            l.connection_string =
                Some(format!("HostName={host};SharedAccessKeyName=iothubowner;SharedAccessKey={key}"));
        }
        l
    }

    pub(crate) fn hub_by_host_or_name(&self, hub: &str) -> Option<&Hub> {
        self.hubs
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(hub) || h.host_name(&self.hub_host_suffix).eq_ignore_ascii_case(hub))
    }

    /// Host name of a link target (`hub` is a hub name or a host name).
    pub(crate) fn link_host(&self, hub: &str) -> String {
        if let Some(h) = self.hub_by_host_or_name(hub) {
            h.host_name(&self.hub_host_suffix)
        } else if hub.contains('.') {
            hub.to_string()
        } else {
            format!("{hub}.{}", self.hub_host_suffix)
        }
    }

    pub fn principal(&self, id: &str) -> Option<&Principal> {
        self.directory.iter().map(|d| &d.principal).find(|p| p.id.eq_ignore_ascii_case(id))
    }

    /// All role assignments.
    pub fn assignments(&self) -> &[RoleAssignment] {
        &self.role_assignments
    }

    /// Remove an assignment by name (GUID, case-insensitive). True when it existed.
    pub fn remove_assignment(&mut self, name: &str) -> bool {
        let before = self.role_assignments.len();
        self.role_assignments.retain(|a| !a.name.eq_ignore_ascii_case(name));
        before != self.role_assignments.len()
    }

    pub fn hub(&self, sub: &str, rg: &str, name: &str) -> Option<&Hub> {
        self.hubs.iter().find(|h| h.matches(sub, rg, name))
    }

    pub fn hub_mut(&mut self, sub: &str, rg: &str, name: &str) -> Option<&mut Hub> {
        self.hubs.iter_mut().find(|h| h.matches(sub, rg, name))
    }

    pub fn dps_mut(&mut self, sub: &str, rg: &str, name: &str) -> Option<&mut Dps> {
        self.dps.iter_mut().find(|d| d.matches(sub, rg, name))
    }

    /// Register (or re-register) a principal now.
    pub fn add_principal(&mut self, p: Principal) {
        self.directory.retain(|d| !d.principal.id.eq_ignore_ascii_case(&p.id));
        self.directory.push(DirectoryEntry { principal: p, registered: Some(Instant::now()) });
    }

    /// Management group chain above a subscription or management group (nearest first).
    fn mg_ancestors_of_mg(&self, mg: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(mg.to_string());
        while let Some(c) = cur {
            if out.iter().any(|x: &String| x.eq_ignore_ascii_case(&c)) {
                break;
            }
            out.push(c.clone());
            cur = self.management_groups.iter().find(|m| m.id.eq_ignore_ascii_case(&c)).and_then(|m| m.parent.clone());
        }
        out
    }

    fn mgs_of_subscription(&self, sub: &str) -> Vec<String> {
        match self.management_groups.iter().find(|m| m.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(sub))) {
            Some(m) => self.mg_ancestors_of_mg(&m.id),
            None => Vec::new(),
        }
    }

    /// Whether scope `a` is `b` or an ancestor of `b` (root, management groups, prefixes).
    pub fn at_or_above(&self, a: &str, b: &str) -> bool {
        let (al, bl) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
        if al == "/" || al == bl || bl.starts_with(&format!("{al}/")) {
            return true;
        }
        let Some(mg) = management_group_of(a) else { return false };
        let chain = if let Some(bmg) = management_group_of(b) {
            self.mg_ancestors_of_mg(&bmg)
        } else if let Some(sub) = subscription_of(b) {
            self.mgs_of_subscription(&sub)
        } else {
            Vec::new()
        };
        chain.iter().any(|m| m.eq_ignore_ascii_case(&mg))
    }

    /// Group ids `principal` belongs to, transitively.
    pub fn groups_of(&self, principal: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut todo = vec![principal.to_ascii_lowercase()];
        while let Some(p) = todo.pop() {
            if let Some(e) = self.principal(&p) {
                for g in &e.member_of {
                    let g = g.to_ascii_lowercase();
                    if !out.contains(&g) {
                        out.push(g.clone());
                        todo.push(g);
                    }
                }
            }
        }
        out
    }
}

//! What the operator observed in Azure, as plain domain structs: role assignments, hubs and
//! DPS instances with their hub links. `observe` fills them; `plan` reads them. Pure, no I/O.

use uuid::Uuid;

use super::cloud::all_iothub_host_suffixes;
use super::ids::{HubId, RoleAssignmentId};

/// A role assignment as Azure lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedAssignment {
    pub id: RoleAssignmentId,
    /// The role definition GUID (Azure's id form does not matter).
    pub role_definition: Uuid,
    /// Lower-case object id.
    pub principal_id: String,
    pub principal_type: Option<String>,
    pub description: Option<String>,
}

impl ObservedAssignment {
    /// Same scope, role and principal (what Azure treats as "the same assignment").
    pub fn same_grant(&self, scope: &super::Scope, role: Uuid, principal_id: &str) -> bool {
        self.id.scope == *scope && self.role_definition == role && self.principal_id.eq_ignore_ascii_case(principal_id)
    }
}

/// The access properties of a hub, as GET returns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedHub {
    pub id: HubId,
    /// `properties.hostName`, e.g. `hub-a.azure-devices.net`.
    pub host_name: Option<String>,
    pub location: String,
    pub disable_local_auth: bool,
    pub disable_device_sas: bool,
    pub disable_module_sas: bool,
    pub etag: Option<String>,
}

impl ObservedHub {
    /// Does `host` name this hub? Case-insensitive; when Azure did not report the host name,
    /// `{name}.{suffix}` for every cloud's IoT Hub suffix.
    pub fn has_host(&self, host: &str) -> bool {
        let host = host.trim().trim_end_matches('.');
        match &self.host_name {
            Some(h) => h.eq_ignore_ascii_case(host),
            None => all_iothub_host_suffixes().any(|s| format!("{}.{s}", self.id.name).eq_ignore_ascii_case(host)),
        }
    }
}

/// One `properties.iotHubs[]` entry of a DPS: the link between the DPS and a hub.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DpsLink {
    /// `name`: the hub host name.
    pub name: Option<String>,
    /// `hostName` (newer api-versions).
    pub host_name: Option<String>,
    /// The `HostName=` part of `connectionString` (key-based links).
    pub connection_string_host: Option<String>,
    /// `authenticationType`: `KeyBased`, `SystemAssigned`, `UserAssigned`; absent means key.
    pub authentication_type: Option<String>,
}

impl DpsLink {
    /// Parse the `HostName=` field of a (masked) connection string.
    pub fn host_from_connection_string(cs: &str) -> Option<String> {
        cs.split(';').find_map(|part| {
            let (k, v) = part.split_once('=')?;
            k.trim().eq_ignore_ascii_case("HostName").then(|| v.trim().to_string())
        })
    }

    /// A shared-access (key) link, which `disableLocalAuth` breaks.
    pub fn is_key_based(&self) -> bool {
        match &self.authentication_type {
            None => true,
            Some(t) => t.eq_ignore_ascii_case("KeyBased"),
        }
    }

    /// Does this link point at `hub`?
    pub fn links(&self, hub: &ObservedHub) -> bool {
        [&self.name, &self.host_name, &self.connection_string_host].into_iter().flatten().any(|h| hub.has_host(h))
    }
}

/// A Device Provisioning Service instance and its hub links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedDps {
    /// ARM id.
    pub id: String,
    pub name: String,
    pub links: Vec<DpsLink>,
}

/// The result of looking for DPS instances. `Failed` means the check could not be completed
/// (e.g. missing read permission, throttling that outlived retries): Deny must fail closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DpsObservation {
    Complete(Vec<ObservedDps>),
    Failed(String),
}

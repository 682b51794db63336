//! What reaches a hub from outside and breaks when shared access is denied: DPS instances and
//! their hub links, Device Update instances, and what was searched to find them. `observe`
//! fills these from every subscription the operator can list; the SAS interlock in `plan` reads
//! them. Pure data, no I/O.

use std::collections::BTreeMap;

use super::observed::ObservedHub;

/// How a DPS link authenticates to its hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkAuth {
    /// A hub shared access policy (a connection string with a key): `disableLocalAuth` breaks it.
    /// Also what a link is taken to be when the api-version read does not report link types.
    Key,
    /// The DPS's system-assigned managed identity.
    SystemAssigned,
    /// A user-assigned identity of the DPS (its ARM id, when the link names it).
    UserAssigned(Option<String>),
}

/// One `properties.iotHubs[]` entry of a DPS: the link between the DPS and a hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpsLink {
    /// Every host name the entry gives for its hub (`name`, `hostName`, the connection string's
    /// `HostName=`); never empty.
    pub hosts: Vec<String>,
    pub auth: LinkAuth,
}

impl DpsLink {
    /// Parse the `HostName=` field of a (masked) connection string.
    pub fn host_from_connection_string(cs: &str) -> Option<String> {
        cs.split(';').find_map(|part| {
            let (k, v) = part.split_once('=')?;
            (k.trim().eq_ignore_ascii_case("HostName") && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    }

    /// Does this link point at `hub` (by any of its host names)?
    pub fn links(&self, hub: &ObservedHub) -> bool {
        self.hosts.iter().any(|h| hub.has_host(h))
    }
}

/// A managed identity as ARM reports it (`identity` of a resource).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedIdentity {
    /// The system-assigned identity's object id.
    pub principal_id: Option<String>,
    /// User-assigned identities: lower-case ARM id -> object id.
    pub user_assigned: BTreeMap<String, Option<String>>,
}

impl ManagedIdentity {
    /// The object id a link authenticates as, when ARM reported it.
    pub fn principal_for(&self, auth: &LinkAuth) -> Option<String> {
        match auth {
            LinkAuth::Key => None,
            LinkAuth::SystemAssigned => self.principal_id.clone(),
            LinkAuth::UserAssigned(id) => {
                let id = id.as_ref()?.to_ascii_lowercase();
                self.user_assigned.get(&id).cloned().flatten()
            }
        }
    }
}

/// A Device Provisioning Service instance and its hub links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedDps {
    /// ARM id.
    pub id: String,
    pub name: String,
    pub links: Vec<DpsLink>,
    /// The DPS's managed identities, when the api-version read reports them.
    pub identity: Option<ManagedIdentity>,
    /// Whether the api-version read reports link types (`authenticationType`); when not, every
    /// link counts as key-based.
    pub link_types_reported: bool,
}

/// A Device Update for IoT Hub instance (`Microsoft.DeviceUpdate/accounts/instances`): it needs
/// local authentication on each hub it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedDeviceUpdate {
    /// ARM id of the instance.
    pub id: String,
    /// ARM ids of its hubs (`properties.iotHubs[].resourceId`).
    pub hub_ids: Vec<String>,
}

/// Everything found that depends on hubs' shared access, and where it was looked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dependents {
    pub dps: Vec<ObservedDps>,
    pub device_update: Vec<ObservedDeviceUpdate>,
    /// The subscriptions searched (lower-case), sorted.
    pub subscriptions: Vec<String>,
    /// When the search started (RFC 3339).
    pub checked_at: String,
}

/// The result of looking for dependents. `Failed` means the search could not be completed (a
/// subscription answered 403, a page failed, a shape was not understood): Deny must fail closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DependentsObservation {
    Complete(Dependents),
    Failed(String),
}

impl DependentsObservation {
    /// Nothing depends on anything (for Allow, which needs no search).
    pub fn none() -> DependentsObservation {
        DependentsObservation::Complete(Dependents::default())
    }
}

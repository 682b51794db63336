//! The in-memory model of the emulated Azure (`State`, directory entries, long-running
//! operations) and its scope arithmetic. Seed conversion is in `snapshot.rs`, the hub and DPS
//! types in `resources.rs`, fresh etags and keys in `fresh.rs`. Public so that tests and the demo can tamper
//! with it (as someone in the portal would).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use crate::fresh::new_key;
use crate::resources::{Dps, Hub};
use crate::seed::{
    ClientApp, DenyAssignment, DeviceUpdateAccount, DpsLinkSeed, ManagementGroup, PolicyAssignment, Principal,
    ResourceGroup, RoleAssignment, RoleDefinition, RoleEligibility, Subscription,
};

/// Tenant used when the seed names none.
pub const DEFAULT_TENANT: &str = "00000000-0000-4000-8000-00000000a2e1";

/// A principal as the directory knows it, with when it was registered (`None`: long ago).
#[derive(Clone, Debug)]
pub struct DirectoryEntry {
    pub principal: Principal,
    pub registered: Option<Instant>,
}
/// A long-running operation (hub PUT or DELETE, DPS creation).
#[derive(Clone, Debug)]
pub struct Operation {
    pub polls: u32,
    /// The hub whose provisioningState becomes Succeeded when the operation completes.
    pub hub: Option<(String, String, String)>,
    /// The DPS (subscription, resource group, name) whose provisioningState becomes Succeeded
    /// when the operation completes.
    pub dps: Option<(String, String, String)>,
    pub done: bool,
}

/// The emulated Azure.
#[derive(Debug, Default)]
pub struct State {
    pub tenant_id: String,
    /// Authorize ARM requests against the caller's role assignments (`rbac.rs`).
    pub enforce_rbac: bool,
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
    /// PIM role eligibilities (served as schedule instances).
    pub role_eligibilities: Vec<RoleEligibility>,
    /// Deny assignments (read-only over ARM; enforced with `enforce_rbac`).
    pub deny_assignments: Vec<DenyAssignment>,
    pub operations: HashMap<String, Operation>,
    /// Subscriptions with a display name, state or access of their own, by lowercase id.
    pub subscription_details: BTreeMap<String, Subscription>,
    /// Azure Policy assignments evaluated on hub PUTs.
    pub policies: Vec<PolicyAssignment>,
    pub device_update_accounts: Vec<DeviceUpdateAccount>,
    /// Hubs (lowercase ids) whose GET answers 404 until then (after a local-auth change).
    pub(crate) hub_not_found_until: HashMap<String, Instant>,
    pub(crate) hub_host_suffix: String,
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

/// `normalize_scope`, and the alias `/providers/Microsoft.Subscription/subscriptions/{id}...`
/// (the PIM examples' scope) as `/subscriptions/{id}...`.
pub(crate) fn canonical_scope(s: &str) -> String {
    let n = normalize_scope(s);
    let alias = "/providers/microsoft.subscription/subscriptions/";
    if n.len() > alias.len() && n[..alias.len()].eq_ignore_ascii_case(alias) {
        format!("/subscriptions/{}", &n[alias.len()..])
    } else {
        n
    }
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

    /// The hub named `hub`, or whose host name, device host name or service host name is `hub`.
    pub(crate) fn hub_by_host_or_name(&self, hub: &str) -> Option<&Hub> {
        self.hubs
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(hub) || h.host_matching(hub, &self.hub_host_suffix).is_some())
    }

    /// Host name of a link target (`hub` is a hub name or a host name). A link naming a hub by
    /// its device or service host name keeps that host name, as the hub spells it.
    pub(crate) fn link_host(&self, hub: &str) -> String {
        if let Some(h) = self.hub_by_host_or_name(hub) {
            h.host_matching(hub, &self.hub_host_suffix).unwrap_or_else(|| h.host_name(&self.hub_host_suffix))
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

//! Who can reach a hub, judged from effective permissions (never from role names): every path
//! to its keys, its data plane and its grants, through active and eligible role assignments at
//! the hub and every scope above it, less what deny assignments take away. Pure: the caller reads
//! the assignments, eligibilities, definitions and deny assignments.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::domain::catalog::{self, DATA_ACTION_PREFIX, LISTKEYS_ACTIONS};
use crate::domain::{Access, BuiltInRole, Permission, RoleDefinition, Scope};

/// Actions that hand out a hub's keys: listing them, or writing the hub (a shared access policy
/// can be added).
const KEY_ACTIONS: &[&str] = &[LISTKEYS_ACTIONS[0], LISTKEYS_ACTIONS[1], "Microsoft.Devices/IotHubs/write"];
const GRANT_ACTION: &str = "Microsoft.Authorization/roleAssignments/write";
/// A deny assignment's principal that stands for everyone.
const EVERYONE: &str = "00000000-0000-0000-0000-000000000000";

/// What a principal can do with the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    /// Read the hub's keys (listkeys), or write the hub (add a shared access policy).
    Keys,
    /// Use the hub's service APIs with an Entra ID token.
    Data,
    /// Grant roles on the hub (role assignment writes).
    Grant,
}

impl Reach {
    pub const ALL: [Reach; 3] = [Reach::Keys, Reach::Data, Reach::Grant];

    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Keys => "keys",
            Reach::Data => "data",
            Reach::Grant => "grant",
        }
    }

    pub fn parse(s: &str) -> Option<Reach> {
        Reach::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(s))
    }
}

/// Active, or eligible through Privileged Identity Management (activated on demand).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    Active,
    Eligible,
}

/// One role a principal holds (or may activate) at a scope that covers the hub.
#[derive(Clone, Debug)]
pub struct Grantee {
    pub principal_id: String,
    pub principal_type: String,
    pub scope: String,
    pub role: RoleDefinition,
    pub kind: PathKind,
    pub condition: Option<String>,
}

/// A deny assignment that applies at the hub.
#[derive(Clone, Debug)]
pub struct Deny {
    pub name: String,
    pub permissions: Vec<Permission>,
    /// `(id, type)`; the all-zero id with type `SystemDefined` is everyone.
    pub principals: Vec<(String, String)>,
    pub exclude: Vec<(String, String)>,
    /// It has a condition: whether it applies is not known here.
    pub conditional: bool,
}

impl Deny {
    /// Certain to apply to `principal` (of `principal_type`)? Not when it has a condition, nor
    /// when a group is excepted or the grantee is a group and someone is (group members are not
    /// expanded): then it is reported as "may be denied", never subtracted, so the audit never
    /// shows less access than there is.
    fn certain_for(&self, principal_type: &str) -> bool {
        !self.conditional
            && !self.exclude.iter().any(|(_, t)| t.eq_ignore_ascii_case("Group"))
            && (self.exclude.is_empty() || !principal_type.eq_ignore_ascii_case("Group"))
    }

    fn covers(&self, principal: &str) -> bool {
        let listed =
            |l: &[(String, String)]| l.iter().any(|(id, _)| id.eq_ignore_ascii_case(principal) || id == EVERYONE);
        listed(&self.principals) && !self.exclude.iter().any(|(id, _)| id.eq_ignore_ascii_case(principal))
    }

    fn denies_action(&self, action: &str) -> bool {
        self.permissions.iter().any(|p| p.grants_action(action))
    }

    fn denies_data_action(&self, action: &str) -> bool {
        self.permissions.iter().any(|p| p.grants_data_action(action))
    }
}

/// One path, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathOut {
    pub role_definition_id: String,
    pub role_name: String,
    pub scope: String,
    pub kind: PathKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// What this path gives, after deny assignments.
    pub access: Vec<Reach>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalExposure {
    pub principal_id: String,
    pub principal_type: String,
    pub access: Vec<Reach>,
    pub paths: Vec<PathOut>,
    /// Deny assignments that take something away from this principal here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied_by: Vec<String>,
    /// Deny assignments that may take something away (a condition, or group exceptions): not
    /// subtracted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub may_be_denied_by: Vec<String>,
    /// The data-plane areas its data actions reach (registry, twins, jobs, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_areas: Vec<String>,
    /// The least-privileged role that covers the data actions it holds: a built-in data role,
    /// or a custom role of exactly those actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub least_privileged_role: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedAccessPolicy {
    pub key_name: String,
    pub rights: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HubExposure {
    pub id: String,
    /// `Allowed` or `Denied` (`disableLocalAuth`): key exposure matters while it is allowed.
    #[serde(serialize_with = "allowed_or_denied")]
    pub shared_access: Access,
    /// `None` when not read (names and rights come only with the keys: `--read-policies`).
    pub shared_access_policies: Option<Vec<SharedAccessPolicy>>,
    pub principals: Vec<PrincipalExposure>,
}

impl HubExposure {
    /// How many principals have each kind of access.
    pub fn counts(&self) -> BTreeMap<Reach, usize> {
        Reach::ALL.iter().map(|r| (*r, self.principals.iter().filter(|p| p.access.contains(r)).count())).collect()
    }

    /// Principals who can reach the keys, while SAS is allowed (empty once it is denied).
    pub fn key_holders_while_allowed(&self) -> Vec<&PrincipalExposure> {
        if self.shared_access == Access::Deny {
            return vec![];
        }
        self.principals.iter().filter(|p| p.access.contains(&Reach::Keys)).collect()
    }
}

fn allowed_or_denied<S: serde::Serializer>(a: &Access, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if *a == Access::Deny { "Denied" } else { "Allowed" })
}

/// The data area of an IoT Hub data action (`Microsoft.Devices/IotHubs/twins/read` -> `twins`).
fn area(action: &str) -> &'static str {
    let rest = action.get(DATA_ACTION_PREFIX.len()..).unwrap_or_default().to_ascii_lowercase();
    match rest.split('/').next().unwrap_or_default() {
        "devices" => "registry",
        "twins" => "twins",
        "jobs" => "jobs",
        "directmethods" => "methods",
        "cloudtodevicemessages" => "cloud-to-device",
        "fileupload" => "file-upload",
        "statistics" => "statistics",
        "configurations" => "configurations",
        _ => "other",
    }
}

/// The least-privileged role covering `held` (documented data actions): the built-in data role
/// with the fewest actions that holds them all, else a custom role of exactly those.
fn least_privileged(held: &BTreeSet<&'static str>) -> Option<String> {
    if held.is_empty() {
        return None;
    }
    let mut candidates: Vec<(usize, &'static str)> = [
        BuiltInRole::IoTHubDataReader,
        BuiltInRole::IoTHubTwinContributor,
        BuiltInRole::IoTHubRegistryContributor,
        BuiltInRole::IoTHubDataContributor,
    ]
    .iter()
    .filter_map(|r| {
        let actions: BTreeSet<&'static str> = r.definition().effective_data_actions().into_iter().collect();
        held.is_subset(&actions).then_some((actions.len(), r.role_name()))
    })
    .collect();
    candidates.sort();
    match candidates.first() {
        Some((n, name)) if *n == held.len() => Some(name.to_string()),
        Some((_, name)) if held.len() > 2 => {
            Some(format!("{name} (or a custom role of the {} data actions held)", held.len()))
        }
        _ => Some(format!("a custom role of: {}", held.iter().copied().collect::<Vec<_>>().join(", "))),
    }
}

/// Judge every path to `hub`. `grantees` are the assignments and eligibilities whose scope
/// covers the hub; `denies` the deny assignments that apply there.
pub fn judge(
    hub: &Scope,
    shared_access: Access,
    policies: Option<Vec<SharedAccessPolicy>>,
    grantees: &[Grantee],
    denies: &[Deny],
) -> HubExposure {
    let mut by_principal: BTreeMap<String, PrincipalExposure> = BTreeMap::new();
    let mut data_held: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for g in grantees {
        let pid = g.principal_id.to_ascii_lowercase();
        let (against, maybe): (Vec<&Deny>, Vec<&Deny>) =
            denies.iter().filter(|d| d.covers(&pid)).partition(|d| d.certain_for(&g.principal_type));
        let mut denied_by = BTreeSet::new();
        let mut allowed = |action: &str| {
            if !g.role.grants_action(action) {
                return false;
            }
            match against.iter().find(|d| d.denies_action(action)) {
                Some(d) => {
                    denied_by.insert(d.name.clone());
                    false
                }
                None => true,
            }
        };
        let mut access = Vec::new();
        if KEY_ACTIONS.iter().any(|a| allowed(a)) {
            access.push(Reach::Keys);
        }
        let grants = allowed(GRANT_ACTION);
        let data: Vec<&'static str> = catalog::DATA_ACTIONS
            .iter()
            .copied()
            .filter(|a| g.role.permissions.iter().any(|p| p.grants_data_action(a)))
            .filter(|a| match against.iter().find(|d| d.denies_data_action(a)) {
                Some(d) => {
                    denied_by.insert(d.name.clone());
                    false
                }
                None => true,
            })
            .collect();
        if !data.is_empty() {
            access.push(Reach::Data);
        }
        if grants {
            access.push(Reach::Grant);
        }
        if access.is_empty() && denied_by.is_empty() {
            continue; // reaches nothing here (a Reader, say)
        }
        let may_be: Vec<String> = maybe.iter().map(|d| d.name.clone()).collect();
        let entry = by_principal.entry(pid.clone()).or_insert_with(|| PrincipalExposure {
            principal_id: pid.clone(),
            principal_type: g.principal_type.clone(),
            access: vec![],
            paths: vec![],
            denied_by: vec![],
            may_be_denied_by: vec![],
            data_areas: vec![],
            least_privileged_role: None,
        });
        if g.kind == PathKind::Active {
            data_held.entry(pid.clone()).or_default().extend(data.iter().copied());
        }
        for r in &access {
            if !entry.access.contains(r) {
                entry.access.push(*r);
            }
        }
        entry.denied_by.extend(denied_by);
        entry.may_be_denied_by.extend(may_be);
        let mut areas: BTreeSet<String> = entry.data_areas.iter().cloned().collect();
        areas.extend(data.iter().map(|a| area(a).to_string()));
        entry.data_areas = areas.into_iter().collect();
        entry.paths.push(PathOut {
            role_definition_id: g.role.guid.to_string(),
            role_name: g.role.role_name.clone(),
            scope: g.scope.clone(),
            kind: g.kind,
            condition: g.condition.clone(),
            access,
        });
    }
    let mut principals: Vec<PrincipalExposure> = by_principal
        .into_values()
        .map(|mut p| {
            p.access.sort();
            p.denied_by.sort();
            p.denied_by.dedup();
            p.may_be_denied_by.sort();
            p.may_be_denied_by.dedup();
            p.paths.sort_by(|a, b| (a.kind, &a.scope, &a.role_name).cmp(&(b.kind, &b.scope, &b.role_name)));
            p.least_privileged_role = data_held.get(&p.principal_id).and_then(least_privileged);
            p
        })
        .collect();
    // Keys first, then grants, then data; then by id.
    principals.sort_by(|a, b| {
        let rank = |p: &PrincipalExposure| {
            (!p.access.contains(&Reach::Keys), !p.access.contains(&Reach::Grant), p.principal_id.clone())
        };
        rank(a).cmp(&rank(b))
    });
    HubExposure { id: hub.to_string(), shared_access, shared_access_policies: policies, principals }
}

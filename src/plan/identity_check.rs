//! The operator's own Azure identity, judged by effective permissions: what it holds beyond what
//! `setup` prints (`OverPrivileged`) and what it lacks for the kinds in use (`MissingPermission`).
//! Pure: the caller reads the identity's role assignments and their definitions.
//!
//! A role assignment's delegation condition is evaluated, not read by name: an RBAC
//! Administrator whose condition lets Owner through counts as unconditioned.

use iothub_access_abac::{RoleAssignmentOperation, Source};
use uuid::Uuid;

use crate::domain::{PrincipalType, RoleDefinition, Scope};

/// Owner: the probe for "may assign any role".
const OWNER: Uuid = Uuid::from_u128(0x8e3af657_a8ff_443c_a75c_2fe8c4bcb635);
const RA_WRITE: &str = "Microsoft.Authorization/roleAssignments/write";
const RA_DELETE: &str = "Microsoft.Authorization/roleAssignments/delete";
const RD_WRITE: &str = "Microsoft.Authorization/roleDefinitions/write";
const HUB_WRITE: &str = "Microsoft.Devices/IotHubs/write";

/// Actions no part of the operator needs, each standing for a class of power (probed through
/// the role's actions, notActions and wildcards).
const NEVER_NEEDED: &[(&str, &str)] = &[
    ("Microsoft.Devices/IotHubs/listkeys/action", "reads every shared access key of the hubs"),
    ("Microsoft.Compute/virtualMachines/write", "writes resources of any kind"),
    ("Microsoft.Authorization/policyAssignments/write", "assigns Azure Policy"),
    ("Microsoft.Authorization/elevateAccess/action", "elevates to User Access Administrator at the root"),
];

/// One role assignment the identity holds (directly or through a group).
#[derive(Clone, Debug)]
pub struct Held {
    pub scope: Scope,
    pub role: RoleDefinition,
    pub condition: Option<String>,
}

/// What the kinds in use need, and where.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    pub allowed_scopes: Vec<Scope>,
    /// A role the identity must be able to assign and remove on the allowed scopes (the IoT Hub
    /// data role it is probed with).
    pub probe_role: Option<Uuid>,
    pub principal_types: Vec<PrincipalType>,
    /// `IotHubCustomRole`s are managed: role definition writes on the allowed scopes.
    pub custom_roles: bool,
    /// Hubs whose shared access is managed: hub writes there.
    pub hub_scopes: Vec<Scope>,
    /// Subscriptions searched for what reaches a hub by key.
    pub search_subscriptions: Vec<String>,
}

/// A finding's kind: the bounded label of `iothub_access_identity_findings{finding}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    OverPrivileged,
    MissingPermission,
}

impl FindingKind {
    pub const ALL: [FindingKind; 2] = [FindingKind::OverPrivileged, FindingKind::MissingPermission];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::OverPrivileged => "OverPrivileged",
            FindingKind::MissingPermission => "MissingPermission",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub kind: FindingKind,
    pub detail: String,
}

/// Whether `held` lets its holder perform `action` (for a role assignment write or delete: of
/// `role` for `principal_type`, with its condition evaluated; a condition that does not parse
/// allows nothing, as in Azure).
fn allows(held: &Held, action: &str, role: Uuid, principal_type: &str) -> bool {
    if !held.role.grants_action(action) {
        return false;
    }
    match held.condition.as_deref().filter(|c| !c.trim().is_empty()) {
        None => true,
        Some(text) => iothub_access_abac::parse(text)
            .map(|c| {
                let (role, nobody) = (role.to_string(), Uuid::nil().to_string());
                let op = if action.eq_ignore_ascii_case(RA_DELETE) {
                    RoleAssignmentOperation::delete(&role, &nobody, Some(principal_type))
                } else {
                    RoleAssignmentOperation::write(&role, &nobody, Some(principal_type))
                };
                c.evaluate(&op)
            })
            .unwrap_or(false),
    }
}

const TYPES: [&str; 3] = ["User", "Group", "ServicePrincipal"];

fn at(held: &Held) -> String {
    format!("'{}' at {}", held.role.role_name, held.scope)
}

/// Roles a condition must never let through, beyond Owner: each can grant or write anything.
const PRIVILEGED: &[(Uuid, &str)] = &[
    (Uuid::from_u128(0x18d7d88d_d35e_4fb5_a5c3_7773c20a72d9), "User Access Administrator"),
    (Uuid::from_u128(0xf58310d9_a9f6_439a_9e8d_f62e7b41a168), "Role Based Access Control Administrator"),
    (Uuid::from_u128(0xb24988ac_6180_42a0_ab88_20f7382dd24c), "Contributor"),
    // No real role: stands for "any role the condition does not name".
    (Uuid::from_u128(0x0b5e0b5e_0000_4000_8000_00000000f00d), "any other role"),
];

/// The first privileged probe `h` lets its holder assign or remove, in words.
fn beyond_data_roles(h: &Held) -> Option<String> {
    for (role, name) in PRIVILEGED {
        for t in TYPES {
            if allows(h, RA_WRITE, *role, t) {
                return Some(format!("assign {name} to a {t}"));
            }
            if allows(h, RA_DELETE, *role, t) {
                return Some(format!("remove assignments of {name} from a {t}"));
            }
        }
    }
    None
}

/// Why `h`'s condition cannot be judged by probing role and principal type: it does not parse
/// here, or it reads something else (a principal id, the environment, the principal's
/// attributes) whose value no probe can know.
fn unjudged_condition(h: &Held) -> Option<String> {
    let text = h.condition.as_deref().filter(|c| !c.trim().is_empty())?;
    if !h.role.grants_action(RA_WRITE) && !h.role.grants_action(RA_DELETE) {
        return None;
    }
    match iothub_access_abac::parse(text) {
        Err(e) => Some(format!("it does not parse here: {e}")),
        Ok(c) => {
            let other: Vec<String> = c
                .attributes()
                .into_iter()
                .filter(|(src, name)| {
                    !matches!(src, Source::Request | Source::Resource)
                        || !(name.ends_with(":RoleDefinitionId") || name.ends_with(":PrincipalType"))
                })
                .map(|(src, name)| format!("{src}[{name}]"))
                .collect();
            (!other.is_empty()).then(|| format!("it reads {}", other.join(", ")))
        }
    }
}

/// What `held` (every assignment the identity holds anywhere) gives beyond `needs`.
pub fn over_privileged(held: &[Held], needs: &Needs) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut say = |detail: String| out.push(Finding { kind: FindingKind::OverPrivileged, detail });
    for h in held {
        if TYPES.iter().any(|t| allows(h, RA_WRITE, OWNER, t)) {
            let why =
                if h.condition.is_some() { "its condition lets Owner through" } else { "no delegation condition" };
            say(format!(
                "{} may assign any role, Owner included ({why}); grant what `iothub-access-operator setup` prints instead",
                at(h)
            ));
        } else if let Some(probe) = beyond_data_roles(h) {
            say(format!(
                "{} may {probe}; its condition should list only IoT Hub data roles (what `iothub-access-operator setup` prints)",
                at(h)
            ));
        }
        if let Some(why) = unjudged_condition(h) {
            say(format!("{} has a condition this check cannot judge ({why}): check it by hand", at(h)));
        }
        for (action, what) in NEVER_NEEDED {
            if h.role.grants_action(action) {
                say(format!("{} {what} ({action}), which the operator never needs", at(h)));
            }
        }
        if h.role.grants_action(RD_WRITE) && !needs.custom_roles {
            say(format!("{} may write role definitions, which no IotHubCustomRole in use needs", at(h)));
        }
        if h.role.grants_action(HUB_WRITE) && !needs.hub_scopes.iter().any(|s| s.covers(&h.scope)) {
            say(format!(
                "{} may write hubs (and so add shared access policies) beyond the hubs whose shared access is managed",
                at(h)
            ));
        }
    }
    dedup(out)
}

/// What the kinds in use need that `reach` lacks. `reach(scope)`: the assignments that apply
/// at `scope` (at it or inherited from above).
pub fn missing(reach: &dyn Fn(&Scope) -> Vec<Held>, needs: &Needs) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut need = |scope: &Scope, action: &str, role: Option<(Uuid, &str)>, what: &str| {
        let held = reach(scope);
        let ok = held.iter().any(|h| match role {
            Some((r, t)) => allows(h, action, r, t),
            None => h.role.grants_action(action),
        });
        if !ok {
            out.push(Finding {
                kind: FindingKind::MissingPermission,
                detail: format!("no {action} at {scope}: {what}; grant what `iothub-access-operator setup` prints"),
            });
        }
    };
    for scope in &needs.allowed_scopes {
        need(scope, "Microsoft.Authorization/roleAssignments/read", None, "grants cannot be observed");
        need(scope, "Microsoft.Authorization/roleDefinitions/read", None, "roles cannot be judged");
        if let Some(role) = needs.probe_role {
            for t in &needs.principal_types {
                let what = format!("role {role} cannot be assigned or removed for a {}", t.as_str());
                need(scope, RA_WRITE, Some((role, t.as_str())), &what);
                need(scope, RA_DELETE, Some((role, t.as_str())), &what);
            }
        }
        if needs.custom_roles {
            need(scope, RD_WRITE, None, "custom roles cannot be written");
        }
    }
    for scope in &needs.hub_scopes {
        need(scope, HUB_WRITE, None, "shared access cannot be changed");
    }
    for sub in &needs.search_subscriptions {
        let scope = Scope::Subscription(sub.clone());
        need(&scope, "Microsoft.Devices/provisioningServices/read", None, "DPS links cannot be searched");
    }
    dedup(out)
}

fn dedup(mut v: Vec<Finding>) -> Vec<Finding> {
    v.sort();
    v.dedup();
    v
}

/// Findings counted by kind, every kind present (for the gauge).
pub fn counts(findings: &[Finding]) -> Vec<(FindingKind, usize)> {
    FindingKind::ALL.iter().map(|k| (*k, findings.iter().filter(|f| f.kind == *k).count())).collect()
}

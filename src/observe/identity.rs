//! Reads the operator's own role assignments (the identity's object id, `assignedTo(...)`: its
//! groups' too) and their definitions, and judges them with `plan::identity_check`.
//!
//! Over-privilege is looked for everywhere the identity can look: in every subscription it can
//! list and at the allowed scopes outside subscriptions (management groups, `/`). What it lacks is
//! decided at each scope it needs something, on the assignments that apply there (`atScope()`: at
//! it and inherited from above).

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use crate::azure::{AssignmentFilter, Azure, AzureError};
use crate::domain::{ObservedAssignment, RoleDefinition, RoleDefinitionId, Scope};
use crate::plan::identity_check::{Finding, Held, Needs, missing, over_privileged};

/// The findings for `oid` against `needs`. `Err` when a read failed (the check is advisory:
/// the caller logs it and tries again at the next resync).
pub async fn check(azure: &dyn Azure, oid: &str, needs: &Needs) -> Result<Vec<Finding>, AzureError> {
    let mut roles: HashMap<Uuid, Option<RoleDefinition>> = HashMap::new();

    let mut everywhere: BTreeMap<String, ObservedAssignment> = BTreeMap::new();
    let subscriptions = azure.list_subscriptions().await?;
    let mut roots: Vec<Scope> = subscriptions.iter().map(|s| Scope::Subscription(s.clone())).collect();
    roots.extend(needs.allowed_scopes.iter().filter(|s| s.subscription_id().is_none()).cloned());
    for scope in &roots {
        for a in azure.list_role_assignments(scope, &AssignmentFilter::AssignedTo(oid.into())).await? {
            everywhere.insert(a.id.to_string().to_ascii_lowercase(), a);
        }
    }
    let held_everywhere = held(azure, &mut roles, everywhere.into_values()).await?;

    let mut at: Vec<(Scope, Vec<Held>)> = Vec::new();
    let mut scopes: Vec<Scope> = needs.allowed_scopes.clone();
    scopes.extend(needs.hub_scopes.iter().cloned());
    scopes.extend(needs.search_subscriptions.iter().map(|s| Scope::Subscription(s.clone())));
    scopes.sort_by_key(Scope::key);
    scopes.dedup_by_key(|s| s.key());
    for scope in scopes {
        let listed = azure.list_role_assignments(&scope, &AssignmentFilter::AtScopeAssignedTo(oid.into())).await?;
        let h = held(azure, &mut roles, listed.into_iter()).await?;
        at.push((scope, h));
    }
    let reach = |scope: &Scope| -> Vec<Held> {
        at.iter().find(|(s, _)| s.key() == scope.key()).map(|(_, h)| h.clone()).unwrap_or_default()
    };

    let mut findings = over_privileged(&held_everywhere, needs);
    findings.extend(missing(&reach, needs));
    findings.sort();
    findings.dedup();
    Ok(findings)
}

/// The assignments with their definitions (read once per role; a definition that no longer
/// exists grants nothing and is left out).
async fn held(
    azure: &dyn Azure,
    roles: &mut HashMap<Uuid, Option<RoleDefinition>>,
    assignments: impl Iterator<Item = ObservedAssignment>,
) -> Result<Vec<Held>, AzureError> {
    let mut out = Vec::new();
    for a in assignments {
        if let std::collections::hash_map::Entry::Vacant(slot) = roles.entry(a.role_definition) {
            let at = a.id.scope.subscription_id().map_or(Scope::Root, |s| Scope::Subscription(s.to_string()));
            slot.insert(azure.get_role_definition(&RoleDefinitionId::new(at, a.role_definition)).await?);
        }
        if let Some(Some(role)) = roles.get(&a.role_definition) {
            out.push(Held { scope: a.id.scope.clone(), role: role.clone(), condition: a.condition.clone() });
        }
    }
    Ok(out)
}

//! The reads of one hub's exposure audit: the hub, every role assignment and eligibility that
//! applies at it (one list per kind at the hub's scope: ARM returns those at and above it), their
//! role definitions (one read per distinct role), the deny assignments, and, only when asked, the
//! shared access policy names. Judged by `plan::exposure` (pure).

use std::collections::HashMap;

use uuid::Uuid;

use crate::azure::{AssignmentFilter, Azure, AzureError};
use crate::domain::{Access, HubId, RoleDefinition, RoleDefinitionId, Scope};
use crate::plan::exposure::{Deny, Grantee, HubExposure, PathKind, SharedAccessPolicy, judge};

/// Does an assignment at `at`, listed at `hub`'s scope, apply to the hub? At or above it: ARM
/// lists management group and root assignments only when they are above.
fn applies(at: &Scope, hub: &Scope) -> bool {
    at.covers(hub) || (at.subscription_id().is_none() && !hub.covers(at))
}

/// Audit `hub`; `read_policies`: also list its shared access policies (Azure answers their names
/// only with their keys, which are dropped unread: it needs the listkeys permission).
pub async fn audit_hub(azure: &dyn Azure, hub: &HubId, read_policies: bool) -> Result<HubExposure, AzureError> {
    let observed = azure.get_hub(hub).await?.ok_or_else(|| AzureError::NotFound {
        code: "ResourceNotFound".into(),
        message: format!("IoT hub {hub} not found"),
    })?;
    exposure_of(azure, hub, observed.shared_access, read_policies).await
}

/// The same, for a hub whose shared access setting the caller has just read.
pub async fn exposure_of(
    azure: &dyn Azure,
    hub: &HubId,
    shared_access: Access,
    read_policies: bool,
) -> Result<HubExposure, AzureError> {
    let scope = hub.scope();
    let assignments = azure.list_role_assignments(&scope, &AssignmentFilter::All).await?;
    let eligibilities = azure.list_role_eligibilities(&scope).await?;
    let denies = azure.list_deny_assignments(&scope).await?;

    let mut roles: HashMap<Uuid, Option<RoleDefinition>> = HashMap::new();
    let wanted = assignments
        .iter()
        .filter(|a| applies(&a.id.scope, &scope))
        .map(|a| a.role_definition)
        .chain(eligibilities.iter().filter(|e| applies(&e.scope, &scope)).map(|e| e.role_definition));
    for guid in wanted {
        if let std::collections::hash_map::Entry::Vacant(slot) = roles.entry(guid) {
            let id = RoleDefinitionId::new(Scope::Subscription(hub.subscription_id.clone()), guid);
            slot.insert(azure.get_role_definition(&id).await?);
        }
    }
    let role = |guid: &Uuid| roles.get(guid).cloned().flatten();

    let mut grantees = Vec::new();
    for a in assignments.iter().filter(|a| applies(&a.id.scope, &scope)) {
        if let Some(r) = role(&a.role_definition) {
            grantees.push(Grantee {
                principal_id: a.principal_id.clone(),
                principal_type: a.principal_type.clone().unwrap_or_default(),
                scope: a.id.scope.to_string(),
                role: r,
                kind: PathKind::Active,
                condition: a.condition.clone(),
            });
        }
    }
    for e in eligibilities.iter().filter(|e| applies(&e.scope, &scope)) {
        if let Some(r) = role(&e.role_definition) {
            grantees.push(Grantee {
                principal_id: e.principal_id.clone(),
                principal_type: e.principal_type.clone().unwrap_or_default(),
                scope: e.scope.to_string(),
                role: r,
                kind: PathKind::Eligible,
                condition: e.condition.clone(),
            });
        }
    }
    let denies: Vec<Deny> = denies
        .into_iter()
        .filter(|d| applies(&d.scope, &scope) && (!d.do_not_apply_to_child_scopes || d.scope.key() == scope.key()))
        .map(|d| Deny {
            name: d.name,
            permissions: d.permissions,
            principals: d.principals,
            exclude: d.exclude,
            conditional: d.conditional,
        })
        .collect();
    let policies = if read_policies {
        Some(
            azure
                .list_hub_policies(hub)
                .await?
                .into_iter()
                .map(|p| SharedAccessPolicy { key_name: p.key_name, rights: p.rights })
                .collect(),
        )
    } else {
        None
    };
    Ok(judge(&scope, shared_access, policies, &grantees, &denies))
}

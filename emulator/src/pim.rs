//! Microsoft.Authorization 2020-10-01: role eligibility schedule instances (Privileged Identity
//! Management), read-only: each seeded eligibility is one current instance of its schedule.
//!
//! Sources: specification/authorization/resource-manager/Microsoft.Authorization/stable/2020-10-01/
//! RoleEligibilityScheduleInstance.json (RoleEligibilityScheduleInstances_ListForScope,
//! `{scope}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances`, and _Get,
//! `.../roleEligibilityScheduleInstances/{name}`) with its examples
//! GetRoleEligibilityScheduleInstancesByScope.json and GetRoleEligibilityScheduleInstanceByName.json
//! (copies in tests/contract/). The examples' scope alias
//! `providers/Microsoft.Subscription/subscriptions/{id}` is read as `/subscriptions/{id}`; answers
//! always name the `/subscriptions/{id}` form.
//!
//! `$filter`, as the spec documents it: `atScope()` (at or above the scope), `principalId eq {id}`
//! (quoted or not; at, above and below), `assignedTo('{id}')` (the principal and the groups it is
//! a member of, transitively), `asTarget()` (`assignedTo` the caller), and `atScope() and` one of
//! the others. Anything else answers 400 `UnsupportedQuery`. Without a filter: at, above and below
//! the scope. An eligibility whose `endDateTime` has passed is not listed.
//!
//! Not in the spec, the emulator's own choices (unverified): `status` is always `Provisioned`;
//! `memberType` is `Group` when the instance reaches the `assignedTo`/`asTarget` principal through
//! a group, `Inherited` when its scope is above the one asked about, else `Direct`; the instance's
//! name is a UUID v5 of the schedule's name and start; `expandedProperties.principal` has no
//! `email` (the directory holds none).

use serde_json::{Value, json};

use crate::authz::{builtin, call_term, is_call0, terms, unquote};
use crate::ctx::{Ctx, Reply, method_not_allowed};
use crate::seed::RoleEligibility;
use crate::state::{State, canonical_scope, management_group_of, subscription_of};

const TYPE: &str = "Microsoft.Authorization/RoleEligibilityScheduleInstances";

fn prefix(scope: &str) -> &str {
    if scope == "/" { "" } else { scope }
}

/// The instance's name: stable for a schedule and its start.
pub(crate) fn instance_name(e: &RoleEligibility) -> String {
    let seed = format!("{}|{}", e.name, e.start_date_time.as_deref().unwrap_or(""));
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, seed.as_bytes()).hyphenated().to_string()
}

fn role_definition_id(e: &RoleEligibility) -> String {
    match subscription_of(&e.scope) {
        Some(s) => {
            format!("/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{}", e.role_definition_id)
        }
        None => format!("/providers/Microsoft.Authorization/roleDefinitions/{}", e.role_definition_id),
    }
}

/// `expandedProperties.scope`: id, display name and kind of the eligibility's scope.
fn scope_details(st: &State, scope: &str) -> Value {
    let parts: Vec<&str> = scope.split('/').filter(|p| !p.is_empty()).collect();
    let (name, kind) = if scope == "/" {
        ("Root".to_string(), "root")
    } else if let Some(mg) = management_group_of(scope) {
        let m = st.management_groups.iter().find(|m| m.id.eq_ignore_ascii_case(&mg));
        (m.and_then(|m| m.display_name.clone()).unwrap_or(mg), "managementgroup")
    } else if parts.len() == 2 {
        let name = st.subscription(parts[1]).and_then(|s| s.display_name).unwrap_or_else(|| parts[1].to_string());
        (name, "subscription")
    } else if parts.len() == 4 {
        (parts[3].to_string(), "resourcegroup")
    } else {
        (parts.last().map_or(String::new(), |p| p.to_string()), "resource")
    };
    json!({"id": scope, "displayName": name, "type": kind})
}

fn instance_json(st: &State, e: &RoleEligibility, member_type: &str) -> Value {
    let role_id = role_definition_id(e);
    let custom = st.role_definitions.iter().find(|r| r.name == e.role_definition_id);
    let (role_name, role_type) = match (builtin(&e.role_definition_id), custom) {
        (Some(b), _) => (Some(b.role_name.clone()), "BuiltInRole"),
        (None, Some(c)) => (Some(c.role_name.clone()), "CustomRole"),
        (None, None) => (None, "CustomRole"),
    };
    let principal_type = e.principal_type.clone().unwrap_or_else(|| "User".into());
    let display = st.principal(&e.principal_id).and_then(|p| p.display_name.clone());
    let name = instance_name(e);
    json!({
        "properties": {
            "scope": e.scope,
            "roleDefinitionId": role_id,
            "principalId": e.principal_id,
            "principalType": principal_type,
            "status": "Provisioned",
            "roleEligibilityScheduleId": format!("{}/providers/Microsoft.Authorization/RoleEligibilitySchedules/{}", prefix(&e.scope), e.name),
            "startDateTime": e.start_date_time,
            "endDateTime": e.end_date_time,
            "memberType": member_type,
            "createdOn": e.created_on,
            "condition": e.condition,
            "conditionVersion": e.condition_version,
            "expandedProperties": {
                "scope": scope_details(st, &e.scope),
                "roleDefinition": {"id": role_id, "displayName": role_name, "type": role_type},
                "principal": {"id": e.principal_id, "displayName": display, "type": principal_type},
            }
        },
        "name": name,
        "id": format!("{}/providers/{TYPE}/{name}", prefix(&e.scope)),
        "type": TYPE,
    })
}

/// Whether the eligibility is current: started or not, it has not ended.
fn current(e: &RoleEligibility) -> bool {
    match e.end_date_time.as_deref().map(str::parse::<jiff::Timestamp>) {
        Some(Ok(end)) => end > jiff::Timestamp::now(),
        _ => true,
    }
}

pub(crate) fn eligibilities(ctx: &Ctx, scope: &str, name: Option<&str>) -> Reply {
    let scope = canonical_scope(scope);
    match (ctx.method.as_str(), name) {
        ("GET", None) => list(ctx, &scope),
        ("GET", Some(n)) => get(ctx, &scope, n),
        _ => method_not_allowed(ctx),
    }
}

fn unsupported(filter: &str) -> Reply {
    Reply::arm_error(
        400,
        "UnsupportedQuery",
        format!(
            "The filter '{filter}' is not supported. Supported filters are atScope(), principalId eq {{objectId}}, assignedTo('{{objectId}}'), asTarget(), and atScope() with one of the others."
        ),
    )
}

/// `name eq value`, the value quoted or bare.
fn eq_value(term: &str, name: &str) -> Option<String> {
    let mut words = term.splitn(3, ' ');
    let (n, op, v) = (words.next()?, words.next()?, words.next()?);
    if !n.eq_ignore_ascii_case(name) || !op.eq_ignore_ascii_case("eq") {
        return None;
    }
    Some(unquote(v).unwrap_or_else(|| v.trim().to_string()))
}

enum Who {
    All,
    /// Exactly this principal.
    Principal(String),
    /// This principal and its groups.
    AssignedTo(String),
}

fn list(ctx: &Ctx, scope: &str) -> Reply {
    let filter = ctx.query("$filter").unwrap_or_default();
    let mut at_scope = false;
    let mut who = Who::All;
    for t in terms(&filter) {
        let next = if is_call0(&t, "atScope") {
            at_scope = true;
            continue;
        } else if let Some(p) = eq_value(&t, "principalId") {
            Who::Principal(p.to_ascii_lowercase())
        } else if let Some(p) = call_term(&t, "assignedTo") {
            Who::AssignedTo(p.to_ascii_lowercase())
        } else if is_call0(&t, "asTarget") {
            Who::AssignedTo(ctx.caller_oid().unwrap_or_default().to_ascii_lowercase())
        } else {
            return unsupported(&filter);
        };
        if !matches!(who, Who::All) {
            return unsupported(&filter);
        }
        who = next;
    }
    let st = ctx.inner.lock_state();
    let groups = match &who {
        Who::AssignedTo(p) => st.groups_of(p),
        _ => Vec::new(),
    };
    let items: Vec<Value> = st
        .role_eligibilities
        .iter()
        .filter(|e| current(e))
        .filter(|e| st.at_or_above(&e.scope, scope) || (!at_scope && st.at_or_above(scope, &e.scope)))
        .filter_map(|e| {
            let id = e.principal_id.to_ascii_lowercase();
            let via_group = match &who {
                Who::All => false,
                Who::Principal(p) if *p == id => false,
                Who::AssignedTo(p) if *p == id => false,
                Who::AssignedTo(_) if groups.contains(&id) => true,
                _ => return None,
            };
            let member = if via_group {
                "Group"
            } else if !e.scope.eq_ignore_ascii_case(scope) && st.at_or_above(&e.scope, scope) {
                "Inherited"
            } else {
                "Direct"
            };
            Some(instance_json(&st, e, member))
        })
        .collect();
    drop(st);
    ctx.page(items)
}

/// RoleEligibilityScheduleInstances_Get: the instance `name` at exactly `scope`. The 404's code is
/// the emulator's (unverified).
fn get(ctx: &Ctx, scope: &str, name: &str) -> Reply {
    let st = ctx.inner.lock_state();
    match st
        .role_eligibilities
        .iter()
        .find(|e| current(e) && e.scope.eq_ignore_ascii_case(scope) && instance_name(e).eq_ignore_ascii_case(name))
    {
        Some(e) => Reply::json(200, instance_json(&st, e, "Direct")),
        None => Reply::arm_error(
            404,
            "RoleEligibilityScheduleInstanceNotFound",
            format!("The role eligibility schedule instance '{name}' is not found."),
        ),
    }
}

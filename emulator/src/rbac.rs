//! Azure RBAC for the caller, when the seed asks for it (`enforceRbac: true`; off by default, so
//! every other test sees a caller that may do anything).
//!
//! Every ARM request is authorized like ARM does: the caller (the token's `oid`) and every group
//! it is a member of, transitively, need a role assignment at the request's scope or above
//! (resource group, subscription, management groups, `/`) whose role definition has a permission
//! block with an `actions` pattern matching the request's action and no `notActions` pattern
//! matching it (`*` matches any run of characters, case-insensitively). An assignment with a
//! `condition` (ABAC, conditionVersion 2.0) grants only when the condition holds for the request:
//! for `roleAssignments/write` the `@Request` attributes come from the body (an attribute the body
//! does not send is absent, so a condition on `PrincipalType` refuses a write without it), for
//! `roleAssignments/delete` the `@Resource` attributes from the assignment being deleted. A denial
//! is ARM's plain 403 `AuthorizationFailed`, which never names the condition.
//!
//! A role definition PUT is authorized at its route scope and at each of the `assignableScopes` it
//! asks for. Subscriptions are listed when the caller holds any assignment at, above or inside them.
//!
//! Deny assignments are evaluated as well, and win (Azure evaluates them before role
//! assignments): one denies the request when it applies at the request's scope (at or above it;
//! only at it with `doNotApplyToChildScopes`), names the caller or one of its groups in
//! `principals` (or names everyone: the zero GUID of type `SystemDefined`), names neither in
//! `excludePrincipals`, and has a permission block whose `actions` match the action and whose
//! `notActions` do not (a deny condition that does not parse denies: fail closed). A caller whom
//! a role permits gets ARM's 403 `DenyAssignmentAuthorizationFailed` naming the deny assignment
//! (the message as ARM writes it in the wild: "... has permission to perform action '{action}' on
//! scope '{scope}'; however, the access is denied because of the deny assignment with name
//! '{denyAssignmentName}' and Id '{id}' at scope '{scope}'."); one that no role permits, the plain
//! `AuthorizationFailed`. Data actions are not served, so `dataActions` deny nothing here.

use iothub_access_abac::{Attributes, Source};
use serde_json::Value;

use crate::authz::{builtin, hex32};
use crate::ctx::{Ctx, Reply};
use crate::deny::EVERYONE;
use crate::routes::{Route, action};
use crate::seed::{DenyAssignment, DenyPrincipal, RoleAssignment, RoleDefinition};
use crate::state::{State, canonical_scope, guid_of, normalize_scope};

const NOBODY: &str = "00000000-0000-0000-0000-000000000000";
const ASSIGNMENTS: &str = "Microsoft.Authorization/roleAssignments";

/// `None` when the request may go on; ARM's 403 otherwise.
pub(crate) fn authorize(ctx: &Ctx, route: &Route) -> Option<Reply> {
    // The subscription and entity lists show what the caller may see; they are not refused.
    if matches!(route, Route::SubscriptionList | Route::Entities | Route::NotFound) {
        return None;
    }
    let st = ctx.inner.lock_state();
    if !st.enforce_rbac {
        return None;
    }
    let oid = ctx.caller_oid().unwrap_or_else(|| NOBODY.into());
    let act = action(route, &ctx.method);
    let (scope, extra) = scopes(ctx, route);
    let request = RequestAttributes::of(ctx, &st, route, &act);
    let resource = normalize_scope(&ctx.raw_path);
    for s in std::iter::once(&scope).chain(extra.iter()) {
        if !permitted(&st, &oid, &act, s, &request) {
            return Some(denied(&oid, &act, &resource));
        }
        if let Some(d) = deny_blocking(&st, &oid, &act, s, &request) {
            return Some(denied_by_assignment(&oid, &act, &resource, d));
        }
    }
    None
}

/// ARM's 403 when a deny assignment takes away what a role grants.
fn denied_by_assignment(oid: &str, act: &str, scope: &str, d: &DenyAssignment) -> Reply {
    Reply::arm_error(
        403,
        "DenyAssignmentAuthorizationFailed",
        format!(
            "The client '{oid}' with object id '{oid}' has permission to perform action '{act}' on scope '{scope}'; however, the access is denied because of the deny assignment with name '{}' and Id '{}' at scope '{}'.",
            d.deny_assignment_name,
            hex32(&d.name),
            d.scope
        ),
    )
}

/// The deny assignment that takes `act` at `scope` away from the caller, if any.
pub(crate) fn deny_blocking<'a>(
    st: &'a State,
    oid: &str,
    act: &str,
    scope: &str,
    request: &RequestAttributes,
) -> Option<&'a DenyAssignment> {
    let ids = identities(st, oid);
    let named = |p: &DenyPrincipal| ids.iter().any(|i| p.id.eq_ignore_ascii_case(i));
    st.deny_assignments.iter().find(|d| {
        let here = if d.do_not_apply_to_child_scopes {
            d.scope.eq_ignore_ascii_case(scope)
        } else {
            st.at_or_above(&d.scope, scope)
        };
        here && d.principals.iter().any(|p| p.id == EVERYONE || named(p))
            && !d.exclude_principals.iter().any(named)
            && deny_condition_holds(d.condition.as_deref(), request)
            && d.permissions.iter().any(|p| {
                p.actions.iter().any(|pat| wildcard_match(pat, act))
                    && !p.not_actions.iter().any(|pat| wildcard_match(pat, act))
                    && deny_condition_holds(p.condition.as_deref(), request)
            })
    })
}

/// A deny assignment's (or permission's) condition: none applies; one that does not parse
/// applies too (fail closed: it denies).
fn deny_condition_holds(condition: Option<&str>, request: &RequestAttributes) -> bool {
    let Some(text) = condition.filter(|c| !c.trim().is_empty()) else { return true };
    iothub_access_abac::parse(text).map_or(true, |c| c.evaluate(request))
}

/// Whether the caller holds any assignment at, above or inside `/subscriptions/{sub}` (what
/// `GET /subscriptions` lists under RBAC).
pub(crate) fn sees_subscription(st: &State, oid: Option<&str>, sub: &str) -> bool {
    sees_scope(st, oid, &format!("/subscriptions/{sub}"))
}

/// Whether the caller holds any assignment at, above or inside `scope` (always, without RBAC).
pub(crate) fn sees_scope(st: &State, oid: Option<&str>, scope: &str) -> bool {
    if !st.enforce_rbac {
        return true;
    }
    let ids = identities(st, oid.unwrap_or(NOBODY));
    st.role_assignments.iter().any(|a| {
        ids.contains(&a.principal_id.to_ascii_lowercase())
            && (st.at_or_above(&a.scope, scope) || st.at_or_above(scope, &a.scope))
    })
}

/// ARM's 403 for an action the caller may not perform: the same text whether no role grants it
/// or a condition did not hold (Microsoft's "Troubleshoot Azure RBAC": "does not have authorization
/// or an ABAC condition not fulfilled").
pub(crate) fn denied(oid: &str, act: &str, scope: &str) -> Reply {
    Reply::arm_error(
        403,
        "AuthorizationFailed",
        format!(
            "The client '{oid}' with object id '{oid}' does not have authorization or an ABAC condition not fulfilled to perform action '{act}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        ),
    )
}

/// The scope the request is authorized at, and the other scopes it must also be allowed at.
fn scopes(ctx: &Ctx, route: &Route) -> (String, Vec<String>) {
    match route {
        Route::Assignments { scope, name } => {
            let scope = normalize_scope(scope);
            let at = match name {
                Some(n) if scope == "/" => format!("/providers/{ASSIGNMENTS}/{n}"),
                Some(n) => format!("{scope}/providers/{ASSIGNMENTS}/{n}"),
                None => scope.clone(),
            };
            // Management group scopes are matched whole (the chain above them is known by name).
            (if is_management_group_child(&scope) { scope } else { at }, Vec::new())
        }
        Route::Definitions { scope, .. } => {
            let extra = if ctx.method == "PUT" {
                ctx.json_body()
                    .ok()
                    .and_then(|b| b.pointer("/properties/assignableScopes").cloned())
                    .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
                    .unwrap_or_default()
                    .iter()
                    .map(|s| normalize_scope(s))
                    .collect()
            } else {
                Vec::new()
            };
            (normalize_scope(scope), extra)
        }
        Route::DenyAssignments { scope, .. } | Route::Eligibilities { scope, .. } => {
            (canonical_scope(scope), Vec::new())
        }
        // The hub's keys are read at the hub.
        Route::HubKeys { sub, rg, name, .. } => {
            (format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Devices/IotHubs/{name}"), Vec::new())
        }
        _ => (normalize_scope(&ctx.raw_path), Vec::new()),
    }
}

fn is_management_group_child(scope: &str) -> bool {
    scope.to_ascii_lowercase().starts_with("/providers/microsoft.management/")
}

/// The caller and the groups it belongs to (lowercase).
fn identities(st: &State, oid: &str) -> Vec<String> {
    let mut ids = vec![oid.to_ascii_lowercase()];
    ids.extend(st.groups_of(oid));
    ids
}

fn permitted(st: &State, oid: &str, act: &str, scope: &str, request: &RequestAttributes) -> bool {
    let ids = identities(st, oid);
    st.role_assignments.iter().filter(|a| ids.contains(&a.principal_id.to_ascii_lowercase())).any(|a| {
        st.at_or_above(&a.scope, scope)
            && definition(st, &a.role_definition_id).is_some_and(|d| grants(d, act))
            && condition_holds(a, request)
    })
}

fn definition<'a>(st: &'a State, guid: &str) -> Option<&'a RoleDefinition> {
    builtin(guid).or_else(|| st.role_definitions.iter().find(|r| r.name.eq_ignore_ascii_case(guid)))
}

/// Whether one of the definition's permission blocks allows `act` (actions, less notActions).
pub(crate) fn grants(d: &RoleDefinition, act: &str) -> bool {
    d.permissions.iter().any(|p| {
        p.actions.iter().any(|pat| wildcard_match(pat, act))
            && !p.not_actions.iter().any(|pat| wildcard_match(pat, act))
    })
}

/// ARM's action patterns: `*` matches any run of characters (`/` included), case-insensitively
/// (the same matching as a condition's `ActionMatches`).
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    iothub_access_abac::action_matches(pattern, text)
}

fn condition_holds(a: &RoleAssignment, request: &RequestAttributes) -> bool {
    let Some(text) = a.condition.as_deref().filter(|c| !c.trim().is_empty()) else { return true };
    // A stored condition was checked when it was written (or seeded); one that no longer parses
    // grants nothing (fail closed).
    match iothub_access_abac::parse(text) {
        Ok(c) => c.evaluate(request),
        Err(_) => false,
    }
}

/// The attributes a role assignment condition reads, for one request.
pub(crate) struct RequestAttributes {
    action: String,
    /// `@Request[...]`: what a role assignment PUT asks for.
    request: Vec<(String, String)>,
    /// `@Resource[...]`: the assignment a DELETE removes.
    resource: Vec<(String, String)>,
}

impl RequestAttributes {
    fn of(ctx: &Ctx, st: &State, route: &Route, act: &str) -> RequestAttributes {
        let mut out = RequestAttributes { action: act.to_string(), request: Vec::new(), resource: Vec::new() };
        let Route::Assignments { scope, name: Some(name) } = route else { return out };
        match ctx.method.as_str() {
            "PUT" => {
                let body = ctx.json_body().unwrap_or(Value::Null);
                let props = &body["properties"];
                let s = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_string);
                if let Some(r) = s("roleDefinitionId").and_then(|r| guid_of(&r)) {
                    out.request.push(("RoleDefinitionId".into(), r));
                }
                for k in ["principalId", "principalType"] {
                    if let Some(v) = s(k).filter(|v| !v.is_empty()) {
                        out.request.push((capitalized(k), v));
                    }
                }
            }
            "DELETE" => {
                let scope = normalize_scope(scope);
                if let Some(a) = st
                    .role_assignments
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(name) && a.scope.eq_ignore_ascii_case(&scope))
                {
                    out.resource.push(("RoleDefinitionId".into(), a.role_definition_id.clone()));
                    out.resource.push(("PrincipalId".into(), a.principal_id.clone()));
                    out.resource
                        .push(("PrincipalType".into(), a.principal_type.clone().unwrap_or_else(|| "User".into())));
                } else {
                    // Nothing to remove: ARM answers 204, and no condition has anything to protect.
                    out.action = format!("{ASSIGNMENTS}/read");
                }
            }
            _ => {}
        }
        out
    }
}

fn capitalized(k: &str) -> String {
    let mut c = k.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

impl Attributes for RequestAttributes {
    fn action(&self) -> &str {
        &self.action
    }

    fn value(&self, source: Source, attribute: &str) -> Option<Vec<String>> {
        let list = match source {
            Source::Request => &self.request,
            Source::Resource => &self.resource,
            _ => return None,
        };
        let name = attribute.strip_prefix(ASSIGNMENTS)?.strip_prefix(':')?;
        let values: Vec<String> =
            list.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).collect();
        (!values.is_empty()).then_some(values)
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn action_patterns_match_like_arm() {
        for (p, t, want) in [
            ("*", "Microsoft.Authorization/roleAssignments/write", true),
            ("*/read", "Microsoft.Devices/IotHubs/read", true),
            ("*/read", "Microsoft.Devices/IotHubs/write", false),
            ("Microsoft.Authorization/*/Write", "microsoft.authorization/roleassignments/write", true),
            ("Microsoft.Authorization/*/Write", "Microsoft.Authorization/roleAssignments/delete", false),
            ("Microsoft.Devices/*", "Microsoft.Devices/IotHubs/listkeys/action", true),
            ("Microsoft.Devices/IotHubs/read", "Microsoft.Devices/IotHubs/readx", false),
            ("Microsoft.Support/*", "Microsoft.Authorization/roleAssignments/write", false),
        ] {
            assert_eq!(wildcard_match(p, t), want, "{p} vs {t}");
        }
    }
}

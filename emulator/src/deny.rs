//! Microsoft.Authorization 2022-04-01: deny assignments, read-only (Azure creates them for
//! Blueprints, managed applications and deployment stacks; this api-version has no PUT or DELETE).
//!
//! Sources: specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/
//! authorization-DenyAssignmentCalls.json (DenyAssignments_ListForScope, _ListForResourceGroup,
//! _List, _ListForResource: one route, `{scope}/providers/Microsoft.Authorization/denyAssignments`;
//! DenyAssignments_Get and _GetById: `{scope}/providers/Microsoft.Authorization/denyAssignments/{id}`)
//! with its examples GetDenyAssignmentByScope.json, GetDenyAssignmentByNameId.json and
//! GetDenyAssignmentById.json (copies in tests/contract/); what the principals mean (the zero GUID
//! of type `SystemDefined` is everyone, only in `principals`; `excludePrincipals`;
//! `doNotApplyToChildScopes`): MicrosoftDocs/azure-docs
//! articles/role-based-access-control/deny-assignments.md.
//!
//! `$filter`, as the FilterParameter documents: `atScope()` (at or above the scope),
//! `denyAssignmentName eq '{name}'` (that name, at or above the scope), `principalId eq '{id}'` (the
//! principal listed in `principals`, at, above and below), `gdprExportPrincipalId eq '{id}'` (listed
//! in `principals` or `excludePrincipals`, at, above and below; only `denyAssignmentName` and
//! `description` returned), and `atScope() and` one of the others. Anything else answers 400
//! `UnsupportedQuery`. Without a filter: at, above and below the scope, as for role assignments.

use serde_json::{Value, json};

use crate::authz::{eq_term, is_call0, terms};
use crate::ctx::{Ctx, Reply, method_not_allowed};
use crate::seed::DenyAssignment;
use crate::state::canonical_scope;

/// Every principal of the directory, in a deny assignment's `principals` (type `SystemDefined`).
pub(crate) const EVERYONE: &str = "00000000-0000-0000-0000-000000000000";

fn id_of(d: &DenyAssignment) -> String {
    let prefix = if d.scope == "/" { "" } else { d.scope.as_str() };
    format!("{prefix}/providers/Microsoft.Authorization/denyAssignments/{}", d.name)
}

/// A deny assignment as the spec's examples show it.
pub(crate) fn deny_json(d: &DenyAssignment) -> Value {
    let mut props = json!({
        "denyAssignmentName": d.deny_assignment_name,
        "description": d.description.clone().unwrap_or_default(),
        "permissions": d.permissions,
        "scope": d.scope,
        "doNotApplyToChildScopes": d.do_not_apply_to_child_scopes,
        "principals": d.principals,
        "excludePrincipals": d.exclude_principals,
        "isSystemProtected": d.is_system_protected.unwrap_or(true),
    });
    for (k, v) in [
        ("condition", &d.condition),
        ("conditionVersion", &d.condition_version),
        ("createdOn", &d.created_on),
        ("updatedOn", &d.updated_on),
    ] {
        if let Some(v) = v {
            props[k] = Value::String(v.clone());
        }
    }
    json!({"properties": props, "id": id_of(d), "type": "Microsoft.Authorization/denyAssignments", "name": d.name})
}

/// The shape `gdprExportPrincipalId` answers with: name and description only.
fn gdpr_json(d: &DenyAssignment) -> Value {
    json!({
        "properties": {"denyAssignmentName": d.deny_assignment_name, "description": d.description.clone().unwrap_or_default()},
        "id": id_of(d),
        "type": "Microsoft.Authorization/denyAssignments",
        "name": d.name,
    })
}

pub(crate) fn deny_assignments(ctx: &Ctx, scope: &str, name: Option<&str>) -> Reply {
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
            "The filter '{filter}' is not supported. Supported filters are atScope(), denyAssignmentName eq '{{name}}', principalId eq '{{objectId}}', gdprExportPrincipalId eq '{{objectId}}', and atScope() with one of the others."
        ),
    )
}

enum By {
    All,
    Name(String),
    Principal(String),
    Gdpr(String),
}

fn list(ctx: &Ctx, scope: &str) -> Reply {
    let filter = ctx.query("$filter").unwrap_or_default();
    let mut at_scope = false;
    let mut by = By::All;
    for t in terms(&filter) {
        let next = if is_call0(&t, "atScope") {
            at_scope = true;
            continue;
        } else if let Some(n) = eq_term(&t, "denyAssignmentName") {
            By::Name(n)
        } else if let Some(p) = eq_term(&t, "principalId") {
            By::Principal(p.to_ascii_lowercase())
        } else if let Some(p) = eq_term(&t, "gdprExportPrincipalId") {
            By::Gdpr(p.to_ascii_lowercase())
        } else {
            return unsupported(&filter);
        };
        if !matches!(by, By::All) {
            return unsupported(&filter);
        }
        by = next;
    }
    // A name is searched for at the scope (what applies there: at or above it).
    let above_only = at_scope || matches!(by, By::Name(_));
    let listed = |ps: &[crate::seed::DenyPrincipal], id: &str| ps.iter().any(|p| p.id.eq_ignore_ascii_case(id));
    let st = ctx.inner.lock_state();
    let items: Vec<Value> = st
        .deny_assignments
        .iter()
        .filter(|d| st.at_or_above(&d.scope, scope) || (!above_only && st.at_or_above(scope, &d.scope)))
        .filter(|d| match &by {
            By::All => true,
            By::Name(n) => d.deny_assignment_name.eq_ignore_ascii_case(n),
            By::Principal(p) => listed(&d.principals, p),
            By::Gdpr(p) => listed(&d.principals, p) || listed(&d.exclude_principals, p),
        })
        .map(|d| if matches!(by, By::Gdpr(_)) { gdpr_json(d) } else { deny_json(d) })
        .collect();
    drop(st);
    ctx.page(items)
}

/// DenyAssignments_Get / _GetById: the deny assignment `name` at exactly `scope`. The 404's code is
/// the emulator's (unverified).
fn get(ctx: &Ctx, scope: &str, name: &str) -> Reply {
    let st = ctx.inner.lock_state();
    match st.deny_assignments.iter().find(|d| d.name.eq_ignore_ascii_case(name) && d.scope.eq_ignore_ascii_case(scope))
    {
        Some(d) => Reply::json(200, deny_json(d)),
        None => Reply::arm_error(404, "DenyAssignmentNotFound", format!("The deny assignment '{name}' is not found.")),
    }
}

//! Microsoft.Authorization 2022-04-01: role definitions (custom roles; built-ins visible at every
//! scope).

use serde_json::{Value, json};

use crate::authz::{builtin, builtin_roles, eq_term, hex32, is_call0, terms};
use crate::ctx::{Ctx, Reply, method_not_allowed};
use crate::fresh::now_rfc3339;
use crate::seed::{Permission, RoleDefinition};
use crate::state::{State, guid_of, management_group_of, normalize_scope, subscription_of};

fn definition_json(r: &RoleDefinition, request_scope: &str, builtin: bool) -> Value {
    let id = match subscription_of(request_scope) {
        Some(s) => format!("/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{}", r.name),
        None => format!("/providers/Microsoft.Authorization/roleDefinitions/{}", r.name),
    };
    json!({
        "id": id,
        "name": r.name,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": r.role_name,
            "type": if builtin { "BuiltInRole" } else { "CustomRole" },
            "description": r.description,
            "assignableScopes": r.assignable_scopes,
            "permissions": r.permissions,
            "createdOn": r.created_on,
            "updatedOn": r.updated_on,
            "createdBy": r.created_by,
            "updatedBy": r.updated_by,
        }
    })
}

pub(crate) fn definitions(ctx: &Ctx, scope: &str, name: Option<&str>) -> Reply {
    let scope = normalize_scope(scope);
    match (ctx.method.as_str(), name) {
        ("GET", None) => list_definitions(ctx, &scope),
        ("GET", Some(n)) => get_definition(ctx, &scope, n),
        ("PUT", Some(n)) => put_definition(ctx, &scope, n),
        ("DELETE", Some(n)) => delete_definition(ctx, &scope, n),
        _ => method_not_allowed(ctx),
    }
}

fn definition_not_found(guid: &str, scope: &str) -> Reply {
    Reply::arm_error(
        404,
        "RoleDefinitionDoesNotExist",
        format!("The specified role definition with ID '{}' does not exist in the scope '{scope}'.", hex32(guid)),
    )
}

/// Whether a custom role is visible at `scope`: tenant level sees all; else an assignable
/// scope at or above `scope` (or below it when `and_below`).
pub(crate) fn visible(st: &State, r: &RoleDefinition, scope: &str, and_below: bool) -> bool {
    scope == "/"
        || r.assignable_scopes.iter().any(|x| st.at_or_above(x, scope) || (and_below && st.at_or_above(scope, x)))
}

fn get_definition(ctx: &Ctx, scope: &str, name: &str) -> Reply {
    let Some(guid) = guid_of(name) else { return definition_not_found(name, scope) };
    if let Some(b) = builtin(&guid) {
        return Reply::json(200, definition_json(b, scope, true));
    }
    let st = ctx.inner.lock_state();
    match st.role_definitions.iter().find(|r| r.name == guid && visible(&st, r, scope, true)) {
        Some(r) => Reply::json(200, definition_json(r, scope, false)),
        None => definition_not_found(&guid, scope),
    }
}

fn list_definitions(ctx: &Ctx, scope: &str) -> Reply {
    let filter = ctx.query("$filter").unwrap_or_default();
    let mut role_name = None;
    let mut role_type = None;
    let mut and_below = false;
    for t in terms(&filter) {
        if let Some(n) = eq_term(&t, "roleName") {
            role_name = Some(n);
        } else if let Some(ty) = eq_term(&t, "type") {
            role_type = Some(ty);
        } else if is_call0(&t, "atScopeAndBelow") {
            and_below = true;
        } else {
            return Reply::arm_error(
                400,
                "UnsupportedQuery",
                format!(
                    "The filter '{filter}' is not supported. Supported filters are roleName eq '{{name}}', type eq 'CustomRole'|'BuiltInRole' and atScopeAndBelow()."
                ),
            );
        }
    }
    let want = |ty: &str| role_type.as_deref().is_none_or(|t| t.eq_ignore_ascii_case(ty));
    let name_ok = |r: &RoleDefinition| role_name.as_deref().is_none_or(|n| r.role_name.eq_ignore_ascii_case(n));
    let st = ctx.inner.lock_state();
    let mut items = Vec::new();
    if want("BuiltInRole") {
        items.extend(builtin_roles().iter().filter(|r| name_ok(r)).map(|r| definition_json(r, scope, true)));
    }
    if want("CustomRole") {
        items.extend(
            st.role_definitions
                .iter()
                .filter(|r| name_ok(r) && visible(&st, r, scope, and_below))
                .map(|r| definition_json(r, scope, false)),
        );
    }
    drop(st);
    ctx.page(items)
}

fn builtin_refused(guid: &str) -> Reply {
    Reply::arm_error(
        400,
        "BuiltInRoleCannotBeModified",
        format!("The role definition '{guid}' is a built-in role; built-in roles cannot be updated or deleted."),
    )
}

fn put_definition(ctx: &Ctx, scope: &str, name: &str) -> Reply {
    let Some(guid) = uuid::Uuid::parse_str(name).ok().map(|u| u.hyphenated().to_string()) else {
        return Reply::arm_error(
            400,
            "InvalidRoleDefinitionId",
            format!("The role definition ID '{name}' is not valid."),
        );
    };
    if builtin(&guid).is_some() {
        return builtin_refused(&guid);
    }
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let props = body.get("properties").cloned().unwrap_or(Value::Null);
    let role_name = props.get("roleName").and_then(Value::as_str).unwrap_or("").trim().to_string();
    if role_name.is_empty() {
        return Reply::arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid: 'properties.roleName' is required.",
        );
    }
    let assignable: Vec<String> = props
        .get("assignableScopes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(normalize_scope).collect())
        .unwrap_or_default();
    if assignable.is_empty() {
        return Reply::arm_error(
            400,
            "MissingAssignableScopes",
            "A role definition must have at least one assignable scope.",
        );
    }
    let permissions: Vec<Permission> = match props.get("permissions") {
        Some(p) => match serde_json::from_value(p.clone()) {
            Ok(p) => p,
            Err(e) => return Reply::arm_error(400, "InvalidRequestContent", format!("permissions: {e}")),
        },
        None => Vec::new(),
    };
    let mgs: Vec<&String> = assignable.iter().filter(|s| management_group_of(s).is_some()).collect();
    if mgs.len() > 1 {
        return Reply::arm_error(
            400,
            "InvalidAssignableScope",
            "A custom role can have at most one management group in assignableScopes.",
        );
    }
    if !mgs.is_empty() && permissions.iter().any(|p| !p.data_actions.is_empty() || !p.not_data_actions.is_empty()) {
        return Reply::arm_error(
            400,
            "InvalidAssignableScope",
            format!(
                "You can't define custom roles with DataActions and assign them at the management group scope ('{}').",
                mgs[0]
            ),
        );
    }
    let mut st = ctx.inner.lock_state();
    let taken_by_builtin = builtin_roles().iter().any(|r| r.role_name.eq_ignore_ascii_case(&role_name));
    let taken = st.role_definitions.iter().any(|r| r.name != guid && r.role_name.eq_ignore_ascii_case(&role_name));
    if taken || taken_by_builtin {
        return Reply::arm_error(
            409,
            "RoleDefinitionWithSameNameExists",
            "A role definition cannot be updated with a name that already exists.",
        );
    }
    let now = now_rfc3339();
    let caller = ctx.caller_oid();
    let description = props.get("description").and_then(Value::as_str).unwrap_or("").to_string();
    let existing = st.role_definitions.iter_mut().find(|r| r.name == guid);
    let def = match existing {
        Some(r) => {
            r.role_name = role_name;
            r.description = description;
            r.assignable_scopes = assignable;
            r.permissions = permissions;
            r.updated_on = Some(now);
            r.updated_by = caller;
            r.clone()
        }
        None => {
            let r = RoleDefinition {
                name: guid,
                role_name,
                description,
                assignable_scopes: assignable,
                permissions,
                created_on: Some(now.clone()),
                updated_on: Some(now),
                created_by: caller.clone(),
                updated_by: caller,
            };
            st.role_definitions.push(r.clone());
            r
        }
    };
    for s in &def.assignable_scopes {
        if let Some(sub) = subscription_of(s) {
            st.subscriptions.insert(sub.to_ascii_lowercase());
        }
    }
    Reply::json(201, definition_json(&def, scope, false)).changed()
}

fn delete_definition(ctx: &Ctx, scope: &str, name: &str) -> Reply {
    let Some(guid) = guid_of(name) else { return Reply::empty(204) };
    if builtin(&guid).is_some() {
        return builtin_refused(&guid);
    }
    let mut st = ctx.inner.lock_state();
    let Some(i) = st.role_definitions.iter().position(|r| r.name == guid) else { return Reply::empty(204) };
    if st.role_assignments.iter().any(|a| a.role_definition_id == guid) {
        return Reply::arm_error(
            ctx.inner.config.role_definition_has_assignments_status,
            "RoleDefinitionHasAssignments",
            format!(
                "There are existing role assignments referencing role (code: RoleDefinitionHasAssignments). Delete the assignments of role '{guid}' first."
            ),
        );
    }
    let r = st.role_definitions.remove(i);
    Reply::json(200, definition_json(&r, scope, false)).changed()
}

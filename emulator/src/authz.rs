//! Microsoft.Authorization 2022-04-01: role assignments and role definitions.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::seed::{Permission, RoleAssignment, RoleDefinition};
use crate::server::{Ctx, Reply, method_not_allowed};
use crate::state::{State, guid_of, management_group_of, normalize_scope, now_rfc3339, subscription_of};

const BUILTIN_JSON: &str = include_str!("../data/builtin-roles.json");
const BUILTIN_CREATED_ON: &str = "2015-02-02T21:55:09.8806423Z";

/// The built-in roles, from `data/builtin-roles.json`.
pub(crate) fn builtin_roles() -> &'static [RoleDefinition] {
    static ROLES: OnceLock<Vec<RoleDefinition>> = OnceLock::new();
    ROLES.get_or_init(|| {
        let v: Value = serde_json::from_str(BUILTIN_JSON).expect("data/builtin-roles.json is valid JSON");
        v["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let d = r.get("definition")?;
                let mut rd: RoleDefinition = serde_json::from_value(d.clone()).ok()?;
                rd.name = guid_of(&rd.name)?;
                rd.created_on = Some(BUILTIN_CREATED_ON.into());
                rd.updated_on = Some(BUILTIN_CREATED_ON.into());
                Some(rd)
            })
            .collect()
    })
}

fn builtin(guid: &str) -> Option<&'static RoleDefinition> {
    builtin_roles().iter().find(|r| r.name == guid)
}

fn hex32(guid: &str) -> String {
    guid.replace('-', "").to_ascii_lowercase()
}

// ---------------------------------------------------------------- filters

fn unquote(v: &str) -> Option<String> {
    let v = v.trim();
    let q = v.chars().next()?;
    if (q == '\'' || q == '"') && v.len() >= 2 && v.ends_with(q) {
        Some(v[1..v.len() - 1].replace("''", "'"))
    } else {
        None
    }
}

/// `and`-separated terms of a `$filter`, whitespace normalized.
fn terms(filter: &str) -> Vec<String> {
    let norm = filter.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = norm.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while let Some(pos) = lower[i..].find(" and ") {
        let at = i + pos;
        // Do not split inside quotes.
        let quotes = norm[start..at].matches('\'').count();
        if quotes % 2 == 0 {
            out.push(norm[start..at].trim().to_string());
            start = at + 5;
        }
        i = at + 5;
    }
    out.push(norm[start..].trim().to_string());
    out.into_iter().filter(|t| !t.is_empty()).collect()
}

/// `name eq 'value'` → value (name compared case-insensitively).
fn eq_term(term: &str, name: &str) -> Option<String> {
    let lower = term.to_ascii_lowercase();
    let rest = lower.strip_prefix(&name.to_ascii_lowercase())?;
    let rest_orig = &term[term.len() - rest.len()..];
    let rest_orig = rest_orig.trim_start();
    let after = rest_orig.get(..2).filter(|p| p.eq_ignore_ascii_case("eq")).map(|_| &rest_orig[2..])?;
    unquote(after)
}

/// `func('value')` → value.
fn call_term(term: &str, func: &str) -> Option<String> {
    let t = term.trim();
    if !t.to_ascii_lowercase().starts_with(&format!("{}(", func.to_ascii_lowercase())) || !t.ends_with(')') {
        return None;
    }
    unquote(&t[func.len() + 1..t.len() - 1])
}

fn is_call0(term: &str, func: &str) -> bool {
    term.replace(' ', "").eq_ignore_ascii_case(&format!("{func}()"))
}

fn unsupported(filter: &str) -> Reply {
    Reply::arm_error(
        400,
        "UnsupportedQuery",
        format!(
            "The filter '{filter}' is not supported. Supported filters are atScope(), principalId eq '{{objectId}}', assignedTo('{{objectId}}') and atScope() and assignedTo('{{objectId}}')."
        ),
    )
}

// ---------------------------------------------------------------- role assignments

pub(crate) fn assignment_json(a: &RoleAssignment) -> Value {
    let role_id = match subscription_of(&a.scope) {
        Some(s) => {
            format!("/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{}", a.role_definition_id)
        }
        None => format!("/providers/Microsoft.Authorization/roleDefinitions/{}", a.role_definition_id),
    };
    let prefix = if a.scope == "/" { String::new() } else { a.scope.clone() };
    json!({
        "id": format!("{prefix}/providers/Microsoft.Authorization/roleAssignments/{}", a.name),
        "name": a.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": role_id,
            "principalId": a.principal_id,
            "principalType": a.principal_type.clone().unwrap_or_else(|| "User".into()),
            "scope": a.scope,
            "description": a.description,
            "condition": a.condition,
            "conditionVersion": a.condition_version,
            "createdOn": a.created_on,
            "updatedOn": a.updated_on,
            "createdBy": a.created_by,
            "updatedBy": a.updated_by,
            "delegatedManagedIdentityResourceId": a.delegated_managed_identity_resource_id,
        }
    })
}

pub(crate) fn assignments(ctx: &Ctx, scope: &str, name: Option<&str>) -> Reply {
    let scope = normalize_scope(scope);
    match (ctx.method.as_str(), name) {
        ("GET", None) => list_assignments(ctx, &scope),
        ("GET", Some(n)) => get_assignment(ctx, &scope, n),
        ("PUT", Some(n)) => create_assignment(ctx, &scope, n),
        ("DELETE", Some(n)) => delete_assignment(ctx, &scope, n),
        _ => method_not_allowed(ctx),
    }
}

fn list_assignments(ctx: &Ctx, scope: &str) -> Reply {
    let filter = ctx.query("$filter").unwrap_or_default();
    let mut at_scope = false;
    let mut principal: Option<String> = None;
    let mut assigned_to: Option<String> = None;
    for t in terms(&filter) {
        if is_call0(&t, "atScope") {
            at_scope = true;
        } else if let Some(p) = eq_term(&t, "principalId") {
            principal = Some(p.to_ascii_lowercase());
        } else if let Some(p) = call_term(&t, "assignedTo") {
            assigned_to = Some(p.to_ascii_lowercase());
        } else {
            return unsupported(&filter);
        }
    }
    if principal.is_some() && assigned_to.is_some() {
        return unsupported(&filter);
    }
    let st = ctx.inner.lock_state();
    let ids: Option<Vec<String>> = match (&principal, &assigned_to) {
        (Some(p), _) => Some(vec![p.clone()]),
        (_, Some(p)) => {
            if st.principal(p).is_some_and(|x| x.principal_type.eq_ignore_ascii_case("Group")) {
                return Reply::arm_error(
                    400,
                    "UnsupportedQuery",
                    format!(
                        "The filter assignedTo('{p}') is not supported for a group. Use principalId eq '{p}' instead."
                    ),
                );
            }
            let mut v = vec![p.clone()];
            v.extend(st.groups_of(p));
            Some(v)
        }
        _ => None,
    };
    let items: Vec<Value> = st
        .role_assignments
        .iter()
        .filter(|a| st.at_or_above(&a.scope, scope) || (!at_scope && st.at_or_above(scope, &a.scope)))
        .filter(|a| ids.as_ref().is_none_or(|ids| ids.contains(&a.principal_id.to_ascii_lowercase())))
        .map(assignment_json)
        .collect();
    drop(st);
    ctx.page(items)
}

fn not_found_assignment(name: &str) -> Reply {
    Reply::arm_error(404, "RoleAssignmentNotFound", format!("The role assignment '{name}' is not found."))
}

fn get_assignment(ctx: &Ctx, scope: &str, name: &str) -> Reply {
    let st = ctx.inner.lock_state();
    match st.role_assignments.iter().find(|a| a.name.eq_ignore_ascii_case(name) && a.scope.eq_ignore_ascii_case(scope))
    {
        Some(a) => Reply::json(200, assignment_json(a)),
        None => not_found_assignment(name),
    }
}

fn delete_assignment(ctx: &Ctx, scope: &str, name: &str) -> Reply {
    if uuid::Uuid::parse_str(name).is_err() {
        return invalid_assignment_name(name);
    }
    let mut st = ctx.inner.lock_state();
    match st
        .role_assignments
        .iter()
        .position(|a| a.name.eq_ignore_ascii_case(name) && a.scope.eq_ignore_ascii_case(scope))
    {
        Some(i) => {
            let a = st.role_assignments.remove(i);
            Reply::json(200, assignment_json(&a)).changed()
        }
        None => Reply::empty(204),
    }
}

fn invalid_assignment_name(name: &str) -> Reply {
    Reply::arm_error(
        400,
        "InvalidRoleAssignmentId",
        format!("The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."),
    )
}

/// A role definition GUID usable at `scope`: built-in, or custom with an assignable scope at or above it.
fn role_usable_at(st: &State, guid: &str, scope: &str) -> bool {
    builtin(guid).is_some()
        || st
            .role_definitions
            .iter()
            .any(|r| r.name == guid && r.assignable_scopes.iter().any(|x| st.at_or_above(x, scope)))
}

pub(crate) fn principal_not_found(tenant: &str, principal: &str) -> Reply {
    Reply::arm_error(
        400,
        "PrincipalNotFound",
        format!(
            "Principal {} does not exist in the directory {tenant}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
            hex32(principal)
        ),
    )
}

fn create_assignment(ctx: &Ctx, scope: &str, name: &str) -> Reply {
    let Ok(name_uuid) = uuid::Uuid::parse_str(name) else { return invalid_assignment_name(name) };
    let name = name_uuid.hyphenated().to_string();
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(props) = body.get("properties").and_then(Value::as_object) else {
        return Reply::arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid: 'properties' is required.",
        );
    };
    let s = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_string);
    let Some(role_raw) = s("roleDefinitionId") else {
        return Reply::arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid: 'properties.roleDefinitionId' is required.",
        );
    };
    let Some(role) = guid_of(&role_raw) else {
        return Reply::arm_error(
            400,
            "InvalidRoleDefinitionId",
            format!("The role definition ID '{role_raw}' is not valid."),
        );
    };
    let Some(principal_id) = s("principalId").filter(|p| !p.is_empty()) else {
        return Reply::arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid: 'properties.principalId' is required.",
        );
    };
    let principal_type = s("principalType");
    let cfg = &ctx.inner.config;
    let mut st = ctx.inner.lock_state();
    if !role_usable_at(&st, &role, scope) {
        return Reply::arm_error(
            cfg.unknown_role_on_assignment_status,
            "RoleDefinitionDoesNotExist",
            format!("The specified role definition with ID '{}' does not exist in the scope '{scope}'.", hex32(&role)),
        );
    }
    let now = now_rfc3339();
    let caller = ctx.caller_oid();
    if let Some(i) = st.role_assignments.iter().position(|a| a.name == name) {
        let a = &st.role_assignments[i];
        let same = a.scope.eq_ignore_ascii_case(scope)
            && a.principal_id.eq_ignore_ascii_case(&principal_id)
            && a.role_definition_id == role;
        if !same {
            return Reply::arm_error(
                400,
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            );
        }
        let a = &mut st.role_assignments[i];
        let mut changed = false;
        for (field, new) in [
            (&mut a.description, s("description")),
            (&mut a.condition, s("condition")),
            (&mut a.condition_version, s("conditionVersion")),
        ] {
            if *field != new {
                *field = new;
                changed = true;
            }
        }
        if changed {
            a.updated_on = Some(now);
            a.updated_by = caller;
        }
        let r = Reply::json(200, assignment_json(a));
        return if changed { r.changed() } else { r };
    }
    let known = st.directory.iter().find(|d| d.principal.id.eq_ignore_ascii_case(&principal_id)).cloned();
    match &known {
        None if !cfg.accept_unknown_principals => return principal_not_found(&st.tenant_id, &principal_id),
        Some(d) => {
            if let (Some(delay), Some(at)) = (cfg.replication_delay, d.registered)
                && at.elapsed().as_secs_f64() < delay.seconds
                && (principal_type.is_none() || delay.even_with_principal_type)
            {
                return principal_not_found(&st.tenant_id, &principal_id);
            }
        }
        None => {}
    }
    if let Some(existing) = st.role_assignments.iter().find(|a| {
        a.scope.eq_ignore_ascii_case(scope)
            && a.principal_id.eq_ignore_ascii_case(&principal_id)
            && a.role_definition_id == role
    }) {
        return Reply::arm_error(
            409,
            "RoleAssignmentExists",
            format!(
                "The role assignment already exists. The ID of the existing role assignment is {}.",
                hex32(&existing.name)
            ),
        );
    }
    let principal_type = principal_type
        .or_else(|| known.map(|d| d.principal.principal_type).filter(|t| !t.is_empty()))
        .unwrap_or_else(|| "User".into());
    let a = RoleAssignment {
        name,
        scope: scope.to_string(),
        role_definition_id: role,
        principal_id,
        principal_type: Some(principal_type),
        description: s("description"),
        condition: s("condition"),
        condition_version: s("conditionVersion"),
        delegated_managed_identity_resource_id: s("delegatedManagedIdentityResourceId"),
        created_on: Some(now.clone()),
        updated_on: Some(now),
        created_by: caller.clone(),
        updated_by: caller,
    };
    let body = assignment_json(&a);
    st.role_assignments.push(a);
    Reply::json(201, body).changed()
}

// ---------------------------------------------------------------- role definitions

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
fn visible(st: &State, r: &RoleDefinition, scope: &str, and_below: bool) -> bool {
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

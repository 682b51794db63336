//! Microsoft.Authorization 2022-04-01: role assignments, and the `$filter` and built-in role
//! helpers role definitions share (`definitions.rs`).

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::ctx::{Ctx, Reply, method_not_allowed};
use crate::fresh::now_rfc3339;
use crate::seed::{RoleAssignment, RoleDefinition};
use crate::state::{State, guid_of, normalize_scope, subscription_of};

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

pub(crate) fn builtin(guid: &str) -> Option<&'static RoleDefinition> {
    builtin_roles().iter().find(|r| r.name == guid)
}

pub(crate) fn hex32(guid: &str) -> String {
    guid.replace('-', "").to_ascii_lowercase()
}

// ---------------------------------------------------------------- filters

pub(crate) fn unquote(v: &str) -> Option<String> {
    let v = v.trim();
    let q = v.chars().next()?;
    if (q == '\'' || q == '"') && v.len() >= 2 && v.ends_with(q) {
        Some(v[1..v.len() - 1].replace("''", "'"))
    } else {
        None
    }
}

/// `and`-separated terms of a `$filter`, whitespace normalized.
pub(crate) fn terms(filter: &str) -> Vec<String> {
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
pub(crate) fn eq_term(term: &str, name: &str) -> Option<String> {
    let lower = term.to_ascii_lowercase();
    let rest = lower.strip_prefix(&name.to_ascii_lowercase())?;
    let rest_orig = &term[term.len() - rest.len()..];
    let rest_orig = rest_orig.trim_start();
    let after = rest_orig.get(..2).filter(|p| p.eq_ignore_ascii_case("eq")).map(|_| &rest_orig[2..])?;
    unquote(after)
}

/// `func('value')` → value.
pub(crate) fn call_term(term: &str, func: &str) -> Option<String> {
    let t = term.trim();
    if !t.to_ascii_lowercase().starts_with(&format!("{}(", func.to_ascii_lowercase())) || !t.ends_with(')') {
        return None;
    }
    unquote(&t[func.len() + 1..t.len() - 1])
}

pub(crate) fn is_call0(term: &str, func: &str) -> bool {
    term.replace(' ', "").eq_ignore_ascii_case(&format!("{func}()"))
}

pub(crate) fn unsupported(filter: &str) -> Reply {
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
pub(crate) fn role_usable_at(st: &State, guid: &str, scope: &str) -> bool {
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
    let condition_version = match check_condition(s("condition").as_deref(), s("conditionVersion").as_deref()) {
        Ok(v) => v,
        Err(r) => return r,
    };
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
            (&mut a.condition_version, condition_version.clone()),
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
        condition_version,
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

/// ARM's 400 for a condition it refuses (role assignment PUT). Microsoft documents the message
/// ("Troubleshoot Azure conditions": "The given role assignment condition is invalid."); the code
/// is the one ARM answers in the wild.
fn invalid_condition() -> Reply {
    Reply::arm_error(400, "InvalidRoleAssignmentCondition", "The given role assignment condition is invalid.")
}

/// The longest condition ARM takes ("Azure conditions FAQ": up to 8 KB).
const MAX_CONDITION_BYTES: usize = 8 * 1024;

/// Checks a condition written on a role assignment: ARM's 400 when it does not parse, names an
/// unknown attribute or operator, is longer than 8 KB, or its version is not 2.0. `Ok` holds the
/// version to store (2.0 when a condition comes without one; none without a condition).
fn check_condition(condition: Option<&str>, version: Option<&str>) -> Result<Option<String>, Reply> {
    let Some(text) = condition.filter(|c| !c.trim().is_empty()) else { return Ok(version.map(str::to_string)) };
    if version.is_some_and(|v| v != "2.0") || text.len() > MAX_CONDITION_BYTES {
        return Err(invalid_condition());
    }
    iothub_access_abac::parse(text).map(|_| Some("2.0".to_string())).map_err(|_| invalid_condition())
}

// ---------------------------------------------------------------- role definitions

//! Microsoft.Management 2023-04-01, read-only: a management group (ManagementGroups_Get, with
//! `$expand=path|ancestors|children` and `$recurse`) and the entities list (EntitiesOperations_List,
//! `POST /providers/Microsoft.Management/getEntities`), which tells each subscription's ancestry
//! in one (paged) call: `properties.parent.id` and `parentNameChain` (root first).
//!
//! Source: specification/managementgroups/resource-manager/Microsoft.Management/stable/2023-04-01/
//! management.json with its examples GetEntities.json and GetManagementGroupWithPath.json (copies
//! in tests/contract/).
//!
//! The hierarchy is the seed's `managementGroups` (`id`, `displayName`, `parent`, `subscriptions`).
//! The emulator has no tenant root group of its own: a group without `parent` is a root, a
//! subscription in no group has no parent. Emulator choices (unverified): `permissions` and
//! `inheritedPermissions` are `view`; `details.version` is 1, `updatedBy` the tenant id;
//! `managementGroupAncestors` lists names from the immediate parent to the root, like
//! `managementGroupAncestorsChain`. getEntities honours `$filter=name eq '{name}'`, `$view`
//! (`FullHierarchy`, `GroupsOnly`, `SubscriptionsOnly`, `Audit` as the full hierarchy) and paging;
//! `$search` and other filters answer 400; `$top`, `$skip` and `$select` are ignored. With
//! `enforceRbac`, getEntities lists the entities the caller holds an assignment at, above or below.

use serde_json::{Value, json};

use crate::authz::{eq_term, terms};
use crate::ctx::{Ctx, Reply};
use crate::seed::ManagementGroup;
use crate::state::State;

const MG_TYPE: &str = "Microsoft.Management/managementGroups";
/// The `updatedTime` of every group (the emulator keeps no history).
const UPDATED: &str = "2018-01-01T00:00:00Z";

fn mg_id(name: &str) -> String {
    format!("/providers/Microsoft.Management/managementGroups/{name}")
}

fn group<'a>(st: &'a State, name: &str) -> Option<&'a ManagementGroup> {
    st.management_groups.iter().find(|m| m.id.eq_ignore_ascii_case(name))
}

fn display(m: &ManagementGroup) -> String {
    m.display_name.clone().unwrap_or_else(|| m.id.clone())
}

/// The groups above `parent` and `parent` itself, nearest first.
fn chain_from<'a>(st: &'a State, parent: Option<&str>) -> Vec<&'a ManagementGroup> {
    let mut out: Vec<&ManagementGroup> = Vec::new();
    let mut cur = parent.and_then(|p| group(st, p));
    while let Some(m) = cur {
        if out.iter().any(|o| o.id.eq_ignore_ascii_case(&m.id)) {
            break;
        }
        out.push(m);
        cur = m.parent.as_deref().and_then(|p| group(st, p));
    }
    out
}

fn parent_of_subscription<'a>(st: &'a State, sub: &str) -> Option<&'a ManagementGroup> {
    st.management_groups.iter().find(|m| m.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(sub)))
}

fn path_element(m: &ManagementGroup) -> Value {
    json!({"name": m.id, "displayName": display(m)})
}

/// Children of `m`; with `recurse`, theirs too (a cycle in the seed stops at depth 32).
fn children(st: &State, m: &ManagementGroup, recurse: bool, subscriptions: bool, depth: usize) -> Vec<Value> {
    let mut out: Vec<Value> = st
        .management_groups
        .iter()
        .filter(|c| c.parent.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(&m.id)))
        .map(|c| {
            let mut v = json!({"type": MG_TYPE, "id": mg_id(&c.id), "name": c.id, "displayName": display(c)});
            if recurse && depth < 32 {
                v["children"] = Value::Array(children(st, c, true, subscriptions, depth + 1));
            }
            v
        })
        .collect();
    if subscriptions {
        out.extend(m.subscriptions.iter().map(|s| {
            let name = st.subscription(s).and_then(|x| x.display_name).unwrap_or_else(|| s.clone());
            json!({"type": "/subscriptions", "id": format!("/subscriptions/{s}"), "name": s, "displayName": name})
        }));
    }
    out
}

/// ManagementGroups_Get.
pub(crate) fn management_group(ctx: &Ctx, name: &str) -> Reply {
    let expand: Vec<String> =
        ctx.query("$expand").unwrap_or_default().split(',').map(|e| e.trim().to_ascii_lowercase()).collect();
    let recurse = ctx.query("$recurse").is_some_and(|r| r.eq_ignore_ascii_case("true"));
    let filter = ctx.query("$filter").unwrap_or_default();
    let subscriptions = match filter.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase().as_str() {
        "" => true,
        "children.childtype ne subscription" | "children.childtype ne '/subscriptions'" => false,
        _ => {
            return Reply::arm_error(
                400,
                "UnsupportedQuery",
                format!(
                    "The filter '{filter}' is not supported. The supported filter is children.childType ne Subscription."
                ),
            );
        }
    };
    if let Some(bad) = expand.iter().find(|e| !e.is_empty() && !["children", "path", "ancestors"].contains(&e.as_str()))
    {
        return Reply::arm_error(
            400,
            "InvalidQueryParameter",
            format!("The $expand value '{bad}' is not supported. Supported values are children, path and ancestors."),
        );
    }
    let st = ctx.inner.lock_state();
    let Some(m) = group(&st, name) else {
        return Reply::arm_error(404, "NotFound", format!("The management group '{name}' was not found."));
    };
    let ancestors = chain_from(&st, m.parent.as_deref());
    let mut details = json!({
        "version": 1,
        "updatedTime": UPDATED,
        "updatedBy": st.tenant_id,
        "parent": ancestors.first().map(|p| json!({"id": mg_id(&p.id), "name": p.id, "displayName": display(p)})),
    });
    if expand.iter().any(|e| e == "path") {
        details["path"] = Value::Array(ancestors.iter().rev().map(|a| path_element(a)).collect());
    }
    if expand.iter().any(|e| e == "ancestors") {
        details["managementGroupAncestors"] = json!(ancestors.iter().map(|a| a.id.clone()).collect::<Vec<_>>());
        details["managementGroupAncestorsChain"] = Value::Array(ancestors.iter().map(|a| path_element(a)).collect());
    }
    let mut props = json!({"tenantId": st.tenant_id, "displayName": display(m), "details": details});
    if expand.iter().any(|e| e == "children") {
        props["children"] = Value::Array(children(&st, m, recurse, subscriptions, 0));
    }
    Reply::json(200, json!({"id": mg_id(&m.id), "type": MG_TYPE, "name": m.id, "properties": props}))
}

fn entity(st: &State, id: String, kind: &str, name: &str, display_name: String, parent: Option<&str>) -> Value {
    let chain = chain_from(st, parent);
    json!({
        "id": id,
        "type": kind,
        "name": name,
        "properties": {
            "tenantId": st.tenant_id,
            "displayName": display_name,
            "parent": parent.map(|p| json!({"id": mg_id(chain.first().map_or(p, |m| m.id.as_str()))})),
            "permissions": "view",
            "inheritedPermissions": "view",
            "parentDisplayNameChain": chain.iter().rev().map(|m| display(m)).collect::<Vec<_>>(),
            "parentNameChain": chain.iter().rev().map(|m| m.id.clone()).collect::<Vec<_>>(),
        }
    })
}

/// Groups and subscriptions below group `m` (transitively), its direct children, and its
/// direct child groups.
fn counts(st: &State, m: &ManagementGroup) -> (usize, usize, usize) {
    let below = |parent: Option<&str>| chain_from(st, parent).iter().any(|a| a.id.eq_ignore_ascii_case(&m.id));
    let is_child = |parent: Option<&str>| parent.is_some_and(|p| p.eq_ignore_ascii_case(&m.id));
    let others = st.management_groups.iter().filter(|g| !g.id.eq_ignore_ascii_case(&m.id));
    let groups_below = others.clone().filter(|g| below(g.parent.as_deref())).count();
    let child_groups = others.filter(|g| is_child(g.parent.as_deref())).count();
    let subs_below: usize = st
        .management_groups
        .iter()
        .filter(|g| g.id.eq_ignore_ascii_case(&m.id) || below(g.parent.as_deref()))
        .map(|g| g.subscriptions.len())
        .sum();
    (groups_below + subs_below, child_groups + m.subscriptions.len(), child_groups)
}

/// EntitiesOperations_List.
pub(crate) fn entities(ctx: &Ctx) -> Reply {
    if let Some(s) = ctx.query("$search") {
        return Reply::arm_error(400, "UnsupportedQuery", format!("$search={s} is not supported by the emulator."));
    }
    let filter = ctx.query("$filter").unwrap_or_default();
    let mut name = None;
    for t in terms(&filter) {
        match eq_term(&t, "name") {
            Some(n) => name = Some(n),
            None => {
                return Reply::arm_error(
                    400,
                    "UnsupportedQuery",
                    format!(
                        "The filter '{filter}' is not supported. The supported filter is name eq '{{entityName}}'."
                    ),
                );
            }
        }
    }
    let view = ctx.query("$view").unwrap_or_default().to_ascii_lowercase();
    let (groups, subs) = match view.as_str() {
        "groupsonly" => (true, false),
        "subscriptionsonly" => (false, true),
        "" | "fullhierarchy" | "audit" => (true, true),
        v => return Reply::arm_error(400, "InvalidQueryParameter", format!("The $view value '{v}' is not supported.")),
    };
    let oid = ctx.caller_oid();
    let st = ctx.inner.lock_state();
    let mut items = Vec::new();
    if groups {
        for m in &st.management_groups {
            let mut e = entity(&st, mg_id(&m.id), MG_TYPE, &m.id, display(m), m.parent.as_deref());
            let (d, c, g) = counts(&st, m);
            e["properties"]["numberOfDescendants"] = json!(d);
            e["properties"]["numberOfChildren"] = json!(c);
            e["properties"]["numberOfChildGroups"] = json!(g);
            items.push((mg_id(&m.id), m.id.clone(), e));
        }
    }
    if subs {
        for id in &st.subscriptions {
            let Some(s) = st.subscription(id).filter(|s| s.access != Some(crate::SubscriptionAccess::Hidden)) else {
                continue;
            };
            let parent = parent_of_subscription(&st, id).map(|m| m.id.clone());
            let shown = s.display_name.clone().unwrap_or_else(|| s.subscription_id.clone());
            let scope = format!("/subscriptions/{}", s.subscription_id);
            let e = entity(&st, scope.clone(), "/subscriptions", &s.subscription_id, shown, parent.as_deref());
            items.push((scope, s.subscription_id.clone(), e));
        }
    }
    let items: Vec<Value> = items
        .into_iter()
        .filter(|(_, n, _)| name.as_deref().is_none_or(|want| n.eq_ignore_ascii_case(want)))
        .filter(|(scope, _, _)| crate::rbac::sees_scope(&st, oid.as_deref(), scope))
        .map(|(_, _, e)| e)
        .collect();
    drop(st);
    ctx.page(items)
}

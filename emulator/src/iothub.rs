//! Microsoft.Devices IotHubs 2023-06-30 and resource groups. Hub PUT is a full replace with
//! `If-Match`, answered 201 with `Azure-AsyncOperation`; the new properties are committed at PUT
//! time, `provisioningState` stays `Accepted` until the operation is polled to `Succeeded`.
//! Before that, a PUT passes the policy assignments in scope and has its read-only properties
//! counted (or refused). Gateway v2 hubs show `deviceHostName`/`serviceHostName` from
//! api-version 2026-03-01(-preview) on.

use std::time::Instant;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::ctx::{Ctx, Reply, method_not_allowed};
use crate::fresh::{new_etag, new_key, now_rfc3339};
use crate::read_only::{read_only_paths, rejected};
use crate::resources::{Hub, default_hub_properties, default_policies, normalize_sku};
use crate::seed::SasPolicy;
use crate::state::Operation;

/// api-versions from this date on (preview or stable) show the device and service host names.
const GATEWAY_HOST_NAMES: &str = "2026-03-01";

pub(crate) fn hub_json(h: &Hub, suffix: &str, api_version: &str) -> Value {
    let mut props = h.properties.clone();
    props.insert("provisioningState".into(), Value::String(h.provisioning_state.clone()));
    props.insert("state".into(), Value::String("Active".into()));
    props.insert("hostName".into(), Value::String(h.host_name(suffix)));
    if api_version.get(..10).unwrap_or(api_version) >= GATEWAY_HOST_NAMES {
        for (k, v) in [("deviceHostName", &h.device_host_name), ("serviceHostName", &h.service_host_name)] {
            if let Some(v) = v {
                props.insert(k.into(), Value::String(v.clone()));
            }
        }
    }
    props.insert("locations".into(), json!([{"location": h.location, "role": "primary"}]));
    let mut v = json!({
        "id": h.id(),
        "name": h.name,
        "type": "Microsoft.Devices/IotHubs",
        "location": h.location,
        "tags": h.tags,
        "etag": h.etag,
        "properties": props,
        "sku": h.sku,
        "systemData": {"createdAt": h.created_at},
    });
    if let Some(i) = &h.identity {
        v["identity"] = i.clone();
    }
    v
}

pub(crate) fn not_found(kind: &str, name: &str, rg: &str) -> Reply {
    Reply::arm_error(
        404,
        "ResourceNotFound",
        format!(
            "The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

pub(crate) fn rg_not_found(rg: &str) -> Reply {
    Reply::arm_error(404, "ResourceGroupNotFound", format!("Resource group '{rg}' could not be found."))
}

pub(crate) fn resource_group(ctx: &Ctx, sub: &str, rg: &str) -> Reply {
    let rg_json = |name: &str, loc: &Option<String>| {
        json!({"id": format!("/subscriptions/{sub}/resourceGroups/{name}"), "name": name,
               "type": "Microsoft.Resources/resourceGroups", "location": loc,
               "properties": {"provisioningState": "Succeeded"}})
    };
    match ctx.method.as_str() {
        "GET" => {
            let st = ctx.inner.lock_state();
            match st.rg(sub, rg) {
                Some(r) => Reply::json(200, rg_json(&r.name, &r.location)),
                None => rg_not_found(rg),
            }
        }
        "PUT" => {
            let body = match ctx.json_body() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let Some(loc) = body.get("location").and_then(Value::as_str).map(str::to_string) else {
                return Reply::arm_error(
                    400,
                    "LocationRequired",
                    "The location property is required for this definition.",
                );
            };
            let mut st = ctx.inner.lock_state();
            let created = st.ensure_rg(sub, rg, Some(&loc));
            let r = st.rg(sub, rg).cloned().unwrap_or_default();
            Reply::json(if created { 201 } else { 200 }, rg_json(&r.name, &r.location)).changed()
        }
        _ => method_not_allowed(ctx),
    }
}

pub(crate) fn list(ctx: &Ctx, sub: &str, rg: Option<&str>) -> Reply {
    let st = ctx.inner.lock_state();
    if let Some(rg) = rg
        && st.rg(sub, rg).is_none()
    {
        return rg_not_found(rg);
    }
    let api = ctx.api_version();
    let items: Vec<Value> = st
        .hubs
        .iter()
        .filter(|h| {
            h.subscription_id.eq_ignore_ascii_case(sub) && rg.is_none_or(|r| h.resource_group.eq_ignore_ascii_case(r))
        })
        .map(|h| hub_json(h, &st.hub_host_suffix, &api))
        .collect();
    drop(st);
    ctx.page(items)
}

fn strip_quotes(s: &str) -> &str {
    s.trim().trim_start_matches("W/").trim_matches('"')
}

fn precondition_failed(message: &str) -> Reply {
    let corr = uuid::Uuid::new_v4();
    let ts = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ");
    Reply::json(
        412,
        json!({
            "code": 412001,
            "httpStatusCode": "PreconditionFailed",
            "message": format!("{message} If you contact a support representative please include this correlation identifier: {corr}, timestamp: {ts}, errorcode: IH412001."),
            "details": null
        }),
    )
}

fn lro_headers(ctx: &Ctx, reply: Reply, sub: &str, location: &str, op_id: &str) -> Reply {
    let loc = location.replace(' ', "").to_ascii_lowercase();
    let api = ctx.query("api-version").unwrap_or_else(|| "2023-06-30".into());
    let url = format!(
        "{}/subscriptions/{sub}/providers/Microsoft.Devices/locations/{loc}/operationResults/{op_id}?api-version={api}&operationSource=os_ih",
        ctx.inner.base_url
    );
    reply.header("azure-asyncoperation", url.clone()).header("retry-after", retry_after(ctx))
}

/// `Retry-After` while an operation runs: the configured seconds, at least 1 (a 0 reads as "no
/// header" to Azure's SDKs, which then wait their own default: 30 s in azure-core).
pub(crate) fn retry_after(ctx: &Ctx) -> String {
    ctx.inner.config.lro_retry_after_secs.max(1).to_string()
}

fn new_operation_id(location: &str) -> String {
    let raw = format!("id=os_ih_{};region={}", uuid::Uuid::new_v4(), location.replace(' ', "").to_ascii_lowercase());
    base64::engine::general_purpose::URL_SAFE.encode(raw)
}

pub(crate) fn hub(ctx: &Ctx, sub: &str, rg: &str, name: &str) -> Reply {
    match ctx.method.as_str() {
        "GET" => {
            let st = ctx.inner.lock_state();
            let hidden =
                |h: &Hub| st.hub_not_found_until.get(&h.id().to_ascii_lowercase()).is_some_and(|u| Instant::now() < *u);
            match st.hub(sub, rg, name).filter(|h| !hidden(h)) {
                Some(h) => Reply::json(200, hub_json(h, &st.hub_host_suffix, &ctx.api_version()))
                    .header("etag", format!("\"{}\"", h.etag)),
                None => not_found("Microsoft.Devices/IotHubs", name, rg),
            }
        }
        "PUT" => put(ctx, sub, rg, name),
        "PATCH" => patch(ctx, sub, rg, name),
        "DELETE" => {
            let mut st = ctx.inner.lock_state();
            let Some(i) = st.hubs.iter().position(|h| h.matches(sub, rg, name)) else { return Reply::empty(204) };
            let h = st.hubs.remove(i);
            st.hub_not_found_until.remove(&h.id().to_ascii_lowercase());
            let op = new_operation_id(&h.location);
            st.operations.insert(op.clone(), Operation { polls: 0, hub: None, dps: None, done: false });
            drop(st);
            let r = lro_headers(ctx, Reply::empty(202), sub, &h.location, &op);
            let async_url =
                r.headers.iter().find(|(k, _)| k == "azure-asyncoperation").map(|(_, v)| v.clone()).unwrap_or_default();
            r.header("location", async_url).changed()
        }
        _ => method_not_allowed(ctx),
    }
}

/// Add keys of `defaults` missing in `target`, recursively into objects.
fn fill_missing(target: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (k, d) in defaults {
        match (target.get_mut(k), d) {
            (None, _) => {
                target.insert(k.clone(), d.clone());
            }
            (Some(Value::Object(t)), Value::Object(d)) => fill_missing(t, d),
            _ => {}
        }
    }
}

fn valid_hub_name(n: &str) -> bool {
    n.len() >= 3
        && n.len() <= 50
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !n.starts_with('-')
        && !n.ends_with('-')
        && !n.chars().all(|c| c.is_ascii_digit())
}

fn put(ctx: &Ctx, sub: &str, rg: &str, name: &str) -> Reply {
    let mut body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let cfg = &ctx.inner.config;
    let read_only = read_only_paths(&body);
    if !read_only.is_empty() {
        let mut stats = ctx.inner.lock_stats();
        for p in &read_only {
            *stats.read_only_sent.entry(p.clone()).or_default() += 1;
        }
    }
    let if_match = ctx.header("if-match");
    let mut st = ctx.inner.lock_state();
    let suffix = st.hub_host_suffix.clone();
    let existing = st.hub(sub, rg, name).cloned();
    let hub_id = existing.as_ref().map_or_else(
        || format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Devices/IotHubs/{name}"),
        Hub::id,
    );
    if let Err(denied) = crate::policy::evaluate(&st.policies, &hub_id, name, &ctx.api_version(), &mut body) {
        return denied;
    }
    if cfg.reject_read_only_properties && !read_only.is_empty() {
        return rejected(&read_only);
    }
    match (&existing, &if_match) {
        (Some(_), None) if cfg.require_if_match => {
            let status = cfg.missing_if_match_status;
            return if status == 412 {
                precondition_failed("ETag is required (If-Match header) to update an existing IoT hub.")
            } else {
                Reply::arm_error(
                    status,
                    "IfMatchHeaderRequired",
                    "The If-Match header is required to update an existing IoT hub.",
                )
            };
        }
        (Some(h), Some(tag)) if strip_quotes(tag) != "*" && strip_quotes(tag) != h.etag => {
            return precondition_failed("Invalid ETag supplied.");
        }
        (None, Some(tag)) if strip_quotes(tag) != "*" => {
            return precondition_failed("Invalid ETag supplied: the IoT hub does not exist.");
        }
        _ => {}
    }
    if existing.is_none() {
        if !valid_hub_name(name) {
            return Reply::arm_error(400, "InvalidIotHubName", format!("Invalid IoT hub name '{name}'."));
        }
        if st.rg(sub, rg).is_none() {
            return rg_not_found(rg);
        }
    }
    let Some(location) = body.get("location").and_then(Value::as_str).map(str::to_string) else {
        return Reply::arm_error(400, "LocationRequired", "The location property is required for this definition.");
    };
    if existing.is_none() && body.get("sku").is_none() {
        return Reply::arm_error(400, "InvalidSku", "The sku property is required to create an IoT hub.");
    }
    let sku = match body.get("sku") {
        Some(s) => normalize_sku(Some(s)),
        None => existing.as_ref().map(|h| h.sku.clone()).unwrap_or_else(|| normalize_sku(None)),
    };
    let mut properties: Map<String, Value> = match body.get("properties").and_then(Value::as_object) {
        Some(p) => p.clone(),
        None => Map::new(),
    };
    let given_policies = properties.get("authorizationPolicies").cloned();
    crate::read_only::strip_served(&mut properties);
    // Read-only parts the service fills in (event hub endpoint, partition ids, ...).
    fill_missing(&mut properties, &default_hub_properties(name));
    let old_policies = existing.as_ref().map(|h| h.policies.clone());
    let policies = match given_policies.and_then(|v| serde_json::from_value::<Vec<SasPolicy>>(v).ok()) {
        Some(given) => given
            .into_iter()
            .map(|mut p| {
                let old = old_policies.iter().flatten().find(|o| o.key_name == p.key_name);
                if p.primary_key.is_empty() {
                    p.primary_key = old.map_or_else(new_key, |o| o.primary_key.clone());
                }
                if p.secondary_key.is_empty() {
                    p.secondary_key = old.map_or_else(new_key, |o| o.secondary_key.clone());
                }
                p
            })
            .collect(),
        None if cfg.keep_policies_when_omitted => old_policies.unwrap_or_else(default_policies),
        None => default_policies(),
    };
    let tags = body.get("tags").and_then(|t| serde_json::from_value(t.clone()).ok()).unwrap_or_default();
    let created = existing.is_none();
    let hub = Hub {
        subscription_id: existing.as_ref().map_or_else(|| sub.to_string(), |h| h.subscription_id.clone()),
        resource_group: existing.as_ref().map_or_else(|| rg.to_string(), |h| h.resource_group.clone()),
        name: existing.as_ref().map_or_else(|| name.to_string(), |h| h.name.clone()),
        location: location.clone(),
        tags,
        sku,
        identity: body.get("identity").cloned(),
        properties,
        policies,
        etag: new_etag(),
        provisioning_state: "Accepted".into(),
        created_at: existing.as_ref().map_or_else(now_rfc3339, |h| h.created_at.clone()),
        device_host_name: existing.as_ref().and_then(|h| h.device_host_name.clone()),
        service_host_name: existing.as_ref().and_then(|h| h.service_host_name.clone()),
    };
    let window = cfg.hub_not_found_after_local_auth_change;
    if let Some(old) = &existing
        && old.disable_local_auth() != hub.disable_local_auth()
        && !window.is_zero()
    {
        st.hub_not_found_until.insert(hub.id().to_ascii_lowercase(), Instant::now() + window);
    }
    let op = new_operation_id(&location);
    st.operations.insert(
        op.clone(),
        Operation {
            polls: 0,
            hub: Some((hub.subscription_id.clone(), hub.resource_group.clone(), hub.name.clone())),
            dps: None,
            done: false,
        },
    );
    let json = hub_json(&hub, &suffix, &ctx.api_version());
    let etag = hub.etag.clone();
    if let Some(h) = st.hub_mut(sub, rg, name) {
        *h = hub;
    } else {
        st.hubs.push(hub);
    }
    drop(st);
    let _ = created;
    lro_headers(ctx, Reply::json(201, json), sub, &location, &op).header("etag", format!("\"{etag}\"")).changed()
}

fn patch(ctx: &Ctx, sub: &str, rg: &str, name: &str) -> Reply {
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut st = ctx.inner.lock_state();
    let suffix = st.hub_host_suffix.clone();
    let Some(h) = st.hub_mut(sub, rg, name) else { return not_found("Microsoft.Devices/IotHubs", name, rg) };
    if let Some(t) = body.get("tags") {
        match serde_json::from_value(t.clone()) {
            Ok(tags) => h.tags = tags,
            Err(e) => return Reply::arm_error(400, "InvalidRequestContent", format!("tags: {e}")),
        }
    }
    h.etag = new_etag();
    Reply::json(200, hub_json(h, &suffix, &ctx.api_version())).header("etag", format!("\"{}\"", h.etag)).changed()
}

pub(crate) fn list_keys(ctx: &Ctx, sub: &str, rg: &str, name: &str, key: Option<&str>) -> Reply {
    let st = ctx.inner.lock_state();
    let Some(h) = st.hub(sub, rg, name) else { return not_found("Microsoft.Devices/IotHubs", name, rg) };
    let rule = |p: &SasPolicy| json!({"keyName": p.key_name, "primaryKey": p.primary_key, "secondaryKey": p.secondary_key, "rights": p.rights});
    match key {
        Some(k) => match h.policies.iter().find(|p| p.key_name.eq_ignore_ascii_case(k)) {
            Some(p) => Reply::json(200, rule(p)),
            None => Reply::arm_error(
                404,
                "KeyNameNotFound",
                format!("The key name '{k}' was not found for IoT hub '{name}'."),
            ),
        },
        None => {
            let items = h.policies.iter().map(rule).collect();
            drop(st);
            ctx.page(items)
        }
    }
}

pub(crate) fn operation_result(ctx: &Ctx, id: &str) -> Reply {
    let running = ctx.inner.config.lro_running_polls;
    let mut st = ctx.inner.lock_state();
    let Some(op) = st.operations.get_mut(id) else {
        return Reply::arm_error(404, "OperationNotFound", format!("The operation '{id}' was not found."));
    };
    if !op.done && op.polls < running {
        op.polls += 1;
        return Reply::json(200, json!({"status": "Running"})).header("retry-after", retry_after(ctx));
    }
    let first = !op.done;
    op.done = true;
    let hub = op.hub.clone();
    if first
        && let Some((s, r, n)) = hub
        && let Some(h) = st.hub_mut(&s, &r, &n)
    {
        h.provisioning_state = "Succeeded".into();
    }
    Reply::json(200, json!({"status": "Succeeded"}))
}

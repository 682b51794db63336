//! Microsoft.Devices provisioningServices (2022-12-12; at 2026-03-01-preview and from 2026-08-01
//! on, the identity link shape and the resource's managed identity). Connection strings are
//! stored and returned with the key masked.
//!
//! Creation is a long-running operation, as IotDpsResource_CreateOrUpdate declares
//! (`x-ms-long-running-operation`, `final-state-via: location`; 201 with `Location` and
//! `Retry-After`: specification/deviceprovisioningservices/resource-manager/Microsoft.Devices/
//! DeviceProvisioningServices/stable/2026-11-01/iotdps.json): the 201 carries
//! `Azure-AsyncOperation` (IotDpsResource_GetOperationResult, `.../operationresults/{id}?asyncinfo`:
//! `{"status": "Running"}` for `EmulatorConfig::lro_running_polls` polls, then `Succeeded`),
//! `Location` (the same path without `asyncinfo`: 202 while it runs, then 200 with the
//! provisioning service) and `Retry-After` (at least 1); `properties.provisioningState` is
//! `Accepted` until the operation is seen to finish. An update of an existing instance answers
//! 200, done.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::ctx::{Ctx, Reply, method_not_allowed};
use crate::fresh::new_etag;
use crate::iothub::{not_found, retry_after, rg_not_found};
use crate::resources::Dps;
use crate::seed::DpsLinkSeed;
use crate::state::{Operation, State};

/// Whether `api_version` returns `hostName`/`authenticationType`/
/// `selectedUserAssignedIdentityResourceId` per link, drops the connection string of identity
/// links and returns the resource's `identity`: 2026-03-01-preview, and every version dated
/// 2026-08-01 or later (2026-04-01 and 2025-02-01-preview do not).
pub(crate) fn new_shape(api_version: &str) -> bool {
    api_version.eq_ignore_ascii_case("2026-03-01-preview") || api_version.get(..10).unwrap_or("") >= "2026-08-01"
}

/// Fill in the ids Azure assigns: `principalId`/`tenantId` for a system-assigned identity,
/// `principalId`/`clientId` for each user-assigned one (kept from `old` when already known).
fn complete_identity(mut v: Value, old: Option<&Value>, tenant: &str) -> Value {
    let Some(obj) = v.as_object_mut() else { return v };
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("None").to_ascii_lowercase();
    let old_str = |k: &str| old.and_then(|o| o.get(k)).and_then(Value::as_str).map(str::to_string);
    let fresh = || uuid::Uuid::new_v4().to_string();
    if kind.contains("systemassigned") {
        if !obj.get("principalId").is_some_and(Value::is_string) {
            obj.insert("principalId".into(), Value::String(old_str("principalId").unwrap_or_else(fresh)));
        }
        if !obj.get("tenantId").is_some_and(Value::is_string) {
            obj.insert("tenantId".into(), Value::String(tenant.to_string()));
        }
    }
    if let Some(Value::Object(ids)) = obj.get_mut("userAssignedIdentities") {
        for (id, entry) in ids.iter_mut() {
            let before = old.and_then(|o| o.pointer("/userAssignedIdentities")).and_then(|u| {
                u.as_object().and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(id)).map(|(_, v)| v))
            });
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            for k in ["principalId", "clientId"] {
                if !entry.get(k).is_some_and(Value::is_string) {
                    let kept = before.and_then(|b| b.get(k)).and_then(Value::as_str).map(str::to_string);
                    entry[k] = Value::String(kept.unwrap_or_else(fresh));
                }
            }
        }
    }
    v
}

fn mask(cs: &str, host: &str) -> String {
    let key_name = cs
        .split(';')
        .find_map(|p| {
            p.split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case("SharedAccessKeyName")).map(|(_, v)| v.to_string())
        })
        .unwrap_or_else(|| "iothubowner".into());
    format!("HostName={host};SharedAccessKeyName={key_name};SharedAccessKey=****")
}

fn host_from_cs(cs: &str) -> Option<String> {
    cs.split(';').find_map(|p| {
        p.split_once('=').filter(|(k, _)| k.trim().eq_ignore_ascii_case("HostName")).map(|(_, v)| v.trim().to_string())
    })
}

fn link_json(st: &State, d: &Dps, l: &DpsLinkSeed, new_shape: bool) -> Value {
    let host = st.link_host(&l.hub);
    let auth = l.authentication_type.clone().unwrap_or_else(|| "KeyBased".into());
    let key_based = auth.eq_ignore_ascii_case("KeyBased");
    let location = l
        .location
        .clone()
        .or_else(|| st.hub_by_host_or_name(&l.hub).map(|h| h.location.clone()))
        .unwrap_or_else(|| d.location.clone());
    let mut v = json!({
        "name": host,
        "location": location,
        "allocationWeight": l.allocation_weight.unwrap_or(1),
        "applyAllocationPolicy": l.apply_allocation_policy.unwrap_or(false),
    });
    if key_based {
        let cs = l.connection_string.clone().unwrap_or_default();
        v["connectionString"] = Value::String(mask(&cs, &host));
    }
    if new_shape {
        v["hostName"] = Value::String(host);
        v["authenticationType"] = Value::String(auth);
        if let Some(id) = &l.selected_user_assigned_identity_resource_id {
            v["selectedUserAssignedIdentityResourceId"] = Value::String(id.clone());
        }
    }
    v
}

fn dps_json(st: &State, d: &Dps, api_version: &str) -> Value {
    let new_shape = new_shape(api_version);
    let links: Vec<Value> = match &d.raw_iot_hubs {
        Some(raw) => raw.clone(),
        None => d.links.iter().map(|l| link_json(st, d, l, new_shape)).collect(),
    };
    let lname = d.name.to_ascii_lowercase();
    let mut v = json!({
        "id": format!("/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Devices/ProvisioningServices/{}", d.subscription_id, d.resource_group, d.name),
        "name": d.name,
        "type": "Microsoft.Devices/ProvisioningServices",
        "location": d.location,
        "tags": d.tags,
        "etag": d.etag,
        "resourcegroup": d.resource_group,
        "subscriptionid": d.subscription_id,
        "sku": {"name": "S1", "tier": "Standard", "capacity": 1},
        "properties": {
            "state": "Active",
            "provisioningState": d.provisioning_state,
            "iotHubs": links,
            "allocationPolicy": "Hashed",
            "serviceOperationsHostName": format!("{lname}.azure-devices-provisioning.net"),
            "deviceProvisioningHostName": "global.azure-devices-provisioning.net",
            "idScope": format!("0ne{:08X}", fxhash(&lname) as u32),
            "authorizationPolicies": [],
            "portalOperationsHostName": format!("{lname}.services.azure-devices-provisioning.net"),
            "enableDataResidency": false,
        }
    });
    if new_shape && let Some(i) = &d.identity {
        v["identity"] = i.clone();
    }
    v
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
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
        .dps
        .iter()
        .filter(|d| {
            d.subscription_id.eq_ignore_ascii_case(sub) && rg.is_none_or(|r| d.resource_group.eq_ignore_ascii_case(r))
        })
        .map(|d| dps_json(&st, d, &api))
        .collect();
    drop(st);
    ctx.page(items)
}

pub(crate) fn dps(ctx: &Ctx, sub: &str, rg: &str, name: &str) -> Reply {
    match ctx.method.as_str() {
        "GET" => {
            let st = ctx.inner.lock_state();
            match st.dps.iter().find(|d| d.matches(sub, rg, name)) {
                Some(d) => {
                    Reply::json(200, dps_json(&st, d, &ctx.api_version())).header("etag", format!("\"{}\"", d.etag))
                }
                None => not_found("Microsoft.Devices/ProvisioningServices", name, rg),
            }
        }
        "PUT" => put(ctx, sub, rg, name),
        _ => method_not_allowed(ctx),
    }
}

fn put(ctx: &Ctx, sub: &str, rg: &str, name: &str) -> Reply {
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(location) = body.get("location").and_then(Value::as_str).map(str::to_string) else {
        return Reply::arm_error(400, "LocationRequired", "The location property is required for this definition.");
    };
    let mut links = Vec::new();
    for (i, h) in body.pointer("/properties/iotHubs").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let s = |k: &str| h.get(k).and_then(Value::as_str).map(str::to_string);
        let cs = s("connectionString").filter(|c| !c.is_empty());
        let auth = s("authenticationType");
        let key_based = auth.as_deref().is_none_or(|a| a.eq_ignore_ascii_case("KeyBased"));
        let host = s("hostName").or_else(|| s("name")).or_else(|| cs.as_deref().and_then(host_from_cs));
        let Some(host) = host else {
            return Reply::arm_error(
                400,
                "InvalidIotHubDefinition",
                format!("properties.iotHubs[{i}]: a hostName, name or connectionString is required."),
            );
        };
        if key_based && cs.is_none() {
            return Reply::arm_error(
                400,
                "InvalidIotHubConnectionString",
                format!("properties.iotHubs[{i}]: connectionString is required for a key-based link."),
            );
        }
        links.push(DpsLinkSeed {
            hub: host,
            authentication_type: auth,
            location: s("location"),
            selected_user_assigned_identity_resource_id: s("selectedUserAssignedIdentityResourceId"),
            connection_string: cs,
            allocation_weight: h.get("allocationWeight").and_then(Value::as_i64),
            apply_allocation_policy: h.get("applyAllocationPolicy").and_then(Value::as_bool),
        });
    }
    let tags: BTreeMap<String, String> =
        body.get("tags").and_then(|t| serde_json::from_value(t.clone()).ok()).unwrap_or_default();
    let mut st = ctx.inner.lock_state();
    if st.rg(sub, rg).is_none() {
        return rg_not_found(rg);
    }
    // Versions without the identity shape leave the stored identity alone.
    let tenant = st.tenant_id.clone();
    let old_identity = st.dps.iter().find(|d| d.matches(sub, rg, name)).and_then(|d| d.identity.clone());
    let identity = if new_shape(&ctx.api_version()) {
        body.get("identity")
            .filter(|i| i.is_object())
            .map(|i| complete_identity(i.clone(), old_identity.as_ref(), &tenant))
    } else {
        old_identity
    };
    let op_id = uuid::Uuid::new_v4().simple().to_string();
    let created = match st.dps_mut(sub, rg, name) {
        Some(d) => {
            d.location = location;
            d.links = links;
            d.tags = tags;
            d.etag = new_etag();
            d.identity = identity;
            d.raw_iot_hubs = None;
            false
        }
        None => {
            st.dps.push(Dps {
                subscription_id: sub.to_string(),
                resource_group: rg.to_string(),
                name: name.to_string(),
                location,
                tags,
                links,
                etag: new_etag(),
                identity,
                raw_iot_hubs: None,
                provisioning_state: "Accepted".into(),
            });
            let key = (sub.to_string(), rg.to_string(), name.to_string());
            st.operations.insert(op_id.clone(), Operation { polls: 0, hub: None, dps: Some(key), done: false });
            true
        }
    };
    let d = st.dps.iter().find(|d| d.matches(sub, rg, name)).cloned();
    let v = d.map(|d| dps_json(&st, &d, &ctx.api_version())).unwrap_or(Value::Null);
    drop(st);
    if !created {
        return Reply::json(200, v).changed();
    }
    let status_url = operation_url(ctx, sub, rg, name, &op_id, true);
    Reply::json(201, v)
        .header("azure-asyncoperation", status_url)
        .header("location", operation_url(ctx, sub, rg, name, &op_id, false))
        .header("retry-after", retry_after(ctx))
        .changed()
}

/// Where the creation's status (`asyncinfo`) or, once done, its result is read.
fn operation_url(ctx: &Ctx, sub: &str, rg: &str, name: &str, op: &str, status: bool) -> String {
    let api = ctx.query("api-version").unwrap_or_else(|| "2022-12-12".into());
    let tail = if status { "&asyncinfo" } else { "" };
    format!(
        "{}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Devices/provisioningServices/{name}/operationresults/{op}?api-version={api}{tail}",
        ctx.inner.base_url
    )
}

/// IotDpsResource_GetOperationResult (`asyncinfo` given: `{"status": ...}`), or the `Location`
/// of a creation (202 while it runs, then the provisioning service).
pub(crate) fn operation_result(ctx: &Ctx, sub: &str, rg: &str, name: &str, id: &str) -> Reply {
    let status_form = ctx.query("asyncinfo").is_some();
    let running = ctx.inner.config.lro_running_polls;
    let mut st = ctx.inner.lock_state();
    let owner = |d: &Option<(String, String, String)>| {
        d.as_ref().is_some_and(|(s, r, n)| {
            s.eq_ignore_ascii_case(sub) && r.eq_ignore_ascii_case(rg) && n.eq_ignore_ascii_case(name)
        })
    };
    let Some(op) = st.operations.get_mut(id).filter(|o| owner(&o.dps)) else {
        return Reply::arm_error(404, "OperationNotFound", format!("The operation '{id}' was not found."));
    };
    if !op.done && op.polls < running {
        op.polls += 1;
        drop(st);
        return if status_form {
            Reply::json(200, json!({"status": "Running"})).header("retry-after", retry_after(ctx))
        } else {
            Reply::empty(202)
                .header("location", operation_url(ctx, sub, rg, name, id, false))
                .header("retry-after", retry_after(ctx))
        };
    }
    op.done = true;
    if let Some(d) = st.dps_mut(sub, rg, name) {
        d.provisioning_state = "Succeeded".into();
    }
    if status_form {
        return Reply::json(200, json!({"status": "Succeeded"}));
    }
    match st.dps.iter().find(|d| d.matches(sub, rg, name)) {
        Some(d) => Reply::json(200, dps_json(&st, d, &ctx.api_version())),
        None => not_found("Microsoft.Devices/ProvisioningServices", name, rg),
    }
}

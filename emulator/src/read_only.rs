//! Read-only properties a hub PUT body may carry (values the service sets and ignores on
//! write), by JSON path. Counted in `Stats::read_only_sent`; refused with
//! `EmulatorConfig::reject_read_only_properties`.

use serde_json::Value;

use crate::ctx::Reply;

const TOP: &[&str] = &["id", "name", "type", "systemData"];
const PROPERTIES: &[&str] =
    &["provisioningState", "state", "hostName", "deviceHostName", "serviceHostName", "locations"];
const EVENT_HUB_ENDPOINT: &[&str] = &["partitionIds", "path", "endpoint"];

/// Remove from a hub's `properties` what the service fills in itself: the read-only properties,
/// and the shared access policies (kept apart, with their keys).
pub(crate) fn strip_served(properties: &mut serde_json::Map<String, Value>) {
    for k in PROPERTIES.iter().chain(&["authorizationPolicies"]) {
        properties.remove(*k);
    }
}

fn present(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.is_null())
}

/// The read-only paths `body` carries (non-null), in a stable order.
pub(crate) fn read_only_paths(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for k in TOP {
        if present(body.get(*k)) {
            out.push(k.to_string());
        }
    }
    if present(body.pointer("/sku/tier")) {
        out.push("sku.tier".into());
    }
    if let Some(identity) = body.get("identity") {
        for k in ["principalId", "tenantId"] {
            if present(identity.get(k)) {
                out.push(format!("identity.{k}"));
            }
        }
        if let Some(ids) = identity.get("userAssignedIdentities").and_then(Value::as_object) {
            for (id, v) in ids {
                for k in ["principalId", "clientId"] {
                    if present(v.get(k)) {
                        out.push(format!("identity.userAssignedIdentities.{id}.{k}"));
                    }
                }
            }
        }
    }
    if let Some(props) = body.get("properties") {
        for k in PROPERTIES {
            if present(props.get(*k)) {
                out.push(format!("properties.{k}"));
            }
        }
        if let Some(endpoints) = props.get("eventHubEndpoints").and_then(Value::as_object) {
            for (name, e) in endpoints {
                for k in EVENT_HUB_ENDPOINT {
                    if present(e.get(*k)) {
                        out.push(format!("properties.eventHubEndpoints.{name}.{k}"));
                    }
                }
            }
        }
    }
    out
}

/// 400 `InvalidRequestContent` naming the read-only paths.
pub(crate) fn rejected(paths: &[String]) -> Reply {
    Reply::arm_error(
        400,
        "InvalidRequestContent",
        format!("The request content carried read-only properties: {}.", paths.join(", ")),
    )
}

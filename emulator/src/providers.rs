//! Resource provider registrations (ARM "Providers - Get") and the api-versions each resource
//! type accepts (`EmulatorConfig::provider_api_versions`): another api-version answers 400
//! `NoRegisteredProviderFound`, as ARM does before the request reaches the provider; a namespace
//! not registered in the subscription answers 409 `MissingSubscriptionRegistration`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::ctx::{Ctx, Reply};
use crate::routes::{Route, provider_type};

/// The namespaces the emulator serves, with their resource types.
const NAMESPACES: &[(&str, &[&str])] = &[
    ("Microsoft.Devices", &["IotHubs", "ProvisioningServices"]),
    ("Microsoft.DeviceUpdate", &["accounts", "accounts/instances"]),
];

/// Regions every resource type is offered in.
const LOCATIONS: &[&str] = &[
    "West Europe",
    "North Europe",
    "East US",
    "East US 2",
    "West US",
    "West US 2",
    "Central US",
    "South Central US",
    "UK South",
    "France Central",
    "Germany West Central",
    "Sweden Central",
    "Japan East",
    "Southeast Asia",
    "Australia East",
    "Canada Central",
];

/// The default of `EmulatorConfig::provider_api_versions`.
pub(crate) fn default_api_versions() -> BTreeMap<String, Vec<String>> {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let adu = ["2023-07-01", "2022-10-01", "2022-04-01-preview"];
    BTreeMap::from([
        (
            "Microsoft.Devices/IotHubs".to_string(),
            v(&[
                "2026-03-01-preview",
                "2025-08-01-preview",
                "2023-06-30-preview",
                "2023-06-30",
                "2022-04-30-preview",
                "2021-07-02",
                "2021-07-01",
            ]),
        ),
        (
            // 2026-11-01: stable (specification/deviceprovisioningservices/resource-manager/
            // Microsoft.Devices/DeviceProvisioningServices/stable/2026-11-01/iotdps.json), the only
            // version the 2026 DPS management SDKs know; links as from 2026-08-01.
            "Microsoft.Devices/ProvisioningServices".to_string(),
            v(&[
                "2026-11-01",
                "2026-08-01",
                "2026-04-01",
                "2026-03-01-preview",
                "2025-02-01-preview",
                "2022-12-12",
                "2022-02-05",
                "2021-10-15",
            ]),
        ),
        ("Microsoft.DeviceUpdate/accounts".to_string(), v(&adu)),
        ("Microsoft.DeviceUpdate/accounts/instances".to_string(), v(&adu)),
    ])
}

/// Supported api-versions of `key` (`{namespace}/{type}`, case-insensitive); `None`: any.
fn supported<'a>(ctx: &'a Ctx, key: &str) -> Option<&'a Vec<String>> {
    ctx.inner.config.provider_api_versions.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

/// `GET /subscriptions/{sub}/providers/{namespace}`.
pub(crate) fn get(ctx: &Ctx, sub: &str, ns: &str) -> Reply {
    let Some((name, types)) = NAMESPACES.iter().find(|(n, _)| n.eq_ignore_ascii_case(ns)) else {
        return Reply::arm_error(404, "InvalidResourceNamespace", format!("The resource namespace '{ns}' is invalid."));
    };
    let resource_types: Vec<Value> = types
        .iter()
        .map(|t| {
            let versions = supported(ctx, &format!("{name}/{t}")).cloned().unwrap_or_default();
            json!({"resourceType": t, "locations": LOCATIONS, "apiVersions": versions, "capabilities": "None"})
        })
        .collect();
    Reply::json(
        200,
        json!({
            "id": format!("/subscriptions/{sub}/providers/{name}"),
            "namespace": name,
            "registrationState": if ctx.inner.lock_state().provider_registered(sub, name) { "Registered" } else { "NotRegistered" },
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": resource_types,
        }),
    )
}

/// 409 `MissingSubscriptionRegistration` when the request's namespace is not registered in its
/// subscription; 400 `NoRegisteredProviderFound` when its resource type does not support its
/// api-version. Requests without an api-version are let through.
pub(crate) fn check_api_version(ctx: &Ctx, route: &Route) -> Option<Reply> {
    let key = provider_type(route)?;
    let namespace = key.split_once('/').map_or(key, |(n, _)| n);
    if let Some(sub) = crate::routes::route_subscription(route)
        && !ctx.inner.lock_state().provider_registered(&sub, namespace)
    {
        return Some(Reply::arm_error(
            409,
            "MissingSubscriptionRegistration",
            format!(
                "The subscription is not registered to use namespace '{namespace}'. See https://aka.ms/rps-not-found for how to register subscriptions."
            ),
        ));
    }
    let version = ctx.query("api-version")?;
    let versions = supported(ctx, key)?;
    if versions.iter().any(|v| v.eq_ignore_ascii_case(&version)) {
        return None;
    }
    let location = serde_json::from_slice::<Value>(&ctx.body)
        .ok()
        .and_then(|b| b.get("location").and_then(Value::as_str).map(|l| l.replace(' ', "").to_ascii_lowercase()))
        .unwrap_or_else(|| "global".into());
    let type_name = key.split_once('/').map_or(key, |(_, t)| t);
    let locations: Vec<String> = LOCATIONS.iter().map(|l| l.replace(' ', "").to_ascii_lowercase()).collect();
    Some(Reply::arm_error(
        400,
        "NoRegisteredProviderFound",
        format!(
            "No registered resource provider found for location '{location}' and API version '{version}' for type '{type_name}'. The supported api-versions are '{}'. The supported locations are '{}'.",
            versions.join(", "),
            locations.join(", ")
        ),
    ))
}

//! Routing: where a request goes, its operation name (stats, `Faults::only_operations`), its
//! subscription, the ARM action it needs and the resource type whose api-versions apply.

use crate::state::{canonical_scope, subscription_of};

/// Where a request goes.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    Admin(String),
    Token(String),
    Discovery,
    OpenId(String),
    Imds,
    Assignments { scope: String, name: Option<String> },
    Definitions { scope: String, name: Option<String> },
    DenyAssignments { scope: String, name: Option<String> },
    Eligibilities { scope: String, name: Option<String> },
    ManagementGroup { id: String },
    Entities,
    SubscriptionList,
    Subscription { sub: String },
    Provider { sub: String, ns: String },
    ResourceGroup { sub: String, rg: String },
    HubList { sub: String, rg: Option<String> },
    Hub { sub: String, rg: String, name: String },
    HubKeys { sub: String, rg: String, name: String, key: Option<String> },
    OperationResult { sub: String, id: String },
    DpsList { sub: String, rg: Option<String> },
    Dps { sub: String, rg: String, name: String },
    DpsOperationResult { sub: String, rg: String, name: String, id: String },
    DuAccountList { sub: String, rg: Option<String> },
    DuAccount { sub: String, rg: String, name: String },
    DuInstanceList { sub: String, rg: String, account: String },
    DuInstance { sub: String, rg: String, account: String, name: String },
    NotFound,
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

pub(crate) fn classify(segs: &[String]) -> Route {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    if s.first() == Some(&"_emulator") {
        return Route::Admin(s[1..].join("/"));
    }
    match s.as_slice() {
        [m, i, o, t] if eq(m, "metadata") && eq(i, "identity") && eq(o, "oauth2") && eq(t, "token") => {
            return Route::Imds;
        }
        [c, d, i] if eq(c, "common") && eq(d, "discovery") && eq(i, "instance") => return Route::Discovery,
        [t, v, w, o] if eq(v, "v2.0") && eq(w, ".well-known") && eq(o, "openid-configuration") => {
            return Route::OpenId(t.to_string());
        }
        [t, o, v, tok] if eq(o, "oauth2") && eq(v, "v2.0") && eq(tok, "token") => return Route::Token(t.to_string()),
        _ => {}
    }
    // Authorization: the last `providers/Microsoft.Authorization/{roleAssignments|roleDefinitions|
    // denyAssignments|roleEligibilityScheduleInstances}`.
    for i in (0..s.len().saturating_sub(2)).rev() {
        if eq(s[i], "providers") && eq(s[i + 1], "Microsoft.Authorization") {
            let kind = s[i + 2];
            let scope = format!("/{}", s[..i].join("/"));
            let name = match s.len() - (i + 3) {
                0 => None,
                1 => Some(s[i + 3].to_string()),
                _ => return Route::NotFound,
            };
            if eq(kind, "roleAssignments") {
                return Route::Assignments { scope, name };
            }
            if eq(kind, "roleDefinitions") {
                return Route::Definitions { scope, name };
            }
            if eq(kind, "denyAssignments") {
                return Route::DenyAssignments { scope, name };
            }
            if eq(kind, "roleEligibilityScheduleInstances") {
                return Route::Eligibilities { scope, name };
            }
            return Route::NotFound;
        }
    }
    let st = |x: &str| x.to_string();
    match s.as_slice() {
        [p, m, g] if eq(p, "providers") && eq(m, "Microsoft.Management") && eq(g, "getEntities") => Route::Entities,
        [p, m, g, id] if eq(p, "providers") && eq(m, "Microsoft.Management") && eq(g, "managementGroups") => {
            Route::ManagementGroup { id: st(id) }
        }
        [su] if eq(su, "subscriptions") => Route::SubscriptionList,
        [su, sub] if eq(su, "subscriptions") => Route::Subscription { sub: st(sub) },
        [su, sub, p, ns] if eq(su, "subscriptions") && eq(p, "providers") => {
            Route::Provider { sub: st(sub), ns: st(ns) }
        }
        [su, sub, r, rg] if eq(su, "subscriptions") && eq(r, "resourceGroups") => {
            Route::ResourceGroup { sub: st(sub), rg: st(rg) }
        }
        [su, sub, p, d, t] if eq(su, "subscriptions") && eq(p, "providers") && eq(d, "Microsoft.Devices") => {
            if eq(t, "IotHubs") {
                Route::HubList { sub: st(sub), rg: None }
            } else if eq(t, "provisioningServices") {
                Route::DpsList { sub: st(sub), rg: None }
            } else {
                Route::NotFound
            }
        }
        [su, sub, p, d, t]
            if eq(su, "subscriptions")
                && eq(p, "providers")
                && eq(d, "Microsoft.DeviceUpdate")
                && eq(t, "accounts") =>
        {
            Route::DuAccountList { sub: st(sub), rg: None }
        }
        [su, sub, p, d, l, _loc, o, id]
            if eq(su, "subscriptions")
                && eq(p, "providers")
                && eq(d, "Microsoft.Devices")
                && eq(l, "locations")
                && eq(o, "operationResults") =>
        {
            Route::OperationResult { sub: st(sub), id: st(id) }
        }
        [su, sub, r, rg, p, d, rest @ ..]
            if eq(su, "subscriptions")
                && eq(r, "resourceGroups")
                && eq(p, "providers")
                && eq(d, "Microsoft.Devices") =>
        {
            let (sub, rg) = (st(sub), st(rg));
            match rest {
                [t] if eq(t, "IotHubs") => Route::HubList { sub, rg: Some(rg) },
                [t] if eq(t, "provisioningServices") => Route::DpsList { sub, rg: Some(rg) },
                [t, n] if eq(t, "IotHubs") => Route::Hub { sub, rg, name: st(n) },
                [t, n] if eq(t, "provisioningServices") => Route::Dps { sub, rg, name: st(n) },
                [t, n, o, id] if eq(t, "provisioningServices") && eq(o, "operationresults") => {
                    Route::DpsOperationResult { sub, rg, name: st(n), id: st(id) }
                }
                [t, n, l] if eq(t, "IotHubs") && eq(l, "listkeys") => {
                    Route::HubKeys { sub, rg, name: st(n), key: None }
                }
                [t, n, k, key, l] if eq(t, "IotHubs") && eq(k, "IotHubKeys") && eq(l, "listkeys") => {
                    Route::HubKeys { sub, rg, name: st(n), key: Some(st(key)) }
                }
                _ => Route::NotFound,
            }
        }
        [su, sub, r, rg, p, d, a, rest @ ..]
            if eq(su, "subscriptions")
                && eq(r, "resourceGroups")
                && eq(p, "providers")
                && eq(d, "Microsoft.DeviceUpdate")
                && eq(a, "accounts") =>
        {
            let (sub, rg) = (st(sub), st(rg));
            match rest {
                [] => Route::DuAccountList { sub, rg: Some(rg) },
                [n] => Route::DuAccount { sub, rg, name: st(n) },
                [n, i] if eq(i, "instances") => Route::DuInstanceList { sub, rg, account: st(n) },
                [n, i, name] if eq(i, "instances") => Route::DuInstance { sub, rg, account: st(n), name: st(name) },
                _ => Route::NotFound,
            }
        }
        _ => Route::NotFound,
    }
}

/// Operation name for stats and `Faults::only_operations`.
pub(crate) fn op_name(route: &Route, method: &str) -> &'static str {
    match (route, method) {
        (Route::Token(_) | Route::Discovery | Route::OpenId(_), _) => "token",
        (Route::Imds, _) => "imds",
        (Route::Assignments { name: None, .. }, "GET") => "roleAssignments.list",
        (Route::Assignments { name: Some(_), .. }, "GET") => "roleAssignments.get",
        (Route::Assignments { name: Some(_), .. }, "PUT") => "roleAssignments.create",
        (Route::Assignments { name: Some(_), .. }, "DELETE") => "roleAssignments.delete",
        (Route::Definitions { name: None, .. }, "GET") => "roleDefinitions.list",
        (Route::Definitions { name: Some(_), .. }, "GET") => "roleDefinitions.get",
        (Route::Definitions { name: Some(_), .. }, "PUT") => "roleDefinitions.put",
        (Route::Definitions { name: Some(_), .. }, "DELETE") => "roleDefinitions.delete",
        (Route::DenyAssignments { name: None, .. }, "GET") => "denyAssignments.list",
        (Route::DenyAssignments { name: Some(_), .. }, "GET") => "denyAssignments.get",
        (Route::Eligibilities { name: None, .. }, "GET") => "roleEligibilityScheduleInstances.list",
        (Route::Eligibilities { name: Some(_), .. }, "GET") => "roleEligibilityScheduleInstances.get",
        (Route::ManagementGroup { .. }, "GET") => "managementGroups.get",
        (Route::Entities, "POST") => "entities.list",
        (Route::SubscriptionList, "GET") => "subscriptions.list",
        (Route::Subscription { .. }, "GET") => "subscriptions.get",
        (Route::Provider { .. }, "GET") => "providers.get",
        (Route::ResourceGroup { .. }, "PUT") => "resourceGroups.put",
        (Route::ResourceGroup { .. }, "GET") => "resourceGroups.get",
        (Route::HubList { .. }, "GET") => "iotHubs.list",
        (Route::Hub { .. }, "GET") => "iotHubs.get",
        (Route::Hub { .. }, "PUT") => "iotHubs.put",
        (Route::Hub { .. }, "PATCH") => "iotHubs.patch",
        (Route::Hub { .. }, "DELETE") => "iotHubs.delete",
        (Route::HubKeys { .. }, "POST") => "iotHubs.listkeys",
        (Route::OperationResult { .. }, "GET") => "iotHubs.operationResult",
        (Route::DpsList { .. }, "GET") => "provisioningServices.list",
        (Route::Dps { .. }, "GET") => "provisioningServices.get",
        (Route::Dps { .. }, "PUT") => "provisioningServices.put",
        (Route::DpsOperationResult { .. }, "GET") => "provisioningServices.operationResult",
        (Route::DuAccountList { .. }, "GET") => "deviceUpdate.accounts.list",
        (Route::DuAccount { .. }, "GET") => "deviceUpdate.accounts.get",
        (Route::DuInstanceList { .. }, "GET") => "deviceUpdate.instances.list",
        (Route::DuInstance { .. }, "GET") => "deviceUpdate.instances.get",
        (Route::DuInstance { .. }, "PUT") => "deviceUpdate.instances.put",
        _ => "unknown",
    }
}

/// The subscription a request is routed to, if any.
pub(crate) fn route_subscription(route: &Route) -> Option<String> {
    match route {
        Route::Assignments { scope, .. }
        | Route::Definitions { scope, .. }
        | Route::DenyAssignments { scope, .. }
        | Route::Eligibilities { scope, .. } => subscription_of(&canonical_scope(scope)),
        Route::Subscription { sub }
        | Route::Provider { sub, .. }
        | Route::ResourceGroup { sub, .. }
        | Route::HubList { sub, .. }
        | Route::Hub { sub, .. }
        | Route::HubKeys { sub, .. }
        | Route::OperationResult { sub, .. }
        | Route::DpsList { sub, .. }
        | Route::Dps { sub, .. }
        | Route::DpsOperationResult { sub, .. }
        | Route::DuAccountList { sub, .. }
        | Route::DuAccount { sub, .. }
        | Route::DuInstanceList { sub, .. }
        | Route::DuInstance { sub, .. } => Some(sub.clone()),
        _ => None,
    }
}

/// The ARM action a request needs, e.g. `Microsoft.Devices/provisioningServices/read`.
pub(crate) fn action(route: &Route, method: &str) -> String {
    let verb = match method {
        "GET" | "HEAD" => "read",
        "DELETE" => "delete",
        "POST" => "action",
        _ => "write",
    };
    let kind = match route {
        Route::Assignments { .. } => "Microsoft.Authorization/roleAssignments",
        Route::Definitions { .. } => "Microsoft.Authorization/roleDefinitions",
        Route::DenyAssignments { .. } => "Microsoft.Authorization/denyAssignments",
        Route::Eligibilities { .. } => "Microsoft.Authorization/roleEligibilityScheduleInstances",
        Route::ManagementGroup { .. } => "Microsoft.Management/managementGroups",
        Route::Entities => return "Microsoft.Management/getEntities/action".into(),
        Route::SubscriptionList | Route::Subscription { .. } => "Microsoft.Resources/subscriptions",
        Route::Provider { .. } => "Microsoft.Resources/subscriptions/providers",
        Route::ResourceGroup { .. } => "Microsoft.Resources/subscriptions/resourceGroups",
        Route::HubList { .. } | Route::Hub { .. } => "Microsoft.Devices/IotHubs",
        Route::HubKeys { .. } => return "Microsoft.Devices/IotHubs/listkeys/action".into(),
        Route::OperationResult { .. } => "Microsoft.Devices/locations/operationResults",
        Route::DpsList { .. } | Route::Dps { .. } => "Microsoft.Devices/provisioningServices",
        Route::DpsOperationResult { .. } => "Microsoft.Devices/provisioningServices/operationresults",
        Route::DuAccountList { .. } | Route::DuAccount { .. } => "Microsoft.DeviceUpdate/accounts",
        Route::DuInstanceList { .. } | Route::DuInstance { .. } => "Microsoft.DeviceUpdate/accounts/instances",
        _ => "Microsoft.Resources/resources",
    };
    format!("{kind}/{verb}")
}

/// The resource type (`provider_api_versions` key) whose api-versions a request must use.
pub(crate) fn provider_type(route: &Route) -> Option<&'static str> {
    match route {
        Route::HubList { .. } | Route::Hub { .. } | Route::HubKeys { .. } => Some("Microsoft.Devices/IotHubs"),
        Route::DpsList { .. } | Route::Dps { .. } | Route::DpsOperationResult { .. } => {
            Some("Microsoft.Devices/ProvisioningServices")
        }
        Route::DuAccountList { .. } | Route::DuAccount { .. } => Some("Microsoft.DeviceUpdate/accounts"),
        Route::DuInstanceList { .. } | Route::DuInstance { .. } => Some("Microsoft.DeviceUpdate/accounts/instances"),
        _ => None,
    }
}

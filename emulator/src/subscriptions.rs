//! Subscriptions (`GET /subscriptions`, `GET /subscriptions/{id}`, api-version 2022-12-01 shape)
//! and per-subscription access: a `Forbidden` or `Hidden` subscription answers every request
//! routed to it with 403 `AuthorizationFailed`; a `Hidden` one is not listed either.

use serde_json::{Value, json};

use crate::ctx::{Ctx, Reply};
use crate::routes::{Route, action};
use crate::seed::{Subscription, SubscriptionAccess};
use crate::state::State;

impl State {
    /// Add (or replace) a subscription with its display name, state and access.
    pub fn add_subscription(&mut self, s: Subscription) {
        let key = s.subscription_id.to_ascii_lowercase();
        self.subscriptions.insert(key.clone());
        self.subscription_details.insert(key, s);
    }

    /// Set what the caller may do in subscription `id`; creates the subscription if new.
    pub fn set_subscription_access(&mut self, id: &str, access: SubscriptionAccess) {
        let key = id.to_ascii_lowercase();
        self.subscriptions.insert(key.clone());
        self.subscription_details
            .entry(key)
            .or_insert_with(|| Subscription { subscription_id: id.to_string(), ..Subscription::default() })
            .access = Some(access);
    }

    /// Register (or unregister) a resource provider namespace in subscription `id`.
    pub fn set_provider_registered(&mut self, id: &str, namespace: &str, registered: bool) {
        let key = id.to_ascii_lowercase();
        self.subscriptions.insert(key.clone());
        let s = self
            .subscription_details
            .entry(key)
            .or_insert_with(|| Subscription { subscription_id: id.to_string(), ..Subscription::default() });
        s.not_registered.retain(|n| !n.eq_ignore_ascii_case(namespace));
        if !registered {
            s.not_registered.push(namespace.to_string());
        }
    }

    /// Is `namespace` registered in subscription `id`? (Every namespace is, unless seeded not.)
    pub fn provider_registered(&self, id: &str, namespace: &str) -> bool {
        self.subscription_details
            .get(&id.to_ascii_lowercase())
            .is_none_or(|s| !s.not_registered.iter().any(|n| n.eq_ignore_ascii_case(namespace)))
    }

    /// Access to subscription `id`; `None` when the subscription is unknown.
    pub fn subscription_access(&self, id: &str) -> Option<SubscriptionAccess> {
        self.subscription(id).and_then(|s| s.access)
    }

    /// Subscription `id` with every default filled in; `None` when unknown.
    pub fn subscription(&self, id: &str) -> Option<Subscription> {
        let key = id.to_ascii_lowercase();
        if !self.subscriptions.contains(&key) {
            return None;
        }
        let mut s = self
            .subscription_details
            .get(&key)
            .cloned()
            .unwrap_or_else(|| Subscription { subscription_id: key.clone(), ..Subscription::default() });
        s.display_name.get_or_insert_with(|| s.subscription_id.clone());
        s.state.get_or_insert_with(|| "Enabled".into());
        s.access.get_or_insert(SubscriptionAccess::Read);
        Some(s)
    }
}

fn subscription_json(s: &Subscription, tenant: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{}", s.subscription_id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": s.subscription_id,
        "tenantId": tenant,
        "displayName": s.display_name,
        "state": s.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off"
        }
    })
}

/// `GET /subscriptions`: every subscription but the hidden ones.
pub(crate) fn list(ctx: &Ctx) -> Reply {
    let st = ctx.inner.lock_state();
    let items: Vec<Value> = st
        .subscriptions
        .iter()
        .filter_map(|id| st.subscription(id))
        .filter(|s| s.access != Some(SubscriptionAccess::Hidden))
        .filter(|s| crate::rbac::sees_subscription(&st, ctx.caller_oid().as_deref(), &s.subscription_id))
        .map(|s| subscription_json(&s, &st.tenant_id))
        .collect();
    drop(st);
    ctx.page(items)
}

/// `GET /subscriptions/{id}` (access was checked by the pipeline).
pub(crate) fn get(ctx: &Ctx, sub: &str) -> Reply {
    let st = ctx.inner.lock_state();
    match st.subscription(sub) {
        Some(s) => Reply::json(200, subscription_json(&s, &st.tenant_id)),
        None => Reply::arm_error(404, "SubscriptionNotFound", format!("The subscription '{sub}' could not be found.")),
    }
}

/// 403 `AuthorizationFailed` when `sub` is forbidden or hidden to the caller.
pub(crate) fn access_denied(ctx: &Ctx, route: &Route, sub: &str) -> Option<Reply> {
    let access = ctx.inner.lock_state().subscription_access(sub)?;
    if access == SubscriptionAccess::Read {
        return None;
    }
    let oid = ctx.caller_oid().unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into());
    let act = action(route, &ctx.method);
    Some(Reply::arm_error(
        403,
        "AuthorizationFailed",
        format!(
            "The client '{oid}' with object id '{oid}' does not have authorization to perform action '{act}' over scope '/subscriptions/{sub}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        ),
    ))
}

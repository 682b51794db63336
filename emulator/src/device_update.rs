//! Device Update for IoT Hub (Microsoft.DeviceUpdate 2023-07-01): accounts (list, get) and their
//! instances (list, get, PUT), each instance naming the hubs it uses by ARM resource id.

use serde_json::{Value, json};

use crate::ctx::{Ctx, Reply, method_not_allowed};
use crate::iothub::{not_found, rg_not_found};
use crate::seed::{DeviceUpdateAccount, DeviceUpdateInstance};
use crate::state::State;

impl DeviceUpdateAccount {
    pub fn matches(&self, sub: &str, rg: &str, name: &str) -> bool {
        self.subscription_id.eq_ignore_ascii_case(sub)
            && self.resource_group.eq_ignore_ascii_case(rg)
            && self.name.eq_ignore_ascii_case(name)
    }

    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.DeviceUpdate/accounts/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }
}

impl State {
    pub fn device_update_account(&self, sub: &str, rg: &str, name: &str) -> Option<&DeviceUpdateAccount> {
        self.device_update_accounts.iter().find(|a| a.matches(sub, rg, name))
    }

    /// Add (or replace) an account; its resource group and subscription come into being.
    pub fn add_device_update_account(&mut self, account: DeviceUpdateAccount) {
        self.ensure_rg(&account.subscription_id, &account.resource_group, Some(&account.location));
        let (sub, rg, name) = (account.subscription_id.clone(), account.resource_group.clone(), account.name.clone());
        self.device_update_accounts.retain(|a| !a.matches(&sub, &rg, &name));
        self.device_update_accounts.push(account);
    }

    /// Add (or replace, by name) an instance of an existing account. `Ok(true)`: created,
    /// `Ok(false)`: replaced; `Err` when the account does not exist.
    pub fn add_device_update_instance(
        &mut self,
        sub: &str,
        rg: &str,
        account: &str,
        instance: DeviceUpdateInstance,
    ) -> Result<bool, String> {
        let Some(a) = self.device_update_accounts.iter_mut().find(|a| a.matches(sub, rg, account)) else {
            return Err(format!("device update account '{account}' not found in '{sub}/{rg}'"));
        };
        match a.instances.iter_mut().find(|i| i.name.eq_ignore_ascii_case(&instance.name)) {
            Some(existing) => {
                *existing = instance;
                Ok(false)
            }
            None => {
                a.instances.push(instance);
                Ok(true)
            }
        }
    }
}

fn account_json(a: &DeviceUpdateAccount) -> Value {
    json!({
        "id": a.id(),
        "name": a.name,
        "type": "Microsoft.DeviceUpdate/accounts",
        "location": a.location,
        "properties": {
            "provisioningState": "Succeeded",
            "hostName": format!("{}.api.adu.microsoft.com", a.name.to_ascii_lowercase()),
            "publicNetworkAccess": "Enabled",
            "sku": "Standard"
        }
    })
}

fn instance_json(a: &DeviceUpdateAccount, i: &DeviceUpdateInstance) -> Value {
    let hubs: Vec<Value> = i.iot_hubs.iter().map(|h| json!({"resourceId": h})).collect();
    json!({
        "id": format!("{}/instances/{}", a.id(), i.name),
        "name": i.name,
        "type": "Microsoft.DeviceUpdate/accounts/instances",
        "location": i.location.clone().unwrap_or_else(|| a.location.clone()),
        "properties": {
            "provisioningState": "Succeeded",
            "accountName": a.name,
            "iotHubs": hubs,
            "enableDiagnostics": false
        }
    })
}

fn account_not_found(name: &str, rg: &str) -> Reply {
    not_found("Microsoft.DeviceUpdate/accounts", name, rg)
}

/// `GET .../providers/Microsoft.DeviceUpdate/accounts` of a subscription or resource group.
pub(crate) fn accounts(ctx: &Ctx, sub: &str, rg: Option<&str>) -> Reply {
    let st = ctx.inner.lock_state();
    if let Some(rg) = rg
        && st.rg(sub, rg).is_none()
    {
        return rg_not_found(rg);
    }
    let items: Vec<Value> = st
        .device_update_accounts
        .iter()
        .filter(|a| {
            a.subscription_id.eq_ignore_ascii_case(sub) && rg.is_none_or(|r| a.resource_group.eq_ignore_ascii_case(r))
        })
        .map(account_json)
        .collect();
    drop(st);
    ctx.page(items)
}

pub(crate) fn account(ctx: &Ctx, sub: &str, rg: &str, name: &str) -> Reply {
    match ctx.inner.lock_state().device_update_account(sub, rg, name) {
        Some(a) => Reply::json(200, account_json(a)),
        None => account_not_found(name, rg),
    }
}

/// `GET .../accounts/{account}/instances`.
pub(crate) fn instances(ctx: &Ctx, sub: &str, rg: &str, account: &str) -> Reply {
    let st = ctx.inner.lock_state();
    let Some(a) = st.device_update_account(sub, rg, account) else { return account_not_found(account, rg) };
    let items: Vec<Value> = a.instances.iter().map(|i| instance_json(a, i)).collect();
    drop(st);
    ctx.page(items)
}

/// `GET` and `PUT .../accounts/{account}/instances/{name}`.
pub(crate) fn instance(ctx: &Ctx, sub: &str, rg: &str, account: &str, name: &str) -> Reply {
    match ctx.method.as_str() {
        "GET" => {
            let st = ctx.inner.lock_state();
            let Some(a) = st.device_update_account(sub, rg, account) else { return account_not_found(account, rg) };
            match a.instances.iter().find(|i| i.name.eq_ignore_ascii_case(name)) {
                Some(i) => Reply::json(200, instance_json(a, i)),
                None => not_found(&format!("Microsoft.DeviceUpdate/accounts/{account}/instances"), name, rg),
            }
        }
        "PUT" => put(ctx, sub, rg, account, name),
        _ => method_not_allowed(ctx),
    }
}

fn put(ctx: &Ctx, sub: &str, rg: &str, account: &str, name: &str) -> Reply {
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(location) = body.get("location").and_then(Value::as_str).map(str::to_string) else {
        return Reply::arm_error(400, "LocationRequired", "The location property is required for this definition.");
    };
    let mut hubs = Vec::new();
    for (i, h) in body.pointer("/properties/iotHubs").and_then(Value::as_array).into_iter().flatten().enumerate() {
        match h.get("resourceId").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            Some(id) => hubs.push(id.to_string()),
            None => {
                return Reply::arm_error(
                    400,
                    "InvalidRequestContent",
                    format!("properties.iotHubs[{i}]: resourceId is required."),
                );
            }
        }
    }
    let mut st = ctx.inner.lock_state();
    let existing = st
        .device_update_account(sub, rg, account)
        .and_then(|a| a.instances.iter().find(|i| i.name.eq_ignore_ascii_case(name)))
        .map(|i| i.name.clone());
    let instance = DeviceUpdateInstance {
        name: existing.unwrap_or_else(|| name.to_string()),
        location: Some(location),
        iot_hubs: hubs,
    };
    let created = match st.add_device_update_instance(sub, rg, account, instance) {
        Ok(c) => c,
        Err(_) => return account_not_found(account, rg),
    };
    let v = st
        .device_update_account(sub, rg, account)
        .and_then(|a| a.instances.iter().find(|i| i.name.eq_ignore_ascii_case(name)).map(|i| instance_json(a, i)))
        .unwrap_or(Value::Null);
    Reply::json(if created { 201 } else { 200 }, v).changed()
}

//! Shared by the emulator's HTTP tests: a seeded emulator on 127.0.0.1:0, a token from its
//! token endpoint, and small request helpers.
#![allow(dead_code)]

use std::net::SocketAddr;

use iothub_access_emulator::{EmulatorConfig, EmulatorHandle, Seed};
use serde_json::Value;

pub const SUB: &str = "a925f2f7-5c63-4b7b-8799-25a5f97bc3b2";
pub const SUB2: &str = "11111111-2222-4333-8444-555555555555";
pub const RG: &str = "rg-iot";
pub const HUB: &str = "hub-a";
pub const HUB_B: &str = "hub-b";
pub const TENANT: &str = "3c6f1d2e-8a4b-4f5c-9d7e-1a2b3c4d5e6f";
pub const CLIENT: &str = "2b1a0f9e-8d7c-4b6a-9e5d-4c3b2a1f0e9d";
pub const SECRET: &str = "test-secret";
pub const SP: &str = "0b7e4f3a-9c1d-4e2b-8a6f-5d3c2b1a0f9e";
pub const SP2: &str = "7c2a9e1f-4b3d-4a5c-9e8f-1d2c3b4a5f6e";
pub const USER: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
pub const GROUP: &str = "e4d3c2b1-a0f9-4e8d-b7c6-a5b4c3d2e1f0";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const DATA_READER: &str = "b447c946-2db7-41ec-983d-d8bf3b1c77e3";
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const SEEDED_RA: &str = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b";
pub const MG_RA: &str = "1f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b";

pub const SEED: &str = r#"
tenantId: 3c6f1d2e-8a4b-4f5c-9d7e-1a2b3c4d5e6f
clients:
  - clientId: 2b1a0f9e-8d7c-4b6a-9e5d-4c3b2a1f0e9d
    secret: test-secret
managementGroups:
  - id: mg-root
  - id: mg-iot
    parent: mg-root
    subscriptions: [a925f2f7-5c63-4b7b-8799-25a5f97bc3b2]
principals:
  - {id: 0b7e4f3a-9c1d-4e2b-8a6f-5d3c2b1a0f9e, type: ServicePrincipal, displayName: telemetry}
  - {id: 7c2a9e1f-4b3d-4a5c-9e8f-1d2c3b4a5f6e, type: ServicePrincipal, displayName: sync}
  - {id: e4d3c2b1-a0f9-4e8d-b7c6-a5b4c3d2e1f0, type: Group, displayName: ops}
  - {id: 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d, type: User, displayName: dana, memberOf: [e4d3c2b1-a0f9-4e8d-b7c6-a5b4c3d2e1f0]}
resourceGroups:
  - {subscriptionId: a925f2f7-5c63-4b7b-8799-25a5f97bc3b2, name: rg-iot, location: westeurope}
  - {subscriptionId: 11111111-2222-4333-8444-555555555555, name: rg-other, location: westeurope}
hubs:
  - {subscriptionId: a925f2f7-5c63-4b7b-8799-25a5f97bc3b2, resourceGroup: rg-iot, name: hub-a, location: westeurope}
  - {subscriptionId: a925f2f7-5c63-4b7b-8799-25a5f97bc3b2, resourceGroup: rg-iot, name: hub-b, location: westeurope, disableLocalAuth: true}
provisioningServices:
  - subscriptionId: a925f2f7-5c63-4b7b-8799-25a5f97bc3b2
    resourceGroup: rg-iot
    name: dps-a
    location: westeurope
    links:
      - {hub: hub-a, authenticationType: KeyBased}
      - {hub: hub-b, authenticationType: UserAssigned, selectedUserAssignedIdentityResourceId: /subscriptions/a925f2f7-5c63-4b7b-8799-25a5f97bc3b2/resourcegroups/rg-iot/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi}
roleAssignments:
  - name: 6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b
    scope: /subscriptions/a925f2f7-5c63-4b7b-8799-25a5f97bc3b2
    roleDefinitionId: b24988ac-6180-42a0-ab88-20f7382dd24c
    principalId: e4d3c2b1-a0f9-4e8d-b7c6-a5b4c3d2e1f0
    principalType: Group
  - name: 1f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b
    scope: /providers/Microsoft.Management/managementGroups/mg-root
    roleDefinitionId: /providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7
    principalId: 7c2a9e1f-4b3d-4a5c-9e8f-1d2c3b4a5f6e
"#;

pub fn sub_scope() -> String {
    format!("/subscriptions/{SUB}")
}
pub fn rg_scope() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}")
}
pub fn hub_scope(h: &str) -> String {
    format!("{}/providers/Microsoft.Devices/IotHubs/{h}", rg_scope())
}
pub fn ra_path(scope: &str, name: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01")
}
pub fn rd_path(scope: &str, name: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{name}?api-version=2022-04-01")
}
pub fn hub_path(h: &str) -> String {
    format!("{}?api-version=2023-06-30", hub_scope(h))
}
pub fn role_id(guid: &str) -> String {
    format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
}
pub fn ra_body(role: &str, principal: &str, principal_type: Option<&str>) -> Value {
    let mut p = serde_json::json!({"roleDefinitionId": role_id(role), "principalId": principal});
    if let Some(t) = principal_type {
        p["principalType"] = Value::String(t.into());
    }
    serde_json::json!({ "properties": p })
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, k: &str) -> Option<String> {
        self.headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
    pub fn code(&self) -> String {
        match self.body.pointer("/error/code").or_else(|| self.body.get("code")) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        }
    }
    pub fn message(&self) -> String {
        self.body
            .pointer("/error/message")
            .or_else(|| self.body.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .into()
    }
}

pub struct T {
    pub emu: EmulatorHandle,
    pub http: reqwest::Client,
    pub token: String,
    pub base: String,
}

pub async fn start_with(seed: &str, tweak: impl FnOnce(&mut EmulatorConfig)) -> T {
    let mut config =
        EmulatorConfig { seed: Seed::from_str_auto(seed).expect("seed parses"), ..EmulatorConfig::default() };
    tweak(&mut config);
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let emu = iothub_access_emulator::start(addr, config).await.expect("emulator starts");
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap();
    let base = emu.base_url();
    let mut t = T { emu, http, token: String::new(), base };
    t.token = t.fetch_token("https://management.azure.com/.default").await;
    t
}

pub async fn start(tweak: impl FnOnce(&mut EmulatorConfig)) -> T {
    start_with(SEED, tweak).await
}

impl T {
    pub async fn token_request(&self, form: &[(&str, &str)]) -> Resp {
        let r = self.http.post(format!("{}/{TENANT}/oauth2/v2.0/token", self.base)).form(form).send().await.unwrap();
        to_resp(r).await
    }

    pub async fn fetch_token(&self, scope: &str) -> String {
        let r = self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("scope", scope),
                ("client_secret", SECRET),
            ])
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) }
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Resp {
        self.try_send(method, path, body, headers).await.expect("an HTTP answer")
    }

    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, reqwest::Error> {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.http.request(m, self.url(path)).bearer_auth(&self.token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        Ok(to_resp(rb.send().await?).await)
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None, &[]).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send("PUT", path, Some(body), &[]).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None, &[]).await
    }

    /// All items of a list, following nextLink. Returns (items, pages).
    pub async fn list_all(&self, path: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        let mut pages = 0;
        while let Some(p) = next.take() {
            let r = self.get(&p).await;
            assert_eq!(r.status, 200, "{p}: {}", r.body);
            pages += 1;
            items.extend(r.body["value"].as_array().cloned().unwrap_or_default());
            next = r.body.get("nextLink").and_then(Value::as_str).map(str::to_string);
            if let Some(n) = &next {
                assert!(n.starts_with(&self.base), "nextLink is absolute: {n}");
            }
        }
        (items, pages)
    }
}

pub async fn to_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap_or_default();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    Resp { status, headers, body }
}

/// The example's response body for `status`.
pub fn example(file: &str, status: &str) -> Value {
    let path = format!("{}/tests/contract/{file}", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["responses"][status]["body"].clone()
}

pub fn example_param(file: &str, name: &str) -> Value {
    let path = format!("{}/tests/contract/{file}", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["parameters"][name].clone()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `expected` is in `actual` with the same JSON type (recursively; arrays compare
/// their first elements when both have some).
pub fn assert_shape(actual: &Value, expected: &Value, at: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (k, ev) in e {
                let av = a.get(k).unwrap_or_else(|| panic!("{at}.{k} missing in {actual}"));
                assert_shape(av, ev, &format!("{at}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if let (Some(a0), Some(e0)) = (a.first(), e.first()) {
                assert_shape(a0, e0, &format!("{at}[0]"));
            }
        }
        (a, e) => assert_eq!(kind(a), kind(e), "{at}: type of {a} vs example {e}"),
    }
}

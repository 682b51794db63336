//! The real Azure client: Azure Resource Manager over HTTP. Role assignments and definitions go
//! through `azure_mgmt_authorization` (the legacy SDK crate, confined to this file), whose
//! transport is replaced by the project's own, so every request, the SDK's included, is paced,
//! counted, timed out and mapped to [`AzureError`] in one place. IoT Hub and DPS use a small
//! typed client on the same HTTP stack: hub GET, PUT of the whole resource with `If-Match`,
//! `Azure-AsyncOperation` polling, one re-read on 412; DPS lists follow `nextLink`.
//! The same client talks to the local emulator when `--arm-endpoint` points at it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use azure_mgmt_authorization::package_2022_04_01 as authz;
use futures::StreamExt;
use serde_json::Value;
use url::Url;
use uuid::Uuid;

use super::credential::{CloudEndpoints, LegacyCredential, TokenSource};
use super::error::{AzureError, parse_retry_after};
use super::pacing::{Pacer, PacingConfig, RequestClass, bucket_key};
use super::retry::{RetryPolicy, RetryStats};
use super::{AssignmentFilter, Azure, CreateOutcome, HubAccessChange, NewRoleAssignment, RoleDefinitionFilter};
use crate::crd::PrincipalType;
use crate::domain::ids::{RoleAssignmentId, role_definition_guid};
use crate::domain::{
    DpsLink, HubId, ObservedAssignment, ObservedDps, ObservedHub, Permission, RoleDefinition, RoleType, Scope,
};

/// Tunables of the client.
#[derive(Clone, Debug)]
pub struct ArmConfig {
    pub endpoints: CloudEndpoints,
    pub retry: RetryPolicy,
    pub pacing: PacingConfig,
    /// Per HTTP request.
    pub request_timeout: Duration,
    /// Longest wait for a long-running operation (hub update).
    pub lro_timeout: Duration,
    pub iothub_api_version: String,
    pub dps_api_version: String,
}

impl ArmConfig {
    pub fn new(endpoints: CloudEndpoints) -> ArmConfig {
        ArmConfig {
            endpoints,
            retry: RetryPolicy::default(),
            pacing: PacingConfig::default(),
            request_timeout: Duration::from_secs(30),
            lro_timeout: Duration::from_secs(600),
            iothub_api_version: "2023-06-30".into(),
            dps_api_version: "2022-12-12".into(),
        }
    }
}

/// Request counts by (operation, status code), plus retry counters. Operation names are a
/// fixed set, so metric labels stay bounded.
#[derive(Debug, Default)]
pub struct ArmStats {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub retries: RetryStats,
}

impl ArmStats {
    fn record(&self, op: &'static str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((op, status)).or_default() += 1;
    }

    /// Snapshot: ((operation, status), count). Status 0 means no HTTP answer (reset, timeout).
    pub fn requests(&self) -> BTreeMap<(&'static str, u16), u64> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Requests of operations whose name contains `needle` (e.g. `_List`, `_Create`).
    pub fn count(&self, needle: &str) -> u64 {
        self.requests().iter().filter(|((op, _), _)| op.contains(needle)).map(|(_, n)| n).sum()
    }
}

struct RawResponse {
    status: u16,
    etag: Option<String>,
    async_operation: Option<String>,
    retry_after: Option<Duration>,
    body: bytes::Bytes,
}

/// The HTTP stack every request goes through.
#[derive(Debug)]
struct HttpCore {
    http: reqwest::Client,
    pacer: Pacer,
    stats: Arc<ArmStats>,
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

impl HttpCore {
    /// Send one request. `headers` must carry the bearer token. Non-2xx answers become errors.
    async fn execute(
        &self,
        op: &'static str,
        method: reqwest::Method,
        url: Url,
        headers: Vec<(String, String)>,
        body: Option<bytes::Bytes>,
    ) -> Result<RawResponse, AzureError> {
        let key = bucket_key(url.path());
        let class = RequestClass::of_method(method.as_str());
        self.pacer.acquire(&key, class).await;
        let mut req = self.http.request(method, url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let rsp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.stats.record(op, 0);
                return Err(AzureError::Transient { message: format!("{op}: {}", describe_reqwest(&e)) });
            }
        };
        let status = rsp.status().as_u16();
        self.stats.record(op, status);
        let h = rsp.headers().clone();
        if let Some(rem) = header(&h, class.remaining_header()).and_then(|v| v.parse::<f64>().ok()) {
            self.pacer.observe_remaining(&key, class, rem);
        }
        let retry_after = header(&h, "retry-after").and_then(|v| parse_retry_after(&v));
        let body = rsp.bytes().await.map_err(|e| AzureError::Transient {
            message: format!("{op}: reading the response: {}", describe_reqwest(&e)),
        })?;
        if !(200..300).contains(&status) {
            let err = AzureError::from_response(status, retry_after, &body);
            if let AzureError::Throttled { retry_after, .. } = &err {
                self.pacer.throttled(&key, class, *retry_after);
            }
            return Err(err);
        }
        Ok(RawResponse {
            status,
            etag: header(&h, "etag"),
            async_operation: header(&h, "azure-asyncoperation"),
            retry_after,
            body,
        })
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    // Walk to the root cause without printing URLs' query strings twice.
    let mut root: &dyn std::error::Error = e;
    while let Some(s) = root.source() {
        root = s;
    }
    format!("{kind} ({root})")
}

/// Name the authorization SDK's requests for metrics, from method and path.
fn authz_operation(method: &str, path: &str) -> &'static str {
    let p = path.to_ascii_lowercase();
    let collection = p.ends_with("/roleassignments") || p.ends_with("/roledefinitions");
    match (p.contains("/roleassignments"), method, collection) {
        (true, "GET", true) => "RoleAssignments_ListForScope",
        (true, "GET", false) => "RoleAssignments_Get",
        (true, "PUT", _) => "RoleAssignments_Create",
        (true, "DELETE", _) => "RoleAssignments_Delete",
        (false, "GET", true) => "RoleDefinitions_List",
        (false, "GET", false) => "RoleDefinitions_Get",
        (false, "PUT", _) => "RoleDefinitions_CreateOrUpdate",
        (false, "DELETE", _) => "RoleDefinitions_Delete",
        _ => "Authorization_Other",
    }
}

/// Replaces the SDK's transport: same pacing, timeouts, metrics and error mapping as the rest.
#[derive(Debug)]
struct SdkTransport(Arc<HttpCore>);

#[async_trait]
impl azure_core_legacy::Policy for SdkTransport {
    async fn send(
        &self,
        _ctx: &azure_core_legacy::Context,
        request: &mut azure_core_legacy::Request,
        _next: &[Arc<dyn azure_core_legacy::Policy>],
    ) -> azure_core_legacy::PolicyResult {
        use azure_core_legacy::error::{Error, ErrorKind};
        let method_text = request.method().to_string();
        let method =
            reqwest::Method::from_bytes(method_text.as_bytes()).map_err(|e| Error::new(ErrorKind::Other, e))?;
        let url = Url::parse(request.url().as_str()).map_err(|e| Error::new(ErrorKind::Other, e))?;
        let headers: Vec<(String, String)> =
            request.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string())).collect();
        let body = match request.body() {
            azure_core_legacy::Body::Bytes(b) if !b.is_empty() => Some(bytes::Bytes::copy_from_slice(b)),
            _ => None,
        };
        let op = authz_operation(&method_text, url.path());
        match self.0.execute(op, method, url, headers, body).await {
            Ok(raw) => {
                let status = azure_core_legacy::StatusCode::try_from(raw.status)
                    .map_err(|e| Error::with_message(ErrorKind::Other, || format!("status {}: {e}", raw.status)))?;
                let mut h = azure_core_legacy::headers::Headers::new();
                if let Some(etag) = raw.etag {
                    h.insert("etag", etag);
                }
                let body = raw.body;
                let stream = futures::stream::once(async move { Ok::<_, azure_core_legacy::Error>(body) });
                Ok(azure_core_legacy::Response::new(status, h, Box::pin(stream)))
            }
            Err(e) => Err(Error::new(ErrorKind::Other, e)),
        }
    }
}

/// Recover the typed error from the SDK's error chain.
fn from_sdk(e: azure_core_legacy::Error) -> AzureError {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cur {
        if let Some(a) = err.downcast_ref::<AzureError>() {
            return a.clone();
        }
        cur = err.source();
    }
    match e.kind() {
        azure_core_legacy::error::ErrorKind::Credential => AzureError::Unauthenticated { message: e.to_string() },
        azure_core_legacy::error::ErrorKind::DataConversion => {
            AzureError::Invalid { code: "UnexpectedResponse".into(), message: e.to_string() }
        }
        _ => AzureError::Transient { message: e.to_string() },
    }
}

/// The Azure client.
pub struct ArmClient {
    core: Arc<HttpCore>,
    base: Url,
    scope: String,
    tokens: Arc<dyn TokenSource>,
    authz: authz::Client,
    config: ArmConfig,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient").field("endpoint", &self.base.as_str()).finish_non_exhaustive()
    }
}

/// The project's HTTP client: rustls, timeouts, no proxy surprises.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, AzureError> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("iothub-access-operator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AzureError::Invalid { code: "HttpClient".into(), message: e.to_string() })
}

impl ArmClient {
    /// Build a client for `config.endpoints` with `tokens`.
    pub fn new(
        config: ArmConfig,
        tokens: Arc<dyn TokenSource>,
        http: reqwest::Client,
    ) -> Result<ArmClient, AzureError> {
        let base = Url::parse(&format!("{}/", config.endpoints.arm_endpoint)).map_err(|e| AzureError::Invalid {
            code: "InvalidEndpoint".into(),
            message: format!("--arm-endpoint '{}': {e}", config.endpoints.arm_endpoint),
        })?;
        let core = Arc::new(HttpCore { http, pacer: Pacer::new(config.pacing), stats: Arc::new(ArmStats::default()) });
        let legacy_endpoint = azure_core_legacy::Url::parse(base.as_str())
            .map_err(|e| AzureError::Invalid { code: "InvalidEndpoint".into(), message: e.to_string() })?;
        let authz = authz::Client::builder(Arc::new(LegacyCredential(tokens.clone())))
            .endpoint(legacy_endpoint)
            .scopes(&[config.endpoints.arm_scope.as_str()])
            .retry(azure_core_legacy::RetryOptions::none())
            .transport(azure_core_legacy::TransportOptions::new_custom_policy(Arc::new(SdkTransport(core.clone()))))
            .build()
            .map_err(from_sdk)?;
        Ok(ArmClient { core, base, scope: config.endpoints.arm_scope.clone(), tokens, authz, config })
    }

    /// Request counters.
    pub fn stats(&self) -> Arc<ArmStats> {
        self.core.stats.clone()
    }

    async fn retry<T, F, Fut>(&self, op: F) -> Result<T, AzureError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AzureError>>,
    {
        self.config.retry.run(&self.core.stats.retries, op).await
    }

    fn url(&self, path: &str, api_version: &str) -> Result<Url, AzureError> {
        let mut u = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| AzureError::Invalid { code: "InvalidPath".into(), message: format!("{path}: {e}") })?;
        u.query_pairs_mut().append_pair("api-version", api_version);
        Ok(u)
    }

    /// A direct request with a bearer token (IoT Hub, DPS, async operations).
    async fn call(
        &self,
        op: &'static str,
        method: reqwest::Method,
        url: Url,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<RawResponse, AzureError> {
        if url.host_str() != self.base.host_str() || url.port_or_known_default() != self.base.port_or_known_default() {
            return Err(AzureError::Invalid {
                code: "UnexpectedHost".into(),
                message: format!(
                    "{op}: Azure pointed at {} outside the ARM endpoint; not sending credentials there",
                    url.origin().ascii_serialization()
                ),
            });
        }
        let token = self.tokens.token(&self.scope).await?;
        let mut headers = vec![("authorization".to_string(), format!("Bearer {token}"))];
        if let Some(etag) = if_match {
            headers.push(("if-match".to_string(), etag.to_string()));
        }
        let body = match body {
            Some(v) => Some(bytes::Bytes::from(
                serde_json::to_vec(v)
                    .map_err(|e| AzureError::Invalid { code: "Serialize".into(), message: e.to_string() })?,
            )),
            None => None,
        };
        self.core.execute(op, method, url, headers, body).await
    }

    fn hub_path(hub: &HubId) -> String {
        hub.arm_id()
    }

    async fn get_hub_raw(&self, hub: &HubId) -> Result<Option<(Value, Option<String>)>, AzureError> {
        let url = self.url(&Self::hub_path(hub), &self.config.iothub_api_version)?;
        let res = self.retry(|| self.call("IotHubResource_Get", reqwest::Method::GET, url.clone(), None, None)).await;
        match res {
            Ok(raw) => {
                let v: Value = serde_json::from_slice(&raw.body).map_err(|e| AzureError::Invalid {
                    code: "UnexpectedResponse".into(),
                    message: format!("IoT hub {}: {e}", hub.name),
                })?;
                let etag = v.get("etag").and_then(Value::as_str).map(str::to_string).or(raw.etag);
                Ok(Some((v, etag)))
            }
            Err(AzureError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Poll an `Azure-AsyncOperation` URL until the operation ends.
    async fn wait_for_operation(&self, op_url: &str, first_wait: Option<Duration>) -> Result<(), AzureError> {
        let url = Url::parse(op_url)
            .map_err(|e| AzureError::Invalid { code: "InvalidAsyncOperation".into(), message: e.to_string() })?;
        let deadline = tokio::time::Instant::now() + self.config.lro_timeout;
        let mut wait = first_wait.unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(30));
        loop {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let raw =
                self.retry(|| self.call("AsyncOperation_Get", reqwest::Method::GET, url.clone(), None, None)).await?;
            let v: Value = serde_json::from_slice(&raw.body).unwrap_or_default();
            match v.get("status").and_then(Value::as_str).unwrap_or("Running") {
                "Succeeded" => return Ok(()),
                s @ ("Failed" | "Canceled") => {
                    let detail = v.get("error").and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("");
                    return Err(AzureError::Transient { message: format!("the hub update ended {s} {detail}") });
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AzureError::Transient {
                    message: format!("the hub update did not finish within {:?}", self.config.lro_timeout),
                });
            }
            wait = raw
                .retry_after
                .unwrap_or(Duration::from_secs(2))
                .clamp(Duration::from_millis(200), Duration::from_secs(30));
        }
    }
}

fn observed_hub(hub: &HubId, v: &Value, etag: Option<String>) -> ObservedHub {
    let p = v.get("properties");
    let flag = |k: &str| p.and_then(|p| p.get(k)).and_then(Value::as_bool).unwrap_or(false);
    ObservedHub {
        id: hub.clone(),
        host_name: p.and_then(|p| p.get("hostName")).and_then(Value::as_str).map(str::to_string),
        location: v.get("location").and_then(Value::as_str).unwrap_or_default().to_string(),
        disable_local_auth: flag("disableLocalAuth"),
        disable_device_sas: flag("disableDeviceSAS"),
        disable_module_sas: flag("disableModuleSAS"),
        etag,
    }
}

fn dps_link(v: &Value) -> DpsLink {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    DpsLink {
        name: s("name"),
        host_name: s("hostName"),
        connection_string_host: s("connectionString").and_then(|c| DpsLink::host_from_connection_string(&c)),
        authentication_type: s("authenticationType"),
    }
}

fn observed_assignment(ra: authz::models::RoleAssignment) -> Option<ObservedAssignment> {
    let id = RoleAssignmentId::parse(ra.id.as_deref()?).ok()?;
    let p = ra.properties?;
    Some(ObservedAssignment {
        id,
        role_definition: role_definition_guid(&p.role_definition_id).ok()?,
        principal_id: p.principal_id.to_ascii_lowercase(),
        principal_type: p
            .principal_type
            .and_then(|t| serde_json::to_value(t).ok())
            .and_then(|v| v.as_str().map(str::to_string)),
        description: p.description,
    })
}

fn domain_definition(rd: authz::models::RoleDefinition) -> Option<RoleDefinition> {
    let guid = rd
        .name
        .as_deref()
        .and_then(|n| Uuid::parse_str(n).ok())
        .or_else(|| role_definition_guid(rd.id.as_deref()?).ok())?;
    let p = rd.properties?;
    Some(RoleDefinition {
        guid,
        role_name: p.role_name.unwrap_or_default(),
        description: p.description.unwrap_or_default(),
        role_type: if p.type_.as_deref() == Some("BuiltInRole") { RoleType::BuiltInRole } else { RoleType::CustomRole },
        permissions: p
            .permissions
            .into_iter()
            .map(|x| Permission {
                actions: x.actions,
                not_actions: x.not_actions,
                data_actions: x.data_actions,
                not_data_actions: x.not_data_actions,
            })
            .collect(),
        assignable_scopes: p.assignable_scopes,
    })
}

fn principal_type(t: PrincipalType) -> authz::models::role_assignment_properties::PrincipalType {
    use authz::models::role_assignment_properties::PrincipalType as P;
    match t {
        PrincipalType::User => P::User,
        PrincipalType::Group => P::Group,
        PrincipalType::ServicePrincipal => P::ServicePrincipal,
    }
}

#[async_trait]
impl Azure for ArmClient {
    async fn list_role_assignments(
        &self,
        scope: &Scope,
        filter: &AssignmentFilter,
    ) -> Result<Vec<ObservedAssignment>, AzureError> {
        let filter = match filter {
            AssignmentFilter::All => None,
            AssignmentFilter::AtScope => Some("atScope()".to_string()),
            AssignmentFilter::PrincipalId(id) => Some(format!("principalId eq '{id}'")),
        };
        self.retry(|| async {
            let mut b = self.authz.role_assignments_client().list_for_scope(scope.without_leading_slash());
            if let Some(f) = &filter {
                b = b.filter(f.clone());
            }
            let mut pages = b.into_stream();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                out.extend(page.map_err(from_sdk)?.value.into_iter().filter_map(observed_assignment));
            }
            Ok(out)
        })
        .await
    }

    async fn create_role_assignment(&self, new: &NewRoleAssignment) -> Result<CreateOutcome, AzureError> {
        let mut props =
            authz::models::RoleAssignmentProperties::new(new.role_definition_id.clone(), new.principal_id.clone());
        props.principal_type = Some(principal_type(new.principal_type));
        props.description = new.description.clone();
        let params = authz::models::RoleAssignmentCreateParameters::new(props);
        let scope = new.id.scope.without_leading_slash();
        let res = self
            .retry(|| async {
                self.authz
                    .role_assignments_client()
                    .create(scope.clone(), new.id.name.to_string(), params.clone())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(from_sdk)
            })
            .await;
        match res {
            Ok(()) => Ok(CreateOutcome::Created),
            Err(AzureError::Conflict { code, existing_name: Some(name), .. }) if code == "RoleAssignmentExists" => {
                let name = Uuid::parse_str(&name).map_err(|e| AzureError::Invalid { code, message: e.to_string() })?;
                Ok(CreateOutcome::AlreadyExists { existing: RoleAssignmentId { scope: new.id.scope.clone(), name } })
            }
            Err(AzureError::Conflict { code, .. }) if code == "RoleAssignmentExists" => {
                // Older answers carry no id: find the equal assignment by listing.
                let role = role_definition_guid(&new.role_definition_id).ok();
                let found = self
                    .list_role_assignments(&new.id.scope, &AssignmentFilter::PrincipalId(new.principal_id.clone()))
                    .await?
                    .into_iter()
                    .find(|a| Some(a.role_definition) == role && a.id.scope == new.id.scope);
                match found {
                    Some(a) => Ok(CreateOutcome::AlreadyExists { existing: a.id }),
                    None => Err(AzureError::Conflict {
                        code,
                        message: "RoleAssignmentExists but no equal assignment is listed".into(),
                        existing_name: None,
                    }),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn delete_role_assignment(&self, id: &RoleAssignmentId) -> Result<bool, AzureError> {
        let scope = id.scope.without_leading_slash();
        self.retry(|| async {
            // `.send()`: the SDK's typed delete fails on ARM's normal bodiless 204.
            let rsp = self
                .authz
                .role_assignments_client()
                .delete(scope.clone(), id.name.to_string())
                .send()
                .await
                .map_err(from_sdk)?;
            Ok(rsp.as_raw_response().status() == azure_core_legacy::StatusCode::Ok)
        })
        .await
    }

    async fn get_role_definition(&self, scope: &Scope, guid: Uuid) -> Result<Option<RoleDefinition>, AzureError> {
        let res = self
            .retry(|| async {
                let rsp = self
                    .authz
                    .role_definitions_client()
                    .get(scope.without_leading_slash(), guid.to_string())
                    .send()
                    .await
                    .map_err(from_sdk)?;
                rsp.into_body().await.map_err(from_sdk)
            })
            .await;
        match res {
            Ok(rd) => Ok(domain_definition(rd)),
            Err(AzureError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_role_definitions(
        &self,
        scope: &Scope,
        filter: &RoleDefinitionFilter,
    ) -> Result<Vec<RoleDefinition>, AzureError> {
        let filter = match filter {
            RoleDefinitionFilter::CustomRoles => "type eq 'CustomRole'".to_string(),
            RoleDefinitionFilter::RoleName(n) => format!("roleName eq '{}'", n.replace('\'', "''")),
        };
        self.retry(|| async {
            let mut pages = self
                .authz
                .role_definitions_client()
                .list(scope.without_leading_slash())
                .filter(filter.clone())
                .into_stream();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                out.extend(page.map_err(from_sdk)?.value.into_iter().filter_map(domain_definition));
            }
            Ok(out)
        })
        .await
    }

    async fn put_role_definition(&self, scope: &Scope, d: &RoleDefinition) -> Result<(), AzureError> {
        let mut props = authz::models::RoleDefinitionProperties::new();
        props.role_name = Some(d.role_name.clone());
        props.description = Some(d.description.clone());
        props.type_ = Some("CustomRole".into());
        props.assignable_scopes = d.assignable_scopes.clone();
        props.permissions = d
            .permissions
            .iter()
            .map(|p| {
                let mut m = authz::models::Permission::new();
                m.actions = p.actions.clone();
                m.not_actions = p.not_actions.clone();
                m.data_actions = p.data_actions.clone();
                m.not_data_actions = p.not_data_actions.clone();
                m
            })
            .collect();
        let mut body = authz::models::RoleDefinition::new();
        body.name = Some(d.guid.to_string());
        body.properties = Some(props);
        self.retry(|| async {
            self.authz
                .role_definitions_client()
                .create_or_update(scope.without_leading_slash(), d.guid.to_string(), body.clone())
                .send()
                .await
                .map(|_| ())
                .map_err(from_sdk)
        })
        .await
    }

    async fn delete_role_definition(&self, scope: &Scope, guid: Uuid) -> Result<bool, AzureError> {
        self.retry(|| async {
            let rsp = self
                .authz
                .role_definitions_client()
                .delete(scope.without_leading_slash(), guid.to_string())
                .send()
                .await
                .map_err(from_sdk)?;
            Ok(rsp.as_raw_response().status() == azure_core_legacy::StatusCode::Ok)
        })
        .await
    }

    async fn get_hub(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError> {
        Ok(self.get_hub_raw(hub).await?.map(|(v, etag)| observed_hub(hub, &v, etag)))
    }

    async fn set_hub_access(&self, hub: &HubId, change: &HubAccessChange) -> Result<ObservedHub, AzureError> {
        // GET, change, PUT the whole resource back with If-Match; on 412 someone else wrote in
        // between (or our own earlier PUT landed without an answer): read again and redo.
        for _ in 0..3 {
            let Some((mut v, etag)) = self.get_hub_raw(hub).await? else {
                return Err(AzureError::NotFound {
                    code: "ResourceNotFound".into(),
                    message: format!("IoT hub {} not found", hub.name),
                });
            };
            let current = observed_hub(hub, &v, etag.clone());
            let wanted = [
                ("disableLocalAuth", change.disable_local_auth, current.disable_local_auth),
                ("disableDeviceSAS", change.disable_device_sas, current.disable_device_sas),
                ("disableModuleSAS", change.disable_module_sas, current.disable_module_sas),
            ];
            if wanted.iter().all(|(_, want, have)| want.is_none_or(|w| w == *have)) {
                return Ok(current);
            }
            let Some(props) = v.get_mut("properties").and_then(Value::as_object_mut) else {
                return Err(AzureError::Invalid {
                    code: "UnexpectedResponse".into(),
                    message: "hub without properties".into(),
                });
            };
            for (k, want, _) in wanted {
                if let Some(w) = want {
                    props.insert(k.to_string(), Value::Bool(w));
                }
            }
            let url = self.url(&Self::hub_path(hub), &self.config.iothub_api_version)?;
            let put = self
                .retry(|| {
                    self.call(
                        "IotHubResource_CreateOrUpdate",
                        reqwest::Method::PUT,
                        url.clone(),
                        Some(&v),
                        etag.as_deref(),
                    )
                })
                .await;
            match put {
                Ok(raw) => {
                    if let Some(op) = raw.async_operation {
                        self.wait_for_operation(&op, raw.retry_after).await?;
                    }
                    let _ = raw.status;
                    return self.get_hub(hub).await?.ok_or_else(|| AzureError::NotFound {
                        code: "ResourceNotFound".into(),
                        message: format!("IoT hub {} vanished", hub.name),
                    });
                }
                Err(AzureError::PreconditionFailed { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(AzureError::Transient {
            message: format!("IoT hub {} kept changing underneath (412 three times)", hub.name),
        })
    }

    async fn list_dps(&self, subscription_id: &str) -> Result<Vec<ObservedDps>, AzureError> {
        let first = self.url(
            &format!("/subscriptions/{subscription_id}/providers/Microsoft.Devices/provisioningServices"),
            &self.config.dps_api_version,
        )?;
        self.retry(|| async {
            let mut out = Vec::new();
            let mut next = Some(first.clone());
            while let Some(url) = next.take() {
                let raw = self.call("IotDpsResource_ListBySubscription", reqwest::Method::GET, url, None, None).await?;
                let v: Value = serde_json::from_slice(&raw.body)
                    .map_err(|e| AzureError::Invalid { code: "UnexpectedResponse".into(), message: e.to_string() })?;
                for d in v.get("value").and_then(Value::as_array).into_iter().flatten() {
                    let links = d
                        .get("properties")
                        .and_then(|p| p.get("iotHubs"))
                        .and_then(Value::as_array)
                        .map(|l| l.iter().map(dps_link).collect())
                        .unwrap_or_default();
                    out.push(ObservedDps {
                        id: d.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                        name: d.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                        links,
                    });
                }
                next = v
                    .get("nextLink")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .and_then(|s| Url::parse(s).ok());
            }
            Ok(out)
        })
        .await
    }
}

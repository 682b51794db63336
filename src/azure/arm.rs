//! The real Azure client, [`ArmClient`]: Azure Resource Manager over HTTP. This file owns what
//! every request of it builds on: its configuration and default api-versions, its construction
//! (the project's HTTP stack, [`super::http`], with the legacy authorization SDK's transport
//! replaced by it, see [`super::sdk`]), and the shared helpers (`retry`, `url`, `call`), so
//! every request, the SDK's included, is paced, counted, timed out and mapped to [`AzureError`]
//! in one place. The requests themselves are elsewhere: role assignments and definitions in
//! [`super::roles`] (which also implements the [`super::Azure`] trait for the client), IoT Hub,
//! DPS, Device Update, subscriptions and provider registrations in [`super::devices`]. The same
//! client talks to the local emulator when `--arm-endpoint` points at it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_mgmt_authorization::package_2022_04_01 as authz;
use url::Url;

use super::credential::{CloudEndpoints, LegacyCredential, TokenSource};
use super::error::AzureError;
pub use super::http::{ArmStats, http_client};
use super::http::{HttpCore, RawResponse, same_path};
use super::pacing::{Pacer, PacingConfig};
use super::retry::RetryPolicy;
use super::sdk::{SdkTransport, from_sdk};
use crate::memo::Memo;

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
    /// IoT Hub api-version; `None`: the newest the provider lists that reports device and
    /// service host names, else [`DEFAULT_IOTHUB_API_VERSION`].
    pub iothub_api_version: Option<String>,
    /// DPS api-version; `None`: the newest stable one the provider lists that reports link
    /// types, else [`DEFAULT_DPS_API_VERSION`] (where every link counts as key-based).
    pub dps_api_version: Option<String>,
    /// How long a hub GET answering 404 right after this client changed the hub is taken as
    /// Azure's short not-found window rather than a deleted hub.
    pub hub_not_found_grace: Duration,
    /// How long a subscription's provider registration (its api-versions) is reused.
    pub provider_cache_ttl: Duration,
}

/// IoT Hub api-version when the provider offers none newer that the client knows.
pub const DEFAULT_IOTHUB_API_VERSION: &str = "2023-06-30";
/// DPS api-version when the provider offers none that reports link types.
pub const DEFAULT_DPS_API_VERSION: &str = "2022-12-12";
/// Device Update api-version (the stable one).
pub const DEVICE_UPDATE_API_VERSION: &str = "2023-07-01";
/// Subscriptions - List.
pub const SUBSCRIPTIONS_API_VERSION: &str = "2022-12-01";
/// Providers - Get.
pub const PROVIDERS_API_VERSION: &str = "2021-04-01";

impl ArmConfig {
    pub fn new(endpoints: CloudEndpoints) -> ArmConfig {
        ArmConfig {
            endpoints,
            retry: RetryPolicy::default(),
            pacing: PacingConfig::default(),
            request_timeout: Duration::from_secs(30),
            lro_timeout: Duration::from_secs(600),
            iothub_api_version: None,
            dps_api_version: None,
            hub_not_found_grace: Duration::from_secs(60),
            provider_cache_ttl: Duration::from_secs(3600),
        }
    }
}

/// A provider registration as read: `registered` is `Some(false)` only when the provider is not
/// registered (no resource of it can exist), `None` when unknown; and each resource type's
/// api-versions (lower-case type). Unreadable: the defaults apply and the lists are still tried.
#[derive(Clone, Debug, Default)]
pub(super) struct ApiVersions {
    pub registered: Option<bool>,
    pub by_type: BTreeMap<String, Vec<String>>,
}

/// The Azure client.
pub struct ArmClient {
    pub(super) core: Arc<HttpCore>,
    pub(super) base: Url,
    scope: String,
    tokens: Arc<dyn TokenSource>,
    pub(super) authz: authz::Client,
    pub(super) config: ArmConfig,
    /// Provider registrations read: (subscription, namespace) -> when, resource type -> api-versions.
    pub(super) providers: Memo<(String, String), ApiVersions>,
    /// Hubs this client changed, and when (the not-found grace).
    pub(super) hub_writes: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient").field("endpoint", &self.base.as_str()).finish_non_exhaustive()
    }
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
        let core = Arc::new(HttpCore {
            http,
            base: base.clone(),
            pacer: Pacer::new(config.pacing),
            stats: Arc::new(ArmStats::default()),
        });
        let legacy_endpoint = azure_core_legacy::Url::parse(base.as_str())
            .map_err(|e| AzureError::Invalid { code: "InvalidEndpoint".into(), message: e.to_string() })?;
        let authz = authz::Client::builder(Arc::new(LegacyCredential(tokens.clone())))
            .endpoint(legacy_endpoint)
            .scopes(&[config.endpoints.arm_scope.as_str()])
            .retry(azure_core_legacy::RetryOptions::none())
            .transport(azure_core_legacy::TransportOptions::new_custom_policy(Arc::new(SdkTransport {
                core: core.clone(),
            })))
            .build()
            .map_err(from_sdk)?;
        let providers = Memo::with_max_age(config.provider_cache_ttl);
        Ok(ArmClient {
            core,
            base,
            scope: config.endpoints.arm_scope.clone(),
            tokens,
            authz,
            config,
            providers,
            hub_writes: Default::default(),
        })
    }

    /// Request counters.
    /// The object id of the identity this client acts as (from its token's `oid` claim).
    pub async fn caller_object_id(&self) -> Result<String, AzureError> {
        let token = self.tokens.token(&self.scope).await?;
        super::credential::object_id_of(&token).ok_or_else(|| AzureError::Unauthenticated {
            message: "the access token names no object id (oid claim)".into(),
        })
    }

    pub fn stats(&self) -> Arc<ArmStats> {
        self.core.stats.clone()
    }

    pub(super) async fn retry<T, F, Fut>(&self, op: F) -> Result<T, AzureError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AzureError>>,
    {
        self.config.retry.run(&self.core.stats.retries, op).await
    }

    /// The URL of `path` (an ARM id and what follows it). Refused when the URL's path is not
    /// exactly `path`: a URL parser resolves dot segments and re-encodes characters, so anything
    /// else would send the request somewhere the id that was checked does not name.
    pub(super) fn url(&self, path: &str, api_version: &str) -> Result<Url, AzureError> {
        let relative = path.trim_start_matches('/');
        let mut u = self
            .base
            .join(relative)
            .map_err(|e| AzureError::Invalid { code: "InvalidPath".into(), message: format!("{path}: {e}") })?;
        same_path(u.path(), &format!("{}{relative}", self.base.path()))?;
        u.query_pairs_mut().append_pair("api-version", api_version);
        Ok(u)
    }

    /// A direct request with a bearer token (IoT Hub, DPS, async operations).
    pub(super) async fn call(
        &self,
        op: &'static str,
        method: reqwest::Method,
        url: Url,
        body: Option<Vec<u8>>,
        if_match: Option<&str>,
    ) -> Result<RawResponse, AzureError> {
        let token = self.tokens.token(&self.scope).await?;
        let mut headers = vec![("authorization".to_string(), format!("Bearer {token}"))];
        if let Some(etag) = if_match {
            headers.push(("if-match".to_string(), etag.to_string()));
        }
        let body = body.map(bytes::Bytes::from);
        self.core.execute(op, method, url, headers, body).await
    }
}

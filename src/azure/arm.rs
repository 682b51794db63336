//! The real Azure client: Azure Resource Manager over HTTP. Role assignments and definitions go
//! through `azure_mgmt_authorization` (the legacy SDK crate, confined to this file), whose
//! transport is replaced by the project's own ([`super::http`]), so every request, the SDK's
//! included, is paced, counted, timed out and mapped to [`AzureError`] in one place. IoT Hub, DPS,
//! Device Update, subscriptions and provider registrations are read by the typed client in
//! [`super::devices`] on the same stack. The same client talks to the local emulator when
//! `--arm-endpoint` points at it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_mgmt_authorization::package_2022_04_01 as authz;
use futures::StreamExt;
use url::Url;
use uuid::Uuid;

use super::credential::{CloudEndpoints, LegacyCredential, TokenSource};
use super::error::AzureError;
pub use super::http::{ArmStats, http_client};
use super::http::{HttpCore, RawResponse};
use super::pacing::{Pacer, PacingConfig};
use super::retry::RetryPolicy;
use super::sdk::{SdkTransport, domain_definition, from_sdk, observed_assignment, principal_type};
use super::{
    AssignmentFilter, Azure, CreateOutcome, HubAccessChange, HubWrite, NewRoleAssignment, RoleDefinitionFilter,
};
use crate::domain::ids::{RoleAssignmentId, RoleDefinitionId};
use crate::domain::{HubId, ObservedAssignment, ObservedDeviceUpdate, ObservedDps, ObservedHub, RoleDefinition, Scope};
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

/// The Azure client.
pub struct ArmClient {
    pub(super) core: Arc<HttpCore>,
    pub(super) base: Url,
    scope: String,
    tokens: Arc<dyn TokenSource>,
    authz: authz::Client,
    pub(super) config: ArmConfig,
    /// Provider registrations read: (subscription, namespace) -> when, resource type -> api-versions.
    pub(super) providers: Memo<(String, String), super::devices::ApiVersions>,
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

    pub(super) fn url(&self, path: &str, api_version: &str) -> Result<Url, AzureError> {
        let mut u = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| AzureError::Invalid { code: "InvalidPath".into(), message: format!("{path}: {e}") })?;
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
            authz::models::RoleAssignmentProperties::new(new.role_definition_id.to_string(), new.principal_id.clone());
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
                let role = Some(new.role_definition_id.guid);
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

    async fn get_role_definition(&self, id: &RoleDefinitionId) -> Result<Option<RoleDefinition>, AzureError> {
        let res = self
            .retry(|| async {
                let rsp = self
                    .authz
                    .role_definitions_client()
                    .get(id.scope.without_leading_slash(), id.guid.to_string())
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

    async fn delete_role_definition(&self, id: &RoleDefinitionId) -> Result<bool, AzureError> {
        self.retry(|| async {
            let rsp = self
                .authz
                .role_definitions_client()
                .delete(id.scope.without_leading_slash(), id.guid.to_string())
                .send()
                .await
                .map_err(from_sdk)?;
            Ok(rsp.as_raw_response().status() == azure_core_legacy::StatusCode::Ok)
        })
        .await
    }

    async fn get_hub(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError> {
        self.read_hub(hub).await
    }

    async fn set_hub_access(&self, hub: &HubId, change: &HubAccessChange) -> Result<HubWrite, AzureError> {
        self.write_hub_access(hub, change).await
    }

    async fn list_subscriptions(&self) -> Result<Vec<String>, AzureError> {
        self.subscriptions().await
    }

    async fn list_dps(&self, subscription_id: &str) -> Result<Vec<ObservedDps>, AzureError> {
        self.provisioning_services(subscription_id).await
    }

    async fn list_device_update_instances(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<ObservedDeviceUpdate>, AzureError> {
        self.device_update_instances(subscription_id).await
    }
}

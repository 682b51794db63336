//! The typed client for what the SAS interlock reads and the one hub write: IoT hubs (GET, PUT of
//! the whole resource minus its read-only properties, always with `If-Match`,
//! `Azure-AsyncOperation` polling, one re-read per 412, a short not-found grace after a change),
//! DPS instances and Device Update instances of a subscription (every page, strictly parsed),
//! the subscriptions the identity can list, and the api-versions a subscription's provider
//! registration offers (picked at run time, flags override). Methods on [`ArmClient`], built on
//! its shared helpers in `arm.rs`; same HTTP stack as the rest.

use std::time::{Duration, Instant};

use url::Url;

use super::arm::{
    ApiVersions, ArmClient, DEFAULT_DPS_API_VERSION, DEFAULT_IOTHUB_API_VERSION, DEVICE_UPDATE_API_VERSION,
    PROVIDERS_API_VERSION, SUBSCRIPTIONS_API_VERSION,
};
use super::http::{operation_url, same_origin, same_path};
use super::wire::{self, DeviceUpdateAccount, DeviceUpdateInstance, DpsBody, HubBody, Page, Provider, Subscription};
use super::{AzureError, HubAccessChange, HubWrite};
use crate::domain::Access;
use crate::domain::{HubId, ObservedDeviceUpdate, ObservedDps, ObservedHub};

/// Most pages followed in one list (a loop guard; ARM pages hold 100 or more items).
const MAX_PAGES: usize = 1000;

impl ArmClient {
    /// The provider registration of `namespace` in `sub`, read once per `provider_cache_ttl`
    /// (single-flight, `memo.rs`). "Not registered" is never kept (creating a resource registers
    /// the provider); an unreadable registration is not kept either (read again next time) and
    /// the defaults apply meanwhile.
    async fn provider(&self, sub: &str, namespace: &str) -> ApiVersions {
        let key = (sub.to_ascii_lowercase(), namespace.to_ascii_lowercase());
        match self.providers.get(key.clone(), || self.read_provider(sub, namespace)).await {
            Ok(v) => {
                if v.registered == Some(false) {
                    self.providers.forget(|k| *k == key);
                }
                v
            }
            Err(e) => {
                tracing::warn!(subscription = %sub, namespace, error = %e, "reading the provider registration; using the default api-versions");
                ApiVersions::default()
            }
        }
    }

    async fn read_provider(&self, sub: &str, namespace: &str) -> Result<ApiVersions, AzureError> {
        let url = self.url(&format!("/subscriptions/{sub}/providers/{namespace}"), PROVIDERS_API_VERSION)?;
        let raw = self.retry(|| self.call("Providers_Get", reqwest::Method::GET, url.clone(), None, None)).await?;
        let p: Provider = wire::parse(&format!("provider {namespace} of subscription {sub}"), &raw.body)?;
        // Only a provider that is not registered at all proves no resource of it exists.
        let registered = p
            .registration_state
            .as_deref()
            .map(|s| !(s.eq_ignore_ascii_case("NotRegistered") || s.eq_ignore_ascii_case("Unregistered")));
        let by_type = p
            .resource_types
            .iter()
            .map(|t| (t.resource_type.to_ascii_lowercase(), p.api_versions(&t.resource_type)))
            .collect();
        Ok(ApiVersions { registered, by_type })
    }

    /// The IoT Hub api-version for hubs of `sub`.
    pub(super) async fn hub_api_version(&self, sub: &str) -> String {
        if let Some(v) = &self.config.iothub_api_version {
            return v.clone();
        }
        let p = self.provider(sub, "Microsoft.Devices").await;
        p.by_type
            .get("iothubs")
            .and_then(|l| wire::pick_hub_version(l))
            .unwrap_or_else(|| DEFAULT_IOTHUB_API_VERSION.to_string())
    }

    /// The DPS api-version for `sub`, and whether the provider is registered there.
    async fn dps_api_version(&self, sub: &str) -> (String, Option<bool>) {
        let p = self.provider(sub, "Microsoft.Devices").await;
        if let Some(v) = &self.config.dps_api_version {
            return (v.clone(), p.registered);
        }
        let v = p
            .by_type
            .get("provisioningservices")
            .and_then(|l| wire::pick_dps_version(l))
            .unwrap_or_else(|| DEFAULT_DPS_API_VERSION.to_string());
        (v, p.registered)
    }

    async fn get_hub_body(&self, hub: &HubId, api: &str) -> Result<Option<(HubBody, Option<String>)>, AzureError> {
        let url = self.url(&hub.arm_id(), api)?;
        match self.retry(|| self.call("IotHubResource_Get", reqwest::Method::GET, url.clone(), None, None)).await {
            Ok(raw) => Ok(Some((wire::parse(&format!("IoT hub {}", hub.name), &raw.body)?, raw.etag))),
            Err(AzureError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A hub; `None` when it does not exist. Right after this client changed the hub, a 404 is
    /// read again until `hub_not_found_grace` has passed (Azure answers 404 for a short while
    /// after a `disableLocalAuth` change).
    pub(super) async fn read_hub(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError> {
        let api = self.hub_api_version(&hub.subscription_id).await;
        Ok(self.hub_body_after_writes(hub, &api).await?.map(|(body, etag)| body.observed(hub, etag)))
    }

    /// The hub's body, reading a 404 again while this client's last change to the hub is within
    /// the not-found grace.
    async fn hub_body_after_writes(
        &self,
        hub: &HubId,
        api: &str,
    ) -> Result<Option<(HubBody, Option<String>)>, AzureError> {
        loop {
            if let Some(found) = self.get_hub_body(hub, api).await? {
                return Ok(Some(found));
            }
            let written = self.hub_writes.lock().unwrap_or_else(|e| e.into_inner()).get(&hub.key()).copied();
            match written.map(|t| self.config.hub_not_found_grace.saturating_sub(t.elapsed())) {
                Some(left) if !left.is_zero() => {
                    tracing::debug!(hub = %hub.name, ?left, "hub answered 404 right after a change; reading again");
                    tokio::time::sleep(left.min(Duration::from_secs(2))).await;
                }
                _ => return Ok(None),
            }
        }
    }

    /// Poll an `Azure-AsyncOperation` URL until the operation ends. The URL must be a canonical
    /// ARM path in `subscription`, the one of the resource written ([`operation_url`]): each poll
    /// carries the bearer token.
    async fn wait_for_operation(
        &self,
        op_url: &str,
        subscription: &str,
        first_wait: Option<Duration>,
    ) -> Result<(), AzureError> {
        let url = operation_url(op_url, &self.base, subscription)?;
        let deadline = tokio::time::Instant::now() + self.config.lro_timeout;
        let mut wait = first_wait.unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(30));
        loop {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let raw =
                self.retry(|| self.call("AsyncOperation_Get", reqwest::Method::GET, url.clone(), None, None)).await?;
            let v: serde_json::Value = serde_json::from_slice(&raw.body).unwrap_or_default();
            match v.get("status").and_then(|s| s.as_str()).unwrap_or("Running") {
                "Succeeded" => return Ok(()),
                s @ ("Failed" | "Canceled") => {
                    let detail = v.pointer("/error/message").and_then(|m| m.as_str()).unwrap_or("");
                    if v.pointer("/error/code").and_then(|c| c.as_str()) == Some("RequestDisallowedByPolicy") {
                        let (assignment, definition) = super::error::policy_identifiers(&raw.body);
                        return Err(AzureError::PolicyDenied { assignment, definition, message: detail.to_string() });
                    }
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

    /// GET, change, PUT the whole resource back (read-only properties dropped) with `If-Match`;
    /// on 412 someone else wrote in between (or an earlier PUT of ours landed without an
    /// answer): read again and redo. Returns the hub as Azure holds it afterwards, which a
    /// policy may have made different from what was written.
    pub(super) async fn write_hub_access(&self, hub: &HubId, change: &HubAccessChange) -> Result<HubWrite, AzureError> {
        let api = self.hub_api_version(&hub.subscription_id).await;
        for _ in 0..3 {
            let Some((mut body, header_etag)) = self.hub_body_after_writes(hub, &api).await? else {
                return Err(AzureError::NotFound {
                    code: "ResourceNotFound".into(),
                    message: format!("IoT hub {} not found", hub.name),
                });
            };
            let current = body.observed(hub, header_etag);
            if change.differences(&current).is_empty() {
                // Nothing to write; after a 412 this may also be a PUT of ours that landed
                // without an answer: not known to be ours, so reported as not written.
                return Ok(HubWrite { before: current.clone(), hub: current, written: false });
            }
            let before = current.clone();
            let Some(etag) = current.etag.clone() else {
                return Err(AzureError::Invalid {
                    code: "UnexpectedResponse".into(),
                    message: format!("IoT hub {}: the GET carried no etag; not writing without If-Match", hub.name),
                });
            };
            let p = &mut body.properties;
            // The one place Access becomes Azure's flags again.
            p.disable_local_auth = change.shared_access.map(Access::disabled).or(p.disable_local_auth);
            p.disable_device_sas = change.device_sas.map(Access::disabled).or(p.disable_device_sas);
            p.disable_module_sas = change.module_sas.map(Access::disabled).or(p.disable_module_sas);
            let bytes = serde_json::to_vec(&body)
                .map_err(|e| AzureError::Invalid { code: "Serialize".into(), message: e.to_string() })?;
            let url = self.url(&hub.arm_id(), &api)?;
            let put = self
                .retry(|| {
                    self.call(
                        "IotHubResource_CreateOrUpdate",
                        reqwest::Method::PUT,
                        url.clone(),
                        Some(bytes.clone()),
                        Some(&etag),
                    )
                })
                .await;
            match put {
                Ok(raw) => {
                    self.hub_writes.lock().unwrap_or_else(|e| e.into_inner()).insert(hub.key(), Instant::now());
                    if let Some(op) = raw.async_operation {
                        self.wait_for_operation(&op, &hub.subscription_id, raw.retry_after).await?;
                    }
                    let after = self.read_hub(hub).await?.ok_or_else(|| AzureError::NotFound {
                        code: "ResourceNotFound".into(),
                        message: format!("IoT hub {} vanished after the update", hub.name),
                    })?;
                    return Ok(HubWrite { hub: after, written: true, before });
                }
                Err(AzureError::PreconditionFailed { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(AzureError::Transient {
            message: format!("IoT hub {} kept changing underneath (412 three times)", hub.name),
        })
    }

    /// Every item of a paged list. A page without `value`, an item not understood, or a
    /// `nextLink` that cannot be followed is an error: the list is never taken as shorter. A
    /// `nextLink` is followed only to the first request's path (case aside; its query, the skip
    /// token, may differ): each page carries the bearer token, and a link to another path (another
    /// subscription's, or one a URL parser resolved from dot segments) is refused.
    pub(super) async fn list_all<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        first: Url,
        what: &str,
    ) -> Result<Vec<T>, AzureError> {
        self.retry(|| async {
            let mut out = Vec::new();
            let mut next = Some(first.clone());
            let mut pages = 0;
            while let Some(url) = next.take() {
                pages += 1;
                if pages > MAX_PAGES {
                    return Err(AzureError::Invalid {
                        code: "UnexpectedResponse".into(),
                        message: format!("{what}: more than {MAX_PAGES} pages"),
                    });
                }
                let raw = self.call(op, reqwest::Method::GET, url, None, None).await?;
                let page: Page<T> = wire::parse(what, &raw.body)?;
                out.extend(page.value);
                next = match page.next_link.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    None => None,
                    Some(link) => {
                        let url = Url::parse(link).map_err(|e| AzureError::Invalid {
                            code: "UnexpectedResponse".into(),
                            message: format!("{what}: nextLink '{link}' cannot be followed ({e})"),
                        })?;
                        // Another origin is refused where every request is sent (`execute`).
                        if same_origin(&url, &self.base) && same_path(url.path(), first.path()).is_err() {
                            return Err(AzureError::Invalid {
                                code: "UnexpectedResponse".into(),
                                message: format!(
                                    "{what}: the nextLink's path '{}' differs from the list's path '{}'; not following it",
                                    url.path(),
                                    first.path()
                                ),
                            });
                        }
                        Some(url)
                    }
                };
            }
            Ok(out)
        })
        .await
    }

    /// The subscription ids the identity can list (lower-case).
    pub(super) async fn subscriptions(&self) -> Result<Vec<String>, AzureError> {
        let url = self.url("/subscriptions", SUBSCRIPTIONS_API_VERSION)?;
        let subs: Vec<Subscription> = self.list_all("Subscriptions_List", url, "the subscription list").await?;
        let mut ids: Vec<String> = subs.into_iter().map(|s| s.subscription_id.to_ascii_lowercase()).collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Every DPS of a subscription with its links, read with the api-version picked for it.
    pub(super) async fn provisioning_services(&self, sub: &str) -> Result<Vec<ObservedDps>, AzureError> {
        let (api, registered) = self.dps_api_version(sub).await;
        if registered == Some(false) {
            // No DPS can exist where Microsoft.Devices is not registered.
            return Ok(vec![]);
        }
        let url = self.url(&format!("/subscriptions/{sub}/providers/Microsoft.Devices/provisioningServices"), &api)?;
        let what = format!("the DPS list of subscription {sub} (api-version {api})");
        let items: Vec<DpsBody> = self.list_all("IotDpsResource_ListBySubscription", url, &what).await?;
        let reports = wire::dps_reports_link_types(&api);
        items.into_iter().map(|d| d.observed(reports)).collect()
    }

    /// Every Device Update instance of a subscription with the hubs it names.
    pub(super) async fn device_update_instances(&self, sub: &str) -> Result<Vec<ObservedDeviceUpdate>, AzureError> {
        if self.provider(sub, "Microsoft.DeviceUpdate").await.registered == Some(false) {
            return Ok(vec![]);
        }
        let url = self.url(
            &format!("/subscriptions/{sub}/providers/Microsoft.DeviceUpdate/accounts"),
            DEVICE_UPDATE_API_VERSION,
        )?;
        let what = format!("the Device Update accounts of subscription {sub}");
        let accounts: Vec<DeviceUpdateAccount> = self.list_all("Accounts_ListBySubscription", url, &what).await?;
        let mut out = Vec::new();
        for a in accounts {
            let url = self.url(&format!("{}/instances", a.id), DEVICE_UPDATE_API_VERSION)?;
            let what = format!("the instances of Device Update account {}", a.id);
            let items: Vec<DeviceUpdateInstance> = self.list_all("Instances_ListByAccount", url, &what).await?;
            out.extend(items.into_iter().map(DeviceUpdateInstance::observed));
        }
        Ok(out)
    }
}

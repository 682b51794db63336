//! Local Azure Resource Manager emulator: role assignments, role definitions and deny assignments
//! (Microsoft.Authorization 2022-04-01), role eligibility schedule instances (PIM, 2020-10-01),
//! management groups and entities (Microsoft.Management 2023-04-01), IoT Hub (Microsoft.Devices
//! 2023-06-30; device and service host names of gateway v2 hubs from 2026-03-01-preview), Device
//! Provisioning Service (2022-12-12; the identity link shape and the resource identity at
//! 2026-03-01-preview and from 2026-08-01; creation a long-running operation), Device Update for
//! IoT Hub (Microsoft.DeviceUpdate 2023-07-01 accounts and instances), resource groups,
//! subscriptions (`GET /subscriptions`, per-subscription access: readable, forbidden or hidden),
//! resource provider registrations (`GET /subscriptions/{sub}/providers/{namespace}`, with each
//! resource type's supported api-versions enforced), Azure Policy on hub writes (Deny and Modify),
//! the Entra ID v2 token endpoint, MSAL discovery and IMDS; with ARM throttling, fault injection,
//! persistence and an admin API under `/_emulator/` (state, stats, faults, throttle, principals,
//! subscriptions, policies). Served over plain HTTP on loopback.

mod admin;
mod authz;
mod ctx;
mod definitions;
mod deny;
mod device_update;
mod dps;
mod faults;
mod fresh;
mod iothub;
mod mgmt;
mod pim;
mod policy;
mod providers;
mod rbac;
mod read_only;
mod resources;
mod routes;
mod seed;
mod server;
mod snapshot;
mod state;
mod subscriptions;
mod throttle;
mod token;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use faults::{Faults, parse_duration};
pub use resources::{Dps, Hub};
pub use seed::{
    ClientApp, DenyAssignment, DenyPermission, DenyPrincipal, DeviceUpdateAccount, DeviceUpdateInstance, DpsLinkSeed,
    DpsSeed, HubSeed, ManagementGroup, Permission, PolicyAssignment, PolicyEffect, Principal, ResourceGroup,
    RoleAssignment, RoleDefinition, RoleEligibility, SasPolicy, Seed, SeedError, Subscription, SubscriptionAccess,
};
pub use state::{DirectoryEntry, Operation, State, normalize_scope};
pub use throttle::{Bucket, ThrottleConfig};

/// Directory replication delay: a principal registered less than `seconds` ago is not found
/// yet (400 `PrincipalNotFound`), unless the request sets `principalType` and
/// `even_with_principal_type` is false.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationDelay {
    pub seconds: f64,
    pub even_with_principal_type: bool,
}

/// How the emulator behaves.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    pub seed: Seed,
    pub faults: Faults,
    /// ARM token buckets; `None`: no throttling.
    pub throttle: Option<ThrottleConfig>,
    /// Load from here at start when the file exists (instead of `seed`) and write the state
    /// back after every change (YAML for `.yaml`/`.yml`, JSON otherwise).
    pub persist_to: Option<PathBuf>,
    /// IoT Hub host name suffix: `azure-devices.net`.
    pub hub_host_suffix: String,
    /// `{"status":"Running"}` answers before `Succeeded` for each long-running operation.
    pub lro_running_polls: u32,
    /// `Retry-After` on long-running operation answers, in seconds; at least 1 is sent (a 0 reads
    /// as "none" to Azure's SDKs, which then wait their own default, 30 s in azure-core).
    pub lro_retry_after_secs: u32,
    /// ARM requests need a bearer token issued by this emulator for an ARM audience.
    pub require_auth: bool,
    /// Updating an existing hub needs `If-Match`.
    pub require_if_match: bool,
    /// Status when `If-Match` is missing on a hub update (unverified; 412 by default).
    pub missing_if_match_status: u16,
    /// Role assignments may name principals absent from the directory.
    pub accept_unknown_principals: bool,
    /// Items per page of every list (`nextLink` beyond).
    pub page_size: usize,
    pub replication_delay: Option<ReplicationDelay>,
    /// A hub PUT without `properties.authorizationPolicies` keeps the existing policies and keys
    /// (unverified; the alternative resets them to five new default policies).
    pub keep_policies_when_omitted: bool,
    /// Status of `RoleDefinitionHasAssignments` (unverified; 409 by default).
    pub role_definition_has_assignments_status: u16,
    /// Status of `RoleDefinitionDoesNotExist` on a role assignment PUT (unverified; 400).
    pub unknown_role_on_assignment_status: u16,
    /// Lifetime of the access tokens the token endpoint issues (`expires_in`), in seconds.
    pub token_lifetime_secs: u64,
    /// Supported api-versions by resource type (`Microsoft.Devices/IotHubs`,
    /// `Microsoft.Devices/ProvisioningServices`, `Microsoft.DeviceUpdate/accounts`,
    /// `Microsoft.DeviceUpdate/accounts/instances`; keys match case-insensitively). A request to
    /// one of these types with another api-version answers 400 `NoRegisteredProviderFound`; a
    /// type without an entry accepts any. Also the `apiVersions` of `GET .../providers/{ns}`.
    pub provider_api_versions: BTreeMap<String, Vec<String>>,
    /// A hub PUT whose body carries read-only properties (see `Stats::read_only_sent`) answers
    /// 400 `InvalidRequestContent` and changes nothing.
    pub reject_read_only_properties: bool,
    /// After a hub PUT that changes `properties.disableLocalAuth`, GETs of that hub answer 404
    /// `ResourceNotFound` for this long (zero: never). Written like `Faults` durations
    /// (`"20ms"`, `"1.5s"`) wherever it is read from text.
    pub hub_not_found_after_local_auth_change: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            seed: Seed::default(),
            faults: Faults::default(),
            throttle: None,
            persist_to: None,
            hub_host_suffix: "azure-devices.net".into(),
            lro_running_polls: 1,
            lro_retry_after_secs: 1,
            require_auth: true,
            require_if_match: true,
            missing_if_match_status: 412,
            accept_unknown_principals: false,
            page_size: 100,
            replication_delay: None,
            keep_policies_when_omitted: true,
            role_definition_has_assignments_status: 409,
            unknown_role_on_assignment_status: 400,
            token_lifetime_secs: 3599,
            provider_api_versions: providers::default_api_versions(),
            reject_read_only_properties: false,
            hub_not_found_after_local_auth_change: Duration::ZERO,
        }
    }
}

/// Requests seen, by operation and status (status 0: no answer was sent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    #[serde(default)]
    faults: u64,
    #[serde(default)]
    writes: u64,
    /// Federated assertions (`client_assertion`) the token endpoint accepted, in order.
    #[serde(default)]
    pub federated_assertions: Vec<String>,
    /// Read-only properties hub PUT bodies carried, by JSON path (`id`, `sku.tier`,
    /// `properties.hostName`, `properties.eventHubEndpoints.events.partitionIds`, ...).
    #[serde(default)]
    pub read_only_sent: BTreeMap<String, u64>,
}

/// Operations that only read.
const READ_OPS: &[&str] = &[
    "roleAssignments.list",
    "roleAssignments.get",
    "roleDefinitions.list",
    "roleDefinitions.get",
    "iotHubs.get",
    "iotHubs.list",
    "iotHubs.listkeys",
    "iotHubs.operationResult",
    "provisioningServices.get",
    "provisioningServices.list",
    "provisioningServices.operationResult",
    "denyAssignments.list",
    "denyAssignments.get",
    "roleEligibilityScheduleInstances.list",
    "roleEligibilityScheduleInstances.get",
    "managementGroups.get",
    "entities.list",
    "resourceGroups.get",
    "subscriptions.list",
    "subscriptions.get",
    "providers.get",
    "deviceUpdate.accounts.list",
    "deviceUpdate.accounts.get",
    "deviceUpdate.instances.list",
    "deviceUpdate.instances.get",
];

impl Stats {
    /// Requests of `op`, any status.
    pub fn count(&self, op: &str) -> u64 {
        self.requests.get(op).map_or(0, |m| m.values().sum())
    }
    pub fn count_status(&self, op: &str, status: u16) -> u64 {
        self.requests.get(op).and_then(|m| m.get(&status)).copied().unwrap_or(0)
    }
    /// Every request, token and IMDS included.
    pub fn total(&self) -> u64 {
        self.requests.values().flat_map(|m| m.values()).sum()
    }
    /// Writes applied successfully (PUT/PATCH/DELETE/POST that changed the state).
    pub fn writes(&self) -> u64 {
        self.writes
    }
    /// ARM read requests (any status).
    pub fn reads(&self) -> u64 {
        READ_OPS.iter().map(|op| self.count(op)).sum()
    }
    /// 429 answers (bucket and injected).
    pub fn throttled(&self) -> u64 {
        self.requests.values().filter_map(|m| m.get(&429)).sum()
    }
    pub fn faults_injected(&self) -> u64 {
        self.faults
    }
    /// Hub PUTs whose body carried the read-only property at `path` (e.g. `properties.state`).
    pub fn read_only_count(&self, path: &str) -> u64 {
        self.read_only_sent.get(path).copied().unwrap_or(0)
    }
    pub(crate) fn record(&mut self, op: &str, status: u16) {
        *self.requests.entry(op.to_string()).or_default().entry(status).or_default() += 1;
    }
}

pub(crate) struct Inner {
    pub config: EmulatorConfig,
    pub base_url: String,
    pub token_secret: String,
    pub state: Mutex<State>,
    pub stats: Mutex<Stats>,
    pub faults: Mutex<faults::FaultState>,
    pub throttle: Mutex<Option<throttle::Throttler>>,
    persist_lock: Mutex<()>,
}

impl Inner {
    pub fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn lock_stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Write the state to `persist_to`, atomically (temp file + rename).
    pub fn persist(&self) {
        let Some(path) = &self.config.persist_to else { return };
        let _guard = self.persist_lock.lock().unwrap_or_else(|e| e.into_inner());
        let seed = self.lock_state().to_seed();
        let text = match seed.to_string_for(path) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("emulator: cannot serialize the state: {e}");
                return;
            }
        };
        let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("state")));
        if let Err(e) = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)) {
            tracing::error!("emulator: cannot persist the state to {}: {e}", path.display());
        }
    }
}

/// A running emulator.
pub struct EmulatorHandle {
    inner: Arc<Inner>,
    addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// Start the emulator on `addr` (port 0 picks a free port).
pub async fn start(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<EmulatorHandle> {
    let seed = match &config.persist_to {
        Some(p) if p.exists() => {
            Seed::from_path(p).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?
        }
        _ => config.seed.clone(),
    };
    let state = State::from_seed(seed, &config.hub_host_suffix)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("seed: {e}")))?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let host = if local.ip().is_unspecified() {
        if local.is_ipv4() { "127.0.0.1".to_string() } else { "[::1]".to_string() }
    } else if local.is_ipv6() {
        format!("[{}]", local.ip())
    } else {
        local.ip().to_string()
    };
    let base_url = format!("http://{host}:{}", local.port());
    let inner = Arc::new(Inner {
        base_url,
        token_secret: format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()),
        state: Mutex::new(state),
        stats: Mutex::new(Stats::default()),
        faults: Mutex::new(faults::FaultState::new(config.faults.clone())),
        throttle: Mutex::new(config.throttle.map(throttle::Throttler::new)),
        persist_lock: Mutex::new(()),
        config,
    });
    if inner.config.persist_to.is_some() {
        inner.persist();
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(server::serve(listener, inner.clone(), rx));
    Ok(EmulatorHandle { inner, addr: local, shutdown: tx, task })
}

impl EmulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, no trailing slash: both the ARM endpoint and the authority host.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock_stats().clone()
    }

    pub fn reset_stats(&self) {
        *self.inner.lock_stats() = Stats::default();
    }

    pub fn set_faults(&self, f: Faults) {
        *self.inner.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults::FaultState::new(f);
    }

    pub fn set_throttle(&self, t: Option<ThrottleConfig>) {
        *self.inner.throttle.lock().unwrap_or_else(|e| e.into_inner()) = t.map(throttle::Throttler::new);
    }

    /// The current state in seed form.
    pub fn snapshot(&self) -> Seed {
        self.inner.lock_state().to_seed()
    }

    /// Change the state directly (as someone in the portal would). Hubs that changed get a new
    /// etag; the state is persisted afterwards.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = {
            let mut st = self.inner.lock_state();
            let before: Vec<(String, String)> =
                st.hubs.iter().map(|h| (h.id().to_ascii_lowercase(), h.fingerprint())).collect();
            let r = f(&mut st);
            for h in st.hubs.iter_mut() {
                let id = h.id().to_ascii_lowercase();
                let fp = h.fingerprint();
                if !before.iter().any(|(i, f)| *i == id && *f == fp) {
                    h.etag = fresh::new_etag();
                }
            }
            r
        };
        self.inner.persist();
        r
    }

    /// Register a principal now (the replication delay starts now).
    pub fn add_principal(&self, p: Principal) {
        self.inner.lock_state().add_principal(p);
        self.inner.persist();
    }

    /// A token this emulator accepts (or rejects, for a wrong audience or `ttl_secs <= 0`), for
    /// tests: `aud` e.g. `https://management.azure.com/`.
    pub fn issue_token(&self, aud: &str, oid: &str, ttl_secs: i64) -> String {
        let tid = self.inner.lock_state().tenant_id.clone();
        token::issue(&self.inner.token_secret, &self.inner.base_url, aud, &tid, oid, ttl_secs)
    }

    /// Stop serving and close every connection.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

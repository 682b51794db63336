//! The controller (`iothub-access-operator run`): one kube-runtime controller per kind, each
//! reconcile inside a finalizer, all planning through the same engine as `plan` / `apply`.
//!
//! - Observation is shared: every reconcile of a resync period reads Azure through one
//!   [`ObserverCache`] generation (one list per scope, one GET per hub, single-flight), and a
//!   write forgets exactly the reads it changes. A periodic trigger (`--resync-interval`)
//!   starts a new generation and re-reconciles everything, which repairs drift.
//! - Status is written only when it changes; Events tell every Azure write and every refusal.
//! - Errors: an invalid spec waits for the next change; throttling waits what Azure asked;
//!   other failures back off exponentially with jitter, per resource, reset on success.

pub mod args;
pub mod custom_role;
pub mod driver;
pub mod fair;
pub mod fence;
pub mod identity;
pub mod namespaces;
pub mod principals;
pub mod role_assignment;
pub mod run;
pub mod shared_access;
pub mod status;
pub mod wants;

pub use wants::{ClusterWants, custom_role_owner};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use rand::Rng;

use crate::apply::Applied;
use crate::azure::{Azure, AzureError};
use crate::crd::common::MAX_OWNED_HINTS;
use crate::crd::{IotHubCustomRole, IotHubRoleAssignment, IotHubSharedAccess, ReconcileMode};
use crate::domain::Scope;
use crate::domain::naming::Owner;
use crate::gate::Gate;
use crate::observe::Observer;
use crate::outcome::Outcome;
use crate::reason::Reason;
use crate::telemetry::Metrics;

/// One observation generation per resync period, shared by every reconcile in it.
pub struct ObserverCache {
    azure: Arc<dyn Azure>,
    ttl: Duration,
    recheck: Duration,
    current: Mutex<(Instant, Arc<Observer>)>,
}

impl ObserverCache {
    /// `ttl`: the resync period; `recheck`: the interlock re-check interval (how old
    /// what the interlock judges a hub on may be).
    pub fn new(azure: Arc<dyn Azure>, ttl: Duration, recheck: Duration) -> ObserverCache {
        let obs = Arc::new(Observer::new(azure.clone()).with_recheck(recheck));
        ObserverCache { azure, ttl, recheck, current: Mutex::new((Instant::now(), obs)) }
    }

    /// The current generation (a new one once the old is older than the resync period).
    pub fn get(&self) -> Arc<Observer> {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if cur.0.elapsed() >= self.ttl {
            *cur = (Instant::now(), Arc::new(self.fresh()));
        }
        cur.1.clone()
    }

    /// An observation of its own: every read made anew.
    pub fn fresh(&self) -> Observer {
        Observer::new(self.azure.clone()).with_recheck(self.recheck)
    }

    /// Start a new generation now (the resync trigger).
    pub fn rotate(&self) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = (Instant::now(), Arc::new(self.fresh()));
    }
}

impl Context {
    /// The observation `obj` plans on: the one shared within the resync period, or a fresh one
    /// (every read made anew) while it carries a reconcile request not handled yet
    /// (`iothubaccess.io/reconcile-requested-at`).
    ///
    /// At most one fresh observation per resource per `--interlock-recheck` (the same one serves
    /// every request in that time): a tenant changing the token in a loop never gets Azure reads
    /// at the rate it writes annotations.
    pub fn observer_for<K: Kind>(&self, obj: &K) -> Arc<Observer> {
        if driver::requested(obj).is_none() {
            return self.observer.get();
        }
        let key = format!("{}/{}/{}", K::KIND, obj.namespace().unwrap_or_default(), obj.name_any());
        let mut fresh = self.fresh_at.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        fresh.retain(|_, (at, _)| now.duration_since(*at) < self.settings.interlock_recheck);
        fresh.entry(key).or_insert_with(|| (now, Arc::new(self.observer.fresh()))).1.clone()
    }
}

/// Tunables of the controller.
#[derive(Clone, Debug)]
pub struct Settings {
    pub resync_interval: Duration,
    /// Azure writes in flight within one reconcile.
    pub write_concurrency: usize,
    /// First retry delay after a failure; doubles per consecutive failure, jittered.
    pub error_backoff: Duration,
    pub max_error_backoff: Duration,
    /// This operator instance (`--instance-id`): part of every name it derives, so two clusters
    /// managing one subscription never claim each other's objects.
    pub instance_id: String,
    /// `--watch-namespace`: resources elsewhere are unknown, so assumed alive (fail closed).
    pub watch_namespace: Option<String>,
    /// How soon a refused or failing shared access interlock is checked again against Azure
    /// (a DPS unlinked, a role granted), instead of at the next resync.
    pub interlock_recheck: Duration,
    /// Reconciles in flight, over every kind, handed out fairly between namespaces (`fair.rs`).
    pub reconcile_concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            resync_interval: Duration::from_secs(600),
            write_concurrency: 4,
            error_backoff: Duration::from_secs(5),
            max_error_backoff: Duration::from_secs(300),
            instance_id: "default".into(),
            watch_namespace: None,
            interlock_recheck: Duration::from_secs(30),
            reconcile_concurrency: 24,
        }
    }
}

/// The controller's caches of its own kinds (every reconcile reads the others through them).
#[derive(Clone)]
pub struct Stores {
    pub custom_roles: Store<IotHubCustomRole>,
    pub assignments: Store<IotHubRoleAssignment>,
    pub shared_access: Store<IotHubSharedAccess>,
}

/// What a [`Context`] is made of (the wiring in `run.rs`, or a test's).
pub struct Parts {
    pub client: kube::Client,
    /// The Azure client reads go through; writes go through `gate` too.
    pub azure: Arc<dyn Azure>,
    /// The security gate: allowed scopes, namespace narrowing, role allowlist, fence.
    pub gate: Gate,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub stores: Stores,
    pub settings: Settings,
}

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub azure: Arc<dyn Azure>,
    pub observer: ObserverCache,
    pub gate: Gate,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub custom_roles: Store<IotHubCustomRole>,
    pub assignments: Store<IotHubRoleAssignment>,
    pub shared_access: Store<IotHubSharedAccess>,
    pub settings: Settings,
    /// Fair turns between namespaces for every reconcile.
    pub turns: Arc<fair::Turns>,
    /// The ConfigMap keys role assignments read their principal from (`principals.rs`).
    pub principals: Arc<principals::PrincipalRefs>,
    /// When each resource last planned on a fresh observation (a reconcile request).
    fresh_at: Mutex<HashMap<String, (Instant, Arc<Observer>)>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(parts: Parts) -> Context {
        let Parts { client, azure, gate, recorder, metrics, stores, settings } = parts;
        Context {
            client,
            observer: ObserverCache::new(azure.clone(), settings.resync_interval, settings.interlock_recheck),
            azure,
            gate,
            recorder,
            metrics,
            custom_roles: stores.custom_roles,
            assignments: stores.assignments,
            shared_access: stores.shared_access,
            turns: fair::Turns::new(settings.reconcile_concurrency),
            principals: Arc::default(),
            fresh_at: Mutex::new(HashMap::new()),
            settings,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Publish an Event about `obj` (its action is the reason); failures to publish are logged,
    /// never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(&self, obj: &K, type_: EventType, reason: Reason, note: String) {
        self.publish(obj, type_, reason, reason.as_str(), note).await;
    }

    async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: Reason,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.as_str().into(),
            note: Some(note.chars().take(1024).collect()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason = reason.as_str(), "could not publish an Event");
        }
    }

    /// Events for the writes of one reconcile (reason: what came of it; action: the write), the
    /// write metric, and the observer forgetting what they changed. Refusals, a Deny that holds
    /// with blockers but was not written, and failures the kind `absorbs` (it tells them with
    /// their own reason) are not told here.
    pub async fn report_writes<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        kind: &str,
        applied: &[Applied],
        absorbs: impl Fn(&AzureError) -> bool,
    ) {
        let obs = self.observer.get();
        for a in applied {
            obs.forget_written(&a.action);
            if let Some(hub) = &a.hub {
                obs.remember_hub(hub.clone());
            }
            let (event, outcome) = match &a.outcome {
                Outcome::Done => (Some((EventType::Normal, Reason::Written)), "ok"),
                Outcome::Adopted(_) => (Some((EventType::Normal, Reason::AdoptedExisting)), "adopted"),
                Outcome::AlreadyDone | Outcome::Skipped | Outcome::Refused(_) => continue,
                Outcome::Failed(e) if absorbs(e) => (None, "failed"),
                Outcome::Failed(_) => (Some((EventType::Warning, Reason::WriteFailed)), "failed"),
                Outcome::Reverted(_) => (Some((EventType::Warning, Reason::DenyReverted)), "reverted"),
                Outcome::Overridden(..) => (Some((EventType::Warning, Reason::OverriddenByPolicy)), "overridden"),
                Outcome::DeniedBut { written: false, .. } => continue,
                Outcome::DeniedBut { written: true, .. } => {
                    (Some((EventType::Warning, Reason::Written)), "denied_with_blockers")
                }
            };
            self.metrics
                .azure_writes
                .get_or_create(&crate::telemetry::WriteLabels {
                    action: a.action.verb().into(),
                    outcome: outcome.into(),
                })
                .inc();
            tracing::info!(kind, action = a.action.verb(), target = %a.action.target(), outcome, "azure write");
            let Some((type_, reason)) = event else { continue };
            let note = match &a.outcome {
                Outcome::Failed(e) => format!("{}: {e}", a.action),
                Outcome::Adopted(id) => format!("{} already existed as {id}; using it", a.action.target()),
                Outcome::Reverted(found) => format!(
                    "{}: written, then {} appeared; shared access was allowed again",
                    a.action,
                    crate::plan::messages(found)
                ),
                Outcome::Overridden(what, found) if found.is_empty() => format!("{}: {what}", a.action),
                Outcome::Overridden(what, found) => {
                    format!("{}: {what}; the interlock reports: {}", a.action, crate::plan::messages(found))
                }
                Outcome::DeniedBut { blockers, .. } => {
                    format!("{}: written, but {}", a.action, crate::plan::messages(blockers))
                }
                _ => a.action.to_string(),
            };
            self.publish(obj, type_, reason, a.action.verb(), note).await;
        }
    }

    /// A `DriftRepaired` Event when every write of a reconcile that found `what` drifted worked.
    pub async fn drift_repaired<K: Resource<DynamicType = ()>>(&self, obj: &K, what: &str, applied: &[Applied]) {
        if applied.is_empty() || !applied.iter().all(|a| a.outcome.is_ok()) {
            return;
        }
        let done = applied.iter().map(|a| a.action.to_string()).collect::<Vec<_>>().join("; ");
        self.event(
            obj,
            EventType::Normal,
            Reason::DriftRepaired,
            format!("{what} had drifted from the spec; repaired: {done}"),
        )
        .await;
    }

    /// The gate's verdict for a resource's namespace and the ARM ids it touches: the inner
    /// result is the verdict; the outer error means the namespace's own allowed scopes are not
    /// known right now (cache not synced, watch failing), so nothing may be written and the
    /// reconcile is retried.
    /// The status hints of what a resource of `ns` made, as the controller takes them: parsed,
    /// the first [`MAX_OWNED_HINTS`], each of the kind's own shape (`fits`) and inside the
    /// namespace's allowed scopes. A hint only says where to look, and a forged one must cost
    /// nothing; `Err` when the namespace's scopes are not known now (nothing is decided blind).
    pub fn owned_hints<'a, T: PartialEq>(
        &self,
        ns: &str,
        hints: impl IntoIterator<Item = &'a String>,
        parse: impl Fn(&str) -> Option<T>,
        scope: impl Fn(&T) -> &Scope,
        fits: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, ReconcileError> {
        let mut out: Vec<T> = Vec::new();
        for hint in hints.into_iter().filter_map(|s| parse(s)) {
            if out.len() == MAX_OWNED_HINTS {
                break;
            }
            if fits(&hint) && !out.contains(&hint) && self.check_scopes(ns, std::slice::from_ref(scope(&hint)))?.is_ok()
            {
                out.push(hint);
            }
        }
        Ok(out)
    }

    pub fn check_scopes(
        &self,
        namespace: &str,
        ids: &[Scope],
    ) -> Result<Result<(), crate::gate::Refusal>, ReconcileError> {
        match self.gate.check(namespace, ids) {
            Err(r) if r.reason == Reason::ScopesUnknown => Err(ReconcileError::ScopesUnknown(r.message)),
            verdict => Ok(verdict),
        }
    }

    /// The Azure client for one reconcile of a resource in `namespace`: every write and delete
    /// passes the gate right before it is sent (`gate::wire`).
    pub fn azure_for(&self, namespace: &str) -> Arc<dyn Azure> {
        self.gate.azure_for(namespace, self.azure.clone())
    }

    fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    fn failed(&self, key: &str) -> u32 {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(key.to_string()).or_default();
        *n = n.saturating_add(1);
        *n
    }

    /// Backoff for the `n`th consecutive failure: exponential, capped, fully jittered.
    fn backoff(&self, n: u32) -> Duration {
        let base = self.settings.error_backoff.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << n.saturating_sub(1).min(16));
        let cap = exp.min(self.settings.max_error_backoff.as_millis() as u64).max(1);
        Duration::from_millis(rand::rng().random_range(cap / 2..=cap))
    }
}

/// A step of the reconcile pipeline (see `driver`), as errors and metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Observe,
    Apply,
    Cleanup,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Observe => "observe",
            Step::Apply => "apply",
            Step::Cleanup => "cleanup",
        }
    }
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Azure: {0}")]
    Azure(#[from] AzureError),
    /// An Azure call failed in `step`, on `subject` (an operation and its ARM id).
    #[error("{} {subject}: {source}", step.as_str())]
    At { step: Step, subject: String, source: AzureError },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A deletion is refused for now (e.g. a custom role still in use); retried calmly.
    #[error("{0}")]
    Refused(String),
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The guardrail cannot decide yet; retried soon.
    #[error("{0}")]
    ScopesUnknown(String),
    /// The controller's resource caches have not synced yet; retried soon.
    #[error("the resource caches have not synced yet; retrying")]
    NotSynced,
}

impl ReconcileError {
    /// The Azure failure behind this error, if any.
    pub fn azure(&self) -> Option<&AzureError> {
        match self {
            ReconcileError::Azure(e) | ReconcileError::At { source: e, .. } => Some(e),
            _ => None,
        }
    }

    /// The step that failed, as a bounded metric label.
    pub fn step(&self) -> &'static str {
        match self {
            ReconcileError::At { step, .. } => step.as_str(),
            ReconcileError::Azure(_) => "azure",
            ReconcileError::Kube(_) | ReconcileError::Finalizer(_) | ReconcileError::NotSynced => "kubernetes",
            ReconcileError::Refused(_) => "refused",
            ReconcileError::ScopesUnknown(_) => "guard",
        }
    }

    /// The `Ready` reason for this failure.
    pub fn reason(&self) -> Reason {
        match self.azure() {
            Some(AzureError::Withheld { reason, .. }) => return *reason,
            Some(AzureError::Throttled { .. }) => return Reason::Throttled,
            Some(AzureError::PrincipalNotFound { .. }) => return Reason::PrincipalNotFound,
            Some(AzureError::PolicyDenied { .. }) => return Reason::PolicyDenied,
            Some(AzureError::AssignmentForbidden { .. }) => return Reason::DelegationDenied,
            Some(_) => return Reason::AzureError,
            None => {}
        }
        match self {
            ReconcileError::Azure(_) | ReconcileError::At { .. } => Reason::AzureError,
            ReconcileError::Kube(_) | ReconcileError::Finalizer(_) => Reason::KubernetesError,
            ReconcileError::Refused(_) => Reason::InUse,
            ReconcileError::ScopesUnknown(_) => Reason::ScopesUnknown,
            ReconcileError::NotSynced => Reason::KubernetesError,
        }
    }
}

/// The `iothubaccess.io/reconcile` annotation (see [`ReconcileMode::from_annotations`]).
pub fn reconcile_mode<K: ResourceExt>(obj: &K) -> (ReconcileMode, Option<String>) {
    ReconcileMode::from_annotations(obj.annotations())
}

/// The three kinds, as the shared reconcile plumbing sees them.
pub trait Kind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
{
    const KIND: &'static str;
    type Status: status::Conditioned;
    fn status(&self) -> Option<&Self::Status>;
}

macro_rules! kind {
    ($t:ty, $s:ty, $name:literal) => {
        impl Kind for $t {
            const KIND: &'static str = $name;
            type Status = $s;
            fn status(&self) -> Option<&$s> {
                self.status.as_ref()
            }
        }
    };
}
kind!(IotHubRoleAssignment, crate::crd::IotHubRoleAssignmentStatus, "IotHubRoleAssignment");
kind!(IotHubCustomRole, crate::crd::IotHubCustomRoleStatus, "IotHubCustomRole");
kind!(crate::crd::IotHubSharedAccess, crate::crd::IotHubSharedAccessStatus, "IotHubSharedAccess");

/// The identity a resource's Azure objects are derived from and proven against.
pub fn owner_of<K: ResourceExt>(ctx: &Context, obj: &K) -> Owner {
    Owner::new(&ctx.settings.instance_id, &obj.namespace().unwrap_or_default(), &obj.name_any())
}

/// What the controller knows for `obj`'s pipeline: its owner, the custom roles of its namespace
/// from the cache, what the other resources want (unknown until the caches sync: fail closed)
/// and the admin's allowed roles.
pub fn sources<'a, K: ResourceExt>(
    ctx: &'a Context,
    obj: &K,
    custom_roles: &'a (dyn Fn(&str) -> Option<crate::crd::IotHubCustomRoleSpec> + Send + Sync),
    custom_role_owner: &'a (dyn Fn(uuid::Uuid) -> Option<Owner> + Send + Sync),
    principals: crate::desire::PrincipalLookup<'a>,
) -> crate::pipeline::Sources<'a> {
    crate::pipeline::Sources {
        owner: owner_of(ctx, obj),
        custom_roles,
        others: ClusterWants::or_unknown(ctx),
        allowed_roles: ctx.gate.allowed_roles().to_vec(),
        custom_role_owner,
        principals,
    }
}

/// The sources of a kind that names no custom role and no principal (custom roles, shared
/// access).
pub fn plain_sources<'a, K: ResourceExt>(ctx: &'a Context, obj: &K) -> crate::pipeline::Sources<'a> {
    sources(ctx, obj, &no_custom_roles, &crate::pipeline::no_custom_role_owner, &crate::desire::no_principal_refs)
}

/// No custom role (kinds that do not reference one).
pub fn no_custom_roles(_: &str) -> Option<crate::crd::IotHubCustomRoleSpec> {
    None
}

/// `namespace/name`.
pub fn key_of<K: ResourceExt>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// What to do after a failed reconcile: wait what Azure asked when throttled, retry refusals
/// calmly, otherwise back off exponentially with jitter.
pub fn error_policy<K: ResourceExt>(obj: Arc<K>, error: &ReconcileError, ctx: Arc<Context>) -> Requeue {
    let key = key_of(obj.as_ref());
    let n = ctx.failed(&key);
    let wait = match (error, error.azure()) {
        (_, Some(AzureError::Throttled { retry_after, .. })) => *retry_after + ctx.backoff(1) / 10,
        (ReconcileError::Refused(_), _) => Duration::from_secs(30).max(ctx.backoff(n)),
        // Only an admin can lift it: look again at the resync, not in a loop.
        (_, Some(AzureError::AssignmentForbidden { .. })) => ctx.settings.resync_interval.max(ctx.backoff(n)),
        _ => ctx.backoff(n),
    };
    tracing::warn!(resource = %key, step = error.step(), error = %error, retry_in = ?wait, "reconcile failed");
    Requeue::requeue(wait)
}

/// After a successful reconcile: reset the backoff; the periodic resync brings it back.
pub fn done<K: ResourceExt>(ctx: &Context, obj: &K) -> Requeue {
    ctx.succeeded(&key_of(obj));
    Requeue::await_change()
}

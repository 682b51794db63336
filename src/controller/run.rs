//! `iothub-access-operator run`: the controller, assembled from small named parts: the
//! health and metrics server, the stop signal, leader election (and its write fence), the
//! namespace cache the gate reads, the operator instance, the context, the resync trigger and the
//! three controllers; then a bounded shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

pub use super::args::{RunArgs, parse_interval};
use super::fence::Fence;
use super::namespaces::NamespaceCache;
use super::{Context, Parts, Stores, error_policy};
use crate::crd::{IotHubCustomRole, IotHubRoleAssignment, IotHubSharedAccess};
use crate::gate::Gate;
use crate::telemetry::{self, Health, Metrics};

/// How long reconciles in flight may run on after the stop signal (under Kubernetes' default
/// 30 s termination grace).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// A stream that yields whenever the watch channel changes.
fn ticks(rx: watch::Receiver<u64>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
}

#[allow(clippy::manual_async_fn)] // the controller needs a `Sync` future
fn stopped(rx: watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    async move {
        let mut rx = rx;
        let _ = rx.wait_for(|v| *v).await;
    }
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(n) => Api::namespaced(client.clone(), n),
        None => Api::all(client.clone()),
    }
}

/// A controller whose cache drops `metadata.managedFields` (server-side apply bookkeeping the
/// operator never reads, often the largest part of an object): with 10,000 resources this is
/// most of the cache. Every due reconcile starts at once (concurrency 0) and waits for a fair
/// turn (`fair.rs`), so no namespace's backlog holds back another's.
fn lean_controller<K>(api: Api<K>, wc: watcher::Config) -> Controller<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, wc)
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None)
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(stream, reader).with_config(ControllerConfig::default().concurrency(0))
}

/// The stop signal: SIGTERM or Ctrl+C (and, with leader election, a lost Lease).
fn stop_on_signal() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let tx = stop_tx.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing reconciles in flight");
        let _ = tx.send(true);
    });
    (stop_tx, stop_rx)
}

/// With `--leader-elect`: wait for the Lease (`Ok(None)` when stopped first), and stop once it is
/// lost; the fence every write passes proves the Lease right before it.
async fn lead(
    args: &RunArgs,
    client: &Client,
    health: &Health,
    stop_tx: &watch::Sender<bool>,
) -> anyhow::Result<Option<Fence>> {
    let ns = args.lease_namespace();
    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| uuid::Uuid::new_v4().to_string());
    let fence = Fence::new(Api::namespaced(client.clone(), &ns), &args.leader_election_id, &identity);
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.leader_election_id)
        .with_namespace(&ns)
        .with_identity(&identity)
        .with_duration(15)
        .with_grace(10) // renew every 5 s; the write fence allows 10 s (fence.rs)
        .build()
        .await
        .context("setting up leader election")?;
    let (mut leader, _task) = manager.watch().await;
    health.ready.store(true, Ordering::Relaxed);
    tracing::info!(lease = %args.leader_election_id, namespace = %ns, "waiting to become leader");
    let mut stop = stop_tx.subscribe();
    tokio::select! {
        r = leader.wait_for(|l| *l) => { r.context("leader election stopped")?; }
        _ = stop.wait_for(|v| *v) => return Ok(None),
    }
    tracing::info!("became leader");
    let stop_tx = stop_tx.clone();
    tokio::spawn(async move {
        let _task = _task;
        if leader.wait_for(|l| !*l).await.is_ok() {
            tracing::error!("lost the leader Lease: stopping so another replica takes over");
            let _ = stop_tx.send(true);
        }
    });
    Ok(Some(fence))
}

/// The operator instance: `--instance-id`, else the UID of the cluster's `kube-system` namespace.
async fn instance_id(args: &RunArgs, client: &Client) -> anyhow::Result<String> {
    if let Some(id) = args.instance_id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
        return Ok(id.to_string());
    }
    Api::<Namespace>::all(client.clone())
        .get("kube-system")
        .await
        .context("reading the kube-system namespace's UID for the default --instance-id (or set --instance-id)")?
        .metadata
        .uid
        .context("the kube-system namespace has no UID: set --instance-id")
}

/// Every `every`: a new observation generation, then every resource is reconciled again.
fn resync_trigger(ctx: Arc<Context>, every: Duration) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0u64);
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            tokio::time::sleep(every).await;
            ctx.observer.rotate();
            n += 1;
            if tx.send(n).is_err() {
                return;
            }
        }
    });
    rx
}

/// The three controllers, with their watch relations, until the stop signal.
async fn controllers(
    client: &Client,
    ns: Option<&str>,
    ctx: Arc<Context>,
    ctrls: (Controller<IotHubRoleAssignment>, Controller<IotHubCustomRole>, Controller<IotHubSharedAccess>),
    resync: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
) {
    let (ra_ctrl, cr_ctrl, sa_ctrl) = ctrls;
    let wc = watcher::Config::default().any_semantic();
    // ConfigMaps by metadata only (nothing cached): one that a role assignment reads its principal
    // from reconciles that assignment when it appears, changes or goes.
    let (refs, referencing) = (ctx.principals.clone(), ctx.assignments.clone());
    // Listed in pages (the most recent semantic: the API server ignores `limit` when it serves
    // resourceVersion 0 from its cache), so ten thousand unrelated ConfigMaps never arrive at once.
    let paged = watcher::Config::default();
    let config_maps =
        watcher(api::<PartialObjectMeta<ConfigMap>>(client, ns), paged).default_backoff().touched_objects();
    let ra_ctrl = ra_ctrl.watches_stream(config_maps, move |cm: PartialObjectMeta<ConfigMap>| {
        let (cns, cname) = (cm.namespace(), cm.name_any());
        if !refs.changed(cns.as_deref().unwrap_or_default(), &cname) {
            return vec![];
        }
        referencing
            .state()
            .into_iter()
            .filter(|a| {
                a.namespace() == cns
                    && a.spec.principal.id_from.as_ref().is_some_and(|f| f.config_map_key_ref.name == cname)
            })
            .map(|a| ObjectRef::from_obj(a.as_ref()))
            .collect::<Vec<_>>()
    });
    let assignments = ctx.assignments.clone();
    // An assignment waiting for its custom role is reconciled when the role changes.
    let ra = ra_ctrl
        .watches(api::<IotHubCustomRole>(client, ns), wc.clone(), move |role: IotHubCustomRole| {
            let (rns, rname) = (role.namespace(), role.name_any());
            assignments
                .state()
                .into_iter()
                .filter(|a| {
                    a.namespace() == rns && a.spec.role.custom_role_ref.as_ref().is_some_and(|r| r.name == rname)
                })
                .map(|a| ObjectRef::from_obj(a.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_all_on(ticks(resync.clone()))
        .graceful_shutdown_on(stopped(stop.clone()))
        .run(super::role_assignment::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let cr = cr_ctrl
        .reconcile_all_on(ticks(resync.clone()))
        .graceful_shutdown_on(stopped(stop.clone()))
        .run(super::custom_role::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    // A Deny refused for lock-out (or for a DPS identity without a role) is retried as soon as
    // a role assignment on a hub it may cover becomes Ready.
    let shared_access = ctx.shared_access.clone();
    let sa = sa_ctrl
        .watches(api::<IotHubRoleAssignment>(client, ns), wc, move |ra: IotHubRoleAssignment| {
            let ready = ra.status.as_ref().is_some_and(|s| super::status::is_true(&s.conditions, super::status::READY));
            if !ready {
                return vec![];
            }
            shared_access
                .state()
                .into_iter()
                .filter(|sa| sa.spec.hub.subscription_id.eq_ignore_ascii_case(&ra.spec.hub.subscription_id))
                .filter(|sa| sa.status.as_ref().is_none_or(|s| !s.blockers.is_empty()))
                .map(|sa| ObjectRef::from_obj(sa.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_all_on(ticks(resync))
        .graceful_shutdown_on(stopped(stop))
        .run(super::shared_access::reconcile, error_policy, ctx)
        .for_each(|_| async {});
    futures::join!(ra, cr, sa);
}

/// Run the operator until SIGTERM / Ctrl+C (or the Lease is lost).
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init_logging(args.log_format);
    crate::install_crypto_provider();
    let client = Client::try_default().await.context("connecting to Kubernetes (kubeconfig or in-cluster)")?;
    let arm = args.azure.client()?;
    // Who the operator is in Azure, for its self-check (`identity.rs`); advisory, so a failure
    // here only skips the check.
    let oid = match arm.caller_object_id().await {
        Ok(oid) => Some(oid),
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell the operator's Azure object id: its identity will not be checked");
            None
        }
    };
    let metrics = Arc::new(Metrics::new(Some(arm.stats())));
    let health = Arc::new(Health::default());
    let (stop_tx, stop_rx) = stop_on_signal();
    let server =
        tokio::spawn(telemetry::serve(args.metrics_listen, metrics.clone(), health.clone(), stopped(stop_rx.clone())));

    let mut gate: Gate = args.guard.gate();
    if gate.scopes().is_empty() {
        tracing::warn!("no --allowed-scope configured: every resource will be refused with ScopeNotAllowed");
    }
    if args.leader_elect {
        match lead(&args, &client, &health, &stop_tx).await? {
            Some(fence) => gate = gate.with_fence(Arc::new(fence)),
            None => {
                let _ = server.await;
                return Ok(());
            }
        }
    }
    let namespaces = NamespaceCache::start(Api::all(client.clone()));
    tracing::info!("listing namespaces (their allowed-scopes annotations) before the controllers start");
    tokio::select! {
        () = namespaces.wait_listed() => {}
        () = stopped(stop_rx.clone()) => {
            let _ = server.await;
            return Ok(());
        }
    }
    let gate = gate.with_namespaces(namespaces.scopes());

    let ns = args.watch_namespace.as_deref();
    let wc = watcher::Config::default().any_semantic();
    let ra_ctrl = lean_controller(api::<IotHubRoleAssignment>(&client, ns), wc.clone());
    let cr_ctrl = lean_controller(api::<IotHubCustomRole>(&client, ns), wc.clone());
    let sa_ctrl = lean_controller(api::<IotHubSharedAccess>(&client, ns), wc);
    let stores = Stores { custom_roles: cr_ctrl.store(), assignments: ra_ctrl.store(), shared_access: sa_ctrl.store() };
    let instance_id = instance_id(&args, &client).await?;
    tracing::info!(instance_id = %instance_id, "operator instance");
    let reporter = Reporter { controller: "iothub-access-operator".into(), instance: std::env::var("POD_NAME").ok() };
    let ctx = Arc::new(Context::new(Parts {
        client: client.clone(),
        azure: arm,
        gate,
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
        stores,
        settings: args.settings(instance_id),
    }));
    let resync = resync_trigger(ctx.clone(), args.resync_interval);
    if let Some(oid) = oid {
        tokio::spawn(super::identity::run(ctx.clone(), oid, resync.clone()));
    }
    health.ready.store(true, Ordering::Relaxed);
    tracing::info!(allowed_scopes = ?ctx.gate.scopes().allowed(), resync = ?args.resync_interval, "controllers started");

    // Shutdown is bounded: reconciles in flight get SHUTDOWN_GRACE after the stop signal (SIGTERM
    // or a lost Lease), then the process exits; the fence already stops a deposed leader's writes.
    let running = controllers(&client, ns, ctx, (ra_ctrl, cr_ctrl, sa_ctrl), resync, stop_rx.clone());
    let deadline = async {
        stopped(stop_rx.clone()).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = running => {}
        () = deadline => tracing::warn!(grace = ?SHUTDOWN_GRACE, "reconciles still in flight at the end of the shutdown grace: exiting"),
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

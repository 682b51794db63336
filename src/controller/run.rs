//! `iothub-access-operator run`: wire the three controllers, the resync trigger, the namespace
//! watch for the guardrail, leader election, the metrics/health server and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use super::fence::Fence;
use super::gate::GatedAzure;
use super::guardrail::Guardrail;
use super::{Context, NamespaceScopes, Settings, error_policy};
use crate::azure::Azure;
use crate::azure::args::AzureArgs;
use crate::crd::common::ALLOWED_SCOPES_ANNOTATION;
use crate::crd::{IotHubCustomRole, IotHubRoleAssignment, IotHubSharedAccess};
use crate::telemetry::{self, Health, LogFormat, Metrics};

/// How long reconciles in flight may run on after the stop signal (under Kubernetes' default
/// 30 s termination grace).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Parse an interval flag: `600s`, `10m`, `1h`, `1500ms` (the project's one duration syntax, a
/// unit required), more than zero.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let d = iothub_access_emulator::parse_duration(t)
        .map_err(|e| format!("'{t}' is not a duration such as 600s, 10m or 1h ({e})"))?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// Flags of `run`.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub azure: AzureArgs,
    /// ARM id prefix the operator may manage (repeatable, or comma separated). Nothing
    /// configured means nothing is managed (deny by default).
    #[arg(long = "allowed-scope", env = "IOTHUB_ACCESS_ALLOWED_SCOPES", value_delimiter = ',')]
    pub allowed_scopes: Vec<String>,
    /// A role definition GUID that may be assigned although it grants more than IoT Hub data
    /// access (repeatable, or comma separated). By default only roles holding nothing beyond IoT
    /// Hub data actions and control-plane reads are granted.
    #[arg(long = "allowed-role", env = "IOTHUB_ACCESS_ALLOWED_ROLES", value_delimiter = ',')]
    pub allowed_roles: Vec<uuid::Uuid>,
    /// This operator instance, part of every Azure name it derives: two operators managing one
    /// subscription must have different ids, or they claim each other's objects. Default: the
    /// UID of this cluster's `kube-system` namespace (stable for the cluster's life).
    #[arg(long, env = "IOTHUB_ACCESS_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// How often everything is re-observed and drift repaired.
    #[arg(long, default_value = "10m", value_parser = parse_interval)]
    pub resync_interval: Duration,
    /// How soon a refused or unverifiable shared access Deny (a DPS or Device Update instance
    /// still linked, a failed check, nobody holding a data role) is checked again in Azure.
    #[arg(long, default_value = "30s", value_parser = parse_interval)]
    pub interlock_recheck: Duration,
    /// Only one replica writes: take a Lease first.
    #[arg(long)]
    pub leader_elect: bool,
    #[arg(long, default_value = "iothub-access-operator")]
    pub leader_election_id: String,
    /// Namespace of the Lease (default: the pod's namespace from POD_NAMESPACE, else default).
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_listen: SocketAddr,
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Watch one namespace only (default: all).
    #[arg(long)]
    pub watch_namespace: Option<String>,
    /// Reconciles in flight per kind.
    #[arg(long, default_value_t = 8)]
    pub reconcile_concurrency: u16,
}

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
/// most of the cache.
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
    Controller::for_stream(stream, reader)
}

/// Run the operator until SIGTERM / Ctrl+C (or the Lease is lost).
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init_logging(args.log_format);
    crate::install_crypto_provider();
    let client = Client::try_default().await.context("connecting to Kubernetes (kubeconfig or in-cluster)")?;
    let arm = args.azure.client()?;
    let metrics = Arc::new(Metrics::new(Some(arm.stats())));
    let health = Arc::new(Health::default());
    let (stop_tx, stop_rx) = watch::channel(false);

    let server =
        tokio::spawn(telemetry::serve(args.metrics_listen, metrics.clone(), health.clone(), stopped(stop_rx.clone())));
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing reconciles in flight");
            let _ = stop_tx.send(true);
        });
    }
    if args.allowed_scopes.is_empty() {
        tracing::warn!("no --allowed-scope configured: every resource will be refused with ScopeNotAllowed");
    }

    let mut azure: Arc<dyn Azure> = arm;
    if args.leader_elect {
        let ns = args.leader_election_namespace.clone().unwrap_or_else(|| "default".into());
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| uuid::Uuid::new_v4().to_string());
        let fence = Fence::new(Api::namespaced(client.clone(), &ns), &args.leader_election_id, &identity);
        azure = Arc::new(GatedAzure::new(azure, Arc::new(fence)));
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
        let mut stop = stop_rx.clone();
        tokio::select! {
            r = leader.wait_for(|l| *l) => { r.context("leader election stopped")?; }
            _ = stop.wait_for(|v| *v) => { let _ = server.await; return Ok(()); }
        }
        tracing::info!("became leader");
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            if leader.wait_for(|l| !*l).await.is_ok() {
                tracing::error!("lost the leader Lease: stopping so another replica takes over");
                let _ = stop_tx.send(true);
            }
        });
    }

    let ns = args.watch_namespace.as_deref();
    let wc = watcher::Config::default().any_semantic();
    let cfg = ControllerConfig::default().concurrency(args.reconcile_concurrency);
    let (resync_tx, resync_rx) = watch::channel(0u64);

    let ra_ctrl = lean_controller(api::<IotHubRoleAssignment>(&client, ns), wc.clone()).with_config(cfg.clone());
    let cr_ctrl = lean_controller(api::<IotHubCustomRole>(&client, ns), wc.clone()).with_config(cfg.clone());
    let sa_ctrl = lean_controller(api::<IotHubSharedAccess>(&client, ns), wc.clone()).with_config(cfg);
    let assignments = ra_ctrl.store();
    let custom_roles = cr_ctrl.store();
    let shared_access = sa_ctrl.store();

    // Namespace annotations for the guardrail.
    // Until the cache has synced, and while the watch fails, the guardrail refuses to decide.
    let (ns_reader, ns_writer) = reflector::store::<Namespace>();
    let ns_watch_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let ns_watch = {
        let error = ns_watch_error.clone();
        reflector::reflector(ns_writer, watcher(Api::<Namespace>::all(client.clone()), watcher::Config::default()))
            .default_backoff()
            .for_each(move |r| {
                let mut last = error.lock().unwrap_or_else(|e| e.into_inner());
                match r {
                    Err(e) => {
                        tracing::warn!(error = %e, "namespace watch");
                        *last = Some(e.to_string());
                    }
                    Ok(_) => *last = None,
                }
                futures::future::ready(())
            })
    };
    tokio::spawn(ns_watch);
    let namespace_scopes: NamespaceScopes =
        Arc::new(move |ns: &str| namespace_annotation(&ns_reader, &ns_watch_error, ns));

    let reporter = Reporter { controller: "iothub-access-operator".into(), instance: std::env::var("POD_NAME").ok() };
    let instance_id = match &args.instance_id {
        Some(id) if !id.trim().is_empty() => id.trim().to_string(),
        _ => Api::<Namespace>::all(client.clone())
            .get("kube-system")
            .await
            .context("reading the kube-system namespace's UID for the default --instance-id (or set --instance-id)")?
            .metadata
            .uid
            .context("the kube-system namespace has no UID: set --instance-id")?,
    };
    tracing::info!(instance_id = %instance_id, "operator instance");
    let settings = Settings {
        resync_interval: args.resync_interval,
        allowed_roles: args.allowed_roles.clone(),
        instance_id,
        watch_namespace: args.watch_namespace.clone(),
        interlock_recheck: args.interlock_recheck,
        ..Settings::default()
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        azure,
        Guardrail::new(&args.allowed_scopes),
        namespace_scopes,
        Recorder::new(client.clone(), reporter),
        metrics.clone(),
        custom_roles.clone(),
        assignments.clone(),
        settings,
    ));

    // The resync: a new observation generation, then every resource is reconciled again.
    {
        let ctx = ctx.clone();
        let every = args.resync_interval;
        tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                tokio::time::sleep(every).await;
                ctx.observer.rotate();
                n += 1;
                if resync_tx.send(n).is_err() {
                    return;
                }
            }
        });
    }

    let store_for_mapper = assignments.clone();
    let ra = ra_ctrl
        .watches(api::<IotHubCustomRole>(&client, ns), wc.clone(), move |role: IotHubCustomRole| {
            let (rns, rname) = (role.namespace(), role.name_any());
            store_for_mapper
                .state()
                .into_iter()
                .filter(|a| {
                    a.namespace() == rns && a.spec.role.custom_role_ref.as_ref().is_some_and(|r| r.name == rname)
                })
                .map(|a| ObjectRef::from_obj(a.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_all_on(ticks(resync_rx.clone()))
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(super::role_assignment::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let cr = cr_ctrl
        .reconcile_all_on(ticks(resync_rx.clone()))
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(super::custom_role::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    // A Deny refused for lock-out (or for a DPS identity without a role) is retried as soon as
    // a role assignment on a hub it may cover becomes Ready.
    let sa = sa_ctrl
        .watches(api::<IotHubRoleAssignment>(&client, ns), wc.clone(), move |ra: IotHubRoleAssignment| {
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
        .reconcile_all_on(ticks(resync_rx))
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(super::shared_access::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    health.ready.store(true, Ordering::Relaxed);
    tracing::info!(
        allowed_scopes = ?ctx.guardrail.allowed(),
        resync = ?args.resync_interval,
        "controllers started"
    );
    // Shutdown is bounded: reconciles in flight get SHUTDOWN_GRACE after the stop signal (SIGTERM
    // or a lost Lease), then the process exits; the fence already stops a deposed leader's writes.
    let controllers = async {
        futures::join!(ra, cr, sa);
    };
    let deadline = async {
        stopped(stop_rx.clone()).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = controllers => {}
        () = deadline => tracing::warn!(grace = ?SHUTDOWN_GRACE, "reconciles still in flight at the end of the shutdown grace: exiting"),
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

/// The allowed-scopes annotation of `ns` from the namespace cache, or why it cannot be known.
fn namespace_annotation(
    cache: &reflector::Store<Namespace>,
    watch_error: &std::sync::Mutex<Option<String>>,
    ns: &str,
) -> Result<Option<String>, String> {
    if let Some(e) = watch_error.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Err(format!("the namespace watch is failing: {e}"));
    }
    // A resource's namespace exists, so one missing from the cache means the cache lags.
    let n = cache.get(&ObjectRef::new(ns)).ok_or_else(|| "the namespace cache has not seen it yet".to_string())?;
    Ok(n.annotations().get(ALLOWED_SCOPES_ANNOTATION).cloned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_intervals_read_like_kubectl_durations() {
        assert!(parse_interval("600").unwrap_err().contains("add a unit"));
        assert_eq!(parse_interval("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_interval("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_interval("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_interval("0s").unwrap_err().contains("more than zero"));
        assert!(parse_interval("10d").unwrap_err().contains("unknown duration unit"));
        assert!(parse_interval("soon").unwrap_err().contains("not a duration"));
    }
}

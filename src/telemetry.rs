//! Logs, metrics and health: `tracing` (text or JSON), Prometheus metrics with bounded label
//! sets, and the HTTP server for `/healthz`, `/readyz` and `/metrics`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::azure::arm::ArmStats;

/// `--log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Set up `tracing` (filter from `RUST_LOG`, default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_runtime=warn,kube_client=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub kind: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub action: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub finding: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ArmLabels {
    operation: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    kind: String,
    ready: String,
    reason: String,
}

/// Where each resource stands (kind, namespace/name) -> (Ready, reason); counted per scrape.
type StateMap = HashMap<(&'static str, String), (bool, String)>;
#[derive(Debug, Default)]
struct ResourceStates(Mutex<StateMap>);

/// Azure client counters, read at scrape time.
#[derive(Debug)]
struct ArmCollector(Arc<ArmStats>);

impl Collector for ArmCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let requests = self.0.requests();
        let counter = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "arm_requests",
            "Azure Resource Manager requests by operation and HTTP status (0 = no answer: reset or timeout)",
            None,
            counter.metric_type(),
        )?;
        for ((op, status), n) in requests {
            let labels = ArmLabels { operation: op.to_string(), code: status.to_string() };
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        let r = &self.0.retries;
        let simple = [
            ("arm_throttle_waits", "429 answers waited out (Retry-After)", r.throttle_waits.load(Ordering::Relaxed)),
            (
                "arm_transient_retries",
                "requests retried after 5xx, timeouts or resets",
                r.transient_retries.load(Ordering::Relaxed),
            ),
            (
                "arm_principal_not_found_retries",
                "PrincipalNotFound answers retried (directory replication)",
                r.principal_retries.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in simple {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let secs = r.throttle_wait_millis.load(Ordering::Relaxed) as f64 / 1000.0;
        let c = ConstCounter::new(secs);
        c.encode(encoder.encode_descriptor(
            "arm_throttle_wait_seconds",
            "time spent waiting for Azure throttling",
            None,
            c.metric_type(),
        )?)?;
        Ok(())
    }
}

impl Collector for ResourceStates {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut counts: BTreeMap<(&'static str, bool, String), i64> = BTreeMap::new();
        for ((kind, _), (ready, reason)) in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            *counts.entry((kind, *ready, reason.clone())).or_default() += 1;
        }
        let g = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "resources",
            "custom resources by kind and Ready condition",
            None,
            g.metric_type(),
        )?;
        for ((kind, ready, reason), n) in counts {
            let labels =
                ConditionLabels { kind: kind.into(), ready: if ready { "True" } else { "False" }.into(), reason };
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The operator's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub shared_access_blocked: Family<ReasonLabels, Counter>,
    pub azure_writes: Family<WriteLabels, Counter>,
    pub grants_revoked: Family<ReasonLabels, Counter>,
    pub identity_findings: Family<FindingLabels, Gauge>,
    states: Arc<ResourceStates>,
}

impl Metrics {
    pub fn new(arm: Option<Arc<ArmStats>>) -> Metrics {
        let mut registry = Registry::with_prefix("iothub_access");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register("reconciles", "reconciles by kind and outcome", reconciles.clone());
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
        });
        registry.register("reconcile_duration_seconds", "reconcile duration by kind", reconcile_duration.clone());
        let shared_access_blocked = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "shared_access_blocked",
            "shared access Deny refused, by reason (DpsLinked, DpsCheckFailed, WouldLockOut, HubNotFound)",
            shared_access_blocked.clone(),
        );
        let azure_writes = Family::<WriteLabels, Counter>::default();
        registry.register("azure_writes", "Azure writes by action and outcome", azure_writes.clone());
        let grants_revoked = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "grants_revoked",
            "role assignments the operator made and revoked because their role no longer passes its role check, by reason",
            grants_revoked.clone(),
        );
        let identity_findings = Family::<FindingLabels, Gauge>::default();
        registry.register(
            "identity_findings",
            "what the operator's own Azure identity holds beyond what `setup` prints (OverPrivileged) or lacks for the kinds in use (MissingPermission), at the last check",
            identity_findings.clone(),
        );
        let states = Arc::new(ResourceStates::default());
        registry.register_collector(Box::new(states.clone()));
        if let Some(a) = arm {
            registry.register_collector(Box::new(ArmCollector(a)));
        }
        Metrics {
            registry,
            reconciles,
            reconcile_duration,
            shared_access_blocked,
            azure_writes,
            grants_revoked,
            identity_findings,
            states,
        }
    }

    /// Record a reconcile.
    pub fn reconciled(&self, kind: &str, outcome: &str, took: Duration) {
        self.reconciles.get_or_create(&ReconcileLabels { kind: kind.into(), outcome: outcome.into() }).inc();
        self.reconcile_duration.get_or_create(&KindLabels { kind: kind.into() }).observe(took.as_secs_f64());
    }

    /// A grant revoked because its role no longer passes (`reason`: why).
    pub fn grant_revoked(&self, reason: crate::reason::Reason) {
        self.grants_revoked.get_or_create(&ReasonLabels { reason: reason.as_str().into() }).inc();
    }

    /// The last self-check's findings, counted by kind (every kind present, 0 included).
    pub fn identity_checked(&self, counts: &[(crate::plan::identity_check::FindingKind, usize)]) {
        for (kind, n) in counts {
            self.identity_findings.get_or_create(&FindingLabels { finding: kind.as_str().into() }).set(*n as i64);
        }
    }

    /// Remember where a resource stands (for `iothub_access_resources`).
    pub fn set_state(&self, kind: &'static str, key: String, ready: bool, reason: &str) {
        self.states.0.lock().unwrap_or_else(|e| e.into_inner()).insert((kind, key), (ready, reason.to_string()));
    }

    /// Forget a deleted resource.
    pub fn forget(&self, kind: &'static str, key: &str) {
        self.states.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&(kind, key.to_string()));
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Health state shared with the HTTP server.
#[derive(Debug, Default)]
pub struct Health {
    /// Set once the controllers run (or wait as a standby replica).
    pub ready: AtomicBool,
}

/// Serve `/healthz`, `/readyz` and `/metrics` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let m = metrics.clone();
    let h = health.clone();
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let h = h.clone();
                async move {
                    if h.ready.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let m = m.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn health_readiness_and_metrics_are_served() {
        let metrics = Arc::new(Metrics::new(Some(Arc::new(ArmStats::default()))));
        metrics.reconciled("IotHubRoleAssignment", "ok", Duration::from_millis(12));
        metrics.set_state("IotHubSharedAccess", "ns/a".into(), false, "DpsLinked");
        metrics.shared_access_blocked.get_or_create(&ReasonLabels { reason: "DpsLinked".into() }).inc();
        let health = Arc::new(Health::default());
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr")
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(addr, metrics.clone(), health.clone(), async {
            let _ = rx.await;
        }));
        let http = reqwest::Client::new();
        let base = format!("http://{addr}");
        let mut ok = false;
        for _ in 0..50 {
            if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ok, "/healthz answers");
        assert_eq!(http.get(format!("{base}/readyz")).send().await.unwrap().status().as_u16(), 503, "not ready yet");
        health.ready.store(true, Ordering::Relaxed);
        assert_eq!(http.get(format!("{base}/readyz")).send().await.unwrap().status().as_u16(), 200);
        let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        for needle in [
            r#"iothub_access_reconciles_total{kind="IotHubRoleAssignment",outcome="ok"} 1"#,
            r#"iothub_access_reconcile_duration_seconds_count{kind="IotHubRoleAssignment"} 1"#,
            r#"iothub_access_resources{kind="IotHubSharedAccess",ready="False",reason="DpsLinked"} 1"#,
            r#"iothub_access_shared_access_blocked_total{reason="DpsLinked"} 1"#,
            "iothub_access_arm_throttle_waits_total 0",
        ] {
            assert!(text.lines().any(|l| l.starts_with(needle)), "missing {needle} in\n{text}");
        }
        // The registry's prefix is applied once, to collectors too.
        assert!(!text.contains("iothub_access_iothub_access"), "{text}");
        let _ = tx.send(());
        server.await.unwrap().unwrap();
    }
}

//! Benchmarks of the controller, in one process: the reconcilers, their caches (the reflector
//! stores and the shared observation), the real Azure client against the bundled emulator over
//! HTTP, and the in-memory Kubernetes API the controller tests use. Prints figures.
//!
//!     cargo bench --bench controller                 # all
//!     cargo bench --bench controller -- memory       # or: steady, latency
//!
//! - memory: resident memory (VmRSS) with 10,000 role assignments in the caches: the store of
//!   10,000 custom resources and an observation holding 10,000 Azure assignments. The emulator and
//!   the fake API server run in the same process; their share is measured before and subtracted.
//! - steady: one resync over 1,000 assignments on 10 hubs after they converged: Azure writes and
//!   reads, against the bound "distinct scopes plus hubs".
//! - latency: from a resource appearing to its Azure write, controller overhead only (no watch
//!   delay, no network latency): p50 and p99 over 500 new resources.

#[path = "../tests/controller/fake_api.rs"]
#[allow(dead_code)]
mod fake_api;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_api::FakeApi;
use iothub_access_emulator::{EmulatorConfig, EmulatorHandle, Seed};
use iothub_access_operator::azure::Azure;
use iothub_access_operator::azure::arm::ArmConfig;
use iothub_access_operator::azure::credential::{CloudEndpoints, CredentialKind};
use iothub_access_operator::azure::pacing::PacingConfig;
use iothub_access_operator::controller::guardrail::Guardrail;
use iothub_access_operator::controller::{Context, Settings, role_assignment};
use iothub_access_operator::crd::IotHubRoleAssignment;
use iothub_access_operator::domain::{Cloud, Scope};
use iothub_access_operator::telemetry::Metrics;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use uuid::Uuid;

const SUB: &str = "5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a";
const RG: &str = "rg-bench";
const TENANT: &str = "3c6f1d2e-8a4b-4f5c-9d7e-1a2b3c4d5e6f";
const CLIENT: &str = "2b1a0f9e-8d7c-4b6a-9e5d-4c3b2a1f0e9d";
const NS: &str = "bench";

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn seed(hubs: usize, existing: usize) -> Seed {
    let mut y = format!("tenantId: {TENANT}\nclients:\n  - clientId: {CLIENT}\n    secret: bench\nhubs:\n");
    for h in 0..hubs {
        y.push_str(&format!(
            "  - {{subscriptionId: {SUB}, resourceGroup: {RG}, name: bench-hub-{h:02}, location: westeurope}}\n"
        ));
    }
    if existing > 0 {
        y.push_str("roleAssignments:\n");
        for i in 0..existing {
            y.push_str(&format!(
                "  - {{scope: /subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Devices/IotHubs/bench-hub-{:02}, roleDefinitionId: b447c946-2db7-41ec-983d-d8bf3b1c77e3, principalId: {}, principalType: User}}\n",
                i % hubs,
                Uuid::new_v4()
            ));
        }
    }
    Seed::from_str_auto(&y).expect("seed")
}

fn assignment(i: usize, hubs: usize) -> IotHubRoleAssignment {
    serde_yaml::from_str(&format!(
        "apiVersion: iothubaccess.io/v1alpha1\nkind: IotHubRoleAssignment\nmetadata: {{name: ra-{i:05}, namespace: {NS}}}\nspec:\n  hub: {{subscriptionId: {SUB}, resourceGroup: {RG}, name: bench-hub-{:02}}}\n  principal: {{id: {}, type: ServicePrincipal}}\n  role: {{builtIn: IoTHubDataReader}}\n",
        i % hubs,
        Uuid::from_u128(0xbe00_0000_0000_4000_8000_0000_0000_0000 + i as u128)
    ))
    .expect("manifest")
}

struct Bench {
    emu: EmulatorHandle,
    api: FakeApi,
    ctx: Arc<Context>,
    writer: Writer<IotHubRoleAssignment>,
}

async fn bench(seed: Seed) -> Bench {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let emu = iothub_access_emulator::start(
        addr,
        EmulatorConfig { seed, accept_unknown_principals: true, ..EmulatorConfig::default() },
    )
    .await
    .expect("emulator");
    let url = emu.base_url();
    let mut cfg = ArmConfig::new(CloudEndpoints::new(Cloud::AzurePublicCloud, Some(&url), Some(&url)));
    // The emulator does not throttle here: without client pacing the figures are the
    // controller's own (the Azure side is measured by the `convergence` benchmark).
    cfg.pacing = PacingConfig::disabled();
    let kind =
        CredentialKind::ClientSecret { tenant_id: TENANT.into(), client_id: CLIENT.into(), secret: "bench".into() };
    let azure: Arc<dyn Azure> = iothub_access_operator::azure::args::connect(cfg, &kind).expect("client");
    let api = FakeApi::default();
    let client = api.client();
    let (roles, _) = reflector::store();
    let (assignments, writer) = reflector::store::<IotHubRoleAssignment>();
    let ctx = Context::new(
        client.clone(),
        azure,
        Guardrail::new([format!("/subscriptions/{SUB}")]),
        Arc::new(|_: &str| Ok(None)),
        Recorder::new(client, Reporter { controller: "iothub-access-operator".into(), instance: None }),
        Arc::new(Metrics::new(None)),
        roles,
        assignments,
        Settings::default(),
    );
    Bench { emu, api, ctx: Arc::new(ctx), writer }
}

impl Bench {
    /// Reconcile one resource until it settles (finalizer, then the Azure write and status).
    async fn reconcile(&self, name: &str) {
        for _ in 0..3 {
            let Some(obj) = self.api.get::<IotHubRoleAssignment>(NS, name) else { return };
            let before = obj.metadata.resource_version.clone();
            let _ = role_assignment::reconcile(Arc::new(obj), self.ctx.clone()).await;
            if self.api.get::<IotHubRoleAssignment>(NS, name).and_then(|o| o.metadata.resource_version) == before {
                return;
            }
        }
    }

    fn fill_store(&mut self) {
        self.writer.apply_watcher_event(&watcher::Event::Init);
        for o in self.api.all::<IotHubRoleAssignment>() {
            self.writer.apply_watcher_event(&watcher::Event::InitApply(o));
        }
        self.writer.apply_watcher_event(&watcher::Event::InitDone);
    }
}

async fn memory() {
    let n = 10_000;
    let hubs = 10;
    println!("\n== memory: {n} role assignments in the controller's caches");
    let base = rss_kib();
    let mut b = bench(seed(hubs, n)).await;
    for i in 0..n {
        b.api.put(&assignment(i, hubs));
    }
    let with_fixtures = rss_kib();
    b.fill_store();
    let obs = b.ctx.observer.get();
    for h in 0..hubs {
        let scope = Scope::parse(&format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Devices/IotHubs/bench-hub-{h:02}"
        ))
        .expect("scope");
        let held = obs.assignments_at(&scope).await.expect("list").len();
        assert!(held >= n / hubs);
    }
    let with_caches = rss_kib();
    println!(
        "  process before: {:.1} MiB; with emulator + fake API holding {n} of each: {:.1} MiB",
        base as f64 / 1024.0,
        with_fixtures as f64 / 1024.0
    );
    println!(
        "  with the controller's caches filled ({} objects in the store, {} Azure assignments observed): {:.1} MiB",
        b.ctx.assignments.state().len(),
        n,
        with_caches as f64 / 1024.0
    );
    let own = with_caches.saturating_sub(with_fixtures) + base;
    println!(
        "  controller share (caches + runtime, test doubles subtracted): {:.1} MiB (target: under 100 MiB)",
        own as f64 / 1024.0
    );
    b.emu.shutdown().await;
}

async fn steady() {
    let n = 1000;
    let hubs = 10;
    println!("\n== steady state: one resync over {n} assignments on {hubs} hubs");
    let mut b = bench(seed(hubs, 0)).await;
    for i in 0..n {
        b.api.put(&assignment(i, hubs));
    }
    b.fill_store();
    let t = Instant::now();
    for i in 0..n {
        b.reconcile(&format!("ra-{i:05}")).await;
    }
    println!("  first reconcile of all: {:.1} s, {} Azure writes", t.elapsed().as_secs_f64(), b.emu.stats().writes());
    b.fill_store();
    b.ctx.observer.rotate();
    b.emu.reset_stats();
    let status_before = b.api.status_writes();
    let t = Instant::now();
    for i in 0..n {
        b.reconcile(&format!("ra-{i:05}")).await;
    }
    let s = b.emu.stats();
    println!("  resync: {:.2} s for {n} reconciles", t.elapsed().as_secs_f64());
    println!(
        "  Azure writes: {}; Azure reads: {} (bound: {} distinct scopes); status writes: {}",
        s.writes(),
        s.reads(),
        hubs,
        b.api.status_writes() - status_before
    );
    for (op, by) in &s.requests {
        println!("    {op:<28} {by:?}");
    }
    b.emu.shutdown().await;
}

async fn latency() {
    let n = 500;
    let hubs = 10;
    println!("\n== latency: resource appears -> Azure write, controller overhead only, {n} resources");
    let mut b = bench(seed(hubs, 0)).await;
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("ra-{i:05}");
        b.api.put(&assignment(i, hubs));
        b.fill_store();
        let t = Instant::now();
        b.reconcile(&name).await;
        took.push(t.elapsed());
        // Each resource is new: a new observation as after a watch event in a fresh period.
        b.ctx.observer.rotate();
    }
    took.sort();
    let p = |q: f64| took[((took.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (Azure writes: {})",
        ms(p(0.5)),
        ms(p(0.99)),
        ms(p(1.0)),
        b.emu.stats().writes()
    );
    b.emu.shutdown().await;
}

fn main() {
    iothub_access_operator::install_crypto_provider();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        if want("memory") {
            memory().await;
        }
        if want("steady") {
            steady().await;
        }
        if want("latency") {
            latency().await;
        }
    });
}

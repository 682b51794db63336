//! Benchmarks of the controller, in one process: the reconcilers, their caches (the reflector
//! stores and the shared observation), the real Azure client against the bundled emulator over
//! HTTP, and the in-memory Kubernetes API the controller tests use. Prints figures.
//!
//!     cargo bench --bench controller                 # all
//!     cargo bench --bench controller -- memory       # or: steady, latency, fair
//!
//! - memory: resident memory (VmRSS) with 10,000 role assignments in the caches: the store of
//!   10,000 custom resources and an observation holding 10,000 Azure assignments. The emulator and
//!   the fake API server run in the same process; their share is measured before and subtracted.
//! - steady: one resync over 1,000 assignments on 10 hubs after they converged: Azure writes and
//!   reads, against the bound "distinct scopes plus hubs".
//! - latency: from a resource appearing to its Azure write, controller overhead only (no watch
//!   delay, no network latency): p50 and p99 over 500 new resources.
//! - fair: one namespace floods 1,000 new resources, then another namespace creates 20; Azure
//!   answers every request after 20 ms. Every reconcile starts at once, as kube-runtime starts
//!   every due reconcile (`concurrency(0)`), and waits for its turn among the namespaces
//!   (`controller/fair.rs`). Prints p50/p99/max of the other namespace's time from its resource
//!   appearing to its grant written in Azure, with the fair turns and, for comparison, without
//!   them (every reconcile running at once).

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
use iothub_access_operator::controller::{Context, Parts, Settings, Stores, role_assignment};
use iothub_access_operator::crd::IotHubRoleAssignment;
use iothub_access_operator::domain::{Cloud, Scope};
use iothub_access_operator::gate::{Gate, Guardrail};
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
    assignment_in(NS, i, hubs)
}

fn assignment_in(ns: &str, i: usize, hubs: usize) -> IotHubRoleAssignment {
    serde_yaml::from_str(&format!(
        "apiVersion: iothubaccess.io/v1alpha1\nkind: IotHubRoleAssignment\nmetadata: {{name: ra-{i:05}, namespace: {ns}}}\nspec:\n  hub: {{subscriptionId: {SUB}, resourceGroup: {RG}, name: bench-hub-{:02}}}\n  principal: {{id: {}, type: ServicePrincipal}}\n  role: {{builtIn: IoTHubDataReader}}\n",
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
    /// Kept so that the custom role cache counts as synced (empty).
    _custom_roles: Writer<iothub_access_operator::crd::IotHubCustomRole>,
}

async fn bench(seed: Seed) -> Bench {
    bench_with(seed, Settings::default()).await
}

async fn bench_with(seed: Seed, settings: Settings) -> Bench {
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
    let (custom_roles, mut roles_writer) = reflector::store();
    roles_writer.apply_watcher_event(&watcher::Event::Init);
    roles_writer.apply_watcher_event(&watcher::Event::InitDone);
    let (shared_access, _) = reflector::store();
    let (assignments, writer) = reflector::store::<IotHubRoleAssignment>();
    let ctx = Context::new(Parts {
        client: client.clone(),
        azure,
        gate: Gate::new(Guardrail::new([Scope::Subscription(SUB.into())]), vec![]),
        recorder: Recorder::new(client, Reporter { controller: "iothub-access-operator".into(), instance: None }),
        metrics: Arc::new(Metrics::new(None)),
        stores: Stores { custom_roles, assignments, shared_access },
        settings,
    });
    Bench { emu, api, ctx: Arc::new(ctx), writer, _custom_roles: roles_writer }
}

/// Reconcile one resource until it settles (finalizer, then the Azure write and status).
async fn settle(api: &FakeApi, ctx: &Arc<Context>, ns: &str, name: &str) {
    for _ in 0..3 {
        let Some(obj) = api.get::<IotHubRoleAssignment>(ns, name) else { return };
        let before = obj.metadata.resource_version.clone();
        let _ = role_assignment::reconcile(Arc::new(obj), ctx.clone()).await;
        if api.get::<IotHubRoleAssignment>(ns, name).and_then(|o| o.metadata.resource_version) == before {
            return;
        }
    }
}

impl Bench {
    async fn reconcile(&self, name: &str) {
        settle(&self.api, &self.ctx, NS, name).await
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

/// One run of the fairness scenario with `turns` reconciles in flight; the other namespace's
/// times from its resource appearing to its grant being in Azure.
async fn flood(turns: usize) -> (Vec<Duration>, Duration) {
    let (flood, others, hubs) = (1000, 20, 10);
    let settings = Settings { reconcile_concurrency: turns, ..Settings::default() };
    let mut b = bench_with(seed(hubs, 0), settings).await;
    b.emu.set_faults(iothub_access_emulator::Faults { latency: Duration::from_millis(20), ..Default::default() });
    for i in 0..flood {
        b.api.put(&assignment_in("flood", i, hubs));
    }
    b.fill_store();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..flood {
        let (api, ctx) = (b.api.clone(), b.ctx.clone());
        tasks.push(tokio::spawn(async move { settle(&api, &ctx, "flood", &format!("ra-{i:05}")).await }));
    }
    // The flood is under way (its first grants are being written) when the other team applies.
    while b.emu.stats().writes() < 10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for i in 0..others {
        b.api.put(&assignment_in("team-b", flood + i, hubs));
    }
    b.fill_store();
    let mut waits = Vec::new();
    for i in 0..others {
        let (api, ctx) = (b.api.clone(), b.ctx.clone());
        waits.push(tokio::spawn(async move {
            let t = Instant::now();
            settle(&api, &ctx, "team-b", &format!("ra-{:05}", flood + i)).await;
            t.elapsed()
        }));
    }
    let mut took = Vec::new();
    for w in waits {
        took.push(w.await.expect("task"));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let all = started.elapsed();
    let granted = b.emu.snapshot().role_assignments.len();
    assert_eq!(granted, flood + others, "every grant written");
    b.emu.shutdown().await;
    took.sort();
    (took, all)
}

async fn fair() {
    println!("\n== fair: another namespace's first writes while one namespace floods 1,000 (Azure: 20 ms a request)");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (label, turns) in [
        ("fair turns (24 in flight, the default)", Settings::default().reconcile_concurrency),
        ("no turns (every reconcile at once)", 1_000_000),
    ] {
        let (took, all) = flood(turns).await;
        let p = |q: f64| took[((took.len() as f64 - 1.0) * q).round() as usize];
        println!(
            "  {label}: team-b p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; all 1,020 converged in {:.1} s",
            ms(p(0.5)),
            ms(p(0.99)),
            ms(p(1.0)),
            all.as_secs_f64()
        );
    }
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
        if want("fair") {
            fair().await;
        }
    });
}

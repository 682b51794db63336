//! Benchmarks of the Azure side, against the bundled emulator over real HTTP. Prints figures;
//! asserts nothing about time.
//!
//!     cargo bench --bench convergence                  # all three
//!     cargo bench --bench convergence -- steady        # or: convergence, faults, interlock
//!
//! - steady: a second `apply` over 1,000 role assignments on 10 hubs (plus 10 shared-access
//!   resources): Azure writes, role assignment lists and hub reads, against the bound
//!   "one list per distinct scope plus one read per hub".
//! - convergence: 1,000 new assignments with ARM's write bucket (200 burst, 10/s) and 20 ms of
//!   latency per request; the bucket alone sets (1000 - 200) / 10 = 80 s.
//! - faults: 1,000 new assignments with 10% 5xx, 5% 429 and 2% connection resets (half of them
//!   after the write was done); every assignment must converge exactly once and no assignment
//!   the manifests do not own may disappear.
//! - interlock: the SAS interlock's window (fresh read of every subscription's DPS and Device
//!   Update instances started -> hub write finished) over 10 Deny writes, with 100 ms of latency
//!   per ARM request and 5 subscriptions in reach; and the ARM requests one Deny costs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iothub_access_emulator::{EmulatorConfig, EmulatorHandle, Faults, Seed, ThrottleConfig};
use iothub_access_operator::azure::Azure;
use iothub_access_operator::azure::args::connect;
use iothub_access_operator::azure::arm::{ArmClient, ArmConfig};
use iothub_access_operator::azure::credential::{CloudEndpoints, CredentialKind};
use iothub_access_operator::cli::reconcile::{Policy, apply_manifests};
use iothub_access_operator::cli::report::Summary;
use iothub_access_operator::domain::Cloud;
use iothub_access_operator::manifest::{self, Manifests};
use uuid::Uuid;

const SUB: &str = "5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a";
const RG: &str = "rg-bench";
const TENANT: &str = "3c6f1d2e-8a4b-4f5c-9d7e-1a2b3c4d5e6f";
const CLIENT: &str = "2b1a0f9e-8d7c-4b6a-9e5d-4c3b2a1f0e9d";
const HUBS: usize = 10;
const ASSIGNMENTS: usize = 1000;
const CONCURRENCY: usize = 32;

fn seed(foreign: usize) -> Seed {
    let mut y = format!("tenantId: {TENANT}\nclients:\n  - clientId: {CLIENT}\n    secret: bench\nhubs:\n");
    for h in 0..HUBS {
        y.push_str(&format!(
            "  - {{subscriptionId: {SUB}, resourceGroup: {RG}, name: bench-hub-{h:02}, location: westeurope}}\n"
        ));
    }
    if foreign > 0 {
        y.push_str("roleAssignments:\n");
        for i in 0..foreign {
            let hub = format!(
                "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Devices/IotHubs/bench-hub-{:02}",
                i % HUBS
            );
            y.push_str(&format!(
                "  - {{scope: {hub}, roleDefinitionId: b447c946-2db7-41ec-983d-d8bf3b1c77e3, principalId: {}, principalType: User}}\n",
                Uuid::new_v4()
            ));
        }
    }
    Seed::from_str_auto(&y).expect("bench seed")
}

/// 1,000 assignments spread over the hubs (built-in roles alternate), plus one Allow SAS per hub.
fn manifests() -> Manifests {
    let roles = ["IoTHubDataReader", "IoTHubRegistryContributor", "IoTHubTwinContributor", "IoTHubDataContributor"];
    let mut docs = String::new();
    for i in 0..ASSIGNMENTS {
        docs.push_str(&format!(
            "---\napiVersion: iothubaccess.io/v1alpha1\nkind: IotHubRoleAssignment\nmetadata: {{name: ra-{i:04}, namespace: bench}}\nspec:\n  hub: {{subscriptionId: {SUB}, resourceGroup: {RG}, name: bench-hub-{:02}}}\n  principal: {{id: {}, type: ServicePrincipal}}\n  role: {{builtIn: {}}}\n",
            i % HUBS,
            Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 + i as u128),
            roles[i % roles.len()]
        ));
    }
    for h in 0..HUBS {
        docs.push_str(&format!(
            "---\napiVersion: iothubaccess.io/v1alpha1\nkind: IotHubSharedAccess\nmetadata: {{name: sas-{h:02}, namespace: bench}}\nspec:\n  hub: {{subscriptionId: {SUB}, resourceGroup: {RG}, name: bench-hub-{h:02}}}\n  sharedAccessPolicies: Allow\n"
        ));
    }
    let m = manifest::parse_sources([("bench.yaml", docs.as_str())]);
    assert!(m.errors.is_empty(), "{:?}", m.errors.first());
    m
}

async fn start(config: EmulatorConfig) -> EmulatorHandle {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    iothub_access_emulator::start(addr, config).await.expect("emulator")
}

fn client(emu: &EmulatorHandle, tweak: impl FnOnce(&mut ArmConfig)) -> Arc<ArmClient> {
    let url = emu.base_url();
    let mut cfg = ArmConfig::new(CloudEndpoints::new(Cloud::AzurePublicCloud, Some(&url), Some(&url)));
    tweak(&mut cfg);
    let kind =
        CredentialKind::ClientSecret { tenant_id: TENANT.into(), client_id: CLIENT.into(), secret: "bench".into() };
    connect(cfg, &kind).expect("client")
}

fn print_ops(title: &str, ops: &BTreeMap<String, BTreeMap<u16, u64>>) {
    println!("  {title}:");
    for (op, by_status) in ops {
        let parts: Vec<String> = by_status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        println!("    {op:<32} {}", parts.join(", "));
    }
}

async fn steady() {
    println!(
        "\n== steady state: second apply over {ASSIGNMENTS} role assignments on {HUBS} hubs (+{HUBS} shared-access resources)"
    );
    let emu =
        start(EmulatorConfig { seed: seed(0), accept_unknown_principals: true, ..EmulatorConfig::default() }).await;
    let c = client(&emu, |_| {});
    let azure: Arc<dyn Azure> = c.clone();
    let m = manifests();
    let t = Instant::now();
    let first = apply_manifests(azure.clone(), &m, CONCURRENCY, &Policy::default()).await;
    println!(
        "  first apply: {} writes in {:.1} s, {} pass(es)",
        first.applied.len(),
        t.elapsed().as_secs_f64(),
        first.passes
    );
    emu.reset_stats();
    let t = Instant::now();
    let second = apply_manifests(azure, &m, CONCURRENCY, &Policy::default()).await;
    let took = t.elapsed();
    let s = emu.stats();
    let lists = s.count("roleAssignments.list");
    let hub_reads = s.count("iotHubs.get");
    let bound = HUBS + HUBS;
    println!(
        "  second apply: {:.2} s, {} pass(es), summary {:?}",
        took.as_secs_f64(),
        second.passes,
        Summary::of(&second.final_plans)
    );
    println!("  Azure writes: {}", s.writes());
    println!("  role assignment lists: {lists} (distinct scopes: {HUBS})");
    println!("  hub reads: {hub_reads} (hubs: {HUBS})");
    println!(
        "  all reads: {} (bound: {bound} = {HUBS} scopes + {HUBS} hubs) -> {}",
        s.reads(),
        if s.reads() as usize <= bound && s.writes() == 0 { "within bound" } else { "OVER BOUND" }
    );
    print_ops("requests by operation", &s.requests);
    emu.shutdown().await;
}

async fn convergence() {
    println!("\n== convergence: {ASSIGNMENTS} new assignments, ARM write bucket 200 burst + 10/s, 20 ms latency");
    let emu = start(EmulatorConfig {
        seed: seed(0),
        accept_unknown_principals: true,
        throttle: Some(ThrottleConfig::arm_default()),
        ..EmulatorConfig::default()
    })
    .await;
    emu.set_faults(Faults { latency: Duration::from_millis(20), ..Faults::default() });
    let c = client(&emu, |_| {});
    let azure: Arc<dyn Azure> = c.clone();
    let m = manifests();
    let t = Instant::now();
    let report = apply_manifests(azure, &m, CONCURRENCY, &Policy::default()).await;
    let took = t.elapsed().as_secs_f64();
    let s = emu.stats();
    let failed = report.failed().count();
    let created = s.count_status("roleAssignments.create", 201) + s.count_status("roleAssignments.create", 200);
    let bound = (ASSIGNMENTS as f64 - 200.0) / 10.0;
    println!(
        "  converged in {took:.1} s; bucket bound {bound:.0} s; ratio {:.3} ({})",
        took / bound,
        if took <= bound * 1.1 { "within 10%" } else { "MORE THAN 10% OVER" }
    );
    println!("  assignments created: {created}; writes failed for the user: {failed}; passes: {}", report.passes);
    println!("  429 answers from the emulator: {} (absorbed by pacing and retries)", s.throttled());
    println!(
        "  client throttle waits: {}",
        c.stats().retries.throttle_waits.load(std::sync::atomic::Ordering::Relaxed)
    );
    print_ops("requests by operation", &s.requests);
    emu.shutdown().await;
}

async fn faults() {
    println!("\n== fault run: {ASSIGNMENTS} new assignments with 10% 5xx, 5% 429, 2% connection resets");
    let foreign = 50;
    let emu =
        start(EmulatorConfig { seed: seed(foreign), accept_unknown_principals: true, ..EmulatorConfig::default() })
            .await;
    let before: Vec<String> = emu.snapshot().role_assignments.iter().map(|a| a.name.clone()).collect();
    emu.set_faults(Faults {
        error_rate: 0.10,
        throttle_rate: 0.05,
        throttle_retry_after_secs: 1,
        reset_before_rate: 0.01,
        reset_after_rate: 0.01,
        rng_seed: Some(42),
        ..Faults::default()
    });
    let c = client(&emu, |cfg| cfg.retry.max_attempts = 10);
    let azure: Arc<dyn Azure> = c.clone();
    let m = manifests();
    let t = Instant::now();
    let report = apply_manifests(azure, &m, CONCURRENCY, &Policy::default()).await;
    let took = t.elapsed().as_secs_f64();
    emu.set_faults(Faults::default());
    let snap = emu.snapshot();
    let mut per_grant: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for a in &snap.role_assignments {
        *per_grant
            .entry((
                a.scope.to_ascii_lowercase(),
                a.role_definition_id.rsplit('/').next().unwrap_or("").to_string(),
                a.principal_id.to_ascii_lowercase(),
            ))
            .or_default() += 1;
    }
    let duplicated = per_grant.values().filter(|n| **n > 1).count();
    let missing_foreign = before.iter().filter(|n| !snap.role_assignments.iter().any(|a| &a.name == *n)).count();
    let s = emu.stats();
    let r = &c.stats().retries;
    println!(
        "  took {took:.1} s over {} pass(es); summary after: {:?}",
        report.passes,
        Summary::of(&report.final_plans)
    );
    println!(
        "  assignments in Azure: {} (expected {} = {ASSIGNMENTS} + {foreign} not owned)",
        snap.role_assignments.len(),
        ASSIGNMENTS + foreign
    );
    println!("  duplicated grants: {duplicated}; not-owned assignments deleted: {missing_foreign}");
    println!(
        "  faults injected: {}; client retries: {} transient, {} throttle waits",
        s.faults_injected(),
        r.transient_retries.load(std::sync::atomic::Ordering::Relaxed),
        r.throttle_waits.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!("  writes that failed for the user (then retried in a later pass): {}", report.failed().count());
    print_ops("requests by operation", &s.requests);
    emu.shutdown().await;
}

async fn interlock() {
    const SUBS: usize = 5;
    let mut y = format!("tenantId: {TENANT}\nclients:\n  - clientId: {CLIENT}\n    secret: bench\nhubs:\n");
    for h in 0..HUBS {
        y.push_str(&format!(
            "  - {{subscriptionId: {SUB}, resourceGroup: {RG}, name: bench-hub-{h:02}, location: westeurope}}\n"
        ));
    }
    y.push_str("resourceGroups:\n");
    for s in 0..SUBS {
        y.push_str(&format!(
            "  - {{subscriptionId: 0000000{s}-1111-4222-8333-444444444444, name: rg-dps, location: westeurope}}\n"
        ));
    }
    y.push_str("provisioningServices:\n");
    for s in 0..SUBS {
        y.push_str(&format!("  - {{subscriptionId: 0000000{s}-1111-4222-8333-444444444444, resourceGroup: rg-dps, name: dps-{s}, location: westeurope, links: []}}\n"));
    }
    y.push_str("roleAssignments:\n");
    for h in 0..HUBS {
        y.push_str(&format!(
            "  - {{scope: /subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Devices/IotHubs/bench-hub-{h:02}, roleDefinitionId: b447c946-2db7-41ec-983d-d8bf3b1c77e3, principalId: {}, principalType: User}}\n",
            Uuid::new_v4()
        ));
    }
    let seed = Seed::from_str_auto(&y).expect("interlock seed");
    let faults = Faults { latency: Duration::from_millis(100), ..Faults::default() };
    let emu =
        start(EmulatorConfig { seed, faults, accept_unknown_principals: true, ..EmulatorConfig::default() }).await;
    let azure: Arc<dyn Azure> = client(&emu, |_| {});
    // Warm the token and the provider registrations, as a running operator has them.
    let _ = azure.list_subscriptions().await;
    let change = iothub_access_operator::azure::HubAccessChange {
        shared_access: Some(iothub_access_operator::crd::Access::Deny),
        ..Default::default()
    };
    let mut windows = Vec::new();
    let before = emu.stats().total();
    for h in 0..HUBS {
        let hub = iothub_access_operator::domain::HubId::new(SUB, RG, format!("bench-hub-{h:02}"));
        let started = Instant::now();
        let iothub_access_operator::interlock::HubOutcome { outcome, window, .. } =
            iothub_access_operator::interlock::deny(azure.clone(), &hub, &change).await;
        assert_eq!(outcome, iothub_access_operator::outcome::Outcome::Done, "bench-hub-{h:02}");
        windows.push((window.expect("written"), started.elapsed()));
    }
    let per_deny = (emu.stats().total() - before) as f64 / HUBS as f64;
    windows.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("interlock: {HUBS} Deny writes, {SUBS} subscriptions with a DPS each + the hub's, 100 ms per ARM request");
    println!(
        "  window (fresh read started -> write done): min {:.0} ms, median {:.0} ms, max {:.0} ms",
        ms(windows[0].0),
        ms(windows[HUBS / 2].0),
        ms(windows[HUBS - 1].0)
    );
    println!("  whole Deny incl. the check after the write: median {:.0} ms", ms(windows[HUBS / 2].1));
    println!("  ARM requests per Deny: {per_deny:.1}");
    emu.shutdown().await;
}

fn main() {
    iothub_access_operator::install_crypto_provider();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        if want("steady") {
            steady().await;
        }
        if want("convergence") {
            convergence().await;
        }
        if want("faults") {
            faults().await;
        }
        if want("interlock") {
            interlock().await;
        }
    });
}

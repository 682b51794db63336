//! Proof runs on the real API server, shared by the short versions in `tests/cluster` and the full
//! ones in `benches/cluster.rs`: a crash soak (kill -9 the operator at random moments while Azure
//! misbehaves) and the resident memory of `run` with many resources. Both print their figures.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use iothub_access_emulator::{EmulatorConfig, Faults, Seed};
use iothub_access_operator::domain::naming::Owner;
use iothub_access_operator::domain::{BuiltInRole, Grant, Scope};
use iothub_access_operator::manifest::{self, Resource};
use kube::Client;
use rand::Rng;
use serde_json::Value;
use uuid::Uuid;

use super::cluster::*;
use super::envtest::EnvTest;
use super::*;

const ROLES: [BuiltInRole; 4] = [
    BuiltInRole::IoTHubDataReader,
    BuiltInRole::IoTHubRegistryContributor,
    BuiltInRole::IoTHubTwinContributor,
    BuiltInRole::IoTHubDataContributor,
];

fn principal(i: usize) -> String {
    Uuid::from_u128(0x50a6_0000_0000_4000_8000_0000_0000_0000 + i as u128).to_string()
}

fn hub(i: usize) -> &'static str {
    if i.is_multiple_of(2) { FACTORY_HUB } else { FLEET_HUB }
}

/// `n` role assignments, each for a principal of its own, over the demo's two hubs.
pub fn assignments(n: usize) -> Vec<Resource> {
    let mut docs = String::new();
    for i in 0..n {
        docs.push_str(&format!(
            "---\napiVersion: iothubaccess.io/v1alpha1\nkind: IotHubRoleAssignment\nmetadata: {{name: ra-{i:05}}}\nspec:\n  hub: {{subscriptionId: {SUB}, resourceGroup: {RG}, name: {}}}\n  principal: {{id: {}, type: ServicePrincipal}}\n  role: {{builtIn: {:?}}}\n",
            hub(i),
            principal(i),
            ROLES[i % ROLES.len()]
        ));
    }
    let m = manifest::parse_sources([("proof.yaml", docs.as_str())]);
    assert!(m.errors.is_empty(), "{:?}", m.errors.first());
    m.valid_resources().map(|d| d.resource.clone()).collect()
}

/// What the soak found.
#[derive(Debug)]
pub struct SoakReport {
    pub resources: usize,
    pub kills: usize,
    /// Kills that landed while some resource was not Ready yet.
    pub kills_mid_work: usize,
    pub converged_in: Duration,
    pub faults_injected: u64,
    pub writes: u64,
    pub duplicates: usize,
    pub leaked: usize,
    pub missing: usize,
    pub not_ready: usize,
}

/// Converge `n` assignments while the emulator injects 10% 5xx, 5% 429 and 2% resets, killing
/// the operator with SIGKILL `kills` times at random moments and restarting it.
pub async fn crash_soak(server: &EnvTest, client: &Client, ns: &str, n: usize, kills: usize) -> SoakReport {
    let faults = Faults {
        error_rate: 0.10,
        throttle_rate: 0.05,
        throttle_retry_after_secs: 1,
        reset_before_rate: 0.01,
        reset_after_rate: 0.01,
        // Azure's own pace, so that the kills land while work is in flight.
        latency: Duration::from_millis(60),
        latency_jitter: Duration::from_millis(60),
        ..Faults::default()
    };
    let emu = emulator(DEMO_SEED, |c: &mut EmulatorConfig| {
        c.accept_unknown_principals = true;
        c.faults = faults;
    })
    .await;
    let url = emu.base_url();
    let args = ["--resync-interval", "10s"];
    let mut op = Operator::start(server, &url, ns, "soak-0", &args);
    let started = Instant::now();
    apply(client, ns, &assignments(n)).await;
    let mut mid_work = 0;
    for k in 1..=kills {
        let wait = Duration::from_millis(rand::rng().random_range(300..2500));
        tokio::time::sleep(wait).await;
        if objects(client, ns).await.iter().any(|v| !ready(v)) {
            mid_work += 1;
        }
        op.kill();
        op = Operator::start(server, &url, ns, &format!("soak-{k}"), &args);
    }
    let budget = 120 + n as u64;
    let all = eventually(
        "every soak resource Ready",
        budget,
        || objects(client, ns),
        |v: &Vec<Value>| v.len() == n && v.iter().all(ready),
    )
    .await;
    let converged_in = started.elapsed();
    let stats = emu.stats();
    drop(op);

    // Azure against the desire: one grant per principal at its hub with its role, nothing else.
    let snap = emu.snapshot();
    let mut found: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for a in &snap.role_assignments {
        found
            .entry(a.principal_id.to_lowercase())
            .or_default()
            .push((a.scope.to_lowercase(), a.role_definition_id.to_lowercase()));
    }
    let (mut duplicates, mut missing) = (0, 0);
    for i in 0..n {
        let want_scope = hub_scope(hub(i)).to_lowercase();
        let want_role = ROLES[i % ROLES.len()].guid().to_string();
        let grants = found.remove(&principal(i)).unwrap_or_default();
        let matching = grants.iter().filter(|(s, r)| *s == want_scope && r.ends_with(&want_role)).count();
        if matching == 0 {
            missing += 1;
        }
        duplicates += grants.len().saturating_sub(1);
    }
    let demo_principals = [TELEMETRY_SP, SYNC_SP, OPS_GROUP];
    let leaked = found.keys().filter(|p| !demo_principals.contains(&p.as_str())).count();
    let report = SoakReport {
        resources: n,
        kills,
        kills_mid_work: mid_work,
        converged_in,
        faults_injected: stats.faults_injected(),
        writes: stats.writes(),
        duplicates,
        leaked,
        missing,
        not_ready: all.iter().filter(|v| !ready(v)).count(),
    };
    println!(
        "crash soak: {} role assignments, {} kill -9 + restart ({} while work was pending), {} faults injected \
         (10% 5xx, 5% 429, 2% resets): converged in {:.1} s with {} Azure writes; duplicates {}, leaked {}, \
         missing {}, not Ready {}",
        report.resources,
        report.kills,
        report.kills_mid_work,
        report.faults_injected,
        report.converged_in.as_secs_f64(),
        report.writes,
        report.duplicates,
        report.leaked,
        report.missing,
        report.not_ready
    );
    report
}

/// Resident memory of a process, from `/proc/PID/status` (kB lines `VmRSS`, `VmHWM`), in MiB.
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The emulator's Azure already holding every grant of [`assignments`] (in namespace `ns`) under
/// the names operator instance `instance` derives: reconciling `n` resources is then reads and
/// status writes only, as in a steady cluster.
pub fn converged_seed(n: usize, instance: &str, ns: &str) -> Seed {
    let mut seed = Seed::from_str_auto(DEMO_SEED).expect("seed");
    for i in 0..n {
        let scope = Scope::parse(&hub_scope(hub(i))).expect("scope");
        let role = ROLES[i % ROLES.len()].guid();
        seed.role_assignments.push(iothub_access_emulator::RoleAssignment {
            name: Owner::new(instance, ns, &format!("ra-{i:05}"))
                .assignment_name(&Grant::new(scope, role, &principal(i)))
                .to_string(),
            scope: hub_scope(hub(i)),
            role_definition_id: role.to_string(),
            principal_id: principal(i),
            principal_type: Some("ServicePrincipal".into()),
            ..Default::default()
        });
    }
    seed
}

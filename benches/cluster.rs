//! Proof runs on the real Kubernetes API server (`scripts/envtest`), printing figures:
//!
//!     cargo bench --bench cluster                 # both
//!     cargo bench --bench cluster -- soak         # or: memory
//!
//! - soak: while `run` converges 200 role assignments with the emulator injecting 10% 5xx, 5% 429
//!   and 2% resets, it is killed with SIGKILL at random moments 10 times and restarted; at the end
//!   Azure must hold exactly the desired grants (0 duplicates, 0 leaked, 0 missing) and every
//!   resource must be Ready. A short version runs in CI (`tests/cluster/soak.rs`).
//! - memory: resident memory of the `run` process, read from outside (`/proc/PID/status`), with
//!   10,000 `IotHubRoleAssignment` resources served by the real API server and reconciled (Azure
//!   already holds their grants, so the run is reads and status writes), beside 10,000 unrelated
//!   ConfigMaps (the operator watches ConfigMaps by metadata for `principal.idFrom`). Target:
//!   under 100 MiB.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use iothub_access_emulator::EmulatorConfig;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::cluster::*;
use support::proof::{assignments, converged_seed, crash_soak, memory_mib};

async fn soak() {
    println!("\n== crash soak on the real API server");
    let Some((server, client, ns)) = setup("bench-soak").await else { return };
    let r = crash_soak(server, &client, &ns, 200, 10).await;
    let ok = (r.duplicates, r.leaked, r.missing, r.not_ready) == (0, 0, 0, 0);
    println!("  verdict: {}", if ok { "PASS (exactly the desired grants)" } else { "FAIL" });
    assert!(ok, "{r:#?}");
}

async fn memory() {
    const N: usize = 10_000;
    println!("\n== memory of `run` with {N} role assignments and {N} unrelated ConfigMaps on the real API server");
    let Some((server, client, ns)) = setup("bench-memory").await else { return };
    let emu = support::emulator(support::DEMO_SEED, |c: &mut EmulatorConfig| {
        c.seed = converged_seed(N, "bench", &ns);
        c.accept_unknown_principals = true;
    })
    .await;
    let t = Instant::now();
    apply(&client, &ns, &assignments(N)).await;
    println!("  {N} resources created in {:.1} s", t.elapsed().as_secs_f64());
    // As many unrelated ConfigMaps (1 KiB of data each): the operator watches ConfigMaps (by
    // metadata) for `principal.idFrom`, and must not grow with them.
    let t = Instant::now();
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    futures::stream::iter(0..N)
        .map(|i| {
            let api = config_maps.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("unrelated-{i}")},
                    "data": {"settings": "x".repeat(1024)}
                }))
                .expect("a ConfigMap");
                api.create(&PostParams::default(), &cm).await.expect("ConfigMap created");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    println!("  {N} unrelated ConfigMaps created in {:.1} s", t.elapsed().as_secs_f64());
    let op = Operator::start(
        server,
        &emu.base_url(),
        &ns,
        "memory",
        &["--reconcile-concurrency", "16", "--instance-id", "bench"],
    );
    let t = Instant::now();
    // Listing 10,000 objects loads the API server as much as the operator does: look rarely.
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let ready_now = objects(&client, &ns).await.iter().filter(|v| ready(v)).count();
        let (rss, _) = memory_mib(op.pid());
        println!("  {:>5.0} s: {ready_now} Ready, VmRSS {rss:.1} MiB", t.elapsed().as_secs_f64());
        if ready_now == N {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(2400), "not all Ready after 40 min:\n{}", op.log_tail());
    }
    println!("  all {N} Ready in {:.1} s", t.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss, hwm) = memory_mib(op.pid());
    println!("  run process: VmRSS {rss:.1} MiB after convergence, VmHWM (peak) {hwm:.1} MiB; target < 100 MiB");
    println!("  (in-process figure for the controller's caches: `cargo bench --bench controller -- memory`)");
    let stats = emu.stats();
    println!("  Azure: {} reads, {} writes", stats.reads(), stats.writes());
}

#[tokio::main]
async fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if want("soak") {
        soak().await;
    }
    if want("memory") {
        memory().await;
    }
}

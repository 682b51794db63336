//! Leader election on real Leases: two replicas, one writes. Killing the leader hands over within
//! the lease duration; a leader whose Lease was taken before it noticed (as after a partition
//! from the API server) has its Azure write withheld by the fence, stops, and the next holder
//! makes the grant.

use std::time::{Duration, Instant};

use iothub_access_operator::crd::IotHubRoleAssignment;
use k8s_openapi::api::coordination::v1::Lease;

use super::*;

const LEASE: &str = "iothub-access-operator";
const LEASE_DURATION: Duration = Duration::from_secs(15);

async fn holder(client: &Client, ns: &str) -> Option<String> {
    let lease = Api::<Lease>::namespaced(client.clone(), ns).get_opt(LEASE).await.expect("lease readable")?;
    lease.spec?.holder_identity.filter(|h| !h.is_empty())
}

/// The operators example for another principal, under another name (same hub, built-in role).
fn second_grant() -> Vec<Resource> {
    let mut docs = manifests(&["examples/role-assignment-operators.yaml"]);
    if let Resource::RoleAssignment(r) = &mut docs[0] {
        r.metadata.name = Some("second-grant".into());
        r.spec.principal.id = Some(TELEMETRY_SP.into());
        r.spec.principal.principal_type = iothub_access_operator::crd::PrincipalType::ServicePrincipal;
    }
    docs
}

async fn wait_ready(client: &Client, ns: &str, name: &str, secs: u64) {
    let api = Api::<IotHubRoleAssignment>::namespaced(client.clone(), ns);
    eventually(
        &format!("{name} Ready"),
        secs,
        || async { serde_json::to_value(api.get(name).await.expect("get")).unwrap() },
        ready,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_writer_hands_over_within_the_lease_duration_and_a_deposed_leader_writes_nothing() {
    let Some((server, client, ns)) = setup("leader").await else { return };
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let url = emu.base_url();
    let elect = ["--leader-elect", "--leader-election-namespace", ns.as_str()];
    let a = Operator::start(server, &url, &ns, "replica-a", &elect);
    let b = Operator::start(server, &url, &ns, "replica-b", &elect);

    apply(&client, &ns, &manifests(&["examples/role-assignment-operators.yaml"])).await;
    wait_ready(&client, &ns, "operators-registry-contributor", 60).await;
    let first = holder(&client, &ns).await.expect("a replica holds the Lease");
    assert!(first == "replica-a" || first == "replica-b", "{first}");

    // 1. The leader dies (kill -9): the other replica takes the Lease within the lease duration.
    let (mut leader, follower) = if first == "replica-a" { (a, b) } else { (b, a) };
    leader.kill();
    let killed = Instant::now();
    eventually("the follower takes over", 30, || holder(&client, &ns), |h| h.as_deref() == Some(&follower.identity))
        .await;
    let takeover = killed.elapsed();
    eprintln!(
        "takeover after kill -9: {:.1} s (lease duration {} s)",
        takeover.as_secs_f64(),
        LEASE_DURATION.as_secs()
    );
    assert!(takeover <= LEASE_DURATION + Duration::from_secs(3), "takeover took {takeover:?}");

    // A replacement replica joins as the follower.
    let replacement = Operator::start(server, &url, &ns, "replica-c", &elect);

    // 2. Another replica takes the Lease while the leader has not noticed yet (as after a
    //    partition from the API server): a resource appears in that window; the leader's write
    //    is withheld, it stops, and the grant is made by the next holder.
    let leases = Api::<Lease>::namespaced(client.clone(), &ns);
    let renewed = |l: &Lease| l.spec.as_ref().and_then(|s| s.renew_time.clone());
    let before = renewed(&leases.get(LEASE).await.unwrap());
    eventually("a fresh renewal", 20, || async { renewed(&leases.get(LEASE).await.unwrap()) }, |r| *r != before).await;
    // Steal well inside the renewal period (every 5 s), never on top of a renewal still being
    // written: the leader must not notice before the resource below appears.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(jiff::Timestamp::now());
    let steal = json!({"spec": {"holderIdentity": "intruder", "acquireTime": now, "renewTime": now, "leaseDurationSeconds": 15}});
    leases.patch(LEASE, &PatchParams::default(), &Patch::Merge(&steal)).await.expect("lease taken");
    let writes_before = emu.stats().writes();
    apply(&client, &ns, &second_grant()).await;
    let mut deposed = follower;
    let deadline = Instant::now() + Duration::from_secs(30);
    while deposed.exited().is_none() {
        assert!(Instant::now() < deadline, "the deposed leader kept running:\n{}", deposed.log_tail());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(emu.stats().writes(), writes_before, "a write reached Azure from a replica without the Lease");
    let log = std::fs::read_to_string(&deposed.log).unwrap_or_default();
    assert!(
        log.contains("write withheld"),
        "the deposed leader tried the write and the fence stopped it:\n{}",
        deposed.log_tail()
    );

    // The intruder never renews: the replacement takes over and makes the grant.
    eventually("the replacement takes over", 40, || holder(&client, &ns), |h| h.as_deref() == Some("replica-c")).await;
    wait_ready(&client, &ns, "second-grant", 60).await;
    drop(replacement);
}

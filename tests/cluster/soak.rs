//! The short crash soak that CI runs (the full one: `cargo bench --bench cluster -- soak`):
//! kill -9 the operator at random moments while Azure fails, throttles and resets; at the end
//! Azure holds exactly the desired grants and every resource is Ready.

use support::proof::crash_soak;

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_reconcile_it_loses_nothing_and_duplicates_nothing() {
    let Some((server, client, ns)) = setup("soak").await else { return };
    let r = crash_soak(server, &client, &ns, 40, 4).await;
    assert_eq!((r.duplicates, r.leaked, r.missing, r.not_ready), (0, 0, 0, 0), "{r:#?}");
    assert!(r.faults_injected > 0, "the emulator injected faults: {r:#?}");
    assert!(r.kills_mid_work > 0, "at least one kill landed while work was pending: {r:#?}");
}

//! The operator checks its own Azure identity, at start and at every resync: what it holds beyond
//! what `setup` prints, and what it lacks for the kinds in use. Advisory: a Warning log line per
//! finding and the gauge `iothub_access_identity_findings{finding}`; readiness is not affected
//! and nothing is written.

use std::sync::Arc;

use kube::ResourceExt;
use tokio::sync::watch;

use super::Context;
use crate::crd::ReconcileMode;
use crate::domain::{BuiltInRole, PrincipalType};
use crate::plan::identity_check::{Needs, counts};

/// What the kinds in use need now, from the caches (managed resources only: observe mode writes
/// nothing).
pub fn needs(ctx: &Context) -> Needs {
    let managed =
        |a: &std::collections::BTreeMap<String, String>| ReconcileMode::from_annotations(a).0 == ReconcileMode::Manage;
    let assignments: Vec<_> = ctx.assignments.state().into_iter().filter(|a| managed(a.annotations())).collect();
    let mut principal_types: Vec<PrincipalType> = assignments.iter().map(|a| a.spec.principal.principal_type).collect();
    principal_types.sort();
    principal_types.dedup();
    let mut hub_scopes: Vec<_> = ctx
        .shared_access
        .state()
        .into_iter()
        .filter(|s| managed(s.annotations()))
        .map(|s| s.spec.hub.to_hub_id().scope())
        .collect();
    hub_scopes.sort_by_key(|s| s.key());
    hub_scopes.dedup_by_key(|s| s.key());
    Needs {
        allowed_scopes: ctx.gate.scopes().allowed().to_vec(),
        probe_role: (!assignments.is_empty()).then(|| BuiltInRole::IoTHubDataReader.guid()),
        principal_types,
        custom_roles: ctx.custom_roles.state().iter().any(|c| managed(c.annotations())),
        hub_scopes,
        search_subscriptions: Vec::new(),
    }
}

/// Check once, then at every resync tick, until `ticks` closes.
pub async fn run(ctx: Arc<Context>, oid: String, mut ticks: watch::Receiver<u64>) {
    // The caches say which kinds are in use: judge only once they are listed.
    listed(&ctx.assignments).await;
    listed(&ctx.custom_roles).await;
    listed(&ctx.shared_access).await;
    tracing::info!(object_id = %oid, "checking the operator's Azure identity");
    loop {
        check_once(&ctx, &oid).await;
        if ticks.changed().await.is_err() {
            return;
        }
    }
}

/// `Store::wait_until_ready`, safe beside the controller's own wait on the same store: kube-runtime's
/// readiness is a oneshot receiver shared by every clone of the store, which keeps only the waker
/// of the last task that polled it (the controller's), so a second waiter may never be woken.
/// Polling again every 200 ms sees the value once it is set.
async fn listed<K>(store: &kube::runtime::reflector::Store<K>)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    while tokio::time::timeout(std::time::Duration::from_millis(200), store.wait_until_ready()).await.is_err() {}
}

async fn check_once(ctx: &Context, oid: &str) {
    let mut needs = needs(ctx);
    if !needs.hub_scopes.is_empty() {
        // The dependents search reads every subscription the identity can list.
        match ctx.azure.list_subscriptions().await {
            Ok(subs) => needs.search_subscriptions = subs,
            Err(e) => tracing::warn!(error = %e, "identity check: cannot list subscriptions"),
        }
    }
    match crate::observe::identity::check(ctx.azure.as_ref(), oid, &needs).await {
        Ok(findings) => {
            for f in &findings {
                tracing::warn!(finding = f.kind.as_str(), detail = %f.detail, "the operator's Azure identity");
            }
            if findings.is_empty() {
                tracing::info!("the operator's Azure identity holds what it needs and nothing beyond");
            }
            ctx.metrics.identity_checked(&counts(&findings));
        }
        Err(e) => tracing::warn!(error = %e, "identity check failed; trying again at the next resync"),
    }
}

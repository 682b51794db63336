//! The observer against a counting fake: single flight, write invalidation, the dependents
//! search and the interlock's read ages.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::azure::{CreateOutcome, HubAccessChange, NewRoleAssignment};
use crate::domain::{ObservedDeviceUpdate, ObservedDps, RoleAssignmentId};

/// Counts the reads; each takes a moment, so concurrent askers overlap.
#[derive(Default)]
struct Counting {
    calls: Mutex<BTreeMap<String, usize>>,
    fail_next_list: AtomicBool,
}

impl Counting {
    async fn count(&self, what: String) {
        *self.calls.lock().unwrap().entry(what).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fn calls(&self, what: &str) -> usize {
        self.calls.lock().unwrap().get(what).copied().unwrap_or(0)
    }
}

#[async_trait]
impl Azure for Counting {
    async fn list_role_assignments(
        &self,
        scope: &Scope,
        _: &AssignmentFilter,
    ) -> Result<Vec<ObservedAssignment>, AzureError> {
        self.count(format!("list {scope}")).await;
        if self.fail_next_list.swap(false, Ordering::SeqCst) {
            return Err(AzureError::Transient { message: "reset".into() });
        }
        Ok(vec![])
    }
    async fn create_role_assignment(&self, _: &NewRoleAssignment) -> Result<CreateOutcome, AzureError> {
        unreachable!("observe never writes")
    }
    async fn delete_role_assignment(&self, _: &RoleAssignmentId) -> Result<bool, AzureError> {
        unreachable!("observe never writes")
    }
    async fn get_role_definition(&self, _: &RoleDefinitionId) -> Result<Option<RoleDefinition>, AzureError> {
        Ok(None)
    }
    async fn list_role_definitions(
        &self,
        _: &Scope,
        _: &RoleDefinitionFilter,
    ) -> Result<Vec<RoleDefinition>, AzureError> {
        Ok(vec![])
    }
    async fn put_role_definition(&self, _: &Scope, _: &RoleDefinition) -> Result<(), AzureError> {
        unreachable!("observe never writes")
    }
    async fn delete_role_definition(&self, _: &RoleDefinitionId) -> Result<bool, AzureError> {
        unreachable!("observe never writes")
    }
    async fn get_hub(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError> {
        self.count(format!("hub {}", hub.name)).await;
        Ok(None)
    }
    async fn set_hub_access(&self, _: &HubId, _: &HubAccessChange) -> Result<crate::azure::HubWrite, AzureError> {
        unreachable!("observe never writes")
    }
    async fn list_subscriptions(&self) -> Result<Vec<String>, AzureError> {
        self.count("subscriptions".into()).await;
        Ok(vec!["s1".into(), "s2".into()])
    }
    async fn list_dps(&self, sub: &str) -> Result<Vec<ObservedDps>, AzureError> {
        self.count(format!("dps {sub}")).await;
        if sub.starts_with("forbidden") {
            return Err(AzureError::Forbidden { code: "AuthorizationFailed".into(), message: "no".into() });
        }
        Ok(vec![])
    }
    async fn list_device_update_instances(&self, sub: &str) -> Result<Vec<ObservedDeviceUpdate>, AzureError> {
        self.count(format!("du {sub}")).await;
        Ok(vec![])
    }
}

fn hub(name: &str) -> HubId {
    HubId::new("s1", "rg", name)
}

#[tokio::test]
async fn concurrent_askers_share_one_request_and_a_failure_is_not_kept() {
    let azure = Arc::new(Counting::default());
    let obs = Observer::new(azure.clone());
    let scope = hub("a").scope();
    let results = futures::future::join_all((0..50).map(|_| obs.assignments_at(&scope))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(azure.calls(&format!("list {scope}")), 1, "single-flight");
    let a = hub("a");
    let _ = futures::future::join_all((0..10).map(|_| obs.hub(&a))).await;
    assert_eq!(azure.calls("hub a"), 1);

    let other = hub("b").scope();
    azure.fail_next_list.store(true, Ordering::SeqCst);
    assert!(obs.assignments_at(&other).await.is_err());
    assert!(obs.assignments_at(&other).await.is_ok(), "the next ask reads Azure again");
    assert_eq!(azure.calls(&format!("list {other}")), 2);
}

#[tokio::test]
async fn a_write_forgets_exactly_the_reads_it_changes() {
    let azure = Arc::new(Counting::default());
    let obs = Observer::new(azure.clone());
    let (a, b) = (hub("a").scope(), hub("b").scope());
    let rg = Scope::ResourceGroup { subscription_id: "s1".into(), resource_group: "rg".into() };
    for s in [&a, &b, &rg] {
        obs.assignments_at(s).await.unwrap();
    }
    obs.hub(&hub("a")).await.unwrap();
    let id = RoleAssignmentId { scope: a.clone(), name: Uuid::nil() };
    obs.forget_written(&crate::plan::Action::DeleteRoleAssignment { id });
    for s in [&a, &b, &rg] {
        obs.assignments_at(s).await.unwrap();
    }
    assert_eq!(azure.calls(&format!("list {a}")), 2, "the written scope is read again");
    assert_eq!(azure.calls(&format!("list {rg}")), 2, "a list above it (unfiltered below) too");
    assert_eq!(azure.calls(&format!("list {b}")), 1, "another hub's list is kept");
    obs.forget_written(&crate::plan::Action::SetHubAccess {
        hub: hub("a"),
        shared_access: Some(crate::crd::Access::Deny),
        device_sas: None,
        module_sas: None,
    });
    obs.hub(&hub("a")).await.unwrap();
    assert_eq!(azure.calls("hub a"), 2);
}

#[tokio::test]
async fn the_dependents_search_is_shared_for_its_max_age_and_read_fresh_on_demand() {
    let azure = Arc::new(Counting::default());
    let obs = Observer::new(azure.clone()).with_recheck(Duration::from_millis(300));
    let searches = futures::future::join_all((0..20).map(|_| obs.dependents(&["s1"]))).await;
    assert!(
        searches.iter().all(|d| matches!(d, DependentsObservation::Complete(x) if x.subscriptions == ["s1", "s2"]))
    );
    assert_eq!((azure.calls("subscriptions"), azure.calls("dps s1"), azure.calls("du s2")), (1, 1, 1));
    obs.dependents(&["s2"]).await;
    assert_eq!(azure.calls("subscriptions"), 1, "within the max age: shared");
    obs.dependents_fresh(&["s1"]).await;
    assert_eq!(azure.calls("subscriptions"), 2, "fresh: read now");
    tokio::time::sleep(Duration::from_millis(350)).await;
    obs.dependents(&["s1"]).await;
    assert_eq!(azure.calls("subscriptions"), 3, "older than the max age: searched again");
    // A subscription outside the list is searched on its own (and kept the same way).
    obs.dependents(&["s3"]).await;
    obs.dependents(&["S3"]).await;
    assert_eq!((azure.calls("dps s3"), azure.calls("subscriptions")), (1, 3), "s3 alone, once");
    // Its refusal fails the search.
    match obs.dependents(&["forbidden"]).await {
        DependentsObservation::Failed(why) => assert!(why.contains("subscription forbidden"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Every subscription that refuses is named, not only the first.
    match obs.dependents_fresh(&["forbidden-a", "forbidden-b"]).await {
        DependentsObservation::Failed(why) => assert!(
            why.contains("2 of 4 subscriptions")
                && why.contains("subscription forbidden-a")
                && why.contains("subscription forbidden-b"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
}

/// What the interlock judges a hub on (the hub and its assignments) is never older than the
/// re-check interval, even within a resync; everything else keeps the resync's reads.
#[tokio::test]
async fn the_interlock_reads_are_never_older_than_the_re_check_interval() {
    let azure = Arc::new(Counting::default());
    let obs = Observer::new(azure.clone()).with_recheck(Duration::from_millis(200));
    let scope = hub("a").scope();
    obs.hub(&hub("a")).await.unwrap();
    obs.assignments_at(&scope).await.unwrap();
    obs.hub_recent(&hub("a")).await.unwrap();
    obs.assignments_at_recent(&scope).await.unwrap();
    assert_eq!((azure.calls("hub a"), azure.calls(&format!("list {scope}"))), (1, 1), "young: shared");
    tokio::time::sleep(Duration::from_millis(250)).await;
    obs.hub(&hub("a")).await.unwrap();
    obs.assignments_at(&scope).await.unwrap();
    assert_eq!((azure.calls("hub a"), azure.calls(&format!("list {scope}"))), (1, 1), "the resync's view");
    obs.hub_recent(&hub("a")).await.unwrap();
    obs.assignments_at_recent(&scope).await.unwrap();
    assert_eq!((azure.calls("hub a"), azure.calls(&format!("list {scope}"))), (2, 2), "older: read again");
    obs.assignments_at(&scope).await.unwrap();
    assert_eq!(azure.calls(&format!("list {scope}")), 2, "and the new read serves everyone");
}

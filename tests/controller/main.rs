//! The reconcilers against the emulator over HTTP and a mocked Kubernetes API (`tower_test`):
//! create, steady state, spec change, drift repair, deletion with both policies, observe mode,
//! the guardrail, the three shared-access blockers and custom-role dependencies.

mod attacks;
#[allow(dead_code)] // shared with the `run` test and the controller benchmark
mod fake_api;
mod fixtures;
mod interlock;
#[path = "../support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iothub_access_emulator::EmulatorHandle;
use iothub_access_operator::azure::Azure;
use iothub_access_operator::controller::{
    Context, Parts, ReconcileError, Settings, Stores, custom_role, role_assignment, shared_access,
};
use iothub_access_operator::crd::{
    AssignmentScope, IotHubCustomRole, IotHubRoleAssignment, IotHubSharedAccess, PrincipalType,
};
use iothub_access_operator::domain::BuiltInRole;
use iothub_access_operator::gate::{Gate, Guardrail};
use iothub_access_operator::telemetry::Metrics;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use fake_api::FakeApi;
use fixtures::*;
use support::*;

const NS: &str = "iot-platform";

/// A namespace's allowed-scopes annotation as the namespace cache reports it (or why not).
type Annotation = Result<Option<String>, String>;

struct H {
    api: FakeApi,
    ctx: Arc<Context>,
    emu: Arc<EmulatorHandle>,
    roles: Mutex<Writer<IotHubCustomRole>>,
    assignments: Mutex<Writer<IotHubRoleAssignment>>,
    sas: Mutex<Writer<IotHubSharedAccess>>,
    /// What the namespace cache says of the namespace's allowed-scopes annotation.
    ns_annotation: Arc<Mutex<Result<Option<String>, String>>>,
    /// The same, for the namespaces that differ from it.
    ns_annotations: Arc<Mutex<HashMap<String, Annotation>>>,
}

fn resync<K>(w: &Mutex<Writer<K>>, objs: Vec<K>)
where
    K: Resource<DynamicType = ()> + Clone,
{
    let mut w = w.lock().unwrap();
    w.apply_watcher_event(&watcher::Event::Init);
    for o in objs {
        w.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    w.apply_watcher_event(&watcher::Event::InitDone);
}

impl H {
    async fn new(allowed: &[&str], namespace_scopes: Option<&str>) -> H {
        H::with_seed(DEMO_SEED, allowed, namespace_scopes, |_| {}).await
    }

    async fn with_seed(
        seed: &str,
        allowed: &[&str],
        namespace_scopes: Option<&str>,
        tweak: impl FnOnce(&mut iothub_access_emulator::EmulatorConfig),
    ) -> H {
        H::with_azure(seed, allowed, namespace_scopes, tweak, |azure, _| azure).await
    }

    /// As `with_seed`, with the operator's Azure client wrapped by `wrap` (given the emulator).
    async fn with_azure(
        seed: &str,
        allowed: &[&str],
        namespace_scopes: Option<&str>,
        tweak: impl FnOnce(&mut iothub_access_emulator::EmulatorConfig),
        wrap: impl FnOnce(Arc<dyn Azure>, Arc<EmulatorHandle>) -> Arc<dyn Azure>,
    ) -> H {
        let emu = Arc::new(emulator(seed, tweak).await);
        let api = FakeApi::default();
        let client = api.client();
        let (role_store, role_writer) = reflector::store::<IotHubCustomRole>();
        let (ra_store, ra_writer) = reflector::store::<IotHubRoleAssignment>();
        let mut cfg = config(&emu, iothub_access_operator::domain::Cloud::AzurePublicCloud);
        cfg.retry.max_attempts = 2;
        let azure: Arc<dyn Azure> = wrap(client_with(cfg), emu.clone());
        let ns_annotation = Arc::new(Mutex::new(Ok(namespace_scopes.map(str::to_string))));
        let ns_annotations: Arc<Mutex<HashMap<String, Annotation>>> = Arc::default();
        let (ns_scopes, per_ns) = (ns_annotation.clone(), ns_annotations.clone());
        let (sa_store, sa_writer) = reflector::store::<IotHubSharedAccess>();
        let gate = Gate::new(Guardrail::parse(allowed).expect("canonical allowed scopes"), vec![]).with_namespaces(
            Arc::new(move |ns: &str| {
                per_ns.lock().unwrap().get(ns).cloned().unwrap_or_else(|| ns_scopes.lock().unwrap().clone())
            }),
        );
        let ctx = Context::new(Parts {
            client: client.clone(),
            azure,
            gate,
            recorder: Recorder::new(client, Reporter { controller: "iothub-access-operator".into(), instance: None }),
            metrics: Arc::new(Metrics::new(None)),
            stores: Stores { custom_roles: role_store, assignments: ra_store, shared_access: sa_store },
            settings: Settings { error_backoff: Duration::from_millis(10), ..Settings::default() },
        });
        H {
            api,
            ctx: Arc::new(ctx),
            emu,
            roles: Mutex::new(role_writer),
            assignments: Mutex::new(ra_writer),
            sas: Mutex::new(sa_writer),
            ns_annotation,
            ns_annotations,
        }
    }

    fn sync(&self) {
        resync(&self.roles, self.api.all::<IotHubCustomRole>());
        resync(&self.assignments, self.api.all::<IotHubRoleAssignment>());
        resync(&self.sas, self.api.all::<IotHubSharedAccess>());
    }

    /// Reconcile until the object stops changing (the first pass only adds the finalizer).
    async fn settle<K, F, Fut>(&self, ns: &str, name: &str, reconcile: F) -> Result<Action, ReconcileError>
    where
        K: Resource<DynamicType = ()> + serde::de::DeserializeOwned + Clone,
        F: Fn(Arc<K>, Arc<Context>) -> Fut,
        Fut: std::future::Future<Output = Result<Action, ReconcileError>>,
    {
        let mut last = Ok(Action::await_change());
        for _ in 0..4 {
            self.sync();
            let Some(obj) = self.api.get::<K>(ns, name) else { return last };
            let before = obj.resource_version();
            last = reconcile(Arc::new(obj), self.ctx.clone()).await;
            let after = self.api.get::<K>(ns, name).and_then(|o| o.resource_version());
            if after == before {
                break;
            }
        }
        last
    }

    async fn ra(&self, name: &str) -> Result<Action, ReconcileError> {
        self.ra_in(NS, name).await
    }
    async fn cr(&self, name: &str) -> Result<Action, ReconcileError> {
        self.cr_in(NS, name).await
    }
    async fn sa(&self, name: &str) -> Result<Action, ReconcileError> {
        self.sa_in(NS, name).await
    }
    async fn ra_in(&self, ns: &str, name: &str) -> Result<Action, ReconcileError> {
        self.settle::<IotHubRoleAssignment, _, _>(ns, name, role_assignment::reconcile).await
    }
    async fn cr_in(&self, ns: &str, name: &str) -> Result<Action, ReconcileError> {
        self.settle::<IotHubCustomRole, _, _>(ns, name, custom_role::reconcile).await
    }
    async fn sa_in(&self, ns: &str, name: &str) -> Result<Action, ReconcileError> {
        self.settle::<IotHubSharedAccess, _, _>(ns, name, shared_access::reconcile).await
    }

    /// Namespace `ns`'s allowed-scopes annotation as the namespace cache reports it.
    fn annotate(&self, ns: &str, scopes: Result<Option<&str>, &str>) {
        let v = scopes.map(|s| s.map(str::to_string)).map_err(str::to_string);
        self.ns_annotations.lock().unwrap().insert(ns.to_string(), v);
    }

    fn ra_obj(&self, name: &str) -> IotHubRoleAssignment {
        self.api.get(NS, name).expect("exists")
    }

    /// Azure assignments for a principal, as the emulator holds them: (scope, role GUID).
    fn azure_assignments(&self, principal: &str) -> Vec<(String, String)> {
        self.emu
            .snapshot()
            .role_assignments
            .iter()
            .filter(|a| a.principal_id.eq_ignore_ascii_case(principal))
            .map(|a| {
                (
                    a.scope.to_ascii_lowercase(),
                    a.role_definition_id.rsplit('/').next().unwrap_or_default().to_ascii_lowercase(),
                )
            })
            .collect()
    }

    /// The Kubernetes API requests made since `from`, as `METHOD path` with the namespace and the
    /// API prefix cut off (e.g. `PATCH iothubroleassignments/telemetry/status`).
    fn requests_since(&self, from: usize) -> Vec<String> {
        self.api.0.lock().unwrap().requests[from..]
            .iter()
            .map(|r| {
                let tail = r.path.split(&format!("/namespaces/{NS}/")).nth(1).unwrap_or(&r.path);
                format!("{} {tail}", r.method)
            })
            .collect()
    }

    fn requests_made(&self) -> usize {
        self.api.0.lock().unwrap().requests.len()
    }

    fn ready(&self, conds: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> (String, String) {
        conds.iter().find(|c| c.type_ == "Ready").map(|c| (c.status.clone(), c.reason.clone())).unwrap_or_default()
    }
}

const READER_GUID: &str = "b447c946-2db7-41ec-983d-d8bf3b1c77e3";

/// The ops group holds IoT Hub Registry Contributor on the fleet hub (resource `ops`, Ready): a
/// Deny there would lock nobody out.
async fn someone_holds_a_data_role_on_the_fleet_hub(h: &H) {
    h.api.put(
        &IotHubRoleAssignment::test("ops")
            .on_hub(FLEET_HUB)
            .for_principal(OPS_GROUP, PrincipalType::Group)
            .built_in(BuiltInRole::IoTHubRegistryContributor),
    );
    h.ra("ops").await.expect("reconciles");
}

fn allowed() -> Vec<String> {
    vec![rg_scope()]
}

fn allowed_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn create_then_steady_state_writes_nothing_and_leaves_status_alone() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubRoleAssignment::test("telemetry"));
    h.ra("telemetry").await.expect("reconciles");

    let obj = h.ra_obj("telemetry");
    assert!(obj.finalizers().iter().any(|f| f == "iothubaccess.io/cleanup"));
    let st = obj.status.clone().expect("status written");
    assert_eq!(h.ready(&st.conditions), ("True".into(), "Reconciled".into()));
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(st.owned_assignment_ids.len(), 1);
    assert_eq!(
        h.azure_assignments(TELEMETRY_SP),
        vec![(hub_scope(FACTORY_HUB).to_ascii_lowercase(), READER_GUID.into())]
    );
    assert!(
        h.api.events().iter().any(|(r, n)| r == "Written" && n.starts_with("CreateRoleAssignment")),
        "{:?}",
        h.api.events()
    );

    // Steady state: a new observation pass, no Azure write, no status write.
    let writes = h.emu.stats().writes();
    let status_writes = h.api.status_writes();
    h.ctx.observer.rotate();
    h.ra("telemetry").await.expect("reconciles");
    assert_eq!(h.emu.stats().writes(), writes, "steady state writes nothing to Azure");
    assert_eq!(h.api.status_writes(), status_writes, "equal status is not rewritten");
}

/// The driver's steps as the API server sees them, in order: a new resource gets its finalizer,
/// then `Reconciling` before Azure is touched, then one Event per Azure write, then the verdict;
/// a resync of a resource that is in sync makes no request at all.
#[tokio::test]
async fn each_reconcile_makes_exactly_these_api_requests_in_this_order() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubRoleAssignment::test("telemetry"));
    let from = h.requests_made();
    let azure_before = h.emu.stats().writes();
    for _ in 0..2 {
        h.sync();
        role_assignment::reconcile(Arc::new(h.ra_obj("telemetry")), h.ctx.clone()).await.expect("reconciles");
    }
    assert_eq!(
        h.requests_since(from),
        [
            "PATCH iothubroleassignments/telemetry",
            "PATCH iothubroleassignments/telemetry/status",
            "POST events",
            "PATCH iothubroleassignments/telemetry/status",
        ],
        "finalizer, Reconciling, the write's Event, Ready"
    );
    assert_eq!(h.emu.stats().writes() - azure_before, 1, "one Azure write");
    let from = h.requests_made();
    h.ctx.observer.rotate();
    h.sync();
    role_assignment::reconcile(Arc::new(h.ra_obj("telemetry")), h.ctx.clone()).await.expect("reconciles");
    assert_eq!(h.requests_since(from), Vec::<String>::new(), "in sync: not one request");
}

/// A failure names the step and what it was doing, in status, the log and the metric.
#[tokio::test]
async fn a_failed_write_names_its_step_operation_and_azure_id() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.emu.set_faults(iothub_access_emulator::Faults {
        error_rate: 1.0,
        only_operations: Some(vec!["roleAssignments.create".into()]),
        ..Default::default()
    });
    h.api.put(&IotHubRoleAssignment::test("telemetry"));
    let err = h.ra("telemetry").await.expect_err("the write fails");
    assert_eq!(err.step(), "apply");
    let st = h.ra_obj("telemetry").status.unwrap();
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.reason, "AzureError");
    let subject = format!(
        "apply CreateRoleAssignment {}/providers/Microsoft.Authorization/roleAssignments/",
        hub_scope(FACTORY_HUB)
    );
    assert!(ready.message.starts_with(&subject), "{}", ready.message);
    let metrics = h.ctx.metrics.encode();
    assert!(
        metrics.contains(r#"iothub_access_reconciles_total{kind="IotHubRoleAssignment",outcome="apply"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_principal_change_creates_the_new_assignment_before_deleting_the_old() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubRoleAssignment::test("sync").on_hub(FLEET_HUB));
    h.ra("sync").await.expect("reconciles");
    let old = h.ra_obj("sync").status.unwrap().owned_assignment_ids;

    h.api.edit::<IotHubRoleAssignment>(NS, "sync", |o| o.spec.principal.id = Some(SYNC_SP.into()));
    h.ra("sync").await.expect("reconciles");
    let st = h.ra_obj("sync").status.unwrap();
    assert_eq!(h.ready(&st.conditions).0, "True");
    assert_eq!(st.observed_generation, Some(2));
    assert_eq!(st.owned_assignment_ids.len(), 1);
    assert_ne!(st.owned_assignment_ids, old, "ownership moved to the new assignment");
    assert!(h.azure_assignments(TELEMETRY_SP).is_empty(), "the old grant is gone");
    assert_eq!(h.azure_assignments(SYNC_SP).len(), 1);
    let writes: Vec<String> = h.api.events().into_iter().filter(|(r, _)| r == "Written").map(|(_, n)| n).collect();
    let created = writes.iter().rposition(|n| n.starts_with("CreateRoleAssignment")).unwrap();
    let deleted = writes.iter().rposition(|n| n.starts_with("DeleteRoleAssignment")).unwrap();
    assert!(created < deleted, "make before break: {writes:?}");
}

#[tokio::test]
async fn drift_is_repaired_on_resync_with_an_event() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubRoleAssignment::test("telemetry"));
    h.ra("telemetry").await.expect("reconciles");
    let name = h.ra_obj("telemetry").status.unwrap().owned_assignment_ids[0].rsplit('/').next().unwrap().to_string();

    // Someone deletes the assignment in the portal.
    assert!(h.emu.with_state(|s| s.remove_assignment(&name)));
    assert!(h.azure_assignments(TELEMETRY_SP).is_empty());
    h.ctx.observer.rotate();
    h.ra("telemetry").await.expect("reconciles");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1, "repaired");
    assert!(
        h.api.events().iter().any(|(r, n)| r == "DriftRepaired" && n.contains("CreateRoleAssignment")),
        "{:?}",
        h.api.events()
    );
}

#[tokio::test]
async fn deletion_removes_only_what_the_resource_owns_and_orphan_keeps_it() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    let before: Vec<_> = h.emu.snapshot().role_assignments.iter().map(|a| a.name.clone()).collect();
    h.api.put(&IotHubRoleAssignment::test("telemetry"));
    h.api.put(
        &IotHubRoleAssignment::test("ops").on_hub(FLEET_HUB).for_principal(OPS_GROUP, PrincipalType::Group).orphaned(),
    );
    h.ra("telemetry").await.expect("reconciles");
    h.ra("ops").await.expect("reconciles");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1);

    h.api.delete::<IotHubRoleAssignment>(NS, "telemetry");
    h.api.delete::<IotHubRoleAssignment>(NS, "ops");
    h.ra("telemetry").await.expect("cleanup");
    h.ra("ops").await.expect("cleanup");
    assert!(!h.api.exists::<IotHubRoleAssignment>(NS, "telemetry"), "finalizer removed after cleanup");
    assert!(!h.api.exists::<IotHubRoleAssignment>(NS, "ops"));
    assert!(h.azure_assignments(TELEMETRY_SP).is_empty(), "Delete policy removed it");
    assert!(
        h.azure_assignments(OPS_GROUP).iter().any(|(_, r)| r == READER_GUID),
        "Orphan policy left the reader grant in Azure"
    );
    let after: Vec<_> = h.emu.snapshot().role_assignments.iter().map(|a| a.name.clone()).collect();
    for name in before {
        assert!(after.contains(&name), "pre-existing assignment {name} was not touched");
    }
}

#[tokio::test]
async fn observe_mode_reports_the_plan_and_never_writes() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubRoleAssignment::test("telemetry").observed());
    let writes = h.emu.stats().writes();
    h.ra("telemetry").await.expect("reconciles");
    assert_eq!(h.emu.stats().writes(), writes, "observe mode writes nothing to Azure");
    let st = h.ra_obj("telemetry").status.unwrap();
    assert_eq!(h.ready(&st.conditions), ("False".into(), "PendingChanges".into()));
    assert_eq!(st.pending_actions.len(), 1);
    assert_eq!(st.pending_actions[0].action, "CreateRoleAssignment");
}

#[tokio::test]
async fn the_guardrail_refuses_scopes_the_admin_did_not_allow_without_calling_azure() {
    // Nothing allowed: deny by default.
    let h = H::new(&[], None).await;
    h.api.put(&IotHubRoleAssignment::test("telemetry"));
    h.ra("telemetry").await.expect("reconciles");
    let st = h.ra_obj("telemetry").status.unwrap();
    assert_eq!(h.ready(&st.conditions), ("False".into(), "ScopeNotAllowed".into()));
    assert!(st.conditions[0].message.contains("--allowed-scope"), "{}", st.conditions[0].message);
    assert_eq!(h.emu.stats().total(), 0, "no Azure call at all");

    // Allowed globally, but the namespace annotation narrows it to another group.
    let a = allowed();
    let h =
        H::new(&allowed_refs(&a), Some("/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg-other"))
            .await;
    h.api.put(&IotHubRoleAssignment::test("telemetry").at_scope(AssignmentScope::Hub));
    h.ra("telemetry").await.expect("reconciles");
    let st = h.ra_obj("telemetry").status.unwrap();
    assert_eq!(h.ready(&st.conditions).1, "ScopeNotAllowed");
    assert!(st.conditions[0].message.contains("namespace iot-platform"), "{}", st.conditions[0].message);
    assert_eq!(h.emu.stats().total(), 0);
    assert!(h.api.events().iter().any(|(r, _)| r == "ScopeNotAllowed"));
}

#[tokio::test]
async fn an_invalid_spec_is_reported_and_waits_for_the_next_change() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubRoleAssignment::test("bad").for_principal("not-a-guid", PrincipalType::ServicePrincipal));
    let action = h.ra("bad").await.expect("an invalid spec is not an error to retry");
    assert_eq!(action, Action::await_change(), "no requeue loop");
    let st = h.ra_obj("bad").status.unwrap();
    assert_eq!(h.ready(&st.conditions).1, "InvalidSpec");
    assert!(st.conditions[0].message.contains("spec.principal.id"), "{}", st.conditions[0].message);
    assert_eq!(h.emu.stats().total(), 0);
}

#[tokio::test]
async fn deny_is_refused_while_a_dps_links_the_hub_by_key() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    // Give someone a data role so lock-out is not the reason.
    h.api.put(&IotHubRoleAssignment::test("telemetry"));
    h.ra("telemetry").await.expect("reconciles");
    h.api.put(&IotHubSharedAccess::test("factory").deny());
    let writes = h.emu.stats().writes();
    h.sa("factory").await.expect("a refusal is a status, not an error");
    let st: IotHubSharedAccess = h.api.get(NS, "factory").unwrap();
    let st = st.status.unwrap();
    assert_eq!(h.ready(&st.conditions), ("False".into(), "DpsLinked".into()));
    assert!(st.blockers[0].resource_ids.iter().any(|id| id.contains("contoso-factory-dps")), "{:?}", st.blockers);
    assert_eq!(h.emu.stats().writes(), writes, "the hub was not touched");
    assert!(h.api.events().iter().any(|(r, n)| r == "DpsLinked" && n.starts_with("Deny refused")));
}

#[tokio::test]
async fn deny_is_refused_when_nobody_would_keep_access_then_applied_once_someone_does() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny());
    h.sa("fleet").await.expect("reconciles");
    let st = h.api.get::<IotHubSharedAccess>(NS, "fleet").unwrap().status.unwrap();
    assert_eq!(h.ready(&st.conditions).1, "WouldLockOut");

    someone_holds_a_data_role_on_the_fleet_hub(&h).await;
    h.ctx.observer.rotate();
    h.sa("fleet").await.expect("reconciles");
    let st = h.api.get::<IotHubSharedAccess>(NS, "fleet").unwrap().status.unwrap();
    assert_eq!(h.ready(&st.conditions), ("True".into(), "Reconciled".into()));
    assert_eq!(st.shared_access_policies, Some(iothub_access_operator::crd::Access::Deny));
    let hub = h.emu.snapshot().hubs.into_iter().find(|x| x.name == FLEET_HUB).unwrap();
    assert_eq!(hub.disable_local_auth, Some(true), "disableLocalAuth set in Azure");

    // Someone re-allows SAS in the portal: the resync repairs it.
    h.emu.with_state(|s| s.hub_mut(SUB, RG, FLEET_HUB).expect("hub").set_disable_local_auth(false));
    h.ctx.observer.rotate();
    h.sa("fleet").await.expect("reconciles");
    let hub = h.emu.snapshot().hubs.into_iter().find(|x| x.name == FLEET_HUB).unwrap();
    assert_eq!(hub.disable_local_auth, Some(true), "drift repaired");
    assert!(h.api.events().iter().any(|(r, _)| r == "DriftRepaired"));
}

#[tokio::test]
async fn deny_fails_closed_when_the_dps_check_cannot_complete() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    someone_holds_a_data_role_on_the_fleet_hub(&h).await;
    h.emu.set_faults(iothub_access_emulator::Faults {
        error_rate: 1.0,
        only_operations: Some(vec!["provisioningServices.list".into()]),
        ..Default::default()
    });
    h.ctx.observer.rotate();
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny());
    let writes = h.emu.stats().writes();
    h.sa("fleet").await.expect("reconciles");
    let st = h.api.get::<IotHubSharedAccess>(NS, "fleet").unwrap().status.unwrap();
    assert_eq!(h.ready(&st.conditions).1, "DpsCheckFailed");
    assert_eq!(h.emu.stats().writes(), writes, "nothing written while the check cannot be completed");
}

#[tokio::test]
async fn an_assignment_waits_for_its_custom_role_and_the_role_cannot_be_deleted_while_used() {
    // A custom role lives at the subscription: the admin allows the whole subscription here.
    let a = vec![format!("/subscriptions/{SUB}")];
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(
        &IotHubRoleAssignment::test("sync")
            .on_hub(FLEET_HUB)
            .for_principal(SYNC_SP, PrincipalType::ServicePrincipal)
            .custom_role("reader"),
    );
    h.ra("sync").await.expect("waiting is not an error");
    let st = h.ra_obj("sync").status.unwrap();
    assert_eq!(h.ready(&st.conditions).1, "WaitingForCustomRole");
    assert!(h.azure_assignments(SYNC_SP).is_empty());

    h.api.put(&IotHubCustomRole::test("reader"));
    h.cr("reader").await.expect("reconciles");
    let role = h.api.get::<IotHubCustomRole>(NS, "reader").unwrap().status.unwrap();
    assert_eq!(h.ready(&role.conditions).0, "True", "{:?}", role.conditions);
    h.ctx.observer.rotate();
    h.ra("sync").await.expect("reconciles");
    assert_eq!(h.ready(&h.ra_obj("sync").status.unwrap().conditions).0, "True");
    assert_eq!(h.azure_assignments(SYNC_SP).len(), 1);

    // Deleting the role while the assignment uses it is refused, naming the assignment.
    h.api.delete::<IotHubCustomRole>(NS, "reader");
    let err = h.cr("reader").await.expect_err("refused");
    assert!(err.to_string().contains("IotHubRoleAssignment/iot-platform/sync"), "{err}");
    assert!(h.api.exists::<IotHubCustomRole>(NS, "reader"), "the finalizer holds the role");

    // Once the assignment is gone, the role goes too.
    h.api.delete::<IotHubRoleAssignment>(NS, "sync");
    h.ra("sync").await.expect("cleanup");
    h.ctx.observer.rotate();
    h.cr("reader").await.expect("cleanup");
    assert!(!h.api.exists::<IotHubCustomRole>(NS, "reader"));
    assert!(
        !h.emu.snapshot().role_definitions.iter().any(|d| d.role_name == "Registry Reader reader"),
        "the definition was deleted from Azure"
    );
}

fn sub_allowed() -> Vec<String> {
    vec![format!("/subscriptions/{SUB}")]
}

fn role_in_azure(h: &H, role_name: &str) -> Option<Vec<String>> {
    h.emu
        .snapshot()
        .role_definitions
        .into_iter()
        .find(|d| d.role_name == role_name)
        .map(|d| d.permissions.first().map(|p| p.data_actions.clone()).unwrap_or_default())
}

#[tokio::test]
async fn a_custom_role_is_created_kept_updated_repaired_and_orphaned_on_request() {
    let a = sub_allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubCustomRole::test("reader").orphaned());
    h.cr("reader").await.expect("reconciles");
    let st = h.api.get::<IotHubCustomRole>(NS, "reader").unwrap().status.unwrap();
    assert_eq!(h.ready(&st.conditions), ("True".into(), "Reconciled".into()));
    assert_eq!(st.effective_data_actions, vec!["Microsoft.Devices/IotHubs/devices/read".to_string()]);
    assert!(st.role_definition_id.as_deref().is_some_and(|id| id.starts_with(&format!("/subscriptions/{SUB}/"))));
    assert_eq!(
        role_in_azure(&h, "Registry Reader reader").unwrap(),
        vec!["Microsoft.Devices/IotHubs/devices/read".to_string()]
    );

    // Steady state.
    let writes = h.emu.stats().writes();
    h.ctx.observer.rotate();
    h.cr("reader").await.expect("reconciles");
    assert_eq!(h.emu.stats().writes(), writes, "no write when Azure matches");

    // Spec change: the definition is updated in place (same GUID).
    h.api.edit::<IotHubCustomRole>(NS, "reader", |r| {
        r.spec.data_actions.push("Microsoft.Devices/IotHubs/twins/read".into())
    });
    h.ctx.observer.rotate();
    h.cr("reader").await.expect("reconciles");
    let mut actions = role_in_azure(&h, "Registry Reader reader").unwrap();
    actions.sort();
    assert_eq!(
        actions,
        vec!["Microsoft.Devices/IotHubs/devices/read".to_string(), "Microsoft.Devices/IotHubs/twins/read".into()]
    );
    assert!(h.api.events().iter().any(|(r, n)| r == "Written" && n.starts_with("UpdateRoleDefinition")));

    // Drift: someone widens the role in the portal; it is put back.
    h.emu.with_state(|s| {
        let d = s.role_definitions.iter_mut().find(|d| d.role_name == "Registry Reader reader").expect("role");
        d.permissions[0].data_actions.push("Microsoft.Devices/IotHubs/devices/write".into());
    });
    h.ctx.observer.rotate();
    h.cr("reader").await.expect("reconciles");
    assert!(
        !role_in_azure(&h, "Registry Reader reader").unwrap().iter().any(|a| a.ends_with("devices/write")),
        "repaired"
    );
    assert!(h.api.events().iter().any(|(r, _)| r == "DriftRepaired"), "{:?}", h.api.events());

    // Deletion with Orphan: the resource goes, the definition stays.
    h.api.delete::<IotHubCustomRole>(NS, "reader");
    h.cr("reader").await.expect("cleanup");
    assert!(!h.api.exists::<IotHubCustomRole>(NS, "reader"));
    assert!(role_in_azure(&h, "Registry Reader reader").is_some(), "Orphan keeps the definition");
}

#[tokio::test]
async fn a_custom_role_outside_the_allowed_scopes_or_in_observe_mode_is_not_written() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubCustomRole::test("reader"));
    h.cr("reader").await.expect("reconciles");
    let st = h.api.get::<IotHubCustomRole>(NS, "reader").unwrap().status.unwrap();
    assert_eq!(
        h.ready(&st.conditions).1,
        "ScopeNotAllowed",
        "a subscription-level role needs the subscription allowed"
    );
    assert_eq!(h.emu.stats().total(), 0);

    let a = sub_allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubCustomRole::test("reader").observed());
    h.cr("reader").await.expect("reconciles");
    let st = h.api.get::<IotHubCustomRole>(NS, "reader").unwrap().status.unwrap();
    assert_eq!(h.ready(&st.conditions).1, "PendingChanges");
    assert_eq!(st.pending_actions[0].action, "CreateRoleDefinition");
    assert_eq!(h.emu.stats().writes(), 0);
}

#[tokio::test]
async fn shared_access_allow_observe_guardrail_and_deletion() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    // Allow on a hub that already allows: Ready, nothing written, status reports the hub.
    h.api.put(&IotHubSharedAccess::test("factory").allow());
    h.sa("factory").await.expect("reconciles");
    let st = h.api.get::<IotHubSharedAccess>(NS, "factory").unwrap().status.unwrap();
    assert_eq!(h.ready(&st.conditions).0, "True");
    assert_eq!(st.shared_access_policies, Some(iothub_access_operator::crd::Access::Allow));
    assert_eq!(h.emu.stats().writes(), 0);

    // Observe mode: Deny (with a data role holder present) is only reported.
    someone_holds_a_data_role_on_the_fleet_hub(&h).await;
    let writes = h.emu.stats().writes();
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny().observed());
    h.ctx.observer.rotate();
    h.sa("fleet").await.expect("reconciles");
    let st = h.api.get::<IotHubSharedAccess>(NS, "fleet").unwrap().status.unwrap();
    assert_eq!(h.ready(&st.conditions).1, "PendingChanges");
    assert_eq!(st.pending_actions[0].action, "SetHubAccess");
    assert_eq!(h.emu.stats().writes(), writes);

    // Switch to manage: applied. Then delete the resource: the hub keeps its settings.
    h.api.edit::<IotHubSharedAccess>(NS, "fleet", |o| {
        o.annotations_mut().remove("iothubaccess.io/reconcile");
    });
    h.sa("fleet").await.expect("reconciles");
    let hub = h.emu.snapshot().hubs.into_iter().find(|x| x.name == FLEET_HUB).unwrap();
    assert_eq!(hub.disable_local_auth, Some(true));
    h.api.delete::<IotHubSharedAccess>(NS, "fleet");
    h.sa("fleet").await.expect("cleanup");
    assert!(!h.api.exists::<IotHubSharedAccess>(NS, "fleet"));
    let hub = h.emu.snapshot().hubs.into_iter().find(|x| x.name == FLEET_HUB).unwrap();
    assert_eq!(hub.disable_local_auth, Some(true), "deleting the resource leaves the hub as it is");

    // Outside the allowed scopes: refused without a call.
    let h = H::new(&["/subscriptions/00000000-0000-0000-0000-000000000000"], None).await;
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny());
    h.sa("fleet").await.expect("reconciles");
    let st = h.api.get::<IotHubSharedAccess>(NS, "fleet").unwrap().status.unwrap();
    assert_eq!(h.ready(&st.conditions).1, "ScopeNotAllowed");
    assert_eq!(h.emu.stats().total(), 0);
}

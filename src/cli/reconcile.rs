//! `plan` and `apply`: the pipeline over manifests, without Kubernetes. Manifests are validated
//! (the admission rules), Azure is observed once per pass with shared reads, each resource is
//! planned, and `apply` carries the merged plan out (definitions, then creates, then hub
//! changes, then deletes), re-observing until Azure matches or nothing more can be done.
//!
//! Exit codes (so a GitOps pipeline can gate on them): `plan` 0 = Azure matches, 2 = changes
//! pending or refused, 1 = error; `apply` 0 = Azure matches, 2 = changes refused (blockers) or
//! left pending (observe mode), 1 = a write failed or an error occurred.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use futures::StreamExt;

pub use super::render::{to_json, write_apply_report, write_manifest_report, write_table};
use crate::apply::{self, Applied, Outcome};
use crate::azure::Azure;
use crate::controller::gate::{GatedAzure, ScopeGate};
use crate::controller::guardrail::Guardrail;
use crate::crd::{IotHubCustomRoleSpec, ReconcileMode};
use crate::desire;
use crate::desire::Guarded as _;
use crate::domain::naming::Owner;
use crate::manifest::{Document, Manifests, Resource};
use crate::observe::Observer;
use crate::pipeline::{Pipeline, Sources};
use crate::plan::ownership::Wants;
use crate::plan::{Finding, Plan, Reason, Severity};

/// How many resources are planned at once (reads are shared and paced by the client).
const PLAN_CONCURRENCY: usize = 32;

/// Output format of `plan` and `apply`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// A readable table.
    #[default]
    Table,
    /// One JSON document.
    Json,
}

/// One resource's plan.
#[derive(Clone, Debug)]
pub struct Planned {
    /// `Kind/namespace/name`.
    pub object: String,
    /// The file it came from.
    pub source: String,
    pub mode: ReconcileMode,
    /// The plan, or why there is none (an Azure read failed, a reference is missing).
    pub result: Result<Plan, String>,
}

impl Planned {
    fn plan(&self) -> Option<&Plan> {
        self.result.as_ref().ok()
    }
    fn writes(&self) -> bool {
        self.mode == ReconcileMode::Manage
    }
}

/// Totals over a set of plans.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub resources: usize,
    pub in_sync: usize,
    pub changes: usize,
    pub refused: usize,
    pub errors: usize,
    pub skipped: usize,
}

impl Summary {
    pub fn of(planned: &[Planned]) -> Summary {
        let mut s = Summary { resources: planned.len(), ..Summary::default() };
        for p in planned {
            match (&p.mode, &p.result) {
                (ReconcileMode::Skip, _) => s.skipped += 1,
                (_, Err(_)) => s.errors += 1,
                (_, Ok(plan)) => {
                    s.changes += plan.actions.len();
                    s.refused += plan.blockers().count();
                    s.in_sync += usize::from(plan.in_sync());
                }
            }
        }
        s
    }
}

/// The `iothubaccess.io/reconcile` mode, and the problem with an unknown value, which the
/// caller reports as an error (bad input is an error here, as in `validate`; the controller
/// observes instead and says so in status).
fn reconcile_mode(doc: &Document) -> (ReconcileMode, Option<String>) {
    let none = std::collections::BTreeMap::new();
    ReconcileMode::from_annotations(doc.resource.meta().annotations.as_ref().unwrap_or(&none))
}

/// The operator instance the command line derives names under by default (the controller's is
/// its cluster's): objects `apply` creates are never claimed by a controller, nor the reverse.
pub const CLI_INSTANCE: &str = "cli";

/// What `plan` and `apply` may touch: the same guardrail flags as `run`.
#[derive(clap::Args, Clone, Debug)]
pub struct Policy {
    /// ARM id prefix that may be planned and written (repeatable, or comma separated). None: every
    /// scope the credential reaches, and every run says so.
    #[arg(long = "allowed-scope", env = "IOTHUB_ACCESS_ALLOWED_SCOPES", value_delimiter = ',')]
    pub allowed_scopes: Vec<String>,
    /// A role definition GUID that may be granted although it grants more than IoT Hub data access.
    #[arg(long = "allowed-role", env = "IOTHUB_ACCESS_ALLOWED_ROLES", value_delimiter = ',')]
    pub allowed_roles: Vec<uuid::Uuid>,
    /// The operator instance names are derived under (see README, "Names the operator gives").
    #[arg(long, env = "IOTHUB_ACCESS_INSTANCE_ID", default_value = CLI_INSTANCE)]
    pub instance_id: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { allowed_scopes: vec![], allowed_roles: vec![], instance_id: CLI_INSTANCE.into() }
    }
}

impl Policy {
    /// The guardrail, when scopes were given.
    fn guardrail(&self) -> Option<Guardrail> {
        (!self.allowed_scopes.is_empty()).then(|| Guardrail::new(&self.allowed_scopes))
    }

    /// `Some(refusal)` when `ids` leave the allowed scopes.
    fn refuse(&self, ids: &[String]) -> Option<Plan> {
        let e = self.guardrail()?.check("", None, ids.iter().map(String::as_str)).err()?;
        Some(Plan::new(
            vec![],
            vec![Finding::new(Severity::Blocker, Reason::ScopeNotAllowed, e.to_string(), ids.to_vec())],
        ))
    }

    /// Said on every run without `--allowed-scope`.
    pub fn warn_if_open(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.allowed_scopes.is_empty() {
            writeln!(
                out,
                "warning: no --allowed-scope given: every scope the credential reaches is planned and written (the controller refuses everything without one)"
            )?;
        }
        Ok(())
    }

    /// The client `apply` writes through: with scopes, every write is checked on its exact ids.
    fn gate(&self, azure: Arc<dyn Azure>) -> Arc<dyn Azure> {
        match self.guardrail() {
            None => azure,
            Some(g) => {
                let gate = ScopeGate(Box::new(move |ids: &[String]| {
                    g.check("", None, ids.iter().map(String::as_str)).map_err(|e| e.to_string())
                }));
                Arc::new(GatedAzure::new(azure, Arc::new(gate)))
            }
        }
    }
}

fn owner(policy: &Policy, doc: &Document) -> Owner {
    Owner::new(&policy.instance_id, doc.resource.namespace(), doc.resource.name())
}

/// The custom role spec of `name` in `namespace`, from the manifests.
fn custom_role_in(manifests: &Manifests, namespace: &str, name: &str) -> Option<IotHubCustomRoleSpec> {
    manifests.valid_resources().find_map(|d| match &d.resource {
        Resource::CustomRole(c) if d.resource.namespace() == namespace && d.resource.name() == name => {
            Some(c.spec.clone())
        }
        _ => None,
    })
}

/// What every role assignment of the manifests wants (so none is revoked under another).
fn wants(policy: &Policy, manifests: &Manifests) -> Arc<Wants> {
    let mut out = Vec::new();
    for doc in manifests.valid_resources() {
        if let Resource::RoleAssignment(r) = &doc.resource {
            let ns = doc.resource.namespace();
            let o = owner(policy, doc);
            if let Ok(d) = desire::desire_role_assignment(&r.spec, &|n| custom_role_in(manifests, ns, n), &o) {
                out.push((o, d.scope.clone(), d.role.guid, d.principal_id.clone()));
            }
        }
    }
    Arc::new(Wants(out))
}

/// Plan one resource of the manifests: the kind's [`Pipeline`], with the manifests in place of
/// the cluster's caches and no status (nothing is hinted as owned).
async fn plan_document(
    obs: &Observer,
    manifests: &Manifests,
    policy: &Policy,
    wants: &Arc<Wants>,
    doc: &Document,
) -> Result<Plan, String> {
    let namespace = doc.resource.namespace();
    let lookup = |name: &str| custom_role_in(manifests, namespace, name);
    let src = Sources {
        owner: owner(policy, doc),
        custom_roles: &lookup,
        others: wants.clone(),
        allowed_roles: policy.allowed_roles.clone(),
    };
    match &doc.resource {
        Resource::CustomRole(r) => plan_one(r, obs, &src, policy).await,
        Resource::RoleAssignment(r) => plan_one(r, obs, &src, policy).await,
        Resource::SharedAccess(r) => plan_one(r, obs, &src, policy).await,
    }
}

/// desire -> guard (the policy's scopes) -> observe + plan, for any kind.
async fn plan_one<K: Pipeline>(k: &K, obs: &Observer, src: &Sources<'_>, policy: &Policy) -> Result<Plan, String> {
    let desired = k.desire(src).map_err(|e| e.detail())?;
    if let Some(refused) = policy.refuse(&desired.guarded_ids()) {
        return Ok(refused);
    }
    k.plan(obs, src, &desired, K::Owned::default()).await.map(|(plan, _)| plan).map_err(|e| e.to_string())
}

/// Plan every valid resource of `manifests` against Azure (one observation pass).
pub async fn plan_manifests(azure: Arc<dyn Azure>, manifests: &Manifests, policy: &Policy) -> Vec<Planned> {
    let obs = Observer::new(azure);
    let wants = wants(policy, manifests);
    futures::stream::iter(manifests.valid_resources())
        .map(|doc| {
            let obs = &obs;
            let wants = &wants;
            async move {
                let (mode, problem) = reconcile_mode(doc);
                let result = match problem {
                    Some(p) => Err(format!("metadata.annotations: {p}")),
                    None if mode == ReconcileMode::Skip => Ok(Plan::default()),
                    None => plan_document(obs, manifests, policy, wants, doc).await,
                };
                Planned { object: doc.resource.object_ref(), source: doc.source.clone(), mode, result }
            }
        })
        .buffered(PLAN_CONCURRENCY)
        .collect()
        .await
}

/// `plan`'s exit code for these results.
pub fn plan_exit_code(manifests: &Manifests, planned: &[Planned]) -> i32 {
    let s = Summary::of(planned);
    if !manifests.errors.is_empty() || s.errors > 0 {
        1
    } else if s.changes > 0 || s.refused > 0 {
        2
    } else {
        0
    }
}

/// `plan -f PATH...`: read-only.
pub async fn run_plan(
    azure: Arc<dyn Azure>,
    manifests: &Manifests,
    policy: &Policy,
    format: OutputFormat,
    out: &mut dyn Write,
) -> std::io::Result<i32> {
    policy.warn_if_open(&mut std::io::stderr())?;
    let planned = plan_manifests(azure, manifests, policy).await;
    match format {
        OutputFormat::Table => {
            write_manifest_report(manifests, out)?;
            write_table(&planned, out)?;
        }
        OutputFormat::Json => {
            writeln!(out, "{}", serde_json::to_string_pretty(&to_json(manifests, &planned)).unwrap_or_default())?;
        }
    }
    Ok(plan_exit_code(manifests, &planned))
}

/// What `apply` did.
#[derive(Clone, Debug, Default)]
pub struct ApplyReport {
    /// Every write attempted, with the resources that wanted it.
    pub applied: Vec<(Applied, Vec<String>)>,
    /// The plans after the last re-observation.
    pub final_plans: Vec<Planned>,
    /// Observation passes made (each followed by writes, except the last).
    pub passes: usize,
}

impl ApplyReport {
    pub fn failed(&self) -> impl Iterator<Item = &(Applied, Vec<String>)> {
        self.applied.iter().filter(|(a, _)| matches!(a.outcome, Outcome::Failed(_)))
    }
}

/// Most passes `apply` makes: a pass can unblock the next (a data role created in one pass lets
/// shared access be denied in the next), and the last pass only re-observes.
pub const MAX_PASSES: usize = 4;

/// Plan, write, re-observe; repeat while writes make progress.
pub async fn apply_manifests(
    azure: Arc<dyn Azure>,
    manifests: &Manifests,
    concurrency: usize,
    policy: &Policy,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let writer = policy.gate(azure.clone());
    loop {
        let planned = plan_manifests(azure.clone(), manifests, policy).await;
        report.passes += 1;
        let writable: Vec<&Planned> = planned.iter().filter(|p| p.writes()).collect();
        let merged = Plan::merge(writable.iter().filter_map(|p| p.plan().cloned()));
        if merged.actions.is_empty() || report.passes >= MAX_PASSES {
            report.final_plans = planned;
            return report;
        }
        let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in &writable {
            for a in p.plan().map(|p| p.actions.as_slice()).unwrap_or_default() {
                owners.entry(a.to_string()).or_default().push(p.object.clone());
            }
        }
        let applied = apply::apply(writer.clone(), &merged, concurrency).await;
        let progressed = applied.iter().any(|a| matches!(a.outcome, Outcome::Done | Outcome::Adopted(_)));
        for a in applied {
            let who = owners.get(&a.action.to_string()).cloned().unwrap_or_default();
            report.applied.push((a, who));
        }
        if !progressed {
            report.final_plans = plan_manifests(azure.clone(), manifests, policy).await;
            report.passes += 1;
            return report;
        }
    }
}

/// `apply`'s exit code.
pub fn apply_exit_code(manifests: &Manifests, report: &ApplyReport) -> i32 {
    let s = Summary::of(&report.final_plans);
    if !manifests.errors.is_empty() || s.errors > 0 || report.failed().next().is_some() && s.changes > 0 {
        1
    } else if s.changes > 0 || s.refused > 0 {
        2
    } else {
        0
    }
}

/// `apply -f PATH...`.
pub async fn run_apply(
    azure: Arc<dyn Azure>,
    manifests: &Manifests,
    concurrency: usize,
    policy: &Policy,
    format: OutputFormat,
    out: &mut dyn Write,
) -> std::io::Result<i32> {
    policy.warn_if_open(&mut std::io::stderr())?;
    if !manifests.errors.is_empty() {
        // Nothing is written while any manifest is invalid: a half-applied folder is worse.
        write_manifest_report(manifests, out)?;
        writeln!(out, "Nothing applied: fix the invalid manifest(s) above first.")?;
        return Ok(1);
    }
    let report = apply_manifests(azure, manifests, concurrency, policy).await;
    match format {
        OutputFormat::Table => {
            write_manifest_report(manifests, out)?;
            write_apply_report(&report, out)?;
        }
        OutputFormat::Json => {
            let doc = super::render::apply_json(manifests, &report);
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
        }
    }
    Ok(apply_exit_code(manifests, &report))
}

//! `plan` and `apply`: the pipeline over manifests, without Kubernetes. Manifests are validated
//! (the admission rules), Azure is observed once per pass with shared reads, each resource is
//! planned, and `apply` carries the merged plan out (definitions, then creates, then hub
//! changes, then deletes), re-observing until Azure matches or nothing more can be done. The
//! results are the types of `report`, shown by `render`.
//!
//! Exit codes (so a GitOps pipeline can gate on them): `plan` 0 = Azure matches, 2 = changes
//! pending or refused, 1 = error; `apply` 0 = Azure matches, 2 = changes refused (blockers) or
//! left pending (observe mode), 1 = a write failed or an error occurred.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use futures::StreamExt;

pub use super::render::{to_json, write_apply_report, write_manifest_report, write_table};
use super::report::{ApplyReport, Planned, Summary};
use crate::apply;
use crate::azure::Azure;
use crate::crd::{IotHubCustomRoleSpec, ReconcileMode};
use crate::desire;
use crate::desire::Guarded as _;
use crate::domain::Scope;
use crate::domain::naming::Owner;
use crate::gate::scopes::HOW_TO_ALLOW;
use crate::gate::{Gate, GateArgs};
use crate::manifest::{Document, Manifests, Resource};
use crate::observe::Observer;
use crate::outcome::Outcome;
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
    /// Markdown for a pull-request comment (GitHub, Azure DevOps).
    Markdown,
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

/// What `plan` and `apply` may touch: the same gate, and the same flags, as `run`.
#[derive(clap::Args, Clone, Debug)]
pub struct Policy {
    #[command(flatten)]
    pub guard: GateArgs,
    /// The operator instance names are derived under (see README, "Names the operator gives").
    #[arg(long, env = "IOTHUB_ACCESS_INSTANCE_ID", default_value = CLI_INSTANCE)]
    pub instance_id: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { guard: GateArgs::default(), instance_id: CLI_INSTANCE.into() }
    }
}

impl Policy {
    /// The security gate (`crate::gate`) these flags describe: the one `run` uses, without
    /// namespace annotations or a fence.
    pub fn gate(&self) -> Gate {
        self.guard.gate()
    }

    /// `Some(refusal)` when `ids` leave the allowed scopes (all of them, when none are given).
    fn refuse(&self, ids: &[Scope]) -> Option<Plan> {
        let e = self.gate().check("", ids).err()?;
        Some(Plan::new(
            vec![],
            vec![Finding::new(
                Severity::Blocker,
                Reason::ScopeNotAllowed,
                e.message,
                ids.iter().map(ToString::to_string).collect(),
            )],
        ))
    }

    /// Said on every run without `--allowed-scope`, and on every run that allows every scope.
    pub fn warn_if_open(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let gate = self.gate();
        if gate.scopes().is_empty() {
            writeln!(
                out,
                "warning: no --allowed-scope given: nothing is written and every resource is refused (ScopeNotAllowed); {HOW_TO_ALLOW}"
            )?;
        } else if gate.scopes().is_open() {
            writeln!(out, "warning: --allowed-scope / : every scope the credential reaches is planned and written")?;
        }
        Ok(())
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

/// What every role assignment of the manifests that may ask for a grant wants (so none is revoked
/// under another): managed, valid, inside the allowed scopes, not naming another namespace's
/// custom role (the controller's rule, `controller/wants.rs`).
fn wants(policy: &Policy, manifests: &Manifests) -> Arc<Wants> {
    let mut out = Vec::new();
    for doc in manifests.valid_resources() {
        if let Resource::RoleAssignment(r) = &doc.resource
            && reconcile_mode(doc) == (ReconcileMode::Manage, None)
        {
            let ns = doc.resource.namespace();
            let o = owner(policy, doc);
            let principals = |n: &str, c: &str, k: &str| manifests.config_map_value(n, c, k);
            let Ok(spec) = desire::resolve_principal(&r.spec, ns, &principals) else { continue };
            if let Ok(d) = desire::desire_role_assignment(&spec, &|n| custom_role_in(manifests, ns, n), &o)
                && policy.refuse(&d.guarded_scopes()).is_none()
                && (d.role.definition.is_some()
                    || custom_role_owner(policy, manifests, d.role.guid).is_none_or(|c| c.namespace == ns))
            {
                out.push((o, d.grant()));
            }
        }
    }
    Arc::new(Wants(out))
}

/// The custom role of the manifests (any namespace) whose definition GUID is `guid`.
fn custom_role_owner(policy: &Policy, manifests: &Manifests, guid: uuid::Uuid) -> Option<Owner> {
    manifests.valid_resources().find_map(|d| match &d.resource {
        Resource::CustomRole(_) => Some(owner(policy, d)).filter(|o| o.definition_name() == guid),
        _ => None,
    })
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
    let roles = |guid| custom_role_owner(policy, manifests, guid);
    let principals = |ns: &str, name: &str, key: &str| manifests.config_map_value(ns, name, key);
    let src = Sources {
        owner: owner(policy, doc),
        custom_roles: &lookup,
        others: wants.clone(),
        allowed_roles: policy.guard.allowed_roles.clone(),
        custom_role_owner: &roles,
        principals: &principals,
    };
    match &doc.resource {
        Resource::CustomRole(r) => plan_one(r, obs, &src, policy).await,
        Resource::RoleAssignment(r) => plan_one(r, obs, &src, policy).await,
        Resource::SharedAccess(r) => match shared_access_conflict(policy, manifests, doc, r) {
            Some(conflict) => Ok(conflict),
            None => plan_one(r, obs, &src, policy).await,
        },
    }
}

/// Another managed, valid, allowed `IotHubSharedAccess` of the manifests that keeps `r`'s hub
/// (the controller's rule: one owner per hub), as the refusal.
fn shared_access_conflict(
    policy: &Policy,
    manifests: &Manifests,
    doc: &Document,
    r: &crate::crd::IotHubSharedAccess,
) -> Option<Plan> {
    let hub = desire::desire_shared_access(&r.spec).ok()?.hub;
    let claimant = |d: &Document| crate::plan::shared_access::Claimant { owner: owner(policy, d), created: None };
    let others: Vec<_> = manifests
        .valid_resources()
        .filter(|d| {
            d.resource.object_ref() != doc.resource.object_ref() && reconcile_mode(d) == (ReconcileMode::Manage, None)
        })
        .filter(|d| match &d.resource {
            Resource::SharedAccess(o) => desire::desire_shared_access(&o.spec)
                .is_ok_and(|o| o.hub.key() == hub.key() && policy.refuse(&[o.hub.scope()]).is_none()),
            _ => false,
        })
        .map(claimant)
        .collect();
    let f = crate::plan::shared_access::conflict(&claimant(doc), &hub, &others)?;
    Some(Plan::new(vec![], vec![f]))
}

/// desire -> guard (the policy's scopes) -> observe + plan, for any kind.
async fn plan_one<K: Pipeline>(k: &K, obs: &Observer, src: &Sources<'_>, policy: &Policy) -> Result<Plan, String> {
    let desired = k.desire(src).map_err(|e| e.detail())?;
    if let Some(refused) = policy.refuse(&desired.guarded_scopes()) {
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
/// With `identity` (the credential's object id), its findings follow: what it holds beyond what
/// these manifests need, and what it lacks for them.
pub async fn run_plan(
    azure: Arc<dyn Azure>,
    manifests: &Manifests,
    policy: &Policy,
    identity: Option<&str>,
    format: OutputFormat,
    out: &mut dyn Write,
) -> std::io::Result<i32> {
    policy.warn_if_open(&mut std::io::stderr())?;
    let planned = plan_manifests(azure.clone(), manifests, policy).await;
    let checked = match identity {
        Some(oid) => {
            Some((oid, super::identity::check(azure.as_ref(), oid, manifests, policy.gate().scopes().allowed()).await))
        }
        None => None,
    };
    match format {
        OutputFormat::Table => {
            write_manifest_report(manifests, out)?;
            write_table(&planned, out)?;
            if let Some((oid, result)) = &checked {
                super::identity::write(oid, result, out)?;
            }
        }
        OutputFormat::Json => {
            let mut doc = to_json(manifests, &planned);
            if let Some((oid, result)) = &checked {
                doc["identity"] = super::identity::to_json(oid, result);
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
        }
        OutputFormat::Markdown => {
            let identity = checked.as_ref().map(|(oid, result)| (*oid, result));
            super::render::write_markdown(manifests, &planned, identity, out)?;
        }
    }
    Ok(plan_exit_code(manifests, &planned))
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
    let writer = policy.gate().azure_for("", azure.clone());
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
        OutputFormat::Markdown => super::render::write_apply_markdown(manifests, &report, out)?,
    }
    Ok(apply_exit_code(manifests, &report))
}

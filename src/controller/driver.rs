//! The reconcile driver: one reconcile function for every kind, over named steps. A kind supplies
//! only its steps ([`Steps`]); the driver runs them in this order, inside the finalizer, in a
//! span naming the resource, and counts the reconcile:
//!
//! ```text
//! desire ─► guard ─► observe+plan ─► (observe mode: report) ─► apply ─► report
//!   │         │           │                                      │         │
//!   Stop      ScopeNot    AzureError                             writes    Verdict (Ready, reason,
//!   (status)  Allowed     (status, retried)                      Events    message, requeue)
//! ```
//!
//! - **desire** turns the spec into desired state (pure, plus the controller's caches) or stops
//!   with a reason (invalid spec, waiting for a custom role);
//! - **guard** names the ARM ids the namespace's guardrail must allow before Azure is read;
//! - **observe + plan** runs the engine, which returns what it observed with the plan;
//! - **apply** writes through the namespace-gated client, reports each write as an Event and
//!   forgets the reads it changed; a write that repairs drift says so;
//! - **report** records what the kind tracks (ownership, what Azure holds) and gives the verdict.
//!
//! Status is written once at the end (`finish`), only when it changed, conditional on the
//! `resourceVersion` it was decided on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use tracing::Instrument;

use super::status::{self, Conditioned as _, READY};
use super::{Context, Kind, ReconcileError, Step, done, key_of, reconcile_mode};
use crate::apply::{self, Applied};
use crate::azure::AzureError;
use crate::crd::ReconcileMode;
use crate::crd::common::FINALIZER;
use crate::desire::Guarded;
use crate::outcome::Outcome;
use crate::plan::{Finding, Plan};
use crate::reason::Reason;

/// Why the pipeline stops before Azure is read: reported in `Ready`, not an error.
pub struct Stop {
    pub reason: Reason,
    pub message: String,
    /// Publish a Warning Event (once per message).
    pub event: bool,
    /// Look again after this (`None`: at the next change or resync).
    pub retry: Option<Duration>,
}

/// The `Ready` verdict of a reconcile, and when to look again (`None`: at the next change or
/// resync).
pub struct Verdict {
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
    pub requeue: Option<Duration>,
}

impl Verdict {
    pub fn ready(message: impl Into<String>) -> Verdict {
        Verdict { ready: true, reason: Reason::Reconciled, message: message.into(), requeue: None }
    }

    /// Ready unless the plan has blockers (then the first blocker's reason, every message).
    pub fn of_plan(plan: &Plan, ready_message: impl Into<String>) -> Verdict {
        if plan.blockers().next().is_some() {
            let (ready, reason, message) = status::plan_verdict(plan);
            Verdict { ready, reason, message, requeue: None }
        } else {
            Verdict::ready(ready_message)
        }
    }
}

/// One kind's steps. The driver ([`reconcile`]) runs them; see the module documentation.
#[async_trait]
pub trait Steps: Kind + Send + Sync + 'static {
    /// The desired state the spec resolves to (naming the ARM ids the guardrail checks).
    type Desired: Guarded + Send + Sync;
    /// What the plan was made from besides the plan (the kind's `Pipeline::View`: the owned ids
    /// status hinted that Azure's data proved, or the hub and its dependents as observed).
    type View: Send + Sync;
    /// What drift of this kind is called in a `DriftRepaired` Event.
    const SUBJECT: &'static str;

    /// desire: the spec as desired state, or why the pipeline stops. May record what it resolved
    /// in status.
    async fn desire(&self, ctx: &Context, st: &mut Self::Status) -> Result<Self::Desired, Stop>;

    /// observe + plan, through the engine.
    async fn plan(
        &self,
        ctx: &Context,
        desired: &Self::Desired,
        st: &Self::Status,
    ) -> Result<(Plan, Self::View), AzureError>;

    /// Record in status what was observed (every mode, before anything is written).
    fn observed(&self, _st: &mut Self::Status, _desired: &Self::Desired, _plan: &Plan, _view: &Self::View) {}

    /// Does writing this plan repair drift (when the resource was Ready for its generation)?
    fn drifted(plan: &Plan) -> bool {
        !plan.actions.is_empty()
    }

    /// Tell the plan's blockers: a Warning Event per reason not reported yet.
    async fn tell_blockers(&self, ctx: &Context, st: &Self::Status, blockers: &[&Finding]) {
        tell_once(self, ctx, st, blockers, "").await;
    }

    /// report: record what the writes did and give the verdict. A failed write the kind does
    /// not [`absorb`](Steps::absorbs) fails the reconcile after this.
    async fn applied(
        &self,
        ctx: &Context,
        st: &mut Self::Status,
        desired: &Self::Desired,
        plan: &Plan,
        view: &Self::View,
        applied: &[Applied],
    ) -> Verdict;

    /// A write failure the kind reports in its verdict instead of retrying.
    fn absorbs(_e: &AzureError) -> bool {
        false
    }

    /// The resource is being deleted: remove what it owns (or refuse, retried), planned by the
    /// kind's `Pipeline::plan_cleanup` from the same `Sources` as `plan`, written by
    /// [`cleanup_apply`].
    async fn cleanup(&self, api: &Api<Self>, ctx: &Context) -> Result<Requeue, ReconcileError>;
}

/// A Warning Event for each blocker whose reason `Ready` does not already show, `lead` first.
pub async fn tell_once<K: Kind>(obj: &K, ctx: &Context, st: &K::Status, blockers: &[&Finding], lead: &str) {
    for f in blockers {
        if !status::already_told(st.conditions(), f.reason.as_str(), None) {
            let note = format!("{lead}{} ({})", f.message, f.resource_ids.join(", "));
            ctx.event(obj, EventType::Warning, f.reason, note).await;
        }
    }
}

/// The controller's entry point for one object of any kind: a fair turn among the namespaces
/// (`fair.rs`), then the reconcile (boxed, so a reconcile waiting for its turn stays small).
pub async fn reconcile<K: Steps>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    let _turn = ctx.turns.take(&obj.namespace().unwrap_or_default()).await;
    Box::pin(reconcile_now(obj, ctx)).await
}

async fn reconcile_now<K: Steps>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let started = Instant::now();
    let span = tracing::info_span!("reconcile", kind = K::KIND, namespace = %obj.namespace().unwrap_or_default(), name = %obj.name_any());
    let result = kube::runtime::finalizer::finalizer(&api, FINALIZER, obj, |event| async {
        use kube::runtime::finalizer::Event;
        match event {
            Event::Apply(o) => {
                let o = progressing(&api, o).await?;
                run(&api, o.as_ref(), &ctx).await
            }
            Event::Cleanup(o) => o.cleanup(&api, &ctx).await,
        }
    })
    .instrument(span)
    .await;
    let result = result.map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => ReconcileError::Finalizer(other.to_string()),
    });
    let outcome = result.as_ref().map_or_else(|e| e.step(), |_| "ok");
    ctx.metrics.reconciled(K::KIND, outcome, started.elapsed());
    result
}

/// The steps, in order.
async fn run<K: Steps>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<Requeue, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let (mode, mode_problem) = reconcile_mode(obj);
    if mode == ReconcileMode::Skip {
        return Ok(done(ctx, obj));
    }
    let mut st = obj.status().cloned().unwrap_or_default();

    // desire
    let desired = match obj.desire(ctx, &mut st).await {
        Ok(d) => d,
        Err(stop) => {
            if stop.event && !status::already_told(st.conditions(), stop.reason.as_str(), Some(&stop.message)) {
                ctx.event(obj, EventType::Warning, stop.reason, stop.message.clone()).await;
            }
            finish(api, obj, ctx, st, false, stop.reason, &stop.message).await?;
            let next = done(ctx, obj);
            return Ok(stop.retry.map_or(next, Requeue::requeue));
        }
    };

    // guard
    let ids = desired.guarded_scopes();
    if let Err(e) = ctx.check_scopes(&ns, &ids)? {
        let why = Reason::ScopeNotAllowed;
        if !status::already_told(st.conditions(), why.as_str(), None) {
            ctx.event(obj, EventType::Warning, why, e.to_string()).await;
        }
        finish(api, obj, ctx, st, false, why, &e.to_string()).await?;
        return Ok(done(ctx, obj));
    }

    // observe + plan
    let (plan, view) = match obj.plan(ctx, &desired, &st).await {
        Ok(p) => p,
        Err(source) => {
            let subject = ids.first().map(ToString::to_string).unwrap_or_default();
            let e = ReconcileError::At { step: Step::Observe, subject, source };
            finish(api, obj, ctx, st, false, e.reason(), &e.to_string()).await?;
            return Err(e);
        }
    };
    obj.observed(&mut st, &desired, &plan, &view);
    if mode != ReconcileMode::Manage {
        *st.pending_actions_mut() = status::pending(&plan.actions);
        let (ready, why, msg) = status::observe_verdict(&plan, mode_problem);
        finish(api, obj, ctx, st, ready, why, &msg).await?;
        return Ok(done(ctx, obj));
    }
    st.pending_actions_mut().clear();
    let previously_ready = status::is_true(st.conditions(), READY) && st.observed_generation() == obj.meta().generation;
    obj.tell_blockers(ctx, &st, &plan.blockers().collect::<Vec<_>>()).await;

    // apply
    let applied = apply::apply(ctx.azure_for(&ns), &plan, ctx.settings.write_concurrency).await;
    ctx.report_writes(obj, K::KIND, &applied, K::absorbs).await;
    if previously_ready && K::drifted(&plan) {
        ctx.drift_repaired(obj, K::SUBJECT, &applied).await;
    }

    // report
    let verdict = obj.applied(ctx, &mut st, &desired, &plan, &view, &applied).await;
    if let Some(e) = first_failed(&applied, Step::Apply, K::absorbs) {
        finish(api, obj, ctx, st, false, e.reason(), &e.to_string()).await?;
        return Err(e);
    }
    finish(api, obj, ctx, st, verdict.ready, verdict.reason, &verdict.message).await?;
    let next = done(ctx, obj);
    Ok(verdict.requeue.map_or(next, Requeue::requeue))
}

/// The cleanup plan of `obj` through its [`Pipeline`](crate::pipeline::Pipeline), with the same
/// sources as apply; a failure names the step and `subject` (the Azure id it was about, else the
/// resource).
pub async fn cleanup_plan<K: Kind + crate::pipeline::Pipeline>(
    obj: &K,
    ctx: &Context,
    src: &crate::pipeline::Sources<'_>,
    desired: Option<&K::Desired>,
    owned: K::Owned,
    subject: Option<String>,
) -> Result<Plan, ReconcileError> {
    crate::pipeline::Pipeline::plan_cleanup(obj, &ctx.observer.get(), src, desired, owned).await.map_err(|source| {
        ReconcileError::At {
            step: Step::Cleanup,
            subject: subject.unwrap_or_else(|| format!("{} {}", K::KIND, key_of(obj))),
            source,
        }
    })
}

/// Cleanup's shared start: a resource not managed (observe or skip) leaves Azure as it is.
/// `true` when cleanup should go on.
pub async fn cleanup_managed<K: Kind>(obj: &K, ctx: &Context) -> bool {
    if reconcile_mode(obj).0 == ReconcileMode::Manage {
        return true;
    }
    ctx.metrics.forget(K::KIND, &key_of(obj));
    ctx.event(
        obj,
        EventType::Normal,
        Reason::LeftInAzure,
        "not managed (reconcile annotation): Azure left as is".into(),
    )
    .await;
    false
}

/// Cleanup's shared end: write `plan`, report the writes, fail on the first failed write.
pub async fn cleanup_apply<K: Kind>(obj: &K, ctx: &Context, plan: &Plan) -> Result<Requeue, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let applied = apply::apply(ctx.azure_for(&ns), plan, ctx.settings.write_concurrency).await;
    ctx.report_writes(obj, K::KIND, &applied, |_| false).await;
    if let Some(e) = first_failed(&applied, Step::Cleanup, |_| false) {
        return Err(e);
    }
    ctx.metrics.forget(K::KIND, &key_of(obj));
    Ok(Requeue::await_change())
}

/// The first write that failed (and that the kind does not `absorb`), as the step's error
/// naming the write and its ARM id.
fn first_failed(applied: &[Applied], step: Step, absorbs: impl Fn(&AzureError) -> bool) -> Option<ReconcileError> {
    applied.iter().find_map(|a| match &a.outcome {
        Outcome::Failed(e) if !absorbs(e) => Some(ReconcileError::At {
            step,
            subject: format!("{} {}", a.action.verb(), a.action.target()),
            source: e.clone(),
        }),
        _ => None,
    })
}

/// A generation not reconciled yet (a new resource, a changed spec): say `Reconciling` before any
/// Azure call, so that GitOps tools see InProgress rather than the previous verdict. One status
/// write per new generation; nothing in steady state.
async fn progressing<K: Kind>(api: &Api<K>, obj: Arc<K>) -> Result<Arc<K>, ReconcileError> {
    let generation = obj.meta().generation;
    let mut st = obj.status().cloned().unwrap_or_default();
    if obj.meta().deletion_timestamp.is_some()
        || (obj.status().is_some() && st.observed_generation() == generation)
        || status::is_true(st.conditions(), status::RECONCILING)
    {
        return Ok(obj);
    }
    let message = format!("reconciling generation {}", generation.unwrap_or_default());
    status::set_condition(
        st.conditions_mut(),
        status::RECONCILING,
        true,
        Reason::Progressing.as_str(),
        &message,
        generation,
    );
    // The rest of the reconcile writes on top of the version written here.
    Ok(status::write(api, obj.as_ref(), obj.status(), &st).await?.map_or(obj, Arc::new))
}

/// Set `Ready`, `Reconciling`/`Stalled` and `observedGeneration` on `st`, remember the state for
/// metrics, and write the status when it changed.
/// The reconcile request token `obj` carries and its status has not handled yet.
pub fn requested<K: Kind>(obj: &K) -> Option<&str> {
    let last = obj.status().and_then(|s| status::Conditioned::last_handled_reconcile_at(s));
    obj.meta().annotations.as_ref().and_then(|a| crate::crd::common::reconcile_requested(a, last))
}

pub async fn finish<K: Kind>(
    api: &Api<K>,
    obj: &K,
    ctx: &Context,
    mut st: K::Status,
    ready: bool,
    why: Reason,
    message: &str,
) -> Result<(), ReconcileError> {
    let generation = obj.meta().generation;
    st.set_observed_generation(generation);
    if let Some(token) = requested(obj) {
        st.set_last_handled_reconcile_at(Some(token.to_string()));
    }
    status::set_condition(st.conditions_mut(), READY, ready, why.as_str(), message, generation);
    status::set_progress(st.conditions_mut(), status::progress(ready, why), why, message, generation);
    ctx.metrics.set_state(K::KIND, key_of(obj), ready, why.as_str());
    status::write(api, obj, obj.status(), &st).await?;
    Ok(())
}

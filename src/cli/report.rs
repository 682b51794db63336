//! What `plan` and `apply` produce for the command line: each resource's plan ([`Planned`]),
//! totals over plans ([`Summary`]) and what `apply` did ([`ApplyReport`]). Plain data, built by
//! `reconcile` and shown by `render`.

use crate::apply::Applied;
use crate::crd::ReconcileMode;
use crate::outcome::Outcome;
use crate::plan::Plan;

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
    pub(super) fn plan(&self) -> Option<&Plan> {
        self.result.as_ref().ok()
    }
    pub(super) fn writes(&self) -> bool {
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

//! The `apply` step: carry a [`Plan`]'s actions out through the [`Azure`] trait, the only writer,
//! and collect each action with its [`Outcome`] ([`Applied`]; the outcome type itself is in
//! [`crate::outcome`]).
//! Phases run in the plan's order (definitions, creates, hub changes, deletes) so every change is
//! make-before-break; actions within a phase run concurrently up to a bound (the Azure client
//! paces them inside ARM's token buckets). A failed action does not stop its phase, but later
//! phases are skipped so nothing is deleted before its replacement exists. A Deny of shared
//! access goes through the interlock ([`crate::interlock`]): checked on fresh reads right before
//! the write, checked again right after, put back if a key link appeared in between. A hub write
//! that Azure ends up holding differently (a policy) is reported, never taken as done.

use std::sync::Arc;

use futures::StreamExt;

use crate::azure::{Azure, AzureError, CreateOutcome, HubAccessChange};
use crate::domain::ObservedHub;
use crate::outcome::Outcome;
use crate::plan::{Action, Plan, Wrote};

/// An action and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub action: Action,
    pub outcome: Outcome,
    /// For a hub write, the hub as Azure holds it afterwards when the write read it (the
    /// observer keeps it instead of reading it again).
    pub hub: Option<ObservedHub>,
}

impl Applied {
    pub fn new(action: Action, outcome: Outcome) -> Applied {
        Applied { action, outcome, hub: None }
    }
}

/// Each action with how it came out, for the pure report step.
pub fn wrote(applied: &[Applied]) -> Vec<(Action, Wrote)> {
    applied.iter().map(|a| (a.action.clone(), a.outcome.wrote())).collect()
}

/// Run one action. A hub write goes through the interlock, which also hands back the hub as
/// Azure holds it afterwards.
pub async fn apply_action(azure: &Arc<dyn Azure>, action: &Action) -> Applied {
    let res: Result<Outcome, AzureError> = match action {
        Action::SetHubAccess { hub, shared_access, device_sas, module_sas } => {
            let change =
                HubAccessChange { shared_access: *shared_access, device_sas: *device_sas, module_sas: *module_sas };
            let done = if change.shared_access == Some(crate::domain::Access::Deny) {
                crate::interlock::deny(azure.clone(), hub, &change).await
            } else {
                crate::interlock::write(azure.clone(), hub, &change).await
            };
            return Applied { action: action.clone(), outcome: done.outcome, hub: done.hub };
        }
        Action::PutRoleDefinition { scope, definition, .. } => {
            azure.put_role_definition(scope, definition).await.map(|_| Outcome::Done)
        }
        Action::CreateRoleAssignment(new) => azure.create_role_assignment(new).await.map(|o| match o {
            CreateOutcome::Created => Outcome::Done,
            CreateOutcome::AlreadyExists { existing } => Outcome::Adopted(existing),
        }),
        // The same assignment written again with the heir in its tag.
        Action::HandOverRoleAssignment { assignment, .. } => {
            azure.create_role_assignment(assignment).await.and_then(|o| match o {
                CreateOutcome::Created => Ok(Outcome::Done),
                CreateOutcome::AlreadyExists { existing } => Err(AzureError::Conflict {
                    code: "RoleAssignmentExists".into(),
                    message: format!("handing over {} found the grant under another name, {existing}", assignment.id),
                    existing_name: None,
                }),
            })
        }
        Action::DeleteRoleAssignment { id } => {
            azure.delete_role_assignment(id).await.map(|d| if d { Outcome::Done } else { Outcome::AlreadyDone })
        }
        Action::DeleteRoleDefinition { id, .. } => {
            azure.delete_role_definition(id).await.map(|d| if d { Outcome::Done } else { Outcome::AlreadyDone })
        }
    };
    Applied::new(action.clone(), res.unwrap_or_else(Outcome::Failed))
}

/// Run a whole plan. `concurrency` bounds the actions in flight within a phase.
pub async fn apply(azure: Arc<dyn Azure>, plan: &Plan, concurrency: usize) -> Vec<Applied> {
    let mut out: Vec<Applied> = Vec::with_capacity(plan.actions.len());
    let mut failed = false;
    let mut i = 0;
    while i < plan.actions.len() {
        let phase = plan.actions[i].phase();
        let end = plan.actions[i..].iter().position(|a| a.phase() != phase).map_or(plan.actions.len(), |p| i + p);
        let batch = &plan.actions[i..end];
        if failed {
            out.extend(batch.iter().map(|a| Applied::new(a.clone(), Outcome::Skipped)));
        } else {
            let results: Vec<Applied> = futures::stream::iter(batch.iter().cloned())
                .map(|action| {
                    let azure = azure.clone();
                    async move { apply_action(&azure, &action).await }
                })
                .buffered(concurrency.max(1))
                .collect()
                .await;
            failed = results.iter().any(|r| matches!(r.outcome, Outcome::Failed(_)));
            out.extend(results);
        }
        i = end;
    }
    out
}

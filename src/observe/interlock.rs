//! What the SAS interlock judges a hub on, read through the shared [`Observer`]: the hub, what
//! depends on its shared access (DPS and Device Update instances in reach), the role assignments
//! effective at the hub and the definitions of the custom roles they use. None of them is older
//! than the re-check interval; the dependents can be read fresh (not from the search of the last
//! seconds), as the check right before and right after a Deny is written does. The planner of
//! `IotHubSharedAccess` (`engine`) and the interlock (`crate::interlock`) both read through here.
//! I/O: reads through the [`Observer`] only.

use crate::azure::AzureError;
use crate::domain::{DependentsObservation, HubId, ObservedAssignment, ObservedHub, RoleDefinition};

use super::Observer;

/// What the SAS interlock judges a hub on.
pub struct InterlockInputs {
    pub hub: Option<ObservedHub>,
    pub dependents: DependentsObservation,
    pub assignments: Vec<ObservedAssignment>,
    pub roles: Vec<RoleDefinition>,
}

/// Read what the interlock needs for `hub`: the hub, its dependents (`fresh`: read now, not from
/// the observer's search of the last seconds), the assignments effective at the hub and the
/// definitions of their roles; none of them is older than
/// the re-check interval, so a refusal re-checked after it decides on new reads.
pub async fn interlock_inputs(obs: &Observer, hub: &HubId, fresh: bool) -> Result<InterlockInputs, AzureError> {
    match obs.hub_recent(hub).await? {
        Some(h) => interlock_reads(obs, h, fresh).await,
        None => Ok(InterlockInputs {
            hub: None,
            dependents: DependentsObservation::none(),
            assignments: vec![],
            roles: vec![],
        }),
    }
}

/// [`interlock_inputs`] for a hub already read.
pub async fn interlock_reads(obs: &Observer, hub: ObservedHub, fresh: bool) -> Result<InterlockInputs, AzureError> {
    let also = [hub.id.subscription_id.as_str()];
    let dependents = if fresh { obs.dependents_fresh(&also).await } else { obs.dependents(&also).await };
    let assignments = obs.assignments_at_recent(&hub.id.scope()).await?;
    let guids = assignments.iter().map(|a| a.role_definition).collect();
    let roles = obs.custom_roles(Some(&hub.id.subscription_id), guids, true).await;
    Ok(InterlockInputs { hub: Some(hub), dependents, assignments, roles })
}

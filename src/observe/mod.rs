//! The `observe` step: read what Azure has, shared across every resource of a pass. Each
//! distinct read (a role assignment list at a scope, a hub, a role definition) is made at most once
//! per [`Observer`], however many resources need it, and concurrent askers wait for the one
//! request in flight (single-flight, `memo.rs`). So ARM reads grow with hubs and scopes, not with
//! resources. What depends on hubs' shared access (DPS and Device Update instances in every
//! subscription the identity can list) is one search shared by every hub, kept for at most
//! the re-check interval so a refusal is re-checked against Azure promptly; a check that allows
//! a Deny reads it fresh ([`Observer::dependents_fresh`]). What the SAS interlock judges a hub on
//! (the hub, its dependents, its assignments and their custom roles: [`InterlockInputs`]) is read
//! here too (`interlock.rs`), for the planner and for the checks around a Deny alike. I/O: reads
//! through the [`Azure`] trait only.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::azure::{AssignmentFilter, Azure, AzureError, RoleDefinitionFilter};
use crate::domain::{
    Dependents, DependentsObservation, HubId, ObservedAssignment, ObservedHub, RoleDefinition, RoleDefinitionId, Scope,
    roles,
};
use crate::memo::Memo;

pub mod exposure;
pub mod identity;
mod interlock;

pub use interlock::{InterlockInputs, interlock_inputs, interlock_reads};

/// Subscriptions searched at once for dependents.
const SEARCH_CONCURRENCY: usize = 4;

const DEFAULT_RECHECK: Duration = Duration::from_secs(30);

/// One observation pass over Azure.
pub struct Observer {
    azure: Arc<dyn Azure>,
    assignments: Memo<(String, AssignmentFilter), Vec<ObservedAssignment>>,
    hubs: Memo<String, Option<ObservedHub>>,
    /// Dependents searches by the extra subscriptions they cover ("" for the listed ones),
    /// each reused for the re-check interval.
    dependents: Memo<String, Dependents>,
    definitions: Memo<Uuid, Option<RoleDefinition>>,
    named: Memo<(String, String), Vec<RoleDefinition>>,
    recheck: Duration,
}

impl Observer {
    pub fn new(azure: Arc<dyn Azure>) -> Observer {
        Observer {
            azure,
            assignments: Memo::new(),
            hubs: Memo::new(),
            dependents: Memo::with_max_age(DEFAULT_RECHECK),
            definitions: Memo::new(),
            named: Memo::new(),
            recheck: DEFAULT_RECHECK,
        }
    }

    /// Assignments at `scope` and inherited from above (`atScope()`).
    pub async fn assignments_at(&self, scope: &Scope) -> Result<Vec<ObservedAssignment>, AzureError> {
        self.assignments_filtered(scope, AssignmentFilter::AtScope).await
    }

    /// Assignments at, above and below `scope` (no filter): used to find what uses a role.
    pub async fn assignments_all(&self, scope: &Scope) -> Result<Vec<ObservedAssignment>, AzureError> {
        self.assignments_filtered(scope, AssignmentFilter::All).await
    }

    /// [`assignments_at`](Observer::assignments_at), read at most the re-check interval ago:
    /// what the interlock judges a hub on is never older than that, even within a resync.
    pub async fn assignments_at_recent(&self, scope: &Scope) -> Result<Vec<ObservedAssignment>, AzureError> {
        self.assignments_within(scope, AssignmentFilter::AtScope, Some(self.recheck)).await
    }

    async fn assignments_filtered(
        &self,
        scope: &Scope,
        filter: AssignmentFilter,
    ) -> Result<Vec<ObservedAssignment>, AzureError> {
        self.assignments_within(scope, filter, None).await
    }

    async fn assignments_within(
        &self,
        scope: &Scope,
        filter: AssignmentFilter,
        max_age: Option<Duration>,
    ) -> Result<Vec<ObservedAssignment>, AzureError> {
        let azure = self.azure.clone();
        let s = scope.clone();
        let f = filter.clone();
        self.assignments
            .get_within((scope.key(), filter), max_age, || async move { azure.list_role_assignments(&s, &f).await })
            .await
    }

    /// A hub, `None` when it does not exist.
    pub async fn hub(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError> {
        self.hub_within(hub, None).await
    }

    /// A hub read at most the re-check interval ago (what the interlock judges).
    pub async fn hub_recent(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError> {
        self.hub_within(hub, Some(self.recheck)).await
    }

    async fn hub_within(&self, hub: &HubId, max_age: Option<Duration>) -> Result<Option<ObservedHub>, AzureError> {
        let azure = self.azure.clone();
        let h = hub.clone();
        self.hubs.get_within(hub.key(), max_age, || async move { azure.get_hub(&h).await }).await
    }

    /// The interlock's re-check interval (default 30 s): the dependents search, and the hub and
    /// its assignments as the interlock reads them, are reused at most this long.
    pub fn with_recheck(mut self, recheck: Duration) -> Observer {
        self.dependents = Memo::with_max_age(recheck);
        self.recheck = recheck;
        self
    }

    /// What depends on hubs' shared access, searched at most the re-check interval ago (shared
    /// by every hub and asker), or why the search could not be completed (fail closed).
    /// `also` names subscriptions to search even if the list leaves them out (the hub's own):
    /// those are searched on their own (cached the same way) and added.
    pub async fn dependents(&self, also: &[&str]) -> DependentsObservation {
        let azure = self.azure.clone();
        let listed = match self.dependents.get(String::new(), || search_dependents(azure, vec![])).await {
            Ok(d) => d,
            Err(e) => return DependentsObservation::Failed(e.to_string()),
        };
        let mut missing: Vec<String> =
            also.iter().map(|s| s.to_ascii_lowercase()).filter(|s| !listed.subscriptions.contains(s)).collect();
        if missing.is_empty() {
            return DependentsObservation::Complete(listed);
        }
        missing.sort();
        missing.dedup();
        let azure = self.azure.clone();
        let subs = missing.clone();
        match self.dependents.get(missing.join(","), || search_subscriptions(azure, subs)).await {
            Ok(extra) => {
                let mut all = listed;
                all.subscriptions.extend(extra.subscriptions);
                all.subscriptions.sort();
                all.dps.extend(extra.dps);
                all.device_update.extend(extra.device_update);
                DependentsObservation::Complete(all)
            }
            Err(e) => DependentsObservation::Failed(e.to_string()),
        }
    }

    /// The dependents read now, not from any cache: for the check that allows a Deny.
    pub async fn dependents_fresh(&self, also: &[&str]) -> DependentsObservation {
        match search_dependents(self.azure.clone(), also.iter().map(|s| s.to_ascii_lowercase()).collect()).await {
            Ok(d) => DependentsObservation::Complete(d),
            Err(e) => DependentsObservation::Failed(e.to_string()),
        }
    }

    /// A role definition by GUID (built-in or custom), `None` when it does not exist. Keyed by
    /// GUID alone: a definition's GUID is unique in the tenant.
    pub async fn role_definition(&self, id: &RoleDefinitionId) -> Result<Option<RoleDefinition>, AzureError> {
        let azure = self.azure.clone();
        let i = id.clone();
        self.definitions.get(id.guid, || async move { azure.get_role_definition(&i).await }).await
    }

    /// A role definition read at most the re-check interval ago (what the interlock judges).
    pub async fn role_definition_recent(&self, id: &RoleDefinitionId) -> Result<Option<RoleDefinition>, AzureError> {
        let azure = self.azure.clone();
        let i = id.clone();
        self.definitions
            .get_within(id.guid, Some(self.recheck), || async move { azure.get_role_definition(&i).await })
            .await
    }

    /// A role definition read now, not from this pass's cache: for checks that gate a write.
    pub async fn role_definition_fresh(&self, id: &RoleDefinitionId) -> Result<Option<RoleDefinition>, AzureError> {
        self.azure.get_role_definition(id).await
    }

    /// The definitions of the custom roles among `guids` (built-in ones are known), as seen from
    /// `subscription_id` (GETs, shared by the observer); `recent`: read at most the re-check
    /// interval ago (what the interlock judges). A definition that cannot be read is left out:
    /// the checks that use it are advisory.
    pub async fn custom_roles(
        &self,
        subscription_id: Option<&str>,
        guids: BTreeSet<Uuid>,
        recent: bool,
    ) -> Vec<RoleDefinition> {
        let mut out = Vec::new();
        for guid in guids {
            if roles::builtin_by_guid(guid).is_some() {
                continue;
            }
            let scope = subscription_id.map_or(Scope::Root, |s| Scope::Subscription(s.to_string()));
            let id = RoleDefinitionId::new(scope, guid);
            let read = if recent { self.role_definition_recent(&id).await } else { self.role_definition(&id).await };
            if let Ok(Some(d)) = read {
                out.push(d);
            }
        }
        out
    }

    /// Role definitions named `role_name` (display names are unique per tenant), as seen from a
    /// subscription.
    pub async fn role_definitions_named(
        &self,
        subscription_id: &str,
        role_name: &str,
    ) -> Result<Vec<RoleDefinition>, AzureError> {
        let azure = self.azure.clone();
        let scope = Scope::Subscription(subscription_id.to_string());
        let filter = RoleDefinitionFilter::RoleName(role_name.to_string());
        self.named
            .get((subscription_id.to_ascii_lowercase(), role_name.to_ascii_lowercase()), || async move {
                azure.list_role_definitions(&scope, &filter).await
            })
            .await
    }

    /// Forget what was read about a scope's role assignments, so the next ask reads again.
    pub fn forget_assignments(&self, scope: &Scope) {
        let key = scope.key();
        self.assignments.forget(|(k, _)| *k == key);
    }

    /// Forget a hub's read.
    /// Keep the hub as a write read it back: the pass that wrote it needs no new read.
    pub fn remember_hub(&self, hub: ObservedHub) {
        self.hubs.put(hub.id.key(), Some(hub));
    }

    pub fn forget_hub(&self, hub: &HubId) {
        let key = hub.key();
        self.hubs.forget(|k| *k == key);
    }

    /// Forget role definition reads (a definition was written or deleted).
    pub fn forget_definitions(&self) {
        self.definitions.forget(|_| true);
        self.named.forget(|_| true);
    }

    /// Forget whatever `action` changes in Azure.
    pub fn forget_written(&self, action: &crate::plan::Action) {
        use crate::plan::Action;
        match action {
            Action::CreateRoleAssignment(crate::domain::NewRoleAssignment { id, .. })
            | Action::HandOverRoleAssignment { assignment: crate::domain::NewRoleAssignment { id, .. }, .. }
            | Action::DeleteRoleAssignment { id } => {
                // Lists at the written scope or below it (inheritance) and unfiltered lists
                // above it see the change.
                let prefix = id.scope.key();
                self.assignments.forget(|(k, _)| k.starts_with(&prefix) || prefix.starts_with(k.as_str()));
            }
            Action::SetHubAccess { hub, .. } => {
                self.forget_hub(hub);
                // What was judged before the write is not what the next verdict may rest on.
                self.dependents.forget(|_| true);
            }
            Action::PutRoleDefinition { .. } | Action::DeleteRoleDefinition { .. } => self.forget_definitions(),
        }
    }

    /// Distinct reads held (for metrics and tests).
    pub fn reads_held(&self) -> usize {
        self.assignments.len() + self.hubs.len() + self.dependents.len() + self.definitions.len() + self.named.len()
    }
}

/// Search every subscription the identity can list (plus `also`) for DPS and Device Update
/// instances. Any subscription, page or shape that fails makes the whole search fail, naming it.
async fn search_dependents(azure: Arc<dyn Azure>, also: Vec<String>) -> Result<Dependents, AzureError> {
    let mut subscriptions = azure.list_subscriptions().await.map_err(|e| name_failure("listing subscriptions", e))?;
    subscriptions.extend(also);
    search_subscriptions(azure, subscriptions).await
}

/// Search these subscriptions (and only these) for DPS and Device Update instances.
async fn search_subscriptions(azure: Arc<dyn Azure>, mut subscriptions: Vec<String>) -> Result<Dependents, AzureError> {
    use futures::StreamExt as _;
    let checked_at = jiff::Timestamp::now().to_string();
    subscriptions.sort();
    subscriptions.dedup();
    let found: Vec<Result<_, AzureError>> = futures::stream::iter(subscriptions.clone())
        .map(|sub| {
            let azure = azure.clone();
            async move {
                let dps =
                    azure.list_dps(&sub).await.map_err(|e| name_failure(&format!("subscription {sub}: DPS"), e))?;
                let du = azure
                    .list_device_update_instances(&sub)
                    .await
                    .map_err(|e| name_failure(&format!("subscription {sub}: Device Update"), e))?;
                Ok((dps, du))
            }
        })
        .buffered(SEARCH_CONCURRENCY)
        .collect()
        .await;
    let searched = subscriptions.len();
    let mut out = Dependents { subscriptions, checked_at, ..Dependents::default() };
    let mut failed: Vec<AzureError> = Vec::new();
    for f in found {
        match f {
            Ok((dps, du)) => {
                out.dps.extend(dps);
                out.device_update.extend(du);
            }
            Err(e) => failed.push(e),
        }
    }
    // Every subscription that could not be searched is named, not only the first.
    match failed.len() {
        0 => Ok(out),
        1 => Err(failed.remove(0)),
        n => {
            let all = failed.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            let message = format!("{n} of {searched} subscriptions could not be searched: {all}");
            Err(match failed.remove(0) {
                AzureError::Forbidden { code, .. } => AzureError::Forbidden { code, message },
                _ => AzureError::Transient { message },
            })
        }
    }
}

fn name_failure(what: &str, e: AzureError) -> AzureError {
    match e {
        AzureError::Forbidden { code, message } => {
            AzureError::Forbidden { code, message: format!("{what}: {message}") }
        }
        other => AzureError::Transient { message: format!("{what}: {other}") },
    }
}

#[cfg(test)]
mod tests;

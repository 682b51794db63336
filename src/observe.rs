//! The `observe` step: read what Azure has, shared across every resource of a pass. Each
//! distinct read (a role assignment list at a scope, a hub, custom roles) is made at most once
//! per [`Observer`], however many resources need it, and concurrent askers wait for the one
//! request in flight (single-flight). So ARM reads grow with hubs and scopes, not with
//! resources. What depends on hubs' shared access (DPS and Device Update instances in every
//! subscription the identity can list) is one search shared by every hub, kept for at most
//! `dependents_max_age` so a refusal is re-checked against Azure promptly; a check that allows
//! a Deny reads it fresh ([`Observer::dependents_fresh`]). I/O: reads through the [`Azure`]
//! trait only.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::azure::{AssignmentFilter, Azure, AzureError, RoleDefinitionFilter};
use crate::domain::{Dependents, DependentsObservation, HubId, ObservedAssignment, ObservedHub, RoleDefinition, Scope};

/// Subscriptions searched at once for dependents.
const SEARCH_CONCURRENCY: usize = 4;

type Shared<T> = Arc<OnceCell<Result<T, AzureError>>>;

struct Memo<K, T> {
    cells: Mutex<HashMap<K, Shared<T>>>,
}

impl<K: Eq + Hash + Clone, T: Clone> Memo<K, T> {
    fn new() -> Self {
        Memo { cells: Mutex::new(HashMap::new()) }
    }

    async fn get<F, Fut>(&self, key: K, fetch: F) -> Result<T, AzureError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AzureError>>,
    {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            cells.entry(key).or_insert_with(|| Arc::new(OnceCell::new())).clone()
        };
        let result = cell.get_or_init(fetch).await.clone();
        if result.is_err() {
            // Concurrent askers share the failure, but the next pass asks Azure again.
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            cells.retain(|_, c| !Arc::ptr_eq(c, &cell));
        }
        result
    }

    /// Forget the reads whose key matches, so the next ask reads Azure again (after a write).
    fn forget(&self, matches: impl Fn(&K) -> bool) {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).retain(|k, _| !matches(k));
    }

    fn len(&self) -> usize {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One observation pass over Azure.
pub struct Observer {
    azure: Arc<dyn Azure>,
    assignments: Memo<(String, AssignmentFilter), Vec<ObservedAssignment>>,
    hubs: Memo<String, Option<ObservedHub>>,
    dependents: Mutex<Option<(std::time::Instant, Shared<Dependents>)>>,
    dependents_max_age: std::time::Duration,
    custom_roles: Memo<String, Vec<RoleDefinition>>,
    definitions: Memo<Uuid, Option<RoleDefinition>>,
    named: Memo<(String, String), Vec<RoleDefinition>>,
}

impl Observer {
    pub fn new(azure: Arc<dyn Azure>) -> Observer {
        Observer {
            azure,
            assignments: Memo::new(),
            hubs: Memo::new(),
            dependents: Mutex::new(None),
            dependents_max_age: std::time::Duration::from_secs(30),
            custom_roles: Memo::new(),
            definitions: Memo::new(),
            named: Memo::new(),
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

    async fn assignments_filtered(
        &self,
        scope: &Scope,
        filter: AssignmentFilter,
    ) -> Result<Vec<ObservedAssignment>, AzureError> {
        let azure = self.azure.clone();
        let s = scope.clone();
        let f = filter.clone();
        self.assignments.get((scope.key(), filter), || async move { azure.list_role_assignments(&s, &f).await }).await
    }

    /// A hub, `None` when it does not exist.
    pub async fn hub(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError> {
        let azure = self.azure.clone();
        let h = hub.clone();
        self.hubs.get(hub.key(), || async move { azure.get_hub(&h).await }).await
    }

    /// How long the dependents search is reused (default 30 s).
    pub fn with_dependents_max_age(mut self, max_age: std::time::Duration) -> Observer {
        self.dependents_max_age = max_age;
        self
    }

    /// What depends on hubs' shared access, searched at most `dependents_max_age` ago (shared
    /// by every hub and asker), or why the search could not be completed (fail closed).
    /// `also` names subscriptions to search even if the list leaves them out (the hub's own).
    pub async fn dependents(&self, also: &[&str]) -> DependentsObservation {
        let cell = {
            let mut slot = self.dependents.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some((at, cell)) if at.elapsed() < self.dependents_max_age => cell.clone(),
                _ => {
                    let cell: Shared<Dependents> = Arc::new(OnceCell::new());
                    *slot = Some((std::time::Instant::now(), cell.clone()));
                    cell
                }
            }
        };
        let azure = self.azure.clone();
        let result = cell.get_or_init(|| search_dependents(azure, vec![])).await.clone();
        let result = match result {
            // A subscription the list did not include: searched on its own (not shared).
            Ok(d) if also.iter().any(|s| !d.subscriptions.contains(&s.to_ascii_lowercase())) => {
                search_dependents(self.azure.clone(), also.iter().map(|s| s.to_ascii_lowercase()).collect()).await
            }
            other => other,
        };
        if result.is_err() {
            let mut slot = self.dependents.lock().unwrap_or_else(|e| e.into_inner());
            if slot.as_ref().is_some_and(|(_, c)| Arc::ptr_eq(c, &cell)) {
                *slot = None;
            }
        }
        match result {
            Ok(d) => DependentsObservation::Complete(d),
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

    /// Custom role definitions visible in a subscription.
    pub async fn custom_roles(&self, subscription_id: &str) -> Result<Vec<RoleDefinition>, AzureError> {
        let azure = self.azure.clone();
        let scope = Scope::Subscription(subscription_id.to_string());
        self.custom_roles
            .get(subscription_id.to_ascii_lowercase(), || async move {
                azure.list_role_definitions(&scope, &RoleDefinitionFilter::CustomRoles).await
            })
            .await
    }

    /// A role definition by GUID (built-in or custom), `None` when it does not exist. Keyed by
    /// GUID alone: a definition's GUID is unique in the tenant.
    pub async fn role_definition(&self, scope: &Scope, guid: Uuid) -> Result<Option<RoleDefinition>, AzureError> {
        let azure = self.azure.clone();
        let s = scope.clone();
        self.definitions.get(guid, || async move { azure.get_role_definition(&s, guid).await }).await
    }

    /// A role definition read now, not from this pass's cache: for checks that gate a write.
    pub async fn role_definition_fresh(&self, scope: &Scope, guid: Uuid) -> Result<Option<RoleDefinition>, AzureError> {
        self.azure.get_role_definition(scope, guid).await
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
    pub fn forget_hub(&self, hub: &HubId) {
        let key = hub.key();
        self.hubs.forget(|k| *k == key);
    }

    /// Forget role definition reads (a definition was written or deleted).
    pub fn forget_definitions(&self) {
        self.definitions.forget(|_| true);
        self.named.forget(|_| true);
        self.custom_roles.forget(|_| true);
    }

    /// Forget whatever `action` changes in Azure.
    pub fn forget_written(&self, action: &crate::plan::Action) {
        use crate::plan::Action;
        match action {
            Action::CreateRoleAssignment { id, .. } | Action::DeleteRoleAssignment { id } => {
                // Lists at the written scope or below it (inheritance) and unfiltered lists
                // above it see the change.
                let prefix = id.scope.key();
                self.assignments.forget(|(k, _)| k.starts_with(&prefix) || prefix.starts_with(k.as_str()));
            }
            Action::SetHubAccess { hub, .. } => self.forget_hub(hub),
            Action::PutRoleDefinition { .. } | Action::DeleteRoleDefinition { .. } => self.forget_definitions(),
        }
    }

    /// Distinct reads held (for metrics and tests).
    pub fn reads_held(&self) -> usize {
        self.assignments.len()
            + self.hubs.len()
            + usize::from(self.dependents.lock().unwrap_or_else(|e| e.into_inner()).is_some())
            + self.custom_roles.len()
            + self.definitions.len()
            + self.named.len()
    }
}

/// Search every subscription the identity can list (plus `also`) for DPS and Device Update
/// instances. Any subscription, page or shape that fails makes the whole search fail, naming it.
async fn search_dependents(azure: Arc<dyn Azure>, also: Vec<String>) -> Result<Dependents, AzureError> {
    use futures::StreamExt as _;
    let checked_at = jiff::Timestamp::now().to_string();
    let mut subscriptions = azure.list_subscriptions().await.map_err(|e| name_failure("listing subscriptions", e))?;
    subscriptions.extend(also);
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
    let mut out = Dependents { subscriptions, checked_at, ..Dependents::default() };
    for f in found {
        let (dps, du) = f?;
        out.dps.extend(dps);
        out.device_update.extend(du);
    }
    Ok(out)
}

fn name_failure(what: &str, e: AzureError) -> AzureError {
    match e {
        AzureError::Forbidden { code, message } => {
            AzureError::Forbidden { code, message: format!("{what}: {message}") }
        }
        other => AzureError::Transient { message: format!("{what}: {other}") },
    }
}

//! The `observe` step: read what Azure has, shared across every resource of a pass. Each
//! distinct read (a role assignment list at a scope, a hub, a subscription's DPS instances or
//! custom roles) is made at most once per [`Observer`], however many resources need it, and
//! concurrent askers wait for the one request in flight (single-flight). So ARM reads grow with
//! hubs and scopes, not with resources. I/O: reads through the [`Azure`] trait only.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::azure::{AssignmentFilter, Azure, AzureError, RoleDefinitionFilter};
use crate::domain::{DpsObservation, HubId, ObservedAssignment, ObservedHub, RoleDefinition, Scope};

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
    dps: Memo<String, Vec<crate::domain::ObservedDps>>,
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
            dps: Memo::new(),
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

    /// DPS instances of a subscription, or why they could not be listed (fail closed).
    pub async fn dps(&self, subscription_id: &str) -> DpsObservation {
        let azure = self.azure.clone();
        let sub = subscription_id.to_string();
        match self.dps.get(subscription_id.to_ascii_lowercase(), || async move { azure.list_dps(&sub).await }).await {
            Ok(list) => DpsObservation::Complete(list),
            Err(e) => DpsObservation::Failed(e.to_string()),
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
            + self.dps.len()
            + self.custom_roles.len()
            + self.definitions.len()
            + self.named.len()
    }
}

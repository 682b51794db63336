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
        cell.get_or_init(fetch).await.clone()
    }
}

/// One observation pass over Azure.
pub struct Observer {
    azure: Arc<dyn Azure>,
    assignments: Memo<(String, AssignmentFilter), Vec<ObservedAssignment>>,
    hubs: Memo<String, Option<ObservedHub>>,
    dps: Memo<String, Vec<crate::domain::ObservedDps>>,
    custom_roles: Memo<String, Vec<RoleDefinition>>,
}

impl Observer {
    pub fn new(azure: Arc<dyn Azure>) -> Observer {
        Observer { azure, assignments: Memo::new(), hubs: Memo::new(), dps: Memo::new(), custom_roles: Memo::new() }
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
}

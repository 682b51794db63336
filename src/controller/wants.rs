//! What the other role assignment resources in the cluster want, for the planner's ownership
//! rules (`plan::ownership::Others`): never revoke a grant another live resource wants, and
//! fail closed (everything wanted, every owner alive) until the caches have synced.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::Context;
use crate::crd::{IotHubCustomRole, IotHubRoleAssignment};
use crate::domain::Scope;
use crate::domain::naming::Owner;
use crate::plan::ownership::Others;

/// The other role assignment resources the controller sees, and what they want.
pub struct ClusterWants {
    assignments: Store<IotHubRoleAssignment>,
    custom_roles: Store<IotHubCustomRole>,
    instance: String,
    watch_namespace: Option<String>,
}

impl ClusterWants {
    /// The other resources, once the caches have synced: `None` before (a partial list would
    /// hide a resource that wants a grant). Never waits: a reconcile that waited for the cache
    /// could hold the very concurrency slot the cache needs to fill.
    pub fn of(ctx: &Context) -> Option<Arc<ClusterWants>> {
        use futures::FutureExt as _;
        let synced = |r: Option<Result<(), _>>| r.is_some_and(|r| r.is_ok());
        if !synced(ctx.assignments.wait_until_ready().now_or_never())
            || !synced(ctx.custom_roles.wait_until_ready().now_or_never())
        {
            return None;
        }
        Some(Arc::new(ClusterWants {
            assignments: ctx.assignments.clone(),
            custom_roles: ctx.custom_roles.clone(),
            instance: ctx.settings.instance_id.clone(),
            watch_namespace: ctx.settings.watch_namespace.clone(),
        }))
    }

    /// For planning a resource that is not going away: before the caches have synced, nothing
    /// is released or taken over (every grant counts as wanted, every owner as alive).
    pub fn or_unknown(ctx: &Context) -> Arc<dyn Others + Send + Sync> {
        match ClusterWants::of(ctx) {
            Some(w) => w,
            None => Arc::new(Unknown),
        }
    }
}

/// Others while the caches are not synced: fail closed.
struct Unknown;

impl Others for Unknown {
    fn wanting(&self, _: &Owner, _: &Scope, _: uuid::Uuid, _: &str) -> Option<Owner> {
        Some(Owner::new("", "(not known yet)", "resource cache not synced"))
    }
    fn is_live(&self, _: &Owner) -> bool {
        true
    }
}

impl Others for ClusterWants {
    fn wanting(&self, me: &Owner, scope: &Scope, role: uuid::Uuid, principal_id: &str) -> Option<Owner> {
        self.assignments.state().into_iter().find_map(|a| {
            let owner = Owner::new(&self.instance, &a.namespace().unwrap_or_default(), &a.name_any());
            if owner == *me || a.metadata.deletion_timestamp.is_some() {
                return None;
            }
            let ns = owner.namespace.clone();
            let lookup = |name: &str| self.custom_roles.get(&ObjectRef::new(name).within(&ns)).map(|r| r.spec.clone());
            let d = crate::desire::desire_role_assignment(&a.spec, &lookup, &owner).ok()?;
            (d.scope == *scope && d.role.guid == role && d.principal_id.eq_ignore_ascii_case(principal_id))
                .then_some(owner)
        })
    }

    fn is_live(&self, owner: &Owner) -> bool {
        if !owner.instance.eq_ignore_ascii_case(&self.instance)
            || self.watch_namespace.as_ref().is_some_and(|w| *w != owner.namespace)
        {
            return true;
        }
        self.assignments
            .get(&ObjectRef::new(&owner.name).within(&owner.namespace))
            .is_some_and(|a| a.metadata.deletion_timestamp.is_none())
    }
}

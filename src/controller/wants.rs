//! What the other role assignment resources in the cluster want, for the planner's ownership
//! rules (`plan::ownership::Others`): never revoke a grant another live resource wants, and
//! fail closed (everything wanted, every owner alive) until the caches have synced. A want counts
//! only from a resource that may ask for the grant: managed (`iothubaccess.io/reconcile:
//! manage`), valid, not being deleted, not naming another namespace's custom role, and in a
//! namespace the gate allows on the grant's scope and hub now (a namespace whose allowed scopes
//! are not known right now counts as wanting: kept, fail closed). So nobody can pin another
//! team's grant by asking for the same one from where they may not.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use uuid::Uuid;

use super::Context;
use crate::crd::{IotHubCustomRole, IotHubRoleAssignment, ReconcileMode};
use crate::desire::{Guarded as _, RefValue};
use crate::domain::Grant;
use crate::domain::naming::Owner;
use crate::gate::{Gate, VerdictExt as _};
use crate::plan::ownership::Others;

/// The other role assignment resources the controller sees, and what they want.
pub struct ClusterWants {
    assignments: Store<IotHubRoleAssignment>,
    custom_roles: Store<IotHubCustomRole>,
    instance: String,
    watch_namespace: Option<String>,
    gate: Gate,
    principals: Arc<super::principals::PrincipalRefs>,
}

/// Have both caches listed everything once? Never waits: a reconcile that waited for the cache
/// could hold the very slot the cache needs to fill.
pub fn synced(ctx: &Context) -> bool {
    use futures::FutureExt as _;
    let ready = |r: Option<Result<(), _>>| r.is_some_and(|r| r.is_ok());
    ready(ctx.assignments.wait_until_ready().now_or_never())
        && ready(ctx.custom_roles.wait_until_ready().now_or_never())
}

/// The `IotHubCustomRole` (any namespace) whose definition GUID, derived under `instance`, is
/// `guid`.
pub fn custom_role_owner(custom_roles: &Store<IotHubCustomRole>, instance: &str, guid: Uuid) -> Option<Owner> {
    custom_roles.state().into_iter().find_map(|r| {
        let owner = Owner::new(instance, &r.namespace().unwrap_or_default(), &r.name_any());
        (owner.definition_name() == guid).then_some(owner)
    })
}

impl ClusterWants {
    /// The other resources, once the caches have synced: `None` before (a partial list would
    /// hide a resource that wants a grant).
    pub fn of(ctx: &Context) -> Option<Arc<ClusterWants>> {
        if !synced(ctx) {
            return None;
        }
        Some(Arc::new(ClusterWants {
            assignments: ctx.assignments.clone(),
            custom_roles: ctx.custom_roles.clone(),
            instance: ctx.settings.instance_id.clone(),
            watch_namespace: ctx.settings.watch_namespace.clone(),
            gate: ctx.gate.clone(),
            principals: ctx.principals.clone(),
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

    /// Does `a` (owned by `owner`) want `grant`, as a resource that may ask for it?
    fn wants(&self, owner: &Owner, a: &IotHubRoleAssignment, grant: &Grant) -> bool {
        if a.metadata.deletion_timestamp.is_some() || super::reconcile_mode(a).0 != ReconcileMode::Manage {
            return false;
        }
        let ns = owner.namespace.clone();
        let lookup = |name: &str| self.custom_roles.get(&ObjectRef::new(name).within(&ns)).map(|r| r.spec.clone());
        // A principal read from a ConfigMap counts as last read. One not read since it changed
        // wants nothing here: inferring "anyone" would let a tenant pin any team's grant of that
        // role and scope (it would be handed over to it). Cleanup waits instead while such a
        // reference could want what it releases (`unresolved_near`).
        let principals = |n: &str, c: &str, k: &str| self.principals.lookup(n, c, k);
        let Ok(spec) = crate::desire::resolve_principal(&a.spec, &ns, &principals) else { return false };
        let Ok(d) = crate::desire::desire_role_assignment(&spec, &lookup, owner) else { return false };
        if d.grant() != *grant {
            return false;
        }
        // Only a `definitionId` can name another namespace's custom role.
        if d.role.definition.is_none()
            && custom_role_owner(&self.custom_roles, &self.instance, d.role.guid).is_some_and(|o| o.namespace != ns)
        {
            return false;
        }
        self.gate.check(&ns, &d.guarded_scopes()).is_ok_or_unknown()
    }
}

/// Others while the caches are not synced: fail closed.
struct Unknown;

impl Others for Unknown {
    fn wanting(&self, _: &Owner, _: &Grant) -> Option<Owner> {
        Some(Owner::new("", "(not known yet)", "resource cache not synced"))
    }
    fn is_live(&self, _: &Owner) -> bool {
        true
    }
}

impl Others for ClusterWants {
    fn wanting(&self, me: &Owner, grant: &Grant) -> Option<Owner> {
        self.assignments.state().into_iter().find_map(|a| {
            let owner = Owner::new(&self.instance, &a.namespace().unwrap_or_default(), &a.name_any());
            (owner != *me && self.wants(&owner, &a, grant)).then_some(owner)
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

/// Is there a managed role assignment (not being deleted) whose `principal.idFrom` has not been
/// read since its ConfigMap changed, and which asks for a grant at one of `scopes`? Such a
/// resource may want what a cleanup would release: the cleanup waits until it has been read (its
/// own reconcile reads it within seconds of the change).
pub fn unresolved_near(ctx: &Context, scopes: &[crate::domain::Scope]) -> bool {
    ctx.assignments
        .find(|a| {
            let Some(from) = &a.spec.principal.id_from else { return false };
            if a.metadata.deletion_timestamp.is_some() || super::reconcile_mode(a).0 != ReconcileMode::Manage {
                return false;
            }
            let ns = a.namespace().unwrap_or_default();
            let r = &from.config_map_key_ref;
            if ctx.principals.lookup(&ns, &r.name, &r.key) != RefValue::Unknown {
                return false;
            }
            // Its scope, whoever the principal turns out to be.
            let mut spec = a.spec.clone();
            spec.principal.id = Some(uuid::Uuid::nil().to_string());
            spec.principal.id_from = None;
            let owner = super::owner_of(ctx, a);
            let lookup = |name: &str| ctx.custom_roles.get(&ObjectRef::new(name).within(&ns)).map(|r| r.spec.clone());
            crate::desire::desire_role_assignment(&spec, &lookup, &owner)
                .is_ok_and(|d| scopes.iter().any(|s| s.key() == d.scope.key()))
        })
        .is_some()
}

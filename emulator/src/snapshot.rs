//! Conversion between the state and its seed form (start, persistence, snapshots).

use serde_json::Value;

use crate::deny::EVERYONE;
use crate::fresh::{new_etag, now_rfc3339};
use crate::resources::{Dps, Hub, default_hub_properties, default_policies, normalize_sku};
use crate::seed::{DenyAssignment, DpsSeed, HubSeed, RoleEligibility, Seed};
use crate::state::{DEFAULT_TENANT, DirectoryEntry, State, canonical_scope, guid_of, normalize_scope, subscription_of};

impl State {
    /// Build from a seed. Hubs and DPS imply their resource groups; subscriptions are implied
    /// by everything that names one.
    pub fn from_seed(seed: Seed, hub_host_suffix: &str) -> Result<State, String> {
        let mut st = State {
            tenant_id: if seed.tenant_id.trim().is_empty() { DEFAULT_TENANT.to_string() } else { seed.tenant_id },
            management_groups: seed.management_groups,
            enforce_rbac: seed.enforce_rbac,
            clients: seed.clients,
            hub_host_suffix: hub_host_suffix.to_string(),
            ..State::default()
        };
        st.directory = seed.principals.into_iter().map(|p| DirectoryEntry { principal: p, registered: None }).collect();
        for mg in &st.management_groups {
            for s in &mg.subscriptions {
                st.subscriptions.insert(s.to_ascii_lowercase());
            }
        }
        for s in seed.subscriptions {
            if s.subscription_id.trim().is_empty() {
                return Err("subscription: subscriptionId is required".into());
            }
            st.add_subscription(s);
        }
        st.policies = seed.policies;
        for rg in seed.resource_groups {
            st.ensure_rg(&rg.subscription_id, &rg.name, rg.location.as_deref());
        }
        for h in seed.hubs {
            if h.name.is_empty() || h.subscription_id.is_empty() || h.resource_group.is_empty() {
                return Err(format!("hub {:?}: subscriptionId, resourceGroup and name are required", h.name));
            }
            st.ensure_rg(&h.subscription_id, &h.resource_group, Some(&h.location));
            let mut properties = h.properties.unwrap_or_else(|| default_hub_properties(&h.name));
            crate::read_only::strip_served(&mut properties);
            for (k, v) in [
                ("disableLocalAuth", h.disable_local_auth),
                ("disableDeviceSAS", h.disable_device_sas),
                ("disableModuleSAS", h.disable_module_sas),
            ] {
                if let Some(v) = v {
                    properties.insert(k.into(), Value::Bool(v));
                }
            }
            st.hubs.push(Hub {
                subscription_id: h.subscription_id,
                resource_group: h.resource_group,
                location: h.location,
                tags: h.tags.unwrap_or_default(),
                sku: normalize_sku(h.sku.as_ref()),
                identity: h.identity,
                properties,
                policies: h.authorization_policies.unwrap_or_else(default_policies),
                etag: h.etag.unwrap_or_else(new_etag),
                provisioning_state: "Succeeded".into(),
                created_at: now_rfc3339(),
                device_host_name: h.device_host_name,
                service_host_name: h.service_host_name,
                name: h.name,
            });
        }
        for d in seed.provisioning_services {
            st.ensure_rg(&d.subscription_id, &d.resource_group, Some(&d.location));
            let links = d.links.into_iter().map(|l| st.complete_link(l)).collect();
            st.dps.push(Dps {
                subscription_id: d.subscription_id,
                resource_group: d.resource_group,
                name: d.name,
                location: d.location,
                tags: d.tags.unwrap_or_default(),
                links,
                etag: d.etag.unwrap_or_else(new_etag),
                identity: d.identity,
                raw_iot_hubs: d.raw_iot_hubs,
                provisioning_state: "Succeeded".into(),
            });
        }
        for a in seed.device_update_accounts {
            if a.name.is_empty() || a.subscription_id.is_empty() || a.resource_group.is_empty() {
                return Err(format!(
                    "device update account {:?}: subscriptionId, resourceGroup and name are required",
                    a.name
                ));
            }
            st.add_device_update_account(a);
        }
        let now = now_rfc3339();
        for mut rd in seed.role_definitions {
            rd.name = guid_of(&rd.name).ok_or_else(|| format!("role definition {:?}: name must be a GUID", rd.name))?;
            rd.assignable_scopes = rd.assignable_scopes.iter().map(|s| normalize_scope(s)).collect();
            for s in &rd.assignable_scopes {
                if let Some(sub) = subscription_of(s) {
                    st.subscriptions.insert(sub.to_ascii_lowercase());
                }
            }
            rd.created_on.get_or_insert_with(|| now.clone());
            rd.updated_on.get_or_insert_with(|| now.clone());
            st.role_definitions.push(rd);
        }
        for mut ra in seed.role_assignments {
            ra.name = if ra.name.trim().is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                guid_of(&ra.name).ok_or_else(|| format!("role assignment {:?}: name must be a GUID", ra.name))?
            };
            ra.scope = normalize_scope(&ra.scope);
            ra.role_definition_id = guid_of(&ra.role_definition_id).ok_or_else(|| {
                format!("role assignment {}: bad roleDefinitionId {:?}", ra.name, ra.role_definition_id)
            })?;
            if let Some(sub) = subscription_of(&ra.scope) {
                st.subscriptions.insert(sub.to_ascii_lowercase());
            }
            if let Some(c) = ra.condition.as_deref().filter(|c| !c.trim().is_empty()) {
                iothub_access_abac::parse(c)
                    .map_err(|e| format!("role assignment {}: condition is invalid: {e}", ra.name))?;
            }
            if ra.principal_type.is_none() {
                ra.principal_type =
                    Some(st.principal(&ra.principal_id).map_or("User".into(), |p| p.principal_type.clone()));
            }
            ra.created_on.get_or_insert_with(|| now.clone());
            ra.updated_on.get_or_insert_with(|| now.clone());
            st.role_assignments.push(ra);
        }
        for e in seed.role_eligibilities {
            let e = st.eligibility_from_seed(e, &now)?;
            st.role_eligibilities.push(e);
        }
        for d in seed.deny_assignments {
            let d = st.deny_from_seed(d, &now)?;
            st.deny_assignments.push(d);
        }
        Ok(st)
    }

    /// A seeded eligibility, checked and completed: GUID name (random when empty), scope in
    /// `/subscriptions/...` form, role GUID, principal type (the directory's, else `User`), start.
    fn eligibility_from_seed(&mut self, mut e: RoleEligibility, now: &str) -> Result<RoleEligibility, String> {
        e.name = if e.name.trim().is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            guid_of(&e.name).ok_or_else(|| format!("role eligibility {:?}: name must be a GUID", e.name))?
        };
        if e.scope.trim().is_empty() || e.principal_id.trim().is_empty() {
            return Err(format!("role eligibility {}: scope and principalId are required", e.name));
        }
        e.scope = canonical_scope(&e.scope);
        e.role_definition_id = guid_of(&e.role_definition_id)
            .ok_or_else(|| format!("role eligibility {}: bad roleDefinitionId {:?}", e.name, e.role_definition_id))?;
        for (what, t) in [("startDateTime", &e.start_date_time), ("endDateTime", &e.end_date_time)] {
            if let Some(t) = t
                && t.parse::<jiff::Timestamp>().is_err()
            {
                return Err(format!("role eligibility {}: {what} {t:?} is not an RFC 3339 time", e.name));
            }
        }
        if let Some(sub) = subscription_of(&e.scope) {
            self.subscriptions.insert(sub.to_ascii_lowercase());
        }
        if e.principal_type.is_none() {
            e.principal_type =
                Some(self.principal(&e.principal_id).map_or("User".into(), |p| p.principal_type.clone()));
        }
        e.start_date_time.get_or_insert_with(|| now.to_string());
        e.created_on.get_or_insert_with(|| now.to_string());
        Ok(e)
    }

    /// A seeded deny assignment, checked as Azure's deny assignment rules say (a display name,
    /// unique at its scope; at least one action or data action; principals; `SystemDefined` only
    /// in `principals`) and completed: GUID name (random when empty), scope, principal types.
    fn deny_from_seed(&mut self, mut d: DenyAssignment, now: &str) -> Result<DenyAssignment, String> {
        d.name = if d.name.trim().is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            guid_of(&d.name).ok_or_else(|| format!("deny assignment {:?}: name must be a GUID", d.name))?
        };
        let err = |m: &str| format!("deny assignment {}: {m}", d.name);
        if d.deny_assignment_name.trim().is_empty() {
            return Err(err("denyAssignmentName is required"));
        }
        if d.scope.trim().is_empty() {
            return Err(err("scope is required"));
        }
        d.scope = canonical_scope(&d.scope);
        if !d.permissions.iter().any(|p| !p.actions.is_empty() || !p.data_actions.is_empty()) {
            return Err(err("permissions need at least one action or data action"));
        }
        if d.principals.is_empty() {
            return Err(err(
                "principals are required (00000000-0000-0000-0000-000000000000 of type SystemDefined: everyone)",
            ));
        }
        if d.exclude_principals
            .iter()
            .any(|p| p.id == EVERYONE || p.principal_type.eq_ignore_ascii_case("SystemDefined"))
        {
            return Err(err("the SystemDefined principal can be used only in principals"));
        }
        if self.deny_assignments.iter().any(|o| {
            o.scope.eq_ignore_ascii_case(&d.scope)
                && o.deny_assignment_name.eq_ignore_ascii_case(&d.deny_assignment_name)
        }) {
            return Err(err("denyAssignmentName must be unique at its scope"));
        }
        for p in d.principals.iter_mut().chain(d.exclude_principals.iter_mut()) {
            if p.principal_type.trim().is_empty() {
                p.principal_type = if p.id == EVERYONE {
                    "SystemDefined".into()
                } else {
                    self.principal(&p.id).map_or("User".into(), |x| x.principal_type.clone())
                };
            }
        }
        if d.principals.iter().any(|p| p.id == EVERYONE && !p.principal_type.eq_ignore_ascii_case("SystemDefined")) {
            return Err(err("the zero GUID stands for everyone only with type SystemDefined"));
        }
        if let Some(sub) = subscription_of(&d.scope) {
            self.subscriptions.insert(sub.to_ascii_lowercase());
        }
        d.created_on.get_or_insert_with(|| now.to_string());
        d.updated_on.get_or_insert_with(|| now.to_string());
        Ok(d)
    }

    /// The state in seed form.
    pub fn to_seed(&self) -> Seed {
        Seed {
            tenant_id: self.tenant_id.clone(),
            enforce_rbac: self.enforce_rbac,
            management_groups: self.management_groups.clone(),
            subscriptions: self.subscription_details.values().cloned().collect(),
            resource_groups: self.resource_groups.clone(),
            principals: self.directory.iter().map(|d| d.principal.clone()).collect(),
            clients: self.clients.clone(),
            hubs: self
                .hubs
                .iter()
                .map(|h| HubSeed {
                    subscription_id: h.subscription_id.clone(),
                    resource_group: h.resource_group.clone(),
                    name: h.name.clone(),
                    location: h.location.clone(),
                    sku: Some(h.sku.clone()),
                    disable_local_auth: Some(h.disable_local_auth()),
                    disable_device_sas: Some(h.disable_device_sas()),
                    disable_module_sas: Some(h.disable_module_sas()),
                    tags: Some(h.tags.clone()),
                    identity: h.identity.clone(),
                    properties: Some(h.properties.clone()),
                    authorization_policies: Some(h.policies.clone()),
                    etag: Some(h.etag.clone()),
                    device_host_name: h.device_host_name.clone(),
                    service_host_name: h.service_host_name.clone(),
                })
                .collect(),
            provisioning_services: self
                .dps
                .iter()
                .map(|d| DpsSeed {
                    subscription_id: d.subscription_id.clone(),
                    resource_group: d.resource_group.clone(),
                    name: d.name.clone(),
                    location: d.location.clone(),
                    links: d.links.clone(),
                    tags: Some(d.tags.clone()),
                    etag: Some(d.etag.clone()),
                    identity: d.identity.clone(),
                    raw_iot_hubs: d.raw_iot_hubs.clone(),
                })
                .collect(),
            role_definitions: self.role_definitions.clone(),
            role_assignments: self.role_assignments.clone(),
            policies: self.policies.clone(),
            device_update_accounts: self.device_update_accounts.clone(),
            role_eligibilities: self.role_eligibilities.clone(),
            deny_assignments: self.deny_assignments.clone(),
        }
    }
}

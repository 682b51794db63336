//! What the operator observed in Azure, as plain domain structs: role assignments and hubs
//! (what depends on a hub's shared access is in `dependents`). `observe` fills them; `plan` reads them. Pure, no I/O.

use uuid::Uuid;

use super::cloud::all_iothub_host_suffixes;
use serde::{Deserialize, Serialize};

use super::grant::Grant;
use super::ids::{HubId, RoleAssignmentId, Scope};

/// Allow or deny a kind of shared access signature (the CRD's `Allow` / `Deny`; Azure's
/// `disable*` flags are only spelled out by the client).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Access {
    Allow,
    Deny,
}

impl Access {
    /// From Azure's `disable*` flag (`true` is Deny).
    pub fn from_disabled(disabled: bool) -> Access {
        if disabled { Access::Deny } else { Access::Allow }
    }

    /// Azure's `disable*` flag for this value.
    pub fn disabled(self) -> bool {
        self == Access::Deny
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Allow => "Allow",
            Access::Deny => "Deny",
        }
    }
}

/// A role assignment as Azure lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedAssignment {
    pub id: RoleAssignmentId,
    /// The role definition GUID (Azure's id form does not matter).
    pub role_definition: Uuid,
    /// Lower-case object id.
    pub principal_id: String,
    pub principal_type: Option<String>,
    pub description: Option<String>,
    /// Its ABAC condition (a delegation condition, on role assignment rights), if any.
    pub condition: Option<String>,
}

impl ObservedAssignment {
    /// What it grants.
    pub fn grant(&self) -> Grant {
        Grant::new(self.id.scope.clone(), self.role_definition, &self.principal_id)
    }

    /// Same scope, role and principal (what Azure treats as "the same assignment").
    pub fn is(&self, grant: &Grant) -> bool {
        self.grant() == *grant
    }
}

/// The access properties of a hub, as GET returns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedHub {
    pub id: HubId,
    /// Every host name Azure reports for the hub: `properties.hostName` (e.g.
    /// `hub-a.azure-devices.net`) and, on newer api-versions, `deviceHostName` and
    /// `serviceHostName`.
    pub host_names: Vec<String>,
    pub location: String,
    /// Shared access policies (`disableLocalAuth`).
    pub shared_access: Access,
    /// Device-scoped SAS (`disableDeviceSAS`).
    pub device_sas: Access,
    /// Module-scoped SAS (`disableModuleSAS`).
    pub module_sas: Access,
    pub etag: Option<String>,
}

impl ObservedHub {
    /// Does `host` name this hub? Case-insensitive: any host name Azure reported, and, for every
    /// cloud's IoT Hub suffix, `{name}.{suffix}` and the gateway forms `{name}.device.{suffix}` and
    /// `{name}.service.{suffix}`, each also with `privatelink.` before the suffix, and the bare
    /// hub name (hub names are unique per cloud, so matching more names can only refuse more,
    /// never less).
    pub fn has_host(&self, host: &str) -> bool {
        let host = host.trim().trim_end_matches('.');
        if self.host_names.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return true;
        }
        // A bare hub name (no domain) names the hub too: refusing more is the safe side.
        let Some((first, rest)) = host.split_once('.') else { return host.eq_ignore_ascii_case(&self.id.name) };
        if !first.eq_ignore_ascii_case(&self.id.name) {
            return false;
        }
        let rest = rest.to_ascii_lowercase();
        let rest = rest.strip_prefix("privatelink.").unwrap_or(&rest);
        let rest = rest.strip_prefix("device.").or_else(|| rest.strip_prefix("service.")).unwrap_or(rest);
        all_iothub_host_suffixes().any(|s| s.eq_ignore_ascii_case(rest))
    }
}

/// A role eligibility (Privileged Identity Management): a role the principal may activate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedEligibility {
    pub scope: Scope,
    pub role_definition: Uuid,
    pub principal_id: String,
    pub principal_type: Option<String>,
    pub condition: Option<String>,
}

/// A deny assignment: actions taken away from principals at a scope, whatever roles they hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedDeny {
    /// Its display name (`denyAssignmentName`), else its GUID.
    pub name: String,
    pub scope: Scope,
    pub permissions: Vec<crate::domain::Permission>,
    /// `(id, type)`.
    pub principals: Vec<(String, String)>,
    pub exclude: Vec<(String, String)>,
    pub do_not_apply_to_child_scopes: bool,
    /// It (or one of its permissions) has a condition: whether it applies is not known here.
    pub conditional: bool,
}

/// A hub's shared access policy, without its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPolicy {
    pub key_name: String,
    pub rights: String,
}

//! The pure planner: desired state + observed Azure state -> an exact, sorted list of actions
//! and the findings (blockers, least-privilege warnings, notes) behind them. Total and
//! deterministic: the same inputs always give the same plan, and nothing here does I/O.
//!
//! Actions sort by phase, then by target id: role definitions are written first, then role
//! assignments are created, then hub properties are set, and only then is anything deleted, so a
//! change is always make-before-break.

pub mod custom_role;
pub mod exposure;
pub mod identity;
pub mod identity_check;
pub mod ownership;
pub mod role_assignment;
pub mod shared_access;

use std::fmt;

use uuid::Uuid;

use crate::domain::naming::Owner;
use crate::domain::{Access, HubId, NewRoleAssignment, RoleAssignmentId, RoleDefinition, RoleDefinitionId, Scope};
pub use crate::reason::Reason;

/// One Azure write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create or update a custom role definition (PUT answers 201 either way).
    PutRoleDefinition { scope: Scope, definition: RoleDefinition, create: bool },
    /// Create a role assignment under the name the resource derives (`domain::naming`).
    CreateRoleAssignment(NewRoleAssignment),
    /// Leave an assignment this resource made to another resource that wants the same grant:
    /// the same assignment written again, its tag naming the heir (only the heir may take it
    /// over once its maker is gone).
    HandOverRoleAssignment { assignment: NewRoleAssignment, heir: Owner },
    /// Set hub access properties; `None` leaves a property unchanged.
    SetHubAccess { hub: HubId, shared_access: Option<Access>, device_sas: Option<Access>, module_sas: Option<Access> },
    /// Delete a role assignment this resource owns.
    DeleteRoleAssignment { id: RoleAssignmentId },
    /// Delete a custom role definition this resource owns.
    DeleteRoleDefinition { id: RoleDefinitionId, role_name: String },
}

impl Action {
    /// Order of execution: definitions, creates, hub changes, deletes.
    pub fn phase(&self) -> u8 {
        match self {
            Action::PutRoleDefinition { .. } => 0,
            Action::CreateRoleAssignment(_) | Action::HandOverRoleAssignment { .. } => 1,
            Action::SetHubAccess { .. } => 2,
            Action::DeleteRoleAssignment { .. } => 3,
            Action::DeleteRoleDefinition { .. } => 4,
        }
    }

    /// The verb, as shown in plans, status and Events.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::PutRoleDefinition { create: true, .. } => "CreateRoleDefinition",
            Action::PutRoleDefinition { create: false, .. } => "UpdateRoleDefinition",
            Action::CreateRoleAssignment(_) => "CreateRoleAssignment",
            Action::HandOverRoleAssignment { .. } => "HandOverRoleAssignment",
            Action::SetHubAccess { .. } => "SetHubAccess",
            Action::DeleteRoleAssignment { .. } => "DeleteRoleAssignment",
            Action::DeleteRoleDefinition { .. } => "DeleteRoleDefinition",
        }
    }

    /// The Azure id the action writes.
    pub fn target(&self) -> String {
        match self {
            Action::PutRoleDefinition { scope, definition, .. } => {
                RoleDefinitionId::new(scope.clone(), definition.guid).to_string()
            }
            Action::CreateRoleAssignment(NewRoleAssignment { id, .. })
            | Action::HandOverRoleAssignment { assignment: NewRoleAssignment { id, .. }, .. }
            | Action::DeleteRoleAssignment { id } => id.to_string(),
            Action::SetHubAccess { hub, .. } => hub.arm_id(),
            Action::DeleteRoleDefinition { id, .. } => id.to_string(),
        }
    }

    /// A one-line human description of the change.
    pub fn describe(&self) -> String {
        fn access(v: Option<Access>, what: &str) -> Option<String> {
            v.map(|a| format!("{what} {}", a.as_str()))
        }
        match self {
            Action::PutRoleDefinition { definition, .. } => format!(
                "role '{}' with {} data action(s)",
                definition.role_name,
                definition.permissions.iter().map(|p| p.data_actions.len()).sum::<usize>()
            ),
            Action::CreateRoleAssignment(NewRoleAssignment {
                principal_id,
                principal_type,
                role_definition_id,
                ..
            }) => {
                let role = crate::domain::roles::builtin_by_guid(role_definition_id.guid)
                    .map_or_else(|| role_definition_id.to_string(), |r| r.role_name.clone());
                format!("grant '{role}' to {} {principal_id}", principal_type.as_str())
            }
            Action::HandOverRoleAssignment { heir, .. } => {
                format!("leave the role assignment to {heir}, which wants the same grant")
            }
            Action::SetHubAccess { shared_access, device_sas, module_sas, .. } => [
                access(*shared_access, "shared access policies"),
                access(*device_sas, "device SAS"),
                access(*module_sas, "module SAS"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", "),
            Action::DeleteRoleAssignment { .. } => "remove the role assignment".into(),
            Action::DeleteRoleDefinition { role_name, .. } => format!("remove role '{role_name}'"),
        }
    }

    fn sort_key(&self) -> (u8, String) {
        (self.phase(), self.target().to_ascii_lowercase())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.verb(), self.target(), self.describe())
    }
}

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A change the spec asks for is refused; the resource is not Ready.
    Blocker,
    /// Works, but not as safely as it could (least privilege).
    Warning,
    /// Worth knowing.
    Info,
}

impl Severity {
    /// As shown in plans and status (the variant's own name: a blocker is a refused change).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Blocker => "Blocker",
            Severity::Warning => "Warning",
            Severity::Info => "Info",
        }
    }
}

/// Something the planner wants a person to know, with the Azure ids involved.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub severity: Severity,
    pub reason: Reason,
    pub message: String,
    pub resource_ids: Vec<String>,
}

/// The messages of `findings`, joined with "; " (how status, Events and the CLI tell several).
pub fn messages<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> String {
    findings.into_iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; ")
}

impl Finding {
    pub fn new(severity: Severity, reason: Reason, message: impl Into<String>, resource_ids: Vec<String>) -> Self {
        let mut resource_ids = resource_ids;
        resource_ids.sort();
        resource_ids.dedup();
        Finding { severity, reason, message: message.into(), resource_ids }
    }
}

/// The outcome of planning: what to write, and why some things will not be written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sorted: definitions, creates, hub changes, deletes.
    pub actions: Vec<Action>,
    /// Sorted by severity, then reason.
    pub findings: Vec<Finding>,
}

impl Plan {
    /// Build a plan, sorting and de-duplicating.
    pub fn new(mut actions: Vec<Action>, mut findings: Vec<Finding>) -> Plan {
        actions.sort_by_key(Action::sort_key);
        actions.dedup();
        findings.sort();
        findings.dedup();
        Plan { actions, findings }
    }

    /// Merge several plans (e.g. one per resource) into one.
    pub fn merge(plans: impl IntoIterator<Item = Plan>) -> Plan {
        let (mut actions, mut findings) = (Vec::new(), Vec::new());
        for p in plans {
            actions.extend(p.actions);
            findings.extend(p.findings);
        }
        Plan::new(actions, findings)
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Azure matches: nothing to write and nothing refused (what every front end calls in sync).
    pub fn in_sync(&self) -> bool {
        self.actions.is_empty() && self.blockers().next().is_none()
    }

    pub fn blockers(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Blocker)
    }
}

/// How each write of a plan came out, as the report step needs it (the apply step's outcomes,
/// reduced to what ownership depends on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wrote {
    /// Azure changed as asked, or already held it.
    Done,
    /// Creating found the same grant under another name.
    Adopted(RoleAssignmentId),
    /// Not written (failed, refused, skipped).
    NotDone,
}

/// Whether a resource is being reconciled or cleaned up (deleted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Apply,
    Cleanup,
}

/// Role definitions the planner may need to reason about (built-ins are always known).
pub trait RoleCatalog {
    fn role_definition(&self, guid: Uuid) -> Option<RoleDefinition>;
}

impl RoleCatalog for [RoleDefinition] {
    fn role_definition(&self, guid: Uuid) -> Option<RoleDefinition> {
        self.iter().find(|r| r.guid == guid).cloned().or_else(|| crate::domain::roles::builtin_by_guid(guid).cloned())
    }
}

impl RoleCatalog for Vec<RoleDefinition> {
    fn role_definition(&self, guid: Uuid) -> Option<RoleDefinition> {
        self.as_slice().role_definition(guid)
    }
}

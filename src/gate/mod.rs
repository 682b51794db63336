//! The security gate, one for every front end that writes (`run`, `apply`, `demo`): what a
//! namespace tenant's resources may touch in Azure, decided in one place.
//!
//! - **Allowed scopes** ([`scopes`]): the admin's `--allowed-scope` list, narrowed per namespace
//!   by the annotation `iothubaccess.io/allowed-scopes`; nothing configured allows nothing (`/`
//!   allows everything, explicitly). A namespace whose annotation is not known right now (its
//!   cache not synced, its watch failing) gets no verdict: [`Refusal`] with `ScopesUnknown`.
//! - **Every write on its exact ids** ([`wire`]): the client a resource writes through checks the
//!   canonical ids of each write and delete right before it is sent, whatever the planner
//!   decided.
//! - **The role allowlist**: a role assignment is sent only when the role's definition, read from
//!   Azure at that moment, holds nothing beyond IoT Hub data actions and control-plane reads, or
//!   the admin allowed the role (`--allowed-role`).
//! - **The fence hook** ([`WriteGate`]): with leader election, `controller/fence.rs` proves from
//!   the Lease that this replica still holds it before every write.
//!
//! The rest of the security gates (ownership proof, the SAS interlock, admission rules) are listed
//! in ARCHITECTURE.md, "Security gates". Pure decisions here; I/O only in [`wire`], by delegation.

pub mod scopes;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

pub use scopes::{Guardrail, NotAllowed};
pub use wire::{GatedAzure, WriteGate};

use crate::azure::Azure;
use crate::domain::{RoleDefinition, Scope};
use crate::memo::Memo;
use crate::reason::Reason;

/// A namespace's `iothubaccess.io/allowed-scopes` annotation as the gate reads it: `Ok(None)`
/// when the namespace has none, `Err(why)` when it cannot be known now (fail closed).
pub type NamespaceScopes = Arc<dyn Fn(&str) -> Result<Option<String>, String> + Send + Sync>;

/// How long the role check before a grant reuses a definition read (joined reads of one burst of
/// grants; a definition changed in Azure is seen within this).
const ROLE_READ_MAX_AGE: Duration = Duration::from_secs(2);

/// Why the gate refuses: `ScopeNotAllowed` (a person must change something) or `ScopesUnknown`
/// (the namespace's annotation is not known right now; retried).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub message: String,
}

/// The gate's verdict, read as "may ask for it": allowed, or not known right now (a decision to
/// keep something for someone fails closed that way).
pub trait VerdictExt {
    fn is_ok_or_unknown(&self) -> bool;
}

impl VerdictExt for Result<(), Refusal> {
    fn is_ok_or_unknown(&self) -> bool {
        match self {
            Ok(()) => true,
            Err(r) => r.reason == Reason::ScopesUnknown,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The gate's flags, the same for `run`, `plan` and `apply`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct GateArgs {
    /// ARM id that may be managed (planned and written), with everything below it (repeatable,
    /// or comma separated; `/` for every scope the credential reaches). Nothing configured means
    /// nothing is written (deny by default); `plan` then reports what it would refuse.
    #[arg(long = "allowed-scope", env = "IOTHUB_ACCESS_ALLOWED_SCOPES", value_delimiter = ',', value_parser = scopes::parse_allowed_scope)]
    pub allowed_scopes: Vec<Scope>,
    /// A role definition GUID that may be assigned although it grants more than IoT Hub data
    /// access (repeatable, or comma separated). By default only roles holding nothing beyond IoT
    /// Hub data actions and control-plane reads are granted.
    #[arg(long = "allowed-role", env = "IOTHUB_ACCESS_ALLOWED_ROLES", value_delimiter = ',')]
    pub allowed_roles: Vec<Uuid>,
}

impl GateArgs {
    /// The gate these flags describe (namespace narrowing and the fence are added by the
    /// controller's wiring).
    pub fn gate(&self) -> Gate {
        Gate::new(Guardrail::new(self.allowed_scopes.iter().cloned()), self.allowed_roles.clone())
    }
}

/// The gate: allowed scopes, namespace narrowing, role allowlist, fence hook.
#[derive(Clone)]
pub struct Gate {
    scopes: Guardrail,
    namespaces: NamespaceScopes,
    allowed_roles: Vec<Uuid>,
    fence: Option<Arc<dyn WriteGate>>,
    definitions: Arc<Memo<Uuid, Option<RoleDefinition>>>,
}

impl Gate {
    /// A gate over `scopes` and `allowed_roles`, with no namespace annotations (the CLI's) and no
    /// fence.
    pub fn new(scopes: Guardrail, allowed_roles: Vec<Uuid>) -> Gate {
        Gate {
            scopes,
            namespaces: Arc::new(|_| Ok(None)),
            allowed_roles,
            fence: None,
            definitions: Arc::new(Memo::with_max_age(ROLE_READ_MAX_AGE)),
        }
    }

    /// Namespaces narrowed by their annotation (the controller's namespace cache).
    pub fn with_namespaces(mut self, namespaces: NamespaceScopes) -> Gate {
        self.namespaces = namespaces;
        self
    }

    /// Every write first passes `fence` (leader election).
    pub fn with_fence(mut self, fence: Arc<dyn WriteGate>) -> Gate {
        self.fence = Some(fence);
        self
    }

    pub fn scopes(&self) -> &Guardrail {
        &self.scopes
    }

    /// Roles the cluster admin allows beyond IoT Hub data access (`--allowed-role`).
    pub fn allowed_roles(&self) -> &[Uuid] {
        &self.allowed_roles
    }

    /// May a resource of `namespace` touch `ids` now?
    pub fn check(&self, namespace: &str, ids: &[Scope]) -> Result<(), Refusal> {
        let annotation = (self.namespaces)(namespace).map_err(|why| Refusal {
            reason: Reason::ScopesUnknown,
            message: format!(
                "the allowed scopes of namespace {namespace} are not known yet ({why}); nothing is written until they are"
            ),
        })?;
        self.scopes
            .check(namespace, annotation.as_deref(), ids)
            .map_err(|e| Refusal { reason: Reason::ScopeNotAllowed, message: e.0 })
    }

    /// The client a resource of `namespace` writes through: every write and delete passes this
    /// gate right before it is sent.
    pub fn azure_for(&self, namespace: &str, inner: Arc<dyn Azure>) -> Arc<dyn Azure> {
        Arc::new(GatedAzure::new(inner, self.clone(), namespace))
    }
}

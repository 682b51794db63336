//! The `desire` step: validate a custom resource's spec and turn it into the desired Azure state
//! in domain terms. The checks are the admission rules of the CRDs (`crate::crd::rules`), run in
//! Rust so `validate`, `plan`, `apply` and the controller refuse exactly what the API server
//! refuses, with the same field paths and messages. Pure, no I/O.

mod custom_role;
mod role_assignment;
mod shared_access;

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

pub use custom_role::{DesiredCustomRole, desire_custom_role, validate_custom_role};
pub use role_assignment::{
    CustomRoleLookup, DesireError, DesiredAssignment, PrincipalLookup, RefValue, ResolvedRole, desire_role_assignment,
    no_principal_refs, resolve_principal, validate_role_assignment,
};
pub use shared_access::{DesiredSharedAccess, desire_shared_access, validate_shared_access};

/// The canonical ARM ids a desired state touches: what the guard (the allowed scopes and the
/// namespace's narrowing, `crate::gate`) must allow before anything is read or written for it.
pub trait Guarded {
    fn guarded_scopes(&self) -> Vec<Scope>;
}

impl Guarded for DesiredAssignment {
    fn guarded_scopes(&self) -> Vec<Scope> {
        vec![self.hub.scope(), self.scope.clone()]
    }
}

impl Guarded for DesiredCustomRole {
    fn guarded_scopes(&self) -> Vec<Scope> {
        std::iter::once(Scope::Subscription(self.subscription_id.clone()))
            .chain(self.assignable_scopes.iter().cloned())
            .collect()
    }
}

impl Guarded for DesiredSharedAccess {
    fn guarded_scopes(&self) -> Vec<Scope> {
        vec![self.hub.scope()]
    }
}

use crate::crd::rules;
use crate::domain::Scope;

/// One invalid field: where (a path such as `spec.role.builtIn`) and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every invalid field of a spec, in path order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }
    fn into_result(mut self) -> Result<(), FieldErrors> {
        self.0.sort();
        self.0.dedup();
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for FieldErrors {}

macro_rules! pattern {
    ($name:ident, $re:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| match Regex::new($re) {
            Ok(r) => r,
            Err(e) => unreachable!("compiled-in pattern {} is invalid: {e}", stringify!($name)),
        });
    };
}

pattern!(GUID_RE, rules::GUID);
pattern!(CONFIG_MAP_NAME_RE, rules::CONFIG_MAP_NAME);
pattern!(CONFIG_MAP_KEY_RE, rules::CONFIG_MAP_KEY);
pattern!(HUB_NAME_RE, rules::HUB_NAME);
pattern!(DIGITS_ONLY_RE, rules::DIGITS_ONLY);
pattern!(RESOURCE_GROUP_RE, rules::RESOURCE_GROUP);
pattern!(MANAGEMENT_GROUP_RE, rules::MANAGEMENT_GROUP);
pattern!(ACTION_RE, rules::ACTION);
pattern!(READ_ACTION_RE, rules::READ_ACTION);
pattern!(ASSIGNABLE_SCOPE_RE, rules::ASSIGNABLE_SCOPE);

fn check_guid(errs: &mut FieldErrors, path: &str, value: &str, message: &str) {
    if !GUID_RE.is_match(value) {
        errs.push(path, format!("{message} (got '{value}')"));
    }
}

fn check_max_len(errs: &mut FieldErrors, path: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        errs.push(path, format!("must be at most {max} characters"));
    }
}

fn check_hub(errs: &mut FieldErrors, path: &str, hub: &crate::crd::HubRef) {
    check_guid(errs, &format!("{path}.subscriptionId"), &hub.subscription_id, rules::msg::GUID);
    if !RESOURCE_GROUP_RE.is_match(&hub.resource_group) {
        errs.push(
            format!("{path}.resourceGroup"),
            format!("{} (got '{}')", rules::msg::RESOURCE_GROUP, hub.resource_group),
        );
    }
    if !HUB_NAME_RE.is_match(&hub.name) || DIGITS_ONLY_RE.is_match(&hub.name) {
        errs.push(format!("{path}.name"), format!("{} (got '{}')", rules::msg::HUB_NAME, hub.name));
    }
}

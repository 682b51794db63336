//! `plan`'s look at the CLI's own Azure identity: the check `run` makes of itself at start and at
//! every resync (`controller::identity`), for the kinds the manifests hold. Advisory: it never
//! changes the exit code.

use std::io::Write;

use serde_json::{Value, json};

use crate::azure::Azure;
use crate::crd::ReconcileMode;
use crate::domain::{BuiltInRole, PrincipalType, Scope};
use crate::manifest::{Manifests, Resource};
use crate::plan::identity_check::{Finding, Needs};

/// What the manifests' kinds need of the identity (managed resources only: observe mode writes
/// nothing).
pub fn needs(manifests: &Manifests, allowed_scopes: &[Scope]) -> Needs {
    let none = std::collections::BTreeMap::new();
    let managed: Vec<&Resource> = manifests
        .valid_resources()
        .map(|d| &d.resource)
        .filter(|r| {
            ReconcileMode::from_annotations(r.meta().annotations.as_ref().unwrap_or(&none)).0 == ReconcileMode::Manage
        })
        .collect();
    let mut principal_types: Vec<PrincipalType> = managed
        .iter()
        .filter_map(|r| match r {
            Resource::RoleAssignment(a) => Some(a.spec.principal.principal_type),
            _ => None,
        })
        .collect();
    principal_types.sort();
    principal_types.dedup();
    let mut hub_scopes: Vec<_> = managed
        .iter()
        .filter_map(|r| match r {
            Resource::SharedAccess(s) => Some(s.spec.hub.to_hub_id().scope()),
            _ => None,
        })
        .collect();
    hub_scopes.sort_by_key(|s| s.key());
    hub_scopes.dedup_by_key(|s| s.key());
    Needs {
        allowed_scopes: allowed_scopes.to_vec(),
        probe_role: (!principal_types.is_empty()).then(|| BuiltInRole::IoTHubDataReader.guid()),
        principal_types,
        custom_roles: managed.iter().any(|r| matches!(r, Resource::CustomRole(_))),
        hub_scopes,
        search_subscriptions: Vec::new(),
    }
}

/// The identity's findings for these manifests, or why they could not be had.
pub async fn check(
    azure: &dyn Azure,
    oid: &str,
    manifests: &Manifests,
    allowed_scopes: &[Scope],
) -> Result<Vec<Finding>, String> {
    let mut needs = needs(manifests, allowed_scopes);
    if !needs.hub_scopes.is_empty() {
        needs.search_subscriptions = azure.list_subscriptions().await.map_err(|e| e.to_string())?;
    }
    crate::observe::identity::check(azure, oid, &needs).await.map_err(|e| e.to_string())
}

/// The table's closing lines.
pub fn write(oid: &str, result: &Result<Vec<Finding>, String>, out: &mut dyn Write) -> std::io::Result<()> {
    match result {
        Ok(f) if f.is_empty() => {
            writeln!(out, "identity {oid}: holds what these manifests need in Azure and nothing beyond")
        }
        Ok(findings) => {
            writeln!(out, "identity {oid}:")?;
            for f in findings {
                writeln!(out, "  {}: {}", f.kind.as_str(), f.detail)?;
            }
            Ok(())
        }
        Err(e) => writeln!(out, "identity {oid}: not checked: {e}"),
    }
}

/// `plan -o json`'s `identity` member.
pub fn to_json(oid: &str, result: &Result<Vec<Finding>, String>) -> Value {
    match result {
        Ok(findings) => json!({
            "principalId": oid,
            "findings": findings.iter().map(|f| json!({"finding": f.kind.as_str(), "detail": f.detail})).collect::<Vec<_>>(),
        }),
        Err(e) => json!({"principalId": oid, "error": e}),
    }
}

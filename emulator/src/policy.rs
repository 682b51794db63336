//! Azure Policy on hub PUTs, evaluated the way ARM does before the request reaches the
//! provider: Modify assignments first (addOrReplace `properties.{property}`, from api-version
//! 2021-07-01), then Deny assignments on the modified body (403 `RequestDisallowedByPolicy`).

use serde_json::{Value, json};

use crate::ctx::Reply;
use crate::seed::{PolicyAssignment, PolicyEffect};
use crate::state::{State, normalize_scope};

/// Modify applies at api-versions from this date on (the properties they set exist from then).
const MODIFY_FROM: &str = "2021-07-01";

impl State {
    /// Replace every policy assignment.
    pub fn set_policies(&mut self, policies: Vec<PolicyAssignment>) {
        self.policies = policies;
    }
}

/// Whether `id` is at or below `scope` (case-insensitive).
fn in_scope(scope: &str, id: &str) -> bool {
    let scope = normalize_scope(scope).to_ascii_lowercase();
    let id = normalize_scope(id).to_ascii_lowercase();
    !scope.is_empty() && scope != "/" && (id == scope || id.starts_with(&format!("{scope}/")))
}

fn assignment_id(p: &PolicyAssignment) -> String {
    format!("{}/providers/Microsoft.Authorization/policyAssignments/{}", normalize_scope(&p.scope), p.assignment_name)
}

fn definition_id(p: &PolicyAssignment) -> String {
    format!("/providers/Microsoft.Authorization/policyDefinitions/{}", p.definition_name)
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// 403 in ARM's shape for the Deny assignments `hub_name` violates.
fn disallowed(hub_name: &str, violated: &[&PolicyAssignment]) -> Reply {
    let identifiers: Vec<String> = violated
        .iter()
        .map(|p| {
            format!(
                r#"{{"policyAssignment":{{"name":{},"id":{}}},"policyDefinition":{{"name":{},"id":{},"version":"1.0.0"}}}}"#,
                quoted(&p.assignment_name),
                quoted(&assignment_id(p)),
                quoted(&p.definition_name),
                quoted(&definition_id(p))
            )
        })
        .collect();
    let info: Vec<Value> = violated
        .iter()
        .map(|p| {
            json!({"type": "PolicyViolation", "info": {
                "policyDefinitionDisplayName": p.display_name,
                "policyDefinitionId": definition_id(p),
                "policyDefinitionName": p.definition_name,
                "policyDefinitionEffect": "deny",
                "policyDefinitionVersion": "1.0.0",
                "policyAssignmentId": assignment_id(p),
                "policyAssignmentName": p.assignment_name,
                "policyAssignmentScope": p.scope,
                "policyAssignmentParameters": {},
                "policyExemptionIds": []
            }})
        })
        .collect();
    Reply::json(
        403,
        json!({"error": {
            "code": "RequestDisallowedByPolicy",
            "target": hub_name,
            "message": format!(
                "Resource '{hub_name}' was disallowed by policy. Policy identifiers: '[{}]'.",
                identifiers.join(",")
            ),
            "additionalInfo": info
        }}),
    )
}

/// Apply the policies in scope of hub `hub_id` to a PUT body: Modify, then Deny.
pub(crate) fn evaluate(
    policies: &[PolicyAssignment],
    hub_id: &str,
    hub_name: &str,
    api_version: &str,
    body: &mut Value,
) -> Result<(), Reply> {
    let applicable: Vec<&PolicyAssignment> =
        policies.iter().filter(|p| !p.property.is_empty() && in_scope(&p.scope, hub_id)).collect();
    let date = api_version.get(..10).unwrap_or(api_version);
    if api_version.is_empty() || date >= MODIFY_FROM {
        for p in applicable.iter().filter(|p| p.effect == PolicyEffect::Modify) {
            if !body.get("properties").is_some_and(Value::is_object) {
                body["properties"] = json!({});
            }
            body["properties"][&p.property] = p.value.clone();
        }
    }
    let violated: Vec<&PolicyAssignment> = applicable
        .into_iter()
        .filter(|p| p.effect == PolicyEffect::Deny)
        .filter(|p| {
            let actual = body.get("properties").and_then(|props| props.get(&p.property)).cloned();
            let actual = match (actual, &p.value) {
                (None, Value::Bool(_)) => Value::Bool(false),
                (a, _) => a.unwrap_or(Value::Null),
            };
            actual != p.value
        })
        .collect();
    if violated.is_empty() { Ok(()) } else { Err(disallowed(hub_name, &violated)) }
}

//! Typed Azure errors, mapped once from ARM and Devices RP responses. Everything else in the
//! project branches on these variants, never on message text. No I/O.

use std::time::Duration;

/// What went wrong talking to Azure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AzureError {
    /// The resource does not exist (404: `ResourceNotFound`, `RoleAssignmentNotFound`, ...).
    #[error("not found: {code}: {message}")]
    NotFound { code: String, message: String },
    /// A conflicting resource exists (409). For `RoleAssignmentExists`, `existing_name` is the
    /// GUID of the assignment that already grants the same thing.
    #[error("conflict: {code}: {message}")]
    Conflict { code: String, message: String, existing_name: Option<String> },
    /// The principal is not (yet) known to the directory (400 `PrincipalNotFound`): replication
    /// delay for a new principal, or a wrong principal id.
    #[error("principal not found: {message}")]
    PrincipalNotFound { message: String },
    /// The operator's identity lacks a permission (403 `AuthorizationFailed`).
    #[error("forbidden: {code}: {message}")]
    Forbidden { code: String, message: String },
    /// Azure refused a role assignment write or delete (403 `AuthorizationFailed`). With the
    /// identity `setup` prints, the likely cause is its delegation condition, which lists the roles
    /// and principal types it may assign and remove; retrying will not help until an admin
    /// changes that.
    #[error(
        "Azure refused to {verb} this role assignment (403 AuthorizationFailed){}: the likely cause is the delegation condition on the operator identity's Role Based Access Control Administrator assignment, which lists the roles and principal types it may assign and remove; run `iothub-access-operator setup` with this role (a manifest that names it, or --allowed-role) and have an admin grant what it prints. Azure said: {message}",
        what.as_deref().map(|w| format!(" for {w}")).unwrap_or_default()
    )]
    AssignmentForbidden { verb: &'static str, what: Option<String>, message: String },
    /// The credential was refused (401) or no token could be obtained.
    #[error("authentication failed: {message}")]
    Unauthenticated { message: String },
    /// ARM or the resource provider throttled the request (429); wait `retry_after`.
    #[error("throttled, retry after {retry_after:?}: {message}")]
    Throttled { retry_after: Duration, message: String },
    /// An `If-Match` etag was stale (412).
    #[error("precondition failed: {message}")]
    PreconditionFailed { message: String },
    /// A passing failure: 5xx, timeout, connection reset, a long-running operation that failed
    /// on Azure's side.
    #[error("transient: {message}")]
    Transient { message: String },
    /// Azure Policy refused the write (403 `RequestDisallowedByPolicy`); retrying will not help
    /// until the policy or its assignment changes.
    #[error("disallowed by Azure Policy: assignment {assignment}, definition {definition}: {message}")]
    PolicyDenied { assignment: String, definition: String, message: String },
    /// Azure refused the request as invalid (other 4xx); retrying will not help.
    #[error("invalid request: {code}: {message}")]
    Invalid { code: String, message: String },
    /// Never sent: the operator's own gate withheld it (`crate::gate`: a scope outside the
    /// allowed ones, a role that grants more than IoT Hub data access, not the leader), with the
    /// reason status shows.
    #[error("{message}")]
    Withheld { reason: crate::reason::Reason, message: String },
}

impl AzureError {
    /// Whether retrying the same request later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AzureError::Throttled { .. } | AzureError::Transient { .. } | AzureError::PrincipalNotFound { .. }
        )
    }

    /// Map an HTTP error response (status, headers already read, body) to a typed error.
    /// Understands the ARM envelope `{"error":{"code","message"}}` and the Devices RP shape
    /// `{"code":412001,"httpStatusCode":"PreconditionFailed","message":...}` (numeric `code`).
    pub fn from_response(status: u16, retry_after: Option<Duration>, body: &[u8]) -> AzureError {
        let (code, message) = parse_error_body(body);
        let message = if message.is_empty() { format!("HTTP {status}") } else { message };
        match status {
            401 => AzureError::Unauthenticated { message: format!("{code}: {message}") },
            403 if code == "RequestDisallowedByPolicy" => {
                let (assignment, definition) = policy_identifiers(body);
                AzureError::PolicyDenied { assignment, definition, message }
            }
            403 => AzureError::Forbidden { code, message },
            404 => AzureError::NotFound { code, message },
            409 => {
                let existing_name =
                    (code == "RoleAssignmentExists").then(|| existing_assignment_name(&message)).flatten();
                AzureError::Conflict { code, message, existing_name }
            }
            412 => AzureError::PreconditionFailed { message },
            429 => AzureError::Throttled { retry_after: retry_after.unwrap_or(Duration::from_secs(10)), message },
            400 if code == "PrincipalNotFound" => AzureError::PrincipalNotFound { message },
            500..=599 => AzureError::Transient { message: format!("HTTP {status} {code}: {message}") },
            _ => AzureError::Invalid { code, message },
        }
    }
}

/// `(code, message)` from either error envelope; codes may be numbers on the wire.
pub fn parse_error_body(body: &[u8]) -> (String, String) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (String::new(), String::from_utf8_lossy(body).chars().take(300).collect());
    };
    let inner = v.get("error").unwrap_or(&v);
    let code = match inner.get("code") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let message = inner.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_string();
    (code, message)
}

/// The policy assignment and definition ids of a `RequestDisallowedByPolicy` answer, from its
/// `additionalInfo[type=PolicyViolation].info` (`"unknown"` when Azure did not say).
pub fn policy_identifiers(body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let info = v
        .pointer("/error/additionalInfo")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .filter(|i| i.get("type").and_then(|t| t.as_str()) == Some("PolicyViolation"))
        .find_map(|i| i.get("info"));
    let field = |k: &str| info.and_then(|i| i.get(k)).and_then(|x| x.as_str()).unwrap_or("unknown").to_string();
    let definition = match info.and_then(|i| i.get("policyDefinitionDisplayName")).and_then(|x| x.as_str()) {
        Some(name) => format!("{} ('{name}')", field("policyDefinitionId")),
        None => field("policyDefinitionId"),
    };
    (field("policyAssignmentId"), definition)
}

/// The existing assignment's name from a `RoleAssignmentExists` message ("... The ID of the
/// existing role assignment is 05c5a614a7d64502b150c2fb455033ff."), as a hyphenated GUID.
pub fn existing_assignment_name(message: &str) -> Option<String> {
    let tail = message.rsplit("existing role assignment is").next()?;
    let hex: String = tail.chars().filter(|c| c.is_ascii_hexdigit() || *c == '-').collect();
    let hex = hex.replace('-', "");
    if hex.len() != 32 {
        return None;
    }
    uuid::Uuid::parse_str(&hex).ok().map(|u| u.hyphenated().to_string())
}

/// Parse a `Retry-After` header value (delta-seconds; HTTP dates are rare on ARM and mapped to a
/// conservative default by the caller).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_arm_and_devices_rp_shapes() {
        let body = br#"{"error":{"code":"RoleAssignmentExists","message":"The role assignment already exists. The ID of the existing role assignment is 05c5a614a7d64502b150c2fb455033ff."}}"#;
        match AzureError::from_response(409, None, body) {
            AzureError::Conflict { existing_name, .. } => {
                assert_eq!(existing_name.as_deref(), Some("05c5a614-a7d6-4502-b150-c2fb455033ff"))
            }
            other => panic!("{other:?}"),
        }
        let rp = br#"{"code":412001,"httpStatusCode":"PreconditionFailed","message":"Invalid ETag supplied."}"#;
        assert!(matches!(AzureError::from_response(412, None, rp), AzureError::PreconditionFailed { .. }));
        assert_eq!(parse_error_body(rp).0, "412001");
        let pnf = br#"{"error":{"code":"PrincipalNotFound","message":"Principal x does not exist"}}"#;
        assert!(matches!(AzureError::from_response(400, None, pnf), AzureError::PrincipalNotFound { .. }));
        let t = AzureError::from_response(429, Some(Duration::from_secs(7)), b"{}");
        assert_eq!(t, AzureError::Throttled { retry_after: Duration::from_secs(7), message: "HTTP 429".into() });
        assert!(AzureError::from_response(503, None, b"").is_retryable());
        let policy = br#"{"error":{"code":"RequestDisallowedByPolicy","target":"hub-a","message":"Resource 'hub-a' was disallowed by policy.","additionalInfo":[{"type":"PolicyViolation","info":{"policyDefinitionDisplayName":"No local auth","policyDefinitionId":"/providers/Microsoft.Authorization/policyDefinitions/672d","policyAssignmentId":"/subscriptions/s/providers/Microsoft.Authorization/policyAssignments/a1"}}]}}"#;
        match AzureError::from_response(403, None, policy) {
            AzureError::PolicyDenied { assignment, definition, .. } => {
                assert_eq!(assignment, "/subscriptions/s/providers/Microsoft.Authorization/policyAssignments/a1");
                assert_eq!(definition, "/providers/Microsoft.Authorization/policyDefinitions/672d ('No local auth')");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            !AzureError::from_response(400, None, br#"{"error":{"code":"InvalidRoleDefinitionId","message":"x"}}"#)
                .is_retryable()
        );
    }
}

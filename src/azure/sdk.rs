//! The adapter to the legacy authorization SDK (`azure_mgmt_authorization`), confined here,
//! `arm.rs` (building its client) and `roles.rs` (calling it): its transport replaced by the
//! project's HTTP stack and held to the path of the id each call was given ([`SDK_PATH`]), its
//! errors recovered as [`AzureError`], its models converted to domain types.

use std::sync::Arc;

use async_trait::async_trait;
use azure_mgmt_authorization::package_2022_04_01 as authz;
use url::Url;
use uuid::Uuid;

use super::error::AzureError;
use super::http::{HttpCore, same_path};
use crate::domain::PrincipalType;
use crate::domain::ids::{RoleAssignmentId, role_definition_guid};
use crate::domain::{ObservedAssignment, Permission, RoleDefinition, RoleType};

tokio::task_local! {
    /// The path the authorization SDK's request of this call must have: the id it was given,
    /// as the client spelled it. The SDK builds its URLs by parsing text (which resolves dot
    /// segments and re-encodes), so its transport compares what it is about to send with this.
    pub(super) static SDK_PATH: String;
}

/// Name the authorization SDK's requests for metrics, from method and path.
fn authz_operation(method: &str, path: &str) -> &'static str {
    let p = path.to_ascii_lowercase();
    let collection = p.ends_with("/roleassignments") || p.ends_with("/roledefinitions");
    match (p.contains("/roleassignments"), method, collection) {
        (true, "GET", true) => "RoleAssignments_ListForScope",
        (true, "GET", false) => "RoleAssignments_Get",
        (true, "PUT", _) => "RoleAssignments_Create",
        (true, "DELETE", _) => "RoleAssignments_Delete",
        (false, "GET", true) => "RoleDefinitions_List",
        (false, "GET", false) => "RoleDefinitions_Get",
        (false, "PUT", _) => "RoleDefinitions_CreateOrUpdate",
        (false, "DELETE", _) => "RoleDefinitions_Delete",
        _ => "Authorization_Other",
    }
}

/// Replaces the SDK's transport: same pacing, timeouts, metrics and error mapping as the rest.
#[derive(Debug)]
pub(super) struct SdkTransport {
    /// Sends only to the ARM endpoint, so the SDK's `nextLink`s cannot take the token elsewhere.
    pub(super) core: Arc<HttpCore>,
}

#[async_trait]
impl azure_core_legacy::Policy for SdkTransport {
    async fn send(
        &self,
        _ctx: &azure_core_legacy::Context,
        request: &mut azure_core_legacy::Request,
        _next: &[Arc<dyn azure_core_legacy::Policy>],
    ) -> azure_core_legacy::PolicyResult {
        use azure_core_legacy::error::{Error, ErrorKind};
        let method_text = request.method().to_string();
        let method =
            reqwest::Method::from_bytes(method_text.as_bytes()).map_err(|e| Error::new(ErrorKind::Other, e))?;
        let url = Url::parse(request.url().as_str()).map_err(|e| Error::new(ErrorKind::Other, e))?;
        let headers: Vec<(String, String)> =
            request.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string())).collect();
        let body = match request.body() {
            azure_core_legacy::Body::Bytes(b) if !b.is_empty() => Some(bytes::Bytes::copy_from_slice(b)),
            _ => None,
        };
        let op = authz_operation(&method_text, url.path());
        // Only the path of the id this call was given (a `nextLink` page keeps it).
        let expected = SDK_PATH
            .try_with(String::clone)
            .map_err(|_| Error::new(ErrorKind::Other, "authorization request outside a client call: not sent"))?;
        same_path(url.path(), &expected).map_err(|e| Error::new(ErrorKind::Other, e))?;
        match self.core.execute(op, method, url, headers, body).await {
            Ok(raw) => {
                let status = azure_core_legacy::StatusCode::try_from(raw.status)
                    .map_err(|e| Error::with_message(ErrorKind::Other, || format!("status {}: {e}", raw.status)))?;
                let mut h = azure_core_legacy::headers::Headers::new();
                if let Some(etag) = raw.etag {
                    h.insert("etag", etag);
                }
                let body = raw.body;
                let stream = futures::stream::once(async move { Ok::<_, azure_core_legacy::Error>(body) });
                Ok(azure_core_legacy::Response::new(status, h, Box::pin(stream)))
            }
            Err(e) => Err(Error::new(ErrorKind::Other, e)),
        }
    }
}

/// Recover the typed error from the SDK's error chain.
pub(super) fn from_sdk(e: azure_core_legacy::Error) -> AzureError {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cur {
        if let Some(a) = err.downcast_ref::<AzureError>() {
            return a.clone();
        }
        cur = err.source();
    }
    match e.kind() {
        azure_core_legacy::error::ErrorKind::Credential => AzureError::Unauthenticated { message: e.to_string() },
        azure_core_legacy::error::ErrorKind::DataConversion => {
            AzureError::Invalid { code: "UnexpectedResponse".into(), message: e.to_string() }
        }
        _ => AzureError::Transient { message: e.to_string() },
    }
}

pub(super) fn observed_assignment(ra: authz::models::RoleAssignment) -> Option<ObservedAssignment> {
    let id = RoleAssignmentId::parse(ra.id.as_deref()?).ok()?;
    let p = ra.properties?;
    Some(ObservedAssignment {
        id,
        role_definition: role_definition_guid(&p.role_definition_id).ok()?,
        principal_id: p.principal_id.to_ascii_lowercase(),
        principal_type: p
            .principal_type
            .and_then(|t| serde_json::to_value(t).ok())
            .and_then(|v| v.as_str().map(str::to_string)),
        description: p.description,
        condition: p.condition.filter(|c| !c.trim().is_empty()),
    })
}

pub(super) fn domain_definition(rd: authz::models::RoleDefinition) -> Option<RoleDefinition> {
    let guid = rd
        .name
        .as_deref()
        .and_then(|n| Uuid::parse_str(n).ok())
        .or_else(|| role_definition_guid(rd.id.as_deref()?).ok())?;
    let p = rd.properties?;
    Some(RoleDefinition {
        guid,
        role_name: p.role_name.unwrap_or_default(),
        description: p.description.unwrap_or_default(),
        role_type: if p.type_.as_deref() == Some("BuiltInRole") { RoleType::BuiltInRole } else { RoleType::CustomRole },
        permissions: p
            .permissions
            .into_iter()
            .map(|x| Permission {
                actions: x.actions,
                not_actions: x.not_actions,
                data_actions: x.data_actions,
                not_data_actions: x.not_data_actions,
            })
            .collect(),
        assignable_scopes: p.assignable_scopes,
    })
}

pub(super) fn principal_type(t: PrincipalType) -> authz::models::role_assignment_properties::PrincipalType {
    use authz::models::role_assignment_properties::PrincipalType as P;
    match t {
        PrincipalType::User => P::User,
        PrincipalType::Group => P::Group,
        PrincipalType::ServicePrincipal => P::ServicePrincipal,
    }
}

//! The [`Azure`] trait for [`ArmClient`]. Role assignments and role definitions are sent here,
//! through the legacy authorization SDK (`azure_mgmt_authorization`, built in `arm.rs`, adapted
//! in `sdk.rs`), each SDK call held to the path of the id it was given; hubs, DPS, Device Update
//! and subscriptions are handed to the typed client in `devices.rs`.

use crate::domain::{ObservedDeny, ObservedEligibility, ObservedPolicy};
use async_trait::async_trait;
use azure_mgmt_authorization::package_2022_04_01 as authz;
use futures::StreamExt;
use uuid::Uuid;

use super::arm::ArmClient;
use super::error::AzureError;
use super::sdk::{SDK_PATH, domain_definition, from_sdk, observed_assignment, principal_type};
use super::{
    AssignmentFilter, Azure, CreateOutcome, HubAccessChange, HubWrite, NewRoleAssignment, RoleDefinitionFilter,
};
use crate::domain::ids::{RoleAssignmentId, RoleDefinitionId};
use crate::domain::{HubId, ObservedAssignment, ObservedDeviceUpdate, ObservedDps, ObservedHub, RoleDefinition, Scope};

/// The path the SDK builds for `scope` and the collection or item after it.
fn sdk_path(scope: &Scope, rest: &str) -> String {
    format!("/{}/providers/Microsoft.Authorization/{rest}", scope.without_leading_slash())
}

impl ArmClient {
    /// One authorization SDK call, retried, whose requests must all go to `path` (the id the
    /// call was given, see [`SDK_PATH`]).
    async fn authz_call<T, F, Fut>(&self, path: String, op: F) -> Result<T, AzureError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AzureError>>,
    {
        SDK_PATH.scope(path, self.retry(op)).await
    }
}

#[async_trait]
impl Azure for ArmClient {
    async fn list_role_assignments(
        &self,
        scope: &Scope,
        filter: &AssignmentFilter,
    ) -> Result<Vec<ObservedAssignment>, AzureError> {
        let filter = match filter {
            AssignmentFilter::All => None,
            AssignmentFilter::AtScope => Some("atScope()".to_string()),
            AssignmentFilter::PrincipalId(id) => Some(format!("principalId eq '{id}'")),
            AssignmentFilter::AssignedTo(id) => Some(format!("assignedTo('{id}')")),
            AssignmentFilter::AtScopeAssignedTo(id) => Some(format!("atScope() and assignedTo('{id}')")),
        };
        let path = sdk_path(scope, "roleAssignments");
        self.authz_call(path, || async {
            let mut b = self.authz.role_assignments_client().list_for_scope(scope.without_leading_slash());
            if let Some(f) = &filter {
                b = b.filter(f.clone());
            }
            let mut pages = b.into_stream();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                out.extend(page.map_err(from_sdk)?.value.into_iter().filter_map(observed_assignment));
            }
            Ok(out)
        })
        .await
    }

    async fn create_role_assignment(&self, new: &NewRoleAssignment) -> Result<CreateOutcome, AzureError> {
        let mut props =
            authz::models::RoleAssignmentProperties::new(new.role_definition_id.to_string(), new.principal_id.clone());
        props.principal_type = Some(principal_type(new.principal_type));
        props.description = new.description.clone();
        let params = authz::models::RoleAssignmentCreateParameters::new(props);
        let scope = new.id.scope.without_leading_slash();
        let path = sdk_path(&new.id.scope, &format!("roleAssignments/{}", new.id.name));
        let res = self
            .authz_call(path, || async {
                self.authz
                    .role_assignments_client()
                    .create(scope.clone(), new.id.name.to_string(), params.clone())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(from_sdk)
            })
            .await;
        match res {
            Ok(()) => Ok(CreateOutcome::Created),
            Err(AzureError::Conflict { code, existing_name: Some(name), .. }) if code == "RoleAssignmentExists" => {
                let name = Uuid::parse_str(&name).map_err(|e| AzureError::Invalid { code, message: e.to_string() })?;
                Ok(CreateOutcome::AlreadyExists { existing: RoleAssignmentId { scope: new.id.scope.clone(), name } })
            }
            Err(AzureError::Conflict { code, .. }) if code == "RoleAssignmentExists" => {
                // Older answers carry no id: find the equal assignment by listing.
                let role = Some(new.role_definition_id.guid);
                let found = self
                    .list_role_assignments(&new.id.scope, &AssignmentFilter::PrincipalId(new.principal_id.clone()))
                    .await?
                    .into_iter()
                    .find(|a| Some(a.role_definition) == role && a.id.scope == new.id.scope);
                match found {
                    Some(a) => Ok(CreateOutcome::AlreadyExists { existing: a.id }),
                    None => Err(AzureError::Conflict {
                        code,
                        message: "RoleAssignmentExists but no equal assignment is listed".into(),
                        existing_name: None,
                    }),
                }
            }
            Err(AzureError::Forbidden { code, message }) if code == "AuthorizationFailed" => {
                Err(AzureError::AssignmentForbidden {
                    verb: "create",
                    what: Some(format!(
                        "role {} and principal type {}",
                        new.role_definition_id.guid,
                        new.principal_type.as_str()
                    )),
                    message,
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn delete_role_assignment(&self, id: &RoleAssignmentId) -> Result<bool, AzureError> {
        let scope = id.scope.without_leading_slash();
        let path = sdk_path(&id.scope, &format!("roleAssignments/{}", id.name));
        self.authz_call(path, || async {
            // `.send()`: the SDK's typed delete fails on ARM's normal bodiless 204.
            let rsp = self
                .authz
                .role_assignments_client()
                .delete(scope.clone(), id.name.to_string())
                .send()
                .await
                .map_err(from_sdk)?;
            Ok(rsp.as_raw_response().status() == azure_core_legacy::StatusCode::Ok)
        })
        .await
        .map_err(|e| match e {
            AzureError::Forbidden { code, message } if code == "AuthorizationFailed" => {
                AzureError::AssignmentForbidden { verb: "delete", what: None, message }
            }
            e => e,
        })
    }

    async fn get_role_definition(&self, id: &RoleDefinitionId) -> Result<Option<RoleDefinition>, AzureError> {
        let path = sdk_path(&id.scope, &format!("roleDefinitions/{}", id.guid));
        let res = self
            .authz_call(path, || async {
                let rsp = self
                    .authz
                    .role_definitions_client()
                    .get(id.scope.without_leading_slash(), id.guid.to_string())
                    .send()
                    .await
                    .map_err(from_sdk)?;
                rsp.into_body().await.map_err(from_sdk)
            })
            .await;
        match res {
            Ok(rd) => Ok(domain_definition(rd)),
            Err(AzureError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_role_definitions(
        &self,
        scope: &Scope,
        filter: &RoleDefinitionFilter,
    ) -> Result<Vec<RoleDefinition>, AzureError> {
        let filter = match filter {
            RoleDefinitionFilter::CustomRoles => "type eq 'CustomRole'".to_string(),
            RoleDefinitionFilter::RoleName(n) => format!("roleName eq '{}'", n.replace('\'', "''")),
        };
        let path = sdk_path(scope, "roleDefinitions");
        self.authz_call(path, || async {
            let mut pages = self
                .authz
                .role_definitions_client()
                .list(scope.without_leading_slash())
                .filter(filter.clone())
                .into_stream();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                out.extend(page.map_err(from_sdk)?.value.into_iter().filter_map(domain_definition));
            }
            Ok(out)
        })
        .await
    }

    async fn put_role_definition(&self, scope: &Scope, d: &RoleDefinition) -> Result<(), AzureError> {
        let mut props = authz::models::RoleDefinitionProperties::new();
        props.role_name = Some(d.role_name.clone());
        props.description = Some(d.description.clone());
        props.type_ = Some("CustomRole".into());
        props.assignable_scopes = d.assignable_scopes.clone();
        props.permissions = d
            .permissions
            .iter()
            .map(|p| {
                let mut m = authz::models::Permission::new();
                m.actions = p.actions.clone();
                m.not_actions = p.not_actions.clone();
                m.data_actions = p.data_actions.clone();
                m.not_data_actions = p.not_data_actions.clone();
                m
            })
            .collect();
        let mut body = authz::models::RoleDefinition::new();
        body.name = Some(d.guid.to_string());
        body.properties = Some(props);
        let path = sdk_path(scope, &format!("roleDefinitions/{}", d.guid));
        self.authz_call(path, || async {
            self.authz
                .role_definitions_client()
                .create_or_update(scope.without_leading_slash(), d.guid.to_string(), body.clone())
                .send()
                .await
                .map(|_| ())
                .map_err(from_sdk)
        })
        .await
    }

    async fn delete_role_definition(&self, id: &RoleDefinitionId) -> Result<bool, AzureError> {
        let path = sdk_path(&id.scope, &format!("roleDefinitions/{}", id.guid));
        self.authz_call(path, || async {
            let rsp = self
                .authz
                .role_definitions_client()
                .delete(id.scope.without_leading_slash(), id.guid.to_string())
                .send()
                .await
                .map_err(from_sdk)?;
            Ok(rsp.as_raw_response().status() == azure_core_legacy::StatusCode::Ok)
        })
        .await
        .map_err(|e| match e {
            AzureError::Forbidden { code, message } if code == "AuthorizationFailed" => {
                AzureError::AssignmentForbidden { verb: "delete", what: None, message }
            }
            e => e,
        })
    }

    async fn get_hub(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError> {
        self.read_hub(hub).await
    }

    async fn set_hub_access(&self, hub: &HubId, change: &HubAccessChange) -> Result<HubWrite, AzureError> {
        self.write_hub_access(hub, change).await
    }

    async fn list_subscriptions(&self) -> Result<Vec<String>, AzureError> {
        self.subscriptions().await
    }

    async fn list_deny_assignments(&self, scope: &Scope) -> Result<Vec<ObservedDeny>, AzureError> {
        self.deny_assignments(scope).await
    }

    async fn list_role_eligibilities(&self, scope: &Scope) -> Result<Vec<ObservedEligibility>, AzureError> {
        self.role_eligibilities(scope).await
    }

    async fn list_hub_policies(&self, hub: &HubId) -> Result<Vec<ObservedPolicy>, AzureError> {
        self.hub_policies(hub).await
    }

    async fn list_dps(&self, subscription_id: &str) -> Result<Vec<ObservedDps>, AzureError> {
        self.provisioning_services(subscription_id).await
    }

    async fn list_device_update_instances(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<ObservedDeviceUpdate>, AzureError> {
        self.device_update_instances(subscription_id).await
    }
}

//! The reads of the exposure audit (`audit`): deny assignments (2022-04-01), role eligibility
//! schedule instances (Privileged Identity Management, 2020-10-01) and, only when asked, a
//! hub's shared access policy names and rights (their keys come with them in Azure's answer and
//! are dropped as it is parsed: never kept, never logged).

use serde::Deserialize;

use super::arm::ArmClient;
use super::{AzureError, wire};
use crate::domain::ids::role_definition_guid;
use crate::domain::{HubId, ObservedDeny, ObservedEligibility, ObservedPolicy, Permission, Scope};

/// Deny assignments - List For Scope (Microsoft.Authorization, stable 2022-04-01).
pub const DENY_ASSIGNMENTS_API_VERSION: &str = "2022-04-01";
/// Role Eligibility Schedule Instances - List For Scope (Microsoft.Authorization, stable 2020-10-01).
pub const ELIGIBILITY_API_VERSION: &str = "2020-10-01";

#[derive(Deserialize)]
struct DenyBody {
    name: String,
    properties: DenyProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DenyProperties {
    #[serde(default)]
    deny_assignment_name: Option<String>,
    scope: String,
    #[serde(default)]
    permissions: Vec<DenyPermission>,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    principals: Vec<PrincipalRef>,
    #[serde(default)]
    exclude_principals: Vec<PrincipalRef>,
    #[serde(default)]
    do_not_apply_to_child_scopes: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DenyPermission {
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    not_actions: Vec<String>,
    #[serde(default)]
    data_actions: Vec<String>,
    #[serde(default)]
    not_data_actions: Vec<String>,
    #[serde(default)]
    condition: Option<String>,
}

#[derive(Deserialize)]
struct PrincipalRef {
    id: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct EligibilityBody {
    properties: EligibilityProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EligibilityProperties {
    scope: String,
    role_definition_id: String,
    principal_id: String,
    #[serde(default)]
    principal_type: Option<String>,
    #[serde(default)]
    condition: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyBody {
    key_name: String,
    #[serde(default)]
    rights: String,
    // primaryKey and secondaryKey are not named: serde skips them.
}

#[derive(Deserialize)]
struct PolicyPage {
    value: Vec<PolicyBody>,
    #[serde(rename = "nextLink", default)]
    next_link: Option<String>,
}

fn scope_of(what: &str, s: &str) -> Result<Scope, AzureError> {
    Scope::parse(s).map_err(|e| AzureError::Invalid {
        code: "UnexpectedResponse".into(),
        message: format!("{what}: scope not understood: {e}"),
    })
}

/// The scope as a path prefix (the root is the empty prefix).
fn prefix(scope: &Scope) -> String {
    match scope {
        Scope::Root => String::new(),
        s => s.to_string(),
    }
}

fn pairs(v: Vec<PrincipalRef>) -> Vec<(String, String)> {
    v.into_iter().map(|p| (p.id.to_ascii_lowercase(), p.kind.unwrap_or_default())).collect()
}

impl ArmClient {
    /// The deny assignments at, above and below `scope`.
    pub(super) async fn deny_assignments(&self, scope: &Scope) -> Result<Vec<ObservedDeny>, AzureError> {
        let path = format!("{}/providers/Microsoft.Authorization/denyAssignments", prefix(scope));
        let url = self.url(&path, DENY_ASSIGNMENTS_API_VERSION)?;
        let what = format!("the deny assignments at {scope}");
        let items: Vec<DenyBody> = self.list_all("DenyAssignments_ListForScope", url, &what).await?;
        items
            .into_iter()
            .map(|d| {
                let p = &d.properties;
                let conditional = p.condition.as_deref().is_some_and(|c| !c.trim().is_empty())
                    || p.permissions.iter().any(|x| x.condition.as_deref().is_some_and(|c| !c.trim().is_empty()));
                Ok(ObservedDeny {
                    name: d.properties.deny_assignment_name.filter(|n| !n.is_empty()).unwrap_or(d.name),
                    scope: scope_of(&what, &d.properties.scope)?,
                    conditional,
                    permissions: d
                        .properties
                        .permissions
                        .into_iter()
                        .map(|x| Permission {
                            actions: x.actions,
                            not_actions: x.not_actions,
                            data_actions: x.data_actions,
                            not_data_actions: x.not_data_actions,
                        })
                        .collect(),
                    principals: pairs(d.properties.principals),
                    exclude: pairs(d.properties.exclude_principals),
                    do_not_apply_to_child_scopes: d.properties.do_not_apply_to_child_scopes.unwrap_or(false),
                })
            })
            .collect()
    }

    /// The role eligibilities at, above and below `scope`.
    pub(super) async fn role_eligibilities(&self, scope: &Scope) -> Result<Vec<ObservedEligibility>, AzureError> {
        let path = format!("{}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances", prefix(scope));
        let url = self.url(&path, ELIGIBILITY_API_VERSION)?;
        let what = format!("the role eligibilities at {scope}");
        let items: Vec<EligibilityBody> =
            self.list_all("RoleEligibilityScheduleInstances_ListForScope", url, &what).await?;
        items
            .into_iter()
            .map(|e| {
                let p = e.properties;
                Ok(ObservedEligibility {
                    scope: scope_of(&what, &p.scope)?,
                    role_definition: role_definition_guid(&p.role_definition_id).map_err(|err| {
                        AzureError::Invalid {
                            code: "UnexpectedResponse".into(),
                            message: format!("{what}: roleDefinitionId not understood: {err}"),
                        }
                    })?,
                    principal_id: p.principal_id.to_ascii_lowercase(),
                    principal_type: p.principal_type,
                    condition: p.condition.filter(|c| !c.trim().is_empty()),
                })
            })
            .collect()
    }

    /// A hub's shared access policies, names and rights (IotHubResource_ListKeys: the keys in
    /// the answer are not parsed).
    pub(super) async fn hub_policies(&self, hub: &HubId) -> Result<Vec<ObservedPolicy>, AzureError> {
        let api = self.hub_api_version(&hub.subscription_id).await;
        let url = self.url(&format!("{}/listkeys", hub.arm_id()), &api)?;
        let what = format!("the shared access policies of hub {}", hub.name);
        let raw = self
            .retry(|| async {
                self.call("IotHubResource_ListKeys", reqwest::Method::POST, url.clone(), None, None).await
            })
            .await?;
        let page: PolicyPage = wire::parse(&what, &raw.body)?;
        if page.next_link.as_deref().is_some_and(|l| !l.trim().is_empty()) {
            return Err(AzureError::Invalid {
                code: "UnexpectedResponse".into(),
                message: format!("{what}: more than one page"),
            });
        }
        Ok(page.value.into_iter().map(|p| ObservedPolicy { key_name: p.key_name, rights: p.rights }).collect())
    }
}

//! Desire for `IotHubCustomRole`: the role definition, with operations expanded, data actions in
//! canonical spelling and the GUID the resource derives. Pure, no I/O.

use uuid::Uuid;

use super::{ACTION_RE, ASSIGNABLE_SCOPE_RE, FieldErrors, READ_ACTION_RE, check_guid, check_max_len};
use crate::crd::IotHubCustomRoleSpec;
use crate::crd::rules::{MANAGEMENT_GROUP_SCOPE_PREFIX, MAX_ACTIONS, msg};
use crate::domain::catalog::{self, LISTKEYS_ACTION};
use crate::domain::naming::Owner;
use crate::domain::{Permission, RoleDefinition, RoleDefinitionId, RoleType, Scope};

/// The role definition a spec asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCustomRole {
    /// The definition GUID this resource derives (see `domain::naming`).
    pub guid: Uuid,
    pub subscription_id: String,
    /// The scope the definition is written at: the first assignable scope.
    pub scope: Scope,
    pub role_name: String,
    pub description: String,
    pub permission: Permission,
    /// Canonical ARM ids (parsed at the edge, so the guard judges what is sent).
    pub assignable_scopes: Vec<Scope>,
}

impl DesiredCustomRole {
    /// Where the definition lives: `{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}`.
    pub fn id(&self) -> RoleDefinitionId {
        RoleDefinitionId::new(self.scope.clone(), self.guid)
    }

    /// As a domain role definition.
    pub fn definition(&self) -> RoleDefinition {
        RoleDefinition {
            guid: self.guid,
            role_name: self.role_name.clone(),
            description: self.description.clone(),
            role_type: RoleType::CustomRole,
            permissions: vec![self.permission.clone()],
            assignable_scopes: self.assignable_scopes.iter().map(ToString::to_string).collect(),
        }
    }
}

fn grants_listkeys(actions: &[String], not_actions: &[String]) -> bool {
    actions.iter().any(|a| catalog::action_matches(a, LISTKEYS_ACTION))
        && !not_actions.iter().any(|n| catalog::action_matches(n, LISTKEYS_ACTION))
}

fn check_data_actions(errs: &mut FieldErrors, field: &str, list: &[String]) {
    if list.len() > MAX_ACTIONS {
        errs.push(format!("spec.{field}"), format!("must have at most {MAX_ACTIONS} entries"));
    }
    for (i, a) in list.iter().enumerate() {
        if catalog::canonical_data_action(a).is_some() {
            continue;
        }
        let mut m = format!("'{a}' is not allowed: {}", msg::DATA_ACTION);
        if a.eq_ignore_ascii_case(LISTKEYS_ACTION) {
            m = format!(
                "'{a}' is a control-plane action that hands out every shared access key; it is never allowed in a custom role"
            );
        } else if let Some(s) = catalog::suggest_data_action(a) {
            m.push_str(&format!("; did you mean '{s}'?"));
        }
        errs.push(format!("spec.{field}[{i}]"), m);
    }
}

/// `actions` admit control-plane reads only; `notActions` (which only take away) any action.
fn check_actions(errs: &mut FieldErrors, field: &str, list: &[String], reads_only: bool) {
    if list.len() > MAX_ACTIONS {
        errs.push(format!("spec.{field}"), format!("must have at most {MAX_ACTIONS} entries"));
    }
    for (i, a) in list.iter().enumerate() {
        if !ACTION_RE.is_match(a) {
            errs.push(format!("spec.{field}[{i}]"), format!("'{a}' is not allowed: {}", msg::ACTION));
        } else if reads_only && !READ_ACTION_RE.is_match(a) {
            errs.push(format!("spec.{field}[{i}]"), format!("'{a}' is not allowed: {}", msg::READ_ACTION));
        }
    }
}

/// The admission rules of `IotHubCustomRole`.
pub fn validate_custom_role(spec: &IotHubCustomRoleSpec) -> Result<(), FieldErrors> {
    let mut errs = FieldErrors::default();
    if spec.role_name.trim().is_empty() || spec.role_name.chars().count() > 512 {
        errs.push("spec.roleName", msg::ROLE_NAME);
    }
    check_max_len(&mut errs, "spec.description", &spec.description, 2048);
    check_guid(&mut errs, "spec.subscriptionId", &spec.subscription_id, msg::GUID);
    check_data_actions(&mut errs, "dataActions", &spec.data_actions);
    check_data_actions(&mut errs, "notDataActions", &spec.not_data_actions);
    check_actions(&mut errs, "actions", &spec.actions, true);
    check_actions(&mut errs, "notActions", &spec.not_actions, false);
    if spec.operations.len() > MAX_ACTIONS {
        errs.push("spec.operations", format!("must have at most {MAX_ACTIONS} entries"));
    }
    if spec.data_actions.is_empty() && spec.operations.is_empty() && spec.actions.is_empty() {
        errs.push("spec", msg::GRANTS_NOTHING);
    }
    if grants_listkeys(&spec.actions, &spec.not_actions) {
        errs.push("spec.actions", msg::LISTKEYS);
    }
    let scopes = spec.assignable_scopes.as_deref().unwrap_or_default();
    if scopes.len() > MAX_ACTIONS {
        errs.push("spec.assignableScopes", format!("must have at most {MAX_ACTIONS} entries"));
    }
    for (i, s) in scopes.iter().enumerate() {
        // The pattern (admission's rule) and the canonical parse (what is sent) must both agree.
        if !ASSIGNABLE_SCOPE_RE.is_match(s) || Scope::parse(s).is_err() {
            errs.push(
                format!("spec.assignableScopes[{i}]"),
                format!("'{s}' is not allowed: {}", msg::ASSIGNABLE_SCOPE),
            );
        }
    }
    let has_data = !spec.data_actions.is_empty() || !spec.operations.is_empty();
    if has_data && scopes.iter().any(|s| s.to_ascii_lowercase().starts_with(MANAGEMENT_GROUP_SCOPE_PREFIX)) {
        errs.push("spec.assignableScopes", msg::MG_ASSIGNABLE_WITH_DATA);
    }
    errs.into_result()
}

fn dedup_case_insensitive(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    items.into_iter().filter(|s| seen.insert(s.to_ascii_lowercase())).collect()
}

/// Validate and convert: operations expanded, data actions canonical, sorted and deduplicated;
/// the GUID is the one `owner` (this resource) derives.
pub fn desire_custom_role(spec: &IotHubCustomRoleSpec, owner: &Owner) -> Result<DesiredCustomRole, FieldErrors> {
    validate_custom_role(spec)?;
    let canonical = |list: &[String]| -> Vec<String> {
        let mut v: Vec<String> =
            list.iter().filter_map(|a| catalog::canonical_data_action(a).map(str::to_string)).collect();
        v.sort();
        dedup_case_insensitive(v)
    };
    let mut data_actions = canonical(&spec.data_actions);
    for op in &spec.operations {
        data_actions.extend(op.data_actions().iter().map(|a| a.to_string()));
    }
    data_actions.sort();
    let data_actions = dedup_case_insensitive(data_actions);
    let subscription_id = spec.subscription_id.to_ascii_lowercase();
    let listed = spec.assignable_scopes.as_deref().unwrap_or_default();
    let mut assignable_scopes: Vec<Scope> = Vec::new();
    for (i, s) in listed.iter().enumerate() {
        let scope = Scope::parse(s).map_err(|e| {
            FieldErrors(vec![super::FieldError::new(format!("spec.assignableScopes[{i}]"), e.to_string())])
        })?;
        if !assignable_scopes.contains(&scope) {
            assignable_scopes.push(scope);
        }
    }
    if assignable_scopes.is_empty() {
        assignable_scopes.push(Scope::Subscription(subscription_id.clone()));
    }
    let scope = assignable_scopes[0].clone();
    Ok(DesiredCustomRole {
        guid: owner.definition_name(),
        subscription_id,
        scope,
        role_name: spec.role_name.trim().to_string(),
        // The owner's tag, as on role assignments: Azure's own copy of the definition then says
        // which resource (and so which namespace) it was made for.
        description: crate::domain::naming::tagged_description(Some(&spec.description), owner),
        permission: Permission {
            actions: dedup_case_insensitive(spec.actions.iter().cloned()),
            not_actions: dedup_case_insensitive(spec.not_actions.iter().cloned()),
            data_actions,
            not_data_actions: canonical(&spec.not_data_actions),
        },
        assignable_scopes,
    })
}

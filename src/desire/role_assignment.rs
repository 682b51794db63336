//! Desire for `IotHubRoleAssignment`: which role, for whom, at which scope, under which
//! name the resource derives. Pure, no I/O.

use uuid::Uuid;

use super::{FieldErrors, GUID_RE, MANAGEMENT_GROUP_RE, check_guid, check_hub, check_max_len, desire_custom_role};
use crate::crd::rules::msg;
use crate::crd::{AssignmentScope, IotHubCustomRoleSpec, IotHubRoleAssignmentSpec, PrincipalType};
use crate::domain::ids::{RoleAssignmentId, RoleDefinitionId};
use crate::domain::naming::Owner;
use crate::domain::{Grant, HubId, RoleDefinition, Scope, roles};

/// Finds an `IotHubCustomRole` spec by name in the assignment's namespace.
pub type CustomRoleLookup<'a> = &'a dyn Fn(&str) -> Option<IotHubCustomRoleSpec>;

/// The role an assignment grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedRole {
    /// The role definition GUID.
    pub guid: Uuid,
    /// The definition, when the operator knows it without asking Azure (built-in and
    /// `customRoleRef` roles); `None` for an arbitrary `definitionId`.
    pub definition: Option<RoleDefinition>,
}

impl ResolvedRole {
    /// Display name when known, else the GUID.
    pub fn display_name(&self) -> String {
        self.definition.as_ref().map_or_else(|| self.guid.to_string(), |d| d.role_name.clone())
    }
}

/// The role assignment a spec asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredAssignment {
    pub hub: HubId,
    pub scope: Scope,
    pub role: ResolvedRole,
    /// Lower-case object id.
    pub principal_id: String,
    pub principal_type: PrincipalType,
    pub description: Option<String>,
    /// The assignment name this resource derives (see `domain::naming`).
    pub name: Uuid,
}

impl DesiredAssignment {
    /// Who gets which role where.
    pub fn grant(&self) -> Grant {
        Grant::new(self.scope.clone(), self.role.guid, &self.principal_id)
    }

    /// The full ARM id the assignment gets.
    pub fn id(&self) -> RoleAssignmentId {
        RoleAssignmentId { scope: self.scope.clone(), name: self.name }
    }

    /// The role definition id sent to Azure (subscription-qualified when the scope has one).
    pub fn role_definition_id(&self) -> RoleDefinitionId {
        self.grant().role_definition_id()
    }
}

/// Why a spec cannot be turned into a desired assignment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DesireError {
    /// The spec breaks an admission rule.
    #[error("invalid spec: {0}")]
    Invalid(FieldErrors),
    /// `role.customRoleRef` names an IotHubCustomRole that does not exist (yet).
    #[error(
        "spec.role.customRoleRef.name: no IotHubCustomRole named '{0}' in this namespace; create it or fix the name"
    )]
    CustomRoleNotFound(String),
    /// The referenced IotHubCustomRole is itself invalid.
    #[error("spec.role.customRoleRef.name: the IotHubCustomRole '{name}' is invalid: {errors}")]
    CustomRoleInvalid { name: String, errors: FieldErrors },
    /// `principal.idFrom` names a ConfigMap or key that is not there (yet).
    #[error("spec.principal.idFrom.configMapKeyRef: {0}")]
    PrincipalRefNotFound(String),
    /// `principal.idFrom` could not be read right now (not known yet); never a reason to act.
    #[error("spec.principal.idFrom.configMapKeyRef: ConfigMap {0} not read yet")]
    PrincipalRefUnknown(String),
}

/// What a `principal.idFrom` ConfigMap key holds, as the front end found it: the controller
/// reads the ConfigMap (or its cache of referenced keys), the CLI the ConfigMap documents of its
/// input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefValue {
    Value(String),
    /// The ConfigMap or the key is not there; why, in words.
    Missing(String),
    /// Not read yet.
    Unknown,
}

/// Looks up `(namespace, ConfigMap name, key)`.
pub type PrincipalLookup<'a> = &'a (dyn Fn(&str, &str, &str) -> RefValue + Send + Sync);

/// No ConfigMap is known (a front end without any): every reference is missing.
pub fn no_principal_refs(ns: &str, name: &str, _key: &str) -> RefValue {
    RefValue::Missing(format!("ConfigMap {ns}/{name} is not known here"))
}

/// The spec with `principal.idFrom` replaced by the object id it reads (`ns`: the resource's
/// namespace; a reference never leaves it). A value that is not a GUID is an invalid spec naming
/// the ConfigMap and key; a missing ConfigMap or key is `PrincipalRefNotFound`.
pub fn resolve_principal<'s>(
    spec: &'s IotHubRoleAssignmentSpec,
    ns: &str,
    lookup: PrincipalLookup<'_>,
) -> Result<std::borrow::Cow<'s, IotHubRoleAssignmentSpec>, DesireError> {
    // Borrowed when there is nothing to read: the wants of every other resource go through here.
    let Some(from) = &spec.principal.id_from else { return Ok(std::borrow::Cow::Borrowed(spec)) };
    let r = &from.config_map_key_ref;
    let value = match lookup(ns, &r.name, &r.key) {
        RefValue::Value(v) => v.trim().to_string(),
        RefValue::Missing(why) => return Err(DesireError::PrincipalRefNotFound(why)),
        RefValue::Unknown => return Err(DesireError::PrincipalRefUnknown(format!("{ns}/{}", r.name))),
    };
    if !super::GUID_RE.is_match(&value) {
        // The value itself is never repeated: status and Events are read by people who may not
        // read that ConfigMap.
        return Err(DesireError::Invalid(FieldErrors(vec![super::FieldError::new(
            "spec.principal.idFrom.configMapKeyRef",
            format!(
                "ConfigMap {ns}/{} key {} holds {} characters that are not an object id (a GUID); fix the value where it is written",
                r.name,
                r.key,
                value.chars().count()
            ),
        )])));
    }
    let mut resolved = spec.clone();
    resolved.principal.id = Some(value);
    resolved.principal.id_from = None;
    Ok(std::borrow::Cow::Owned(resolved))
}

impl DesireError {
    /// What to tell a person: the bad fields alone for an invalid spec (each names its field),
    /// else the whole message.
    pub fn detail(&self) -> String {
        match self {
            DesireError::Invalid(f) => f.to_string(),
            other => other.to_string(),
        }
    }
}

/// The admission rules of `IotHubRoleAssignment`.
pub fn validate_role_assignment(spec: &IotHubRoleAssignmentSpec) -> Result<(), FieldErrors> {
    let mut errs = FieldErrors::default();
    check_hub(&mut errs, "spec.hub", &spec.hub);
    match (&spec.principal.id, &spec.principal.id_from) {
        (Some(id), None) => check_guid(&mut errs, "spec.principal.id", id, msg::PRINCIPAL_ID),
        (None, Some(from)) => {
            let r = &from.config_map_key_ref;
            if r.name.len() > 253 || !super::CONFIG_MAP_NAME_RE.is_match(&r.name) {
                errs.push(
                    "spec.principal.idFrom.configMapKeyRef.name",
                    format!("{} (got '{}')", msg::CONFIG_MAP_NAME, r.name),
                );
            }
            if r.key.len() > 253 || !super::CONFIG_MAP_KEY_RE.is_match(&r.key) {
                errs.push(
                    "spec.principal.idFrom.configMapKeyRef.key",
                    format!("{} (got '{}')", msg::CONFIG_MAP_KEY, r.key),
                );
            }
        }
        _ => errs.push("spec.principal", msg::PRINCIPAL_ONE_OF),
    }
    let role = &spec.role;
    let set = [role.built_in.is_some(), role.custom_role_ref.is_some(), role.definition_id.is_some()];
    if set.iter().filter(|s| **s).count() != 1 {
        errs.push("spec.role", msg::ROLE_ONE_OF);
    }
    if let Some(id) = &role.definition_id {
        check_guid(&mut errs, "spec.role.definitionId", id, msg::GUID);
        if roles::PRIVILEGED_BUILTIN_ROLES.iter().any(|(g, _)| g.eq_ignore_ascii_case(id)) {
            errs.push("spec.role.definitionId", msg::PRIVILEGED_ROLE);
        }
    }
    if let Some(r) = &role.custom_role_ref
        && (r.name.is_empty() || r.name.len() > 253)
    {
        errs.push("spec.role.customRoleRef.name", "must be the name of an IotHubCustomRole (1 to 253 characters)");
    }
    match (&spec.scope, &spec.management_group_id) {
        (AssignmentScope::ManagementGroup, None) => errs.push("spec.managementGroupId", msg::MG_ID_REQUIRED),
        (AssignmentScope::ManagementGroup, Some(_)) | (_, None) => {}
        (_, Some(_)) => errs.push("spec.managementGroupId", msg::MG_ID_FORBIDDEN),
    }
    if let Some(mg) = &spec.management_group_id
        && !MANAGEMENT_GROUP_RE.is_match(mg)
    {
        errs.push("spec.managementGroupId", format!("{} (got '{mg}')", msg::MANAGEMENT_GROUP));
    }
    if let Some(d) = &spec.description {
        check_max_len(&mut errs, "spec.description", d, 1024);
    }
    errs.into_result()
}

/// Validate, resolve the role and derive the assignment `owner` (this resource) asks for.
pub fn desire_role_assignment(
    spec: &IotHubRoleAssignmentSpec,
    custom_roles: CustomRoleLookup<'_>,
    owner: &Owner,
) -> Result<DesiredAssignment, DesireError> {
    validate_role_assignment(spec).map_err(DesireError::Invalid)?;
    let hub = spec.hub.to_hub_id();
    let scope = match spec.scope {
        AssignmentScope::Hub => hub.scope(),
        AssignmentScope::ResourceGroup => Scope::ResourceGroup {
            subscription_id: hub.subscription_id.clone(),
            resource_group: hub.resource_group.clone(),
        },
        AssignmentScope::Subscription => Scope::Subscription(hub.subscription_id.clone()),
        AssignmentScope::ManagementGroup => {
            Scope::management_group(spec.management_group_id.as_deref().unwrap_or_default()).map_err(|e| {
                DesireError::Invalid(FieldErrors(vec![super::FieldError::new("spec.managementGroupId", e.to_string())]))
            })?
        }
    };
    let role = resolve_role(spec, custom_roles, owner)?;
    // A reference is resolved by the caller first (`resolve_principal`).
    let Some(principal_id) = spec.principal.id.as_ref().map(|p| p.to_ascii_lowercase()) else {
        let name = spec.principal.id_from.as_ref().map(|f| f.config_map_key_ref.name.clone()).unwrap_or_default();
        return Err(DesireError::PrincipalRefUnknown(name));
    };
    let name = owner.assignment_name(&Grant::new(scope.clone(), role.guid, &principal_id));
    Ok(DesiredAssignment {
        hub,
        scope,
        role,
        principal_id,
        principal_type: spec.principal.principal_type,
        description: spec.description.clone(),
        name,
    })
}

fn resolve_role(
    spec: &IotHubRoleAssignmentSpec,
    custom_roles: CustomRoleLookup<'_>,
    owner: &Owner,
) -> Result<ResolvedRole, DesireError> {
    if let Some(b) = spec.role.built_in {
        return Ok(ResolvedRole { guid: b.guid(), definition: Some(b.definition().clone()) });
    }
    if let Some(r) = &spec.role.custom_role_ref {
        let custom = custom_roles(&r.name).ok_or_else(|| DesireError::CustomRoleNotFound(r.name.clone()))?;
        // The IotHubCustomRole of that name in this namespace, under this operator instance.
        let role_owner = Owner::new(&owner.instance, &owner.namespace, &r.name);
        let desired = desire_custom_role(&custom, &role_owner)
            .map_err(|errors| DesireError::CustomRoleInvalid { name: r.name.clone(), errors })?;
        return Ok(ResolvedRole { guid: desired.guid, definition: Some(desired.definition()) });
    }
    let id = spec.role.definition_id.as_deref().unwrap_or_default();
    let guid = match (GUID_RE.is_match(id), Uuid::parse_str(id)) {
        (true, Ok(g)) => g,
        _ => {
            return Err(DesireError::Invalid(FieldErrors(vec![super::FieldError::new(
                "spec.role.definitionId",
                msg::GUID,
            )])));
        }
    };
    Ok(ResolvedRole { guid, definition: roles::builtin_by_guid(guid).cloned() })
}

//! What the operator's own Azure identity needs (`iothub-access-operator setup`), least
//! privilege, with Azure itself holding the limit: one [`SetupDocument`] of role definitions and
//! role assignments, ready to become ARM PUT bodies, plus the risks that remain. Pure, no I/O:
//! the caller reads the manifests and says which scopes the guardrail allows.
//!
//! - On every allowed scope, the built-in Role Based Access Control Administrator with the
//!   documented "Constrain roles and principal types" delegation condition: it may write and
//!   delete assignments of the IoT Hub data roles, of the custom roles the manifests define (by
//!   the GUID the operator gives them, `domain::naming`), of every other role a manifest names and
//!   of every `--allowed-role`, for the principal types the manifests use. Its `*/read` covers
//!   the operator's reads at those scopes.
//! - What a condition cannot limit, as narrow custom roles with derived GUIDs: writing role
//!   definitions (only where `IotHubCustomRole` definitions are written), writing hubs (only the
//!   hubs of `IotHubSharedAccess` resources), and the reads of the shared access dependents
//!   search (the DPS and Device Update instances of each searched subscription).
//!
//! Names are UUID version 5 in `domain::naming::NAMESPACE` over `identity/v1\n{instance}\n{purpose}`
//! (every part lower-cased), so running `setup` again yields the same objects.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::crd::{IotHubCustomRoleSpec, IotHubRoleAssignmentSpec, IotHubSharedAccessSpec, ReconcileMode, RoleRef};
use crate::desire::{self, DesireError, Guarded as _};
use crate::domain::ids::role_definition_guid;
use crate::domain::naming::{NAMESPACE, Owner};
use crate::domain::roles::{PRIVILEGED_BUILTIN_ROLES, builtin_by_guid};
use crate::domain::{BuiltInRole, Grant, Permission, PrincipalType, RoleDefinitionId, Scope};

/// Role Based Access Control Administrator (built-in): role assignments write and delete,
/// `*/read`, `Microsoft.Support/*`.
pub const RBAC_ADMINISTRATOR: Uuid = Uuid::from_u128(0xf58310d9_a9f6_439a_9e8d_f62e7b41a168);
pub const RBAC_ADMINISTRATOR_NAME: &str = "Role Based Access Control Administrator";

/// The condition language version of the delegation condition.
pub const CONDITION_VERSION: &str = "2.0";

/// The admin's guardrail verdict on the ids one resource touches (`Err` says why not): the same
/// check `plan` and `apply` make (`gate::Gate::check`), handed in so this stays pure.
pub type Allowed<'a> = &'a dyn Fn(&[Scope]) -> Result<(), String>;

/// One resource of the manifests, as the operator would see it.
#[derive(Clone, Debug)]
pub struct Declared {
    pub namespace: String,
    pub name: String,
    /// The `iothubaccess.io/reconcile` annotation: only `Manage` writes.
    pub mode: ReconcileMode,
    pub spec: DeclaredSpec,
}

/// The spec of one of the three kinds.
#[derive(Clone, Debug)]
pub enum DeclaredSpec {
    RoleAssignment(IotHubRoleAssignmentSpec),
    CustomRole(IotHubCustomRoleSpec),
    SharedAccess(IotHubSharedAccessSpec),
}

/// What `setup` is asked.
pub struct SetupInput<'a> {
    /// The operator identity's object id.
    pub principal_id: Uuid,
    pub principal_type: PrincipalType,
    /// `--instance-id`: the operator instance names are derived under.
    pub instance_id: &'a str,
    /// `--allowed-scope` (at least one).
    pub allowed_scopes: &'a [Scope],
    /// Subscriptions the shared access dependents search reads (`--search-subscription`).
    pub search_subscriptions: &'a [Uuid],
    /// `--allowed-role`.
    pub allowed_roles: &'a [Uuid],
    /// The manifests (`-f`); `None` plans for every kind at every allowed scope.
    pub manifests: Option<&'a [Declared]>,
    /// The guardrail's verdict.
    pub allowed: Allowed<'a>,
}

/// Everything the identity needs: `setup -o json`, and what the other formats render.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupDocument {
    pub principal_id: String,
    pub role_definitions: Vec<RoleDefinitionBody>,
    pub role_assignments: Vec<RoleAssignmentBody>,
    pub notes: Vec<Note>,
}

/// A custom role definition (the `properties` of its PUT, with its GUID as `name`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinitionBody {
    /// The definition's GUID.
    pub name: String,
    pub role_name: String,
    pub description: String,
    pub assignable_scopes: Vec<String>,
    pub permissions: Vec<Permission>,
}

impl RoleDefinitionBody {
    /// Where the definition is written: its first assignable scope.
    pub fn scope(&self) -> &str {
        self.assignable_scopes.first().map_or("/", String::as_str)
    }

    /// Its id as ARM shows it: under the first assignable scope's subscription (the tenant-level
    /// form when that scope lies in none).
    pub fn id(&self) -> String {
        let scope = Scope::parse(self.scope()).unwrap_or(Scope::Root);
        let guid = Uuid::parse_str(&self.name).unwrap_or_default();
        custom_role_definition_id(&scope, guid)
    }
}

impl SetupDocument {
    /// The display name of the role an assignment grants.
    pub fn role_name(&self, assignment: &RoleAssignmentBody) -> String {
        if let Some(d) = self.definition_of(assignment) {
            return d.role_name.clone();
        }
        match role_definition_guid(&assignment.role_definition_id) {
            Ok(RBAC_ADMINISTRATOR) => RBAC_ADMINISTRATOR_NAME.into(),
            Ok(guid) => {
                builtin_by_guid(guid).map_or_else(|| assignment.role_definition_id.clone(), |r| r.role_name.clone())
            }
            Err(_) => assignment.role_definition_id.clone(),
        }
    }

    /// The definition an assignment grants, when this document defines it.
    pub fn definition_of(&self, assignment: &RoleAssignmentBody) -> Option<&RoleDefinitionBody> {
        let guid = role_definition_guid(&assignment.role_definition_id).ok()?;
        self.role_definitions.iter().find(|d| Uuid::parse_str(&d.name).ok() == Some(guid))
    }
}

/// A role assignment (the `properties` of its PUT, with the scope and the derived `name`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentBody {
    /// The assignment's GUID (derived: running `setup` again names the same assignment, so
    /// writing it again updates it, e.g. its condition).
    pub name: String,
    pub scope: String,
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
    pub condition: Option<String>,
    pub condition_version: Option<String>,
    pub description: String,
}

/// A risk the printed permissions leave, and how to avoid it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub about: String,
    pub risk: String,
    pub avoid: String,
}

fn note(about: impl Into<String>, risk: impl Into<String>, avoid: impl Into<String>) -> Note {
    Note { about: about.into(), risk: risk.into(), avoid: avoid.into() }
}

/// The GUID `setup` derives for `purpose` under `instance`.
pub fn identity_name(instance: &str, purpose: &str) -> Uuid {
    let input = format!("identity/v1\n{}\n{}", instance.trim().to_lowercase(), purpose.trim().to_lowercase());
    Uuid::new_v5(&NAMESPACE, input.as_bytes())
}

/// One narrow custom role: what a condition cannot limit.
struct Narrow {
    purpose: &'static str,
    title: &'static str,
    what: &'static str,
    actions: &'static [&'static str],
}

/// Write (create, update, delete) the custom role definitions of `IotHubCustomRole` resources.
const DEFINITIONS: Narrow = Narrow {
    purpose: "roleDefinitions",
    title: "role definitions",
    what: "write and delete the custom role definitions of IotHubCustomRole resources",
    actions: &[
        "Microsoft.Authorization/roleDefinitions/read",
        "Microsoft.Authorization/roleDefinitions/write",
        "Microsoft.Authorization/roleDefinitions/delete",
    ],
};

/// Update the hubs of `IotHubSharedAccess` resources (`disableLocalAuth`, device and module SAS).
const HUB_WRITER: Narrow = Narrow {
    purpose: "hubWriter",
    title: "hub shared access",
    what: "update the hubs of IotHubSharedAccess resources (disableLocalAuth, disableDeviceSAS, disableModuleSAS) and follow the update's asynchronous operation",
    actions: &[
        "Microsoft.Devices/IotHubs/read",
        "Microsoft.Devices/IotHubs/write",
        "Microsoft.Devices/locations/operationresults/read",
    ],
};

/// Read what depends on hubs' shared access, in each searched subscription.
const DEPENDENTS: Narrow = Narrow {
    purpose: "dependentsSearch",
    title: "shared access dependents search",
    what: "list the subscription and read its DPS and Device Update instances and provider registrations (the SAS interlock's search), its own role assignments and their roles there (its self-check), and the hub update's asynchronous operation, which lives at the subscription",
    actions: &[
        "Microsoft.Resources/subscriptions/read",
        "Microsoft.Resources/subscriptions/providers/read",
        "Microsoft.Devices/provisioningServices/read",
        "Microsoft.DeviceUpdate/accounts/read",
        "Microsoft.DeviceUpdate/accounts/instances/read",
        "Microsoft.Authorization/roleAssignments/read",
        "Microsoft.Authorization/roleDefinitions/read",
        "Microsoft.Devices/locations/operationresults/read",
    ],
};

/// The scopes that are not covered by another one of the set, sorted by key.
fn outermost(scopes: impl IntoIterator<Item = Scope>) -> Vec<Scope> {
    let mut all: Vec<Scope> = scopes.into_iter().collect();
    all.sort_by_key(Scope::key);
    all.dedup();
    let kept: Vec<Scope> = all.iter().filter(|s| !all.iter().any(|o| o != *s && o.covers(s))).cloned().collect();
    kept
}

/// Where a custom role assigned at `scope` is made assignable: the scope itself, or for a
/// resource (a hub) its resource group (the narrowest assignable scope Azure documents).
fn assignable_form(scope: &Scope) -> Scope {
    match scope {
        Scope::Hub(h) => Scope::ResourceGroup {
            subscription_id: h.subscription_id.clone(),
            resource_group: h.resource_group.clone(),
        },
        Scope::Resource { subscription_id, resource_group, .. } => {
            Scope::ResourceGroup { subscription_id: subscription_id.clone(), resource_group: resource_group.clone() }
        }
        other => other.clone(),
    }
}

fn list(scopes: &[Scope]) -> String {
    scopes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// What the manifests (or, without them, every kind at every allowed scope) ask of the identity.
#[derive(Default)]
struct Needs {
    /// Role definition GUIDs the delegation condition lists.
    roles: BTreeSet<Uuid>,
    principal_types: BTreeSet<PrincipalType>,
    /// Where custom role definitions are written.
    definitions: Vec<Scope>,
    /// Hubs (or, without manifests, scopes) whose settings are written.
    hub_writes: Vec<Scope>,
    /// Subscriptions the dependents search reads, and whether the search runs at all.
    search: BTreeSet<String>,
    searching: bool,
    notes: Vec<Note>,
}

impl Needs {
    fn without_manifests(input: &SetupInput<'_>) -> Needs {
        let mut n = Needs {
            principal_types: [PrincipalType::User, PrincipalType::Group, PrincipalType::ServicePrincipal].into(),
            definitions: input.allowed_scopes.to_vec(),
            hub_writes: input.allowed_scopes.to_vec(),
            searching: true,
            ..Needs::default()
        };
        n.search.extend(input.allowed_scopes.iter().filter_map(|s| s.subscription_id()).map(str::to_ascii_lowercase));
        n.notes.push(note(
            "no -f: permissions for every kind at every allowed scope",
            "the role definitions writer and the hub writer hold every allowed scope, and the condition lists no custom role of yours (granting one fails with 403 until it does)",
            "run setup with -f and your manifests: the hub writer then holds only the hubs of IotHubSharedAccess resources, the definitions writer only where IotHubCustomRole definitions live, and the condition names your custom roles",
        ));
        n
    }

    fn of_manifests(input: &SetupInput<'_>, manifests: &[Declared]) -> Needs {
        let mut n = Needs::default();
        let owner = |d: &Declared| Owner::new(input.instance_id, &d.namespace, &d.name);
        let refused = |d: &Declared, kind: &str, why: String| {
            let left = match kind {
                "IotHubCustomRole" => {
                    "no definition write is printed for it (its GUID stays in the condition, for the role assignments that name it)"
                }
                _ => "nothing is printed for it",
            };
            note(
                format!("{kind} {}/{}", d.namespace, d.name),
                format!("the operator refuses it (ScopeNotAllowed: {why}); {left}"),
                "allow its scopes with --allowed-scope (here and on the operator), or move it inside them",
            )
        };
        for d in manifests {
            match &d.spec {
                DeclaredSpec::CustomRole(spec) => {
                    let Ok(role) = desire::desire_custom_role(spec, &owner(d)) else { continue };
                    // Every custom role the manifests define may be granted, whoever writes it.
                    n.roles.insert(role.guid);
                    if d.mode != ReconcileMode::Manage {
                        continue;
                    }
                    match (input.allowed)(&role.guarded_scopes()) {
                        Ok(()) => n.definitions.extend(role.assignable_scopes.iter().cloned()),
                        Err(why) => n.notes.push(refused(d, "IotHubCustomRole", why)),
                    }
                }
                DeclaredSpec::RoleAssignment(spec) => {
                    if d.mode != ReconcileMode::Manage {
                        continue;
                    }
                    let lookup = |name: &str| custom_role_in(manifests, &d.namespace, name);
                    // A principal read from a ConfigMap: only its type matters here.
                    let placeholder;
                    let spec = if spec.principal.id_from.is_some() {
                        let mut s = spec.clone();
                        s.principal.id = Some(Uuid::nil().to_string());
                        s.principal.id_from = None;
                        placeholder = s;
                        &placeholder
                    } else {
                        spec
                    };
                    let wanted = match desire::desire_role_assignment(spec, &lookup, &owner(d)) {
                        Err(DesireError::CustomRoleNotFound(name)) => {
                            // Defined in the cluster, not here: the same assignment, its role named
                            // by the GUID that custom role derives (`domain::naming`).
                            let guid = Owner::new(input.instance_id, &d.namespace, &name).definition_name();
                            n.notes.push(note(
                                format!("IotHubRoleAssignment {}/{}", d.namespace, d.name),
                                format!("its custom role '{name}' is not in these manifests: the condition lists it by the GUID the operator gives it ({guid}), and no definition write is printed for it"),
                                "pass the IotHubCustomRole with -f as well",
                            ));
                            let role = RoleRef { definition_id: Some(guid.to_string()), ..RoleRef::default() };
                            let by_guid = IotHubRoleAssignmentSpec { role, ..spec.clone() };
                            desire::desire_role_assignment(&by_guid, &lookup, &owner(d))
                        }
                        other => other,
                    };
                    let Ok(wanted) = wanted else { continue };
                    // Azure will let the operator grant whatever the condition lists: a role a
                    // manifest names by `definitionId` enters it only when it is known here and
                    // grants nothing beyond IoT Hub data access (the operator's own rule), or when
                    // the admin allowed it with --allowed-role. Never because a manifest says so.
                    let derived = manifests.iter().any(|c| {
                        matches!(c.spec, DeclaredSpec::CustomRole(_)) && owner(c).definition_name() == wanted.role.guid
                    }) || spec.role.custom_role_ref.is_some();
                    let judged = match &wanted.role.definition {
                        _ if derived || input.allowed_roles.contains(&wanted.role.guid) => Ok(()),
                        Some(def) => def.grantable(),
                        None => Err(format!(
                            "role {} is not known offline (a custom role defined elsewhere)",
                            wanted.role.guid
                        )),
                    };
                    if let Err(why) = judged {
                        n.notes.push(note(
                            format!("IotHubRoleAssignment {}/{}", d.namespace, d.name),
                            format!("its role is left out of the condition: {why}; Azure will refuse to grant it"),
                            format!(
                                "check what role {} grants; if it is only IoT Hub data access (or you accept more), pass --allowed-role {} here and to the operator",
                                wanted.role.guid, wanted.role.guid
                            ),
                        ));
                        continue;
                    }
                    match (input.allowed)(&wanted.guarded_scopes()) {
                        Ok(()) => {
                            n.roles.insert(wanted.role.guid);
                            n.principal_types.insert(wanted.principal_type);
                        }
                        Err(why) => n.notes.push(refused(d, "IotHubRoleAssignment", why)),
                    }
                }
                DeclaredSpec::SharedAccess(spec) => {
                    let Ok(wanted) = desire::desire_shared_access(spec) else { continue };
                    if d.mode == ReconcileMode::Skip {
                        continue;
                    }
                    if let Err(why) = (input.allowed)(&wanted.guarded_scopes()) {
                        n.notes.push(refused(d, "IotHubSharedAccess", why));
                        continue;
                    }
                    // Observe mode plans (and so searches) without writing the hub.
                    n.searching = true;
                    n.search.insert(wanted.hub.subscription_id.to_ascii_lowercase());
                    if d.mode == ReconcileMode::Manage {
                        n.hub_writes.push(wanted.hub.scope());
                    }
                }
            }
        }
        n
    }
}

/// The custom role `name` of `namespace` among the manifests.
fn custom_role_in(manifests: &[Declared], namespace: &str, name: &str) -> Option<IotHubCustomRoleSpec> {
    manifests.iter().find_map(|d| match &d.spec {
        DeclaredSpec::CustomRole(c) if d.namespace == namespace && d.name == name => Some(c.clone()),
        _ => None,
    })
}

/// The role definition id a custom role is assigned by at `scope`: subscription-qualified when
/// the scope lies in a subscription (as ARM shows it, and as the operator sends its own grants),
/// else the tenant-level form.
fn custom_role_definition_id(scope: &Scope, guid: Uuid) -> String {
    Grant::new(scope.clone(), guid, "").role_definition_id().to_string()
}

/// Compute everything the identity needs.
pub fn setup_document(input: &SetupInput<'_>) -> Result<SetupDocument, String> {
    if input.allowed_scopes.is_empty() {
        return Err("at least one --allowed-scope is needed: the permissions are granted on the allowed scopes".into());
    }
    let mut needs = match input.manifests {
        None => Needs::without_manifests(input),
        Some(m) => Needs::of_manifests(input, m),
    };
    needs.roles.extend(BuiltInRole::ALL.iter().filter(|r| **r != BuiltInRole::Reader).map(|r| r.guid()));
    needs.roles.extend(input.allowed_roles.iter().copied());
    needs.search.extend(input.search_subscriptions.iter().map(|s| s.to_string()));

    let instance = input.instance_id.trim();
    let principal_id = input.principal_id.to_string();
    let principal_type = input.principal_type.as_str().to_string();
    let allowed = outermost(input.allowed_scopes.iter().cloned());
    let mut doc = SetupDocument {
        principal_id: principal_id.clone(),
        role_definitions: vec![],
        role_assignments: vec![],
        notes: vec![],
    };
    let assignment = |scope: &Scope, role: Uuid, role_definition_id: String, condition: Option<String>, what: &str| {
        RoleAssignmentBody {
            name: identity_name(instance, &format!("roleAssignment\n{}\n{role}\n{principal_id}", scope.key()))
                .to_string(),
            scope: scope.to_string(),
            role_definition_id,
            principal_id: principal_id.clone(),
            principal_type: principal_type.clone(),
            condition_version: condition.as_ref().map(|_| CONDITION_VERSION.to_string()),
            condition,
            description: format!("iothub-access-operator {instance}: {what}"),
        }
    };

    // 1. Grant and revoke the listed roles, for the listed principal types, on the allowed scopes;
    // with no role assignment to write, reads only.
    if needs.principal_types.is_empty() {
        let reader = BuiltInRole::Reader.guid();
        let id = RoleDefinitionId::new(Scope::Root, reader).to_string();
        for scope in &allowed {
            doc.role_assignments.push(assignment(scope, reader, id.clone(), None, "read what the operator observes"));
        }
    } else {
        let roles: Vec<String> = needs.roles.iter().map(Uuid::to_string).collect();
        let role_refs: Vec<&str> = roles.iter().map(String::as_str).collect();
        let mut types: Vec<&str> = needs.principal_types.iter().map(|t| t.as_str()).collect();
        types.sort_unstable();
        let condition = iothub_access_abac::constrain_roles_and_principal_types(&role_refs, &types);
        let rbac_admin = RoleDefinitionId::new(Scope::Root, RBAC_ADMINISTRATOR).to_string();
        for scope in &allowed {
            doc.role_assignments.push(assignment(
                scope,
                RBAC_ADMINISTRATOR,
                rbac_admin.clone(),
                Some(condition.clone()),
                "grant and revoke IoT Hub data roles and the listed custom roles (delegation condition)",
            ));
        }
    }

    // 2. What a condition cannot limit: narrow custom roles where they are needed.
    let search: Vec<Scope> =
        if needs.searching { needs.search.iter().map(|s| Scope::Subscription(s.clone())).collect() } else { vec![] };
    for (narrow, scopes) in
        [(&DEFINITIONS, &needs.definitions), (&HUB_WRITER, &needs.hub_writes), (&DEPENDENTS, &search)]
    {
        let scopes = outermost(scopes.iter().cloned());
        if scopes.is_empty() {
            continue;
        }
        let guid = identity_name(instance, narrow.purpose);
        let assignable = outermost(scopes.iter().map(assignable_form));
        doc.role_definitions.push(RoleDefinitionBody {
            name: guid.to_string(),
            role_name: format!("IoT Hub access operator ({instance}): {}", narrow.title),
            description: format!(
                "Lets iothub-access-operator instance {instance} {}. Printed by `iothub-access-operator setup`.",
                narrow.what
            ),
            assignable_scopes: assignable.iter().map(ToString::to_string).collect(),
            permissions: vec![Permission {
                actions: narrow.actions.iter().map(ToString::to_string).collect(),
                ..Permission::default()
            }],
        });
        for scope in &scopes {
            let id = custom_role_definition_id(scope, guid);
            doc.role_assignments.push(assignment(scope, guid, id, None, narrow.title));
        }
    }

    doc.notes = notes(input, &needs, &allowed, &search);
    Ok(doc)
}

/// The risks the printed permissions leave, in a fixed order.
fn notes(input: &SetupInput<'_>, needs: &Needs, allowed: &[Scope], search: &[Scope]) -> Vec<Note> {
    let mut out = Vec::new();
    if needs.principal_types.is_empty() {
        out.push(note(
            format!("Reader on {}", list(allowed)),
            "the manifests hold no IotHubRoleAssignment to manage, so the operator writes no role assignment: Reader (what it observes there) instead of Role Based Access Control Administrator; a role assignment the manifests gain later is refused by Azure (403)",
            "re-run setup once the manifests hold role assignments, and apply what it prints",
        ));
    } else {
        out.push(note(
            format!("{RBAC_ADMINISTRATOR_NAME} on {}", list(allowed)),
            "it may grant and revoke the roles its condition lists to any principal of the listed types inside these scopes (what the operator is for: the guardrail and the namespace annotation narrow it further); it also brings */read and Microsoft.Support/*",
            "allow the narrowest scopes that hold your hubs (a resource group, or the hubs themselves)",
        ));
        out.push(note(
            "reads on the allowed scopes",
            "the operator's reads there (role assignments, role definitions, hubs) come with Role Based Access Control Administrator (*/read): no Reader assignment is printed; it reads everything else there too, never keys (listkeys is an action, not a read)",
            "nothing to do; keep the allowed scopes narrow",
        ));
        out.push(note(
            "the delegation condition",
            "it names the custom roles of these manifests by GUID: a new IotHubCustomRole (or a new --allowed-role, or a role a new manifest names) is refused by Azure (403) until the condition lists it, and the operator cannot change its own assignment",
            "re-run setup with the new manifests and apply the changed condition yourself (an admin), for every new custom role",
        ));
    }
    if allowed.contains(&Scope::Root) {
        out.push(note(
            "--allowed-scope /",
            "the operator may grant the listed roles anywhere in the tenant; and Azure refuses a custom role assignable at the root, so the narrow roles' definitions printed for / fail",
            "allow management groups, subscriptions or resource groups instead",
        ));
    }
    for role in input.allowed_roles {
        let privileged = PRIVILEGED_BUILTIN_ROLES.iter().find(|(g, _)| g.eq_ignore_ascii_case(&role.to_string()));
        let risk = match privileged {
            Some((_, name)) => format!(
                "--allowed-role {role} is {name}: the condition lets the operator grant it, and whoever creates role assignments in an allowed namespace can ask for it"
            ),
            None => format!(
                "--allowed-role {role}: the condition lets the operator grant it even if it holds more than IoT Hub data access"
            ),
        };
        out.push(note(
            format!("--allowed-role {role}"),
            risk,
            "allow only roles that hold nothing beyond IoT Hub data access",
        ));
    }
    if !needs.definitions.is_empty() {
        out.push(note(
            format!("{} ({})", DEFINITIONS.title, list(&outermost(needs.definitions.iter().cloned()))),
            "a role-definition write can widen one of the operator's own custom roles (the operator revokes grants of a role widened beyond IoT Hub data actions, see README), and the condition lets the operator grant every custom role it lists",
            "do not manage IotHubCustomRole, or use observe mode",
        ));
    }
    if !needs.hub_writes.is_empty() {
        out.push(note(
            format!("{} ({})", HUB_WRITER.title, list(&outermost(needs.hub_writes.iter().cloned()))),
            "hub write can add a shared access policy (a key) or change any hub property",
            "manage shared access in observe mode (annotation iothubaccess.io/reconcile: observe) or not at all",
        ));
    }
    if !search.is_empty() {
        let risk = if input.search_subscriptions.is_empty() {
            "no --search-subscription: only the hubs' own subscriptions are searched; a DPS or Device Update account elsewhere is not seen (a Deny can then break it)"
        } else {
            "a DPS or Device Update account in a subscription not listed here is not seen (a Deny can then break it); the hubs' own subscriptions are always searched"
        };
        out.push(note(
            format!("{} ({})", DEPENDENTS.title, list(search)),
            risk,
            "list every subscription that may hold a DPS or Device Update account linked to your hubs with --search-subscription",
        ));
    }
    out.extend(needs.notes.iter().cloned());
    out
}

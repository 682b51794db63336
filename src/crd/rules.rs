//! The validation rules shared by admission (CEL `x-kubernetes-validations` in the generated
//! CRDs) and the Rust `desire` step. The patterns and allowed values live here once; the CEL
//! text is generated from them, so the API server and `iothub-access-operator validate` accept
//! and refuse the same manifests. Pure, no I/O.

use kube::core::Rule;

use crate::domain::catalog::{ALLOWED_DATA_ACTION_PATTERNS, LISTKEYS_ACTION};

/// A GUID in its canonical 8-4-4-4-12 form (any case).
pub const GUID: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// An IoT hub name: 3 to 50 letters, digits and hyphens, starting and ending with a letter or
/// digit, not digits only (the ARM spec's pattern, written without look-ahead for RE2).
pub const HUB_NAME: &str = "^[a-zA-Z0-9][a-zA-Z0-9-]{1,48}[a-zA-Z0-9]$";
/// Digits only (refused for hub names).
pub const DIGITS_ONLY: &str = "^[0-9]+$";
/// A resource group name: 1 to 90 of letters, digits, `-`, `_`, `.`, `(`, `)`; not ending in `.`.
pub const RESOURCE_GROUP: &str = "^[-A-Za-z0-9_.()]{0,89}[-A-Za-z0-9_()]$";
/// A management group id: 1 to 90 of letters, digits, `-`, `_`, `.`, `(`, `)`; not ending in `.`
/// (Azure's rule; it also keeps `.` and `..`, dot segments an HTTP stack resolves, out of ids).
pub const MANAGEMENT_GROUP: &str = "^[-A-Za-z0-9_.()]{0,89}[-A-Za-z0-9_()]$";
/// A control-plane action pattern (`Microsoft.Devices/IotHubs/read`, `*/read`).
pub const ACTION: &str = "^[A-Za-z0-9._*/-]{1,256}$";
/// A control-plane *read* action pattern: the only control-plane actions a role made or granted
/// here may hold (whatever `*` stands for, the action still ends in `/read`).
pub const READ_ACTION: &str = "^[A-Za-z0-9._*/-]{0,251}/[rR][eE][aA][dD]$";
/// An assignable scope: a subscription, resource group, resource or management group id, in
/// canonical ARM form: each segment spelled with letters, digits, `-`, `_`, `.`, `(`, `)` and
/// never ending in `.` (so no dot segment, separator other than `/`, percent-encoding or empty
/// segment can make the path that is sent differ from the id that was checked).
pub const ASSIGNABLE_SCOPE: &str = "(?i)^(/subscriptions/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(/resourcegroups/[-a-z0-9_.()]{0,89}[-a-z0-9_()](/providers/[a-z0-9][-a-z0-9_.]{0,126}[a-z0-9]/[a-z0-9][-a-z0-9_.]{0,126}[a-z0-9]/[-a-z0-9_.()]{0,259}[-a-z0-9_()])?)?|/providers/microsoft\\.management/managementgroups/[-a-z0-9_.()]{0,89}[-a-z0-9_()])$";
/// The prefix of management-group scopes, lower-case.
pub const MANAGEMENT_GROUP_SCOPE_PREFIX: &str = "/providers/microsoft.management/managementgroups/";

/// A ConfigMap name: a DNS subdomain (RFC 1123), what the API server requires of object names.
pub const CONFIG_MAP_NAME: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A ConfigMap key: letters, digits, `-`, `_`, `.` (the API server's rule for data keys).
pub const CONFIG_MAP_KEY: &str = "^[-._a-zA-Z0-9]+$";

/// Most entries a permission list may hold (bounds CEL cost in the API server).
pub const MAX_ACTIONS: usize = 64;

/// User-facing messages, shared by CEL and Rust.
pub mod msg {
    pub const GUID: &str = "must be a GUID such as 00000000-0000-0000-0000-000000000000";
    pub const PRINCIPAL_ID: &str = "must be the object id (a GUID) of the user, group or service principal";
    pub const HUB_NAME: &str = "must be an IoT hub name: 3 to 50 letters, digits or hyphens, starting and ending with a letter or digit, not only digits";
    pub const RESOURCE_GROUP: &str =
        "must be a resource group name: 1 to 90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'";
    pub const MANAGEMENT_GROUP: &str =
        "must be a management group id: 1 to 90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'";
    pub const ROLE_ONE_OF: &str = "set exactly one of builtIn, customRoleRef or definitionId";
    pub const PRINCIPAL_ONE_OF: &str = "set exactly one of id and idFrom";
    pub const CONFIG_MAP_NAME: &str = "must be the name of a ConfigMap in this namespace: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters";
    pub const CONFIG_MAP_KEY: &str =
        "must be a ConfigMap key: letters, digits, '-', '_' or '.', at most 253 characters";
    pub const MG_ID_REQUIRED: &str = "managementGroupId is required when scope is ManagementGroup";
    pub const MG_ID_FORBIDDEN: &str = "managementGroupId is only allowed when scope is ManagementGroup";
    pub const DATA_ACTION: &str = "must be a documented IoT Hub data action (e.g. Microsoft.Devices/IotHubs/devices/read) or one of their wildcards (e.g. Microsoft.Devices/IotHubs/devices/*, Microsoft.Devices/IotHubs/*/read)";
    pub const ACTION: &str =
        "must be an Azure action such as Microsoft.Devices/IotHubs/read (letters, digits, '.', '_', '-', '/', '*')";
    pub const READ_ACTION: &str = "must be a control-plane read action ending in /read (e.g. Microsoft.Devices/IotHubs/read): a role made here grants IoT Hub data access; control-plane writes and actions (Microsoft.Devices/IotHubs/write can add a shared access policy, listkeys hands out the keys, Microsoft.Authorization/* grants roles) are refused";
    pub const PRIVILEGED_ROLE: &str = "names a privileged built-in role (Owner, Contributor, User Access Administrator or Role Based Access Control Administrator): this operator grants IoT Hub access only; use builtIn or customRoleRef, or a role with IoT Hub data actions";
    pub const LISTKEYS: &str = "must not grant Microsoft.Devices/iotHubs/listkeys/action: it hands out every shared access key of the hub; remove it (or the wildcard that covers it), or add it to notActions";
    pub const ASSIGNABLE_SCOPE: &str = "must be a subscription, resource group, resource or management group id in canonical form, e.g. /subscriptions/{id}/resourceGroups/{name} (segments of letters, digits, '-', '_', '.', '(' or ')', none ending in '.': no '..', '%', '\\' or empty segment)";
    pub const MG_ASSIGNABLE_WITH_DATA: &str = "a role with data actions (dataActions or operations) cannot have a management group in assignableScopes: Azure refuses it; list subscriptions or resource groups instead";
    pub const GRANTS_NOTHING: &str = "the role grants nothing: set dataActions, operations or actions";
    pub const ROLE_NAME: &str = "must be 1 to 512 characters and not blank";
}

fn cel_list(items: impl IntoIterator<Item = String>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| format!("'{}'", s.replace('\'', "\\'"))).collect();
    format!("[{}]", quoted.join(", "))
}

fn cel_regex(pattern: &str) -> String {
    format!("'{}'", pattern.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `self` (a string) matches `pattern`.
pub fn string_matches(pattern: &str, message: &str) -> Rule {
    Rule::new(format!("self.matches({})", cel_regex(pattern))).message(message)
}

/// Not one of the privileged built-in role GUIDs (compared case-insensitively).
pub fn not_privileged_role() -> Rule {
    let guids = crate::domain::roles::PRIVILEGED_BUILTIN_ROLES.iter().map(|(g, _)| g.to_string());
    Rule::new(format!("!(self.lowerAscii() in {})", cel_list(guids))).message(msg::PRIVILEGED_ROLE)
}

/// Hub name: pattern and not digits only.
pub fn hub_name() -> Rule {
    Rule::new(format!("self.matches({}) && !self.matches({})", cel_regex(HUB_NAME), cel_regex(DIGITS_ONLY)))
        .message(msg::HUB_NAME)
}

/// Put `rule` on the items of an array schema, so the API server names the offending entry
/// (`spec.dataActions[2]`) as the Rust validation does.
fn add_item_rule(schema: &mut schemars::Schema, rule: Rule) {
    let Some(items) = schema.get_mut("items").and_then(|i| i.as_object_mut()) else {
        return;
    };
    let Ok(rule) = serde_json::to_value(rule) else {
        return;
    };
    let rules = items.entry("x-kubernetes-validations").or_insert_with(|| serde_json::Value::Array(vec![]));
    if let Some(list) = rules.as_array_mut() {
        list.push(rule);
    }
}

/// Schema transform: each entry of a data-action list is an allowed IoT Hub data action pattern.
pub fn data_action_items(schema: &mut schemars::Schema) {
    let allowed = cel_list(ALLOWED_DATA_ACTION_PATTERNS.iter().map(|p| p.to_ascii_lowercase()));
    add_item_rule(schema, Rule::new(format!("self.lowerAscii() in {allowed}")).message(msg::DATA_ACTION));
}

/// Schema transform: each entry of a control-plane action list has the shape of an action.
pub fn action_items(schema: &mut schemars::Schema) {
    add_item_rule(schema, Rule::new(format!("self.matches({})", cel_regex(ACTION))).message(msg::ACTION));
}

/// Schema transform: each item is a control-plane read action.
pub fn read_action_items(schema: &mut schemars::Schema) {
    add_item_rule(schema, Rule::new(format!("self.matches({})", cel_regex(READ_ACTION))).message(msg::READ_ACTION));
}

/// Schema transform: each assignable scope has the shape of a scope.
pub fn assignable_scope_items(schema: &mut schemars::Schema) {
    add_item_rule(
        schema,
        Rule::new(format!("self.matches({})", cel_regex(ASSIGNABLE_SCOPE))).message(msg::ASSIGNABLE_SCOPE),
    );
}

/// CEL for "pattern variable `v` matches the listkeys action" (Azure wildcard semantics).
fn cel_pattern_matches_listkeys(v: &str) -> String {
    format!(
        "'{}'.matches('^' + {v}.lowerAscii().replace('.', '\\\\.').replace('*', '.*') + '$')",
        LISTKEYS_ACTION.to_ascii_lowercase()
    )
}

/// Spec-level: actions minus notActions must not grant listkeys.
pub fn no_listkeys() -> Rule {
    Rule::new(format!(
        "!has(self.actions) || !self.actions.exists(a, {}) || (has(self.notActions) && self.notActions.exists(n, {}))",
        cel_pattern_matches_listkeys("a"),
        cel_pattern_matches_listkeys("n"),
    ))
    .message(msg::LISTKEYS)
    .field_path(".actions")
}

/// Spec-level: no management-group assignable scope when the role has data actions.
pub fn no_management_group_scope_with_data_actions() -> Rule {
    Rule::new(format!(
        "!((has(self.dataActions) && size(self.dataActions) > 0) || (has(self.operations) && size(self.operations) > 0)) || !has(self.assignableScopes) || !self.assignableScopes.exists(s, s.lowerAscii().startsWith('{MANAGEMENT_GROUP_SCOPE_PREFIX}'))"
    ))
    .message(msg::MG_ASSIGNABLE_WITH_DATA)
    .field_path(".assignableScopes")
}

/// Spec-level: the custom role grants something.
pub fn grants_something() -> Rule {
    Rule::new(
        "(has(self.dataActions) && size(self.dataActions) > 0) || (has(self.operations) && size(self.operations) > 0) || (has(self.actions) && size(self.actions) > 0)",
    )
    .message(msg::GRANTS_NOTHING)
}

/// Role reference: exactly one of the three forms.
pub fn role_exactly_one() -> Rule {
    Rule::new("(has(self.builtIn) ? 1 : 0) + (has(self.customRoleRef) ? 1 : 0) + (has(self.definitionId) ? 1 : 0) == 1")
        .message(msg::ROLE_ONE_OF)
}

/// `principal`: exactly one of `id` and `idFrom`.
pub fn principal_exactly_one() -> Rule {
    Rule::new("has(self.id) != has(self.idFrom)").message(msg::PRINCIPAL_ONE_OF)
}

/// Spec-level: managementGroupId present exactly when scope is ManagementGroup.
pub fn management_group_id_required() -> Rule {
    Rule::new("!(has(self.scope) && self.scope == 'ManagementGroup') || has(self.managementGroupId)")
        .message(msg::MG_ID_REQUIRED)
        .field_path(".managementGroupId")
}

/// Spec-level: managementGroupId only with scope ManagementGroup.
pub fn management_group_id_forbidden() -> Rule {
    Rule::new("(has(self.scope) && self.scope == 'ManagementGroup') || !has(self.managementGroupId)")
        .message(msg::MG_ID_FORBIDDEN)
        .field_path(".managementGroupId")
}

/// Role names: non-blank.
pub fn role_name() -> Rule {
    Rule::new("self.trim().size() > 0 && self.size() <= 512").message(msg::ROLE_NAME)
}

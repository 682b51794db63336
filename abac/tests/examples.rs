//! Microsoft's documented delegation conditions, parsed and evaluated; parser error cases; the
//! `constrain_roles_and_principal_types` builder.
//!
//! Every condition below is copied from "Examples to delegate Azure role assignment management with
//! conditions", <https://learn.microsoft.com/en-us/azure/role-based-access-control/delegate-role-assignments-examples>
//! (source: MicrosoftDocs/azure-docs, articles/role-based-access-control/delegate-role-assignments-examples.md,
//! ms.date 04/15/2024), unless another URL is given. The multi-line blocks keep the page's
//! one-space indentation and the trailing space after `OR`.

use iothub_access_abac::{
    Attributes, ErrorKind, MAX_CONDITION_LEN, RoleAssignmentOperation, Source, constrain_roles_and_principal_types,
    known_attribute, parse,
};

const EXAMPLES_URL: &str =
    "https://learn.microsoft.com/en-us/azure/role-based-access-control/delegate-role-assignments-examples";

/// Example: Constrain roles — condition editor code block, verbatim.
const CONSTRAIN_ROLES: &str = r#"(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR 
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR 
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912}
 )
)"#;

/// Example: Constrain roles and principal types — condition editor code block, verbatim.
const CONSTRAIN_ROLES_AND_PRINCIPAL_TYPES: &str = r#"(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR 
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912}
  AND
  @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'User', 'Group'}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR 
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912}
  AND
  @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'User', 'Group'}
 )
)"#;

/// Example: Constrain roles and specific groups — condition editor code block, verbatim.
const CONSTRAIN_ROLES_AND_SPECIFIC_GROUPS: &str = r#"(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR 
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912}
  AND
  @Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {28c35fea-2099-4cf5-8ad9-473547bc9423, 86951b8b-723a-407b-a74a-1bca3f0c95d0}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR 
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912}
  AND
  @Resource[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {28c35fea-2099-4cf5-8ad9-473547bc9423, 86951b8b-723a-407b-a74a-1bca3f0c95d0}
 )
)"#;

/// Example: Constrain virtual machine management — condition editor code block, verbatim.
const CONSTRAIN_VIRTUAL_MACHINE_MANAGEMENT: &str = r#"(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR 
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {1c0163c0-47e6-4577-8991-ea5c82e286e4, fb879df8-f326-4884-b1cf-06f3ad86be52}
  AND
  @Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {ea585310-c95c-4a68-af22-49af4363bbb1}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR 
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {1c0163c0-47e6-4577-8991-ea5c82e286e4, fb879df8-f326-4884-b1cf-06f3ad86be52}
  AND
  @Resource[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {ea585310-c95c-4a68-af22-49af4363bbb1}
 )
)"#;

/// Example: Constrain AKS cluster management — condition editor code block, verbatim.
const CONSTRAIN_AKS_CLUSTER_MANAGEMENT: &str = r#"(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR 
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {3498e952-d568-435e-9b2c-8d77e338d7f7, b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b, 7f6c6a51-bcf8-42ba-9220-52d62157d7db, a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb}
  AND
  @Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {ea585310-c95c-4a68-af22-49af4363bbb1}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR 
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {3498e952-d568-435e-9b2c-8d77e338d7f7, b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b, 7f6c6a51-bcf8-42ba-9220-52d62157d7db, a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb}
  AND
  @Resource[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {ea585310-c95c-4a68-af22-49af4363bbb1}
 )
)"#;

/// Example: Constrain ACR management — condition editor code block, verbatim.
const CONSTRAIN_ACR_MANAGEMENT: &str = r#"(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR 
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {7f951dda-4ed3-4680-a7ca-43fe172d538d}
  AND
  @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR 
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {7f951dda-4ed3-4680-a7ca-43fe172d538d}
  AND
  @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}
 )
)"#;

/// Example: Constrain add role assignments — condition editor code block, verbatim.
const CONSTRAIN_ADD_ROLE_ASSIGNMENTS: &str = r#"(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR 
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912}
 )
)"#;

/// Example: Allow most roles, but don't allow others to assign roles — condition editor code block, verbatim.
const ALLOW_MOST_ROLES: &str = r#"(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR 
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, f58310d9-a9f6-439a-9e8d-f62e7b41a168, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR 
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, f58310d9-a9f6-439a-9e8d-f62e7b41a168, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9}
 )
)"#;

/// "Constrain roles" as the page's Azure PowerShell `$condition` one-liner, verbatim.
const CONSTRAIN_ROLES_ONE_LINE: &str = "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912}))";

/// "Allow most roles, but don't allow others to assign roles" as the page's PowerShell one-liner.
const ALLOW_MOST_ROLES_ONE_LINE: &str = "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, f58310d9-a9f6-439a-9e8d-f62e7b41a168, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, f58310d9-a9f6-439a-9e8d-f62e7b41a168, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9}))";

/// The "Constrain roles and principal types" template with users only, from "Delegate Azure access
/// management to others",
/// <https://learn.microsoft.com/en-us/azure/role-based-access-control/delegate-role-assignments-overview>
/// (Azure PowerShell / Azure CLI / Bicep / REST tabs), verbatim.
const OVERVIEW_USERS_ONLY: &str = "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'User'})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'User'}))";

// Role definition GUIDs ("Azure built-in roles", https://learn.microsoft.com/en-us/azure/role-based-access-control/built-in-roles).
const BACKUP_CONTRIBUTOR: &str = "5e467623-bb1f-42f4-a55d-6e525e11384b";
const BACKUP_READER: &str = "a795c7a0-d4a2-40c1-ae25-d81f01202912";
const VM_ADMIN_LOGIN: &str = "1c0163c0-47e6-4577-8991-ea5c82e286e4";
const VM_USER_LOGIN: &str = "fb879df8-f326-4884-b1cf-06f3ad86be52";
const AKS_RBAC_ROLES: [&str; 4] = [
    "3498e952-d568-435e-9b2c-8d77e338d7f7",
    "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
    "7f6c6a51-bcf8-42ba-9220-52d62157d7db",
    "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb",
];
const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const RBAC_ADMINISTRATOR: &str = "f58310d9-a9f6-439a-9e8d-f62e7b41a168";
const USER_ACCESS_ADMINISTRATOR: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";

// Principals named on the examples page.
const MARKETING: &str = "28c35fea-2099-4cf5-8ad9-473547bc9423";
const SALES: &str = "86951b8b-723a-407b-a74a-1bca3f0c95d0";
const DARA: &str = "ea585310-c95c-4a68-af22-49af4363bbb1";
const SOMEONE_ELSE: &str = "00000000-1111-2222-3333-444444444444";

fn write(role: &str, principal: &str, principal_type: Option<&str>) -> RoleAssignmentOperation {
    RoleAssignmentOperation::write(role, principal, principal_type)
}

fn delete(role: &str, principal: &str, principal_type: Option<&str>) -> RoleAssignmentOperation {
    RoleAssignmentOperation::delete(role, principal, principal_type)
}

/// A hand-rolled request: any action, any attributes under any source.
struct Request {
    action: &'static str,
    suboperation: Option<&'static str>,
    values: Vec<(Source, &'static str, Vec<&'static str>)>,
}

impl Request {
    fn action(action: &'static str) -> Self {
        Request { action, suboperation: None, values: Vec::new() }
    }

    fn with(mut self, source: Source, name: &'static str, values: &[&'static str]) -> Self {
        self.values.push((source, name, values.to_vec()));
        self
    }
}

impl Attributes for Request {
    fn action(&self) -> &str {
        self.action
    }

    fn suboperation(&self) -> Option<&str> {
        self.suboperation
    }

    fn value(&self, source: Source, attribute: &str) -> Option<Vec<String>> {
        self.values
            .iter()
            .find(|(s, name, _)| *s == source && *name == attribute)
            .map(|(_, _, values)| values.iter().map(|v| v.to_string()).collect())
    }
}

/// Parses, panicking with the error's text.
fn condition(text: &str) -> iothub_access_abac::Condition {
    parse(text).unwrap_or_else(|error| panic!("{error} (condition from {EXAMPLES_URL})"))
}

/// Asserts the verdicts of `cases` (operation, expected allowed) on a condition.
fn assert_verdicts(text: &str, cases: &[(RoleAssignmentOperation, bool)]) {
    let condition = condition(text);
    for (operation, allowed) in cases {
        assert_eq!(condition.evaluate(operation), *allowed, "{operation:?} on\n{text}");
    }
}

#[test]
fn constrain_roles() {
    assert_verdicts(
        CONSTRAIN_ROLES,
        &[
            (write(BACKUP_CONTRIBUTOR, SOMEONE_ELSE, Some("User")), true),
            (write(BACKUP_READER, SOMEONE_ELSE, None), true),
            // GUIDs compare case-insensitively.
            (write(&BACKUP_READER.to_uppercase(), SOMEONE_ELSE, None), true),
            (write(OWNER, SOMEONE_ELSE, Some("User")), false),
            (write(CONTRIBUTOR, SOMEONE_ELSE, Some("User")), false),
            (delete(BACKUP_READER, SOMEONE_ELSE, Some("Group")), true),
            (delete(OWNER, SOMEONE_ELSE, Some("User")), false),
            // A role definition ID that isn't a bare GUID never matches.
            (write(&format!("/providers/Microsoft.Authorization/roleDefinitions/{BACKUP_READER}"), DARA, None), false),
        ],
    );
    let condition = condition(CONSTRAIN_ROLES);
    // Actions the condition doesn't target are not constrained.
    assert!(condition.evaluate(&Request::action("Microsoft.Authorization/roleAssignments/read")));
    assert!(condition.evaluate(&Request::action("Microsoft.Devices/IotHubs/write")));
    // A write whose request lacks the role definition ID is refused.
    assert!(!condition.evaluate(&Request::action("Microsoft.Authorization/roleAssignments/write")));
    // The write's attributes are read from @Request: the same values under @Resource don't count.
    let misplaced = Request::action("Microsoft.Authorization/roleAssignments/write").with(
        Source::Resource,
        "Microsoft.Authorization/roleAssignments:RoleDefinitionId",
        &[BACKUP_READER],
    );
    assert!(!condition.evaluate(&misplaced));
    // Action names match case-insensitively.
    let shouted = Request::action("MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE").with(
        Source::Request,
        "Microsoft.Authorization/roleAssignments:RoleDefinitionId",
        &[OWNER],
    );
    assert!(!condition.evaluate(&shouted));
}

#[test]
fn constrain_roles_one_line_form_is_the_same_condition() {
    assert_eq!(condition(CONSTRAIN_ROLES_ONE_LINE), condition(CONSTRAIN_ROLES));
    assert_eq!(condition(ALLOW_MOST_ROLES_ONE_LINE), condition(ALLOW_MOST_ROLES));
}

#[test]
fn constrain_roles_and_principal_types_example() {
    assert_verdicts(
        CONSTRAIN_ROLES_AND_PRINCIPAL_TYPES,
        &[
            (write(BACKUP_CONTRIBUTOR, SOMEONE_ELSE, Some("User")), true),
            (write(BACKUP_READER, SOMEONE_ELSE, Some("Group")), true),
            // StringEqualsIgnoreCase.
            (write(BACKUP_READER, SOMEONE_ELSE, Some("group")), true),
            (write(BACKUP_READER, SOMEONE_ELSE, Some("ServicePrincipal")), false),
            // No principalType in the request: the PrincipalType clause fails.
            (write(BACKUP_READER, SOMEONE_ELSE, None), false),
            (write(OWNER, SOMEONE_ELSE, Some("User")), false),
            (delete(BACKUP_CONTRIBUTOR, SOMEONE_ELSE, Some("Group")), true),
            (delete(BACKUP_CONTRIBUTOR, SOMEONE_ELSE, Some("ServicePrincipal")), false),
            (delete(OWNER, SOMEONE_ELSE, Some("User")), false),
        ],
    );
}

#[test]
fn overview_users_only_variant() {
    assert_verdicts(
        OVERVIEW_USERS_ONLY,
        &[
            (write(BACKUP_CONTRIBUTOR, DARA, Some("User")), true),
            (write(BACKUP_CONTRIBUTOR, MARKETING, Some("Group")), false),
            (delete(BACKUP_READER, DARA, Some("User")), true),
            (delete(BACKUP_READER, MARKETING, Some("Group")), false),
        ],
    );
}

#[test]
fn constrain_roles_and_specific_groups() {
    assert_verdicts(
        CONSTRAIN_ROLES_AND_SPECIFIC_GROUPS,
        &[
            (write(BACKUP_CONTRIBUTOR, MARKETING, Some("Group")), true),
            (write(BACKUP_READER, SALES, None), true),
            (write(BACKUP_READER, &SALES.to_uppercase(), None), true),
            (write(BACKUP_READER, DARA, Some("User")), false),
            (write(OWNER, MARKETING, Some("Group")), false),
            (delete(BACKUP_READER, SALES, Some("Group")), true),
            (delete(BACKUP_READER, DARA, Some("User")), false),
            (delete(OWNER, SALES, Some("Group")), false),
        ],
    );
}

#[test]
fn constrain_virtual_machine_management() {
    assert_verdicts(
        CONSTRAIN_VIRTUAL_MACHINE_MANAGEMENT,
        &[
            (write(VM_ADMIN_LOGIN, DARA, Some("User")), true),
            (write(VM_USER_LOGIN, DARA, None), true),
            (write(VM_USER_LOGIN, SOMEONE_ELSE, Some("User")), false),
            (write(BACKUP_READER, DARA, Some("User")), false),
            (delete(VM_ADMIN_LOGIN, DARA, Some("User")), true),
            (delete(VM_ADMIN_LOGIN, SOMEONE_ELSE, Some("User")), false),
        ],
    );
}

#[test]
fn constrain_aks_cluster_management() {
    let mut cases: Vec<_> = AKS_RBAC_ROLES.iter().map(|role| (write(role, DARA, Some("User")), true)).collect();
    cases.extend(AKS_RBAC_ROLES.iter().map(|role| (delete(role, DARA, Some("User")), true)));
    cases.push((write(AKS_RBAC_ROLES[0], SOMEONE_ELSE, Some("User")), false));
    cases.push((write(OWNER, DARA, Some("User")), false));
    cases.push((delete(OWNER, DARA, Some("User")), false));
    assert_verdicts(CONSTRAIN_AKS_CLUSTER_MANAGEMENT, &cases);
}

#[test]
fn constrain_acr_management() {
    assert_verdicts(
        CONSTRAIN_ACR_MANAGEMENT,
        &[
            (write(ACR_PULL, SOMEONE_ELSE, Some("ServicePrincipal")), true),
            (write(ACR_PULL, SOMEONE_ELSE, Some("serviceprincipal")), true),
            (write(ACR_PULL, DARA, Some("User")), false),
            (write(ACR_PULL, SOMEONE_ELSE, None), false),
            (write(OWNER, SOMEONE_ELSE, Some("ServicePrincipal")), false),
            (delete(ACR_PULL, SOMEONE_ELSE, Some("ServicePrincipal")), true),
            (delete(ACR_PULL, DARA, Some("User")), false),
        ],
    );
}

#[test]
fn constrain_add_role_assignments() {
    assert_verdicts(
        CONSTRAIN_ADD_ROLE_ASSIGNMENTS,
        &[
            (write(BACKUP_CONTRIBUTOR, DARA, Some("User")), true),
            (write(OWNER, DARA, Some("User")), false),
            // "The delegate can remove any role assignments."
            (delete(OWNER, DARA, Some("User")), true),
            (delete(BACKUP_READER, DARA, Some("User")), true),
        ],
    );
}

#[test]
fn allow_most_roles_but_not_role_assigning_ones() {
    assert_verdicts(
        ALLOW_MOST_ROLES,
        &[
            (write(CONTRIBUTOR, DARA, Some("User")), true),
            (write(READER, DARA, None), true),
            (write(OWNER, DARA, Some("User")), false),
            (write(&OWNER.to_uppercase(), DARA, Some("User")), false),
            (write(RBAC_ADMINISTRATOR, DARA, Some("User")), false),
            (write(USER_ACCESS_ADMINISTRATOR, DARA, Some("User")), false),
            (delete(READER, DARA, Some("User")), true),
            (delete(OWNER, DARA, Some("User")), false),
            (delete(USER_ACCESS_ADMINISTRATOR, DARA, Some("User")), false),
        ],
    );
    // GuidNotEquals on a missing attribute is false too: a write without a role is refused.
    let missing = Request::action("Microsoft.Authorization/roleAssignments/write");
    assert!(!condition(ALLOW_MOST_ROLES).evaluate(&missing));
}

#[test]
fn attributes_lists_each_reference_once() {
    let attributes = condition(CONSTRAIN_ROLES_AND_PRINCIPAL_TYPES).attributes();
    let expected = [
        (Source::Request, "Microsoft.Authorization/roleAssignments:RoleDefinitionId"),
        (Source::Request, "Microsoft.Authorization/roleAssignments:PrincipalType"),
        (Source::Resource, "Microsoft.Authorization/roleAssignments:RoleDefinitionId"),
        (Source::Resource, "Microsoft.Authorization/roleAssignments:PrincipalType"),
    ];
    assert_eq!(attributes, expected.map(|(s, n)| (s, n.to_string())));
    let repeated =
        condition("@Request[x] StringEquals 'a' AND @Request[x] StringEquals 'b' AND Exists @Environment[UtcNow]");
    assert_eq!(repeated.attributes(), vec![(Source::Request, "x".into()), (Source::Environment, "UtcNow".into())]);
}

#[test]
fn every_example_survives_display_and_reparse() {
    for text in [
        CONSTRAIN_ROLES,
        CONSTRAIN_ROLES_AND_PRINCIPAL_TYPES,
        CONSTRAIN_ROLES_AND_SPECIFIC_GROUPS,
        CONSTRAIN_VIRTUAL_MACHINE_MANAGEMENT,
        CONSTRAIN_AKS_CLUSTER_MANAGEMENT,
        CONSTRAIN_ACR_MANAGEMENT,
        CONSTRAIN_ADD_ROLE_ASSIGNMENTS,
        ALLOW_MOST_ROLES,
        OVERVIEW_USERS_ONLY,
    ] {
        let parsed = condition(text);
        let shown = parsed.to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert_eq!(parse(&shown), Ok(parsed), "{shown}");
    }
}

/// Operator examples of "Azure role assignment condition format and syntax",
/// <https://learn.microsoft.com/en-us/azure/role-based-access-control/conditions-format>.
#[test]
fn documented_operator_examples() {
    let nothing = Request::action("Microsoft.Authorization/roleAssignments/write");
    let cases = [
        ("{'red', 'blue'} ForAnyOfAnyValues:StringEquals {'blue', 'green'}", true),
        ("{'red', 'blue'} ForAnyOfAnyValues:StringEquals {'orange', 'green'}", false),
        ("{'red', 'blue'} ForAllOfAnyValues:StringEquals {'orange', 'red', 'blue'}", true),
        ("{'red', 'blue'} ForAllOfAnyValues:StringEquals {'red', 'green'}", false),
        ("{10, 20} ForAnyOfAllValues:NumericLessThan {15, 18}", true),
        ("{10, 20} ForAllOfAllValues:NumericLessThan {5, 15, 18}", false),
        ("{10, 20} ForAllOfAllValues:NumericLessThan {25, 30}", true),
        ("{10, 20} ForAllOfAllValues:NumericLessThan {15, 25, 30}", false),
        ("ActionMatches{'Microsoft.Authorization/roleAssignments/*'}", true),
        ("ActionMatches{'Microsoft.Authorization/roleDefinitions/*'}", false),
    ];
    for (text, expected) in cases {
        assert_eq!(condition(text).evaluate(&nothing), expected, "{text}");
    }
    let name1 = |value| Request::action("x").with(Source::Resource, "name1", &[value]);
    assert!(condition("@Resource[name1] StringLike 'a*c?'").evaluate(&name1("abcd")));
    assert!(!condition("@Resource[name1] StringLike 'A*C?'").evaluate(&name1("abcd")));
    assert!(!condition("@Resource[name1] StringLike 'a*c'").evaluate(&name1("abcd")));
    assert!(condition("@Resource[name1] StringLikeIgnoreCase 'A*C?'").evaluate(&name1("abcd")));
}

/// `SubOperationMatches`, `Exists`, `NOT` and `&&`, as in the "Logical operators" examples.
#[test]
fn suboperations_and_exists() {
    let text = "!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'} AND NOT SubOperationMatches{'Blob.List'}) || Exists @Request[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:versionId]";
    let condition = condition(text);
    let mut read = Request::action("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read");
    assert!(!condition.evaluate(&read));
    read.suboperation = Some("Blob.List");
    assert!(condition.evaluate(&read));
    let read = Request::action("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read").with(
        Source::Request,
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs:versionId",
        &["2022-06-01T00:00:00.0Z"],
    );
    assert!(condition.evaluate(&read));
}

#[test]
fn keywords_and_operators_ignore_case_and_whitespace_is_free() {
    let text = "( ( not ( actionmatches { 'Microsoft.Authorization/roleAssignments/write' } ) )\n\tor\r\n( @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId]   foranyofanyvalues:guidequals{ 5E467623-BB1F-42F4-A55D-6E525E11384B,a795c7a0-d4a2-40c1-ae25-d81f01202912 } ) ) and ( ( ! (ActionMatches{'Microsoft.Authorization/roleAssignments/delete'}) ) || ( @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912} ) )";
    assert_eq!(condition(text), condition(CONSTRAIN_ROLES));
}

#[test]
fn quoted_guids_and_plain_operators() {
    let text = "@Request[Microsoft.Authorization/roleAssignments:PrincipalId] GuidEquals 'EA585310-C95C-4A68-AF22-49AF4363BBB1' AND @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635}";
    let condition = condition(text);
    assert!(condition.evaluate(&write(READER, DARA, None)));
    assert!(!condition.evaluate(&write(OWNER, DARA, None)));
    assert!(!condition.evaluate(&write(READER, SOMEONE_ELSE, None)));
    // A plain operator needs a single-valued attribute.
    let two = Request::action("x").with(
        Source::Request,
        "Microsoft.Authorization/roleAssignments:PrincipalId",
        &[DARA, DARA],
    );
    assert!(!condition.evaluate(&two));
}

#[test]
fn known_attributes() {
    for source in [Source::Request, Source::Resource] {
        assert!(known_attribute(source, "Microsoft.Authorization/roleAssignments:RoleDefinitionId"));
        assert!(known_attribute(source, "Microsoft.Authorization/roleAssignments:PrincipalId"));
        assert!(known_attribute(source, "Microsoft.Authorization/roleAssignments:PrincipalType"));
        assert!(!known_attribute(source, "Microsoft.Authorization/roleAssignments:PrincipalName"));
        assert!(!known_attribute(source, "Microsoft.Authorization/roleAssignments:roleDefinitionId"));
    }
    assert!(!known_attribute(Source::Principal, "Microsoft.Authorization/roleAssignments:PrincipalId"));
    assert!(known_attribute(Source::Environment, "UtcNow"));
    assert!(known_attribute(Source::Environment, "isPrivateLink"));
}

/// Parses `text`, expecting an error of `kind` at the byte offset of `at` in `text`.
fn assert_error(text: &str, kind: ErrorKind, at: &str) {
    let error = parse(text).expect_err(text);
    let offset = text.find(at).unwrap_or_else(|| panic!("{at:?} not in {text:?}"));
    assert_eq!((error.kind, error.offset), (kind, offset), "{text}");
}

/// Parses `text`, expecting an error of `kind` at its end.
fn assert_error_at_end(text: &str, kind: ErrorKind) {
    let error = parse(text).expect_err(text);
    assert_eq!((error.kind, error.offset), (kind, text.len()), "{text}");
}

#[test]
fn unknown_operator_is_reported_where_it_is() {
    let text = CONSTRAIN_ROLES.replacen("ForAnyOfAnyValues:GuidEquals", "GuidEqualz", 1);
    let error = parse(&text).unwrap_err();
    let offset = text.find("GuidEqualz").unwrap();
    assert_eq!(error.kind, ErrorKind::UnknownOperator("GuidEqualz".into()));
    assert_eq!(error.offset, offset);
    assert_eq!(error.to_string(), format!("unknown operator 'GuidEqualz' at {offset}"));
    // Undocumented cross-product combinations are unknown too.
    assert_error(
        "@Request[x] ForAnyOfAnyValues:StringStartsWith {'a'}",
        ErrorKind::UnknownOperator("ForAnyOfAnyValues:StringStartsWith".into()),
        "ForAny",
    );
    assert_error(
        "@Request[x] ForSomeValues:StringEquals {'a'}",
        ErrorKind::UnknownOperator("ForSomeValues:StringEquals".into()),
        "ForSome",
    );
}

#[test]
fn unknown_attributes_are_refused() {
    let text = CONSTRAIN_ROLES.replacen("roleAssignments:RoleDefinitionId", "roleAssignments:RoleDefinitionName", 1);
    let error = parse(&text).unwrap_err();
    assert_eq!(
        error.kind,
        ErrorKind::UnknownAttribute {
            source: Source::Request,
            name: "Microsoft.Authorization/roleAssignments:RoleDefinitionName".into()
        }
    );
    assert_eq!(error.offset, text.find("@Request").unwrap());
    // Documented spelling only.
    assert!(matches!(
        parse("@Resource[Microsoft.Authorization/roleassignments:principalid] GuidEquals 00000000-0000-0000-0000-000000000000").unwrap_err().kind,
        ErrorKind::UnknownAttribute { .. }
    ));
    // Role assignment attributes exist under @Request and @Resource only.
    assert!(matches!(
        parse("@Principal[Microsoft.Authorization/roleAssignments:PrincipalId] GuidEquals 00000000-0000-0000-0000-000000000000").unwrap_err().kind,
        ErrorKind::UnknownAttribute { source: Source::Principal, .. }
    ));
    assert_error("@Requests[x] StringEquals 'a'", ErrorKind::UnknownSource("Requests".into()), "@");
    assert_error("@Request[] StringEquals 'a'", ErrorKind::EmptyAttributeName, "@");
    assert_error("@Request[x StringEquals 'a'", ErrorKind::UnterminatedAttribute, "@");
}

#[test]
fn unbalanced_parentheses_are_refused() {
    // Drop the final ')': the first '(' is never closed.
    let text = &CONSTRAIN_ROLES[..CONSTRAIN_ROLES.rfind(')').unwrap()];
    let error = parse(text).unwrap_err();
    assert_eq!(error.kind, ErrorKind::UnclosedParenthesis);
    // One ')' too many.
    let text = format!("{CONSTRAIN_ROLES})");
    let error = parse(&text).unwrap_err();
    assert_eq!((error.kind.clone(), error.offset), (ErrorKind::UnmatchedParenthesis, text.len() - 1));
    assert!(error.to_string().starts_with("unbalanced parentheses"), "{error}");
    assert_error("(ActionMatches{'a'}", ErrorKind::UnclosedParenthesis, "(");
}

#[test]
fn empty_conditions_are_refused() {
    for text in ["", "   ", "\n\t\r\n"] {
        assert_eq!(parse(text).unwrap_err().kind, ErrorKind::Empty, "{text:?}");
    }
    assert_error("()", ErrorKind::Expected { expected: "an expression", found: "')'".into() }, ")");
}

#[test]
fn trailing_text_is_refused() {
    let text = format!("{CONSTRAIN_ROLES} garbage");
    assert_error(&text, ErrorKind::TrailingInput("'garbage'".into()), "garbage");
    let text = format!("{CONSTRAIN_ROLES} ActionMatches{{'x'}}");
    assert_error(&text, ErrorKind::TrailingInput("'ActionMatches'".into()), "ActionMatches{'x'}");
    assert_error_at_end(
        "ActionMatches{'a'} AND",
        ErrorKind::Expected { expected: "an expression", found: "end of condition".into() },
    );
}

#[test]
fn other_syntax_errors() {
    assert_error("ActionMatches{'a'} AND ActionMatches{'b'} OR ActionMatches{'c'}", ErrorKind::MixedAndOr, "OR");
    assert_error("ActionMatch{'a'}", ErrorKind::UnknownFunction("ActionMatch".into()), "ActionMatch");
    assert_error("ActionMatches{'a'} & ActionMatches{'b'}", ErrorKind::UnexpectedChar('&'), "&");
    assert_error("@Request[x] StringEquals 'abc", ErrorKind::UnterminatedString, "'abc");
    assert_error("@Request[x] StringEquals {}", ErrorKind::EmptyValueSet, "{");
    assert_error(
        "@Request[x] StringEquals {'a', 'b'}",
        ErrorKind::SingleValueExpected { operator: "StringEquals".into(), count: 2 },
        "{",
    );
    assert_error(
        "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, Owner}",
        ErrorKind::InvalidValue { value: "Owner".into(), expected: "GUID" },
        "Owner",
    );
    assert_error(
        "@Request[x] StringEquals User",
        ErrorKind::InvalidValue { value: "User".into(), expected: "string" },
        "User",
    );
    assert_error(
        "@Request[Microsoft.Authorization/roleAssignments:PrincipalId] StringEquals 'x'",
        ErrorKind::OperatorTypeMismatch {
            operator: "StringEquals".into(),
            attribute: "@Request[Microsoft.Authorization/roleAssignments:PrincipalId]".into(),
            expected: "GUID",
        },
        "@",
    );
    assert_error_at_end(
        "@Request[x] StringEquals",
        ErrorKind::Expected { expected: "an expression", found: "end of condition".into() },
    );
    let deep = format!("{}ActionMatches{{'a'}}{}", "(".repeat(200), ")".repeat(200));
    assert_eq!(parse(&deep).unwrap_err().kind, ErrorKind::TooDeep);
    let long = format!("{CONSTRAIN_ROLES}{}", " ".repeat(MAX_CONDITION_LEN));
    assert_eq!(parse(&long).unwrap_err().kind, ErrorKind::TooLong(long.len()));
}

#[test]
fn builder_reproduces_the_documented_examples_byte_for_byte() {
    assert_eq!(
        constrain_roles_and_principal_types(&[BACKUP_CONTRIBUTOR, BACKUP_READER], &["User", "Group"]),
        CONSTRAIN_ROLES_AND_PRINCIPAL_TYPES
    );
    assert_eq!(constrain_roles_and_principal_types(&[ACR_PULL], &["ServicePrincipal"]), CONSTRAIN_ACR_MANAGEMENT);
}

#[test]
fn builder_round_trip_allows_what_it_lists_and_refuses_the_rest() {
    let text = constrain_roles_and_principal_types(&[READER, CONTRIBUTOR], &["ServicePrincipal"]);
    let condition = condition(&text);
    assert!(condition.evaluate(&write(READER, SOMEONE_ELSE, Some("ServicePrincipal"))));
    assert!(condition.evaluate(&write(CONTRIBUTOR, SOMEONE_ELSE, Some("ServicePrincipal"))));
    assert!(condition.evaluate(&delete(CONTRIBUTOR, SOMEONE_ELSE, Some("ServicePrincipal"))));
    assert!(!condition.evaluate(&write(OWNER, SOMEONE_ELSE, Some("ServicePrincipal"))));
    assert!(!condition.evaluate(&write(READER, SOMEONE_ELSE, Some("User"))));
    assert!(!condition.evaluate(&write(READER, SOMEONE_ELSE, None)));
    assert!(!condition.evaluate(&delete(OWNER, SOMEONE_ELSE, Some("ServicePrincipal"))));
    assert!(!condition.evaluate(&delete(READER, SOMEONE_ELSE, Some("Group"))));
    // Empty lists give `{}`, which is refused rather than allowing everything or nothing silently.
    let empty = constrain_roles_and_principal_types(&[], &["User"]);
    assert_eq!(parse(&empty).unwrap_err().kind, ErrorKind::EmptyValueSet);
    // Quotes in a principal type are escaped and survive.
    let odd = constrain_roles_and_principal_types(&[READER], &["O'Brien"]);
    assert!(parse(&odd).unwrap().evaluate(&write(READER, SOMEONE_ELSE, Some("o'brien"))));
}

/// The documented "Principal type" operators include `ForAnyOfAnyValues:StringNotEqualsIgnoreCase`;
/// on a request without principalType it is false (absent attributes fail closed), and `Exists` /
/// `NOT Exists` see the absence.
#[test]
fn absent_principal_type_fails_negative_operators_too() {
    let not_sp = condition(
        "@Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringNotEqualsIgnoreCase {'ServicePrincipal'}",
    );
    assert!(not_sp.evaluate(&write(READER, DARA, Some("User"))));
    assert!(!not_sp.evaluate(&write(READER, DARA, Some("servicePrincipal"))));
    assert!(!not_sp.evaluate(&write(READER, DARA, None)));
    let exists = condition("Exists @Request[Microsoft.Authorization/roleAssignments:PrincipalType]");
    assert!(exists.evaluate(&write(READER, DARA, Some("User"))));
    assert!(!exists.evaluate(&write(READER, DARA, None)));
    let absent_or_user = condition(
        "NOT Exists @Request[Microsoft.Authorization/roleAssignments:PrincipalType] OR @Request[Microsoft.Authorization/roleAssignments:PrincipalType] StringEqualsIgnoreCase 'User'",
    );
    assert!(absent_or_user.evaluate(&write(READER, DARA, None)));
    assert!(absent_or_user.evaluate(&write(READER, DARA, Some("User"))));
    assert!(!absent_or_user.evaluate(&write(READER, DARA, Some("Group"))));
}

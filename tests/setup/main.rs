//! `iothub-access-operator setup` as an admin runs it: the real binary on `examples/` and on
//! small manifests, its JSON document (the delegation condition evaluated as Azure would), and
//! the az, Bicep and Terraform renderings of the same document.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use iothub_access_abac::{Attributes, RoleAssignmentOperation, Source, parse};
use iothub_access_operator::desire;
use iothub_access_operator::domain::naming::Owner;
use iothub_access_operator::manifest::{self, Resource};
use serde_json::Value;

const SUB: &str = "5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a";
const RG: &str = "/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg-iot-prod";
const SEARCHED: &str = "2c9d8e7f-6a5b-4c3d-9e1f-0a1b2c3d4e5f";
const OPERATOR: &str = "2b1a0f9e-8d7c-4b6a-9e5d-4c3b2a1f0e9d";
const FLEET_HUB: &str = "/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg-iot-prod/providers/Microsoft.Devices/IotHubs/contoso-fleet-hub";
const RBAC_ADMIN: &str = "/providers/Microsoft.Authorization/roleDefinitions/f58310d9-a9f6-439a-9e8d-f62e7b41a168";
const DATA_READER: &str = "b447c946-2db7-41ec-983d-d8bf3b1c77e3";
const OWNER_ROLE: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
const HUB_WRITE: &str = "Microsoft.Devices/IotHubs/write";
const DEFINITIONS_WRITE: &str = "Microsoft.Authorization/roleDefinitions/write";

/// Run `setup` with `args`, `stdin` fed to `-f -` when given.
fn setup(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iothub-access-operator"))
        .arg("setup")
        .args(args)
        .env_remove("IOTHUB_ACCESS_ALLOWED_SCOPES")
        .env_remove("IOTHUB_ACCESS_ALLOWED_ROLES")
        .env_remove("IOTHUB_ACCESS_INSTANCE_ID")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    eprintln!("$ iothub-access-operator setup {}\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

/// The JSON document for `args` (which must succeed).
fn document(args: &[&str], stdin: Option<&str>) -> Value {
    let out = setup(&[args, &["-o", "json"]].concat(), stdin);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn examples() -> Value {
    document(
        &["-f", "examples", "--allowed-scope", RG, "--search-subscription", SEARCHED, "--principal-id", OPERATOR],
        None,
    )
}

fn assignments(doc: &Value) -> &Vec<Value> {
    doc["roleAssignments"].as_array().unwrap()
}

fn definitions(doc: &Value) -> &Vec<Value> {
    doc["roleDefinitions"].as_array().unwrap()
}

/// The conditioned Role Based Access Control Administrator assignment(s).
fn rbac_admin(doc: &Value) -> Vec<&Value> {
    assignments(doc).iter().filter(|a| a["roleDefinitionId"] == RBAC_ADMIN).collect()
}

fn condition(doc: &Value) -> String {
    let admins = rbac_admin(doc);
    assert!(!admins.is_empty(), "no RBAC Administrator assignment in {doc:#}");
    admins[0]["condition"].as_str().expect("a condition").to_string()
}

/// The custom role of the document that grants `action`, and where it is assigned.
fn holder_of(doc: &Value, action: &str) -> Option<(String, Vec<String>)> {
    let def = definitions(doc).iter().find(|d| {
        d["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["actions"].as_array().unwrap().iter().any(|a| a == action))
    })?;
    let guid = def["name"].as_str().unwrap().to_string();
    let scopes = assignments(doc)
        .iter()
        .filter(|a| a["roleDefinitionId"].as_str().unwrap().ends_with(&guid))
        .map(|a| a["scope"].as_str().unwrap().to_string())
        .collect();
    Some((guid, scopes))
}

fn write(role: &str, principal_type: Option<&str>) -> RoleAssignmentOperation {
    RoleAssignmentOperation::write(role, "0b7e4f3a-9c1d-4e2b-8a6f-5d3c2b1a0f9e", principal_type)
}

fn delete(role: &str, principal_type: Option<&str>) -> RoleAssignmentOperation {
    RoleAssignmentOperation::delete(role, "0b7e4f3a-9c1d-4e2b-8a6f-5d3c2b1a0f9e", principal_type)
}

/// An action the condition does not speak of (the operator's own reads, say).
struct Read;

impl Attributes for Read {
    fn action(&self) -> &str {
        "Microsoft.Devices/IotHubs/read"
    }
    fn value(&self, _: Source, _: &str) -> Option<Vec<String>> {
        None
    }
}

/// The custom role GUIDs `plan` derives for the manifests under `path` (the same `desire`).
fn planned_custom_roles(path: &str, instance: &str) -> Vec<String> {
    let m = manifest::load(&[PathBuf::from(path)]);
    m.valid_resources()
        .filter_map(|d| match &d.resource {
            Resource::CustomRole(c) => {
                let owner = Owner::new(instance, d.resource.namespace(), d.resource.name());
                let desired = desire::desire_custom_role(&c.spec, &owner).expect("valid");
                assert_eq!(desired.guid, owner.definition_name());
                Some(desired.guid.to_string())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_examples_get_a_conditioned_rbac_administrator_and_narrow_roles_only_where_needed() {
    let doc = examples();
    assert_eq!(doc["principalId"], OPERATOR);
    let admins = rbac_admin(&doc);
    assert_eq!(admins.len(), 1, "one per allowed scope");
    let admin = admins[0];
    assert_eq!(admin["scope"], RG);
    assert_eq!(admin["principalType"], "ServicePrincipal");
    assert_eq!(admin["conditionVersion"], "2.0");

    let text = condition(&doc);
    let c = parse(&text).expect("the condition parses");
    // IoT Hub Data Reader for a principal type the examples use: allowed, written and deleted.
    assert!(c.evaluate(&write(DATA_READER, Some("ServicePrincipal"))));
    assert!(c.evaluate(&write(DATA_READER, Some("Group"))));
    assert!(c.evaluate(&delete(DATA_READER, Some("Group"))));
    // Owner: refused, to write and to delete; a write without a principal type: refused.
    assert!(!c.evaluate(&write(OWNER_ROLE, Some("ServicePrincipal"))));
    assert!(!c.evaluate(&delete(OWNER_ROLE, Some("ServicePrincipal"))));
    assert!(!c.evaluate(&write(DATA_READER, None)));
    // The examples grant no User: Azure refuses a grant to one.
    assert!(!c.evaluate(&write(DATA_READER, Some("User"))));
    // Anything else the identity does is not the condition's business.
    assert!(c.evaluate(&Read));

    // The custom role of the examples, by the GUID `plan` gives it.
    let custom = planned_custom_roles("examples", "cli");
    assert_eq!(custom.len(), 1);
    assert!(c.evaluate(&write(&custom[0], Some("ServicePrincipal"))), "{text}");
    // A custom role named under another instance is another GUID, and refused.
    let other = Owner::new("another-cluster", "iot-platform", "device-registry-reader").definition_name();
    assert!(!c.evaluate(&write(&other.to_string(), Some("ServicePrincipal"))));

    // The hub writer holds only the hub of the IotHubSharedAccess, not the other hub.
    let (_, hubs) = holder_of(&doc, HUB_WRITE).expect("a hub writer");
    assert_eq!(hubs, vec![FLEET_HUB.to_string()]);
    // The dependents search reads the listed subscription and the hub's own.
    let (_, subs) = holder_of(&doc, "Microsoft.Devices/provisioningServices/read").expect("a search role");
    assert_eq!(subs, vec![format!("/subscriptions/{SEARCHED}"), format!("/subscriptions/{SUB}")]);
    // The example's custom role lives at its subscription, outside the allowed resource group:
    // the operator refuses it, so nothing may write definitions, and the notes say why.
    assert!(holder_of(&doc, DEFINITIONS_WRITE).is_none(), "{doc:#}");
    let notes = doc["notes"].as_array().unwrap();
    let about = |s: &str| notes.iter().find(|n| n["about"].as_str().unwrap().contains(s));
    assert!(
        about("iot-platform/device-registry-reader").unwrap()["risk"].as_str().unwrap().contains("ScopeNotAllowed")
    );
    assert!(about("hub shared access").unwrap()["risk"].as_str().unwrap().contains("shared access policy"));
    assert!(about("delegation condition").unwrap()["avoid"].as_str().unwrap().contains("for every new custom role"));
    assert!(about("reads on the allowed scopes").unwrap()["risk"].as_str().unwrap().contains("*/read"));
    // Stable: the same input prints the same document.
    assert_eq!(doc, examples());
}

const ROLE_ASSIGNMENT: &str = r#"
apiVersion: iothubaccess.io/v1alpha1
kind: IotHubRoleAssignment
metadata: {name: reader, namespace: team-a}
spec:
  hub: {subscriptionId: 5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a, resourceGroup: rg-iot-prod, name: contoso-fleet-hub}
  principal: {id: e4d3c2b1-a0f9-4e8d-b7c6-a5b4c3d2e1f0, type: User}
  role: {builtIn: Reader}
"#;

fn custom_role(name: &str) -> String {
    format!(
        r#"
---
apiVersion: iothubaccess.io/v1alpha1
kind: IotHubCustomRole
metadata: {{name: {name}, namespace: team-a}}
spec:
  roleName: Team A {name}
  subscriptionId: 5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a
  assignableScopes: [{RG}]
  dataActions: [Microsoft.Devices/IotHubs/devices/read]
"#
    )
}

fn shared_access(mode: &str) -> String {
    format!(
        r#"
---
apiVersion: iothubaccess.io/v1alpha1
kind: IotHubSharedAccess
metadata:
  name: fleet
  namespace: team-a
  annotations: {{iothubaccess.io/reconcile: {mode}}}
spec:
  hub: {{subscriptionId: 5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a, resourceGroup: rg-iot-prod, name: contoso-fleet-hub}}
  sharedAccessPolicies: Deny
"#
    )
}

const SUBSCRIPTION: &str = "/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a";

fn from_stdin(manifests: &str, extra: &[&str]) -> Value {
    let args = [&["-f", "-", "--allowed-scope", SUBSCRIPTION, "--principal-id", OPERATOR][..], extra].concat();
    document(&args, Some(manifests))
}

#[test]
fn without_shared_access_there_is_no_hub_writer_and_no_search() {
    let doc = from_stdin(ROLE_ASSIGNMENT, &["--search-subscription", SEARCHED]);
    assert!(holder_of(&doc, HUB_WRITE).is_none(), "{doc:#}");
    assert!(holder_of(&doc, "Microsoft.Devices/provisioningServices/read").is_none(), "{doc:#}");
    assert!(holder_of(&doc, DEFINITIONS_WRITE).is_none(), "no IotHubCustomRole: {doc:#}");
    let c = parse(&condition(&doc)).unwrap();
    // Reader is listed because a manifest names it, for the one principal type they use.
    assert!(c.evaluate(&write("acdd72a7-3385-48ef-bd42-f606fba81ae7", Some("User"))));
    assert!(!c.evaluate(&write("acdd72a7-3385-48ef-bd42-f606fba81ae7", Some("Group"))));
    // In observe mode shared access is searched, never written.
    let doc = from_stdin(&format!("{ROLE_ASSIGNMENT}{}", shared_access("observe")), &[]);
    assert!(holder_of(&doc, HUB_WRITE).is_none(), "{doc:#}");
    let (_, subs) = holder_of(&doc, "Microsoft.Devices/provisioningServices/read").expect("searched");
    assert_eq!(subs, vec![SUBSCRIPTION.to_string()]);
    // Managed, it is written on that hub only.
    let doc = from_stdin(&format!("{ROLE_ASSIGNMENT}{}", shared_access("manage")), &[]);
    assert_eq!(holder_of(&doc, HUB_WRITE).expect("a hub writer").1, vec![FLEET_HUB.to_string()]);
}

#[test]
fn a_new_custom_role_changes_the_condition_and_is_written_where_it_lives() {
    let one = from_stdin(&format!("{ROLE_ASSIGNMENT}{}", custom_role("first")), &[]);
    let two = from_stdin(&format!("{ROLE_ASSIGNMENT}{}{}", custom_role("first"), custom_role("second")), &[]);
    let (c1, c2) = (condition(&one), condition(&two));
    assert_ne!(c1, c2, "a new custom role must show in the condition");
    let second = Owner::new("cli", "team-a", "second").definition_name().to_string();
    assert!(!parse(&c1).unwrap().evaluate(&write(&second, Some("User"))));
    assert!(parse(&c2).unwrap().evaluate(&write(&second, Some("User"))));
    // The definitions writer holds where the definitions are written, not the whole subscription.
    let (_, at) = holder_of(&two, DEFINITIONS_WRITE).expect("a definitions writer");
    assert_eq!(at, vec![RG.to_string()]);
    // Another --instance-id derives other GUIDs, as plan and apply do.
    let other = from_stdin(&format!("{ROLE_ASSIGNMENT}{}", custom_role("first")), &["--instance-id", "prod"]);
    let prod = Owner::new("prod", "team-a", "first").definition_name().to_string();
    assert!(parse(&condition(&other)).unwrap().evaluate(&write(&prod, Some("User"))));
    assert!(!parse(&c1).unwrap().evaluate(&write(&prod, Some("User"))));
}

#[test]
fn an_allowed_role_is_in_the_condition() {
    let allowed = "11111111-2222-4333-8444-555555555555";
    let doc = from_stdin(ROLE_ASSIGNMENT, &["--allowed-role", allowed]);
    let text = condition(&doc);
    assert!(text.contains(allowed), "{text}");
    assert!(parse(&text).unwrap().evaluate(&write(allowed, Some("User"))));
    assert!(doc["notes"].as_array().unwrap().iter().any(|n| n["about"].as_str().unwrap().contains(allowed)));
}

#[test]
fn without_manifests_every_kind_and_every_principal_type() {
    let doc = document(&["--allowed-scope", RG, "--principal-id", OPERATOR], None);
    let c = parse(&condition(&doc)).unwrap();
    for t in ["User", "Group", "ServicePrincipal"] {
        assert!(c.evaluate(&write(DATA_READER, Some(t))), "{t}");
    }
    assert!(!c.evaluate(&write("acdd72a7-3385-48ef-bd42-f606fba81ae7", Some("User"))), "Reader only when named");
    for action in [DEFINITIONS_WRITE, HUB_WRITE] {
        assert_eq!(holder_of(&doc, action).expect(action).1, vec![RG.to_string()], "{action}");
    }
}

#[test]
fn bad_flags_and_bad_manifests_print_nothing_and_exit_1() {
    for args in [
        &["--allowed-scope", "/subscriptions/x/../y", "--principal-id", OPERATOR][..],
        &["--allowed-scope", "/subscriptions/a/resourceGroups/%2e%2e", "--principal-id", OPERATOR][..],
    ] {
        let out = setup(args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--allowed-scope"), "{args:?}");
    }
    let out = setup(&["--principal-id", OPERATOR], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allowed-scope"));
    let out = setup(
        &["-f", "tests/invalid/listkeys-in-data-actions.yaml", "--allowed-scope", RG, "--principal-id", OPERATOR],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("spec.dataActions"));
}

/// `setup -o FORMAT` for the examples.
fn rendered(format: &str) -> String {
    let out = setup(
        &[
            "-f",
            "examples",
            "--allowed-scope",
            RG,
            "--allowed-scope",
            "/subscriptions/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            "--search-subscription",
            SEARCHED,
            "--principal-id",
            OPERATOR,
            "-o",
            format,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8(out.stdout).unwrap()
}

fn rendered_document() -> Value {
    serde_json::from_str(&rendered("json")).unwrap()
}

#[test]
fn every_format_holds_every_assignment_and_every_scope() {
    let doc = rendered_document();
    for format in ["az", "bicep", "terraform"] {
        let text = rendered(format);
        for a in assignments(&doc) {
            for key in ["name", "scope", "roleDefinitionId", "principalId", "principalType"] {
                let v = a[key].as_str().unwrap();
                assert!(text.contains(v), "{format}: {key} {v} missing");
            }
            if let Some(c) = a["condition"].as_str() {
                // The roles the condition lists are there (quotes are the format's own: the az
                // script is checked to the letter below).
                for line in c.lines().filter(|l| l.contains("RoleDefinitionId]")) {
                    assert!(text.contains(line.trim()), "{format}: condition line {line}");
                }
            }
        }
        for d in definitions(&doc) {
            assert!(text.contains(d["name"].as_str().unwrap()), "{format}: definition {}", d["name"]);
            for s in d["assignableScopes"].as_array().unwrap() {
                assert!(text.contains(s.as_str().unwrap()), "{format}: assignable scope {s}");
            }
        }
    }
    let bicep = rendered("bicep");
    assert!(bicep.contains("targetScope = 'resourceGroup'") && bicep.contains("targetScope = 'subscription'"));
    assert!(bicep.contains("'Microsoft.Authorization/roleAssignments@2022-04-01'"));
    assert!(bicep.contains("existing = {"), "the hub is the scope of its assignment");
    let tf = rendered("terraform");
    assert!(tf.contains("resource \"azurerm_role_assignment\"") && tf.contains("condition = chomp(<<-EOT"));
}

/// The az script, run by bash with `az` recording its arguments: every command parses, and
/// every value reaches az exactly as the JSON document has it (the condition's quotes included).
#[test]
fn the_az_script_passes_the_document_to_az_exactly() {
    let doc = rendered_document();
    let script = std::env::temp_dir().join(format!("iothub-access-setup-{}.sh", std::process::id()));
    std::fs::write(&script, rendered("az")).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"az() { printf '%s\0' "$@"; printf '\036\0'; }; source "$1""#)
        .arg("bash")
        .arg(&script)
        .output()
        .expect("bash runs");
    let _ = std::fs::remove_file(&script);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let words: Vec<String> = out.stdout.split(|b| *b == 0).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    let commands: Vec<&[String]> = words.split(|w| w == "\u{1e}").filter(|c| c.len() > 1).collect();
    let mut created = Vec::new();
    let mut defined = Vec::new();
    for c in commands {
        let flags: BTreeMap<&str, &str> =
            c[3..].chunks(2).map(|kv| (kv[0].as_str(), kv.get(1).map_or("", String::as_str))).collect();
        match (c[0].as_str(), c[1].as_str(), c[2].as_str()) {
            ("role", "assignment", "create") => {
                created.push(flags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>())
            }
            ("role", "definition", "update") => {
                defined.push(serde_json::from_str::<Value>(flags["--role-definition"]).expect("JSON"))
            }
            other => panic!("unexpected az command {other:?}"),
        }
    }
    assert_eq!(created.len(), assignments(&doc).len());
    for (a, flags) in assignments(&doc).iter().zip(&created) {
        let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
        assert_eq!(flags["--name"], s("name"));
        assert_eq!(flags["--scope"], s("scope"));
        assert_eq!(flags["--role"], s("roleDefinitionId"));
        assert_eq!(flags["--assignee-object-id"], s("principalId"));
        assert_eq!(flags["--assignee-principal-type"], s("principalType"));
        assert_eq!(flags["--description"], s("description"));
        assert_eq!(flags.get("--condition").cloned().unwrap_or_default(), s("condition"));
        assert_eq!(flags.get("--condition-version").cloned().unwrap_or_default(), s("conditionVersion"));
    }
    assert_eq!(defined.len(), definitions(&doc).len());
    for (d, sent) in definitions(&doc).iter().zip(&defined) {
        assert!(sent["id"].as_str().unwrap().ends_with(&format!("/roleDefinitions/{}", d["name"].as_str().unwrap())));
        for key in ["roleName", "description", "assignableScopes", "permissions"] {
            assert_eq!(sent[key], d[key], "{key}");
        }
    }
}

#[test]
fn a_custom_role_kept_in_the_cluster_is_listed_by_the_guid_it_derives() {
    let manifests = ROLE_ASSIGNMENT.replace("role: {builtIn: Reader}", "role: {customRoleRef: {name: elsewhere}}");
    let doc = from_stdin(&manifests, &[]);
    let guid = Owner::new("cli", "team-a", "elsewhere").definition_name().to_string();
    assert!(parse(&condition(&doc)).unwrap().evaluate(&write(&guid, Some("User"))));
    assert!(doc["notes"].as_array().unwrap().iter().any(|n| n["risk"].as_str().unwrap().contains(&guid)));
}

#[test]
fn with_no_role_assignment_to_write_the_identity_only_reads() {
    let doc = from_stdin(&shared_access("manage"), &[]);
    assert!(rbac_admin(&doc).is_empty(), "{doc:#}");
    let reader: Vec<&Value> = assignments(&doc)
        .iter()
        .filter(|a| {
            a["roleDefinitionId"]
                == "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
        })
        .collect();
    assert_eq!(reader.len(), 1);
    assert_eq!(reader[0]["scope"], SUBSCRIPTION);
    assert!(reader[0]["condition"].is_null());
    assert_eq!(holder_of(&doc, HUB_WRITE).expect("a hub writer").1, vec![FLEET_HUB.to_string()]);
}

/// Attack: a manifest that names a powerful role by `definitionId` must not widen the condition
/// the admin pastes into Azure. Only the admin can (`--allowed-role`).
#[test]
fn a_manifest_cannot_put_a_role_that_grants_more_into_the_condition() {
    // Azure IoT Operations Onboarding: Microsoft.Authorization/*/write (it can grant any role).
    let iot_ops = "7b7c71ed-33fa-4ed2-a91a-e56d5da260b5";
    // A custom role defined elsewhere: not known offline.
    let unknown = "22222222-3333-4444-8555-666666666666";
    for role in [iot_ops, unknown] {
        let manifest = ROLE_ASSIGNMENT.replace("role: {builtIn: Reader}", &format!("role: {{definitionId: {role}}}"));
        let doc = from_stdin(&manifest, &[]);
        let text = serde_json::to_string(&doc["roleAssignments"]).unwrap();
        assert!(!text.contains(role), "{role} must not enter the condition: {doc:#}");
        assert!(
            doc["notes"].as_array().unwrap().iter().any(|n| n["risk"]
                .as_str()
                .unwrap()
                .contains("left out of the condition")
                && n["avoid"].as_str().unwrap().contains(&format!("--allowed-role {role}"))),
            "{doc:#}"
        );
        let allowed = from_stdin(&manifest, &["--allowed-role", role]);
        assert!(parse(&condition(&allowed)).unwrap().evaluate(&write(role, Some("User"))), "the admin's choice");
    }
    // A principal read from a ConfigMap still brings its type into the condition.
    let by_ref = ROLE_ASSIGNMENT.replace(
        "principal: {id: e4d3c2b1-a0f9-4e8d-b7c6-a5b4c3d2e1f0, type: User}",
        "principal: {idFrom: {configMapKeyRef: {name: identity, key: principalId}}, type: Group}",
    );
    let doc = from_stdin(&by_ref, &[]);
    assert!(
        parse(&condition(&doc)).unwrap().evaluate(&write("acdd72a7-3385-48ef-bd42-f606fba81ae7", Some("Group"))),
        "{doc:#}"
    );
}

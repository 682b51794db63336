//! The `plan`, `apply` and `demo` commands as a user runs them: the real binary, the emulator
//! on loopback, credentials from `AZURE_*` variables, exit codes a pipeline gates on.

#[path = "../support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iothub-access-operator"))
}

fn run(url: &str, args: &[&str]) -> Output {
    let mut cmd = bin();
    cmd.args(args)
        .args(["--arm-endpoint", url, "--authority-host", url])
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")));
    let out = cmd.output().expect("the binary runs");
    eprintln!(
        "$ iothub-access-operator {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The admin's allowed scope for these runs: the demo subscription (`apply` with none writes
/// nothing).
const ALLOWED: &str = "/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_then_apply_then_plan_again_gates_a_pipeline() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let url = emu.base_url();

    let plan = run(&url, &["plan", "-f", "examples", "--allowed-scope", ALLOWED]);
    assert_eq!(plan.status.code(), Some(2), "changes pending");
    let text = stdout(&plan);
    assert!(text.contains("CreateRoleDefinition"), "{text}");
    assert!(text.contains("CreateRoleAssignment"), "{text}");
    assert!(text.contains("PrincipalHoldsListKeys"), "the legacy Contributor grant is reported: {text}");
    assert_eq!(emu.stats().writes(), 0, "plan is read-only");

    let apply = run(&url, &["apply", "-f", "examples", "--allowed-scope", ALLOWED]);
    assert_eq!(apply.status.code(), Some(0), "Azure matches after apply");
    let hub = emu.snapshot().hubs.into_iter().find(|h| h.name == FLEET_HUB).unwrap();
    assert_eq!(hub.disable_local_auth, Some(true), "SAS denied on the fleet hub once a data role holder exists");

    let writes = emu.stats().writes();
    let again = run(&url, &["apply", "-f", "examples", "--allowed-scope", ALLOWED]);
    assert_eq!(again.status.code(), Some(0));
    assert!(stdout(&again).contains("Nothing to write"), "{}", stdout(&again));
    assert_eq!(emu.stats().writes(), writes, "a second apply writes nothing");

    let plan = run(&url, &["plan", "-f", "examples", "-o", "json", "--allowed-scope", ALLOWED]);
    assert_eq!(plan.status.code(), Some(0), "nothing to do");
    let v: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("JSON output");
    assert_eq!(v["summary"]["changes"], 0);
    assert_eq!(v["summary"]["resources"], 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_deny_exits_2_with_the_reason_and_writes_nothing() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let url = emu.base_url();
    run(&url, &["apply", "-f", "examples", "--allowed-scope", ALLOWED]);
    let writes = emu.stats().writes();
    let out = run(&url, &["apply", "-f", "data/demo/deny-factory-hub.yaml", "-o", "json", "--allowed-scope", ALLOWED]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let finding = &v["after"]["resources"][0]["findings"][0];
    assert_eq!(finding["reason"], "DpsLinked", "{v}");
    assert!(finding["resourceIds"][0].as_str().unwrap().contains("contoso-factory-dps"));
    assert_eq!(emu.stats().writes(), writes);
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_without_an_allowed_scope_writes_nothing_and_says_how_to_allow() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let url = emu.base_url();
    let out = run(&url, &["apply", "-f", "examples", "-o", "json"]);
    assert_eq!(out.status.code(), Some(2), "every resource refused");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    for r in v["after"]["resources"].as_array().unwrap() {
        assert_eq!(r["findings"][0]["reason"], "ScopeNotAllowed", "{r}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allowed-scope"), "says how to allow");
    assert_eq!(emu.stats().writes(), 0, "nothing written");
    // `plan` stays read-only and says the same.
    let plan = run(&url, &["plan", "-f", "examples"]);
    assert!(stdout(&plan).contains("ScopeNotAllowed"), "{}", stdout(&plan));
    assert_eq!(emu.stats().writes(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_manifests_change_nothing_and_exit_1() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let url = emu.base_url();
    let out = run(&url, &["apply", "-f", "tests/invalid/listkeys-in-data-actions.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("spec.dataActions"), "{}", stdout(&out));
    assert_eq!(emu.stats().total(), 0, "not even a read");
}

#[test]
fn the_demo_runs_end_to_end_as_the_default_command() {
    // No command: what `cargo run --release` (the README's run command) does.
    let out = bin().output().expect("demo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for needle in [
        "Step 1/6",
        "DpsLinked",
        "contoso-factory-dps",
        PLATFORM_SUB,
        "Azure writes during the second apply: 0",
        "Demo finished",
    ] {
        assert!(text.contains(needle), "missing '{needle}' in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standalone_emulator_serves_a_state_file_to_plan_against() {
    use std::io::{BufRead, BufReader};
    let mut child = bin()
        .args(["emulator", "--listen", "127.0.0.1:0", "--state", "data/demo/seed.yaml"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("emulator starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url = first.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    let plan = run(&url, &["plan", "-f", "examples", "--allowed-scope", ALLOWED]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(plan.status.code(), Some(2), "changes pending against the seeded state");
    // Against the seeded Azure: the grants are still to be created, and the Deny on the fleet hub
    // is refused for now (nobody holds a data role there before the first apply).
    let out = stdout(&plan);
    assert!(out.contains("CreateRoleAssignment"), "{out}");
    assert!(out.contains("WouldLockOut"), "{out}");
}

#[test]
fn run_without_a_cluster_says_what_is_missing() {
    let out = bin()
        .args(["run", "--metrics-listen", "127.0.0.1:0"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connecting to Kubernetes"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_and_apply_keep_to_the_allowed_scopes_and_say_when_none_are_given() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let url = emu.base_url();
    // Only the fleet hub is allowed: the factory hub's grant is refused, written nowhere.
    let fleet = hub_scope(FLEET_HUB);
    let files =
        ["-f", "examples/role-assignment-telemetry-reader.yaml", "-f", "examples/role-assignment-operators.yaml"];
    let apply = run(&url, &[&["apply"][..], &files[..], &["--allowed-scope", &fleet][..]].concat());
    assert_eq!(apply.status.code(), Some(2), "refused resources: exit 2");
    let text = stdout(&apply);
    assert!(text.contains("ScopeNotAllowed"), "{text}");
    assert!(!String::from_utf8_lossy(&apply.stderr).contains("no --allowed-scope"));
    assert!(
        !emu.snapshot().role_assignments.iter().any(|a| a.principal_id == TELEMETRY_SP),
        "the telemetry reader's grant on the factory hub was not written"
    );
    assert!(
        emu.snapshot()
            .role_assignments
            .iter()
            .any(|a| a.principal_id == OPS_GROUP && a.scope.eq_ignore_ascii_case(&fleet)),
        "the fleet hub's grant was"
    );
    // Without the flag every run says that nothing is allowed, and how to allow.
    let plan = run(&url, &["plan", "-f", "examples"]);
    assert!(String::from_utf8_lossy(&plan.stderr).contains("warning: no --allowed-scope given: nothing is written"));
}

/// `plan` judges the CLI's own identity too: holding Owner on the subscription it is told it may
/// assign any role; with nothing at all, what the manifests need is named as missing. Advisory:
/// the exit code is the plan's.
#[tokio::test(flavor = "multi_thread")]
async fn plan_reports_what_the_clis_identity_holds_beyond_and_lacks_for_the_manifests() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let url = emu.base_url();
    let sub = format!("/subscriptions/{SUB}");
    let args = ["plan", "-f", "examples/role-assignment-operators.yaml", "--allowed-scope", &sub, "-o", "json"];
    let plan = run(&url, &args);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&plan)).expect("one JSON document");
    assert_eq!(doc["identity"]["principalId"], CLIENT_ID);
    let findings = doc["identity"]["findings"].as_array().expect("findings").clone();
    assert!(
        findings.iter().any(|f| f["finding"] == "MissingPermission"
            && f["detail"].as_str().unwrap().contains("roleAssignments/write")
            && f["detail"].as_str().unwrap().contains("for a Group")),
        "{findings:?}"
    );
    assert!(!findings.iter().any(|f| f["finding"] == "OverPrivileged"), "{findings:?}");
    assert_eq!(plan.status.code(), Some(2), "changes pending, as without the check");

    emu.with_state(|s| {
        s.role_assignments.push(iothub_access_emulator::RoleAssignment {
            name: "0e000000-0000-4000-8000-0000000000e2".into(),
            scope: sub.clone(),
            role_definition_id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635".into(),
            principal_id: CLIENT_ID.into(),
            principal_type: Some("ServicePrincipal".into()),
            ..Default::default()
        })
    });
    let text = stdout(&run(&url, &args[..5]));
    assert!(text.contains(&format!("identity {CLIENT_ID}:")), "{text}");
    assert!(
        text.contains("OverPrivileged: 'Owner' at") && text.contains("may assign any role, Owner included"),
        "{text}"
    );
    assert!(!text.contains("MissingPermission"), "Owner lacks nothing: {text}");
}

/// Compare `actual` with the committed `tests/commands/golden/<name>`; `UPDATE_GOLDEN=1` rewrites
/// it instead (then review the diff).
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/commands/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if let Some((n, (want, got))) =
        expected.lines().chain([""]).zip(actual.lines().chain([""])).enumerate().find(|(_, (w, g))| w != g)
    {
        panic!(
            "{} differs at line {}:\n  golden: {want}\n  output: {got}\nif the change is meant, run with UPDATE_GOLDEN=1 and review the diff",
            path.display(),
            n + 1
        );
    }
    assert_eq!(expected, actual, "{} differs (line endings?)", path.display());
}

/// `plan -o markdown` (and `apply -o markdown`) as a pull-request comment shows them, byte for
/// byte against committed golden files. Nothing is normalized: the emulator's seed is fixed, the
/// names the operator gives are derived (UUID version 5), the order is the table's, and the
/// emulator's address appears nowhere. Exit codes are the table's.
#[tokio::test(flavor = "multi_thread")]
async fn plan_and_apply_as_markdown_match_the_golden_pull_request_comments() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let url = emu.base_url();
    let plan = run(&url, &["plan", "-f", "examples", "--allowed-scope", ALLOWED, "-o", "markdown"]);
    assert_eq!(plan.status.code(), Some(2), "changes pending");
    golden("plan-examples.md", &stdout(&plan));
    assert_eq!(emu.stats().writes(), 0, "plan is read-only");

    let apply = run(&url, &["apply", "-f", "examples", "--allowed-scope", ALLOWED, "-o", "markdown"]);
    assert_eq!(apply.status.code(), Some(0), "Azure matches after apply");
    golden("apply-examples.md", &stdout(&apply));

    let refused = ["apply", "-f", "data/demo/deny-factory-hub.yaml", "--allowed-scope", ALLOWED, "-o", "markdown"];
    let refused = run(&url, &refused);
    assert_eq!(refused.status.code(), Some(2), "refused");
    golden("apply-refused.md", &stdout(&refused));
}

/// `validate` judges names as the API server does for a custom resource (`metadata.name` a DNS
/// subdomain, `metadata.namespace` a DNS label), naming the field and what is allowed; a CI
/// workflow (no `apiVersion`) is not a manifest.
#[test]
fn validate_judges_names_as_the_api_server_does_and_skips_a_ci_workflow() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names = ["-f", "tests/invalid/name-capitals.yaml", "-f", "tests/invalid/name-too-long.yaml"];
    let out = bin().arg("validate").args(names).current_dir(root).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("IotHubRoleAssignment/iot/Fleet-Readers: metadata.name: 'Fleet-Readers' is not allowed: must be a DNS subdomain (RFC 1123)"),
        "{text}"
    );
    assert!(text.contains("metadata.name: is 254 characters long: must be at most 253 characters"), "{text}");

    let doc = std::fs::read_to_string(root.join("examples/role-assignment-telemetry-reader.yaml")).unwrap();
    let bad_namespace = Path::new(env!("CARGO_TARGET_TMPDIR")).join("namespace-not-a-dns-label.yaml");
    std::fs::write(&bad_namespace, doc.replace("namespace: iot-platform", "namespace: IoT_Platform")).unwrap();
    let out = bin().arg("validate").arg("-f").arg(&bad_namespace).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("metadata.namespace: 'IoT_Platform' is not allowed: must be a DNS label"),
        "{}",
        stdout(&out)
    );

    let out = bin().args(["validate", "-f", "examples", "-f", "docs/ci"]).current_dir(root).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains(" 0 invalid, 0 error(s)"), "{}", stdout(&out));
}

/// `principal.idFrom` in `validate`, `plan` and `apply`: read from the ConfigMap documents given
/// with the manifests; one that is not there is said plainly, never guessed.
#[tokio::test(flavor = "multi_thread")]
async fn plan_and_apply_read_a_principal_from_a_config_map_in_the_input_and_say_when_it_is_not_there() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("principal-refs");
    std::fs::create_dir_all(&dir).unwrap();
    let aso = std::fs::read_to_string(root.join("docs/examples/azure-service-operator.yaml")).unwrap();
    let ra = dir.join("assignment.yaml");
    std::fs::write(&ra, &aso).unwrap();
    let cm = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: telemetry-processor-identity\n  namespace: iot-platform\ndata:\n  principalId: {value}\n"
        )
    };
    let cm_file = dir.join("identity.yaml");

    // Without the ConfigMap: valid (it is read in the cluster), said so; plan cannot resolve it.
    let out = bin().args(["validate", "-f"]).arg(&ra).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("ConfigMap iot-platform/telemetry-processor-identity is not in the input"),
        "{}",
        stdout(&out)
    );
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let url = emu.base_url();
    let plan = run(&url, &["plan", "-f", ra.to_str().unwrap(), "--allowed-scope", ALLOWED]);
    assert_eq!(plan.status.code(), Some(1), "an error, not a guess");
    assert!(stdout(&plan).contains("telemetry-processor-identity is not in the input"), "{}", stdout(&plan));

    // A value that is not an object id: invalid, naming the ConfigMap and key.
    std::fs::write(&cm_file, cm("'not-a-guid'")).unwrap();
    let out = bin().args(["validate", "-f"]).arg(&ra).arg("-f").arg(&cm_file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("spec.principal.idFrom.configMapKeyRef: ConfigMap iot-platform/telemetry-processor-identity key principalId holds 10 characters that are not an object id"),
        "{}",
        stdout(&out)
    );

    // With it: granted to the principal it names.
    std::fs::write(&cm_file, cm(SYNC_SP)).unwrap();
    let apply =
        run(&url, &["apply", "-f", ra.to_str().unwrap(), "-f", cm_file.to_str().unwrap(), "--allowed-scope", ALLOWED]);
    assert_eq!(apply.status.code(), Some(0), "{}", stdout(&apply));
    assert!(
        emu.snapshot().role_assignments.iter().any(|a| a.principal_id == SYNC_SP
            && a.scope.eq_ignore_ascii_case(&hub_scope(FACTORY_HUB))
            && a.role_definition_id == "b447c946-2db7-41ec-983d-d8bf3b1c77e3"),
        "the ConfigMap's principal holds the role"
    );
}

//! Argo CD's view of the three kinds: the health checks and the `reconcile` resource action under
//! `deploy/argocd/resource_customizations/`, run by Argo CD's own Lua engine (its `util/lua`
//! package, built by `scripts/envtest install` as `argocd-lua-check` from
//! `scripts/envtest-go/argocd-lua`), both as the `argocd-cm` patch that `kubectl kustomize
//! deploy/argocd` renders installs them and as files built into an image; the patch holding
//! exactly the files; the health check judging every `Ready` reason as the operator's own
//! `progress()` does; and, on the real API server with the real operator, live objects judged as
//! Argo CD would judge them and the action's patch applied as Argo CD's API server sends it.
//!
//!     cargo test --test argocd             # the first run builds the Go tools (see README)
//!     UPDATE_GOLDEN=1 cargo test --test argocd argocd_cm   # rewrite deploy/argocd/argocd-cm.yaml

#[path = "../support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use iothub_access_operator::controller::status::{self, Progress};
use iothub_access_operator::crd::{IotHubCustomRole, IotHubRoleAssignment, IotHubSharedAccess};
use iothub_access_operator::reason::Reason;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::{Value, json};

use support::cluster::*;
use support::*;

const GROUP: &str = "iothubaccess.io";
const KINDS: [&str; 3] = ["IotHubCustomRole", "IotHubRoleAssignment", "IotHubSharedAccess"];
const TOKEN_ANNOTATION: &str = "iothubaccess.io/reconcile-requested-at";

fn argocd_dir() -> PathBuf {
    repo().join("deploy/argocd")
}

fn customizations() -> PathBuf {
    argocd_dir().join("resource_customizations")
}

fn kind_dir(kind: &str) -> PathBuf {
    customizations().join(GROUP).join(kind)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `argocd-lua-check`, built (once per test binary) by `scripts/envtest install`; `None` (after
/// saying why) without Go outside CI, a failure under `CI=true`.
fn runner() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let go = Command::new("go").arg("version").output().is_ok_and(|o| o.status.success());
        if !go && !in_ci() {
            eprintln!(
                "SKIPPED: Go is not installed, so scripts/envtest cannot build Argo CD's Lua engine \
                 (install Go 1.26 or newer; CI=true makes this a failure)"
            );
            return None;
        }
        let script = repo().join("scripts/envtest");
        let built = Command::new(&script).arg("install").status().expect("scripts/envtest install runs");
        assert!(built.success(), "scripts/envtest install failed ({built})");
        let bin = Command::new(&script).arg("bin").output().expect("scripts/envtest bin runs");
        let bin = PathBuf::from(String::from_utf8_lossy(&bin.stdout).trim()).join("argocd-lua-check");
        assert!(bin.exists(), "{} was not built", bin.display());
        Some(bin)
    })
    .as_deref()
}

/// Run `argocd-lua-check -kustomization deploy/argocd ARGS` with `stdin`; (success, stdout, stderr).
fn check(bin: &Path, args: &[&str], stdin: &Value) -> (bool, String, String) {
    let mut child = Command::new(bin)
        .arg("-kustomization")
        .arg(argocd_dir())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("argocd-lua-check runs");
    child.stdin.take().expect("stdin").write_all(stdin.to_string().as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("argocd-lua-check output");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Argo CD's verdict on each object, by `Kind/name`: (status, message) of the health script, and
/// what Argo CD shows (the same but for an object being deleted).
#[derive(Debug, Clone, PartialEq)]
struct Health {
    status: String,
    message: String,
    shown: (String, String),
}

fn health(bin: &Path, objects: &[Value]) -> BTreeMap<String, Health> {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let (ok, out, err) = check(bin, &["health"], &list);
    assert!(ok, "argocd-lua-check health: {err}");
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("one JSON object a line");
            let id = v["object"].as_str().unwrap_or_default();
            let mut parts = id.split('/');
            let (kind, _ns, name) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                format!("{kind}/{name}"),
                Health {
                    status: text(&v["status"]),
                    message: text(&v["message"]),
                    shown: (text(&v["argocd"]["status"]), text(&v["argocd"]["message"])),
                },
            )
        })
        .collect()
}

fn discover(bin: &Path, object: &Value) -> Value {
    let (ok, out, err) = check(bin, &["discover"], object);
    assert!(ok, "argocd-lua-check discover: {err}");
    serde_json::from_str(&out).expect("discover prints JSON")
}

/// The `reconcile` action as Argo CD's API server runs it: the new object and the merge patch it
/// sends.
fn reconcile_action(bin: &Path, object: &Value) -> (Value, Value) {
    let (ok, out, err) = check(bin, &["action", "reconcile"], object);
    assert!(ok, "argocd-lua-check action reconcile: {err}");
    let v: Value = serde_json::from_str(&out).expect("action prints JSON");
    assert_eq!(v["operation"], "patch", "{v}");
    (v["object"].clone(), v["mergePatch"].clone())
}

// ---- the scripts and their tests ---------------------------------------------------------------

#[test]
fn every_health_and_action_test_passes_in_argo_cds_lua_engine() {
    let Some(bin) = runner() else { return };
    let root = customizations();
    let (ok, out, err) = check(bin, &["-customizations", path_str(&root), "test"], &json!({}));
    println!("{out}");
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(ok && failed.is_empty(), "Argo CD's Lua engine disagrees with the tests:\n{}\n{err}", failed.join("\n"));
    // Every case of every kind ran, both ways (argocd-cm and the files).
    for kind in KINDS {
        let cases = |file: &str, key: &str| -> usize {
            let v: Value = serde_yaml::from_str(&read(&kind_dir(kind).join(file))).expect(file);
            v[key].as_array().map_or(0, Vec::len)
        };
        let health = cases("health_test.yaml", "tests");
        let discovery = cases("actions/action_test.yaml", "discoveryTests");
        let actions = cases("actions/action_test.yaml", "actionTests");
        let ran =
            |prefix: &str| out.lines().filter(|l| l.starts_with(&format!("ok   {prefix} {GROUP}/{kind} "))).count();
        assert_eq!(ran("health"), health, "{kind}: health cases run");
        assert_eq!(ran("discovery"), discovery, "{kind}: discovery cases run");
        assert_eq!(ran("action"), actions, "{kind}: action cases run");
        assert!(health >= 8 && discovery >= 3 && actions >= 2, "{kind}: every state has a case");
    }
}

/// The health cases each kind must have, by the file names under `testdata/` (one per state the
/// README describes).
#[test]
fn each_kind_tests_every_state_with_its_own_objects() {
    let states = [
        "progressing_no_status",
        "progressing_new_generation",
        "progressing_reconciling",
        "progressing_deleting",
        "degraded_stalled",
        "degraded_refused_without_stalled",
        "healthy_ready",
        "healthy_observe_pending",
        "suspended_skip",
    ];
    for kind in KINDS {
        let tests: Value = serde_yaml::from_str(&read(&kind_dir(kind).join("health_test.yaml"))).unwrap();
        let inputs: BTreeSet<String> =
            tests["tests"].as_array().unwrap().iter().map(|t| t["inputPath"].as_str().unwrap().to_string()).collect();
        for state in states {
            let path = format!("testdata/{state}.yaml");
            assert!(inputs.contains(&path), "{kind}/health_test.yaml has no case {path}");
            let obj: Value = serde_yaml::from_str(&read(&kind_dir(kind).join(&path))).unwrap();
            assert_eq!(obj["kind"], kind, "{kind}/{path}");
            assert_eq!(obj["apiVersion"], "iothubaccess.io/v1alpha1", "{kind}/{path}");
        }
    }
}

/// The three kinds share one status convention, so one script each: a fix reaches all three.
#[test]
fn the_three_kinds_run_the_same_scripts() {
    for file in ["health.lua", "actions/discovery.lua", "actions/reconcile/action.lua"] {
        let first = read(&kind_dir(KINDS[0]).join(file));
        for kind in &KINDS[1..] {
            assert_eq!(read(&kind_dir(kind).join(file)), first, "{kind}/{file} differs from {}/{file}", KINDS[0]);
        }
    }
}

/// `argocd-cm.yaml` as generated from the files: the `resource.customizations.health.<group>_<Kind>`
/// key holds `health.lua`, the `.actions.` key the discovery script and every action.
fn argocd_cm() -> String {
    fn block(text: &str, indent: usize) -> String {
        let pad = " ".repeat(indent);
        text.lines().map(|l| if l.is_empty() { "\n".to_string() } else { format!("{pad}{l}\n") }).collect()
    }
    let mut out = String::from(
        "# The argocd-cm keys that install the iothub-access-operator's Argo CD health checks and its\n\
         # \"reconcile\" resource action (README.md, \"Running the operator\"). Generated from\n\
         # resource_customizations/ by `cargo test --test argocd`: edit the .lua files there, then run\n\
         # `UPDATE_GOLDEN=1 cargo test --test argocd argocd_cm`.\n\
         #\n\
         #   kubectl apply --server-side --field-manager=iothub-access-operator -k deploy/argocd\n\
         #\n\
         # adds these keys to the argocd-cm of the namespace argocd and leaves its others alone; in a\n\
         # kustomization that installs Argo CD, use this file as a patch (patches: - path: argocd-cm.yaml).\n\
         apiVersion: v1\n\
         kind: ConfigMap\n\
         metadata:\n\
         \x20 name: argocd-cm\n\
         \x20 namespace: argocd\n\
         \x20 labels:\n\
         \x20   app.kubernetes.io/name: argocd-cm\n\
         \x20   app.kubernetes.io/part-of: argocd\n\
         data:\n",
    );
    for kind in KINDS {
        let dir = kind_dir(kind);
        out += &format!("  resource.customizations.health.{GROUP}_{kind}: |\n");
        out += &block(&read(&dir.join("health.lua")), 4);
        out += &format!("  resource.customizations.actions.{GROUP}_{kind}: |\n");
        out += "    discovery.lua: |\n";
        out += &block(&read(&dir.join("actions/discovery.lua")), 6);
        out += "    definitions:\n";
        for name in actions_of(kind) {
            out += &format!("      - name: {name}\n        action.lua: |\n");
            out += &block(&read(&dir.join("actions").join(&name).join("action.lua")), 10);
        }
    }
    out
}

/// The actions of a kind: the folders under `actions/` that hold an `action.lua`.
fn actions_of(kind: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(kind_dir(kind).join("actions"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("action.lua").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn argocd_cm_holds_exactly_the_scripts() {
    let path = argocd_dir().join("argocd-cm.yaml");
    let want = argocd_cm();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let got = read(&path);
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "deploy/argocd/argocd-cm.yaml is not what resource_customizations/ holds (first difference at line {}); \
             run `UPDATE_GOLDEN=1 cargo test --test argocd argocd_cm` and review the diff",
            line + 1
        );
    }
    // Parsed back as Argo CD's settings manager reads it: each key holds exactly the file.
    let cm: Value = serde_yaml::from_str(&got).expect("argocd-cm.yaml is YAML");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    let data = cm["data"].as_object().unwrap();
    assert_eq!(data.len(), 2 * KINDS.len(), "only the health and actions keys of the three kinds: {:?}", data.keys());
    for kind in KINDS {
        let dir = kind_dir(kind);
        assert_eq!(data[&format!("resource.customizations.health.{GROUP}_{kind}")], read(&dir.join("health.lua")));
        let actions: Value =
            serde_yaml::from_str(data[&format!("resource.customizations.actions.{GROUP}_{kind}")].as_str().unwrap())
                .unwrap();
        assert_eq!(actions["discovery.lua"], read(&dir.join("actions/discovery.lua")));
        let defs = actions["definitions"].as_array().unwrap();
        assert_eq!(defs.len(), actions_of(kind).len());
        for (def, name) in defs.iter().zip(actions_of(kind)) {
            assert_eq!(def["name"], name.as_str());
            assert_eq!(def["action.lua"], read(&dir.join("actions").join(&name).join("action.lua")));
        }
    }
    // The kustomization renders it (`kubectl kustomize deploy/argocd`; argocd-lua-check renders
    // it with the same engine in the other tests).
    let k: Value = serde_yaml::from_str(&read(&argocd_dir().join("Kustomization"))).unwrap();
    assert_eq!(k["resources"], json!(["argocd-cm.yaml"]));
}

// ---- the health check against the operator's own status code -----------------------------------

/// The reasons `src/reason.rs` listed when this was written; the judgement of every one is
/// checked through the operator's own `progress()`. A reason added later is judged by the source
/// check below (health.lua's list of Working reasons is progress()'s), and named when it runs.
const ALL_REASONS: [Reason; 45] = [
    Reason::DpsLinked,
    Reason::DpsCheckFailed,
    Reason::DpsIdentityLacksRole,
    Reason::DeviceUpdateLinked,
    Reason::PolicyDenied,
    Reason::DelegationDenied,
    Reason::OverriddenByPolicy,
    Reason::DenyReverted,
    Reason::WouldLockOut,
    Reason::HubNotFound,
    Reason::RoleNameTaken,
    Reason::RoleNotGrantable,
    Reason::ScopeNotAllowed,
    Reason::RoleDefinitionHasAssignments,
    Reason::BroaderScopeThanHub,
    Reason::PrincipalHoldsListKeys,
    Reason::AdoptedExisting,
    Reason::Orphaned,
    Reason::HandedOver,
    Reason::TakenOver,
    Reason::Reconciled,
    Reason::InvalidSpec,
    Reason::WaitingForCustomRole,
    Reason::PendingChanges,
    Reason::PrincipalRefNotFound,
    Reason::PrincipalNotFound,
    Reason::Throttled,
    Reason::AzureError,
    Reason::KubernetesError,
    Reason::InUse,
    Reason::Deleting,
    Reason::LeastPrivilege,
    Reason::UnknownReconcileMode,
    Reason::ScopesUnknown,
    Reason::Progressing,
    Reason::Written,
    Reason::WriteFailed,
    Reason::DriftRepaired,
    Reason::Drifted,
    Reason::LeftInAzure,
    Reason::DeletionRefused,
    Reason::NotLeader,
    Reason::Conflict,
    Reason::GrantRevoked,
    Reason::CustomRoleOfAnotherNamespace,
];

fn object(kind: &str, name: &str, conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> Value {
    json!({
        "apiVersion": "iothubaccess.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "iot-platform", "generation": 2},
        "spec": {},
        "status": {"observedGeneration": 2, "conditions": conditions},
    })
}

/// For every reason, a status written as the controller's `finish()` writes it (`Ready`, then
/// `Reconciling`/`Stalled` from `progress()`), and one with `Ready` alone (written by something
/// else, or by an older operator): Argo CD says Healthy for Done, Progressing for Working and
/// Degraded for Stalled, with the condition's message.
#[test]
fn health_lua_judges_every_reason_as_the_operators_progress_does() {
    // The source: progress()'s Working reasons are health.lua's `working` list, and PendingChanges
    // (observe mode) is its one Done reason.
    let status_rs = include_str!("../../src/controller/status.rs");
    let body = status_rs.split("pub fn progress(").nth(1).expect("src/controller/status.rs has progress()");
    let (done, rest) = body.split_once("=> Progress::Done,\n").expect("progress(): a Done arm");
    assert!(done.ends_with("Reason::PendingChanges "), "progress(): PendingChanges is its one Done reason: {done}");
    let (arm, _) = rest.split_once("=> Progress::Working").expect("progress(): a Working arm");
    let reason = regex::Regex::new(r"Reason::(\w+)").unwrap();
    let in_rust: BTreeSet<&str> = reason.captures_iter(arm).map(|c| c.get(1).unwrap().as_str()).collect();
    let lua = read(&kind_dir(KINDS[0]).join("health.lua"));
    let table = lua.split("local working = {").nth(1).and_then(|t| t.split('}').next()).expect("health.lua: working");
    let entry = regex::Regex::new(r"(?m)^\s*(\w+) = true,$").unwrap();
    let in_lua: BTreeSet<&str> = entry.captures_iter(table).map(|c| c.get(1).unwrap().as_str()).collect();
    assert_eq!(in_lua, in_rust, "health.lua's `working` reasons are not progress()'s Working ones");
    assert!(lua.contains(r#"ready.reason == "PendingChanges""#));

    let listed: BTreeSet<&str> = ALL_REASONS.iter().map(|r| r.as_str()).collect();
    let named = regex::Regex::new(r#"Reason::(\w+) => "(\w+)""#).unwrap();
    for m in named.captures_iter(include_str!("../../src/reason.rs")) {
        let name = m.get(2).unwrap().as_str();
        if !listed.contains(name) {
            println!("Reason::{name} is newer than ALL_REASONS: judged through the source check only");
        }
    }

    let Some(bin) = runner() else { return };
    let mut objects = Vec::new();
    let mut want = BTreeMap::new();
    for (i, why) in ALL_REASONS.iter().copied().enumerate() {
        let kind = KINDS[i % KINDS.len()];
        for ready in [true, false] {
            if ready && why != Reason::Reconciled {
                continue;
            }
            let message = format!("{why}: what the operator says");
            let expected = match status::progress(ready, why) {
                Progress::Done => "Healthy",
                Progress::Working => "Progressing",
                Progress::Stalled => "Degraded",
            };
            let mut written = Vec::new();
            status::set_condition(&mut written, status::READY, ready, why.as_str(), &message, Some(2));
            status::set_progress(&mut written, status::progress(ready, why), why, &message, Some(2));
            let name = format!("as-written-{}", why.as_str().to_lowercase());
            objects.push(object(kind, &name, &written));
            want.insert(format!("{kind}/{name}"), (expected, message.clone()));

            let mut ready_only = Vec::new();
            status::set_condition(&mut ready_only, status::READY, ready, why.as_str(), &message, Some(2));
            let name = format!("ready-only-{}", why.as_str().to_lowercase());
            objects.push(object(kind, &name, &ready_only));
            want.insert(format!("{kind}/{name}"), (expected, message));
        }
    }
    let got = health(bin, &objects);
    let wrong: Vec<String> = want
        .iter()
        .filter(|(k, (s, m))| got.get(*k).is_none_or(|h| h.status != *s || h.message != *m))
        .map(|(k, (s, m))| format!("{k}: want {s} {m:?}, got {:?}", got.get(k)))
        .collect();
    assert!(wrong.is_empty(), "health.lua and progress() disagree:\n{}", wrong.join("\n"));
}

/// Two requests within one second still give two different tokens (the same token twice would
/// do nothing), and the action changes nothing but the annotation.
#[test]
fn a_second_reconcile_request_in_the_same_second_gets_a_new_token() {
    let Some(bin) = runner() else { return };
    let obj: Value =
        serde_yaml::from_str(&read(&kind_dir("IotHubSharedAccess").join("actions/testdata/shared_access.yaml")))
            .unwrap();
    for attempt in 0.. {
        let (first, patch) = reconcile_action(bin, &obj);
        let token = first["metadata"]["annotations"][TOKEN_ANNOTATION].as_str().unwrap().to_string();
        assert_eq!(patch, json!({"metadata": {"annotations": {TOKEN_ANNOTATION: token}}}));
        let (second, patch) = reconcile_action(bin, &first);
        let again = second["metadata"]["annotations"][TOKEN_ANNOTATION].as_str().unwrap().to_string();
        assert_ne!(again, token, "a new token each time");
        assert_eq!(patch, json!({"metadata": {"annotations": {TOKEN_ANNOTATION: again}}}));
        if again == format!("{token}#2") {
            // And a third request in that second alternates back: still different.
            let (third, _) = reconcile_action(bin, &second);
            assert_ne!(third["metadata"]["annotations"][TOKEN_ANNOTATION].as_str().unwrap(), again);
            return;
        }
        // The second run fell in the next second: try again.
        assert!(attempt < 10, "never two runs within one second: {token}, {again}");
    }
}

// ---- live objects on the real API server --------------------------------------------------------

/// The objects of the three kinds in `ns`, as the API server returns them (raw JSON, every
/// field, as Argo CD's cluster cache holds them).
async fn live(client: &Client, ns: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for ar in [
        ApiResource::erase::<IotHubCustomRole>(&()),
        ApiResource::erase::<IotHubRoleAssignment>(&()),
        ApiResource::erase::<IotHubSharedAccess>(&()),
    ] {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        for o in api.list(&ListParams::default()).await.expect("list") {
            all.push(serde_json::to_value(o).expect("json"));
        }
    }
    all
}

async fn live_one<K: Resource<DynamicType = ()>>(client: &Client, ns: &str, name: &str) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<K>(&()));
    serde_json::to_value(api.get(name).await.expect("get")).unwrap()
}

fn ready_message(v: &Value) -> String {
    condition(v, "Ready").and_then(|c| c["message"].as_str()).unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn live_objects_are_judged_by_health_lua_and_the_reconcile_action_patches_only_its_annotation() {
    let Some(bin) = runner() else { return };
    let Some((server, client, ns)) = setup("argocd").await else { return };
    let emu = emulator(DEMO_SEED, |_| {}).await;

    // Applied before the operator runs: no status yet, Progressing.
    apply(&client, &ns, &manifests(&["examples"])).await;
    let verdicts = health(bin, &live(&client, &ns).await);
    assert_eq!(verdicts.len(), 5, "{verdicts:?}");
    for (k, h) in &verdicts {
        assert_eq!(
            (h.status.as_str(), h.message.as_str()),
            ("Progressing", "Waiting for the operator to reconcile"),
            "{k}"
        );
    }

    // Once Ready: Healthy, with the Ready condition's message.
    let op = Operator::start(server, &emu.base_url(), &ns, "argocd", &["--resync-interval", "3s"]);
    kubectl_wait_ready(server, &client, &ns, 120).await;
    let objects = live(&client, &ns).await;
    let verdicts = health(bin, &objects);
    for o in &objects {
        let h = &verdicts[&key(o)];
        assert_eq!(h.status, "Healthy", "{}: {h:?}", key(o));
        assert!(h.message.starts_with(&ready_message(o)), "{}: {h:?}", key(o));
        assert_eq!(h.shown, (h.status.clone(), h.message.clone()), "Argo CD shows the script's verdict");
    }
    std::fs::write(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("argocd-live-ready.json"),
        serde_json::to_string_pretty(&objects).unwrap(),
    )
    .unwrap();

    // The refused Deny on the DPS-linked hub: Degraded, with the condition's message.
    apply(&client, &ns, &manifests(&["data/demo/deny-factory-hub.yaml"])).await;
    let refused = eventually(
        "the Deny on the DPS-linked hub refused",
        60,
        || live_one::<IotHubSharedAccess>(&client, &ns, "factory-hub-entra-only"),
        |v: &Value| condition(v, "Ready").is_some_and(|c| c["reason"] == "DpsLinked"),
    )
    .await;
    let h = &health(bin, std::slice::from_ref(&refused))["IotHubSharedAccess/factory-hub-entra-only"];
    assert_eq!(h.status, "Degraded", "{h:?}");
    assert_eq!(h.message, condition(&refused, "Stalled").unwrap()["message"], "{h:?}");
    assert!(h.message.contains("DPS") && h.message.contains(FACTORY_HUB), "the message says why: {h:?}");
    std::fs::write(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("argocd-live-refused.json"),
        serde_json::to_string_pretty(&refused).unwrap(),
    )
    .unwrap();

    // The reconcile action, offered, run and patched as Argo CD's API server does it: only the
    // annotation changes.
    let target = live_one::<IotHubRoleAssignment>(&client, &ns, "telemetry-processor-reader").await;
    assert_eq!(
        discover(bin, &target),
        json!([{"name": "reconcile", "displayName": "Reconcile now", "iconClass": "fa fa-fw fa-sync"}])
    );
    let (_, patch) = reconcile_action(bin, &target);
    let token =
        patch["metadata"]["annotations"][TOKEN_ANNOTATION].as_str().expect("the patch sets the token").to_string();
    assert_eq!(patch, json!({"metadata": {"annotations": {TOKEN_ANNOTATION: token}}}), "nothing else is patched");
    Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns)
        .patch("telemetry-processor-reader", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("the API server takes Argo CD's merge patch");
    let patched = live_one::<IotHubRoleAssignment>(&client, &ns, "telemetry-processor-reader").await;
    assert_eq!(patched["metadata"]["annotations"][TOKEN_ANNOTATION], token.as_str());
    assert_eq!(
        patched["metadata"]["generation"], target["metadata"]["generation"],
        "an annotation is no new generation"
    );
    // Where the operator reports the token it handled, it does so (and stays Healthy).
    let handles_tokens = iothub_access_operator::crd::all()
        .iter()
        .any(|(_, c)| serde_json::to_string(c).unwrap_or_default().contains("lastHandledReconcileAt"));
    if handles_tokens {
        let handled = eventually(
            "status.lastHandledReconcileAt holds the token",
            60,
            || live_one::<IotHubRoleAssignment>(&client, &ns, "telemetry-processor-reader"),
            |v: &Value| v["status"]["lastHandledReconcileAt"] == token.as_str() && ready(v),
        )
        .await;
        assert_eq!(health(bin, &[handled])["IotHubRoleAssignment/telemetry-processor-reader"].status, "Healthy");
    }

    // The install command's server-side apply adds the keys to an existing argocd-cm and leaves
    // the keys Argo CD's own install wrote alone (here in the test's namespace, not `argocd`).
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let installed: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "argocd-cm", "labels": {"app.kubernetes.io/part-of": "argocd"}},
        "data": {"url": "https://argocd.example.com", "resource.customizations.health.apps_Deployment": "return {}"},
    }))
    .unwrap();
    cms.create(&Default::default(), &installed).await.expect("Argo CD's argocd-cm");
    let mut ours: ConfigMap = serde_yaml::from_str(&read(&argocd_dir().join("argocd-cm.yaml"))).unwrap();
    ours.metadata.namespace = Some(ns.clone());
    cms.patch("argocd-cm", &PatchParams::apply("iothub-access-operator"), &Patch::Apply(&ours))
        .await
        .expect("server-side apply without conflicts");
    let merged = cms.get("argocd-cm").await.unwrap().data.unwrap_or_default();
    assert_eq!(merged.len(), 2 + 2 * KINDS.len(), "{:?}", merged.keys());
    assert_eq!(merged["url"], "https://argocd.example.com");
    assert_eq!(
        merged[&format!("resource.customizations.health.{GROUP}_IotHubSharedAccess")],
        read(&kind_dir("IotHubSharedAccess").join("health.lua"))
    );

    // Deleting, with the operator stopped (its finalizer stays): Progressing, the action disabled;
    // Argo CD itself shows "Pending deletion" before any script runs.
    drop(op);
    Api::<IotHubSharedAccess>::namespaced(client.clone(), &ns)
        .delete("factory-hub-entra-only", &DeleteParams::default())
        .await
        .expect("delete");
    let deleting = live_one::<IotHubSharedAccess>(&client, &ns, "factory-hub-entra-only").await;
    assert!(deleting["metadata"]["deletionTimestamp"].is_string(), "{deleting}");
    let h = &health(bin, std::slice::from_ref(&deleting))["IotHubSharedAccess/factory-hub-entra-only"];
    assert_eq!(h.status, "Progressing", "{h:?}");
    assert!(h.message.starts_with("Deleting"), "{h:?}");
    assert_eq!(h.shown, ("Progressing".to_string(), "Pending deletion".to_string()));
    assert_eq!(discover(bin, &deleting)[0]["disabled"], true, "no reconcile while deleting");

    // The operator back: the finalizer runs and the object goes.
    let _op = Operator::start(server, &emu.base_url(), &ns, "argocd", &["--resync-interval", "3s"]);
    let api = Api::<IotHubSharedAccess>::namespaced(client.clone(), &ns);
    eventually(
        "the deleted resource gone",
        60,
        || async { api.get_opt("factory-hub-entra-only").await.expect("get").is_none() },
        |gone| *gone,
    )
    .await;
}

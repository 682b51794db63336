//! The Helm chart (charts/iothub-access-operator) and the plain manifests (deploy/) as a cluster
//! admin meets them: rendered and linted by the real Helm engine (helm-python-sdk, installed into
//! `<target>/helm-venv` on first use; see helm.rs), parsed back and checked for what matters once
//! installed: least-privilege RBAC, a hardened pod, the operator flags the values turn into.

mod helm;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use helm::{Rendered, chart_dir, lint, parse_yaml_documents, render, render_in, repo_root};

const NAME: &str = "iothub-access-operator";
const CRD_FILES: [&str; 3] = ["iothubcustomroles.yaml", "iothubroleassignments.yaml", "iothubsharedaccesses.yaml"];
const SCOPE_A: &str = "/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg-iot-prod";
const SCOPE_B: &str = "/subscriptions/1a2b3c4d-0000-4000-8000-000000000001";
const CLIENT_ID: &str = "2b1a0f9e-8d7c-4b6a-9e5d-4c3b2a1f0e9d";
const TENANT_ID: &str = "3c6f1d2e-8a4b-4f5c-9d7e-1a2b3c4d5e6f";

/// The whole of what the operator may do in the cluster, per the ClusterRole.
fn expected_cluster_rules() -> Value {
    json!([
        {
            "apiGroups": ["iothubaccess.io"],
            "resources": ["iothubroleassignments", "iothubcustomroles", "iothubsharedaccesses"],
            "verbs": ["get", "list", "watch", "patch", "update"]
        },
        {
            "apiGroups": ["iothubaccess.io"],
            "resources": ["iothubroleassignments/status", "iothubcustomroles/status", "iothubsharedaccesses/status"],
            "verbs": ["get", "patch", "update"]
        },
        { "apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"] },
        { "apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"] },
        { "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"] }
    ])
}

/// Leader election, per the Role in the operator's own namespace.
fn expected_lease_rules() -> Value {
    json!([{ "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update", "patch"] }])
}

fn render_ok(values: Value) -> Rendered {
    match render(&values) {
        Ok(rendered) => rendered,
        Err(e) => panic!("the chart does not render with {values}:\n{}: {}", e.kind, e.message),
    }
}

fn defaults() -> Rendered {
    render_ok(json!({}))
}

fn deployment(r: &Rendered) -> &Value {
    r.get("Deployment", NAME)
}

fn container(r: &Rendered) -> &Value {
    let containers = deployment(r)["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn args(r: &Rendered) -> Vec<String> {
    container(r)["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("string arg").to_owned()).collect()
}

/// The value after each occurrence of `flag`.
fn flag_values(args: &[String], flag: &str) -> Vec<String> {
    args.iter()
        .enumerate()
        .filter(|(_, a)| *a == flag)
        .map(|(i, _)| args.get(i + 1).cloned().unwrap_or_default())
        .collect()
}

fn env_var<'a>(r: &'a Rendered, name: &str) -> Option<&'a Value> {
    container(r)["env"].as_array().and_then(|env| env.iter().find(|e| e["name"] == name))
}

/// Every manifest under deploy/ (not its crds/), parsed.
fn deploy_objects() -> Vec<Value> {
    let dir = repo_root().join("deploy");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("deploy/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| parse_yaml_documents(&fs::read_to_string(f).expect("readable"), &f.display().to_string()))
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn assert_same_bytes(generated: &Path, copy: &Path, resync: &str) {
    let want = fs::read(generated).unwrap_or_else(|e| panic!("{}: {e}", generated.display()));
    let got = fs::read(copy).unwrap_or_else(|e| panic!("{} is missing ({e}); resync with: {resync}", copy.display()));
    assert!(
        want == got,
        "{} differs from the generated {}; resync with: {resync}",
        copy.display(),
        generated.display()
    );
}

// ---------------------------------------------------------------------------------------------

#[test]
fn helm_lint_strict_passes_with_default_and_full_values() {
    let full = json!({
        "replicas": 3,
        "allowedScopes": [SCOPE_A, SCOPE_B],
        "azure": {
            "cloud": "AzureUSGovernment",
            "armEndpoint": "https://management.usgovcloudapi.net",
            "authorityHost": "https://login.microsoftonline.us",
            "tenantId": TENANT_ID,
            "clientId": CLIENT_ID,
            "workloadIdentity": { "enabled": false },
            "clientSecret": { "existingSecret": "iothub-access-azure", "key": "secret" }
        },
        "watchNamespace": "iot",
        "metrics": { "serviceMonitor": { "enabled": true, "labels": { "release": "prometheus" } } },
        "extraArgs": ["--reconcile-concurrency", "4"],
        "extraEnv": [{ "name": "RUST_LOG", "value": "info" }],
        "podLabels": { "team": "iot" },
        "podAnnotations": { "example.com/owner": "iot" },
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": { "kubernetes.io/os": "linux" },
        "tolerations": [{ "key": "dedicated", "operator": "Exists", "effect": "NoSchedule" }]
    });
    for values in [json!({}), full] {
        let report = lint(&values);
        assert_eq!(report["total_charts_linted"], 1, "{report:#}");
        let problems: Vec<&Value> = report["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["severity"].as_i64().unwrap_or(3) >= 2)
            .collect();
        assert!(problems.is_empty(), "helm lint --strict with {values} reports:\n{problems:#?}");
        assert_eq!(report["errors"], json!([]), "{report:#}");
    }
}

#[test]
fn default_install_creates_the_three_crds() {
    let r = defaults();
    let mut names = BTreeSet::new();
    for (file, data) in &r.crds {
        let docs = parse_yaml_documents(data, file);
        assert_eq!(docs.len(), 1, "{file}: one CRD per file");
        let crd = &docs[0];
        assert_eq!(crd["kind"], "CustomResourceDefinition", "{file}");
        assert_eq!(crd["spec"]["group"], "iothubaccess.io", "{file}");
        assert_eq!(crd["spec"]["scope"], "Namespaced", "{file}");
        let versions: Vec<&Value> =
            crd["spec"]["versions"].as_array().expect("versions").iter().map(|v| &v["name"]).collect();
        assert!(versions.contains(&&json!("v1alpha1")), "{file}: serves v1alpha1");
        names.insert(crd["metadata"]["name"].as_str().expect("name").to_owned());
    }
    let want: BTreeSet<String> = ["iothubroleassignments", "iothubcustomroles", "iothubsharedaccesses"]
        .iter()
        .map(|p| format!("{p}.iothubaccess.io"))
        .collect();
    assert_eq!(names, want);
    // CRDs come from crds/ only (installed before the templates, never deleted by an uninstall).
    assert!(r.all("CustomResourceDefinition").is_empty(), "no CRD among the templates");
}

#[test]
fn chart_and_deploy_crds_are_byte_identical_to_the_generated_crds() {
    let generated = repo_root().join("crds");
    let mut on_disk: Vec<String> = fs::read_dir(&generated)
        .expect("crds/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, CRD_FILES, "crds/ holds other files than the chart and deploy/ ship");
    for file in CRD_FILES {
        assert_same_bytes(
            &generated.join(file),
            &chart_dir().join("crds").join(file),
            "cp crds/*.yaml charts/iothub-access-operator/crds/",
        );
        assert_same_bytes(
            &generated.join(file),
            &repo_root().join("deploy/crds").join(file),
            "cp crds/*.yaml deploy/crds/",
        );
    }
    for dir in [chart_dir().join("crds"), repo_root().join("deploy/crds")] {
        let extra: Vec<String> = fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml") && !CRD_FILES.contains(&n.as_str()))
            .collect();
        assert!(extra.is_empty(), "{} holds CRDs no longer generated: {extra:?}", dir.display());
    }
}

#[test]
fn default_rbac_is_exactly_least_privilege() {
    let r = defaults();
    assert_eq!(r.all("ClusterRole").len(), 1, "{:?}", r.kinds());
    assert_eq!(r.all("Role").len(), 1, "{:?}", r.kinds());
    let cluster_role = r.get("ClusterRole", NAME);
    assert_eq!(cluster_role["rules"], expected_cluster_rules());
    let role = r.get("Role", "iothub-access-operator-leader-election");
    assert_eq!(role["metadata"]["namespace"], NAME, "leases only in the operator's namespace");
    assert_eq!(role["rules"], expected_lease_rules());

    for rule in cluster_role["rules"].as_array().unwrap().iter().chain(role["rules"].as_array().unwrap()) {
        for field in ["apiGroups", "resources", "verbs"] {
            for item in rule[field].as_array().expect(field) {
                let item = item.as_str().expect("string");
                assert!(!item.contains('*'), "wildcard {field} {item:?} in {rule}");
                assert!(item != "secrets", "{item} access in {rule}");
                if item == "configmaps" {
                    assert_eq!(rule["verbs"], json!(["get", "list", "watch"]), "ConfigMaps are only read: {rule}");
                }
                assert!(
                    !["delete", "deletecollection", "escalate", "bind", "impersonate"].contains(&item),
                    "{item} in {rule}"
                );
            }
        }
    }

    // Bound to the operator's ServiceAccount, in the release namespace.
    let sa = r.get("ServiceAccount", NAME);
    assert_eq!(sa["metadata"]["namespace"], NAME);
    let subject = json!([{ "kind": "ServiceAccount", "name": NAME, "namespace": NAME }]);
    let crb = r.get("ClusterRoleBinding", NAME);
    assert_eq!(crb["roleRef"], json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME }));
    assert_eq!(crb["subjects"], subject);
    let rb = r.get("RoleBinding", "iothub-access-operator-leader-election");
    assert_eq!(rb["roleRef"]["name"], "iothub-access-operator-leader-election");
    assert_eq!(rb["subjects"], subject);
    assert_eq!(deployment(&r)["spec"]["template"]["spec"]["serviceAccountName"], NAME);
}

#[test]
fn default_pod_is_hardened_and_probed() {
    let r = defaults();
    let pod = &deployment(&r)["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");

    let c = container(&r);
    assert_eq!(c["image"], "ghcr.io/iothub-access-operator/iothub-access-operator:0.1.0", "tag defaults to appVersion");
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert!(sc["capabilities"]["add"].is_null(), "no capability added");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");

    assert_eq!(c["ports"], json!([{ "name": "metrics", "containerPort": 8080, "protocol": "TCP" }]));
    assert_eq!(c["livenessProbe"]["httpGet"], json!({ "path": "/healthz", "port": "metrics" }));
    assert_eq!(c["readinessProbe"]["httpGet"], json!({ "path": "/readyz", "port": "metrics" }));
    assert_eq!(flag_values(&args(&r), "--metrics-listen"), ["0.0.0.0:8080"]);
    assert_eq!(
        c["resources"],
        json!({ "requests": { "cpu": "50m", "memory": "64Mi" }, "limits": { "memory": "256Mi" } })
    );

    // The metrics Service reaches the named port; the ServiceMonitor is opt-in.
    let svc = r.get("Service", "iothub-access-operator-metrics");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(svc["spec"]["selector"], deployment(&r)["spec"]["selector"]["matchLabels"]);
    assert!(r.all("ServiceMonitor").is_empty(), "ServiceMonitor is off by default");
}

#[test]
fn default_runs_two_replicas_with_leader_election() {
    let r = defaults();
    let d = deployment(&r);
    assert_eq!(d["spec"]["replicas"], 2);
    let args = args(&r);
    assert_eq!(args[0], "run", "the image's entrypoint is the binary; args start with the subcommand");
    assert!(args.contains(&"--leader-elect".to_owned()), "{args:?}");
    assert_eq!(flag_values(&args, "--leader-election-id"), [NAME]);
    assert_eq!(flag_values(&args, "--log-format"), ["json"]);
    assert_eq!(flag_values(&args, "--resync-interval"), ["10m"]);
    assert_eq!(flag_values(&args, "--interlock-recheck"), ["30s"]);
    assert!(flag_values(&args, "--dps-api-version").is_empty(), "picked at run time unless pinned");
    for var in ["POD_NAME", "POD_NAMESPACE"] {
        let env = env_var(&r, var).unwrap_or_else(|| panic!("{var} is set"));
        assert!(env["valueFrom"]["fieldRef"]["fieldPath"].is_string(), "{var} from the downward API");
    }
    let pdb = r.get("PodDisruptionBudget", NAME);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], d["spec"]["selector"]["matchLabels"]);
}

#[test]
fn single_replica_runs_without_leader_election_unless_asked() {
    let r = render_ok(json!({ "replicas": 1 }));
    assert_eq!(deployment(&r)["spec"]["replicas"], 1);
    assert!(!args(&r).contains(&"--leader-elect".to_owned()), "{:?}", args(&r));
    assert!(r.all("Role").is_empty(), "no lease permissions without leader election");
    assert!(r.all("PodDisruptionBudget").is_empty(), "a PDB on one replica would block node drains");

    let r = render_ok(json!({ "replicas": 1, "leaderElection": { "enabled": true, "id": "my-lease" } }));
    assert!(args(&r).contains(&"--leader-elect".to_owned()));
    assert_eq!(flag_values(&args(&r), "--leader-election-id"), ["my-lease"]);
    assert_eq!(r.get("Role", "iothub-access-operator-leader-election")["rules"], expected_lease_rules());
}

#[test]
fn each_allowed_scope_becomes_one_allowed_scope_flag() {
    let r = render_ok(json!({ "allowedScopes": [SCOPE_A, SCOPE_B] }));
    let args = args(&r);
    assert_eq!(flag_values(&args, "--allowed-scope"), [SCOPE_A, SCOPE_B]);
    assert!(!r.notes.contains("WARNING: allowedScopes IS EMPTY"), "{}", r.notes);
    assert!(r.notes.contains(SCOPE_A), "{}", r.notes);

    assert!(flag_values(&self::args(&defaults()), "--allowed-scope").is_empty());
}

#[test]
fn empty_allowed_scopes_warns_loudly_after_install() {
    let r = defaults();
    assert!(
        r.notes.contains("WARNING: allowedScopes IS EMPTY. THE OPERATOR WILL REFUSE EVERY RESOURCE."),
        "NOTES.txt:\n{}",
        r.notes
    );
    assert!(r.notes.contains("--set 'allowedScopes={"), "NOTES.txt says how to fix it:\n{}", r.notes);
}

#[test]
fn workload_identity_labels_the_pod_and_annotates_the_service_account() {
    let r = render_ok(json!({ "azure": { "clientId": CLIENT_ID, "tenantId": TENANT_ID } }));
    let labels = &deployment(&r)["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["azure.workload.identity/use"], "true");
    let annotations = &r.get("ServiceAccount", NAME)["metadata"]["annotations"];
    assert_eq!(annotations["azure.workload.identity/client-id"], CLIENT_ID);
    assert_eq!(annotations["azure.workload.identity/tenant-id"], TENANT_ID);
    // The webhook injects the identity; the chart does not set it twice.
    assert!(env_var(&r, "AZURE_CLIENT_ID").is_none());
    assert!(env_var(&r, "AZURE_CLIENT_SECRET").is_none());

    // Defaults: workload identity on, but no client id yet, and NOTES.txt says so.
    let r = defaults();
    assert_eq!(deployment(&r)["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"], "true");
    assert!(r.notes.contains("azure.clientId is empty"), "{}", r.notes);

    // Off: no label, no annotation; a managed identity's client id goes to AZURE_CLIENT_ID.
    let r = render_ok(json!({ "azure": { "clientId": CLIENT_ID, "workloadIdentity": { "enabled": false } } }));
    assert!(deployment(&r)["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"].is_null());
    assert!(r.get("ServiceAccount", NAME)["metadata"]["annotations"].is_null());
    assert_eq!(env_var(&r, "AZURE_CLIENT_ID").expect("AZURE_CLIENT_ID")["value"], CLIENT_ID);
}

#[test]
fn client_secret_comes_from_the_existing_secret() {
    let r = render_ok(json!({ "azure": {
        "clientId": CLIENT_ID,
        "tenantId": TENANT_ID,
        "workloadIdentity": { "enabled": false },
        "clientSecret": { "existingSecret": "iothub-access-azure", "key": "secret" }
    }}));
    let secret = env_var(&r, "AZURE_CLIENT_SECRET").expect("AZURE_CLIENT_SECRET");
    assert_eq!(secret["valueFrom"]["secretKeyRef"], json!({ "name": "iothub-access-azure", "key": "secret" }));
    assert!(secret["value"].is_null(), "the secret never appears in the manifest");
    assert_eq!(env_var(&r, "AZURE_CLIENT_ID").expect("AZURE_CLIENT_ID")["value"], CLIENT_ID);
    assert_eq!(env_var(&r, "AZURE_TENANT_ID").expect("AZURE_TENANT_ID")["value"], TENANT_ID);
    assert!(r.all("Secret").is_empty(), "the chart never creates Secrets");
    assert!(deployment(&r)["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"].is_null());

    // With workload identity still on, the two credentials would compete: refused, with the fix.
    let err = render(&json!({ "azure": {
        "clientId": CLIENT_ID,
        "tenantId": TENANT_ID,
        "clientSecret": { "existingSecret": "iothub-access-azure" }
    }}))
    .err()
    .expect("client secret with workload identity is refused");
    assert!(err.message.contains("azure.workloadIdentity.enabled=false"), "{err:?}");

    let err = render(&json!({ "azure": {
        "workloadIdentity": { "enabled": false },
        "clientSecret": { "existingSecret": "iothub-access-azure" }
    }}))
    .err()
    .expect("client secret without a client id is refused");
    assert!(err.message.contains("azure.clientId is required"), "{err:?}");
}

#[test]
fn sovereign_cloud_becomes_the_cloud_flag() {
    let r = render_ok(json!({ "azure": {
        "cloud": "AzureChinaCloud",
        "armEndpoint": "https://management.chinacloudapi.cn",
        "authorityHost": "https://login.chinacloudapi.cn"
    }}));
    let args = args(&r);
    assert_eq!(flag_values(&args, "--cloud"), ["AzureChinaCloud"]);
    assert_eq!(flag_values(&args, "--arm-endpoint"), ["https://management.chinacloudapi.cn"]);
    assert_eq!(
        env_var(&r, "AZURE_AUTHORITY_HOST").expect("AZURE_AUTHORITY_HOST")["value"],
        "https://login.chinacloudapi.cn"
    );

    assert_eq!(flag_values(&self::args(&defaults()), "--cloud"), ["AzurePublicCloud"]);
}

#[test]
fn other_values_reach_the_deployment() {
    let r = render_in(
        &json!({
            "image": { "tag": "0.2.0-rc.1", "pullPolicy": "Always" },
            "logFormat": "text",
            "resyncInterval": "90s",
            "interlockRecheck": "1m",
            "azure": { "dpsApiVersion": "2026-08-01", "iothubApiVersion": "2023-06-30" },
            "watchNamespace": "iot",
            "extraArgs": ["--reconcile-concurrency", "4"],
            "extraEnv": [{ "name": "RUST_LOG", "value": "debug" }],
            "podLabels": { "team": "iot" },
            "podAnnotations": { "example.com/owner": "iot" },
            "priorityClassName": "system-cluster-critical",
            "metrics": { "serviceMonitor": { "enabled": true, "labels": { "release": "prometheus" } } }
        }),
        "platform",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let c = container(&r);
    assert_eq!(c["image"], "ghcr.io/iothub-access-operator/iothub-access-operator:0.2.0-rc.1");
    assert_eq!(c["imagePullPolicy"], "Always");
    let args = args(&r);
    assert_eq!(flag_values(&args, "--log-format"), ["text"]);
    assert_eq!(flag_values(&args, "--resync-interval"), ["90s"]);
    assert_eq!(flag_values(&args, "--interlock-recheck"), ["1m"]);
    assert_eq!(flag_values(&args, "--dps-api-version"), ["2026-08-01"]);
    assert_eq!(flag_values(&args, "--iothub-api-version"), ["2023-06-30"]);
    assert_eq!(flag_values(&args, "--watch-namespace"), ["iot"]);
    assert_eq!(flag_values(&args, "--reconcile-concurrency"), ["4"]);
    assert_eq!(env_var(&r, "RUST_LOG").expect("RUST_LOG")["value"], "debug");
    let template = &deployment(&r)["spec"]["template"];
    assert_eq!(template["metadata"]["labels"]["team"], "iot");
    assert_eq!(template["metadata"]["annotations"]["example.com/owner"], "iot");
    assert_eq!(template["spec"]["priorityClassName"], "system-cluster-critical");
    for o in &r.objects {
        if o["kind"] != "ClusterRole" && o["kind"] != "ClusterRoleBinding" {
            assert_eq!(o["metadata"]["namespace"], "platform", "{} in the release namespace", o["kind"]);
        }
    }
    let sm = r.get("ServiceMonitor", NAME);
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(r.get("ClusterRoleBinding", NAME)["subjects"][0]["namespace"], "platform");
}

#[test]
fn values_schema_rejects_wrong_values_at_render_time() {
    let cases = [
        (json!({ "allowedScopes": SCOPE_A }), "/allowedScopes"),
        (json!({ "allowedScopes": ["subscriptions/x/resourceGroups/y"] }), "/allowedScopes/0"),
        (json!({ "allowedScopes": [42] }), "/allowedScopes/0"),
        (json!({ "allowedScope": [SCOPE_A] }), "allowedScope"),
        (json!({ "replicas": "2" }), "/replicas"),
        (json!({ "azure": { "cloud": "AzureGermanCloud" } }), "/azure/cloud"),
        (json!({ "azure": { "workloadIdentity": { "enabled": "yes" } } }), "/azure/workloadIdentity/enabled"),
        (json!({ "logFormat": "xml" }), "/logFormat"),
        (json!({ "resyncInterval": "10 minutes" }), "/resyncInterval"),
        (json!({ "interlockRecheck": "30" }), "/interlockRecheck"),
        (json!({ "azure": { "dpsApiVersion": "latest" } }), "/azure/dpsApiVersion"),
        (json!({ "metrics": { "serviceMonitor": { "enabled": "true" } } }), "/metrics/serviceMonitor/enabled"),
    ];
    for (values, path) in cases {
        match render(&values) {
            Ok(_) => panic!("values {values} were accepted"),
            Err(e) => {
                assert_eq!(e.kind, "HelmValuesError", "{values}: {e:?}");
                assert!(e.message.contains("values don't meet the specifications of the schema"), "{values}: {e:?}");
                assert!(e.message.contains(path), "{values}: the error names {path}: {}", e.message);
            }
        }
    }
}

#[test]
fn deploy_manifests_match_the_default_chart() {
    let chart = defaults();
    let plain = deploy_objects();

    let ns = find(&plain, "Namespace", NAME);
    assert_eq!(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted");
    for o in &plain {
        if !["Namespace", "ClusterRole", "ClusterRoleBinding"].contains(&o["kind"].as_str().unwrap_or_default()) {
            assert_eq!(o["metadata"]["namespace"], NAME, "{} {} names its namespace", o["kind"], o["metadata"]["name"]);
        }
    }

    // RBAC: identical rules, roleRefs and subjects.
    assert_eq!(find(&plain, "ClusterRole", NAME)["rules"], chart.get("ClusterRole", NAME)["rules"]);
    assert_eq!(find(&plain, "ClusterRole", NAME)["rules"], expected_cluster_rules());
    let role = "iothub-access-operator-leader-election";
    assert_eq!(find(&plain, "Role", role)["rules"], chart.get("Role", role)["rules"]);
    for (kind, name) in [("ClusterRoleBinding", NAME), ("RoleBinding", role)] {
        assert_eq!(find(&plain, kind, name)["roleRef"], chart.get(kind, name)["roleRef"], "{kind}");
        assert_eq!(find(&plain, kind, name)["subjects"], chart.get(kind, name)["subjects"], "{kind}");
    }
    let kinds = |objs: Vec<&Value>| -> BTreeSet<String> {
        objs.iter()
            .map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()))
            .collect()
    };
    let plain_kinds = kinds(plain.iter().filter(|o| o["kind"] != "Namespace").collect());
    assert_eq!(plain_kinds, kinds(chart.objects.iter().collect()), "deploy/ and the chart create the same objects");

    // The Deployment: same pod apart from Helm's bookkeeping labels.
    let plain_d = find(&plain, "Deployment", NAME);
    let chart_d = deployment(&chart);
    assert_eq!(plain_d["spec"]["replicas"], chart_d["spec"]["replicas"]);
    assert_eq!(plain_d["spec"]["selector"], chart_d["spec"]["selector"]);
    let mut chart_pod = chart_d["spec"]["template"].clone();
    let labels = chart_pod["metadata"]["labels"].as_object_mut().expect("labels");
    labels.remove("helm.sh/chart");
    labels.remove("app.kubernetes.io/managed-by");
    assert_eq!(plain_d["spec"]["template"], chart_pod, "deploy/30-deployment.yaml drifted from the chart's Deployment");
    assert!(
        fs::read_to_string(repo_root().join("deploy/30-deployment.yaml")).unwrap().contains("# - --allowed-scope"),
        "deploy/ shows where to set the allowed scope"
    );

    for (kind, name) in [("Service", "iothub-access-operator-metrics"), ("PodDisruptionBudget", NAME)] {
        assert_eq!(find(&plain, kind, name)["spec"], chart.get(kind, name)["spec"], "{kind}");
    }
    assert_eq!(
        find(&plain, "ServiceAccount", NAME)["automountServiceAccountToken"],
        chart.get("ServiceAccount", NAME)["automountServiceAccountToken"]
    );
}

#[test]
fn deploy_kustomization_lists_every_manifest_and_the_crds_stand_apart() {
    let dir = repo_root().join("deploy");
    let kustomization =
        &parse_yaml_documents(&fs::read_to_string(dir.join("Kustomization")).unwrap(), "Kustomization")[0];
    assert_eq!(kustomization["namespace"], NAME);
    let listed: BTreeSet<String> =
        kustomization["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
    let want: BTreeSet<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    assert_eq!(listed, want);
    assert!(!listed.contains("crds"), "`kubectl delete -k deploy/` must not delete the CRDs (and every resource)");

    let crds =
        &parse_yaml_documents(&fs::read_to_string(dir.join("crds/Kustomization")).unwrap(), "crds/Kustomization")[0];
    let listed: Vec<&str> = crds["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(listed, CRD_FILES);
}

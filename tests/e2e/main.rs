//! End to end against a real cluster: the real `iothub-access-operator run` binary, the real
//! Kubernetes API (kind, k3d, AKS...) and the emulator on loopback. Ignored by default; run with
//!
//!     kind create cluster        # or k3d cluster create, or any cluster you may create CRDs in
//!     TEST_KUBECONFIG=$HOME/.kube/config cargo test --test e2e -- --ignored --nocapture
//!
//! It installs `crds/`, applies `examples/` into a fresh namespace, waits for `Ready` (with
//! `kubectl wait` when kubectl is on PATH, else by polling the same condition), checks Azure in
//! the emulator, deletes the resources and checks the cleanup. Two replicas run with leader
//! election on a Lease in the test namespace. The operator runs on this machine
//! (not in the cluster), so it reaches the emulator on 127.0.0.1.

#[path = "../support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iothub_access_operator::crd::{self, IotHubCustomRole, IotHubRoleAssignment, IotHubSharedAccess};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use serde_json::Value;

use support::*;

struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn client(path: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("TEST_KUBECONFIG is readable");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("kubeconfig");
    Client::try_from(config).expect("client")
}

fn ready(v: &Value) -> bool {
    v["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        && v["status"]["observedGeneration"] == v["metadata"]["generation"]
}

async fn wait_ready(client: &Client, ns: &str, kubeconfig: &str) {
    let kubectl = Command::new("kubectl").arg("version").arg("--client").output().is_ok_and(|o| o.status.success());
    if kubectl {
        let out = Command::new("kubectl")
            .args([
                "wait",
                "--for=condition=Ready",
                "--timeout=180s",
                "-n",
                ns,
                "iothubaccess",
                "--all",
                "--kubeconfig",
                kubeconfig,
            ])
            .output()
            .expect("kubectl runs");
        assert!(out.status.success(), "kubectl wait: {}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut all = Vec::new();
        for plural in ["iothubroleassignments", "iothubcustomroles", "iothubsharedaccesses"] {
            let url = format!("/apis/iothubaccess.io/v1alpha1/namespaces/{ns}/{plural}");
            let list: Value = client.request(http::Request::get(url).body(Vec::new()).unwrap()).await.expect("list");
            all.extend(list["items"].as_array().cloned().unwrap_or_default());
        }
        if !all.is_empty() && all.iter().all(ready) {
            return;
        }
        assert!(Instant::now() < deadline, "not Ready in time: {all:#?}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real cluster: set TEST_KUBECONFIG and run with --ignored"]
async fn examples_become_ready_and_clean_up_on_a_real_cluster() {
    let kubeconfig = std::env::var("TEST_KUBECONFIG").expect("set TEST_KUBECONFIG to a kubeconfig of a test cluster");
    iothub_access_operator::install_crypto_provider();
    let client = client(&kubeconfig).await;
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let url = emu.base_url();

    // CRDs, as `kubectl apply -f crds/` would (server-side apply).
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let ssa = PatchParams::apply("iothub-access-e2e").force();
    for (_, c) in crd::all() {
        crds.patch(&c.name_any(), &ssa, &Patch::Apply(&c)).await.expect("CRD applied");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let ns = format!("iothub-e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let nsobj: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    namespaces.patch(&ns, &ssa, &Patch::Apply(&nsobj)).await.expect("namespace");

    // Two replicas with leader election: only the holder of the Lease reconciles.
    let spawn = |id: &str| {
        Operator(
            Command::new(env!("CARGO_BIN_EXE_iothub-access-operator"))
                .args(["run", "--arm-endpoint", &url, "--authority-host", &url, "--metrics-listen", "127.0.0.1:0"])
                .args([
                    "--allowed-scope",
                    &format!("/subscriptions/{SUB}"),
                    "--resync-interval",
                    "30s",
                    "--watch-namespace",
                    &ns,
                ])
                .args(["--leader-elect", "--leader-election-namespace", &ns])
                .env("POD_NAME", id)
                .env("KUBECONFIG", &kubeconfig)
                .env("AZURE_TENANT_ID", TENANT)
                .env("AZURE_CLIENT_ID", CLIENT_ID)
                .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
                .stdout(Stdio::inherit())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("operator starts"),
        )
    };
    let _replicas = [spawn("replica-a"), spawn("replica-b")];

    // The examples, into the test namespace.
    let manifests = iothub_access_operator::manifest::load(&[std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples"
    ))]);
    assert!(manifests.errors.is_empty());
    for doc in manifests.valid_resources() {
        use iothub_access_operator::manifest::Resource;
        match &doc.resource {
            Resource::CustomRole(r) => {
                let mut r = r.clone();
                r.metadata.namespace = Some(ns.clone());
                Api::<IotHubCustomRole>::namespaced(client.clone(), &ns)
                    .patch(&r.name_any(), &ssa, &Patch::Apply(&r))
                    .await
                    .expect("applied");
            }
            Resource::RoleAssignment(r) => {
                let mut r = r.clone();
                r.metadata.namespace = Some(ns.clone());
                Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns)
                    .patch(&r.name_any(), &ssa, &Patch::Apply(&r))
                    .await
                    .expect("applied");
            }
            Resource::SharedAccess(r) => {
                let mut r = r.clone();
                r.metadata.namespace = Some(ns.clone());
                Api::<IotHubSharedAccess>::namespaced(client.clone(), &ns)
                    .patch(&r.name_any(), &ssa, &Patch::Apply(&r))
                    .await
                    .expect("applied");
            }
        }
    }

    wait_ready(&client, &ns, &kubeconfig).await;
    let snap = emu.snapshot();
    assert!(snap.role_assignments.iter().any(|a| a.principal_id == TELEMETRY_SP), "telemetry reader granted");
    assert!(snap.role_definitions.iter().any(|d| d.role_name == "IoT Hub Device Registry Reader"));
    assert_eq!(snap.hubs.iter().find(|h| h.name == FLEET_HUB).unwrap().disable_local_auth, Some(true));

    // Delete everything; the finalizers clean Azure up.
    let dp = DeleteParams::default();
    Api::<IotHubSharedAccess>::namespaced(client.clone(), &ns)
        .delete_collection(&dp, &Default::default())
        .await
        .unwrap();
    Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns)
        .delete_collection(&dp, &Default::default())
        .await
        .unwrap();
    Api::<IotHubCustomRole>::namespaced(client.clone(), &ns).delete_collection(&dp, &Default::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let left = Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len()
            + Api::<IotHubCustomRole>::namespaced(client.clone(), &ns)
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .len();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "resources not deleted in time");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let snap = emu.snapshot();
    assert!(!snap.role_assignments.iter().any(|a| a.principal_id == TELEMETRY_SP), "owned assignment deleted");
    assert!(
        !snap.role_definitions.iter().any(|d| d.role_name == "IoT Hub Device Registry Reader"),
        "owned role deleted"
    );
    assert!(
        snap.role_assignments.iter().any(|a| a.name == "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"),
        "not owned: untouched"
    );
    let _ = namespaces.delete(&ns, &dp).await;
}

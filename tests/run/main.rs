//! The real `iothub-access-operator run` binary as a process: the in-memory Kubernetes API of the
//! controller tests served over HTTP (LIST and streaming WATCH included) through a kubeconfig, and
//! the emulator as Azure. It checks the wiring the reconciler tests cannot: watches start the
//! reconciles, statuses and Events are written, the resync repairs drift, deletion cleans up,
//! `/metrics` answers, and SIGTERM stops the process cleanly.

#[allow(dead_code)]
#[path = "../controller/fake_api.rs"]
mod fake_api;
#[path = "../support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use fake_api::FakeApi;
use iothub_access_operator::crd::{IotHubCustomRole, IotHubRoleAssignment, IotHubSharedAccess};
use serde_json::{Value, json};

use support::*;

const NS: &str = "iot-platform";

/// Where a collection request points: (plural, namespace).
fn collection(segs: &[&str]) -> Option<(String, Option<String>)> {
    match segs {
        ["api", "v1", plural] => Some((plural.to_string(), None)),
        ["apis", _, _, plural] => Some((plural.to_string(), None)),
        ["apis", _, _, "namespaces", ns, plural] => Some((plural.to_string(), Some(ns.to_string()))),
        _ => None,
    }
}

fn matches(key_plural: &str, obj: &Value, plural: &str, ns: &Option<String>) -> bool {
    key_plural == plural && ns.as_deref().is_none_or(|n| obj["metadata"]["namespace"] == n)
}

async fn serve(api: FakeApi) -> SocketAddr {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let api = api.clone();
        async move { handle(api, req).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn handle(api: FakeApi, req: axum::extract::Request) -> axum::response::Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if req.method() == http::Method::GET
        && let Some((plural, ns)) = collection(&segs)
    {
        let param = |k: &str| query.split('&').find_map(|p| p.strip_prefix(&format!("{k}="))).map(str::to_string);
        if param("watch").is_some_and(|w| w == "true" || w == "1") {
            let since: u64 = param("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
            return watch(api, plural, ns, since);
        }
        let s = api.0.lock().unwrap();
        let items: Vec<Value> =
            s.objects.iter().filter(|(k, v)| matches(&k.0, v, &plural, &ns)).map(|(_, v)| v.clone()).collect();
        let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": s.resource_version().to_string()}, "items": items});
        return axum::response::Response::builder()
            .header("content-type", "application/json")
            .body(axum::body::Body::from(list.to_string()))
            .expect("response");
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let kreq = http::Request::from_parts(parts, kube::client::Body::from(bytes.to_vec()));
    let resp = api.handle(kreq).await;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect_bytes().await.unwrap_or_default();
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// A streaming WATCH: every change after `since`, then new ones as they happen.
fn watch(api: FakeApi, plural: String, ns: Option<String>, since: u64) -> axum::response::Response {
    let start = {
        let s = api.0.lock().unwrap();
        s.changes
            .iter()
            .position(|(_, _, o)| {
                o["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) > since
            })
            .unwrap_or(s.changes.len())
    };
    let stream = futures::stream::unfold((api, start), move |(api, mut idx)| {
        let plural = plural.clone();
        let ns = ns.clone();
        async move {
            loop {
                let (lines, notify) = {
                    let s = api.0.lock().unwrap();
                    let lines: Vec<String> = s.changes[idx..]
                        .iter()
                        .filter(|(p, _, o)| matches(p, o, &plural, &ns))
                        .map(|(_, t, o)| format!("{}\n", json!({"type": t, "object": o})))
                        .collect();
                    idx = s.changes.len();
                    (lines, s.changed.clone())
                };
                if !lines.is_empty() {
                    return Some((Ok::<_, Infallible>(Bytes::from(lines.concat())), (api, idx)));
                }
                let _ = tokio::time::timeout(Duration::from_millis(100), notify.notified()).await;
            }
        }
    });
    axum::response::Response::builder()
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(stream))
        .expect("response")
}

struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

fn ready(v: &Value) -> bool {
    v["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

async fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_process_reconciles_resyncs_cleans_up_and_stops_on_sigterm() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let url = emu.base_url();
    let api = FakeApi::default();
    let manifests = iothub_access_operator::manifest::load(&[std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples"
    ))]);
    assert!(manifests.errors.is_empty());
    for doc in manifests.valid_resources() {
        use iothub_access_operator::manifest::Resource;
        match &doc.resource {
            Resource::CustomRole(r) => api.put(r),
            Resource::RoleAssignment(r) => api.put(r),
            Resource::SharedAccess(r) => api.put(r),
        };
    }
    // The namespace, as a cluster has it: the guardrail reads its annotations and refuses to
    // decide until it has seen it. (The default --instance-id, kube-system's UID, is covered by
    // the tests on the real API server; this in-memory API serves no single-object GETs.)
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": NS}})).expect("namespace");
    api.put(&ns);
    let addr = serve(api.clone()).await;
    let dir = std::env::temp_dir().join(format!("iothub-access-run-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: 'http://{addr}'}}}}]\nusers: [{{name: fake, user: {{}}}}]\ncontexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: default}}}}]\ncurrent-context: fake\n"
        ),
    )
    .unwrap();
    let metrics = free_port();
    let mut operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_iothub-access-operator"))
            .args(["run", "--arm-endpoint", &url, "--authority-host", &url])
            .args(["--allowed-scope", &format!("/subscriptions/{SUB}"), "--resync-interval", "2s"])
            .args(["--instance-id", "run-test"])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics}"), "--log-format", "json"])
            .env("KUBECONFIG", &kubeconfig)
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("operator starts"),
    );

    // Every example becomes Ready (the Deny on the fleet hub once the operators' role exists).
    let all_ready = || {
        let s = api.0.lock().unwrap();
        let ours: Vec<&Value> = s.objects.iter().filter(|(k, _)| k.0 != "namespaces").map(|(_, v)| v).collect();
        ours.len() == 5 && ours.into_iter().all(ready)
    };
    eventually("all five examples Ready", 60, all_ready).await;
    let snap = emu.snapshot();
    assert!(snap.role_assignments.iter().any(|a| a.principal_id == TELEMETRY_SP));
    assert_eq!(snap.hubs.iter().find(|h| h.name == FLEET_HUB).unwrap().disable_local_auth, Some(true));
    assert!(api.events().iter().any(|(r, n)| r == "Written" && n.starts_with("CreateRoleAssignment")));

    // Metrics.
    let text = reqwest::get(format!("http://127.0.0.1:{metrics}/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains("iothub_access_reconciles_total{kind=\"IotHubRoleAssignment\",outcome=\"ok\"}"), "{text}");
    assert!(
        text.contains("iothub_access_arm_requests_total{operation=\"RoleAssignments_Create\",code=\"201\"}"),
        "{text}"
    );
    assert_eq!(reqwest::get(format!("http://127.0.0.1:{metrics}/readyz")).await.unwrap().status().as_u16(), 200);

    // Drift in the portal: the periodic resync (2 s here) repairs it.
    let name = snap.role_assignments.iter().find(|a| a.principal_id == TELEMETRY_SP).unwrap().name.clone();
    assert!(emu.with_state(|s| s.remove_assignment(&name)));
    eventually("the deleted assignment recreated by the resync", 20, || {
        emu.snapshot().role_assignments.iter().any(|a| a.principal_id == TELEMETRY_SP)
    })
    .await;
    eventually("a DriftRepaired Event", 5, || api.events().iter().any(|(r, _)| r == "DriftRepaired")).await;

    // Deletion: the finalizer cleans Azure up, then lets the object go.
    api.delete::<IotHubRoleAssignment>(NS, "telemetry-processor-reader");
    eventually("the resource deleted", 20, || !api.exists::<IotHubRoleAssignment>(NS, "telemetry-processor-reader"))
        .await;
    assert!(
        !emu.snapshot().role_assignments.iter().any(|a| a.principal_id == TELEMETRY_SP),
        "owned assignment deleted"
    );
    assert!(api.exists::<IotHubCustomRole>(NS, "device-registry-reader"));
    assert!(api.exists::<IotHubSharedAccess>(NS, "fleet-hub-entra-only"));

    // SIGTERM: a clean, prompt exit.
    let pid = operator.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    loop {
        if let Some(status) = operator.0.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not stop within 10 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

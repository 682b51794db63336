//! The pieces of the tests against a real API server (`tests/cluster`) and of its benchmark
//! (`benches/cluster.rs`): the real operator binary as a process, server-side apply of manifests,
//! readiness as `kubectl wait` and the kstatus library judge it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iothub_access_operator::crd::{IotHubCustomRole, IotHubRoleAssignment, IotHubSharedAccess};
use iothub_access_operator::manifest::Resource;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::envtest::EnvTest;
use super::*;

/// The real operator binary as a process; killed when dropped. Its output goes to a log file.
pub struct Operator {
    child: Child,
    pub identity: String,
    pub log: PathBuf,
}

impl Operator {
    /// `run` against `server`, Azure = the emulator at `azure_url`, watching namespace `ns` only.
    pub fn start(server: &EnvTest, azure_url: &str, ns: &str, identity: &str, extra: &[&str]) -> Operator {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("operator-{ns}-{identity}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_iothub-access-operator"))
            .args(["run", "--arm-endpoint", azure_url, "--authority-host", azure_url])
            .args(["--metrics-listen", "127.0.0.1:0", "--log-format", "json", "--watch-namespace", ns])
            .args(["--allowed-scope", &format!("/subscriptions/{SUB}")])
            .args(extra)
            .env("KUBECONFIG", &server.kubeconfig)
            .env("POD_NAME", identity)
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
            .env("RUST_LOG", "info")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("the operator starts");
        Operator { child, identity: identity.into(), log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{signal} {}", self.pid());
    }

    /// `kill -9` and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The resources of the manifests at `paths` (files or folders).
pub fn manifests(paths: &[&str]) -> Vec<Resource> {
    let paths: Vec<PathBuf> = paths.iter().map(|p| repo().join(p)).collect();
    let m = iothub_access_operator::manifest::load(&paths);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    m.valid_resources().map(|d| d.resource.clone()).collect()
}

async fn apply_typed<K>(client: &Client, ns: &str, r: &K)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let mut r = r.clone();
    r.meta_mut().namespace = Some(ns.into());
    r.meta_mut().resource_version = None;
    Api::<K>::namespaced(client.clone(), ns)
        .patch(&r.name_any(), &PatchParams::apply("iothub-access-tests").force(), &Patch::Apply(&r))
        .await
        .unwrap_or_else(|e| panic!("applying {}: {e}", r.name_any()));
}

/// Server-side apply `resources` into `ns`, as `kubectl apply --server-side` would.
pub async fn apply(client: &Client, ns: &str, resources: &[Resource]) {
    for r in resources {
        match r {
            Resource::CustomRole(r) => apply_typed(client, ns, r).await,
            Resource::RoleAssignment(r) => apply_typed(client, ns, r).await,
            Resource::SharedAccess(r) => apply_typed(client, ns, r).await,
        }
    }
}

/// Every resource of the three kinds in `ns`, as the API server returns them (JSON).
pub async fn objects(client: &Client, ns: &str) -> Vec<Value> {
    let lp = ListParams::default();
    let mut all = Vec::new();
    for r in Api::<IotHubCustomRole>::namespaced(client.clone(), ns).list(&lp).await.expect("list") {
        all.push(serde_json::to_value(r).expect("json"));
    }
    for r in Api::<IotHubRoleAssignment>::namespaced(client.clone(), ns).list(&lp).await.expect("list") {
        all.push(serde_json::to_value(r).expect("json"));
    }
    for r in Api::<IotHubSharedAccess>::namespaced(client.clone(), ns).list(&lp).await.expect("list") {
        all.push(serde_json::to_value(r).expect("json"));
    }
    all
}

/// `Ready=True` for the current generation.
pub fn ready(v: &Value) -> bool {
    condition(v, "Ready").is_some_and(|c| c["status"] == "True")
        && v["status"]["observedGeneration"] == v["metadata"]["generation"]
}

pub fn condition<'a>(v: &'a Value, type_: &str) -> Option<&'a Value> {
    v["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

pub fn key(v: &Value) -> String {
    format!("{}/{}", v["kind"].as_str().unwrap_or_default(), v["metadata"]["name"].as_str().unwrap_or_default())
}

/// Wait until `check` holds, polling; panics with `what` and the last value seen.
pub async fn eventually<T: std::fmt::Debug, F, Fut>(
    what: &str,
    secs: u64,
    mut probe: F,
    check: impl Fn(&T) -> bool,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = probe().await;
        if check(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for: {what}; last seen: {v:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `kubectl wait --for=condition=Ready` on every resource of the category in `ns`, as a user or a
/// pipeline would; without kubectl on PATH, the same condition polled through the API.
pub async fn kubectl_wait_ready(server: &EnvTest, client: &Client, ns: &str, secs: u64) {
    let kubectl = Command::new("kubectl").args(["version", "--client"]).output().is_ok_and(|o| o.status.success());
    if kubectl {
        let out = Command::new("kubectl")
            .args(["wait", "--for=condition=Ready", &format!("--timeout={secs}s"), "-n", ns, "iothubaccess", "--all"])
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .output()
            .expect("kubectl runs");
        let objs = objects(client, ns).await;
        assert!(
            out.status.success(),
            "kubectl wait: {}{}\n{objs:#?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    eventually(
        "every resource Ready",
        secs,
        || objects(client, ns),
        |all: &Vec<Value>| !all.is_empty() && all.iter().all(ready),
    )
    .await;
}

/// The kstatus library's verdict (Current, InProgress, Failed, Terminating...) for each object,
/// by `Kind/name`.
pub fn kstatus(server: &EnvTest, objects: &[Value]) -> BTreeMap<String, String> {
    use std::io::Write;
    let mut child = Command::new(server.tool("kstatus-check"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kstatus-check runs (built by scripts/envtest install)");
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    child.stdin.take().expect("stdin").write_all(list.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("kstatus-check output");
    assert!(out.status.success(), "kstatus-check: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            let id = parts.next()?;
            let status = parts.next()?;
            let mut segs = id.split('/');
            let (kind, _ns, name) = (segs.next()?, segs.next()?, segs.next()?);
            Some((format!("{kind}/{name}"), status.to_string()))
        })
        .collect()
}

/// The client, the CRDs installed, and a fresh namespace; `None` when the server cannot be had
/// outside CI (the test is skipped, saying why).
pub async fn setup(prefix: &str) -> Option<(&'static EnvTest, Client, String)> {
    let server = super::envtest::envtest()?;
    iothub_access_operator::install_crypto_provider();
    let client = server.client().await;
    super::envtest::install_crds(&client).await;
    let ns = super::envtest::namespace(&client, prefix, &[]).await;
    Some((server, client, ns))
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

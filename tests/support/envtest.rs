//! A real Kubernetes control plane for the tests: `scripts/envtest` builds (once) and starts etcd,
//! kube-apiserver and the namespace controller on loopback, one server per test binary.
//!
//! Without Go the tests that need it are skipped, saying why; under `CI=true` a server that cannot
//! be had is a failure, never a skip. The server stops by itself when the test binary exits (the
//! script watches this process's id). `TEST_KUBECONFIG=PATH` runs the same tests against a real
//! cluster instead (kind, k3d, AKS...: one you may install CRDs and create namespaces in).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use iothub_access_operator::crd;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};

/// A running control plane.
pub struct EnvTest {
    /// The admin kubeconfig the script wrote.
    pub kubeconfig: PathBuf,
    /// Where the built binaries are (`kstatus-check` among them).
    pub bin: PathBuf,
    _child: Option<Mutex<Child>>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo().join("scripts/envtest")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn go_available() -> bool {
    Command::new("go").arg("version").output().is_ok_and(|o| o.status.success())
}

/// Remove state folders left by earlier test runs whose process is gone.
fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = name.strip_prefix("envtest-")
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn start() -> Result<EnvTest, String> {
    let install =
        Command::new(script()).arg("install").status().map_err(|e| format!("scripts/envtest install: {e}"))?;
    if !install.success() {
        return Err(format!("scripts/envtest install failed ({install})"));
    }
    let bin = String::from_utf8(
        Command::new(script()).arg("bin").output().map_err(|e| format!("scripts/envtest bin: {e}"))?.stdout,
    )
    .map_err(|e| e.to_string())?;
    let bin = PathBuf::from(bin.trim());
    if let Ok(kubeconfig) = std::env::var("TEST_KUBECONFIG") {
        return Ok(EnvTest { kubeconfig: kubeconfig.into(), bin, _child: None });
    }
    let parent = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    sweep(&parent);
    let dir = parent.join(format!("envtest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(script())
        .arg("start")
        .arg(&dir)
        .env("ENVTEST_WATCH_PID", std::process::id().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("scripts/envtest start: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut kubeconfig = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(path) = line.strip_prefix("KUBECONFIG=") {
            kubeconfig = Some(PathBuf::from(path));
            break;
        }
    }
    let Some(kubeconfig) = kubeconfig else {
        let status = child.wait().map_err(|e| e.to_string())?;
        return Err(format!("scripts/envtest start exited ({status}) without a kubeconfig; logs in {}", dir.display()));
    };
    Ok(EnvTest { kubeconfig, bin, _child: Some(Mutex::new(child)) })
}

/// The shared control plane, started on first use; `None` (after saying why) when it cannot be
/// had outside CI. Panics under `CI=true` when it cannot be started.
pub fn envtest() -> Option<&'static EnvTest> {
    static SERVER: OnceLock<Option<EnvTest>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if !go_available() && !in_ci() {
                eprintln!(
                    "SKIPPED: Go is not installed, so scripts/envtest cannot build the real kube-apiserver \
                     (install Go 1.26 or newer; CI=true makes this a failure)"
                );
                return None;
            }
            match start() {
                Ok(s) => Some(s),
                Err(e) => panic!("the real Kubernetes API server for the tests could not be started: {e}"),
            }
        })
        .as_ref()
}

impl EnvTest {
    /// An admin client.
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("the envtest kubeconfig is readable");
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("kubeconfig");
        Client::try_from(config).expect("client")
    }

    /// A path to one of the built helper binaries.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }
}

/// Install `crds/` by server-side apply (as `kubectl apply --server-side -f crds/`) and wait until
/// every CRD is Established.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let ssa = PatchParams::apply("iothub-access-tests").force();
    for (_, c) in crd::all() {
        crds.patch(&c.name_any(), &ssa, &Patch::Apply(&c)).await.expect("the API server accepts the CRD");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for (_, c) in crd::all() {
        loop {
            let got = crds.get(&c.name_any()).await.expect("CRD readable");
            let established = got
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"));
            if established {
                break;
            }
            assert!(Instant::now() < deadline, "CRD {} not Established: {:?}", c.name_any(), got.status);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A fresh namespace with a random name, optionally annotated.
pub async fn namespace(client: &Client, prefix: &str, annotations: &[(&str, &str)]) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    let name = format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("namespace");
    if !annotations.is_empty() {
        ns.metadata.annotations = Some(annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    }
    Api::<Namespace>::all(client.clone())
        .patch(&name, &PatchParams::apply("iothub-access-tests"), &Patch::Apply(&ns))
        .await
        .expect("namespace created");
    name
}

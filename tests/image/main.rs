//! The container image as a cluster runs it: built by `scripts/image build` from the Dockerfile
//! (podman, no registry), then run by podman the way the Helm chart's Deployment runs it. The
//! user, the read-only root filesystem, the dropped capabilities, the /tmp volume, the memory
//! limit, the port, the probes, the args and the env all come from the rendered chart (the real
//! Helm engine, as tests/chart renders it), so a chart that asks the image for something it does
//! not do fails here. The operator inside gets what the kubelet would give it: the chart's
//! ServiceAccount's token, mounted read-only where every pod has it, and the API server's address
//! in KUBERNETES_SERVICE_HOST/PORT, so it signs in as a pod does, with the chart's RBAC only.
//!
//!     scripts/image build && cargo test --test image
//!
//! Without podman or without a built image the tests are skipped, saying why; under `CI=true`
//! that is a failure. `IOTHUB_ACCESS_IMAGE=REF` tests another image than the one the script
//! recorded in target/image/image.env.

#[allow(dead_code)]
#[path = "../chart/helm.rs"]
mod helm;
#[path = "../support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::{Value, json};

use support::cluster::{apply, kubectl_wait_ready, manifests};
use support::*;

const BINARY: &str = "/usr/local/bin/iothub-access-operator";
const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// What may be executable in the image besides the operator (base-files' motd script, which has
/// no shell to run it): nothing that runs a command.
const OTHER_EXECUTABLES: [&str; 1] = ["/etc/update-motd.d/10-uname"];
const SHELLS_AND_PACKAGE_MANAGERS: [&str; 14] =
    ["sh", "bash", "dash", "ash", "zsh", "busybox", "toybox", "apt", "apt-get", "dpkg", "rpm", "apk", "su", "sudo"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The image under test and how to reach podman.
struct Image {
    reference: String,
    containers_conf: Option<String>,
    /// The sha256 of the binary `scripts/image build` put in it.
    binary_sha256: Option<String>,
}

impl Image {
    fn podman(&self) -> Command {
        let mut c = Command::new("podman");
        if let Some(conf) = &self.containers_conf {
            c.env("CONTAINERS_CONF", conf);
        }
        c
    }

    fn podman_out(&self, args: &[&str]) -> Output {
        self.podman().args(args).output().unwrap_or_else(|e| panic!("podman {args:?}: {e}"))
    }

    /// `podman ARGS`, which must succeed; its stdout.
    fn podman_ok(&self, args: &[&str]) -> String {
        let out = self.podman_out(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn config(&self) -> Value {
        let inspect: Value =
            serde_json::from_str(&self.podman_ok(&["image", "inspect", &self.reference])).expect("image inspect JSON");
        inspect[0].clone()
    }
}

fn skip_or_fail(why: &str) -> Option<Image> {
    if in_ci() {
        panic!("the container image cannot be tested: {why} (CI=true makes this a failure)");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// What `scripts/image build` recorded: KEY=VALUE lines.
fn recorded() -> BTreeMap<String, String> {
    let path = repo().join("target/image/image.env");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// The image, or `None` (after saying why) when podman or the image is not there outside CI.
fn image() -> Option<&'static Image> {
    static IMAGE: OnceLock<Option<Image>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let podman = Command::new("podman").arg("--version").output();
            if !podman.is_ok_and(|o| o.status.success()) {
                return skip_or_fail("podman is not installed (scripts/image build installs it and builds the image)");
            }
            let record = recorded();
            let reference = std::env::var("IOTHUB_ACCESS_IMAGE").ok().or_else(|| record.get("IMAGE").cloned());
            let Some(reference) = reference else {
                return skip_or_fail("no image was built: run scripts/image build (or set IOTHUB_ACCESS_IMAGE)");
            };
            let containers_conf =
                std::env::var("CONTAINERS_CONF").ok().or_else(|| record.get("CONTAINERS_CONF").cloned());
            let mut image = Image { reference, containers_conf, binary_sha256: None };
            if !image.podman_out(&["image", "exists", &image.reference]).status.success() {
                return skip_or_fail(&format!(
                    "the image {} is not in podman's storage: run scripts/image build",
                    image.reference
                ));
            }
            // What the script recorded holds for this image only if it is still the one it built.
            let id = image.config()["Id"].as_str().unwrap_or_default().to_owned();
            if record.get("IMAGE") == Some(&image.reference) && record.get("IMAGE_ID") == Some(&id) {
                image.binary_sha256 = record.get("BINARY_SHA256").cloned();
            } else {
                eprintln!(
                    "note: {} is not the image scripts/image recorded: its binary and SBOM are not checked",
                    image.reference
                );
            }
            sweep(&image);
            Some(image)
        })
        .as_ref()
}

/// Remove containers left by earlier runs of this test binary whose process is gone.
fn sweep(image: &Image) {
    let names = image.podman_ok(&["ps", "-a", "--filter", "name=iothub-access-image-test-", "--format", "{{.Names}}"]);
    for name in names.lines() {
        let pid = name.trim_start_matches("iothub-access-image-test-").split('-').next().unwrap_or_default();
        if !Path::new("/proc").join(pid).exists() {
            let _ = image.podman_out(&["rm", "-f", name]);
        }
    }
}

/// A container of the image, removed when dropped; its log is printed if the test fails.
struct Container<'a> {
    image: &'a Image,
    name: String,
}

impl Container<'_> {
    fn logs(&self) -> String {
        let out = self.image.podman_out(&["logs", &self.name]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    fn state(&self) -> Value {
        let inspect: Value =
            serde_json::from_str(&self.image.podman_ok(&["inspect", &self.name])).expect("container inspect JSON");
        inspect[0]["State"].clone()
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- the log of container {} ----\n{}\n----", self.name, self.logs());
        }
        let _ = self.image.podman_out(&["rm", "-f", "-t", "0", &self.name]);
    }
}

fn container_name(what: &str) -> String {
    format!("iothub-access-image-test-{}-{what}", std::process::id())
}

// ---- the chart -----------------------------------------------------------------------------

/// The operator's Deployment, pod and container as the chart renders them with `values`.
struct ChartPod {
    rendered: helm::Rendered,
}

impl ChartPod {
    fn render(values: &Value, namespace: &str) -> ChartPod {
        let rendered =
            helm::render_in(values, namespace).unwrap_or_else(|e| panic!("the chart does not render: {e:?}"));
        ChartPod { rendered }
    }

    fn deployment(&self) -> &Value {
        self.rendered.get("Deployment", "iothub-access-operator")
    }

    fn pod(&self) -> &Value {
        &self.deployment()["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Value {
        let containers = self.pod()["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "one container");
        &containers[0]
    }

    fn args(&self) -> Vec<String> {
        self.container()["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("arg").to_owned()).collect()
    }

    /// The named container port.
    fn port(&self, name: &str) -> u16 {
        let ports = self.container()["ports"].as_array().expect("ports");
        let port = ports.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no port named {name}"));
        assert_eq!(port["protocol"], "TCP");
        port["containerPort"].as_u64().expect("containerPort") as u16
    }

    /// What podman needs to run the container as the kubelet would with this pod spec: the user,
    /// the read-only root, the capabilities, privilege escalation, seccomp, the memory limit and
    /// the volumes (each emptyDir a tmpfs of its size limit). Anything in the securityContext the
    /// test does not know how to apply fails it, so nothing is silently left out.
    fn podman_security_args(&self) -> Vec<String> {
        let pod_sc = &self.pod()["securityContext"];
        let sc = &self.container()["securityContext"];
        let field = |name: &str| if sc[name].is_null() { &pod_sc[name] } else { &sc[name] };
        let mut args = Vec::new();

        const APPLIED: [&str; 8] = [
            "runAsNonRoot",
            "runAsUser",
            "runAsGroup",
            "allowPrivilegeEscalation",
            "readOnlyRootFilesystem",
            "privileged",
            "capabilities",
            "seccompProfile",
        ];
        for (what, context) in [("container", sc), ("pod", pod_sc)] {
            for key in context.as_object().unwrap_or_else(|| panic!("the {what} securityContext")).keys() {
                assert!(
                    APPLIED.contains(&key.as_str()),
                    "the {what} securityContext.{key} is not applied by this test"
                );
            }
        }

        let uid = field("runAsUser").as_u64().expect("runAsUser");
        let gid = field("runAsGroup").as_u64().expect("runAsGroup");
        assert_eq!(field("runAsNonRoot"), true, "runAsNonRoot");
        assert_ne!(uid, 0, "runAsNonRoot with uid 0 would not start");
        args.push(format!("--user={uid}:{gid}"));
        if field("readOnlyRootFilesystem") == true {
            // Only the chart's volumes are writable: none of podman's own tmpfs.
            args.extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
        }
        if field("allowPrivilegeEscalation") == false {
            args.push("--security-opt=no-new-privileges".into());
        }
        assert_ne!(field("privileged"), true, "privileged");
        let drop: Vec<&str> = sc["capabilities"]["drop"]
            .as_array()
            .map(|d| d.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for cap in drop {
            args.push(format!("--cap-drop={cap}"));
        }
        for cap in sc["capabilities"]["add"].as_array().into_iter().flatten() {
            args.push(format!("--cap-add={}", cap.as_str().expect("capability")));
        }
        // RuntimeDefault is podman's default seccomp profile, as it is the container runtime's.
        assert_eq!(field("seccompProfile")["type"], "RuntimeDefault");

        if let Some(memory) = self.container()["resources"]["limits"]["memory"].as_str() {
            args.push(format!("--memory={}", quantity_bytes(memory)));
        }
        let volumes = self.pod()["volumes"].as_array().cloned().unwrap_or_default();
        for mount in self.container()["volumeMounts"].as_array().into_iter().flatten() {
            let volume = volumes.iter().find(|v| v["name"] == mount["name"]).expect("the mount's volume");
            let empty_dir =
                volume["emptyDir"].as_object().unwrap_or_else(|| panic!("volume {volume} is not an emptyDir"));
            let mut options = vec!["rw".to_owned(), "mode=1777".to_owned()];
            if let Some(size) = empty_dir.get("sizeLimit").and_then(Value::as_str) {
                options.push(format!("size={}", quantity_bytes(size)));
            }
            args.push(format!("--tmpfs={}:{}", mount["mountPath"].as_str().expect("mountPath"), options.join(",")));
        }
        args
    }
}

/// A Kubernetes memory quantity (`256Mi`, `16Mi`, `1G`, plain bytes) in bytes.
fn quantity_bytes(q: &str) -> u64 {
    let units =
        [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("k", 1000), ("M", 1_000_000), ("G", 1_000_000_000)];
    for (suffix, factor) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u64>().expect("quantity") * factor;
        }
    }
    q.parse().expect("quantity")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

// ---- the image itself ----------------------------------------------------------------------

/// Every path in the image, with its mode string, from `podman export` of a created container.
fn files(image: &Image) -> Vec<(String, String)> {
    let name = container_name("files");
    image.podman_ok(&["create", "--name", &name, &image.reference]);
    let _container = Container { image, name: name.clone() };
    let tar = std::env::temp_dir().join(format!("{name}.tar"));
    image.podman_ok(&["export", "-o", tar.to_str().expect("utf-8"), &name]);
    let out = Command::new("tar").arg("-tvf").arg(&tar).output().expect("tar runs");
    let _ = std::fs::remove_file(&tar);
    assert!(out.status.success(), "tar -tvf: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // "mode owner size date time path[ -> target]"
            let fields: Vec<&str> = l.split_whitespace().collect();
            let path = fields.get(5..)?.join(" ");
            let path = path.split(" -> ").next()?.trim_start_matches('.').trim_start_matches('/').trim_end_matches('/');
            Some((format!("/{path}"), fields[0].to_owned()))
        })
        .collect()
}

#[test]
fn the_image_runs_the_binary_as_nonroot_and_holds_no_shell_and_no_package_manager() {
    let Some(image) = image() else { return };
    let chart = ChartPod::render(&json!({}), "iothub-access-operator");
    let config = image.config();
    println!(
        "image {} ({}): {:.1} MiB uncompressed",
        image.reference,
        &config["Id"].as_str().unwrap_or_default()[..12],
        config["Size"].as_f64().unwrap_or_default() / 1048576.0
    );

    // What the chart relies on: the binary is the entrypoint (its args start with the
    // subcommand), the user is numeric and not root (runAsNonRoot can verify it), the metrics port
    // is the one the image exposes.
    let c = &config["Config"];
    assert_eq!(c["Entrypoint"], json!([BINARY]));
    assert_eq!(c["Cmd"], json!(["run"]));
    assert!(chart.container()["command"].is_null(), "the chart keeps the image's entrypoint");
    assert_eq!(chart.args()[0], "run");
    let sc = &chart.container()["securityContext"];
    assert_eq!(c["User"], format!("{}:{}", sc["runAsUser"], sc["runAsGroup"]), "the image's user is the chart's");
    let exposed: Vec<&String> = c["ExposedPorts"].as_object().expect("ExposedPorts").keys().collect();
    assert_eq!(exposed, [&format!("{}/tcp", chart.port("metrics"))], "EXPOSE is the chart's metrics port");

    // No shell: podman cannot start one.
    let shell =
        image.podman_out(&["run", "--rm", "--network=none", "--entrypoint", "/bin/sh", &image.reference, "-c", "true"]);
    assert!(!shell.status.success(), "/bin/sh ran in the image");

    // Nothing that runs a command: no shell or package manager anywhere, and the only executables
    // (shared libraries aside) are the operator and a script no shell can run.
    let files = files(image);
    assert!(files.iter().any(|(p, _)| p == BINARY), "{BINARY} is in the image");
    for (path, mode) in files.iter().filter(|(_, mode)| !mode.starts_with('d')) {
        let name = path.rsplit('/').next().unwrap_or_default();
        assert!(!SHELLS_AND_PACKAGE_MANAGERS.contains(&name), "{path} ({mode}) is in the image");
    }
    let executables: BTreeSet<&str> = files
        .iter()
        .filter(|(p, mode)| mode.starts_with('-') && mode.contains('x') && !p.contains(".so"))
        .map(|(p, _)| p.as_str())
        .collect();
    let allowed: BTreeSet<&str> = OTHER_EXECUTABLES.into_iter().chain([BINARY]).collect();
    assert!(executables.is_subset(&allowed), "executables in the image: {executables:?}");
    for (path, mode) in &files {
        if path == "/tmp" {
            assert_eq!(mode, "drwxrwxrwt", "/tmp");
        }
    }

    // The binary is the one scripts/image built with `cargo build --release --locked`, and the
    // SBOM it wrote describes this image.
    if let Some(want) = &image.binary_sha256 {
        let name = container_name("binary");
        image.podman_ok(&["create", "--name", &name, &image.reference]);
        let _container = Container { image, name: name.clone() };
        let copy = std::env::temp_dir().join(format!("{name}.bin"));
        image.podman_ok(&["cp", &format!("{name}:{BINARY}"), copy.to_str().expect("utf-8")]);
        let out = Command::new("sha256sum").arg(&copy).output().expect("sha256sum runs");
        let _ = std::fs::remove_file(&copy);
        let got = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned();
        assert_eq!(&got, want, "the binary in the image is the one scripts/image built");

        let sbom_path = repo().join("target/image/sbom.spdx.json");
        let sbom: Value = serde_json::from_str(&std::fs::read_to_string(&sbom_path).expect("the SBOM is written"))
            .expect("the SBOM is JSON");
        assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
        let packages = sbom["packages"].as_array().expect("packages");
        let binary = packages.iter().find(|p| p["name"] == "iothub-access-operator" && p["packageFileName"] == BINARY);
        let checksum = binary.expect("the binary in the SBOM")["checksums"][0]["checksumValue"].clone();
        assert_eq!(checksum, json!(want), "the SBOM's binary is the image's");
        let in_image: BTreeSet<&str> = files
            .iter()
            .filter_map(|(p, _)| p.strip_prefix("/var/lib/dpkg/status.d/"))
            .filter(|n| !n.is_empty() && !n.ends_with(".md5sums"))
            .collect();
        for deb in &in_image {
            assert!(
                packages.iter().any(|p| p["name"] == *deb && p["SPDXID"].as_str().is_some_and(|i| i.contains("deb"))),
                "the SBOM lists the Debian package {deb}"
            );
        }
        assert!(in_image.contains("libc6") && in_image.contains("ca-certificates"), "{in_image:?}");
        println!("SBOM {}: {} packages", sbom_path.display(), packages.len());
    }
}

#[test]
fn demo_passes_inside_the_container_run_as_the_chart_runs_it() {
    let Some(image) = image() else { return };
    let chart = ChartPod::render(&json!({}), "iothub-access-operator");
    let name = container_name("demo");
    let mut args = vec!["run".to_owned(), "--name".into(), name.clone(), "--network=none".into()];
    args.extend(chart.podman_security_args());
    args.extend([image.reference.clone(), "demo".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let out = image.podman_out(&args);
    let _container = Container { image, name };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`demo` failed in the container ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "demo passed in the container in {:.1} s ({} lines of output)",
        started.elapsed().as_secs_f64(),
        stdout.lines().count()
    );
}

/// The chart's ServiceAccount and RBAC (rendered for `ns`) applied to the server, and a token
/// for the ServiceAccount, as the kubelet would mount it.
async fn service_account_as_the_chart_makes_it(client: &kube::Client, chart: &ChartPod, ns: &str) -> String {
    let ssa = PatchParams::apply("iothub-access-image-test").force();
    fn typed<K: serde::de::DeserializeOwned>(v: &Value) -> K {
        serde_json::from_value(v.clone()).expect("a valid object")
    }
    for o in &chart.rendered.objects {
        let name = o["metadata"]["name"].as_str().expect("name").to_owned();
        match o["kind"].as_str().expect("kind") {
            "ServiceAccount" => {
                let sa: ServiceAccount = typed(o);
                Api::<ServiceAccount>::namespaced(client.clone(), ns)
                    .patch(&name, &ssa, &Patch::Apply(&sa))
                    .await
                    .map(drop)
            }
            "ClusterRole" => {
                let r: ClusterRole = typed(o);
                Api::<ClusterRole>::all(client.clone()).patch(&name, &ssa, &Patch::Apply(&r)).await.map(drop)
            }
            "ClusterRoleBinding" => {
                let r: ClusterRoleBinding = typed(o);
                Api::<ClusterRoleBinding>::all(client.clone()).patch(&name, &ssa, &Patch::Apply(&r)).await.map(drop)
            }
            "Role" => {
                let r: Role = typed(o);
                Api::<Role>::namespaced(client.clone(), ns).patch(&name, &ssa, &Patch::Apply(&r)).await.map(drop)
            }
            "RoleBinding" => {
                let r: RoleBinding = typed(o);
                Api::<RoleBinding>::namespaced(client.clone(), ns).patch(&name, &ssa, &Patch::Apply(&r)).await.map(drop)
            }
            _ => Ok(()),
        }
        .unwrap_or_else(|e| panic!("applying {} {name}: {e}", o["kind"]));
    }
    let sa = chart.pod()["serviceAccountName"].as_str().expect("serviceAccountName");
    assert_eq!(chart.pod()["automountServiceAccountToken"], true, "the pod gets its token");
    let request: TokenRequest =
        serde_json::from_value(json!({ "spec": { "audiences": [], "expirationSeconds": 3600 } }))
            .expect("token request");
    let issued = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .expect("a token for the chart's ServiceAccount");
    issued.status.and_then(|s| s.token).expect("the issued token")
}

/// The env the kubelet gives the container from the chart's `env`: values, the downward API
/// (metadata.name, metadata.namespace) and Secret keys read from the server.
async fn resolve_env(client: &kube::Client, chart: &ChartPod, ns: &str, pod: &str) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for e in chart.container()["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().expect("env name").to_owned();
        let value = if let Some(v) = e["value"].as_str() {
            v.to_owned()
        } else if let Some(path) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match path {
                "metadata.name" => pod.to_owned(),
                "metadata.namespace" => ns.to_owned(),
                other => panic!("env {name} from the downward API field {other}, which this test does not give"),
            }
        } else if let Some(key) = e["valueFrom"]["secretKeyRef"].as_object() {
            let secret = Api::<Secret>::namespaced(client.clone(), ns)
                .get(key["name"].as_str().expect("secret name"))
                .await
                .expect("the Secret the chart names exists");
            let data = secret.data.expect("secret data");
            let bytes = &data.get(key["key"].as_str().expect("secret key")).expect("the key the chart names").0;
            String::from_utf8(bytes.clone()).expect("utf-8 secret")
        } else {
            panic!("env {e} is of a kind this test does not resolve")
        };
        env.push((name, value));
    }
    env
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_in_the_container_makes_the_examples_ready_and_serves_health_and_metrics() {
    let Some(image) = image() else { return };
    let Some((server, client, ns)) = support::cluster::setup("image").await else { return };
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let azure = emu.base_url();

    // The chart as a user would install it into `ns`, Azure credentials from a Secret, the
    // emulator as Azure (http, so through extraArgs: the values insist on https endpoints).
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "iothub-access-azure" },
        "stringData": { "clientSecret": CLIENT_SECRET }
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), &ns)
        .patch("iothub-access-azure", &PatchParams::apply("iothub-access-image-test"), &Patch::Apply(&secret))
        .await
        .expect("the credentials Secret");
    let metrics_port = free_port();
    let values = json!({
        "replicas": 1,
        "leaderElection": { "enabled": true },
        "allowedScopes": [format!("/subscriptions/{SUB}")],
        "watchNamespace": ns,
        "azure": {
            "tenantId": TENANT,
            "clientId": CLIENT_ID,
            "workloadIdentity": { "enabled": false },
            "clientSecret": { "existingSecret": "iothub-access-azure", "key": "clientSecret" }
        },
        "metrics": { "port": metrics_port },
        // A resync within the wait: an assignment whose custom role turns Ready in the same
        // instant can be left WaitingForCustomRole until the next resync (the role watch that
        // wakes it and the store it reads the role from are two watches; seen here about one run
        // in four with the default 10m).
        "resyncInterval": "15s",
        "extraArgs": ["--arm-endpoint", azure, "--authority-host", azure]
    });
    let chart = ChartPod::render(&values, &ns);
    let token = service_account_as_the_chart_makes_it(&client, &chart, &ns).await;
    let pod_name = format!("iothub-access-operator-{}", std::process::id());
    let env = resolve_env(&client, &chart, &ns, &pod_name).await;

    // What every pod has: the ServiceAccount's token, the cluster's CA and the namespace in a
    // read-only volume, and the API server's address in the environment.
    let kubeconfig = Kubeconfig::read_from(&server.kubeconfig).expect("the envtest kubeconfig");
    let cluster = kubeconfig.clusters[0].cluster.as_ref().expect("cluster");
    let api_url: url::Url = cluster.server.as_deref().expect("server").parse().expect("server URL");
    let ca = cluster.certificate_authority.as_deref().expect("the server's CA file");
    let secrets_dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("image-serviceaccount-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&secrets_dir);
    std::fs::create_dir_all(&secrets_dir).expect("token dir");
    std::fs::write(secrets_dir.join("token"), &token).expect("token");
    std::fs::copy(ca, secrets_dir.join("ca.crt")).expect("ca.crt");
    std::fs::write(secrets_dir.join("namespace"), &ns).expect("namespace");
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["token", "ca.crt", "namespace"] {
            std::fs::set_permissions(secrets_dir.join(f), std::fs::Permissions::from_mode(0o644)).expect("mode");
        }
        std::fs::set_permissions(&secrets_dir, std::fs::Permissions::from_mode(0o755)).expect("mode");
    }

    let name = container_name("run");
    let mut args = vec!["run".to_owned(), "--detach".into(), "--name".into(), name.clone(), "--network=host".into()];
    args.extend(chart.podman_security_args());
    args.push(format!("--volume={}:{TOKEN_DIR}:ro", secrets_dir.display()));
    args.push(format!("--env=KUBERNETES_SERVICE_HOST={}", api_url.host_str().expect("host")));
    args.push(format!("--env=KUBERNETES_SERVICE_PORT={}", api_url.port().expect("port")));
    for (k, v) in &env {
        args.push(format!("--env={k}={v}"));
    }
    args.push("--env=RUST_LOG=info".into());
    args.push(image.reference.clone());
    args.extend(chart.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    image.podman_ok(&args);
    let container = Container { image, name: name.clone() };

    // It runs as the chart's user, with no capabilities.
    let top = image.podman_ok(&["top", &name, "huser", "group", "capeff"]);
    let sc = &chart.container()["securityContext"];
    assert!(
        top.lines().nth(1).is_some_and(|l| l.split_whitespace().next() == Some(&sc["runAsUser"].to_string())),
        "{top}"
    );
    assert!(top.lines().nth(1).is_some_and(|l| l.split_whitespace().last() == Some("none")), "capabilities: {top}");

    // The probes, on the chart's named port, as the kubelet calls them (host network: loopback).
    let port = chart.port("metrics");
    assert_eq!(port, metrics_port);
    let probe = |kind: &str| {
        let p = &chart.container()[kind]["httpGet"];
        assert_eq!(p["port"], "metrics", "{kind} on the metrics port");
        format!("http://127.0.0.1:{port}{}", p["path"].as_str().expect("probe path"))
    };
    let (liveness, readiness) = (probe("livenessProbe"), probe("readinessProbe"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = get(&readiness).await;
        if code == 200 {
            break;
        }
        assert!(container.state()["Running"] == true, "the container stopped: {}", container.state());
        assert!(Instant::now() < deadline, "{readiness} still answers {code} {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(get(&liveness).await.0, 200, "{liveness}");

    // examples/ become Ready, with Azure as they say.
    apply(&client, &ns, &manifests(&["examples"])).await;
    kubectl_wait_ready(server, &client, &ns, 120).await;
    let snap = emu.snapshot();
    assert!(snap.role_assignments.iter().any(|a| a.principal_id == TELEMETRY_SP), "the telemetry reader's grant");
    assert_eq!(snap.hubs.iter().find(|h| h.name == FLEET_HUB).expect("fleet hub").disable_local_auth, Some(true));

    let (code, metrics) = get(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(code, 200, "{metrics}");
    for want in [
        "iothub_access_reconciles_total{kind=\"IotHubRoleAssignment\",outcome=\"ok\"}",
        "iothub_access_arm_requests_total{operation=\"RoleAssignments_Create\",code=\"201\"}",
        "iothub_access_resources{kind=\"IotHubSharedAccess\",ready=\"True\",reason=\"Reconciled\"} 1",
    ] {
        assert!(metrics.contains(want), "/metrics lacks {want}:\n{metrics}");
    }
    assert_eq!(get(&readiness).await.0, 200, "{readiness}");
    assert_eq!(get(&liveness).await.0, 200, "{liveness}");

    // Stopped as the kubelet stops it (SIGTERM, then the pod's grace period): a clean exit.
    let grace = chart.pod()["terminationGracePeriodSeconds"].as_u64().expect("terminationGracePeriodSeconds");
    let stopping = Instant::now();
    image.podman_ok(&["stop", "--time", &grace.to_string(), &name]);
    let state = container.state();
    assert_eq!(state["ExitCode"], 0, "exit after SIGTERM: {state}");
    assert!(stopping.elapsed() < Duration::from_secs(grace), "stopped in {:?}", stopping.elapsed());
    println!("the operator in the container stopped {:.1} s after SIGTERM", stopping.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&secrets_dir);
}

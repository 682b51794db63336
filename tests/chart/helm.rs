//! The real Helm engine, without a `helm` binary: helm-python-sdk (Helm v4's Go SDK compiled into
//! a shared library, bound with ctypes) installed from PyPI into a virtualenv under the cargo
//! target directory the first time it is needed, driven through `tests/chart/render.py`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The exact helm-python-sdk release this test was verified with (bundles Helm SDK v4.2.3).
pub const HELM_PYTHON_SDK_VERSION: &str = "0.2.2";

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/iothub-access-operator")
}

/// The cargo target directory: the parent of `CARGO_TARGET_TMPDIR` (`<target>/tmp`), else
/// `<package>/target`.
fn target_dir() -> PathBuf {
    option_env!("CARGO_TARGET_TMPDIR")
        .and_then(|tmp| Path::new(tmp).parent().map(Path::to_path_buf))
        .unwrap_or_else(|| repo_root().join("target"))
}

/// Python of the virtualenv holding helm-python-sdk, set up once per test process.
fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(set_up_venv) {
        Ok(python) => python,
        Err(why) => panic!("cannot set up the Helm engine for the chart tests:\n{why}"),
    }
}

fn set_up_venv() -> Result<PathBuf, String> {
    let target = target_dir();
    let venv = target.join("helm-venv");
    let marker = format!(".helm-python-sdk-{HELM_PYTHON_SDK_VERSION}");
    let python = venv.join("bin/python");
    if venv.join(&marker).is_file() && python.is_file() {
        return Ok(python);
    }

    // Build the venv beside the final place and rename it into place when complete, so an
    // interrupted install is never mistaken for a good one.
    fs::create_dir_all(&target).map_err(|e| format!("creating {}: {e}", target.display()))?;
    let partial = target.join(format!("helm-venv.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);

    let created = Command::new("python3").arg("-m").arg("venv").arg(&partial).output().map_err(|e| {
        format!(
            "running `python3 -m venv` failed ({e}): install Python 3 (Debian: apt-get install python3 python3-venv)"
        )
    })?;
    if !created.status.success() {
        let _ = fs::remove_dir_all(&partial);
        let stderr = String::from_utf8_lossy(&created.stderr);
        let stdout = String::from_utf8_lossy(&created.stdout);
        let hint = if format!("{stdout}{stderr}").contains("ensurepip") {
            "`python3 -m venv` needs the Debian package python3-venv: apt-get install python3-venv"
        } else {
            "`python3 -m venv` failed (on Debian, install the package python3-venv: apt-get install python3-venv)"
        };
        return Err(format!("{hint}\n{stdout}{stderr}"));
    }

    let partial_python = partial.join("bin/python");
    let requirement = format!("helm-python-sdk=={HELM_PYTHON_SDK_VERSION}");
    let installed = Command::new(&partial_python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet", &requirement])
        .output()
        .map_err(|e| format!("running pip in {}: {e}", partial.display()))?;
    if !installed.status.success() {
        let _ = fs::remove_dir_all(&partial);
        return Err(format!(
            "`pip install {requirement}` failed (it needs PyPI, or a pip cache that has the wheel):\n{}{}",
            String::from_utf8_lossy(&installed.stdout),
            String::from_utf8_lossy(&installed.stderr)
        ));
    }

    let imported = Command::new(&partial_python)
        .args(["-c", "import helm_python; print(helm_python.helm_sdk_version())"])
        .output()
        .map_err(|e| format!("running {}: {e}", partial_python.display()))?;
    if !imported.status.success() {
        let _ = fs::remove_dir_all(&partial);
        return Err(format!(
            "helm-python-sdk {HELM_PYTHON_SDK_VERSION} installed but does not load (no wheel for this platform?):\n{}",
            String::from_utf8_lossy(&imported.stderr)
        ));
    }
    fs::write(partial.join(&marker), &imported.stdout).map_err(|e| format!("writing the venv marker: {e}"))?;

    let _ = fs::remove_dir_all(&venv);
    if let Err(e) = fs::rename(&partial, &venv) {
        // Another test process may have won the race; use its venv if it is complete.
        let _ = fs::remove_dir_all(&partial);
        if !venv.join(&marker).is_file() {
            return Err(format!("moving the venv to {}: {e}", venv.display()));
        }
    }
    Ok(python)
}

/// A Helm error, as `helm install` would print it.
#[derive(Debug)]
pub struct HelmError {
    pub kind: String,
    pub message: String,
}

fn run_helper(command: &str, values: &Value, namespace: &str) -> Result<Value, HelmError> {
    let script = repo_root().join("tests/chart/render.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(command)
        .arg(chart_dir())
        .args(["--name", "iothub-access-operator", "--namespace", namespace])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the render helper starts");
    child.stdin.take().expect("stdin").write_all(values.to_string().as_bytes()).expect("values written");
    let out = child.wait_with_output().expect("the render helper runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reply: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "render helper printed no JSON ({e}), exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if reply["ok"] == Value::Bool(true) {
        Ok(reply)
    } else {
        Err(HelmError {
            kind: reply["error"]["type"].as_str().unwrap_or_default().to_owned(),
            message: reply["error"]["message"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// `helm lint --strict` with `values`; the report is
/// `{"total_charts_linted", "messages": [{"severity", "path", "error"}], "errors"}`.
pub fn lint(values: &Value) -> Value {
    match run_helper("lint", values, "iothub-access-operator") {
        Ok(reply) => reply["report"].clone(),
        Err(e) => panic!("helm lint could not run: {e:?}"),
    }
}

/// What `helm install iothub-access-operator charts/iothub-access-operator -n <ns>` would apply.
pub struct Rendered {
    /// Every Kubernetes object from templates/, in template order.
    pub objects: Vec<Value>,
    /// The rendered NOTES.txt shown after an install.
    pub notes: String,
    /// The chart's crds/ files: (file name inside the chart, exact content).
    pub crds: Vec<(String, String)>,
}

impl Rendered {
    /// The one object of `kind` named `name`.
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        let found: Vec<&Value> =
            self.objects.iter().filter(|o| o["kind"] == kind && o["metadata"]["name"] == name).collect();
        assert_eq!(found.len(), 1, "expected exactly one {kind} {name}, got {}: {:#?}", found.len(), self.kinds());
        found[0]
    }

    /// Every object of `kind`.
    pub fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    /// `Kind/name` of every object, for failure messages.
    pub fn kinds(&self) -> Vec<String> {
        self.objects
            .iter()
            .map(|o| format!("{}/{}", o["kind"].as_str().unwrap_or("?"), o["metadata"]["name"].as_str().unwrap_or("?")))
            .collect()
    }
}

/// Render the chart with `values` (merged over values.yaml) in namespace `iothub-access-operator`.
pub fn render(values: &Value) -> Result<Rendered, HelmError> {
    render_in(values, "iothub-access-operator")
}

pub fn render_in(values: &Value, namespace: &str) -> Result<Rendered, HelmError> {
    let reply = run_helper("render", values, namespace)?;
    let manifests = reply["manifests"].as_object().expect("manifests map");
    let mut paths: Vec<&String> = manifests.keys().collect();
    paths.sort();
    let mut objects = Vec::new();
    let mut notes = String::new();
    for path in paths {
        let text = manifests[path].as_str().expect("manifest text");
        if path.ends_with("NOTES.txt") {
            notes = text.to_owned();
            continue;
        }
        objects.extend(parse_yaml_documents(text, path));
    }
    let crds = reply["crds"]
        .as_array()
        .expect("crds list")
        .iter()
        .map(|c| (c["filename"].as_str().unwrap().to_owned(), c["data"].as_str().unwrap().to_owned()))
        .collect();
    Ok(Rendered { objects, notes, crds })
}

/// Every non-empty document of a YAML stream, as JSON values.
pub fn parse_yaml_documents(text: &str, origin: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| {
            let yaml =
                serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{origin} is not YAML: {e}\n{text}"));
            serde_json::to_value(yaml).unwrap_or_else(|e| panic!("{origin} is not JSON-compatible: {e}"))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

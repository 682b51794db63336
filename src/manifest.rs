//! Reading manifests: files, folders (recursively, `*.yaml`, `*.yml`, `*.json`) or standard
//! input, split into documents, typed into the three kinds, and checked with the same rules as
//! admission. The only I/O is reading the files named by the caller.
//!
//! Documents of other API groups are ignored (a GitOps folder holds Deployments too); an unknown
//! kind of our group is skipped with a note; unknown fields are errors, as `kubectl apply`'s
//! strict field validation makes them.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::crd::{self, IotHubCustomRole, IotHubRoleAssignment, IotHubSharedAccess};
use crate::desire::{self, FieldError, FieldErrors};

/// One of the three kinds.
#[derive(Clone, Debug)]
pub enum Resource {
    RoleAssignment(IotHubRoleAssignment),
    CustomRole(IotHubCustomRole),
    SharedAccess(IotHubSharedAccess),
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::RoleAssignment(_) => "IotHubRoleAssignment",
            Resource::CustomRole(_) => "IotHubCustomRole",
            Resource::SharedAccess(_) => "IotHubSharedAccess",
        }
    }

    pub fn meta(&self) -> &kube::core::ObjectMeta {
        match self {
            Resource::RoleAssignment(r) => &r.metadata,
            Resource::CustomRole(r) => &r.metadata,
            Resource::SharedAccess(r) => &r.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or("")
    }

    /// The namespace, `default` when the manifest leaves it out (as kubectl would).
    pub fn namespace(&self) -> &str {
        self.meta().namespace.as_deref().unwrap_or("default")
    }

    /// `Kind/namespace/name`.
    pub fn object_ref(&self) -> String {
        format!("{}/{}/{}", self.kind(), self.namespace(), self.name())
    }

    /// The admission rules of the resource's kind.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        match self {
            Resource::RoleAssignment(r) => desire::validate_role_assignment(&r.spec),
            Resource::CustomRole(r) => desire::validate_custom_role(&r.spec),
            Resource::SharedAccess(r) => desire::validate_shared_access(&r.spec),
        }
    }
}

/// A resource and where it came from.
#[derive(Clone, Debug)]
pub struct Document {
    /// The file (or `-` for standard input).
    pub source: String,
    /// Position of the document in its file, from 1.
    pub index: usize,
    pub resource: Resource,
}

/// A manifest problem: where, which object, which field, what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub source: String,
    /// `Kind/namespace/name`, or `document N` when the object could not be identified.
    pub object: String,
    pub error: FieldError,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.object, self.error)
    }
}

/// Everything read from a set of paths.
#[derive(Debug, Default)]
pub struct Manifests {
    /// Resources that parsed (valid or not; see `errors`).
    pub documents: Vec<Document>,
    /// Informational lines (skipped kinds, empty inputs).
    pub notes: Vec<String>,
    /// Everything invalid.
    pub errors: Vec<ManifestError>,
    /// Resources that passed every rule, by index into `documents`.
    pub valid: Vec<usize>,
    /// Documents of our kinds that were checked (including ones too broken to parse).
    pub checked: usize,
    /// ConfigMap documents (`v1`), by (namespace, name): what `principal.idFrom` reads here.
    pub config_maps: std::collections::BTreeMap<(String, String), std::collections::BTreeMap<String, String>>,
}

impl Manifests {
    /// What `key` of ConfigMap `ns/name` holds in these manifests.
    pub fn config_map_value(&self, ns: &str, name: &str, key: &str) -> desire::RefValue {
        match self.config_maps.get(&(ns.to_string(), name.to_string())) {
            None => desire::RefValue::Missing(format!(
                "ConfigMap {ns}/{name} is not in the input: give its manifest with -f, or the principal's id (in the cluster it is read from there)"
            )),
            Some(data) => match data.get(key) {
                Some(v) => desire::RefValue::Value(v.clone()),
                None => desire::RefValue::Missing(format!(
                    "ConfigMap {ns}/{name} in the input has no key '{key}' (in data)"
                )),
            },
        }
    }

    /// The valid resources.
    pub fn valid_resources(&self) -> impl Iterator<Item = &Document> {
        self.valid.iter().map(|i| &self.documents[*i])
    }
}

/// Read and check every manifest under `paths` (`-` is standard input).
pub fn load(paths: &[PathBuf]) -> Manifests {
    let mut out = Manifests::default();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => parse_into(&mut out, "-", &text),
                Err(e) => out.errors.push(io_error("-", &e)),
            }
            continue;
        }
        let mut files = Vec::new();
        collect_files(path, &mut files, &mut out);
        files.sort();
        for file in files {
            let source = file.display().to_string();
            match std::fs::read_to_string(&file) {
                Ok(text) => parse_into(&mut out, &source, &text),
                Err(e) => out.errors.push(io_error(&source, &e)),
            }
        }
    }
    check_references(&mut out);
    out
}

/// Parse manifests given as text (one file's content).
pub fn parse(source: &str, text: &str) -> Manifests {
    let mut out = Manifests::default();
    parse_into(&mut out, source, text);
    check_references(&mut out);
    out
}

/// Parse several named texts as one set of manifests (references resolve across them).
pub fn parse_sources<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> Manifests {
    let mut out = Manifests::default();
    for (source, text) in sources {
        parse_into(&mut out, source, text);
    }
    check_references(&mut out);
    out
}

fn io_error(source: &str, e: &std::io::Error) -> ManifestError {
    ManifestError {
        source: source.to_string(),
        object: "-".into(),
        error: FieldError::new("(file)", format!("cannot be read: {e}")),
    }
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>, out: &mut Manifests) {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => match std::fs::read_dir(path) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let p = entry.path();
                    if p.is_dir() {
                        collect_files(&p, files, out);
                    } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
                        files.push(p);
                    }
                }
            }
            Err(e) => out.errors.push(io_error(&path.display().to_string(), &e)),
        },
        Ok(_) => files.push(path.to_path_buf()),
        Err(e) => out.errors.push(io_error(&path.display().to_string(), &e)),
    }
}

fn parse_into(out: &mut Manifests, source: &str, text: &str) {
    let mut count = 0;
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let value: serde_json::Value = match serde::Deserialize::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                out.errors.push(ManifestError {
                    source: source.to_string(),
                    object: format!("document {index}"),
                    error: FieldError::new("(yaml)", format!("is not valid YAML/JSON: {e}")),
                });
                // A syntax error ends the stream: the parser cannot resynchronise.
                break;
            }
        };
        if value.is_null() {
            continue;
        }
        count += 1;
        parse_document(out, source, index, value);
    }
    if count == 0 {
        out.notes.push(format!("{source}: no documents"));
    }
}

fn parse_document(out: &mut Manifests, source: &str, index: usize, value: serde_json::Value) {
    let api_version = value.get("apiVersion").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    if api_version == "v1" && kind == "ConfigMap" {
        let meta = value.get("metadata");
        let text = |k: &str| meta.and_then(|m| m.get(k)).and_then(|v| v.as_str()).map(str::to_string);
        let data = value
            .get("data")
            .and_then(|d| serde_json::from_value::<std::collections::BTreeMap<String, String>>(d.clone()).ok())
            .unwrap_or_default();
        let key = (text("namespace").unwrap_or_else(|| "default".into()), text("name").unwrap_or_default());
        out.config_maps.insert(key, data);
        return;
    }
    if group != crd::common::GROUP {
        return;
    }
    let meta = value.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let ns = meta.and_then(|m| m.get("namespace")).and_then(|v| v.as_str()).unwrap_or("default").to_string();
    let object = format!("{kind}/{ns}/{}", if name.is_empty() { "(no name)" } else { &name });
    let err = |path: &str, message: String| ManifestError {
        source: source.to_string(),
        object: object.clone(),
        error: FieldError::new(path, message),
    };
    if api_version != crd::API_VERSION {
        out.errors.push(err("apiVersion", format!("'{api_version}' is not served; use {}", crd::API_VERSION)));
        return;
    }
    let (resource, parse_errors) = match kind.as_str() {
        "IotHubRoleAssignment" => with(typed::<IotHubRoleAssignment>(value), Resource::RoleAssignment),
        "IotHubCustomRole" => with(typed::<IotHubCustomRole>(value), Resource::CustomRole),
        "IotHubSharedAccess" => with(typed::<IotHubSharedAccess>(value), Resource::SharedAccess),
        other => {
            out.notes
                .push(format!("{source}: document {index}: skipped unknown kind '{other}' of {}", crd::API_VERSION));
            return;
        }
    };
    out.checked += 1;
    let mut errors: Vec<ManifestError> = parse_errors.into_iter().map(|e| err(&e.path, e.message)).collect();
    if name.is_empty() {
        errors.push(err("metadata.name", "is required".into()));
    } else if let Some(problem) = not_dns_name(&name, 253, true) {
        errors.push(err("metadata.name", problem));
    }
    // An empty namespace is the request's, as kubectl sends it.
    if let Some(problem) = Some(&ns).filter(|n| !n.is_empty()).and_then(|n| not_dns_name(n, 63, false)) {
        errors.push(err("metadata.namespace", problem));
    }
    let Some(resource) = resource else {
        out.errors.extend(errors);
        return;
    };
    if let Err(fe) = resource.validate() {
        errors.extend(fe.0.into_iter().map(|e| err(&e.path, e.message)));
    }
    let is_valid = errors.is_empty();
    out.errors.extend(errors);
    out.documents.push(Document { source: source.to_string(), index, resource });
    if is_valid {
        out.valid.push(out.documents.len() - 1);
    }
}

/// The API server's rule for a custom resource's name (`NameIsDNSSubdomain`: an RFC 1123
/// subdomain, at most 253 characters) or a namespace (`NameIsDNSLabel`: one label, at most 63),
/// as the problem with `value`.
fn not_dns_name(value: &str, max: usize, dots: bool) -> Option<String> {
    let label = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    let ok = if dots { value.split('.').all(label) } else { label(value) };
    let what = if dots {
        "a DNS subdomain (RFC 1123), as the API server requires: parts joined by '.', each of lowercase letters, digits and '-', starting and ending with a letter or digit"
    } else {
        "a DNS label (RFC 1123), as the API server requires: lowercase letters, digits and '-', starting and ending with a letter or digit"
    };
    match (ok, value.len() > max) {
        (true, false) => None,
        (_, true) => Some(format!("is {} characters long: must be at most {max} characters and {what}", value.len())),
        (false, false) => Some(format!("'{value}' is not allowed: must be {what}")),
    }
}

/// Deserialize with field paths in errors; unknown fields are returned beside the value.
fn typed<T: DeserializeOwned>(value: serde_json::Value) -> (Option<T>, Vec<FieldError>) {
    let mut unknown = Vec::new();
    let mut on_ignored = |path: serde_ignored::Path<'_>| {
        let p = path.to_string();
        // `apiVersion`/`kind` are read by the caller; `status` and server-set metadata are not
        // ours to judge in a manifest.
        if !matches!(p.as_str(), "apiVersion" | "kind") && !p.starts_with("metadata.") && !p.starts_with("status") {
            unknown.push(FieldError::new(p, "unknown field; check its spelling against the reference in README.md"));
        }
    };
    let de = serde_ignored::Deserializer::new(value, &mut on_ignored);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(de);
    match parsed {
        Ok(v) => (Some(v), unknown),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { "(document)".to_string() } else { path };
            unknown.push(FieldError::new(path, e.into_inner().to_string()));
            (None, unknown)
        }
    }
}

fn with<T>(parsed: (Option<T>, Vec<FieldError>), wrap: fn(T) -> Resource) -> (Option<Resource>, Vec<FieldError>) {
    (parsed.0.map(wrap), parsed.1)
}

/// Cross-resource check: a `customRoleRef` should name an IotHubCustomRole of the same set.
/// Only a note: the role may live in another folder or already be in the cluster.
fn check_references(out: &mut Manifests) {
    check_principal_references(out);
    let roles: Vec<(String, String)> = out
        .documents
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::CustomRole(r) => {
                Some((d.resource.namespace().to_string(), r.metadata.name.clone().unwrap_or_default()))
            }
            _ => None,
        })
        .collect();
    for d in &out.documents {
        if let Resource::RoleAssignment(ra) = &d.resource
            && let Some(r) = &ra.spec.role.custom_role_ref
            && !roles.iter().any(|(ns, n)| ns == d.resource.namespace() && n == &r.name)
        {
            out.notes.push(format!(
                "{}: {}: spec.role.customRoleRef.name: no IotHubCustomRole '{}' in these manifests (fine if it is already in the cluster)",
                d.source,
                d.resource.object_ref(),
                r.name
            ));
        }
    }
}

/// `principal.idFrom`: a ConfigMap in the input must hold the key, and an object id there; one
/// not in the input is read in the cluster (a note says so; `plan` and `apply` cannot resolve it).
fn check_principal_references(out: &mut Manifests) {
    let mut invalid = Vec::new();
    for (i, d) in out.documents.iter().enumerate() {
        let Resource::RoleAssignment(ra) = &d.resource else { continue };
        if !out.valid.contains(&i) || ra.spec.principal.id_from.is_none() {
            continue;
        }
        let ns = d.resource.namespace();
        let lookup = |n: &str, c: &str, k: &str| out.config_map_value(n, c, k);
        let error = match desire::resolve_principal(&ra.spec, ns, &lookup) {
            Ok(_) => None,
            Err(desire::DesireError::Invalid(errors)) => errors.0.into_iter().next(),
            Err(desire::DesireError::PrincipalRefNotFound(why)) => {
                let from = ra.spec.principal.id_from.as_ref().map(|f| &f.config_map_key_ref);
                if from.is_some_and(|r| out.config_maps.contains_key(&(ns.to_string(), r.name.clone()))) {
                    Some(FieldError::new("spec.principal.idFrom.configMapKeyRef", why))
                } else {
                    out.notes.push(format!("{}: {}: spec.principal.idFrom: {why}", d.source, d.resource.object_ref()));
                    None
                }
            }
            Err(_) => None,
        };
        if let Some(error) = error {
            invalid.push((i, ManifestError { source: d.source.clone(), object: d.resource.object_ref(), error }));
        }
    }
    for (i, e) in invalid {
        out.valid.retain(|v| *v != i);
        out.errors.push(e);
    }
}

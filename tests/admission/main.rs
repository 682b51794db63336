//! Admission rules end to end: the committed CRDs match the types, every invalid manifest under
//! `tests/invalid/` is refused both by the API server's rules (schema + CEL, evaluated with
//! kube's CEL engine) and by the Rust validation behind `validate`, naming the same field, and
//! every example is accepted by both.

mod api_server;
mod cli;

use std::path::{Path, PathBuf};

use iothub_access_operator::crd;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Each invalid fixture and the field its first line says must be named.
fn invalid_fixtures() -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(repo().join("tests/invalid"))
        .expect("tests/invalid exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable fixture");
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect-error: "))
                .unwrap_or_else(|| panic!("{} must start with '# expect-error: FIELD'", p.display()))
                .trim()
                .to_string();
            (p, expect)
        })
        .collect();
    out.sort();
    assert!(out.len() >= 20, "expected the full set of invalid fixtures, found {}", out.len());
    out
}

fn example_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .expect("examples exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("readable manifest");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

#[test]
fn committed_crds_match_the_types() {
    for (file, c) in crd::all() {
        let path = repo().join("crds").join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = crd::to_yaml(&c).expect("CRD serializes");
        assert!(
            committed == generated,
            "crds/{file} is out of date with the Rust types; regenerate it with:\n    cargo run -- crds --output-dir crds\nand commit the result"
        );
    }
}

#[test]
fn rust_validation_refuses_every_invalid_fixture_naming_the_field() {
    for (path, field) in invalid_fixtures() {
        let m = iothub_access_operator::manifest::load(std::slice::from_ref(&path));
        assert!(m.valid.is_empty(), "{} was accepted", path.display());
        assert!(
            m.errors.iter().any(|e| e.error.path == field),
            "{}: no error names {field}; got:\n{}",
            path.display(),
            m.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        );
        for e in &m.errors {
            assert!(e.object.contains("/iot/"), "error must name the object: {e}");
            assert!(e.error.message.len() > 15, "error must say what is allowed: {e}");
        }
    }
}

#[test]
fn api_server_rules_refuse_every_invalid_fixture_naming_the_field() {
    for (path, field) in invalid_fixtures() {
        for doc in yaml_documents(&path) {
            let errors = api_server::admit(&doc);
            assert!(!errors.is_empty(), "{} would be admitted by the API server", path.display());
            assert!(
                errors.iter().any(|(p, _)| p == &field || p.starts_with(&format!("{field}."))),
                "{}: the API server's errors do not name {field}: {errors:?}",
                path.display()
            );
        }
    }
}

#[test]
fn examples_are_valid_for_both_the_api_server_and_the_cli() {
    let files = example_files();
    assert!(files.len() >= 4);
    let m = iothub_access_operator::manifest::load(&files);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    assert_eq!(m.valid.len(), m.checked);
    for f in files {
        for doc in yaml_documents(&f) {
            assert_eq!(api_server::admit(&doc), vec![], "{}", f.display());
        }
    }
}

#[test]
fn cel_listkeys_rule_follows_azure_wildcards() {
    let role = |actions: &str, not_actions: &str| {
        serde_json::json!({
            "apiVersion": "iothubaccess.io/v1alpha1", "kind": "IotHubCustomRole",
            "metadata": {"name": "r", "namespace": "iot"},
            "spec": {
                "roleName": "r", "subscriptionId": "5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a",
                "actions": serde_json::from_str::<serde_json::Value>(actions).unwrap(),
                "notActions": serde_json::from_str::<serde_json::Value>(not_actions).unwrap(),
            }
        })
    };
    let refused = |a: &str, n: &str| api_server::admit(&role(a, n)).iter().any(|(p, _)| p == "spec.actions");
    assert!(refused(r#"["*"]"#, "[]"));
    assert!(refused(r#"["*/action"]"#, "[]"));
    assert!(refused(r#"["Microsoft.Devices/IOTHUBS/*"]"#, "[]"));
    assert!(refused(r#"["Microsoft.Devices/*/listkeys/action"]"#, "[]"));
    assert!(!refused(r#"["*"]"#, r#"["Microsoft.Devices/iotHubs/listkeys/action"]"#));
    assert!(!refused(r#"["Microsoft.Devices/IotHubs/read", "*/read"]"#, "[]"));
    // The Rust rule agrees on each of those.
    for (a, n, want) in [
        (r#"["*"]"#, "[]", true),
        (r#"["*/action"]"#, "[]", true),
        (r#"["*"]"#, r#"["Microsoft.Devices/iotHubs/listkeys/action"]"#, false),
        (r#"["*/read"]"#, "[]", false),
    ] {
        let doc = role(a, n);
        let m = iothub_access_operator::manifest::parse("inline", &serde_yaml::to_string(&doc).unwrap());
        let rust = m.errors.iter().any(|e| e.error.path == "spec.actions");
        assert_eq!(rust, want, "actions {a} notActions {n}");
    }
}

#[test]
fn every_documented_data_action_and_wildcard_is_admitted() {
    for pattern in iothub_access_operator::domain::catalog::ALLOWED_DATA_ACTION_PATTERNS.iter() {
        let doc = serde_json::json!({
            "apiVersion": "iothubaccess.io/v1alpha1", "kind": "IotHubCustomRole",
            "metadata": {"name": "r", "namespace": "iot"},
            "spec": {"roleName": "r", "subscriptionId": "5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a", "dataActions": [pattern.to_uppercase()]}
        });
        assert_eq!(api_server::admit(&doc), vec![], "{pattern}");
    }
}

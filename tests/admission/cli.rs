//! The `validate` and `crds` commands as a user runs them: the real binary, its output and exit
//! code.

use std::process::Command;

use super::repo;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iothub-access-operator"));
    c.current_dir(repo());
    c
}

#[test]
fn validate_accepts_the_examples_folder() {
    let out = bin().args(["validate", "-f", "examples"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0 invalid"), "{stdout}");
}

#[test]
fn validate_names_file_object_field_and_fix_and_exits_1() {
    let out = bin().args(["validate", "-f", "tests/invalid/data-action-typo.yaml"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "tests/invalid/data-action-typo.yaml: IotHubCustomRole/iot/data-action-typo: spec.dataActions[0]:"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("did you mean 'Microsoft.Devices/IotHubs/devices/read'"), "{stdout}");
}

#[test]
fn validate_reads_stdin_skips_other_groups_and_notes_unknown_kinds() {
    use std::io::Write;
    let mut child = bin()
        .args(["validate", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\napiVersion: iothubaccess.io/v1alpha1\nkind: IotHubFuture\nmetadata: {name: x}\n";
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("skipped unknown kind 'IotHubFuture'"), "{stdout}");
    assert!(!stdout.contains("Deployment"), "{stdout}");
}

#[test]
fn crds_prints_three_definitions() {
    let out = bin().arg("crds").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<serde_json::Value> =
        serde_yaml::Deserializer::from_str(&text).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect();
    let names: Vec<&str> = docs.iter().map(|d| d["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "iothubcustomroles.iothubaccess.io",
            "iothubroleassignments.iothubaccess.io",
            "iothubsharedaccesses.iothubaccess.io"
        ]
    );
    for d in &docs {
        assert_eq!(d["spec"]["names"]["categories"][0], "iothubaccess");
        assert!(d["spec"]["versions"][0]["subresources"]["status"].is_object());
    }
}

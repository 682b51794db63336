//! A stand-in for the API server's admission of our custom resources: the CRD's structural
//! schema (types, enums, required fields, lengths) with a JSON Schema validator, unknown fields
//! as `kubectl apply`'s strict field validation reports them, and the CEL
//! `x-kubernetes-validations` rules with kube's CEL engine. Errors are (field path, message).

use iothub_access_operator::crd;
use kube::core::cel::Validator;
use serde_json::Value;

fn schema_for(kind: &str) -> Value {
    let (_, c) = crd::all().into_iter().find(|(_, c)| c.spec.names.kind == kind).expect("known kind");
    serde_json::to_value(c.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap()
}

fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').filter(|s| !s.is_empty()) {
        if seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

fn unknown_fields(schema: &Value, value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, v) in map {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match props.and_then(|ps| ps.get(k)) {
                    Some(s) => unknown_fields(s, v, &p, out),
                    None if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") => {}
                    None if path == "metadata" || path.starts_with("metadata.") => {}
                    None if props.is_some() => out.push((p, "unknown field".into())),
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    unknown_fields(s, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Every reason the API server would refuse `object` (empty when it would admit it).
pub fn admit(object: &Value) -> Vec<(String, String)> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let schema = schema_for(kind);
    let mut errors = Vec::new();
    unknown_fields(&schema, object, "", &mut errors);
    let structural = jsonschema::draft4::new(&schema).expect("CRD schema compiles");
    for e in structural.iter_errors(object) {
        let mut path = pointer_to_path(e.instance_path().as_str());
        if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind() {
            let prop = property.as_str().unwrap_or_default();
            path = if path.is_empty() { prop.to_string() } else { format!("{path}.{prop}") };
        }
        errors.push((path, e.to_string()));
    }
    if errors.is_empty()
        && let Err(cel) = Validator::new().validate(&schema, object, None)
    {
        for e in cel.into_vec() {
            errors.push((e.field_path.trim_start_matches('.').to_string(), e.message));
        }
    }
    // The server's own check of every custom resource's name (`ValidateObjectMetaAccessor` with
    // `NameIsDNSSubdomain`), with apimachinery's regex and length.
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let subdomain = regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").unwrap();
    if name.len() > 253 || !subdomain.is_match(name) {
        errors.push(("metadata.name".into(), format!("{name:?}: a lowercase RFC 1123 subdomain, at most 253")));
    }
    errors
}

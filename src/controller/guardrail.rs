//! The security guardrail: the operator can write role assignments, so whoever may create these
//! resources could otherwise grant any principal access to any hub the operator reaches. Only
//! scopes the cluster admin allowed are managed:
//! - `--allowed-scope` (repeatable ARM id prefixes, set from the Helm values), and
//! - optionally the namespace annotation `iothubaccess.io/allowed-scopes` (comma or whitespace
//!   separated prefixes), which can only narrow the global list for that namespace.
//!
//! A resource outside them gets `Ready=False, reason ScopeNotAllowed` and no Azure call. With
//! nothing configured everything is denied. Prefixes match whole ARM id segments,
//! case-insensitively: `/subscriptions/abc` allows `/subscriptions/abc/resourceGroups/x` but not
//! `/subscriptions/abcd`.

use std::fmt;

/// The admin's allow-list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guardrail {
    allowed: Vec<String>,
}

fn normalize(prefix: &str) -> String {
    let p = prefix.trim().trim_end_matches('/').to_ascii_lowercase();
    if p.is_empty() {
        "/".into()
    } else if p.starts_with('/') {
        p
    } else {
        format!("/{p}")
    }
}

/// Does `prefix` (normalized) cover `id`?
fn covers(prefix: &str, id: &str) -> bool {
    let id = normalize(id);
    prefix == "/" || id == prefix || id.starts_with(&format!("{prefix}/"))
}

/// Why a scope is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotAllowed(pub String);

impl fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Guardrail {
    pub fn new(allowed: impl IntoIterator<Item = impl AsRef<str>>) -> Guardrail {
        let mut allowed: Vec<String> = allowed
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .filter(|s| !s.trim().is_empty())
            .map(|s| normalize(&s))
            .collect();
        allowed.sort();
        allowed.dedup();
        Guardrail { allowed }
    }

    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }

    /// Check every ARM id a resource would touch. `namespace_annotation` is the value of
    /// `iothubaccess.io/allowed-scopes` on the resource's namespace, if any.
    pub fn check<'a>(
        &self,
        namespace: &str,
        namespace_annotation: Option<&str>,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), NotAllowed> {
        if self.allowed.is_empty() {
            return Err(NotAllowed(
                "the operator manages no Azure scope yet (deny by default): the cluster admin allows scopes with the Helm value allowedScopes (the --allowed-scope flag), e.g. /subscriptions/<id>/resourceGroups/<rg>".into(),
            ));
        }
        let narrowed: Option<Vec<String>> = namespace_annotation.map(|v| {
            v.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()).map(normalize).collect()
        });
        for id in ids {
            if !self.allowed.iter().any(|p| covers(p, id)) {
                return Err(NotAllowed(format!(
                    "{id} is outside the scopes this operator may manage ({}); ask the cluster admin to add it to the Helm value allowedScopes (--allowed-scope)",
                    self.allowed.join(", ")
                )));
            }
            if let Some(n) = &narrowed
                && !n.iter().any(|p| covers(p, id))
            {
                return Err(NotAllowed(format!(
                    "{id} is outside the scopes namespace {namespace} may manage (annotation iothubaccess.io/allowed-scopes: {}); ask the cluster admin to extend that annotation",
                    n.join(", ")
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RG: &str = "/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg-iot-prod";

    #[test]
    fn nothing_configured_denies_with_a_message_that_says_how_to_allow() {
        let e = Guardrail::default().check("ns", None, [RG]).unwrap_err();
        assert!(e.0.contains("--allowed-scope"), "{e}");
    }

    #[test]
    fn prefixes_match_whole_segments_case_insensitively() {
        let g = Guardrail::new(["/subscriptions/5F0C7A9E-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourcegroups/rg-iot-prod/"]);
        assert!(g.check("ns", None, [RG]).is_ok());
        assert!(g.check("ns", None, [&format!("{RG}/providers/Microsoft.Devices/IotHubs/h")[..]]).is_ok());
        assert!(g.check("ns", None, [&format!("{RG}2")[..]]).is_err(), "rg-iot-prod2 is another group");
        assert!(g.check("ns", None, ["/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a"]).is_err());
    }

    #[test]
    fn the_namespace_annotation_only_narrows() {
        let g = Guardrail::new(["/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a"]);
        let hub = format!("{RG}/providers/Microsoft.Devices/IotHubs/h");
        assert!(g.check("team-a", Some(RG), [hub.as_str()]).is_ok());
        let e = g.check("team-a", Some(&format!("{RG}-other")), [hub.as_str()]).unwrap_err();
        assert!(e.0.contains("namespace team-a"), "{e}");
        // A namespace cannot widen past the global list.
        assert!(g.check("team-a", Some("/"), ["/subscriptions/other"]).is_err());
    }
}

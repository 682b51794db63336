//! The allowed scopes: the operator can write role assignments, so whoever may create its
//! resources could otherwise grant any principal access to any hub the operator reaches. Only
//! scopes the cluster admin allowed are managed:
//! - `--allowed-scope` (repeatable canonical ARM ids, set from the Helm values; `/` allows every
//!   scope the credential reaches, for those who want that), and
//! - optionally the namespace annotation `iothubaccess.io/allowed-scopes` (comma or whitespace
//!   separated ids), which can only narrow the global list for that namespace.
//!
//! One rule everywhere that writes: with nothing configured nothing is allowed. Ids are typed
//! and canonical ([`Scope`]), so a prefix compares whole segments, case-insensitively, on the id
//! that is sent: `/subscriptions/abc` covers `/subscriptions/abc/resourceGroups/x` but not
//! `/subscriptions/abcd`, and no `..` can climb out of it. Pure, no I/O.

use std::fmt;

use crate::crd::common::ALLOWED_SCOPES_ANNOTATION;
use crate::domain::Scope;
use crate::domain::ids::ParseIdError;

/// The admin's allow-list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guardrail {
    allowed: Vec<Scope>,
}

/// Why a scope is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotAllowed(pub String);

impl fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How to allow, said whenever nothing is.
pub const HOW_TO_ALLOW: &str = "the cluster admin allows scopes with the Helm value allowedScopes (the --allowed-scope flag, repeatable), e.g. /subscriptions/<id>/resourceGroups/<rg>; --allowed-scope / allows every scope the credential reaches";

/// Parse one `--allowed-scope` value (clap's value parser: the flag is named in its error).
pub fn parse_allowed_scope(value: &str) -> Result<Scope, String> {
    if value.trim().is_empty() {
        return Err("an empty value allows nothing and is refused; give a canonical ARM id such as /subscriptions/<id>/resourceGroups/<rg>, or / for every scope".into());
    }
    Scope::parse(value.trim()).map_err(|e| {
        format!("{e}; give a canonical ARM id such as /subscriptions/<id>/resourceGroups/<rg>, or / for every scope")
    })
}

fn list(scopes: &[Scope]) -> String {
    scopes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl Guardrail {
    /// The allow-list from canonical scopes (sorted, duplicates dropped).
    pub fn new(allowed: impl IntoIterator<Item = Scope>) -> Guardrail {
        let mut allowed: Vec<Scope> = allowed.into_iter().collect();
        allowed.sort_by_key(Scope::key);
        allowed.dedup();
        Guardrail { allowed }
    }

    /// The allow-list from ARM id strings, each parsed as a canonical scope.
    pub fn parse(allowed: impl IntoIterator<Item = impl AsRef<str>>) -> Result<Guardrail, ParseIdError> {
        let scopes = allowed
            .into_iter()
            .filter(|s| !s.as_ref().trim().is_empty())
            .map(|s| Scope::parse(s.as_ref().trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Guardrail::new(scopes))
    }

    pub fn allowed(&self) -> &[Scope] {
        &self.allowed
    }

    /// Nothing allowed: every write is refused.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }

    /// Everything the credential reaches is allowed (`/`).
    pub fn is_open(&self) -> bool {
        self.allowed.contains(&Scope::Root)
    }

    /// Check every ARM id a resource would touch. `namespace_annotation` is the value of
    /// `iothubaccess.io/allowed-scopes` on the resource's namespace, if any.
    pub fn check(&self, namespace: &str, namespace_annotation: Option<&str>, ids: &[Scope]) -> Result<(), NotAllowed> {
        if self.allowed.is_empty() {
            return Err(NotAllowed(format!("the operator manages no Azure scope (deny by default): {HOW_TO_ALLOW}")));
        }
        let narrowed = match namespace_annotation {
            None => None,
            Some(v) => Some(
                v.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        Scope::parse(s).map_err(|e| {
                            NotAllowed(format!(
                                "namespace {namespace}'s annotation {ALLOWED_SCOPES_ANNOTATION} holds '{s}', which is not a canonical ARM id ({}): nothing is allowed in this namespace until the cluster admin fixes it",
                                e.reason
                            ))
                        })
                    })
                    .collect::<Result<Vec<Scope>, NotAllowed>>()?,
            ),
        };
        for id in ids {
            if !self.allowed.iter().any(|p| p.covers(id)) {
                return Err(NotAllowed(format!(
                    "{id} is outside the scopes this operator may manage ({}); ask the cluster admin to add it to the Helm value allowedScopes (--allowed-scope)",
                    list(&self.allowed)
                )));
            }
            if let Some(n) = &narrowed
                && !n.iter().any(|p| p.covers(id))
            {
                return Err(NotAllowed(format!(
                    "{id} is outside the scopes namespace {namespace} may manage (annotation {ALLOWED_SCOPES_ANNOTATION}: {}); ask the cluster admin to extend that annotation",
                    list(n)
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

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }

    #[test]
    fn nothing_configured_denies_with_a_message_that_says_how_to_allow() {
        let e = Guardrail::default().check("ns", None, &[scope(RG)]).unwrap_err();
        assert!(e.0.contains("--allowed-scope"), "{e}");
        assert!(e.0.contains("--allowed-scope / allows every scope"), "{e}");
    }

    #[test]
    fn prefixes_match_whole_segments_case_insensitively() {
        let g = Guardrail::parse(["/subscriptions/5F0C7A9E-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourcegroups/rg-iot-prod/"])
            .unwrap();
        assert!(g.check("ns", None, &[scope(RG)]).is_ok());
        assert!(g.check("ns", None, &[scope(&format!("{RG}/providers/Microsoft.Devices/IotHubs/h"))]).is_ok());
        assert!(g.check("ns", None, &[scope(&format!("{RG}2"))]).is_err(), "rg-iot-prod2 is another group");
        assert!(g.check("ns", None, &[scope("/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a")]).is_err());
    }

    #[test]
    fn the_namespace_annotation_only_narrows() {
        let g = Guardrail::parse(["/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a"]).unwrap();
        let hub = scope(&format!("{RG}/providers/Microsoft.Devices/IotHubs/h"));
        assert!(g.check("team-a", Some(RG), std::slice::from_ref(&hub)).is_ok());
        let e = g.check("team-a", Some(&format!("{RG}-other")), std::slice::from_ref(&hub)).unwrap_err();
        assert!(e.0.contains("namespace team-a"), "{e}");
        // A namespace cannot widen past the global list.
        assert!(g.check("team-a", Some("/"), &[scope("/subscriptions/other")]).is_err());
        // An annotation entry that is not a canonical id allows nothing (fail closed).
        let e = g.check("team-a", Some(&format!("{RG}/../..")), &[hub]).unwrap_err();
        assert!(e.0.contains("not a canonical ARM id"), "{e}");
    }

    #[test]
    fn an_explicit_root_allows_every_scope_and_ids_cannot_be_spelled_out_of_a_prefix() {
        let open = Guardrail::parse(["/"]).unwrap();
        assert!(open.is_open());
        assert!(open.check("ns", None, &[scope("/subscriptions/x")]).is_ok());
        assert!(Guardrail::parse([format!("{RG}/..")]).is_err(), "an allowed scope must be canonical too");
        assert!(parse_allowed_scope("/subscriptions/a/resourceGroups/b/%2e%2e").is_err());
    }
}

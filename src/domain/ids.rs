//! Azure Resource Manager ids the operator handles: the scopes a role can be assigned at (hub,
//! resource group, subscription, management group, and any other resource seen in Azure), role
//! definition ids and role assignment ids. Parsing is case-insensitive on ARM's fixed segments;
//! comparison is case-insensitive throughout, as ARM's is.
//!
//! Every id is **canonical**: `/`-separated segments, none empty, none a dot segment (`.`,
//! `..`), each spelled with ASCII letters, digits, `-`, `_`, `.`, `(` and `)` only (so no
//! backslash, percent-encoding, `?`, `#`, whitespace, control or non-ASCII character), and the
//! root only as an explicit `/`. An HTTP stack resolves or re-encodes other segments, so the id
//! a guard judged would not be the path that is sent; [`Scope::parse`] refuses them, and
//! every id the operator reads, writes or deletes passes through it (specs at `desire`, Azure's
//! answers at the client's edge). Pure, no I/O.

use std::fmt;

use uuid::Uuid;

/// Why `segment` cannot be part of a canonical ARM id, if it cannot.
pub fn segment_problem(segment: &str) -> Option<&'static str> {
    if segment.is_empty() {
        return Some("empty path segment");
    }
    if segment == "." || segment == ".." {
        return Some("a dot segment ('.' or '..')");
    }
    segment.chars().find_map(|c| match c {
        '\\' => Some("a backslash (ARM ids are separated by '/' only)"),
        '%' => Some("percent-encoding ('%')"),
        '?' | '#' => Some("a '?' or '#' (query or fragment)"),
        c if c.is_whitespace() || c.is_control() => Some("whitespace or a control character"),
        c if !c.is_ascii() => Some("a non-ASCII character"),
        c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')') => None,
        _ => Some("a character ARM ids of these scopes do not have (letters, digits, '-', '_', '.', '(', ')' only)"),
    })
}

/// Check every segment of `body` (an id without its leading slash).
fn check_segments(input: &str, body: &str) -> Result<(), ParseIdError> {
    match body.split('/').find_map(segment_problem) {
        Some(reason) => Err(ParseIdError { input: input.to_string(), reason }),
        None => Ok(()),
    }
}

/// A hub by its ARM coordinates.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HubId {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
}

impl HubId {
    pub fn new(subscription_id: impl Into<String>, resource_group: impl Into<String>, name: impl Into<String>) -> Self {
        HubId { subscription_id: subscription_id.into(), resource_group: resource_group.into(), name: name.into() }
    }

    /// The hub's own scope.
    pub fn scope(&self) -> Scope {
        Scope::Hub(self.clone())
    }

    /// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Devices/IotHubs/{name}`.
    pub fn arm_id(&self) -> String {
        self.scope().to_string()
    }

    /// Lower-case key for maps and comparisons.
    pub fn key(&self) -> String {
        self.arm_id().to_ascii_lowercase()
    }
}

impl fmt::Display for HubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.arm_id())
    }
}

/// Where a role assignment applies. Only the first four can be asked for in a spec; `Resource`
/// and `Root` appear when observing what Azure already has.
#[derive(Clone, Debug, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// `/` (tenant root).
    Root,
    /// `/providers/Microsoft.Management/managementGroups/{id}`.
    ManagementGroup(String),
    /// `/subscriptions/{sub}`.
    Subscription(String),
    /// `/subscriptions/{sub}/resourceGroups/{rg}`.
    ResourceGroup { subscription_id: String, resource_group: String },
    /// An IoT hub.
    Hub(HubId),
    /// Any other resource under a resource group (`…/providers/{ns}/{type}/{name}[/…]`), kept as
    /// the full id.
    Resource { subscription_id: String, resource_group: String, id: String },
}

/// Why a string is not an ARM scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not an Azure scope: {reason}")]
pub struct ParseIdError {
    pub input: String,
    pub reason: &'static str,
}

impl Scope {
    /// Parse an ARM scope, with or without the leading slash (ARM and the SDKs use both) and
    /// with at most one trailing slash; refused unless every segment is canonical (see the
    /// module documentation).
    pub fn parse(input: &str) -> Result<Scope, ParseIdError> {
        let err = |reason| ParseIdError { input: input.to_string(), reason };
        let trimmed = input.strip_suffix('/').unwrap_or(input);
        let body = trimmed.strip_prefix('/').unwrap_or(trimmed);
        if body.is_empty() {
            // Only an explicit `/` is the root: an empty string must never widen to everything.
            return match input {
                "/" => Ok(Scope::Root),
                "" => Err(err("an empty id (the root scope is written '/')")),
                _ => Err(err("empty path segment")),
            };
        }
        check_segments(input, body)?;
        let seg: Vec<&str> = body.split('/').collect();
        let eq = |i: usize, lit: &str| seg.get(i).is_some_and(|s| s.eq_ignore_ascii_case(lit));
        if eq(0, "providers") && eq(1, "Microsoft.Management") && eq(2, "managementGroups") {
            return match seg.len() {
                4 => Ok(Scope::ManagementGroup(seg[3].to_string())),
                _ => Err(err("a management group scope is /providers/Microsoft.Management/managementGroups/{id}")),
            };
        }
        if !eq(0, "subscriptions") || seg.len() < 2 {
            return Err(err("expected /subscriptions/{id}/... or a management group"));
        }
        let sub = seg[1].to_string();
        if seg.len() == 2 {
            return Ok(Scope::Subscription(sub));
        }
        if !eq(2, "resourceGroups") || seg.len() < 4 {
            return Err(err("expected /subscriptions/{id}/resourceGroups/{name}"));
        }
        let rg = seg[3].to_string();
        if seg.len() == 4 {
            return Ok(Scope::ResourceGroup { subscription_id: sub, resource_group: rg });
        }
        if !eq(4, "providers") || seg.len() < 8 {
            return Err(err("expected .../providers/{namespace}/{type}/{name}"));
        }
        if seg.len() == 8 && eq(5, "Microsoft.Devices") && eq(6, "IotHubs") {
            return Ok(Scope::Hub(HubId::new(sub, rg, seg[7])));
        }
        Ok(Scope::Resource { subscription_id: sub, resource_group: rg, id: format!("/{body}") })
    }

    /// The scope of a management group, refused unless `id` is one canonical segment.
    pub fn management_group(id: &str) -> Result<Scope, ParseIdError> {
        match Scope::parse(&format!("/providers/Microsoft.Management/managementGroups/{id}"))? {
            s @ Scope::ManagementGroup(_) => Ok(s),
            _ => Err(ParseIdError { input: id.to_string(), reason: "a management group id is one path segment" }),
        }
    }

    /// Lower-case key: two scopes are the same in ARM exactly when their keys are equal.
    pub fn key(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }

    /// Does `self`, as an id prefix, cover `other` (the same scope, or one below it), comparing
    /// whole segments case-insensitively? The root covers everything.
    pub fn covers(&self, other: &Scope) -> bool {
        let (mine, theirs) = (self.key(), other.key());
        mine == "/" || theirs == mine || theirs.starts_with(&format!("{mine}/"))
    }

    /// The scope written without the leading slash, as the authorization SDK wants it.
    pub fn without_leading_slash(&self) -> String {
        self.to_string().trim_start_matches('/').to_string()
    }

    /// The subscription the scope lies in, if any.
    pub fn subscription_id(&self) -> Option<&str> {
        match self {
            Scope::Root | Scope::ManagementGroup(_) => None,
            Scope::Subscription(s) => Some(s),
            Scope::ResourceGroup { subscription_id, .. } | Scope::Resource { subscription_id, .. } => {
                Some(subscription_id)
            }
            Scope::Hub(h) => Some(&h.subscription_id),
        }
    }

    /// The scope's level, for messages and least-privilege reasoning.
    pub fn level(&self) -> ScopeLevelName {
        match self {
            Scope::Root => ScopeLevelName::Root,
            Scope::ManagementGroup(_) => ScopeLevelName::ManagementGroup,
            Scope::Subscription(_) => ScopeLevelName::Subscription,
            Scope::ResourceGroup { .. } => ScopeLevelName::ResourceGroup,
            Scope::Hub(_) => ScopeLevelName::Hub,
            Scope::Resource { .. } => ScopeLevelName::Resource,
        }
    }

    /// True when an assignment at `self` applies to `hub` as far as the ids alone tell: the hub
    /// itself, its resource group, its subscription or the root. Management groups cannot be
    /// decided from ids (membership lives in Azure), so they answer `None`.
    pub fn covers_hub(&self, hub: &HubId) -> Option<bool> {
        let ci = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        match self {
            Scope::Root => Some(true),
            Scope::ManagementGroup(_) => None,
            Scope::Subscription(s) => Some(ci(s, &hub.subscription_id)),
            Scope::ResourceGroup { subscription_id, resource_group } => {
                Some(ci(subscription_id, &hub.subscription_id) && ci(resource_group, &hub.resource_group))
            }
            Scope::Hub(h) => Some(h.key() == hub.key()),
            Scope::Resource { .. } => Some(false),
        }
    }
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl std::hash::Hash for Scope {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Root => write!(f, "/"),
            Scope::ManagementGroup(id) => write!(f, "/providers/Microsoft.Management/managementGroups/{id}"),
            Scope::Subscription(s) => write!(f, "/subscriptions/{s}"),
            Scope::ResourceGroup { subscription_id, resource_group } => {
                write!(f, "/subscriptions/{subscription_id}/resourceGroups/{resource_group}")
            }
            Scope::Hub(h) => write!(
                f,
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Devices/IotHubs/{}",
                h.subscription_id, h.resource_group, h.name
            ),
            Scope::Resource { id, .. } => write!(f, "{id}"),
        }
    }
}

/// The level of a scope, broadest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeLevelName {
    Root,
    ManagementGroup,
    Subscription,
    ResourceGroup,
    Hub,
    Resource,
}

impl fmt::Display for ScopeLevelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ScopeLevelName::Root => "tenant root",
            ScopeLevelName::ManagementGroup => "management group",
            ScopeLevelName::Subscription => "subscription",
            ScopeLevelName::ResourceGroup => "resource group",
            ScopeLevelName::Hub => "hub",
            ScopeLevelName::Resource => "resource",
        };
        f.write_str(s)
    }
}

const ROLE_DEFINITIONS: &str = "/providers/Microsoft.Authorization/roleDefinitions/";
const ROLE_ASSIGNMENTS: &str = "/providers/Microsoft.Authorization/roleAssignments/";

fn split_provider_suffix<'a>(input: &'a str, marker: &str) -> Option<(&'a str, &'a str)> {
    let lower = input.to_ascii_lowercase();
    let at = lower.rfind(&marker.to_ascii_lowercase())?;
    Some((&input[..at], &input[at + marker.len()..]))
}

/// The GUID at the end of a role definition id as Azure writes it (the edge's parser; inside,
/// ids are [`RoleDefinitionId`]). ARM returns both
/// `/providers/Microsoft.Authorization/roleDefinitions/{guid}` and the subscription-qualified
/// form; a bare GUID is accepted too. Compare role definitions by this value only.
pub fn role_definition_guid(id: &str) -> Result<Uuid, ParseIdError> {
    let err = |reason| ParseIdError { input: id.to_string(), reason };
    let tail = match split_provider_suffix(id, ROLE_DEFINITIONS) {
        Some((_, tail)) => tail,
        None if !id.contains('/') => id,
        None => return Err(err("expected .../providers/Microsoft.Authorization/roleDefinitions/{guid}")),
    };
    Uuid::parse_str(tail.trim_end_matches('/')).map_err(|_| err("the role definition name is not a GUID"))
}

/// A role definition id split into the scope it lives at and its GUID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RoleDefinitionId {
    pub scope: Scope,
    pub guid: Uuid,
}

impl RoleDefinitionId {
    pub fn new(scope: Scope, guid: Uuid) -> RoleDefinitionId {
        RoleDefinitionId { scope, guid }
    }

    /// `{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}` (the tenant-level form
    /// has scope [`Scope::Root`]).
    pub fn parse(id: &str) -> Result<RoleDefinitionId, ParseIdError> {
        let err = |reason| ParseIdError { input: id.to_string(), reason };
        let (scope, guid) = split_provider_suffix(id, ROLE_DEFINITIONS)
            .ok_or_else(|| err("expected {scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}"))?;
        let guid =
            Uuid::parse_str(guid.trim_end_matches('/')).map_err(|_| err("the role definition name is not a GUID"))?;
        Ok(RoleDefinitionId { scope: scope_before_provider(scope)?, guid })
    }
}

impl fmt::Display for RoleDefinitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            Scope::Root => write!(f, "{ROLE_DEFINITIONS}{}", self.guid),
            _ => write!(f, "{}{ROLE_DEFINITIONS}{}", self.scope, self.guid),
        }
    }
}

/// A role assignment id split into its scope and GUID name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RoleAssignmentId {
    pub scope: Scope,
    pub name: Uuid,
}

impl RoleAssignmentId {
    pub fn parse(id: &str) -> Result<RoleAssignmentId, ParseIdError> {
        let err = |reason| ParseIdError { input: id.to_string(), reason };
        let (scope, name) = split_provider_suffix(id, ROLE_ASSIGNMENTS)
            .ok_or_else(|| err("expected {scope}/providers/Microsoft.Authorization/roleAssignments/{name}"))?;
        let name =
            Uuid::parse_str(name.trim_end_matches('/')).map_err(|_| err("the role assignment name is not a GUID"))?;
        Ok(RoleAssignmentId { scope: scope_before_provider(scope)?, name })
    }
}

impl fmt::Display for RoleAssignmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            Scope::Root => write!(f, "{}{}", ROLE_ASSIGNMENTS, self.name),
            _ => write!(f, "{}{}{}", self.scope, ROLE_ASSIGNMENTS, self.name),
        }
    }
}

/// The scope in front of `/providers/Microsoft.Authorization/...`: nothing there is the tenant
/// root (`/providers/Microsoft.Authorization/roleAssignments/{name}`), an id that ARM writes
/// without a `/` of its own.
fn scope_before_provider(scope: &str) -> Result<Scope, ParseIdError> {
    if scope.is_empty() { Ok(Scope::Root) } else { Scope::parse(scope) }
}

/// Compare two ARM ids the way ARM does (case-insensitive, trailing slash ignored).
pub fn same_id(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-iot/providers/Microsoft.Devices/IotHubs/hub-a";

    #[test]
    fn scopes_round_trip_and_ignore_case() {
        for s in [
            "/",
            "/providers/Microsoft.Management/managementGroups/mg-platform",
            "/subscriptions/00000000-0000-0000-0000-000000000001",
            "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-iot",
            HUB,
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1",
        ] {
            assert_eq!(Scope::parse(s).unwrap().to_string(), s);
        }
        let lower = Scope::parse(&HUB.to_lowercase()).unwrap();
        assert!(matches!(lower, Scope::Hub(_)));
        assert_eq!(lower, Scope::parse(HUB).unwrap());
        assert_eq!(Scope::parse(&HUB[1..]).unwrap(), Scope::parse(HUB).unwrap());
        assert!(Scope::parse("/subscriptions/s/resourceGroups").is_err());
        assert!(Scope::parse("/tenants/x").is_err());
    }

    #[test]
    fn ids_that_an_http_stack_would_resolve_or_re_encode_are_refused() {
        let sub = "/subscriptions/00000000-0000-0000-0000-000000000001";
        for (bad, why) in [
            (format!("{sub}/resourceGroups/rg/providers/a/b/../../../../../subscriptions/x"), "dot segment"),
            (format!("{sub}/resourceGroups/.."), "dot segment"),
            (format!("{sub}/resourceGroups/./x"), "dot segment"),
            (format!("{sub}/resourceGroups/rg/providers/a/b/%2e%2e"), "percent"),
            (format!("{sub}/resourceGroups/rg%2F..%2F.."), "percent"),
            (format!("{sub}/resourceGroups/rg\\..\\other"), "backslash"),
            (format!("{sub}/resourceGroups/rg?x=1"), "query"),
            (format!("{sub}/resourceGroups/rg#x"), "query"),
            (format!("{sub}/resourceGroups/r g"), "whitespace"),
            (format!("{sub}//resourceGroups/rg"), "empty"),
            (format!("{sub}/resourceGroups/rg//"), "empty"),
            (format!("{sub}/resourceGroups/rg\u{0}"), "control"),
            (format!("{sub}/resourceGroups/r\u{e9}"), "non-ASCII"),
            ("//".to_string(), "empty"),
            (String::new(), "empty id"),
            (format!("{sub}/resourceGroups/rg{{x}}"), "do not have"),
            (format!("{sub}/resourceGroups/rg;x"), "do not have"),
        ] {
            let e = Scope::parse(&bad).expect_err(&bad);
            assert!(e.reason.contains(why), "{bad}: {e}");
        }
        assert!(Scope::management_group("..").is_err());
        assert!(Scope::management_group("mg/../x").is_err());
        assert_eq!(Scope::management_group("mg-1").unwrap(), Scope::ManagementGroup("mg-1".into()));
        // Role definition and assignment ids are judged on the same rules.
        assert!(RoleDefinitionId::parse(&format!(
            "{sub}/resourceGroups/../providers/Microsoft.Authorization/roleDefinitions/4fc6c259-987e-4a07-842e-c321cc9d413f"
        ))
        .is_err());
    }

    #[test]
    fn role_ids_at_the_tenant_root_parse_to_the_root_scope() {
        let g = "4fc6c259-987e-4a07-842e-c321cc9d413f";
        let a = RoleAssignmentId::parse(&format!("/providers/Microsoft.Authorization/roleAssignments/{g}")).unwrap();
        assert_eq!(a.scope, Scope::Root);
        assert_eq!(a.to_string(), format!("/providers/Microsoft.Authorization/roleAssignments/{g}"));
        let d = RoleDefinitionId::parse(&format!("/providers/Microsoft.Authorization/roleDefinitions/{g}")).unwrap();
        assert_eq!(d.scope, Scope::Root);
        assert!(Scope::parse("").is_err(), "a bare empty id is never the root");
    }

    #[test]
    fn a_scope_covers_itself_and_what_lies_below_it_by_whole_segments() {
        let rg = Scope::parse("/subscriptions/S/resourceGroups/rg").unwrap();
        assert!(!rg.covers(&Scope::parse(HUB).unwrap()), "another subscription");
        assert!(rg.covers(&Scope::parse("/SUBSCRIPTIONS/s/resourcegroups/RG/providers/a/b/c").unwrap()));
        assert!(!rg.covers(&Scope::parse("/subscriptions/S/resourceGroups/rg2").unwrap()));
        assert!(!rg.covers(&Scope::parse("/subscriptions/S").unwrap()));
        assert!(Scope::Root.covers(&rg));
    }

    #[test]
    fn role_definition_ids_compare_by_trailing_guid() {
        let g = "4fc6c259-987e-4a07-842e-c321cc9d413f";
        let a = role_definition_guid(&format!("/providers/Microsoft.Authorization/roleDefinitions/{g}")).unwrap();
        let b = role_definition_guid(&format!(
            "/subscriptions/S/providers/microsoft.authorization/roledefinitions/{}",
            g.to_uppercase()
        ))
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(role_definition_guid(g).unwrap(), a);
        assert!(role_definition_guid("/providers/Microsoft.Authorization/roleDefinitions/not-a-guid").is_err());
    }

    #[test]
    fn role_assignment_ids_split_into_scope_and_name() {
        let id =
            format!("{HUB}/providers/Microsoft.Authorization/roleAssignments/05c5a614-a7d6-4502-b150-c2fb455033ff");
        let parsed = RoleAssignmentId::parse(&id).unwrap();
        assert_eq!(parsed.scope, Scope::parse(HUB).unwrap());
        assert_eq!(parsed.to_string(), id);
        let mg = "/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/roleAssignments/05c5a614-a7d6-4502-b150-c2fb455033ff";
        assert_eq!(RoleAssignmentId::parse(mg).unwrap().scope, Scope::ManagementGroup("mg1".into()));
    }

    #[test]
    fn hub_coverage_follows_the_resource_hierarchy() {
        let hub = HubId::new("00000000-0000-0000-0000-000000000001", "rg-iot", "hub-a");
        assert_eq!(
            Scope::parse("/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/RG-IOT")
                .unwrap()
                .covers_hub(&hub),
            Some(true)
        );
        assert_eq!(
            Scope::parse("/subscriptions/00000000-0000-0000-0000-000000000002").unwrap().covers_hub(&hub),
            Some(false)
        );
        assert_eq!(Scope::ManagementGroup("mg".into()).covers_hub(&hub), None);
    }

    #[test]
    fn role_definition_ids_keep_the_scope_they_live_at() {
        let g = Uuid::parse_str("2d0b4c39-8f0e-5b51-9a0c-3f7f5d1c2b4a").unwrap();
        let rg = format!(
            "/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg/providers/Microsoft.Authorization/roleDefinitions/{g}"
        );
        let id = RoleDefinitionId::parse(&rg).unwrap();
        assert_eq!(id.guid, g);
        assert_eq!(id.scope.to_string(), "/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg");
        assert_eq!(id.to_string(), rg);
        assert_eq!(
            RoleDefinitionId::parse(&format!("/providers/microsoft.authorization/roleDefinitions/{g}")).unwrap(),
            RoleDefinitionId::new(Scope::Root, g)
        );
        assert!(
            RoleDefinitionId::parse("/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/nope").is_err()
        );
    }
}

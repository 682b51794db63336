//! `iothub-access-operator setup`: prints what the operator's own Azure identity needs, least
//! privilege, with Azure holding the limit (a delegation condition on the role assignments it may
//! write), as `az` commands, Bicep, Terraform or the JSON document the others are rendered from.
//! The permissions are computed by the pure `plan::identity`; this file reads the manifests (as
//! `validate` and `plan` read them) and builds strings. I/O: the files named by the user,
//! standard output and error. Exit 0: printed; 1: an error (bad flag, invalid manifest), with
//! nothing on standard output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use uuid::Uuid;

use super::reconcile::Policy;
use crate::crd::ReconcileMode;
use crate::domain::{PrincipalType, Scope};
use crate::gate::scopes::HOW_TO_ALLOW;
use crate::manifest::{self, Manifests, Resource};
use crate::plan::identity::{
    self, Declared, DeclaredSpec, RoleAssignmentBody, RoleDefinitionBody, SetupDocument, SetupInput,
};

/// What `setup` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetupFormat {
    /// `az` commands (bash).
    #[default]
    Az,
    /// Bicep, one file per deployment scope.
    Bicep,
    /// Terraform (azurerm).
    Terraform,
    /// The document the others are rendered from (ARM PUT bodies).
    Json,
}

/// The flags of `setup`.
#[derive(clap::Args, Clone, Debug)]
pub struct SetupArgs {
    /// The object id of the operator's identity (its service principal or managed identity).
    #[arg(long)]
    pub principal_id: Uuid,
    /// What kind of principal the identity is (a managed identity is a ServicePrincipal).
    #[arg(long, default_value = "ServicePrincipal", value_parser = principal_type)]
    pub principal_type: PrincipalType,
    /// A subscription (GUID) the SAS interlock searches for DPS and Device Update instances linked
    /// to hubs (repeatable, or comma separated); the hubs' own subscriptions are always searched.
    #[arg(long = "search-subscription", value_delimiter = ',')]
    pub search_subscriptions: Vec<Uuid>,
    /// Files or folders of manifests (`-` for standard input): permissions for exactly these.
    /// Without, for every kind at every allowed scope.
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    pub paths: Vec<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value_t = SetupFormat::Az)]
    pub output: SetupFormat,
    /// `--allowed-scope` (at least one), `--allowed-role`, `--instance-id`: as for `plan`,
    /// `apply` and `run`.
    #[command(flatten)]
    pub policy: Policy,
}

fn principal_type(value: &str) -> Result<PrincipalType, String> {
    PrincipalType::parse(value).ok_or_else(|| "must be one of User, Group, ServicePrincipal".into())
}

/// Run the command: the document in `args.output`'s format on `out`, manifest notes and errors
/// on `err`.
pub fn run(args: &SetupArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let gate = args.policy.gate();
    if gate.scopes().is_empty() {
        anyhow::bail!(
            "--allowed-scope: at least one is needed: the operator's permissions are granted on the allowed scopes ({HOW_TO_ALLOW})"
        );
    }
    let declared = if args.paths.is_empty() {
        None
    } else {
        match declared(&manifest::load(&args.paths), err)? {
            Some(d) => Some(d),
            None => return Ok(1),
        }
    };
    let allowed = |ids: &[Scope]| gate.check("", ids).map_err(|r| r.message);
    let input = SetupInput {
        principal_id: args.principal_id,
        principal_type: args.principal_type,
        instance_id: &args.policy.instance_id,
        allowed_scopes: gate.scopes().allowed(),
        search_subscriptions: &args.search_subscriptions,
        allowed_roles: gate.allowed_roles(),
        manifests: declared.as_deref(),
        allowed: &allowed,
    };
    let doc = identity::setup_document(&input).map_err(anyhow::Error::msg)?;
    out.write_all(render(&doc, args.output).as_bytes())?;
    Ok(0)
}

/// The manifests as `plan::identity` takes them; `None` (after saying why on `err`) when any is
/// invalid: permissions computed from half a folder would be wrong.
fn declared(manifests: &Manifests, err: &mut dyn Write) -> std::io::Result<Option<Vec<Declared>>> {
    let mut problems: Vec<String> = manifests.errors.iter().map(ToString::to_string).collect();
    let mut out = Vec::new();
    for doc in manifests.valid_resources() {
        let none = BTreeMap::new();
        let (mode, problem) =
            ReconcileMode::from_annotations(doc.resource.meta().annotations.as_ref().unwrap_or(&none));
        if let Some(p) = problem {
            problems.push(format!("{}: {}: metadata.annotations: {p}", doc.source, doc.resource.object_ref()));
            continue;
        }
        let spec = match &doc.resource {
            Resource::RoleAssignment(r) => DeclaredSpec::RoleAssignment(r.spec.clone()),
            Resource::CustomRole(r) => DeclaredSpec::CustomRole(r.spec.clone()),
            Resource::SharedAccess(r) => DeclaredSpec::SharedAccess(r.spec.clone()),
        };
        let (namespace, name) = (doc.resource.namespace().to_string(), doc.resource.name().to_string());
        out.push(Declared { namespace, name, mode, spec });
    }
    for n in &manifests.notes {
        writeln!(err, "note: {n}")?;
    }
    if problems.is_empty() {
        return Ok(Some(out));
    }
    for p in &problems {
        writeln!(err, "error: {p}")?;
    }
    writeln!(err, "Nothing printed: fix the invalid manifest(s) above first.")?;
    Ok(None)
}

/// The document in `format`.
pub fn render(doc: &SetupDocument, format: SetupFormat) -> String {
    match format {
        SetupFormat::Json => serde_json::to_string_pretty(doc).unwrap_or_default() + "\n",
        SetupFormat::Az => az(doc),
        SetupFormat::Bicep => bicep(doc),
        SetupFormat::Terraform => terraform(doc),
    }
}

/// `value` as one shell word.
fn sh(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Comment lines: `prefix` before each line of `text`.
fn commented(out: &mut String, prefix: &str, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{prefix}{line}");
    }
}

fn header(out: &mut String, comment: &str, doc: &SetupDocument) {
    let _ = writeln!(
        out,
        "{comment} iothub-access-operator setup: what the operator's Azure identity {} needs.",
        doc.principal_id
    );
    let _ = writeln!(
        out,
        "{comment} Apply as someone who may write role definitions and role assignments at these scopes; the names are"
    );
    let _ =
        writeln!(out, "{comment} derived, so applying it again updates what it wrote (a changed condition included).");
    let _ = writeln!(out, "{comment}");
    for n in &doc.notes {
        let _ = writeln!(out, "{comment} {}", n.about);
        commented(out, &format!("{comment}   risk: "), &n.risk);
        commented(out, &format!("{comment}   avoid: "), &n.avoid);
    }
}

/// The ARM body `az role definition update` takes (camelCase, with the id that fixes the GUID).
fn definition_json(d: &RoleDefinitionBody) -> String {
    serde_json::json!({
        "id": d.id(),
        "roleName": d.role_name,
        "description": d.description,
        "assignableScopes": d.assignable_scopes,
        "permissions": d.permissions,
    })
    .to_string()
}

/// `az` commands, one per object.
fn az(doc: &SetupDocument) -> String {
    let mut out = String::from("#!/usr/bin/env bash\n");
    header(&mut out, "#", doc);
    out.push_str("set -euo pipefail\n");
    for d in &doc.role_definitions {
        let _ = writeln!(out, "\n# Custom role '{}' ({})", d.role_name, d.name);
        out.push_str(
            "# `update` with an \"id\" writes the definition under that GUID (create would pick a random one).\n",
        );
        let _ = writeln!(out, "az role definition update --role-definition {}", sh(&definition_json(d)));
    }
    for a in &doc.role_assignments {
        let _ = writeln!(out, "\n# {} at {}", doc.role_name(a), a.scope);
        let mut args = vec![
            ("--name", a.name.clone()),
            ("--assignee-object-id", a.principal_id.clone()),
            ("--assignee-principal-type", a.principal_type.clone()),
            ("--role", a.role_definition_id.clone()),
            ("--scope", a.scope.clone()),
            ("--description", a.description.clone()),
        ];
        if let (Some(c), Some(v)) = (&a.condition, &a.condition_version) {
            args.push(("--condition", c.clone()));
            args.push(("--condition-version", v.clone()));
        }
        out.push_str("az role assignment create");
        for (flag, value) in args {
            let _ = write!(out, " \\\n  {flag} {}", sh(&value));
        }
        out.push('\n');
    }
    out
}

/// A Bicep single-quoted string.
fn bicep_str(value: &str) -> String {
    let escaped = value
        .replace('\\', r"\\")
        .replace('\'', r"\'")
        .replace("${", r"\${")
        .replace('\n', r"\n")
        .replace('\r', r"\r")
        .replace('\t', r"\t");
    format!("'{escaped}'")
}

fn bicep_list(values: &[String], indent: &str) -> String {
    if values.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[\n");
    for v in values {
        let _ = writeln!(s, "{indent}  {}", bicep_str(v));
    }
    s + indent + "]"
}

/// Where a Bicep file is deployed: one `targetScope` per file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Tenant,
    ManagementGroup(String),
    Subscription(String),
    ResourceGroup(String, String),
}

impl Target {
    /// Where an object at `scope` is deployed; for a resource (a hub), its resource group.
    fn of(scope: &Scope) -> Target {
        match scope {
            Scope::Root => Target::Tenant,
            Scope::ManagementGroup(m) => Target::ManagementGroup(m.clone()),
            Scope::Subscription(s) => Target::Subscription(s.clone()),
            Scope::ResourceGroup { subscription_id, resource_group }
            | Scope::Resource { subscription_id, resource_group, .. } => {
                Target::ResourceGroup(subscription_id.clone(), resource_group.clone())
            }
            Scope::Hub(h) => Target::ResourceGroup(h.subscription_id.clone(), h.resource_group.clone()),
        }
    }

    /// Role definitions are written at a subscription (or management group, or the tenant).
    fn of_definition(d: &RoleDefinitionBody) -> Target {
        match Scope::parse(d.scope()).unwrap_or(Scope::Root) {
            s @ (Scope::Root | Scope::ManagementGroup(_)) => Target::of(&s),
            s => s.subscription_id().map_or(Target::Tenant, |sub| Target::Subscription(sub.to_string())),
        }
    }

    fn file(&self, part: &str) -> String {
        match self {
            Target::Tenant => format!("{part}-tenant.bicep"),
            Target::ManagementGroup(m) => format!("{part}-mg-{m}.bicep"),
            Target::Subscription(s) => format!("{part}-sub-{s}.bicep"),
            Target::ResourceGroup(s, rg) => format!("{part}-rg-{s}-{rg}.bicep"),
        }
    }

    fn target_scope(&self) -> &'static str {
        match self {
            Target::Tenant => "tenant",
            Target::ManagementGroup(_) => "managementGroup",
            Target::Subscription(_) => "subscription",
            Target::ResourceGroup(..) => "resourceGroup",
        }
    }

    fn deploy(&self, file: &str) -> String {
        match self {
            Target::Tenant => format!("az deployment tenant create --location <location> --template-file {file}"),
            Target::ManagementGroup(m) => format!(
                "az deployment mg create --management-group-id {m} --location <location> --template-file {file}"
            ),
            Target::Subscription(s) => {
                format!("az deployment sub create --subscription {s} --location <location> --template-file {file}")
            }
            Target::ResourceGroup(s, rg) => {
                format!("az deployment group create --subscription {s} --resource-group {rg} --template-file {file}")
            }
        }
    }
}

fn bicep_definition(out: &mut String, symbol: &str, d: &RoleDefinitionBody) {
    let _ = writeln!(out, "\n// {} ({})", d.role_name, d.id());
    let _ = writeln!(out, "resource {symbol} 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {{");
    let _ = writeln!(out, "  name: {}", bicep_str(&d.name));
    out.push_str("  properties: {\n");
    let _ = writeln!(out, "    roleName: {}", bicep_str(&d.role_name));
    let _ = writeln!(out, "    description: {}", bicep_str(&d.description));
    out.push_str("    type: 'CustomRole'\n");
    let _ = writeln!(out, "    assignableScopes: {}", bicep_list(&d.assignable_scopes, "    "));
    out.push_str("    permissions: [\n");
    for p in &d.permissions {
        out.push_str("      {\n");
        for (key, list) in [
            ("actions", &p.actions),
            ("notActions", &p.not_actions),
            ("dataActions", &p.data_actions),
            ("notDataActions", &p.not_data_actions),
        ] {
            let _ = writeln!(out, "        {key}: {}", bicep_list(list, "        "));
        }
        out.push_str("      }\n");
    }
    out.push_str("    ]\n  }\n}\n");
}

fn bicep_assignment(out: &mut String, symbol: &str, scope: Option<&str>, doc: &SetupDocument, a: &RoleAssignmentBody) {
    let _ = writeln!(out, "\n// {} at {}", doc.role_name(a), a.scope);
    let _ = writeln!(out, "resource {symbol} 'Microsoft.Authorization/roleAssignments@2022-04-01' = {{");
    let _ = writeln!(out, "  name: {}", bicep_str(&a.name));
    if let Some(s) = scope {
        let _ = writeln!(out, "  scope: {s}");
    }
    out.push_str("  properties: {\n");
    let _ = writeln!(out, "    roleDefinitionId: {}", bicep_str(&a.role_definition_id));
    let _ = writeln!(out, "    principalId: {}", bicep_str(&a.principal_id));
    let _ = writeln!(out, "    principalType: {}", bicep_str(&a.principal_type));
    let _ = writeln!(out, "    description: {}", bicep_str(&a.description));
    if let (Some(c), Some(v)) = (&a.condition, &a.condition_version) {
        let _ = writeln!(out, "    condition: {}", bicep_str(c));
        let _ = writeln!(out, "    conditionVersion: {}", bicep_str(v));
    }
    out.push_str("  }\n}\n");
}

/// Bicep: a file has one `targetScope`, so one file per deployment scope, definitions first.
fn bicep(doc: &SetupDocument) -> String {
    // (part, target) -> the file's body
    let mut files: BTreeMap<(u8, Target), String> = BTreeMap::new();
    for (i, d) in doc.role_definitions.iter().enumerate() {
        bicep_definition(files.entry((1, Target::of_definition(d))).or_default(), &format!("definition{}", i + 1), d);
    }
    let mut hubs: BTreeMap<(Target, String), String> = BTreeMap::new();
    for (i, a) in doc.role_assignments.iter().enumerate() {
        let scope = Scope::parse(&a.scope).unwrap_or(Scope::Root);
        let target = Target::of(&scope);
        let symbol = format!("assignment{}", i + 1);
        let body = files.entry((2, target.clone())).or_default();
        match &scope {
            Scope::Hub(h) => {
                let n = hubs.len() + 1;
                let hub = hubs.entry((target, h.name.to_ascii_lowercase())).or_insert_with(|| {
                    let hub = format!("hub{n}");
                    let _ = writeln!(body, "\nresource {hub} 'Microsoft.Devices/IotHubs@2023-06-30' existing = {{");
                    let _ = writeln!(body, "  name: {}\n}}", bicep_str(&h.name));
                    hub
                });
                bicep_assignment(body, &symbol, Some(hub), doc, a);
            }
            Scope::Resource { .. } => {
                let _ =
                    writeln!(body, "\n// {} at {}: not a hub; assign it with `setup -o az`", doc.role_name(a), a.scope);
            }
            _ => bicep_assignment(body, &symbol, None, doc, a),
        }
    }
    let mut out = String::new();
    header(&mut out, "//", doc);
    out.push_str("//\n// A Bicep file has one targetScope: save each part below under its file name and deploy them\n");
    out.push_str("// in this order (role definitions first):\n");
    let names: Vec<(String, &Target)> =
        files.keys().map(|(part, t)| (t.file(if *part == 1 { "1-definitions" } else { "2-assignments" }), t)).collect();
    for (file, target) in &names {
        let _ = writeln!(out, "//   {}", target.deploy(file));
    }
    for ((file, target), body) in names.iter().zip(files.values()) {
        let _ = writeln!(out, "\n// ===== file: {file} =====");
        let _ = writeln!(out, "targetScope = '{}'", target.target_scope());
        out.push_str(body);
    }
    out
}

/// An HCL quoted string.
fn hcl_str(value: &str) -> String {
    let escaped = value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace("${", "$${")
        .replace("%{", "%%{")
        .replace('\n', r"\n")
        .replace('\r', r"\r")
        .replace('\t', r"\t");
    format!("\"{escaped}\"")
}

fn hcl_list(values: &[String]) -> String {
    format!("[{}]", values.iter().map(|v| hcl_str(v)).collect::<Vec<_>>().join(", "))
}

/// An HCL heredoc of `value` (no trailing newline), indented under `indent`.
fn hcl_heredoc(value: &str, indent: &str) -> String {
    let mut s = String::from("chomp(<<-EOT\n");
    for line in value.replace("${", "$${").replace("%{", "%%{").lines() {
        let _ = writeln!(s, "{indent}  {line}");
    }
    s + indent + "EOT\n" + indent + ")"
}

/// Terraform (azurerm): every object in one configuration; the provider handles every scope.
fn terraform(doc: &SetupDocument) -> String {
    let mut out = String::new();
    header(&mut out, "#", doc);
    out.push_str(
        "#\n# azurerm provider; drop these two blocks when adding this file to a configuration that has them.\n",
    );
    out.push_str("terraform {\n  required_providers {\n    azurerm = {\n      source  = \"hashicorp/azurerm\"\n      version = \">= 3.0\"\n    }\n  }\n}\n\n");
    out.push_str("provider \"azurerm\" {\n  features {}\n}\n");
    let mut symbols: BTreeMap<&str, String> = BTreeMap::new();
    for (i, d) in doc.role_definitions.iter().enumerate() {
        let symbol = format!("definition_{}", i + 1);
        let _ = writeln!(out, "\n# {} ({})", d.role_name, d.id());
        let _ = writeln!(out, "resource \"azurerm_role_definition\" \"{symbol}\" {{");
        let _ = writeln!(out, "  role_definition_id = {}", hcl_str(&d.name));
        let _ = writeln!(out, "  name               = {}", hcl_str(&d.role_name));
        let _ = writeln!(out, "  scope              = {}", hcl_str(d.scope()));
        let _ = writeln!(out, "  description        = {}", hcl_str(&d.description));
        let _ = writeln!(out, "  assignable_scopes  = {}", hcl_list(&d.assignable_scopes));
        for p in &d.permissions {
            out.push_str("\n  permissions {\n");
            let _ = writeln!(out, "    actions          = {}", hcl_list(&p.actions));
            let _ = writeln!(out, "    not_actions      = {}", hcl_list(&p.not_actions));
            let _ = writeln!(out, "    data_actions     = {}", hcl_list(&p.data_actions));
            let _ = writeln!(out, "    not_data_actions = {}", hcl_list(&p.not_data_actions));
            out.push_str("  }\n");
        }
        out.push_str("}\n");
        symbols.insert(d.name.as_str(), symbol);
    }
    for (i, a) in doc.role_assignments.iter().enumerate() {
        let _ = writeln!(out, "\n# {} at {}", doc.role_name(a), a.scope);
        let _ = writeln!(out, "resource \"azurerm_role_assignment\" \"assignment_{}\" {{", i + 1);
        let _ = writeln!(out, "  name               = {}", hcl_str(&a.name));
        let _ = writeln!(out, "  scope              = {}", hcl_str(&a.scope));
        let _ = writeln!(out, "  role_definition_id = {}", hcl_str(&a.role_definition_id));
        let _ = writeln!(out, "  principal_id       = {}", hcl_str(&a.principal_id));
        let _ = writeln!(out, "  principal_type     = {}", hcl_str(&a.principal_type));
        let _ = writeln!(out, "  description        = {}", hcl_str(&a.description));
        // Laid out as `terraform fmt` does: a multi-line value ends the aligned group.
        if let Some(symbol) = doc.definition_of(a).and_then(|d| symbols.get(d.name.as_str())) {
            let _ = writeln!(out, "  depends_on         = [azurerm_role_definition.{symbol}]");
        }
        if let (Some(c), Some(v)) = (&a.condition, &a.condition_version) {
            let _ = writeln!(out, "  condition_version  = {}", hcl_str(v));
            let _ = writeln!(out, "  condition = {}", hcl_heredoc(c, "  "));
        }
        out.push_str("}\n");
    }
    out
}

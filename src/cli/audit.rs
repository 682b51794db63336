//! `audit`: who can reach a hub (its keys, its data plane, its grants) and through which path,
//! read-only. The hubs come from `--hub` or from the manifests (`-f`). Judged from effective
//! permissions by `plan::exposure`, read by `observe::exposure`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use super::reconcile::OutputFormat;
use crate::azure::args::AzureArgs;
use crate::azure::arm::ArmClient;
use crate::domain::{HubId, Scope};
use crate::manifest::{Manifests, Resource};
use crate::plan::exposure::{HubExposure, Reach};

#[derive(clap::Args, Clone, Debug)]
pub struct AuditArgs {
    /// A hub's ARM id (repeatable).
    #[arg(long = "hub")]
    pub hubs: Vec<String>,
    /// Manifests whose hubs to audit (files or folders, `-` for standard input).
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    pub paths: Vec<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Exit 2 when some principal has this access (`keys`, `grant`, `data`; repeatable): a CI gate.
    #[arg(long = "fail-on", value_parser = parse_reach)]
    pub fail_on: Vec<Reach>,
    /// Also list each hub's shared access policies (names and rights). Azure answers them only
    /// together with their keys (listkeys), so this needs that permission; the keys are dropped
    /// unread.
    #[arg(long)]
    pub read_policies: bool,
    #[command(flatten)]
    pub azure: AzureArgs,
}

fn parse_reach(s: &str) -> Result<Reach, String> {
    Reach::parse(s).ok_or_else(|| format!("'{s}' is not one of keys, grant, data"))
}

/// The hubs to audit: `--hub` ids (each must be an IoT hub's ARM id) and every hub the manifests
/// name, deduplicated, in order.
pub fn hubs(args: &AuditArgs, manifests: Option<&Manifests>) -> Result<Vec<HubId>, String> {
    let mut out: Vec<HubId> = Vec::new();
    for h in &args.hubs {
        match Scope::parse(h.trim()) {
            Ok(Scope::Hub(id)) => out.push(id),
            Ok(_) => {
                return Err(format!(
                    "--hub '{h}': not an IoT hub's id (/subscriptions/{{id}}/resourceGroups/{{rg}}/providers/Microsoft.Devices/IotHubs/{{name}})"
                ));
            }
            Err(e) => return Err(format!("--hub '{h}': {e}")),
        }
    }
    if let Some(m) = manifests {
        for d in m.valid_resources() {
            match &d.resource {
                Resource::RoleAssignment(r) => out.push(r.spec.hub.to_hub_id()),
                Resource::SharedAccess(s) => out.push(s.spec.hub.to_hub_id()),
                Resource::CustomRole(_) => {}
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|h| seen.insert(h.key()));
    if out.is_empty() {
        return Err("no hub to audit: give --hub ARM_ID or manifests with -f".into());
    }
    Ok(out)
}

/// `audit`: 0 when it ran, 2 when `--fail-on` matched, 1 on an error.
pub async fn run(args: &AuditArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let manifests = (!args.paths.is_empty()).then(|| crate::manifest::load(&args.paths));
    if let Some(m) = &manifests
        && !m.errors.is_empty()
    {
        for e in &m.errors {
            writeln!(out, "error: {e}")?;
        }
        return Ok(1);
    }
    let hubs = match hubs(args, manifests.as_ref()) {
        Ok(h) => h,
        Err(e) => {
            writeln!(out, "error: {e}")?;
            return Ok(1);
        }
    };
    let client: Arc<ArmClient> = args.azure.client()?;
    let mut audited = Vec::new();
    for hub in &hubs {
        let exposure = crate::observe::exposure::audit_hub(client.as_ref(), hub, args.read_policies)
            .await
            .map_err(|e| anyhow::anyhow!("{hub}: {e}"))?;
        audited.push(exposure);
    }
    let requests: u64 = client.stats().requests().values().sum();
    write(&audited, requests, args.output, out)?;
    let failed = args.fail_on.iter().any(|r| audited.iter().any(|h| h.principals.iter().any(|p| p.access.contains(r))));
    Ok(if failed { 2 } else { 0 })
}

const GROUPS_NOTE: &str = "groups are shown as groups: their members are not expanded";

fn policies_text(h: &HubExposure) -> String {
    match &h.shared_access_policies {
        None => "not read (--read-policies)".into(),
        Some(p) if p.is_empty() => "none".into(),
        Some(p) => p.iter().map(|p| format!("{} ({})", p.key_name, p.rights)).collect::<Vec<_>>().join(", "),
    }
}

fn access_text(a: &[Reach]) -> String {
    a.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

fn paths_text(p: &crate::plan::exposure::PrincipalExposure) -> String {
    p.paths
        .iter()
        .map(|x| {
            let kind = if x.kind == crate::plan::exposure::PathKind::Eligible { " (eligible)" } else { "" };
            let cond = if x.condition.is_some() { " (with a condition)" } else { "" };
            format!("{} at {}{kind}{cond}", x.role_name, x.scope)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Render the audit in `format`.
pub fn write(hubs: &[HubExposure], requests: u64, format: OutputFormat, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            let doc = json!({"hubs": hubs, "requests": requests, "notes": [GROUPS_NOTE]});
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())
        }
        OutputFormat::Table => {
            for h in hubs {
                let sas = if h.shared_access == crate::domain::Access::Deny { "Denied" } else { "Allowed" };
                writeln!(out, "hub {}", h.id)?;
                writeln!(out, "  shared access: {sas}; policies: {}", policies_text(h))?;
                let c = h.counts();
                writeln!(
                    out,
                    "  principals who can reach its keys: {}, grant roles on it: {}, use its data plane: {}",
                    c[&Reach::Keys],
                    c[&Reach::Grant],
                    c[&Reach::Data]
                )?;
                writeln!(out, "  {:<38} {:<17} {:<15} PATHS", "PRINCIPAL", "TYPE", "ACCESS")?;
                for p in &h.principals {
                    writeln!(
                        out,
                        "  {:<38} {:<17} {:<15} {}",
                        p.principal_id,
                        p.principal_type,
                        access_text(&p.access),
                        paths_text(p)
                    )?;
                    if !p.denied_by.is_empty() {
                        writeln!(out, "  {:<38} denied by: {}", "", p.denied_by.join(", "))?;
                    }
                    if let Some(r) = &p.least_privileged_role {
                        writeln!(out, "  {:<38} data: {}; least-privileged role: {r}", "", p.data_areas.join(", "))?;
                    }
                }
            }
            writeln!(out, "note: {GROUPS_NOTE}")?;
            writeln!(out, "{requests} requests to Azure")
        }
        OutputFormat::Markdown => {
            writeln!(out, "**iothub-access-operator audit**: {} hub(s), {requests} requests to Azure\n", hubs.len())?;
            for h in hubs {
                let sas = if h.shared_access == crate::domain::Access::Deny { "Denied" } else { "Allowed" };
                writeln!(out, "#### `{}`\n", h.id)?;
                writeln!(out, "Shared access: **{sas}**; policies: {}\n", policies_text(h))?;
                writeln!(out, "| Principal | Type | Access | Paths |\n|---|---|---|---|")?;
                for p in &h.principals {
                    writeln!(
                        out,
                        "| `{}` | {} | {} | {} |",
                        p.principal_id,
                        p.principal_type,
                        access_text(&p.access),
                        paths_text(p).replace('|', "\\|")
                    )?;
                }
                writeln!(out)?;
            }
            writeln!(out, "_{GROUPS_NOTE}._")
        }
    }
}

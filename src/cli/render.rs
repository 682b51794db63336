//! How `plan` and `apply` show their results: a readable table, one JSON document with stable
//! keys for pipelines, or Markdown for a pull-request comment. Formatting only: the results are the types of `report`, built by
//! `reconcile`.

use std::io::Write;

use serde_json::{Value, json};

use super::report::{ApplyReport, Planned, Summary};
use crate::crd::ReconcileMode;
use crate::manifest::Manifests;
use crate::outcome::Outcome;
use crate::plan::identity_check::Finding as IdentityFinding;
use crate::plan::{Action, Severity};

pub(crate) fn mode_name(m: ReconcileMode) -> &'static str {
    match m {
        ReconcileMode::Manage => "manage",
        ReconcileMode::Observe => "observe",
        ReconcileMode::Skip => "skip",
    }
}

/// Write the manifest errors and notes (validation happens before any Azure call).
pub fn write_manifest_report(manifests: &Manifests, out: &mut dyn Write) -> std::io::Result<()> {
    for e in &manifests.errors {
        writeln!(out, "error: {e}")?;
    }
    for n in &manifests.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}

/// The plan as a table: one row per change, refusal or finding, then a summary line.
pub fn write_table(planned: &[Planned], out: &mut dyn Write) -> std::io::Result<()> {
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut detail: Vec<Vec<String>> = Vec::new();
    for p in planned {
        let mode = mode_name(p.mode).to_string();
        match &p.result {
            _ if p.mode == ReconcileMode::Skip => {
                rows.push([p.object.clone(), mode, "Skipped".into(), "iothubaccess.io/reconcile: skip".into()]);
                detail.push(vec![]);
            }
            Err(e) => {
                rows.push([p.object.clone(), mode, "Error".into(), e.clone()]);
                detail.push(vec![]);
            }
            Ok(plan) => {
                if plan.in_sync() {
                    rows.push([p.object.clone(), mode.clone(), "InSync".into(), "Azure matches the spec".into()]);
                    detail.push(vec![]);
                }
                for a in &plan.actions {
                    rows.push([p.object.clone(), mode.clone(), a.verb().into(), a.describe()]);
                    detail.push(vec![a.target()]);
                }
                for f in &plan.findings {
                    let what = format!("{} {}", f.severity.as_str(), f.reason);
                    rows.push([p.object.clone(), mode.clone(), what, f.message.clone()]);
                    detail.push(f.resource_ids.clone());
                }
            }
        }
    }
    let header = ["RESOURCE".to_string(), "MODE".into(), "CHANGE".into(), "DETAIL".into()];
    let w: Vec<usize> = (0..3).map(|i| rows.iter().chain([&header]).map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let indent = w[0] + w[1] + w[2] + 6;
    writeln!(
        out,
        "{:<w0$}  {:<w1$}  {:<w2$}  {}",
        header[0],
        header[1],
        header[2],
        header[3],
        w0 = w[0],
        w1 = w[1],
        w2 = w[2]
    )?;
    for (r, ids) in rows.iter().zip(&detail) {
        writeln!(out, "{:<w0$}  {:<w1$}  {:<w2$}  {}", r[0], r[1], r[2], r[3], w0 = w[0], w1 = w[1], w2 = w[2])?;
        for id in ids {
            writeln!(out, "{:indent$}{id}", "")?;
        }
    }
    let s = Summary::of(planned);
    writeln!(
        out,
        "\nPlan: {} change(s), {} refused, {} in sync, {} error(s), {} skipped ({} resource(s)).",
        s.changes, s.refused, s.in_sync, s.errors, s.skipped, s.resources
    )
}

fn action_json(a: &Action) -> Value {
    json!({"action": a.verb(), "target": a.target(), "description": a.describe()})
}

/// The plan as JSON (stable keys, for pipelines).
pub fn to_json(manifests: &Manifests, planned: &[Planned]) -> Value {
    let resources: Vec<Value> = planned
        .iter()
        .map(|p| {
            let (actions, findings, error) = match &p.result {
                Ok(plan) => (
                    plan.actions.iter().map(action_json).collect::<Vec<_>>(),
                    plan.findings
                        .iter()
                        .map(|f| {
                            json!({
                                "severity": f.severity.as_str(),
                                "reason": f.reason.as_str(),
                                "message": f.message,
                                "resourceIds": f.resource_ids,
                            })
                        })
                        .collect::<Vec<_>>(),
                    Value::Null,
                ),
                Err(e) => (vec![], vec![], Value::String(e.clone())),
            };
            json!({
                "resource": p.object,
                "source": p.source,
                "mode": mode_name(p.mode),
                "actions": actions,
                "findings": findings,
                "error": error,
            })
        })
        .collect();
    let s = Summary::of(planned);
    json!({
        "resources": resources,
        "invalid": manifests.errors.iter().map(|e| json!({
            "source": e.source, "object": e.object, "field": e.error.path, "message": e.error.message,
        })).collect::<Vec<_>>(),
        "notes": manifests.notes,
        "summary": {
            "resources": s.resources, "changes": s.changes, "refused": s.refused,
            "inSync": s.in_sync, "errors": s.errors + manifests.errors.len(), "skipped": s.skipped,
        },
    })
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Done => "done".into(),
        Outcome::AlreadyDone => "already done".into(),
        Outcome::Adopted(id) => format!("adopted existing {id}"),
        Outcome::Failed(e) => format!("FAILED: {e}"),
        Outcome::Skipped => "skipped (an earlier step failed; nothing is deleted before its replacement exists)".into(),
        Outcome::Refused(found) => format!(
            "REFUSED on a fresh check right before the write: {}",
            found.iter().map(|f| format!("{}: {}", f.reason, f.message)).collect::<Vec<_>>().join("; ")
        ),
        Outcome::Reverted(found) => format!(
            "REVERTED: written, then {}; shared access allowed again",
            found.iter().map(|f| format!("{}: {}", f.reason, f.message)).collect::<Vec<_>>().join("; ")
        ),
        Outcome::Overridden(what, found) if found.is_empty() => format!("OVERRIDDEN: {what}"),
        Outcome::Overridden(what, found) => format!(
            "OVERRIDDEN: {what}; the interlock reports: {}",
            found.iter().map(|f| format!("{}: {}", f.reason, f.message)).collect::<Vec<_>>().join("; ")
        ),
        Outcome::DeniedBut { blockers: found, .. } => {
            format!("DENIED, BUT: {}", crate::plan::messages(found))
        }
    }
}

/// Write what `apply` did and where Azure stands now.
pub fn write_apply_report(report: &ApplyReport, out: &mut dyn Write) -> std::io::Result<()> {
    if report.applied.is_empty() {
        let s = Summary::of(&report.final_plans);
        if s.refused > 0 {
            writeln!(out, "Nothing written: the change(s) below are refused, with the reason.")?;
        } else if s.changes > 0 {
            writeln!(out, "Nothing written: the pending change(s) below are in observe mode.")?;
        } else {
            writeln!(out, "Nothing to write: Azure already matches every managed resource.")?;
        }
    }
    for (a, who) in &report.applied {
        writeln!(out, "{:<22} {}: {}", a.action.verb(), a.action.target(), outcome_text(&a.outcome))?;
        writeln!(out, "{:<22} for {}", "", who.join(", "))?;
    }
    writeln!(out, "\nAfter apply ({} observation pass(es)):", report.passes)?;
    write_table(&report.final_plans, out)
}

/// What `apply` did, and the plans after it, as JSON.
pub fn apply_json(manifests: &Manifests, report: &ApplyReport) -> Value {
    let applied: Vec<Value> = report
        .applied
        .iter()
        .map(|(a, who)| {
            let mut v = action_json(&a.action);
            v["outcome"] = Value::String(outcome_text(&a.outcome));
            v["ok"] = Value::Bool(a.outcome.is_ok());
            v["resources"] = json!(who);
            v
        })
        .collect();
    json!({"applied": applied, "passes": report.passes, "after": to_json(manifests, &report.final_plans)})
}

/// Markdown text: Markdown's punctuation escaped (a `|` would end a table cell, a backtick
/// open code, `<` start HTML), line breaks folded.
fn md(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '|' | '*' | '_' | '<' | '>' | '[' | ']' | '~' | '#' => {
                s.push('\\');
                s.push(c);
            }
            '\r' | '\n' => s.push(' '),
            c => s.push(c),
        }
    }
    s
}

/// An id as inline code; escaped plain text when it holds what code cannot (a backtick, a line
/// break, or a `|`, which must be escaped in a table cell and shows its backslash elsewhere).
fn code(text: &str) -> String {
    if text.is_empty() || text.contains(['`', '|', '\n', '\r']) { md(text) } else { format!("`{text}`") }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary line's totals.
fn md_totals(s: &Summary, invalid: usize) -> String {
    format!(
        "{}, {} refused, {} ({}: {} in sync, {} skipped)",
        count(s.changes, "change", "changes"),
        s.refused,
        count(s.errors + invalid, "error", "errors"),
        count(s.resources, "resource", "resources"),
        s.in_sync,
        s.skipped
    )
}

fn md_refused(p: &Planned) -> bool {
    p.mode != ReconcileMode::Skip && p.plan().is_some_and(|p| p.blockers().next().is_some())
}

fn md_failed(p: &Planned) -> bool {
    p.mode != ReconcileMode::Skip && p.result.is_err()
}

/// First of the plan's sections: the invalid manifests, the resources whose plan failed and the
/// refusals, each with its reason and message.
fn write_md_refusals(manifests: &Manifests, planned: &[Planned], out: &mut dyn Write) -> std::io::Result<()> {
    if manifests.errors.is_empty() && !planned.iter().any(|p| md_refused(p) || md_failed(p)) {
        return Ok(());
    }
    writeln!(out, "\n#### Refused and errors\n")?;
    for e in &manifests.errors {
        let (object, source, field) = (code(&e.object), code(&e.source), code(&e.error.path));
        writeln!(out, "- {object} in {source}: invalid, {field}: {}", md(&e.error.message))?;
    }
    for p in planned.iter().filter(|p| md_refused(p) || md_failed(p)) {
        match &p.result {
            Err(e) => writeln!(out, "- {}: error: {}", code(&p.object), md(e))?,
            Ok(plan) => {
                for f in plan.blockers() {
                    writeln!(out, "- {}: refused, **{}**: {}", code(&p.object), f.reason, md(&f.message))?;
                }
            }
        }
    }
    Ok(())
}

/// The rest of the plan's sections: one table of the changes, then what blocks each refusal (the
/// Azure resources behind it), warnings, notes. Resources in the table format's order.
fn write_md_changes(planned: &[Planned], out: &mut dyn Write) -> std::io::Result<()> {
    let planned: Vec<&Planned> = planned.iter().filter(|p| p.mode != ReconcileMode::Skip).collect();
    let changes: Vec<(&Planned, &Action)> = planned
        .iter()
        .flat_map(|p| p.plan().into_iter().flat_map(|plan| &plan.actions).map(move |a| (*p, a)))
        .collect();
    if changes.is_empty() {
        writeln!(out, "\nNo changes pending.")?;
    } else {
        writeln!(out, "\n#### Changes\n\n| Resource | Change | Detail |\n|---|---|---|")?;
        for (p, a) in changes {
            let verb = match p.mode {
                ReconcileMode::Observe => format!("{} (observe mode: not written)", a.verb()),
                _ => a.verb().to_string(),
            };
            writeln!(out, "| {} | {verb} | {}<br>{} |", code(&p.object), md(&a.describe()), code(&a.target()))?;
        }
    }
    let findings = |blocker: bool| {
        planned
            .iter()
            .flat_map(|p| p.plan().into_iter().flat_map(|plan| &plan.findings).map(move |f| (*p, f)))
            .filter(move |(_, f)| (f.severity == Severity::Blocker) == blocker)
            .collect::<Vec<_>>()
    };
    let blockers = findings(true);
    if !blockers.is_empty() {
        writeln!(out, "\n#### Why refused\n")?;
        for (p, f) in blockers {
            let ids: Vec<String> = f.resource_ids.iter().map(|id| code(id)).collect();
            let ids = if ids.is_empty() { "no Azure resource named".to_string() } else { ids.join(", ") };
            writeln!(out, "- **{}** ({}): {ids}", f.reason, code(&p.object))?;
        }
    }
    let others = findings(false);
    if !others.is_empty() {
        writeln!(out, "\n#### Warnings\n")?;
        for (p, f) in others {
            let severity = f.severity.as_str().to_ascii_lowercase();
            writeln!(out, "- {}: **{}** ({severity}): {}", code(&p.object), f.reason, md(&f.message))?;
        }
    }
    Ok(())
}

/// The resources left out (`skip`) and the manifests' notes, last.
fn write_md_notes(manifests: &Manifests, planned: &[Planned], out: &mut dyn Write) -> std::io::Result<()> {
    let skipped: Vec<String> =
        planned.iter().filter(|p| p.mode == ReconcileMode::Skip).map(|p| code(&p.object)).collect();
    if skipped.is_empty() && manifests.notes.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n#### Notes\n")?;
    if !skipped.is_empty() {
        writeln!(out, "- skipped (`iothubaccess.io/reconcile: skip`): {}", skipped.join(", "))?;
    }
    for n in &manifests.notes {
        writeln!(out, "- {}", md(n))?;
    }
    Ok(())
}

/// `plan -o markdown`: a pull-request comment (GitHub, Azure DevOps). A summary line, refusals
/// and errors, the table of changes, why each refusal, warnings, notes, then the CLI identity's
/// findings when they were looked at. Stable: nothing in it depends on timing.
pub fn write_markdown(
    manifests: &Manifests,
    planned: &[Planned],
    identity: Option<(&str, &Result<Vec<IdentityFinding>, String>)>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let totals = md_totals(&Summary::of(planned), manifests.errors.len());
    writeln!(out, "**iothub-access-operator plan**: {totals}")?;
    write_md_refusals(manifests, planned, out)?;
    write_md_changes(planned, out)?;
    write_md_notes(manifests, planned, out)?;
    if let Some((oid, result)) = identity {
        writeln!(out, "\n#### Identity {}\n", code(oid))?;
        match result {
            Ok(f) if f.is_empty() => writeln!(out, "Holds what these manifests need in Azure and nothing beyond.")?,
            Ok(findings) => {
                for f in findings {
                    writeln!(out, "- **{}**: {}", f.kind.as_str(), md(&f.detail))?;
                }
            }
            Err(e) => writeln!(out, "Not checked: {}", md(e))?,
        }
    }
    Ok(())
}

/// `apply -o markdown`: a summary line, what is refused or failed after it, each write with its
/// outcome, then what is still pending and why (the plan's sections, after the last pass).
pub fn write_apply_markdown(manifests: &Manifests, report: &ApplyReport, out: &mut dyn Write) -> std::io::Result<()> {
    let ok = report.applied.iter().filter(|(a, _)| a.outcome.is_ok()).count();
    let written = match report.applied.len() {
        0 => "nothing written".to_string(),
        n => format!("{ok} of {} done", count(n, "write", "writes")),
    };
    let totals = md_totals(&Summary::of(&report.final_plans), manifests.errors.len());
    let passes = count(report.passes, "pass", "passes");
    writeln!(out, "**iothub-access-operator apply**: {written}; after {passes}: {totals}")?;
    write_md_refusals(manifests, &report.final_plans, out)?;
    if !report.applied.is_empty() {
        writeln!(out, "\n#### Writes\n\n| Resource | Change | Outcome |\n|---|---|---|")?;
        for (a, who) in &report.applied {
            let who: Vec<String> = who.iter().map(|w| code(w)).collect();
            let (verb, target) = (a.action.verb(), code(&a.action.target()));
            writeln!(out, "| {} | {verb}<br>{target} | {} |", who.join("<br>"), md(&outcome_text(&a.outcome)))?;
        }
    }
    write_md_changes(&report.final_plans, out)?;
    write_md_notes(manifests, &report.final_plans, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Finding, Plan, Reason};

    fn planned(object: &str, result: Result<Plan, String>) -> Planned {
        Planned { object: object.into(), source: "x.yaml".into(), mode: ReconcileMode::Manage, result }
    }

    /// A `|` or a backtick in a message cannot break the comment's table or open code; the
    /// refusals and errors come before everything else.
    #[test]
    fn markdown_escapes_what_would_break_a_comment_and_puts_refusals_first() {
        let refused = Plan::new(
            vec![],
            vec![Finding::new(Severity::Blocker, Reason::DpsLinked, "a | b `c` <d> *e*", vec!["/x|y".into()])],
        );
        let plans = [planned("K/ns/ok", Ok(Plan::default())), planned("K/ns/bad", Err("read `x` | failed".into()))];
        let plans = [&plans[..], &[planned("K/ns/refused", Ok(refused))]].concat();
        let mut out = Vec::new();
        write_markdown(&Manifests::default(), &plans, None, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("**iothub-access-operator plan**: 0 changes, 1 refused, 1 error (3 resources"),
            "{text}"
        );
        assert!(text.contains("- `K/ns/bad`: error: read \\`x\\` \\| failed\n"), "{text}");
        assert!(text.contains("refused, **DpsLinked**: a \\| b \\`c\\` \\<d\\> \\*e\\*\n"), "{text}");
        assert!(text.contains("(`K/ns/refused`): /x\\|y\n"), "{text}");
        assert!(text.find("Refused and errors") < text.find("No changes pending"), "{text}");
    }
}

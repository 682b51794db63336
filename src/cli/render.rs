//! How `plan` and `apply` show their results: a readable table, or one JSON document with stable
//! keys for pipelines. Formatting only: the results are the types of `report`, built by
//! `reconcile`.

use std::io::Write;

use serde_json::{Value, json};

use super::report::{ApplyReport, Planned, Summary};
use crate::crd::ReconcileMode;
use crate::manifest::Manifests;
use crate::outcome::Outcome;
use crate::plan::Action;

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

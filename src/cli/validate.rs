//! `iothub-access-operator validate -f PATH...`: offline validation of manifests with exactly
//! the admission rules, for pre-commit hooks and pull-request checks. Reads the named files,
//! writes a report to standard output. Exit 0 when every resource is valid, 1 otherwise.

use std::io::Write;
use std::path::PathBuf;

use crate::manifest;

/// Run the command, writing the report to `out`; returns the exit code.
pub fn run(paths: &[PathBuf], out: &mut dyn Write) -> std::io::Result<i32> {
    let m = manifest::load(paths);
    for e in &m.errors {
        writeln!(out, "error: {e}")?;
    }
    for n in &m.notes {
        writeln!(out, "note: {n}")?;
    }
    let invalid = m.checked - m.valid.len();
    writeln!(
        out,
        "{} resource(s) checked: {} valid, {} invalid, {} error(s)",
        m.checked,
        m.valid.len(),
        invalid,
        m.errors.len()
    )?;
    Ok(if m.errors.is_empty() { 0 } else { 1 })
}

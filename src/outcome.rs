//! What happened to one write ([`Outcome`]): the vocabulary shared by the `apply` step, which
//! collects outcomes, and the interlock, which decides them for hub writes. Plain data, no I/O.

use crate::azure::AzureError;
use crate::domain::RoleAssignmentId;
use crate::plan::{Finding, Wrote};

/// What happened to one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Azure changed as asked.
    Done,
    /// Nothing to change any more (already deleted, or the hub already had the value).
    AlreadyDone,
    /// Creating found the same grant under another name; it now satisfies the spec.
    Adopted(RoleAssignmentId),
    /// The action failed.
    Failed(AzureError),
    /// The interlock's fresh check right before the write refused it; nothing was written.
    Refused(Vec<Finding>),
    /// Deny was written, then these dependents appeared; shared access was allowed again.
    Reverted(Vec<Finding>),
    /// Written, but Azure holds something else (what it holds, e.g. a Modify policy's doing),
    /// and, when Azure holds shared access denied, what the interlock's fresh check finds that
    /// this breaks.
    Overridden(String, Vec<Finding>),
    /// Azure holds the Deny (`written` by this call, or found already so), but the
    /// interlock's fresh check reports these blockers: something needs shared access, or the
    /// check could not be completed. Fail closed: reported, not Ready, checked again soon; never
    /// re-allowed.
    DeniedBut { written: bool, blockers: Vec<Finding> },
    /// Not attempted because an earlier phase failed.
    Skipped,
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Done | Outcome::AlreadyDone | Outcome::Adopted(_))
    }

    /// The outcome as the pure report step sees it (`plan::Wrote`).
    pub fn wrote(&self) -> Wrote {
        match self {
            Outcome::Done | Outcome::AlreadyDone => Wrote::Done,
            Outcome::Adopted(id) => Wrote::Adopted(id.clone()),
            _ => Wrote::NotDone,
        }
    }
}

//! Waiting on a condition instead of sleeping: the emulator's delays (replication, the 404
//! window after a local-auth change) run on its own clock, so a test polls for their effect with
//! a generous deadline rather than racing them with a fixed sleep.
#![allow(dead_code)]

use std::time::Duration;

/// How often [`eventually`] checks.
pub const POLL: Duration = Duration::from_millis(20);
/// A deadline far beyond any delay the tests configure: reached only when something is wrong.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Check `check` every [`POLL`] until it answers `Some`, and return that; panic naming `what` if
/// `deadline` passes first.
pub async fn eventually<T>(what: &str, deadline: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < until, "still waiting after {deadline:?}: {what}");
        tokio::time::sleep(POLL).await;
    }
}

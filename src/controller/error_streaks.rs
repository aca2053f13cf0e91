//! Consecutive reconcile failures per request, so the error policy backs off instead of
//! retrying a request whose DLI or API-server calls keep failing at a fixed pace forever.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Failures in a row by object uid; a successful reconcile ends the streak.
#[derive(Debug, Default)]
pub struct ErrorStreaks {
    failures: Mutex<HashMap<String, u32>>,
}

impl ErrorStreaks {
    /// Counts one more failure of `uid` and returns how many there have been in a row.
    pub fn failed(&self, uid: &str) -> u32 {
        let mut failures = self.lock();
        let streak = failures.entry(uid.to_owned()).or_default();
        *streak = streak.saturating_add(1);
        *streak
    }

    /// Ends the streak of `uid`.
    pub fn succeeded(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // A poisoned lock only means another thread panicked mid-update; counts stay usable.
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_up_per_request_until_one_succeeds() {
        let streaks = ErrorStreaks::default();
        assert_eq!(streaks.failed("a"), 1);
        assert_eq!(streaks.failed("a"), 2);
        assert_eq!(streaks.failed("b"), 1);
        streaks.succeeded("a");
        assert_eq!(streaks.failed("a"), 1);
        assert_eq!(streaks.failed("b"), 2);
    }
}

//! Kubernetes conditions on a `JobStopRequest`: abnormal-true `Stalled`/`Reconciling` plus
//! `Ready`, the convention kstatus, Flux, Argo CD and `kubectl wait` understand, and `Finished`,
//! True once the generation ended whatever the outcome (its reason is the phase), so
//! `kubectl wait --for=condition=Finished` returns on failures too.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const SUBMITTED: &str = "Submitted";
pub const FINISHED: &str = "Finished";

/// Condition reasons, CamelCase as Kubernetes expects; the README's resource reference lists
/// what each one means.
pub mod reason {
    pub const CONNECTION_INVALID: &str = "ConnectionInvalid";
    pub const DEFAULT_CONNECTION_NOT_ALLOWED: &str = "DefaultConnectionNotAllowed";
    pub const ENDPOINT_NOT_ALLOWED: &str = "EndpointNotAllowed";
    pub const JOBS_NOT_ALLOWED: &str = "JobsNotAllowed";
    pub const SUBMITTING: &str = "Submitting";
    pub const STOP_DELIVERED: &str = "StopDelivered";
    pub const CONFIRMING: &str = "Confirming";
    pub const JOBS_STOPPED: &str = "JobsStopped";
    pub const JOBS_FAILED: &str = "JobsFailed";
    pub const DLI_REJECTED: &str = "DliRejected";
    pub const UNAUTHORIZED: &str = "Unauthorized";
    pub const THROTTLED: &str = "Throttled";
    pub const DLI_UNAVAILABLE: &str = "DliUnavailable";
    pub const RESOLVING_OUTCOME: &str = "ResolvingOutcome";
    pub const OUTCOME_UNKNOWN: &str = "OutcomeUnknown";
    pub const CONFIRM_TIMEOUT: &str = "ConfirmTimeout";
    pub const CLAIM_DELAYED: &str = "ClaimDelayed";
    pub const STOP_NEVER_SENT: &str = "StopNeverSent";
    /// A selector's generation that ends without a call.
    pub const NOTHING_TO_STOP: &str = "NothingToStop";
    pub const JOBS_NOT_FOUND: &str = "JobsNotFound";
    pub const TOO_MANY_JOBS: &str = "TooManyJobs";
}

/// One condition as the controller wants it, before timestamps are settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl DesiredCondition {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// Sets `desired` in `conditions`. `lastTransitionTime` moves to `now` only when the status
/// flips (or the condition is new), so re-computing the same state writes nothing new.
pub fn set(
    conditions: &mut Vec<Condition>,
    desired: DesiredCondition,
    generation: i64,
    now: &Time,
) {
    let status = if desired.status { "True" } else { "False" }.to_string();
    let existing = conditions.iter_mut().find(|c| c.type_ == desired.type_);
    match existing {
        Some(condition) => {
            if condition.status != status {
                condition.last_transition_time = now.clone();
            }
            condition.status = status;
            condition.reason = desired.reason.to_string();
            condition.message = desired.message;
            condition.observed_generation = Some(generation);
        }
        None => conditions.push(Condition {
            type_: desired.type_.to_string(),
            status,
            reason: desired.reason.to_string(),
            message: desired.message,
            observed_generation: Some(generation),
            last_transition_time: now.clone(),
        }),
    }
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of that type is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            DesiredCondition::new(READY, false, "Submitting", "calling DLI"),
            1,
            &time(10),
        );
        set(
            &mut conditions,
            DesiredCondition::new(READY, false, "Confirming", "waiting"),
            1,
            &time(20),
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, time(10));
        assert_eq!(conditions[0].reason, "Confirming");

        set(
            &mut conditions,
            DesiredCondition::new(READY, true, "JobsStopped", "done"),
            2,
            &time(30),
        );
        assert_eq!(conditions[0].last_transition_time, time(30));
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[0].observed_generation, Some(2));
        assert!(is_true(&conditions, READY));
        assert!(!is_true(&conditions, STALLED));
    }

    #[test]
    fn recomputing_the_same_condition_changes_nothing() {
        let mut conditions = Vec::new();
        let desired = DesiredCondition::new(STALLED, true, "DliRejected", "DLI.0001");
        set(&mut conditions, desired.clone(), 3, &time(10));
        let before = conditions.clone();
        set(&mut conditions, desired, 3, &time(99));
        assert_eq!(conditions, before);
    }
}

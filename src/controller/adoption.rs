//! Only a change to what is sent makes a new call: a generation whose call would send exactly
//! what an earlier generation's call sent (say, one that only adds `ttlSecondsAfterFinished`
//! or changes `confirm.timeoutSeconds`) keeps that call's outcome. Pure.

use crate::api::{JobStopRequestSpec, JobStopRequestStatus};

/// Digest of what a generation's call sends: the job ids or the selector (as sets: their
/// order changes nothing DLI does), the savepoint flag, the connection, and the nonce (sent to nobody, but
/// changing it is how a user asks for the stop again).
pub fn fingerprint(spec: &JobStopRequestSpec) -> String {
    let mut job_ids = spec.job_ids.clone();
    job_ids.sort_unstable();
    job_ids.dedup();
    let mut sent = serde_json::json!({
        "jobIds": job_ids,
        "triggerSavepoint": spec.trigger_savepoint,
        "connection": spec.connection_ref.as_ref().map(|c| c.name.as_str()),
        "nonce": spec.nonce,
    });
    // Only when present, so the digest of an id request stays what earlier versions stored.
    if let Some(selector) = &spec.job_selector {
        let mut names = selector.names.clone();
        names.sort_unstable();
        sent["jobSelector"] = serde_json::json!({"names": names, "queueName": selector.queue_name});
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, sent.to_string().as_bytes());
    hex::encode(&digest.as_ref()[..16])
}

/// What every condition message starts with once adopted, up to the generation of the call.
const ADOPTED: &str =
    " changes nothing sent to DLI; it keeps the outcome of the call of generation ";

/// `generation` keeps the recorded outcome of the call made for `call_generation`: no call,
/// `observedGeneration` advances, phase and reasons stay, and every condition says so.
pub fn adopted(
    old: &JobStopRequestStatus,
    generation: i64,
    call_generation: i64,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    status.observed_generation = Some(generation);
    for condition in &mut status.conditions {
        condition.observed_generation = Some(generation);
        let original = original_message(&condition.message);
        condition.message = if original.is_empty() {
            String::new()
        } else {
            format!("Generation {generation}{ADOPTED}{call_generation}: {original}")
        };
    }
    status
}

/// A condition message without the note an earlier adoption put in front of it.
fn original_message(message: &str) -> &str {
    message
        .strip_prefix("Generation ")
        .and_then(|rest| rest.split_once(ADOPTED))
        .and_then(|(_, rest)| rest.split_once(": "))
        .map_or(message, |(_, original)| original)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::api::conditions::{self, READY, STALLED};
    use crate::api::{ConfirmSpec, ConnectionRef, JobStopRequestStatus, Phase};
    use crate::controller::fixtures::{spec, time};
    use crate::controller::status::{self as transition};
    use crate::dli::{AnswerElement, JobAnswer, StopAnswer};

    #[test]
    fn only_what_is_sent_changes_the_fingerprint() {
        let base = spec(&[1, 2]);
        let same = [
            JobStopRequestSpec {
                ttl_seconds_after_finished: Some(60),
                ..base.clone()
            },
            JobStopRequestSpec {
                confirm: Some(ConfirmSpec {
                    enabled: false,
                    timeout_seconds: 60,
                }),
                ..base.clone()
            },
            JobStopRequestSpec {
                delivery_deadline_seconds: Some(60),
                ..base.clone()
            },
            spec(&[2, 1]),
        ];
        for other in &same {
            assert_eq!(fingerprint(other), fingerprint(&base), "{other:?}");
        }
        let different = [
            spec(&[1, 2, 3]),
            JobStopRequestSpec {
                trigger_savepoint: true,
                ..base.clone()
            },
            JobStopRequestSpec {
                connection_ref: Some(ConnectionRef { name: "x".into() }),
                ..base.clone()
            },
            JobStopRequestSpec {
                nonce: Some("again".into()),
                ..base.clone()
            },
        ];
        for other in &different {
            assert_ne!(fingerprint(other), fingerprint(&base), "{other:?}");
        }
    }

    fn finished_generation_one() -> JobStopRequestStatus {
        let spec = spec(&[1, 2]);
        let claimed =
            transition::claim(&JobStopRequestStatus::default(), &spec, 1, "op-a", &time(0));
        let answer = StopAnswer {
            http_status: 200,
            request_id: Some("req-1".into()),
            elements: vec![AnswerElement {
                is_success: false,
                message: "job 2 is not running".into(),
            }],
            jobs: vec![
                JobAnswer {
                    job_id: 1,
                    is_success: Some(true),
                    message: Some("delivered".into()),
                },
                JobAnswer {
                    job_id: 2,
                    is_success: Some(false),
                    message: Some("job 2 is not running".into()),
                },
            ],
        };
        let mut spec = spec;
        spec.confirm = Some(ConfirmSpec {
            enabled: false,
            timeout_seconds: 60,
        });
        let answered = transition::delivered(&claimed, &spec, 1, &answer, &time(1));
        let observed = [transition::JobObservation {
            job_id: 2,
            status: Some("job_running".into()),
            savepoint_path: None,
        }];
        transition::confirmed(&answered, &spec, 1, &observed, false, &time(2))
    }

    #[test]
    fn an_adopted_outcome_advances_the_observed_generation_and_says_so() {
        let before = finished_generation_one();
        assert_eq!(before.phase, Some(Phase::PartiallyFailed));
        let after = adopted(&before, 2, 1);
        assert_eq!(after.observed_generation, Some(2));
        assert_eq!(after.phase, before.phase);
        assert_eq!(after.results, before.results);
        assert_eq!(after.submission, before.submission, "no call was made");
        assert_eq!(after.finished_at, before.finished_at);
        for condition in &after.conditions {
            assert_eq!(condition.observed_generation, Some(2), "{condition:?}");
        }
        let ready = conditions::find(&after.conditions, READY).expect("ready");
        let old_ready = conditions::find(&before.conditions, READY).expect("ready");
        assert_eq!(ready.last_transition_time, old_ready.last_transition_time);
        assert_eq!(
            ready.message,
            format!(
                "Generation 2 changes nothing sent to DLI; it keeps the outcome of the call of generation 1: {}",
                old_ready.message
            )
        );
        let stalled = conditions::find(&after.conditions, STALLED).expect("stalled");
        assert_eq!(stalled.status, "True");
    }

    #[test]
    fn adopting_again_does_not_pile_up_notes() {
        let before = finished_generation_one();
        let twice = adopted(&adopted(&before, 2, 1), 3, 1);
        let ready = conditions::find(&twice.conditions, READY).expect("ready");
        let original = conditions::find(&before.conditions, READY).expect("ready");
        assert_eq!(
            ready.message,
            format!(
                "Generation 3 changes nothing sent to DLI; it keeps the outcome of the call of generation 1: {}",
                original.message
            )
        );
    }
}

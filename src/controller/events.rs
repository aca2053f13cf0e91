//! Kubernetes Events for transitions: which status change is one, what it says, and when it
//! goes out.
//!
//! A claim (`Submitting`) lasts one DLI round trip, usually well under a second. Its Event is
//! held back briefly (`--submitting-event-delay`) and dropped if the outcome of that call is
//! recorded meanwhile; a call that takes longer still shows `Submitting` in `kubectl describe`
//! while it is in flight. An Event is an API server write, as costly as a status write, so one
//! that only repeats the status is not sent: a call answered at once that stopped the jobs has
//! the whole story in its status (phase, Ready condition, results). Warnings always go out, and
//! so does the outcome of a claim whose Event went out, so a story told in Events has its end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use tokio::task::AbortHandle;
use tracing::{Instrument, warn};

use crate::api::conditions::reason;
use crate::api::conditions::{self, READY};
use crate::api::{JobStopRequestStatus, Phase};

/// Ready reasons that call for attention although the request may still succeed.
const WARNING_REASONS: [&str; 4] = [
    reason::UNAUTHORIZED,
    reason::THROTTLED,
    reason::DLI_UNAVAILABLE,
    reason::RESOLVING_OUTCOME,
];

/// Longest Event note; the API server refuses notes over 1 kB.
const NOTE_LIMIT: usize = 1000;

/// An Event to publish for a transition.
pub struct Transition {
    pub event: Event,
    /// Whether the state it announces usually ends within a second or two.
    pub short_lived: bool,
    /// A good outcome of a claim: it tells nothing the status does not, unless the claim's
    /// own Event went out.
    pub repeats_status: bool,
}

/// The Event for going from `before` to `after`: a change of phase or of the Ready reason.
/// Progress within a state (another retry, one more job stopped) changes the message but is
/// not a transition; an Event per retry would flood `kubectl describe`.
pub fn transition(
    before: Option<&JobStopRequestStatus>,
    after: &JobStopRequestStatus,
) -> Option<Transition> {
    let ready = conditions::find(&after.conditions, READY)?;
    let old_ready = before.and_then(|s| conditions::find(&s.conditions, READY));
    let changed = before.and_then(|s| s.phase) != after.phase
        || old_ready.map(|c| &c.reason) != Some(&ready.reason);
    if !changed {
        return None;
    }
    let warning = matches!(
        after.phase,
        Some(Phase::Failed | Phase::PartiallyFailed | Phase::Unknown | Phase::Pending)
    ) || WARNING_REASONS.contains(&ready.reason.as_str());
    Some(Transition {
        event: Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: ready.reason.clone(),
            note: Some(truncate(&ready.message, NOTE_LIMIT)),
            action: after.phase.map_or("Reconcile", |p| p.as_str()).to_string(),
            secondary: None,
        },
        short_lived: is_claim(after),
        repeats_status: !warning
            && matches!(after.phase, Some(Phase::Succeeded | Phase::Confirming))
            && before.is_some_and(is_claim),
    })
}

/// A status that records a claim and nothing after it.
fn is_claim(status: &JobStopRequestStatus) -> bool {
    status.phase == Some(Phase::Submitting)
        && conditions::find(&status.conditions, READY)
            .is_some_and(|ready| ready.reason == reason::SUBMITTING)
}

fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((index, _)) => format!("{}…", &text[..index]),
        None => text.to_string(),
    }
}

/// Publishes transition Events off the reconcile path: an Event must not delay the DLI call
/// that follows a claim (a kill in that gap would leave a claim without a call) nor hold up
/// the next status write.
#[derive(Clone)]
pub struct Announcer {
    recorder: Recorder,
    hold: Duration,
    /// Short-lived Events waiting out their hold, by object uid.
    held: Arc<Mutex<HashMap<String, AbortHandle>>>,
}

impl Announcer {
    pub fn new(recorder: Recorder, hold: Duration) -> Self {
        Self {
            recorder,
            hold,
            held: Arc::default(),
        }
    }

    /// Publishes `transition` for the object `reference` names. Any Event of the object still
    /// held back is superseded by this one; a transition that repeats the status supersedes
    /// it without being published itself.
    pub fn announce(&self, reference: ObjectReference, transition: Transition) {
        let key = reference.uid.clone().unwrap_or_default();
        // Locked until the new Event is registered, so a held Event that just finished
        // waiting cannot remove its key after the new one is in.
        let mut held = self.held();
        let superseded = held.remove(&key);
        if let Some(superseded) = &superseded {
            superseded.abort();
        }
        if transition.repeats_status && superseded.is_some() {
            return;
        }
        let recorder = self.recorder.clone();
        let delay = (transition.short_lived && !self.hold.is_zero()).then_some(self.hold);
        let registry = self.held.clone();
        let release_key = key.clone();
        let task = tokio::spawn(
            async move {
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                    // Past this point the Event goes out; a later one no longer replaces it.
                    // Unless one did while this task waited for the lock: the key is then
                    // gone or belongs to a newer held Event of the object.
                    let mut held = registry.lock().unwrap_or_else(PoisonError::into_inner);
                    if held
                        .get(&release_key)
                        .is_none_or(|handle| handle.id() != tokio::task::id())
                    {
                        return;
                    }
                    held.remove(&release_key);
                    drop(held);
                }
                if let Err(error) = recorder.publish(&transition.event, &reference).await {
                    warn!(%error, "cannot publish an event");
                }
            }
            .instrument(tracing::Span::current()),
        );
        if delay.is_some() {
            held.insert(key, task.abort_handle());
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, AbortHandle>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use http::{Method, Request, Response};
    use kube::client::Body;
    use kube::runtime::events::Reporter;

    use super::*;
    use crate::api::JobStopRequestSpec;

    const HOLD: Duration = Duration::from_secs(2);
    use crate::controller::fixtures::{self, time};
    use crate::controller::status::{self as transition, NotDeliveredReason};
    use crate::dli::{AnswerElement, JobAnswer, StopAnswer};

    fn spec() -> JobStopRequestSpec {
        fixtures::spec_confirming(&[7], false)
    }

    fn claimed() -> JobStopRequestStatus {
        transition::claim(&JobStopRequestStatus::default(), &spec(), 1, "op", &time(0))
    }

    fn delivered(claimed: &JobStopRequestStatus) -> JobStopRequestStatus {
        let answer = StopAnswer {
            http_status: 200,
            request_id: Some("req-1".into()),
            elements: vec![AnswerElement {
                is_success: true,
                message: "delivered".into(),
            }],
            jobs: vec![JobAnswer {
                job_id: 7,
                is_success: Some(true),
                message: Some("delivered".into()),
            }],
        };
        transition::delivered(claimed, &spec(), 1, &answer, &time(1))
    }

    fn unavailable(claimed: &JobStopRequestStatus, attempt_message: &str) -> JobStopRequestStatus {
        transition::not_delivered(
            claimed,
            1,
            NotDeliveredReason::Unavailable,
            attempt_message,
            Duration::from_secs(2),
            &time(1),
        )
    }

    #[test]
    fn a_claim_is_a_short_lived_normal_transition() {
        let claim = transition(None, &claimed()).expect("a transition");
        assert_eq!(claim.event.reason, reason::SUBMITTING);
        assert_eq!(claim.event.type_, EventType::Normal);
        assert!(claim.short_lived);
    }

    #[test]
    fn the_outcome_of_a_call_is_announced_at_once() {
        let claimed = claimed();
        let done = transition(Some(&claimed), &delivered(&claimed)).expect("a transition");
        assert_eq!(done.event.reason, reason::STOP_DELIVERED);
        assert_eq!(done.event.type_, EventType::Normal);
        assert!(!done.short_lived);
        assert!(done.repeats_status);
    }

    #[test]
    fn a_failed_try_warns_and_another_failed_try_is_no_new_transition() {
        let claimed = claimed();
        let first = unavailable(&claimed, "503");
        let warning = transition(Some(&claimed), &first).expect("a transition");
        assert_eq!(warning.event.reason, reason::DLI_UNAVAILABLE);
        assert_eq!(warning.event.type_, EventType::Warning);
        assert!(!warning.repeats_status, "a warning always goes out");
        let again = transition::claim(&first, &spec(), 1, "op", &time(3));
        let second = unavailable(&again, "502");
        assert!(transition(Some(&first), &second).is_none());
    }

    #[test]
    fn notes_are_cut_to_what_the_api_server_accepts() {
        let mut status = claimed();
        if let Some(ready) = status.conditions.iter_mut().find(|c| c.type_ == READY) {
            ready.message = "x".repeat(5000);
        }
        let note = transition(None, &status)
            .and_then(|t| t.event.note)
            .expect("a note");
        assert_eq!(note.chars().count(), NOTE_LIMIT + 1);
    }

    /// Event reasons the API server received, answering each create.
    async fn collect_events(
        mut api_server: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    ) -> Vec<String> {
        let mut reasons = Vec::new();
        while let Some((request, answer)) = api_server.next_request().await {
            assert_eq!(request.method(), Method::POST);
            let body = request
                .into_body()
                .collect_bytes()
                .await
                .expect("event body");
            let event: serde_json::Value = serde_json::from_slice(&body).expect("json");
            reasons.push(event["reason"].as_str().unwrap_or_default().to_string());
            answer.send_response(Response::new(Body::from(body.to_vec())));
        }
        reasons
    }

    fn announcer(
        hold: Duration,
    ) -> (
        Announcer,
        tower_test::mock::Handle<Request<Body>, Response<Body>>,
    ) {
        let (service, api_server) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let reporter = Reporter {
            controller: "dli-stop-operator".into(),
            instance: None,
        };
        (
            Announcer::new(Recorder::new(client, reporter), hold),
            api_server,
        )
    }

    fn reference(uid: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("dli.stop-operator.io/v1alpha1".into()),
            kind: Some("JobStopRequest".into()),
            name: Some(format!("r-{uid}")),
            namespace: Some("ns".into()),
            uid: Some(uid.into()),
            ..ObjectReference::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_prompt_success_leaves_the_status_to_speak_and_a_slow_call_shows_claim_and_outcome() {
        let (announcer, api_server) = announcer(HOLD);
        let server = tokio::spawn(collect_events(api_server));
        let claimed = claimed();
        let done = delivered(&claimed);

        // Answered within the hold and the jobs stopped: the status says it all, no Event.
        announcer.announce(
            reference("fast"),
            transition(None, &claimed).expect("claim"),
        );
        tokio::time::sleep(HOLD / 4).await;
        announcer.announce(
            reference("fast"),
            transition(Some(&claimed), &done).expect("outcome"),
        );
        // Answered within the hold with a failure: the warning goes out.
        announcer.announce(
            reference("failing"),
            transition(None, &claimed).expect("claim"),
        );
        tokio::time::sleep(HOLD / 4).await;
        announcer.announce(
            reference("failing"),
            transition(Some(&claimed), &unavailable(&claimed, "503")).expect("outcome"),
        );
        // Still in flight after the hold: the claim shows, then the outcome.
        announcer.announce(
            reference("slow"),
            transition(None, &claimed).expect("claim"),
        );
        tokio::time::sleep(HOLD * 2).await;
        announcer.announce(
            reference("slow"),
            transition(Some(&claimed), &done).expect("outcome"),
        );
        tokio::time::sleep(HOLD * 2).await;
        assert!(announcer.held().is_empty(), "nothing left waiting");

        drop(announcer);
        let reasons = server.await.expect("api server task");
        assert_eq!(
            reasons,
            [
                reason::DLI_UNAVAILABLE,
                reason::SUBMITTING,
                reason::STOP_DELIVERED
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_delay_publishes_every_claim_event() {
        let (announcer, api_server) = announcer(Duration::ZERO);
        let server = tokio::spawn(collect_events(api_server));
        let claimed = claimed();
        announcer.announce(reference("a"), transition(None, &claimed).expect("claim"));
        announcer.announce(
            reference("a"),
            transition(Some(&claimed), &delivered(&claimed)).expect("outcome"),
        );
        tokio::time::sleep(HOLD).await;
        assert!(announcer.held().is_empty());
        drop(announcer);
        let reasons = server.await.expect("api server task");
        assert_eq!(reasons, [reason::SUBMITTING, reason::STOP_DELIVERED]);
    }
}

//! The Argo CD health check (`deploy/argocd/health.lua`) in Argo CD's own Lua sandbox
//! (`tests/gitops-consumers/cmd/argocd-health`: gopher-lua with Argo CD's libraries, the object
//! as global `obj`, the returned table checked against Argo CD's health codes), on hand-made
//! objects: the corners the operator's own objects do not reach. The end-to-end tests
//! (`tests/e2e/gitops.rs`) run it on objects the operator wrote, phase by phase.

#[path = "e2e/consumers.rs"]
mod consumers;

use consumers::Verdict;
use serde_json::{Value, json};

async fn health(object: &Value) -> Verdict {
    consumers::argocd_health(&object.to_string()).await
}

fn request(generation: i64, status: Option<Value>) -> Value {
    let mut object = json!({
        "apiVersion": "dli.stop-operator.io/v1alpha1",
        "kind": "JobStopRequest",
        "metadata": {"name": "nightly", "namespace": "analytics", "generation": generation},
        "spec": {"jobIds": [128, 137]},
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    object
}

fn condition(kind: &str, status: &str, generation: i64, reason: &str, message: &str) -> Value {
    json!({
        "type": kind,
        "status": status,
        "observedGeneration": generation,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-28T10:00:00Z",
    })
}

fn expect(status: &str, message: &str) -> Verdict {
    Verdict {
        status: status.to_owned(),
        message: message.to_owned(),
    }
}

#[tokio::test]
async fn ready_for_the_current_generation_is_healthy() {
    let object = request(
        3,
        Some(json!({
            "observedGeneration": 3,
            "phase": "Succeeded",
            "conditions": [
                condition("Ready", "True", 3, "JobsStopped", "2 of 2 jobs stopped"),
                condition("Reconciling", "False", 3, "JobsStopped", ""),
                condition("Stalled", "False", 3, "JobsStopped", ""),
                condition("Submitted", "True", 3, "StopDelivered", "DLI accepted the stop"),
            ],
        })),
    );
    assert_eq!(
        health(&object).await,
        expect("Healthy", "2 of 2 jobs stopped")
    );
}

#[tokio::test]
async fn stalled_is_degraded_with_the_reason_for_the_user() {
    let object = request(
        2,
        Some(json!({
            "phase": "Failed",
            "conditions": [
                condition("Ready", "False", 2, "DliRejected", "DLI refused the stop"),
                condition("Stalled", "True", 2, "DliRejected", "DLI.0001: job 137 does not exist"),
            ],
        })),
    );
    assert_eq!(
        health(&object).await,
        expect("Degraded", "DLI.0001: job 137 does not exist")
    );
}

#[tokio::test]
async fn stalled_without_a_message_shows_its_reason() {
    let object = request(
        2,
        Some(json!({"conditions": [condition("Stalled", "True", 2, "OutcomeUnknown", "")]})),
    );
    assert_eq!(health(&object).await, expect("Degraded", "OutcomeUnknown"));
}

#[tokio::test]
async fn a_stop_in_progress_is_progressing_with_what_is_happening() {
    let object = request(
        1,
        Some(json!({
            "phase": "Confirming",
            "conditions": [
                condition("Ready", "False", 1, "Confirming", "waiting for DLI to report the jobs stopped"),
                condition("Reconciling", "True", 1, "Confirming", "1 of 2 jobs stopped"),
                condition("Stalled", "False", 1, "Confirming", ""),
            ],
        })),
    );
    assert_eq!(
        health(&object).await,
        expect("Progressing", "1 of 2 jobs stopped")
    );
}

#[tokio::test]
async fn without_reconciling_the_ready_message_explains_the_wait() {
    let object = request(
        1,
        Some(json!({
            "phase": "Pending",
            "conditions": [condition("Ready", "False", 1, "ConnectionInvalid", "Secret analytics/dli-prod has no key projectId")],
        })),
    );
    assert_eq!(
        health(&object).await,
        expect(
            "Progressing",
            "Secret analytics/dli-prod has no key projectId"
        )
    );
}

#[tokio::test]
async fn ready_for_an_older_generation_is_not_healthy() {
    let object = request(
        4,
        Some(json!({
            "observedGeneration": 3,
            "conditions": [condition("Ready", "True", 3, "JobsStopped", "2 of 2 jobs stopped")],
        })),
    );
    assert_eq!(
        health(&object).await,
        expect(
            "Progressing",
            "Waiting for the operator to process generation 4"
        )
    );
}

#[tokio::test]
async fn a_stall_of_an_older_generation_does_not_degrade_the_new_one() {
    // The user changed spec.nonce to retry; the operator has not looked at it yet.
    let object = request(
        5,
        Some(
            json!({"conditions": [condition("Stalled", "True", 4, "OutcomeUnknown", "change spec.nonce to retry")]}),
        ),
    );
    assert_eq!(
        health(&object).await,
        expect(
            "Progressing",
            "Waiting for the operator to process generation 5"
        )
    );
}

#[tokio::test]
async fn ready_without_observed_generation_is_not_trusted() {
    let mut ready = condition("Ready", "True", 1, "JobsStopped", "done");
    ready.as_object_mut().unwrap().remove("observedGeneration");
    let object = request(1, Some(json!({"conditions": [ready]})));
    assert_eq!(health(&object).await.status, "Progressing");
}

#[tokio::test]
async fn a_request_without_status_is_waiting_for_the_operator() {
    assert_eq!(
        health(&request(1, None)).await,
        expect(
            "Progressing",
            "Waiting for the operator to pick up the request"
        )
    );
    // What the API server returns for a request nobody has written a status to yet.
    assert_eq!(
        health(&request(1, Some(json!({"observedGeneration": 0})))).await,
        expect(
            "Progressing",
            "Waiting for the operator to pick up the request"
        )
    );
    assert_eq!(
        health(&request(1, Some(json!({})))).await,
        expect(
            "Progressing",
            "Waiting for the operator to pick up the request"
        )
    );
}

#[tokio::test]
async fn the_sandbox_has_no_string_library_as_in_argo_cd() {
    // What the health check once did: without Argo CD's `useOpenLibs` there is no `string`.
    let script = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        script.path(),
        "return {status = \"Progressing\", message = string.format(\"%d\", 4)}",
    )
    .expect("script written");
    let verdict = consumers::argocd_health_with(script.path(), &request(4, None).to_string())
        .await
        .expect("a verdict");
    assert_eq!(verdict.status, "Unknown");
    assert!(
        verdict
            .message
            .contains("attempt to index a non-table object(nil) with key 'format'"),
        "{}",
        verdict.message
    );
}

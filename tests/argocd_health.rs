//! The Argo CD health check (`deploy/argocd/health.lua`) run in a real Lua interpreter, the
//! way Argo CD runs it: the object as global `obj`, the script's returned table as the verdict.

use mlua::{Lua, LuaSerdeExt, SerializeOptions, Table};
use serde_json::{Value, json};

const SCRIPT: &str = include_str!("../deploy/argocd/health.lua");

#[derive(Debug, PartialEq, Eq)]
struct Health {
    status: String,
    message: String,
}

fn health(object: &Value) -> Health {
    let lua = Lua::new();
    // Argo CD hands the script plain tables: JSON null becomes nil, not a sentinel value.
    let options = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let obj = lua.to_value_with(object, options).unwrap();
    lua.globals().set("obj", obj).unwrap();
    let verdict: Table = lua.load(SCRIPT).set_name("health.lua").eval().unwrap();
    Health {
        status: verdict.get("status").unwrap(),
        message: verdict.get("message").unwrap(),
    }
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

fn expect(status: &str, message: &str) -> Health {
    Health {
        status: status.to_owned(),
        message: message.to_owned(),
    }
}

#[test]
fn ready_for_the_current_generation_is_healthy() {
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
    assert_eq!(health(&object), expect("Healthy", "2 of 2 jobs stopped"));
}

#[test]
fn stalled_is_degraded_with_the_reason_for_the_user() {
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
        health(&object),
        expect("Degraded", "DLI.0001: job 137 does not exist")
    );
}

#[test]
fn stalled_without_a_message_shows_its_reason() {
    let object = request(
        2,
        Some(json!({"conditions": [condition("Stalled", "True", 2, "OutcomeUnknown", "")]})),
    );
    assert_eq!(health(&object), expect("Degraded", "OutcomeUnknown"));
}

#[test]
fn a_stop_in_progress_is_progressing_with_what_is_happening() {
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
        health(&object),
        expect("Progressing", "1 of 2 jobs stopped")
    );
}

#[test]
fn without_reconciling_the_ready_message_explains_the_wait() {
    let object = request(
        1,
        Some(json!({
            "phase": "Pending",
            "conditions": [condition("Ready", "False", 1, "ConnectionInvalid", "Secret analytics/dli-prod has no key projectId")],
        })),
    );
    assert_eq!(
        health(&object),
        expect(
            "Progressing",
            "Secret analytics/dli-prod has no key projectId"
        )
    );
}

#[test]
fn ready_for_an_older_generation_is_not_healthy() {
    let object = request(
        4,
        Some(json!({
            "observedGeneration": 3,
            "conditions": [condition("Ready", "True", 3, "JobsStopped", "2 of 2 jobs stopped")],
        })),
    );
    assert_eq!(
        health(&object),
        expect(
            "Progressing",
            "Waiting for the operator to process generation 4"
        )
    );
}

#[test]
fn a_stall_of_an_older_generation_does_not_degrade_the_new_one() {
    // The user changed spec.nonce to retry; the operator has not looked at it yet.
    let object = request(
        5,
        Some(
            json!({"conditions": [condition("Stalled", "True", 4, "OutcomeUnknown", "change spec.nonce to retry")]}),
        ),
    );
    assert_eq!(
        health(&object),
        expect(
            "Progressing",
            "Waiting for the operator to process generation 5"
        )
    );
}

#[test]
fn ready_without_observed_generation_is_not_trusted() {
    let mut ready = condition("Ready", "True", 1, "JobsStopped", "done");
    ready.as_object_mut().unwrap().remove("observedGeneration");
    let object = request(1, Some(json!({"conditions": [ready]})));
    assert_eq!(health(&object).status, "Progressing");
}

#[test]
fn a_request_without_status_is_waiting_for_the_operator() {
    assert_eq!(
        health(&request(1, None)),
        expect(
            "Progressing",
            "Waiting for the operator to pick up the request"
        )
    );
    assert_eq!(
        health(&request(1, Some(json!({})))),
        expect(
            "Progressing",
            "Waiting for the operator to pick up the request"
        )
    );
}

//! End to end: the real API server, the real operator binary, the DLI stand-in over HTTP, and
//! YAML applied with kubectl the way users apply it. Every test checks the stand-in's count of
//! stop calls, because that count is the promise.

mod consumers;
mod gitops;
mod invalid;
mod selector;
mod support;
mod tenancy;

use std::time::Duration;

use dli_stop_dev::sim::{AnswerShape, Fault, Loss, Operation, Refusal, StopOutcome};
use dli_stop_operator::api::{MAX_JOB_IDS, Phase, SubmissionState, conditions};
use support::{Env, SECRET_KEY};

fn request(name: &str, ids: &[i64], extra: &str) -> String {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!(
        "apiVersion: dli.stop-operator.io/v1alpha1\nkind: JobStopRequest\nmetadata:\n  name: {name}\nspec:\n  jobIds: [{}]\n{extra}",
        ids.join(", ")
    )
}

fn reason(request: &dli_stop_operator::api::JobStopRequest, type_: &str) -> (String, String) {
    let status = request.status.as_ref().expect("status");
    let condition = conditions::find(&status.conditions, type_).expect("condition");
    (condition.status.clone(), condition.reason.clone())
}

#[tokio::test]
async fn happy_path_stops_every_job_once_and_reports_per_job_results() {
    let env = Env::start("happy", &[128, 137]).await;
    env.apply(&request("nightly", &[128, 137], "")).await;
    let done = env.wait_ready("nightly").await;
    let status = done.status.clone().expect("status");
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(status.observed_generation, done.metadata.generation);
    assert_eq!(status.results.len(), 2);
    for (result, id) in status.results.iter().zip([128, 137]) {
        assert_eq!(result.job_id, id);
        assert_eq!(result.is_success, Some(true));
        assert_eq!(result.state.as_deref(), Some("job_cancel_success"));
        assert!(result.message.as_deref().is_some_and(|m| !m.is_empty()));
    }
    let summary = status.summary.expect("summary");
    assert_eq!(
        (
            summary.total,
            summary.succeeded,
            summary.failed,
            summary.pending
        ),
        (2, 2, 0, 0)
    );
    let submission = status.submission.expect("submission");
    assert_eq!(submission.attempts, 1);
    assert_eq!(submission.http_status, Some(200));
    assert!(submission.request_id.is_some());
    assert_eq!(
        reason(&done, conditions::READY),
        ("True".into(), "JobsStopped".into())
    );
    assert_eq!(
        reason(&done, conditions::SUBMITTED),
        ("True".into(), "StopDelivered".into())
    );
    assert_eq!(env.sim.stop_calls(128), 1);
    assert_eq!(env.sim.total_stop_calls(), 1);
    assert_eq!(
        env.sim.job_status(137).as_deref(),
        Some("job_cancel_success")
    );

    let events = env.event_reasons("nightly").await;
    assert!(
        events.iter().any(|r| r == "JobsStopped"),
        "events: {events:?}"
    );

    let waited = env
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            "jsr/nightly",
            "--timeout=5s",
        ])
        .await;
    assert!(waited.is_ok(), "kubectl wait: {waited:?}");
    let table = env
        .kubectl(&["get", "jsr", "nightly"])
        .await
        .expect("kubectl get");
    assert!(
        table.contains("Succeeded") && table.contains("PHASE"),
        "{table}"
    );
}

#[tokio::test]
async fn savepoint_paths_are_recorded() {
    let env = Env::start("savepoint", &[201, 202]).await;
    env.apply(&request(
        "with-savepoint",
        &[201, 202],
        "  triggerSavepoint: true\n",
    ))
    .await;
    let done = env.wait_ready("with-savepoint").await;
    let status = done.status.expect("status");
    for result in &status.results {
        let path = result.savepoint_path.as_deref().unwrap_or_default();
        assert!(
            path.starts_with("obs://") && path.contains(&result.job_id.to_string()),
            "{path}"
        );
    }
    let calls = env.sim.stop_call_log();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].trigger_savepoint);
}

#[tokio::test]
async fn reapplying_the_same_manifest_or_restarting_makes_no_call() {
    let mut env = Env::start("reapply", &[11, 12]).await;
    let manifest = request("stable", &[11, 12], "");
    env.apply(&manifest).await;
    env.wait_ready("stable").await;
    env.apply(&manifest).await;
    env.kubectl(&["label", "jsr/stable", "team=data"])
        .await
        .expect("label");
    env.operator.restart().await;
    env.operator.wait_counted(Phase::Succeeded, 1).await;
    env.settle().await;
    let after = env.wait_ready("stable").await;
    assert_eq!(
        env.sim.total_stop_calls(),
        1,
        "log:\n{}",
        env.operator.log()
    );
    assert_eq!(
        after.status.and_then(|s| s.submission).map(|s| s.attempts),
        Some(1)
    );
    // The operator caches objects without kubectl's last-applied annotation; its status
    // writes must not strip it from the stored object, or the next apply would misbehave.
    assert!(
        after
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/last-applied-configuration")),
        "the last-applied annotation survives the operator's writes"
    );
}

#[tokio::test]
async fn a_spec_change_makes_exactly_one_more_call_and_a_nonce_sends_again() {
    let env = Env::start("generations", &[21, 22, 23]).await;
    env.apply(&request("evolving", &[21], "")).await;
    env.wait_ready("evolving").await;
    env.apply(&request("evolving", &[22, 23], "")).await;
    let second = env.wait_ready("evolving").await;
    assert_eq!(second.metadata.generation, Some(2));
    assert_eq!(second.status.and_then(|s| s.observed_generation), Some(2));
    assert_eq!(env.sim.total_stop_calls(), 2);

    // A change to nothing that is sent (here the confirm timeout, with the jobs reordered) is
    // a new generation that keeps the outcome of the call made: no call.
    env.apply(&request(
        "evolving",
        &[23, 22],
        "  confirm:\n    timeoutSeconds: 600\n",
    ))
    .await;
    let kept = env.wait_ready("evolving").await;
    assert_eq!(kept.metadata.generation, Some(3));
    let status = kept.status.clone().expect("status");
    assert_eq!(status.submission.map(|s| s.generation), Some(2));
    let ready = conditions::find(&status.conditions, conditions::READY).expect("Ready");
    assert!(
        ready
            .message
            .starts_with("Generation 3 changes nothing sent to DLI"),
        "{}",
        ready.message
    );
    env.settle().await;
    assert_eq!(env.sim.total_stop_calls(), 2, "nothing sent changed");

    // The jobs were restarted in DLI; a new nonce sends the same stop again.
    env.sim.add_running_jobs(&[22, 23]);
    env.apply(&request("evolving", &[22, 23], "  nonce: again\n"))
        .await;
    env.wait_for("evolving", "generation 4 stopped", |r| {
        r.status.as_ref().and_then(|s| s.observed_generation) == Some(4)
            && r.status.as_ref().and_then(|s| s.phase) == Some(Phase::Succeeded)
    })
    .await;
    assert_eq!(env.sim.total_stop_calls(), 3);
    assert_eq!(env.sim.stop_calls(21), 1);
    assert_eq!(env.sim.stop_calls(22), 2);
}

#[tokio::test]
async fn dli_rejection_is_final_with_code_and_message() {
    let env = Env::start("rejected", &[31]).await;
    env.apply(&request("unknown-job", &[31, 999], "")).await;
    let failed = env.wait_phase("unknown-job", Phase::Failed).await;
    let status = failed.status.clone().expect("status");
    let error = status.error.expect("error");
    assert_eq!(error.http_status, Some(400));
    assert_eq!(error.code.as_deref(), Some("DLI.16001"));
    assert!(error.message.contains("999"), "{}", error.message);
    assert_eq!(
        reason(&failed, conditions::STALLED),
        ("True".into(), "DliRejected".into())
    );
    env.settle().await;
    assert_eq!(
        env.sim.total_stop_calls(),
        1,
        "a rejection is never retried"
    );
    assert!(
        env.event_reasons("unknown-job")
            .await
            .iter()
            .any(|r| r == "DliRejected")
    );
}

#[tokio::test]
async fn throttling_and_unavailability_are_retried_until_ready() {
    let env = Env::start("retry", &[41, 42]).await;
    env.sim.inject(
        Operation::BatchStop,
        Fault::GatewayRefuses(Refusal::Throttled {
            retry_after_secs: Some(1),
        }),
    );
    env.sim.inject(
        Operation::BatchStop,
        Fault::GatewayRefuses(Refusal::Unavailable),
    );
    env.apply(&request("throttled", &[41, 42], "")).await;
    let done = env.wait_ready("throttled").await;
    let submission = done.status.and_then(|s| s.submission).expect("submission");
    assert_eq!(submission.attempts, 3);
    assert_eq!(
        env.sim.total_stop_calls(),
        1,
        "throttled tries never reach DLI"
    );
    let events = env.event_reasons("throttled").await;
    assert!(
        events.iter().any(|r| r == "Throttled"),
        "events: {events:?}"
    );
}

#[tokio::test]
async fn a_bad_secret_is_unauthorized_until_fixed_without_touching_the_request() {
    let mut env = Env::start("unauthorized", &[51]).await;
    env.operator.without_default_connection();
    env.operator.restart().await;
    let secret = |secret_key: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: dli-prod\nstringData:\n  endpoint: {}\n  projectId: {}\n  accessKey: {}\n  secretKey: {secret_key}\n",
            env.sim.endpoint(),
            env.sim.project_id(),
            support::ACCESS_KEY
        )
    };
    env.apply(&secret("wrong-secret-key")).await;
    env.apply(&request(
        "needs-fix",
        &[51],
        "  connectionRef:\n    name: dli-prod\n",
    ))
    .await;
    env.wait_for("needs-fix", "Unauthorized", |r| {
        r.status
            .as_ref()
            .and_then(|s| conditions::find(&s.conditions, conditions::READY))
            .is_some_and(|c| c.reason == "Unauthorized")
    })
    .await;
    assert_eq!(env.sim.total_stop_calls(), 0);
    // Several retries happen meanwhile; they are one transition, so one event, published once
    // (a repeated publication would show up as a series count).
    env.settle().await;
    let unauthorized: Vec<i32> = env
        .events("needs-fix")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Unauthorized"))
        .map(|e| e.series.and_then(|s| s.count).unwrap_or(1))
        .collect();
    assert_eq!(
        unauthorized,
        vec![1],
        "one event for the transition, not one per retry"
    );
    env.apply(&secret(SECRET_KEY)).await;
    let done = env.wait_ready("needs-fix").await;
    assert_eq!(done.metadata.generation, Some(1));
    assert_eq!(env.sim.total_stop_calls(), 1);
    let log = env.operator.log();
    assert!(
        !log.contains("wrong-secret-key") && !log.contains(SECRET_KEY),
        "a secret reached the log"
    );
}

#[tokio::test]
async fn a_single_element_answer_applies_to_every_job() {
    let env = Env::start("single", &[61, 62, 63]).await;
    env.sim.set_answer_shape(AnswerShape::SingleElement);
    env.apply(&request(
        "single-answer",
        &[61, 62, 63],
        "  confirm:\n    enabled: false\n",
    ))
    .await;
    let done = env.wait_ready("single-answer").await;
    let status = done.status.expect("status");
    assert_eq!(status.response.len(), 1);
    assert!(status.results.iter().all(|r| r.is_success == Some(true)));
    assert_eq!(reason_of(&status.conditions), "StopDelivered");
    assert_eq!(env.sim.total_stop_calls(), 1);
}

fn reason_of(list: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> String {
    conditions::find(list, conditions::READY)
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn one_job_failing_to_stop_makes_the_request_partially_failed() {
    let env = Env::start("partial", &[71, 72]).await;
    env.sim.set_job_stop_outcome(72, StopOutcome::FailToStop);
    env.apply(&request("partial", &[71, 72], "")).await;
    let done = env.wait_phase("partial", Phase::PartiallyFailed).await;
    let status = done.status.clone().expect("status");
    assert_eq!(status.results[1].state.as_deref(), Some("job_cancel_fail"));
    let summary = status.summary.expect("summary");
    assert_eq!((summary.succeeded, summary.failed), (1, 1));
    assert_eq!(
        reason(&done, conditions::STALLED),
        ("True".into(), "JobsFailed".into())
    );
    assert_eq!(env.sim.total_stop_calls(), 1);
}

#[tokio::test]
async fn a_job_that_never_stops_times_out_confirmation() {
    let env = Env::start("timeout", &[81]).await;
    env.sim.set_job_stop_outcome(81, StopOutcome::Hang);
    env.apply(&request(
        "hangs",
        &[81],
        "  confirm:\n    timeoutSeconds: 30\n",
    ))
    .await;
    let env_ref = &env;
    let done = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let current = env_ref.requests().get("hangs").await.expect("get");
            if current.status.as_ref().and_then(|s| s.phase) == Some(Phase::Failed) {
                return current;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("confirmation times out within 90 s");
    assert_eq!(
        reason(&done, conditions::STALLED),
        ("True".into(), "ConfirmTimeout".into())
    );
    assert_eq!(env.sim.total_stop_calls(), 1);
}

#[tokio::test]
async fn ttl_deletes_a_finished_request() {
    let env = Env::start("ttl", &[91]).await;
    env.apply(&request(
        "short-lived",
        &[91],
        "  ttlSecondsAfterFinished: 2\n",
    ))
    .await;
    env.wait_ready("short-lived").await;
    let api = env.requests();
    let gone = tokio::time::timeout(Duration::from_secs(30), async {
        while api.get_opt("short-lived").await.expect("get").is_some() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "request was not deleted after its TTL");
    assert_eq!(env.sim.total_stop_calls(), 1);
}

#[tokio::test]
async fn a_missing_connection_secret_keeps_the_request_pending() {
    let env = Env::start("missing-secret", &[101]).await;
    env.apply(&request(
        "no-secret",
        &[101],
        "  connectionRef:\n    name: does-not-exist\n",
    ))
    .await;
    let pending = env
        .wait_for("no-secret", "Pending", |r| {
            r.status.as_ref().and_then(|s| s.phase) == Some(Phase::Pending)
        })
        .await;
    let status = pending.status.clone().expect("status");
    let ready = conditions::find(&status.conditions, conditions::READY).expect("ready");
    assert_eq!(ready.reason, "ConnectionInvalid");
    assert!(
        ready.message.contains("does-not-exist"),
        "{}",
        ready.message
    );
    assert!(
        status.submission.is_none(),
        "nothing is claimed without a connection"
    );
    assert_eq!(env.sim.total_stop_calls(), 0);
    assert!(
        env.event_reasons("no-secret")
            .await
            .iter()
            .any(|r| r == "ConnectionInvalid")
    );
}

/// `kubectl describe` shows `Submitting` for a call still in flight, then its outcome; a call
/// answered at once gets no Event for its answer, which the status tells: with confirmation
/// one Event, the jobs confirmed stopped, and without it none at all.
#[tokio::test]
async fn a_slow_call_shows_submitting_and_its_outcome_and_a_prompt_one_only_what_the_status_cannot()
{
    let env = Env::start("events", &[131, 132, 133]).await;
    env.sim
        .inject(Operation::BatchStop, Fault::Hold { applied: true });
    env.apply(&request("slow", &[131], "")).await;
    assert!(env.sim.wait_held(1, Duration::from_secs(20)).await);
    tokio::time::timeout(Duration::from_secs(15), async {
        while !env
            .event_reasons("slow")
            .await
            .iter()
            .any(|r| r == "Submitting")
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("a Submitting event while the call is held");
    env.sim.release_held();
    env.wait_ready("slow").await;
    env.settle().await;
    let slow = env.event_reasons("slow").await;
    assert!(
        slow.iter().any(|r| r == "Submitting") && slow.iter().any(|r| r == "JobsStopped"),
        "events: {slow:?}"
    );

    env.apply(&request("prompt", &[132], "")).await;
    env.wait_ready("prompt").await;
    env.settle().await;
    let reasons = env.event_reasons("prompt").await;
    assert_eq!(reasons, ["JobsStopped"]);

    env.apply(&request(
        "unconfirmed",
        &[133],
        "  confirm:\n    enabled: false\n",
    ))
    .await;
    let done = env.wait_ready("unconfirmed").await;
    assert_eq!(
        done.status.and_then(|status| status.phase),
        Some(Phase::Succeeded)
    );
    env.settle().await;
    let reasons = env.event_reasons("unconfirmed").await;
    assert!(reasons.is_empty(), "events: {reasons:?}");
    assert_eq!(env.sim.total_stop_calls(), 3);
}

#[tokio::test]
async fn a_kill_between_claim_and_answer_never_sends_twice() {
    let mut env = Env::start("kill", &[111, 112]).await;
    env.sim
        .inject(Operation::BatchStop, Fault::Hold { applied: true });
    env.apply(&request("killed", &[111, 112], "")).await;
    env.wait_for("killed", "claimed", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.submission.as_ref())
            .is_some_and(|s| s.state == SubmissionState::InFlight)
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while env.sim.total_stop_calls() == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the held call reaches the stand-in");
    env.operator.kill().await;
    env.sim.release_held();
    env.operator.restart().await;
    let done = env.wait_ready("killed").await;
    let status = done.status.expect("status");
    assert_eq!(
        env.sim.total_stop_calls(),
        1,
        "log:\n{}",
        env.operator.log()
    );
    assert!(status.results.iter().all(|r| r.is_success == Some(true)));
    assert_eq!(
        status.submission.map(|s| s.state),
        Some(SubmissionState::Ambiguous)
    );
}

/// The API gateway forwards the stop, DLI stops the jobs, and the gateway then answers 502,
/// 504 or drops the connection: the call happened, so it is never sent again, and job detail
/// shows the jobs stopped.
#[tokio::test]
async fn a_gateway_failure_after_dli_acted_makes_one_call_and_succeeds() {
    let env = Env::start("gateway-lost", &[131, 132, 133]).await;
    for (name, job, loss) in [
        ("bad-gateway", 131, Loss::BadGateway),
        ("gateway-timeout", 132, Loss::GatewayTimeout),
        ("cut-after-acting", 133, Loss::Cut),
    ] {
        env.sim.inject(
            Operation::BatchStop,
            Fault::AnswerLost {
                loss,
                dli_acted: true,
            },
        );
        env.apply(&request(name, &[job], "")).await;
        let done = env.wait_ready(name).await;
        let status = done.status.expect("status");
        assert_eq!(status.phase, Some(Phase::Succeeded), "{name}");
        assert_eq!(
            status.submission.map(|s| (s.state, s.attempts)),
            Some((SubmissionState::Ambiguous, 1)),
            "{name}"
        );
        assert_eq!(
            status.results[0].state.as_deref(),
            Some("job_cancel_success"),
            "{name}"
        );
        assert_eq!(env.sim.stop_calls(job), 1, "{name}: one call, never resent");
    }
    env.settle().await;
    assert_eq!(env.sim.total_stop_calls(), 3);
}

#[tokio::test]
async fn a_kill_before_dli_acted_ends_unknown_and_asks_for_a_nonce() {
    let mut env = Env::start("kill-unknown", &[121]).await;
    env.sim.inject(
        Operation::BatchStop,
        Fault::AnswerLost {
            loss: Loss::Cut,
            dli_acted: false,
        },
    );
    env.apply(&request("cut", &[121], "")).await;
    let unknown = env.wait_phase("cut", Phase::Unknown).await;
    assert_eq!(
        reason(&unknown, conditions::STALLED),
        ("True".into(), "OutcomeUnknown".into())
    );
    env.operator.restart().await;
    env.operator.wait_counted(Phase::Unknown, 1).await;
    env.settle().await;
    assert_eq!(
        env.sim.total_stop_calls(),
        1,
        "an ambiguous call is never resent"
    );
    assert!(
        env.event_reasons("cut")
            .await
            .iter()
            .any(|r| r == "OutcomeUnknown")
    );

    env.apply(&request("cut", &[121], "  nonce: retry-1\n"))
        .await;
    env.wait_ready("cut").await;
    assert_eq!(env.sim.total_stop_calls(), 2);
}

#[tokio::test]
async fn sigterm_finishes_the_call_in_flight_and_writes_its_answer() {
    let mut env = Env::start("sigterm", &[131]).await;
    env.sim
        .inject(Operation::BatchStop, Fault::Latency(Duration::from_secs(2)));
    env.apply(&request(
        "graceful",
        &[131],
        "  confirm:\n    enabled: false\n",
    ))
    .await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while env.sim.total_stop_calls() == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the call starts");
    let exit = env.operator.terminate().await;
    assert!(
        exit.success(),
        "operator exit: {exit:?}\n{}",
        env.operator.log()
    );
    let status = env
        .requests()
        .get("graceful")
        .await
        .expect("get")
        .status
        .expect("status");
    assert_eq!(
        status.phase,
        Some(Phase::Succeeded),
        "the answer was written before exit"
    );
    assert_eq!(env.sim.total_stop_calls(), 1);
}

#[tokio::test]
async fn invalid_specs_are_refused_by_the_api_server() {
    let env = Env::start("invalid", &[]).await;
    let too_many: Vec<i64> = (1..=MAX_JOB_IDS as i64 + 1).collect();
    let cases: Vec<(String, &str)> = vec![
        (request("empty", &[], ""), "spec.jobIds"),
        (request("zero", &[0], ""), "spec.jobIds[0]"),
        (request("negative", &[-5], ""), "spec.jobIds[0]"),
        (request("duplicate", &[7, 7], ""), "Duplicate value"),
        (request("too-many", &too_many, ""), "spec.jobIds"),
        (
            "apiVersion: dli.stop-operator.io/v1alpha1\nkind: JobStopRequest\nmetadata:\n  name: strings\nspec:\n  jobIds: [\"abc\"]\n".into(),
            "spec.jobIds[0]",
        ),
        (request("short-timeout", &[1], "  confirm:\n    timeoutSeconds: 5\n"), "spec.confirm.timeoutSeconds"),
        (request("long-timeout", &[1], "  confirm:\n    timeoutSeconds: 90000\n"), "spec.confirm.timeoutSeconds"),
        (request("bad-ttl", &[1], "  ttlSecondsAfterFinished: -1\n"), "spec.ttlSecondsAfterFinished"),
        (
            "apiVersion: dli.stop-operator.io/v1alpha1\nkind: JobStopRequest\nmetadata:\n  name: no-ids\nspec:\n  triggerSavepoint: true\n".into(),
            "set exactly one of spec.jobIds",
        ),
    ];
    for (manifest, expected) in cases {
        let result = env.try_apply(&manifest).await;
        match result {
            Ok(out) => panic!("accepted an invalid spec:\n{manifest}\n{out}"),
            Err(message) => assert!(
                message.contains(expected),
                "message for\n{manifest}\nlacks `{expected}`: {message}"
            ),
        }
    }
    assert_eq!(env.sim.total_stop_calls(), 0);
}

#[tokio::test]
async fn the_shipped_examples_apply_and_complete() {
    let env = Env::start("examples", &[128, 137, 201, 202, 203, 401, 402]).await;
    for file in [
        "jobstoprequest.yaml",
        "jobstoprequest-savepoint.yaml",
        "jobstoprequest-ttl.yaml",
    ] {
        let yaml = std::fs::read_to_string(support::repo_path("examples").join(file))
            .expect("example reads");
        env.apply(&yaml).await;
    }
    env.wait_ready("nightly-maintenance").await;
    env.wait_ready("stop-with-savepoint").await;
    env.wait_ready("weekly-restart").await;
    assert_eq!(env.sim.total_stop_calls(), 3);
    let secret_check = env
        .kubectl(&[
            "apply",
            "--dry-run=server",
            "-f",
            &support::repo_path("examples").display().to_string(),
        ])
        .await;
    assert!(secret_check.is_ok(), "{secret_check:?}");
}

#[tokio::test]
async fn confirmation_times_out_even_when_dli_becomes_unreachable() {
    let env = Env::start("unreachable", &[141]).await;
    env.sim.set_job_stop_outcome(141, StopOutcome::Hang);
    env.apply(&request(
        "dli-gone",
        &[141],
        "  confirm:\n    timeoutSeconds: 30\n",
    ))
    .await;
    env.wait_for("dli-gone", "Confirming", |r| {
        r.status.as_ref().and_then(|s| s.phase) == Some(Phase::Confirming)
    })
    .await;
    env.sim.clone().shutdown().await;
    let api = env.requests();
    let done = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let current = api.get("dli-gone").await.expect("get");
            if current.status.as_ref().and_then(|s| s.phase) == Some(Phase::Failed) {
                return current;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("the request leaves Confirming once the timeout passed");
    assert_eq!(
        reason(&done, conditions::STALLED),
        ("True".into(), "ConfirmTimeout".into())
    );
    assert_eq!(env.sim.total_stop_calls(), 1);
}

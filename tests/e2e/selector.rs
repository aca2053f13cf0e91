//! Requests that name jobs by name or queue (`spec.jobSelector`): resolved once per generation
//! inside the claim, exact names despite DLI's loose name filter, paged queues, the
//! generations that end without a call, and `preview` showing what the operator then stops.

use dli_stop_dev::sim::{Fault, Operation, Refusal};
use dli_stop_operator::api::{JobStopRequest, Phase, SubmissionState, conditions};

use crate::support::{self, Env};

const RUNNING: &str = "job_running";
const STOPPED: &str = "job_cancel_success";

/// A request selecting with `selector` (YAML lines under `jobSelector:`), plus `extra` spec lines.
fn selector_request(name: &str, selector: &str, extra: &str) -> String {
    format!(
        "apiVersion: dli.stop-operator.io/v1alpha1\nkind: JobStopRequest\nmetadata:\n  name: {name}\nspec:\n  jobSelector:\n{selector}{extra}"
    )
}

/// The ids of every stop call that reached the stand-in, call by call.
fn stop_calls(env: &Env) -> Vec<Vec<i64>> {
    env.sim
        .stop_call_log()
        .into_iter()
        .map(|call| call.job_ids)
        .collect()
}

fn condition(request: &JobStopRequest, type_: &str) -> (String, String) {
    let status = request.status.as_ref().expect("status");
    let found = conditions::find(&status.conditions, type_).expect("condition");
    (found.status.clone(), found.reason.clone())
}

/// What `preview` said.
struct Preview {
    ids: Vec<i64>,
    ok: bool,
    report: serde_json::Value,
    stderr: String,
}

/// `dli-stop-operator preview -f MANIFEST --json`, with the stand-in's `DLI_*` variables as
/// the operator's default connection.
async fn preview(env: &Env, manifest: &str) -> Preview {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("request.yaml");
    std::fs::write(&file, manifest).expect("manifest written");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dli-stop-operator"))
        .args(["preview", "--json", "-n", &env.namespace, "-f"])
        .arg(&file)
        .env_clear()
        .env("KUBECONFIG", env.cp.kubeconfig_path())
        .envs(support::dli_env(&env.sim))
        .output()
        .await
        .expect("preview runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "preview printed no JSON: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let ids = report["stop"]
        .as_array()
        .expect("stop list")
        .iter()
        .filter_map(|job| job["jobId"].as_i64())
        .collect();
    Preview {
        ids,
        ok: output.status.success(),
        report,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// DLI's name filter returns every job whose name contains the text; only the exact name is
/// stopped, and `preview` showed exactly that job before.
#[tokio::test]
async fn names_match_exactly_although_dli_filters_loosely() {
    let env = Env::start("sel-exact", &[]).await;
    env.sim.add_named_job(1001, "orders", "flink-prod", RUNNING);
    env.sim
        .add_named_job(1002, "orders-enrichment", "flink-prod", RUNNING);
    env.sim
        .add_named_job(1003, "old-orders", "flink-dev", RUNNING);
    let manifest = selector_request("by-name", "    names: [orders]\n", "");

    let previewed = preview(&env, &manifest).await;
    assert!(previewed.ok, "{}", previewed.stderr);
    assert_eq!(previewed.ids, vec![1001]);
    assert!(
        previewed.stderr.contains("connection: the DLI_* variables"),
        "{}",
        previewed.stderr
    );
    assert_eq!(env.sim.total_stop_calls(), 0, "preview stops nothing");

    env.apply(&manifest).await;
    let done = env.wait_ready("by-name").await;
    let status = done.status.expect("status");
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(
        status
            .results
            .iter()
            .map(|r| (r.job_id, r.name.as_deref()))
            .collect::<Vec<_>>(),
        vec![(1001, Some("orders"))]
    );
    assert_eq!(
        stop_calls(&env),
        vec![previewed.ids],
        "preview showed what was stopped"
    );
    assert_eq!(env.sim.job_status(1002).as_deref(), Some(RUNNING));
}

/// A queue with more jobs than one page of the list: every page is read (with `offset`), the
/// running jobs are stopped in one call, and stopped ones are listed as skipped.
#[tokio::test]
async fn a_queue_of_several_pages_is_stopped_in_one_call() {
    let env = Env::start("sel-queue", &[]).await;
    for id in 5001..=5230 {
        env.sim
            .add_named_job(id, &format!("stream-{id}"), "flink-prod", RUNNING);
    }
    for id in 5301..=5303 {
        env.sim
            .add_named_job(id, &format!("stream-{id}"), "flink-prod", STOPPED);
    }
    for id in 5401..=5405 {
        env.sim
            .add_named_job(id, &format!("stream-{id}"), "flink-dev", RUNNING);
    }
    let manifest = selector_request(
        "queue",
        "    queueName: flink-prod\n",
        "  confirm:\n    enabled: false\n",
    );
    let previewed = preview(&env, &manifest).await;
    assert!(previewed.ok, "{}", previewed.stderr);
    assert_eq!(previewed.ids.len(), 230);
    let lists_for_preview = env.sim.list_calls();
    assert_eq!(
        lists_for_preview, 3,
        "233 jobs on the queue: three pages of 100"
    );

    env.apply(&manifest).await;
    let done = env.wait_ready("queue").await;
    let status = done.status.expect("status");
    assert_eq!(status.summary.map(|s| s.total), Some(230));
    assert_eq!(
        status.skipped.iter().map(|s| s.job_id).collect::<Vec<_>>(),
        vec![5301, 5302, 5303]
    );
    assert!(status.skipped.iter().all(|s| s.state == STOPPED));
    assert_eq!(stop_calls(&env), vec![previewed.ids]);
    assert_eq!(env.sim.list_calls() - lists_for_preview, 3);
    env.settle().await;
    assert_eq!(env.sim.total_stop_calls(), 1);
}

/// The claim records the resolved ids; the call does not reach DLI, the operator restarts, and
/// a job of the same name appears meanwhile: the retry sends the recorded id, with no list call.
#[tokio::test]
async fn a_restart_between_claim_and_call_sends_the_recorded_ids_without_resolving_again() {
    let mut env = Env::start("sel-restart", &[]).await;
    env.sim.add_named_job(2001, "orders", "flink-prod", RUNNING);
    // More refusals than the operator can try before the kill.
    for _ in 0..50 {
        env.sim.inject(
            Operation::BatchStop,
            Fault::GatewayRefuses(Refusal::Unavailable),
        );
    }
    env.apply(&selector_request("restart", "    names: [orders]\n", ""))
        .await;
    let claimed = env
        .wait_for("restart", "claimed and not delivered", |r| {
            r.status
                .as_ref()
                .and_then(|s| s.submission.as_ref())
                .is_some_and(|s| s.state == SubmissionState::NotDelivered)
        })
        .await;
    env.operator.kill().await;
    let recorded: Vec<i64> = claimed
        .status
        .expect("status")
        .results
        .iter()
        .map(|r| r.job_id)
        .collect();
    assert_eq!(recorded, vec![2001], "the claim recorded the resolved id");
    let lists_before = env.sim.list_calls();
    env.sim.clear_faults(Operation::BatchStop);
    env.sim.add_named_job(2002, "orders", "flink-prod", RUNNING);
    env.operator.restart().await;
    let done = env.wait_ready("restart").await;
    assert_eq!(
        done.status
            .and_then(|s| s.submission)
            .map(|s| s.attempts > 1),
        Some(true)
    );
    assert_eq!(
        stop_calls(&env),
        vec![vec![2001]],
        "the recorded id was sent"
    );
    assert_eq!(
        env.sim.list_calls(),
        lists_before,
        "no resolution after the claim"
    );
    assert_eq!(env.sim.job_status(2002).as_deref(), Some(RUNNING));
}

/// A job re-created under the same name gets a new id; the next generation resolves the name
/// again and stops the new job.
#[tokio::test]
async fn a_recreated_job_is_found_by_name_in_the_next_generation() {
    let env = Env::start("sel-recreated", &[]).await;
    env.sim.add_named_job(3001, "orders", "flink-prod", RUNNING);
    env.apply(&selector_request("recreated", "    names: [orders]\n", ""))
        .await;
    env.wait_ready("recreated").await;
    env.sim.remove_job(3001);
    env.sim.add_named_job(3002, "orders", "flink-prod", RUNNING);
    env.apply(&selector_request(
        "recreated",
        "    names: [orders]\n",
        "  nonce: after-redeploy\n",
    ))
    .await;
    let done = env.wait_ready("recreated").await;
    let status = done.status.expect("status");
    assert_eq!(
        status.results.iter().map(|r| r.job_id).collect::<Vec<_>>(),
        vec![3002]
    );
    assert_eq!(stop_calls(&env), vec![vec![3001], vec![3002]]);
}

/// Nothing running on the queue: the desired state holds, so the request is Ready without a
/// call. A name that matches no job at all fails, names the name, and makes no call.
#[tokio::test]
async fn zero_matches_are_ready_when_nothing_runs_and_failed_when_a_name_does_not_exist() {
    let env = Env::start("sel-zero", &[]).await;
    env.sim.add_named_job(4001, "orders", "quiet", STOPPED);
    env.apply(&selector_request(
        "idle-queue",
        "    queueName: quiet\n",
        "",
    ))
    .await;
    let idle = env.wait_ready("idle-queue").await;
    assert_eq!(
        condition(&idle, conditions::READY),
        ("True".into(), "NothingToStop".into())
    );
    let status = idle.status.expect("status");
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(status.skipped.len(), 1);

    let manifest = selector_request("ghost", "    names: [orders, ghost]\n", "");
    let previewed = preview(&env, &manifest).await;
    assert!(
        !previewed.ok,
        "preview fails for a name that matches nothing: {}",
        previewed.report
    );
    assert_eq!(
        previewed.report["unmatchedNames"],
        serde_json::json!(["ghost"])
    );
    env.apply(&manifest).await;
    let ghost = env.wait_phase("ghost", Phase::Failed).await;
    assert_eq!(
        condition(&ghost, conditions::STALLED),
        ("True".into(), "JobsNotFound".into())
    );
    assert_eq!(
        ghost.status.expect("status").unmatched_names,
        vec!["ghost".to_string()]
    );
    env.settle().await;
    assert_eq!(env.sim.total_stop_calls(), 0);
}

/// More running jobs than one request may stop: refused before any call.
#[tokio::test]
async fn more_than_500_matches_are_refused_before_any_call() {
    let env = Env::start("sel-too-many", &[]).await;
    for id in 6001..=6501 {
        env.sim
            .add_named_job(id, &format!("stream-{id}"), "huge", RUNNING);
    }
    env.apply(&selector_request("too-many", "    queueName: huge\n", ""))
        .await;
    let refused = env.wait_phase("too-many", Phase::Failed).await;
    assert_eq!(
        condition(&refused, conditions::STALLED),
        ("True".into(), "TooManyJobs".into())
    );
    env.settle().await;
    assert_eq!(env.sim.total_stop_calls(), 0);
}

/// Exactly one of `jobIds` and `jobSelector`: the API server refuses both and neither, with a
/// message that says what to fix.
#[tokio::test]
async fn the_api_server_refuses_both_or_neither_of_ids_and_selector() {
    let env = Env::start("sel-invalid", &[]).await;
    let head = "apiVersion: dli.stop-operator.io/v1alpha1\nkind: JobStopRequest\nmetadata:\n  name: bad\nspec:\n";
    let cases = [
        (
            format!("{head}  jobIds: [1]\n  jobSelector:\n    queueName: q\n"),
            "set exactly one of spec.jobIds",
        ),
        (
            format!("{head}  triggerSavepoint: true\n"),
            "set exactly one of spec.jobIds",
        ),
        (
            format!("{head}  jobSelector: {{}}\n"),
            "jobSelector needs names, queueName or both",
        ),
        (
            format!("{head}  jobSelector:\n    names: [a, a]\n"),
            "Duplicate value",
        ),
    ];
    for (manifest, expected) in cases {
        match env.try_apply(&manifest).await {
            Ok(out) => panic!("accepted:\n{manifest}\n{out}"),
            Err(message) => assert!(
                message.contains(expected),
                "message for\n{manifest}\nlacks `{expected}`: {message}"
            ),
        }
    }
}

/// The multi-environment example: one base naming the jobs, an overlay per environment with its
/// own namespace and connection. Each environment's DLI knows the same names under other ids
/// (and a look-alike name); each overlay stops exactly its environment's named jobs.
#[tokio::test]
async fn the_multi_environment_example_stops_the_named_jobs_in_each_environment() {
    for (overlay, ids, queue, savepoint) in [
        ("staging", [7101, 7102], "flink-staging", false),
        ("production", [8101, 8102], "flink-prod", true),
    ] {
        let env = Env::start(&format!("example-{overlay}"), &[]).await;
        env.sim
            .add_named_job(ids[0], "orders-enrichment", queue, RUNNING);
        env.sim
            .add_named_job(ids[1], "clickstream-sessions", queue, RUNNING);
        env.sim
            .add_named_job(ids[1] + 50, "clickstream-sessions-v2", queue, RUNNING);
        let dir = support::repo_path("examples/multi-environment/overlays").join(overlay);
        let rendered = env
            .kubectl(&["kustomize", &dir.display().to_string()])
            .await
            .expect("the overlay renders");
        assert!(rendered.contains("kind: Secret"), "{rendered}");
        // The overlay's objects in this test's namespace; its Secret's placeholders replaced by
        // this environment's stand-in.
        let objects: Vec<String> = rendered
            .split("\n---\n")
            .filter(|object| !object.contains("kind: Secret"))
            .map(|object| {
                object.replace(
                    &format!("namespace: analytics-{overlay}"),
                    &format!("namespace: {}", env.namespace),
                )
            })
            .collect();
        env.apply(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: dli\ntype: Opaque\nstringData:\n  endpoint: {}\n  projectId: {}\n  accessKey: {}\n  secretKey: {}\n",
            env.sim.endpoint(),
            env.sim.project_id(),
            support::ACCESS_KEY,
            support::SECRET_KEY
        ))
        .await;
        let request = objects
            .iter()
            .find(|object| object.contains("kind: JobStopRequest"))
            .expect("the overlay holds the request");
        // Through the request's connectionRef Secret, read with the kubeconfig.
        let previewed = preview(&env, request).await;
        assert!(previewed.ok, "{}", previewed.stderr);
        assert_eq!(
            previewed.ids,
            ids.to_vec(),
            "{overlay}: {}",
            previewed.report
        );
        assert!(
            previewed
                .stderr
                .contains(&format!("connection: Secret {}/dli", env.namespace)),
            "{}",
            previewed.stderr
        );
        env.apply(&objects.join("\n---\n")).await;
        let done = env.wait_ready("nightly-maintenance").await;
        assert_eq!(
            done.status
                .expect("status")
                .results
                .iter()
                .map(|r| r.job_id)
                .collect::<Vec<_>>(),
            ids.to_vec(),
            "{overlay}"
        );
        let calls = env.sim.stop_call_log();
        assert_eq!(calls.len(), 1, "{overlay}");
        assert_eq!(calls[0].job_ids, ids.to_vec(), "{overlay}");
        assert_eq!(calls[0].trigger_savepoint, savepoint, "{overlay}");
    }
}

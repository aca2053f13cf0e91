//! The consumers of the status, run for real on objects the operator wrote and read back from
//! the API server: Argo CD's Lua sandbox with the shipped health check, kstatus, Flux (its
//! kstatus and the README's `healthCheckExprs` through Flux's CEL evaluator), and the README's
//! `kubectl wait` recipes with kubectl itself. The rows of the README's GitOps table, phase by
//! phase.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use dli_stop_dev::sim::{Fault, Loss, Operation, StopOutcome};
use dli_stop_operator::api::{JobStopRequest, Phase, conditions};
use kube::Api;

use super::consumers;
use super::request;
use super::support::{Env, WAIT, repo_path, run_kubectl};

/// The part of the README under `heading` (e.g. `### Flux`), up to the next heading of that
/// level or above.
fn readme_section(heading: &str) -> String {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README reads");
    let level = heading.chars().take_while(|c| *c == '#').count();
    let mut lines = readme.lines().skip_while(|line| *line != heading);
    assert!(lines.next().is_some(), "README has a section {heading}");
    let mut in_code = false;
    lines
        .take_while(|line| {
            if line.starts_with("```") {
                in_code = !in_code;
            }
            let hashes = line.chars().take_while(|c| *c == '#').count();
            in_code || hashes == 0 || hashes > level || !line[hashes..].starts_with(' ')
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The fenced code blocks of `text` in `language`.
fn code_blocks(text: &str, language: &str) -> Vec<String> {
    let fence = format!("```{language}\n");
    text.split(&fence)
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .map(str::to_string)
        .collect()
}

/// The `healthCheckExprs` entry the README gives for Flux.
fn readme_health_check() -> serde_json::Value {
    let blocks = code_blocks(&readme_section("### Flux"), "yaml");
    let block = blocks
        .iter()
        .find(|b| b.contains("healthCheckExprs"))
        .expect("the Flux section shows healthCheckExprs");
    let parsed: serde_json::Value = serde_saphyr::from_str(block).expect("the block is YAML");
    parsed["healthCheckExprs"][0].clone()
}

/// The README's `kubectl wait` recipe: wait until finished, tell which, exit 0 on success.
fn readme_wait_recipe() -> [String; 3] {
    let blocks = code_blocks(&readme_section("### kubectl wait"), "sh");
    let block = blocks
        .first()
        .expect("the kubectl wait section has a sh block");
    let commands: Vec<String> = block.lines().map(str::to_string).collect();
    <[String; 3]>::try_from(commands)
        .unwrap_or_else(|commands| panic!("three commands, not {commands:?}"))
}

/// What every consumer says about one request, as the API server returns it.
struct Seen {
    object: String,
    argo: consumers::Verdict,
    kstatus: consumers::Verdict,
    flux: consumers::FluxVerdict,
    flux_cel: consumers::FluxVerdict,
}

async fn seen(env: &Env, namespace: &str, name: &str) -> Seen {
    let object = run_kubectl(
        env.cp,
        &["get", "jsr", name, "-n", namespace, "-o", "json"],
        None,
    )
    .await
    .expect("the request can be read");
    let health_check = readme_health_check();
    Seen {
        argo: consumers::argocd_health(&object).await,
        kstatus: consumers::kstatus(&object).await,
        flux: consumers::flux(&object, None).await,
        flux_cel: consumers::flux(&object, Some(&health_check)).await,
        object,
    }
}

/// Asserts Argo CD's health and the kstatus verdict (the same for kstatus, Flux's kstatus and
/// the README's CEL expressions in Flux) for the request `name`.
async fn assert_seen(env: &Env, namespace: &str, name: &str, argo: &str, kstatus: &str) -> Seen {
    let seen = seen(env, namespace, name).await;
    let verdicts = (
        seen.argo.status.as_str(),
        seen.kstatus.status.as_str(),
        seen.flux.status.as_str(),
        seen.flux_cel.status.as_str(),
    );
    assert_eq!(
        verdicts,
        (argo, kstatus, kstatus, kstatus),
        "{name}: Argo CD {:?}, kstatus {:?}, Flux {:?}, Flux CEL {:?}\n{}",
        seen.argo,
        seen.kstatus,
        seen.flux,
        seen.flux_cel,
        seen.object
    );
    assert_eq!(
        (seen.flux.reader.as_str(), seen.flux_cel.reader.as_str()),
        ("kstatus", "cel")
    );
    seen
}

/// `(status, reason)` of the `Finished` condition, if there is one.
fn finished(request: &JobStopRequest) -> Option<(String, String)> {
    let status = request.status.as_ref()?;
    conditions::find(&status.conditions, conditions::FINISHED)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn finished_is(request: &JobStopRequest, status: &str, reason: &str) {
    assert_eq!(
        finished(request),
        Some((status.to_string(), reason.to_string())),
        "{}",
        serde_json::to_string_pretty(&request.status).unwrap_or_default()
    );
}

#[tokio::test]
async fn a_request_is_in_progress_everywhere_until_it_succeeds() {
    let env = Env::start("gitops-progress", &[501, 502]).await;

    // Created where no operator looks: exactly what every consumer sees before the operator
    // has read a request (or while it is down).
    let unwatched = env
        .cp
        .create_namespace("gitops-unwatched")
        .await
        .expect("namespace is created");
    run_kubectl(
        env.cp,
        &["apply", "-n", &unwatched, "-f", "-"],
        Some(&request("fresh", &[501], "")),
    )
    .await
    .expect("the request is created");
    let fresh = assert_seen(&env, &unwatched, "fresh", "Progressing", "InProgress").await;
    assert_eq!(
        fresh.argo.message,
        "Waiting for the operator to pick up the request"
    );
    let object: serde_json::Value = serde_json::from_str(&fresh.object).expect("JSON");
    assert_eq!(
        object["status"],
        serde_json::json!({"observedGeneration": 0}),
        "the schema default gives a new request its status"
    );
    let typed: Api<JobStopRequest> = Api::namespaced(env.client(), &unwatched);
    let typed = typed.get("fresh").await.expect("the request reads");
    let status = typed.status.expect("a status");
    assert_eq!(
        (status.observed_generation, status.phase, status.submission),
        (Some(0), None, None),
        "what the operator reads: nothing done yet"
    );

    env.sim
        .inject(Operation::BatchStop, Fault::Hold { applied: true });
    env.apply(&request("stopping", &[501], "")).await;
    assert!(env.sim.wait_held(1, WAIT).await, "the call reaches DLI");
    let submitting = env
        .wait_for("stopping", "Submitting", |r| {
            r.status.as_ref().and_then(|s| s.phase) == Some(Phase::Submitting)
        })
        .await;
    finished_is(&submitting, "False", "Submitting");
    assert_seen(
        &env,
        &env.namespace,
        "stopping",
        "Progressing",
        "InProgress",
    )
    .await;
    env.sim.release_held();
    let done = env.wait_ready("stopping").await;
    finished_is(&done, "True", "Succeeded");
    let succeeded = assert_seen(&env, &env.namespace, "stopping", "Healthy", "Current").await;
    let ready = done
        .status
        .as_ref()
        .and_then(|s| conditions::find(&s.conditions, conditions::READY))
        .expect("Ready");
    assert_eq!(succeeded.argo.message, ready.message);

    env.sim.set_job_stop_outcome(502, StopOutcome::Hang);
    env.apply(&request(
        "confirming",
        &[502],
        "  confirm:\n    timeoutSeconds: 3600\n",
    ))
    .await;
    let confirming = env.wait_phase("confirming", Phase::Confirming).await;
    finished_is(&confirming, "False", "Confirming");
    assert_seen(
        &env,
        &env.namespace,
        "confirming",
        "Progressing",
        "InProgress",
    )
    .await;
    assert_eq!(env.sim.total_stop_calls(), 2);
}

/// A selector that finds nothing running holds the desired state: healthy and current. One
/// that names a job that does not exist is a failure everywhere, not a success.
#[tokio::test]
async fn a_selector_with_nothing_to_stop_is_healthy_and_a_missing_name_is_degraded() {
    let env = Env::start("gitops-selector", &[]).await;
    env.sim
        .add_named_job(651, "orders", "quiet", "job_cancel_success");
    let by_selector = |name: &str, selector: &str| {
        format!(
            "apiVersion: dli.stop-operator.io/v1alpha1\nkind: JobStopRequest\nmetadata:\n  name: {name}\nspec:\n  jobSelector: {selector}\n"
        )
    };
    env.apply(&by_selector("idle", "{queueName: quiet}")).await;
    env.apply(&by_selector("missing", "{names: [ghost]}")).await;
    let idle = env.wait_phase("idle", Phase::Succeeded).await;
    let missing = env.wait_phase("missing", Phase::Failed).await;
    finished_is(&idle, "True", "Succeeded");
    finished_is(&missing, "True", "Failed");
    assert_seen(&env, &env.namespace, "idle", "Healthy", "Current").await;
    let seen = assert_seen(&env, &env.namespace, "missing", "Degraded", "Failed").await;
    assert!(seen.argo.message.contains("`ghost`"), "{:?}", seen.argo);
    assert_eq!(env.sim.total_stop_calls(), 0);
}

#[tokio::test]
async fn every_final_failure_is_degraded_and_failed_everywhere() {
    let env = Env::start("gitops-failures", &[601, 602, 603]).await;
    env.sim.set_job_stop_outcome(602, StopOutcome::FailToStop);
    env.apply(&request("partial", &[601, 602], "")).await;
    env.apply(&request("rejected", &[603, 999], "")).await;
    let partial = env.wait_phase("partial", Phase::PartiallyFailed).await;
    let rejected = env.wait_phase("rejected", Phase::Failed).await;

    env.sim.inject(
        Operation::BatchStop,
        Fault::AnswerLost {
            loss: Loss::Cut,
            dli_acted: false,
        },
    );
    env.apply(&request("unknown", &[603], "")).await;
    let unknown = env.wait_phase("unknown", Phase::Unknown).await;

    for (request, phase) in [
        (&partial, "PartiallyFailed"),
        (&rejected, "Failed"),
        (&unknown, "Unknown"),
    ] {
        finished_is(request, "True", phase);
        let name = request.metadata.name.as_deref().expect("a name");
        let seen = assert_seen(&env, &env.namespace, name, "Degraded", "Failed").await;
        let stalled = request
            .status
            .as_ref()
            .and_then(|s| conditions::find(&s.conditions, conditions::STALLED))
            .expect("Stalled");
        assert_eq!(seen.argo.message, stalled.message, "{name}");
    }
    assert_eq!(env.sim.total_stop_calls(), 3);
}

#[tokio::test]
async fn a_new_generation_is_in_progress_everywhere_until_the_operator_finishes_it() {
    let mut env = Env::start("gitops-generations", &[701]).await;
    env.apply(&request("done", &[701], "")).await;
    env.apply(&request("refused", &[999], "")).await;
    env.wait_ready("done").await;
    env.wait_phase("refused", Phase::Failed).await;

    // A spec change the operator has not taken up: the old generation's Ready or Stalled no
    // longer speaks for the request.
    env.operator.kill().await;
    env.apply(&request("done", &[701], "  nonce: again\n"))
        .await;
    env.apply(&request("refused", &[999], "  nonce: again\n"))
        .await;
    for name in ["done", "refused"] {
        let seen = assert_seen(&env, &env.namespace, name, "Progressing", "InProgress").await;
        assert_eq!(
            seen.argo.message,
            "Waiting for the operator to process generation 2"
        );
    }
    let [wait, _, _] = readme_wait_recipe();
    let wait: Vec<&str> = wait
        .split(' ')
        .map(|word| {
            if word.starts_with("--timeout=") {
                "--timeout=3s"
            } else {
                word
            }
        })
        .collect();
    let wait = wait.join(" ");
    let shell = Shell::for_namespace(&env).await;
    let waited = shell.run(&wait).await;
    assert!(
        !waited.status.success(),
        "kubectl wait returned on the previous generation's Finished: {}",
        String::from_utf8_lossy(&waited.stdout)
    );

    // A new generation that cannot be sent (its Secret is missing) is still in progress.
    env.apply(&request(
        "done",
        &[701],
        "  nonce: third\n  connectionRef:\n    name: does-not-exist\n",
    ))
    .await;
    env.operator.restart().await;
    let pending = env
        .wait_for("done", "Pending for generation 3", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(Phase::Pending)
                    && conditions::find(&s.conditions, conditions::READY)
                        .is_some_and(|c| c.observed_generation == Some(3))
            })
        })
        .await;
    finished_is(&pending, "False", "Pending");
    let seen = assert_seen(&env, &env.namespace, "done", "Progressing", "InProgress").await;
    assert!(
        seen.argo.message.contains("does-not-exist"),
        "{}",
        seen.argo.message
    );
    let refused = env.wait_phase("refused", Phase::Failed).await;
    assert_eq!(refused.metadata.generation, Some(2));
    assert_seen(&env, &env.namespace, "refused", "Degraded", "Failed").await;
    assert_eq!(env.sim.total_stop_calls(), 3);
}

/// kubectl as a user's shell has it: on the PATH, with a kubeconfig whose context points at
/// the test namespace, so the README's commands run as written.
struct Shell {
    path: OsString,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Shell {
    async fn for_namespace(env: &Env) -> Shell {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::copy(env.cp.kubeconfig_path(), &kubeconfig).expect("kubeconfig copies");
        let kubectl = env.cp.kubectl_path();
        let set = tokio::process::Command::new(&kubectl)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(["config", "set-context", "--current"])
            .arg(format!("--namespace={}", env.namespace))
            .output()
            .await
            .expect("kubectl runs");
        assert!(set.status.success(), "{set:?}");
        let mut path = OsString::from(kubectl.parent().expect("kubectl's directory"));
        if let Some(inherited) = std::env::var_os("PATH") {
            path.push(":");
            path.push(inherited);
        }
        Shell {
            path,
            kubeconfig,
            _dir: dir,
        }
    }

    fn command(&self, command: &str) -> tokio::process::Command {
        let mut sh = tokio::process::Command::new("sh");
        sh.args(["-c", command])
            .env("PATH", &self.path)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        sh
    }

    /// Runs `command` with `sh`, failing the test if it has not ended after `WAIT`.
    async fn run(&self, command: &str) -> Output {
        tokio::time::timeout(WAIT, self.command(command).output())
            .await
            .unwrap_or_else(|_| panic!("`{command}` did not return within {WAIT:?}"))
            .expect("sh runs")
    }
}

#[tokio::test]
async fn the_readme_kubectl_wait_recipe_returns_on_success_and_on_failure_and_tells_which() {
    let env = Env::start("gitops-wait", &[801]).await;
    let shell = Shell::for_namespace(&env).await;
    let [wait, tell, exit_code] = readme_wait_recipe();

    // The call is held, so the wait starts while the stop is still in flight.
    env.sim
        .inject(Operation::BatchStop, Fault::Hold { applied: true });
    env.apply(&request("nightly-maintenance", &[801], "")).await;
    assert!(env.sim.wait_held(1, WAIT).await, "the call reaches DLI");
    let waiting = tokio::spawn(
        shell
            .command(&wait)
            .spawn()
            .expect("sh runs")
            .wait_with_output(),
    );
    env.settle().await;
    assert!(
        !waiting.is_finished(),
        "kubectl wait returned while the stop was in flight"
    );
    env.sim.release_held();
    let waited = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("kubectl wait returns once the stop succeeded")
        .expect("the task ends")
        .expect("sh runs");
    assert!(waited.status.success(), "{waited:?}");
    let phase = shell.run(&tell).await;
    assert_eq!(String::from_utf8_lossy(&phase.stdout), "Succeeded");
    assert!(shell.run(&exit_code).await.status.success());

    // The same name, now a stop DLI refuses.
    env.kubectl(&["delete", "jsr", "nightly-maintenance"])
        .await
        .expect("deleted");
    env.apply(&request("nightly-maintenance", &[999], "")).await;
    let waited = shell.run(&wait).await;
    assert!(waited.status.success(), "{waited:?}");
    let phase = shell.run(&tell).await;
    assert_eq!(String::from_utf8_lossy(&phase.stdout), "Failed");
    let ready = shell.run(&exit_code).await;
    assert!(
        !ready.status.success(),
        "the Ready wait must fail for a failed stop: {ready:?}"
    );
    assert_eq!(env.sim.total_stop_calls(), 2);
}

/// Pairs of description lines in `kubectl explain` output where the first ends although the
/// next word would have fitted within kubectl's 80 columns: a line break from the schema.
fn broken_lines(explained: &str) -> Vec<String> {
    const WIDTH: usize = 80;
    const INDENT: &str = "    ";
    let is_description = |line: &str| {
        line.strip_prefix(INDENT)
            .is_some_and(|text| !text.is_empty() && !text.starts_with(char::is_whitespace))
    };
    let lines: Vec<&str> = explained.lines().collect();
    lines
        .windows(2)
        .filter(|pair| {
            let next_word = pair[1].split_whitespace().next().unwrap_or_default();
            is_description(pair[0])
                && is_description(pair[1])
                && pair[0].chars().count() + 1 + next_word.chars().count() <= WIDTH
        })
        .map(|pair| pair.join("\n"))
        .collect()
}

#[tokio::test]
async fn kubectl_explain_reads_as_prose() {
    let env = Env::start("gitops-explain", &[]).await;
    // The OpenAPI document the explanation comes from is published shortly after the CRD.
    let explain = |path: &'static str| {
        let env = &env;
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                match env.kubectl(&["explain", path]).await {
                    Ok(text) => return text,
                    Err(error) if tokio::time::Instant::now() > deadline => {
                        panic!("kubectl explain {path}: {error}")
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        }
    };
    for path in [
        "jobstoprequests.spec",
        "jsr.status",
        "jsr.status.conditions",
    ] {
        let text = explain(path).await;
        let broken = broken_lines(&text);
        assert!(
            broken.is_empty(),
            "{path}:\n{}\n\n{text}",
            broken.join("\n---\n")
        );
    }
    let results = explain("jsr.status.results").await;
    assert!(
        results.contains("One entry per job id, in spec order.")
            && !results.contains("What is known about one job."),
        "{results}"
    );
}

//! The official Huawei Cloud Go SDK judges our DLI wire, both ways (Go programs in
//! `tests/sdk-conformance/`, built here with `go build`):
//! - the SDK as a client (`sdk-client`) against the stand-in: every answer must parse in the
//!   SDK's models with nothing lost, errors must surface with their code and message;
//! - the SDK's signer (`judge`) against our client and the `check` command: every request must
//!   carry the signature the SDK computes for it, under endpoint path prefixes too.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use dli_stop_dev::sim::{AnswerShape, DliSim, SimConfig};
use dli_stop_dev::testenv::{go_build_command, go_build_outcome};
use dli_stop_operator::dli::connection::Connection;
use dli_stop_operator::dli::{ClientOptions, DliClient};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

const AK: &str = "SDKACCESSKEY";
const SK: &str = "sdk-secret-key";
const TEMP_AK: &str = "TEMPACCESSKEY";
const TEMP_SK: &str = "temp-secret-key";
const TEMP_TOKEN: &str = "temp-security-token";
/// The project the judge serves.
const PROJECT: &str = "48cc2c48765f481480c7db940d6409d1";
/// How long the judge may take to start and check itself on a loaded machine.
const JUDGE_START: Duration = Duration::from_secs(120);

/// The credentials a call is made with.
#[derive(Debug, Clone, Copy)]
struct Credentials<'a> {
    access_key: &'a str,
    secret_key: &'a str,
    security_token: Option<&'a str>,
}

const PERMANENT: Credentials<'static> = Credentials {
    access_key: AK,
    secret_key: SK,
    security_token: None,
};

const TEMPORARY: Credentials<'static> = Credentials {
    access_key: TEMP_AK,
    secret_key: TEMP_SK,
    security_token: Some(TEMP_TOKEN),
};

impl Credentials<'_> {
    /// The credential variables the operator, `sdk-client` and `judge` read.
    fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("DLI_ACCESS_KEY", self.access_key.to_owned()),
            ("DLI_SECRET_KEY", self.secret_key.to_owned()),
        ];
        if let Some(token) = self.security_token {
            vars.push(("DLI_SECURITY_TOKEN", token.to_owned()));
        }
        vars
    }

    /// The connection variables of a DLI client.
    fn connection(&self, endpoint: &str, project_id: &str) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("DLI_ENDPOINT", endpoint.to_owned()),
            ("DLI_PROJECT_ID", project_id.to_owned()),
        ];
        vars.extend(self.vars());
        vars
    }
}

/// `sdk-client` and `judge`, built once per test binary. Blocks: call it before starting
/// anything the test's runtime must serve.
fn go_programs() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-conformance");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sdk-conformance");
        std::fs::create_dir_all(&out).expect("create the Go output directory");
        let packages = ["./cmd/sdk-client", "./cmd/judge"];
        let output = go_build_command(&module, &packages, &out).output();
        go_build_outcome(&module, output).expect("the conformance programs build");
        out
    })
}

/// A command with none of the test's own `DLI_*` variables.
fn command(program: &Path, vars: &[(&'static str, String)]) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars() {
        if name.starts_with("DLI_") {
            command.env_remove(name);
        }
    }
    command.envs(vars.iter().map(|(name, value)| (*name, value.as_str())));
    command.kill_on_drop(true);
    command
}

// ---------------------------------------------------------------------------------------
// The SDK as a client against the stand-in.

/// What `sdk-client` saw: the answer as sent, the SDK's model of it and what it lost.
#[derive(Debug, Deserialize)]
struct SdkReport {
    request_path: String,
    http_status: u16,
    answer: Value,
    model: Value,
    mismatches: Vec<String>,
    error: Option<SdkError>,
}

#[derive(Debug, Deserialize)]
struct SdkError {
    /// `service_response` for the SDK's `ServiceResponseError`.
    kind: String,
    status_code: u16,
    error_code: String,
    error_message: String,
    request_id: String,
}

async fn sim() -> DliSim {
    sim_under("").await
}

/// A stand-in serving DLI under `path_prefix` (as in a URL, percent-encoded).
async fn sim_under(path_prefix: &str) -> DliSim {
    go_programs();
    let sim = DliSim::start(SimConfig {
        path_prefix: path_prefix.to_owned(),
        ..SimConfig::default()
    })
    .await
    .expect("stand-in starts");
    sim.add_ak_sk(AK, SK);
    sim
}

/// Runs `sdk-client ARGS` against the stand-in.
async fn sdk(sim: &DliSim, credentials: Credentials<'_>, args: &[&str]) -> SdkReport {
    let vars = credentials.connection(&sim.endpoint(), &sim.project_id());
    let output = command(&go_programs().join("sdk-client"), &vars)
        .args(args)
        .output()
        .await
        .expect("sdk-client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sdk-client {args:?} failed:\n{stdout}{stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("sdk-client {args:?} printed no report ({e}):\n{stdout}{stderr}")
    })
}

/// The SDK took the answer: HTTP 200, no error, every field in its model.
fn assert_read_in_full(report: &SdkReport) {
    assert!(
        report.error.is_none() && report.http_status == 200 && report.mismatches.is_empty(),
        "the SDK did not read the answer in full: {report:#?}"
    );
}

/// The SDK surfaced an error answer with this status and code, message and request id intact.
fn assert_sdk_error<'a>(report: &'a SdkReport, status: u16, code: &str) -> &'a SdkError {
    let Some(error) = &report.error else {
        panic!("the SDK reported no error: {report:#?}");
    };
    assert_eq!(
        (
            error.kind.as_str(),
            error.status_code,
            error.error_code.as_str()
        ),
        ("service_response", status, code),
        "{report:#?}"
    );
    assert!(!error.error_message.is_empty(), "{report:#?}");
    assert!(report.mismatches.is_empty(), "{report:#?}");
    error
}

fn job_ids(jobs: &Value) -> Vec<i64> {
    jobs.as_array()
        .map(|jobs| {
            jobs.iter()
                .filter_map(|job| job["job_id"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_sdk_reads_a_per_job_stop_answer_in_full() {
    let sim = sim().await;
    sim.add_running_jobs(&[128, 137]);
    let report = sdk(&sim, PERMANENT, &["stop", "128", "137"]).await;
    assert_read_in_full(&report);
    let elements = report.model.as_array().expect("an array of answers");
    assert_eq!(elements.len(), 2, "{report:#?}");
    assert!(
        elements
            .iter()
            .all(|element| element["is_success"] == "true"),
        "{report:#?}"
    );
    assert_eq!(
        report.request_path,
        format!("/v1.0/{}/streaming/jobs/stop", sim.project_id())
    );
    assert_eq!((sim.stop_calls(128), sim.stop_calls(137)), (1, 1));
    assert_eq!(sim.total_stop_calls(), 1);
}

#[tokio::test]
async fn the_sdk_reads_a_single_element_stop_answer_in_full() {
    let sim = sim().await;
    sim.add_running_jobs(&[128, 137]);
    sim.set_answer_shape(AnswerShape::SingleElement);
    let report = sdk(&sim, PERMANENT, &["stop", "128", "137"]).await;
    assert_read_in_full(&report);
    assert_eq!(
        report.model.as_array().map(Vec::len),
        Some(1),
        "{report:#?}"
    );
    assert_eq!(report.model[0]["is_success"], "true");
    assert_eq!(sim.total_stop_calls(), 1);
}

/// The SDK's `BatchStopFlinkJobsResponse` holds `*[]FlinkSuccessResponse`: an object does not
/// unmarshal into it, and the SDK reports a `ServiceResponseError` with the success status.
/// Tools built on the SDK therefore see an error for a stop DLI delivered.
#[tokio::test]
async fn the_sdk_fails_on_a_single_object_stop_answer_although_the_stop_was_delivered() {
    let sim = sim().await;
    sim.add_running_jobs(&[128, 137]);
    sim.set_answer_shape(AnswerShape::Object);
    let report = sdk(&sim, PERMANENT, &["stop", "128", "137"]).await;
    assert_eq!(report.http_status, 200, "{report:#?}");
    assert_eq!(report.answer["is_success"], "true", "{report:#?}");
    let Some(error) = &report.error else {
        panic!("the SDK read an object into its array model: {report:#?}");
    };
    assert_eq!(
        (
            error.kind.as_str(),
            error.status_code,
            error.error_code.as_str()
        ),
        ("service_response", 200, ""),
        "{report:#?}"
    );
    assert!(
        error.error_message.contains("cannot unmarshal object"),
        "{report:#?}"
    );
    assert_eq!(sim.total_stop_calls(), 1);
}

#[tokio::test]
async fn the_sdk_reads_a_job_detail_in_full() {
    let sim = sim().await;
    sim.add_running_jobs(&[128]);
    let report = sdk(&sim, PERMANENT, &["detail", "128"]).await;
    assert_read_in_full(&report);
    assert_eq!(report.model["is_success"], "true");
    assert_eq!(report.model["job_detail"]["job_id"], 128);
    assert_eq!(report.model["job_detail"]["status"], "job_running");
    assert_eq!(sim.detail_calls(), 1);
}

#[tokio::test]
async fn the_sdk_pages_the_job_list_with_limit_and_offset() {
    let sim = sim().await;
    sim.add_running_jobs(&[11, 12, 13, 14, 15]);
    let report = sdk(&sim, PERMANENT, &["list", "2", "1"]).await;
    assert_read_in_full(&report);
    let job_list = &report.model["job_list"];
    assert_eq!(job_list["total_count"], 5, "{report:#?}");
    assert_eq!(job_ids(&job_list["jobs"]), vec![12, 13], "{report:#?}");
    assert_eq!(sim.list_calls(), 1);
}

/// The SDK's `name` and `queue_name` filters, paged: the stand-in matches names loosely (any
/// name containing the text, as DLI does), queues exactly, and counts `total_count` over the
/// filtered jobs, not the page.
#[tokio::test]
async fn the_sdk_pages_a_job_list_filtered_by_name_and_queue() {
    let sim = sim().await;
    sim.add_named_job(21, "orders", "flink-prod", "job_running");
    sim.add_named_job(22, "orders-enrichment", "flink-prod", "job_running");
    sim.add_named_job(23, "Old-Orders", "flink-prod", "job_cancel_success");
    sim.add_named_job(24, "orders", "flink-dev", "job_running");
    sim.add_named_job(25, "clicks", "flink-prod", "job_running");

    let report = sdk(
        &sim,
        PERMANENT,
        &["list-filtered", "2", "1", "orders", "flink-prod"],
    )
    .await;
    assert_read_in_full(&report);
    let job_list = &report.model["job_list"];
    assert_eq!(job_list["total_count"], 3, "{report:#?}");
    assert_eq!(job_ids(&job_list["jobs"]), vec![22, 23], "{report:#?}");
    assert_eq!(job_list["jobs"][0]["queue_name"], "flink-prod");

    let by_name = sdk(
        &sim,
        PERMANENT,
        &["list-filtered", "100", "0", "orders", ""],
    )
    .await;
    assert_eq!(
        job_ids(&by_name.model["job_list"]["jobs"]),
        vec![21, 22, 23, 24],
        "{by_name:#?}"
    );
    let by_queue = sdk(
        &sim,
        PERMANENT,
        &["list-filtered", "100", "0", "", "flink-dev"],
    )
    .await;
    assert_eq!(job_ids(&by_queue.model["job_list"]["jobs"]), vec![24]);
    assert_eq!(sim.list_calls(), 3);
}

#[tokio::test]
async fn the_sdk_reads_null_optional_fields_as_absent() {
    let sim = sim().await;
    sim.add_running_jobs(&[128, 137]);
    sim.set_null_optional_fields(true);
    let detail = sdk(&sim, PERMANENT, &["detail", "128"]).await;
    assert_read_in_full(&detail);
    let nulls = detail.answer["job_detail"].as_object().map_or(0, |fields| {
        fields.values().filter(|value| value.is_null()).count()
    });
    assert!(nulls > 0, "the answer has no null field: {detail:#?}");
    assert_eq!(detail.model["job_detail"]["job_id"], 128);
    let list = sdk(&sim, PERMANENT, &["list", "10", "0"]).await;
    assert_read_in_full(&list);
    assert_eq!(job_ids(&list.model["job_list"]["jobs"]), vec![128, 137]);
}

#[tokio::test]
async fn the_sdk_surfaces_an_unknown_job_as_dli_16001() {
    let sim = sim().await;
    sim.add_running_jobs(&[128]);
    let detail = sdk(&sim, PERMANENT, &["detail", "999"]).await;
    let error = assert_sdk_error(&detail, 400, "DLI.16001");
    assert!(error.error_message.contains("999"), "{detail:#?}");
    let stop = sdk(&sim, PERMANENT, &["stop", "128", "999"]).await;
    assert_sdk_error(&stop, 400, "DLI.16001");
    assert_eq!(sim.job_status(128).as_deref(), Some("job_running"));
}

#[tokio::test]
async fn the_sdk_surfaces_a_wrong_secret_key_as_apigw_0301_and_nothing_stops() {
    let sim = sim().await;
    sim.add_running_jobs(&[128]);
    let wrong = Credentials {
        secret_key: "not-the-secret-key",
        ..PERMANENT
    };
    let report = sdk(&sim, wrong, &["stop", "128"]).await;
    let error = assert_sdk_error(&report, 401, "APIGW.0301");
    assert!(!error.request_id.is_empty(), "{report:#?}");
    assert_eq!(report.answer["request_id"], error.request_id.as_str());
    assert_eq!(sim.total_stop_calls(), 0);
}

#[tokio::test]
async fn the_sdk_signs_in_with_temporary_credentials() {
    let sim = sim().await;
    sim.add_temporary_ak_sk(TEMP_AK, TEMP_SK, TEMP_TOKEN);
    sim.add_running_jobs(&[128]);
    let stop = sdk(&sim, TEMPORARY, &["stop", "128"]).await;
    assert_read_in_full(&stop);
    let detail = sdk(&sim, TEMPORARY, &["detail", "128"]).await;
    assert_read_in_full(&detail);
    assert_eq!(sim.stop_calls(128), 1);

    let wrong_token = Credentials {
        security_token: Some("another-token"),
        ..TEMPORARY
    };
    let refused = sdk(&sim, wrong_token, &["stop", "128"]).await;
    assert_sdk_error(&refused, 401, "APIGW.0301");
    assert_eq!(sim.stop_calls(128), 1);
}

/// The SDK drops an endpoint's path, so `sdk-client` puts the prefix in front of the API
/// path, which the SDK then sends and signs as its own (see `sdkdli.New`).
async fn assert_sdk_served_under(path_prefix: &str) {
    let sim = sim_under(path_prefix).await;
    sim.add_running_jobs(&[128, 137]);
    let project = sim.project_id();
    let stop = sdk(&sim, PERMANENT, &["stop", "128"]).await;
    assert_read_in_full(&stop);
    assert_eq!(
        stop.request_path,
        format!("{path_prefix}/v1.0/{project}/streaming/jobs/stop")
    );
    let detail = sdk(&sim, PERMANENT, &["detail", "137"]).await;
    assert_read_in_full(&detail);
    assert_eq!(detail.model["job_detail"]["job_id"], 137);
    let list = sdk(&sim, PERMANENT, &["list", "10", "0"]).await;
    assert_read_in_full(&list);
    assert_eq!(job_ids(&list.model["job_list"]["jobs"]), vec![128, 137]);
    assert_eq!(sim.stop_calls(128), 1);
}

#[tokio::test]
async fn the_sdk_calls_the_stand_in_under_a_percent_encoded_prefix() {
    assert_sdk_served_under("/dli%20gw").await;
}

#[tokio::test]
async fn the_sdk_calls_the_stand_in_under_a_non_ascii_prefix() {
    assert_sdk_served_under("/%C3%A9quipe/%E6%95%B0%E6%8D%AE").await;
}

// ---------------------------------------------------------------------------------------
// The SDK's signer judging our client and `check`.

/// A running judge; it stops when dropped (its stdin closes, and it is killed).
struct Judge {
    /// The endpoint to give a DLI client: address and path prefix.
    endpoint: String,
    _process: Child,
    _stdin: ChildStdin,
}

/// Starts a judge that accepts `credentials` for [`PROJECT`] under `path_prefix` (as in a
/// URL, percent-encoded).
async fn judge(credentials: Credentials<'_>, path_prefix: &str) -> Judge {
    let mut vars = credentials.vars();
    vars.push(("DLI_PROJECT_ID", PROJECT.to_owned()));
    vars.push(("DLI_PATH_PREFIX", path_prefix.to_owned()));
    let mut process = command(&go_programs().join("judge"), &vars)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the judge starts");
    let stdin = process.stdin.take().expect("judge stdin");
    let mut stdout = BufReader::new(process.stdout.take().expect("judge stdout"));
    let mut endpoint = String::new();
    let read = tokio::time::timeout(JUDGE_START, stdout.read_line(&mut endpoint)).await;
    if !matches!(read, Ok(Ok(n)) if n > 0) {
        let mut stderr = String::new();
        if let Some(mut pipe) = process.stderr.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), pipe.read_to_string(&mut stderr))
                .await;
        }
        panic!("the judge did not start ({read:?}):\n{stderr}");
    }
    Judge {
        endpoint: endpoint.trim().to_owned(),
        _process: process,
        _stdin: stdin,
    }
}

fn our_client(judge: &Judge, credentials: Credentials<'_>) -> DliClient {
    let vars = credentials.connection(&judge.endpoint, PROJECT);
    let connection = Connection::from_env(|name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| value.clone())
    })
    .expect("the judge's endpoint makes a connection");
    DliClient::new(connection, ClientOptions::default()).expect("client builds")
}

/// Runs `dli-stop-operator check` against the judge; (success, stdout, stderr).
async fn check(judge: &Judge, credentials: Credentials<'_>) -> (bool, String, String) {
    let vars = credentials.connection(&judge.endpoint, PROJECT);
    let output = command(Path::new(env!("CARGO_BIN_EXE_dli-stop-operator")), &vars)
        .arg("check")
        .output()
        .await
        .expect("the operator binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Our client's three calls and `check` all pass the SDK's signature check and read the
/// judge's SDK-shaped answers.
async fn assert_judged_correct(path_prefix: &str, credentials: Credentials<'_>) {
    go_programs();
    let judge = judge(credentials, path_prefix).await;
    let client = our_client(&judge, credentials);

    let credential = client.credential().await.expect("AK/SK needs no fetch");
    let stop = client
        .batch_stop(&credential, &[128, 137], false)
        .await
        .unwrap_or_else(|e| panic!("batch stop under {:?}: {e}", judge.endpoint));
    assert_eq!(stop.http_status, 200);
    let per_job: Vec<(i64, Option<bool>)> = stop
        .jobs
        .iter()
        .map(|job| (job.job_id, job.is_success))
        .collect();
    assert_eq!(per_job, vec![(128, Some(true)), (137, Some(true))]);

    let detail = client
        .job_detail(256)
        .await
        .unwrap_or_else(|e| panic!("job detail under {:?}: {e}", judge.endpoint));
    let detail = serde_json::to_value(&detail).expect("a detail serialises");
    assert_eq!(detail["job_id"], 256);
    assert_eq!(detail["status"], "job_cancel_success");
    assert_eq!(detail["has_savepoint"], true);
    assert!(
        detail["savepoint_path"]
            .as_str()
            .is_some_and(|path| path.starts_with("obs://flink-bucket/jobs/savepoint/256/")),
        "{detail}"
    );

    let list = client
        .list_jobs(10)
        .await
        .unwrap_or_else(|e| panic!("job list under {:?}: {e}", judge.endpoint));
    let listed: Vec<i64> = list.jobs.iter().map(|job| job.job_id).collect();
    assert_eq!(listed, vec![128, 137, 256], "the job_list layout");

    let (ok, stdout, stderr) = check(&judge, credentials).await;
    assert!(ok, "check under {:?}:\n{stdout}{stderr}", judge.endpoint);
    assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
    assert!(
        stdout.contains("jobs:       3 Flink job(s) visible"),
        "the job_list's total_count:\n{stdout}"
    );
}

#[tokio::test]
async fn our_client_and_check_pass_the_sdk_signer_with_ak_sk() {
    assert_judged_correct("", PERMANENT).await;
}

#[tokio::test]
async fn our_client_and_check_pass_the_sdk_signer_with_temporary_ak_sk() {
    assert_judged_correct("", TEMPORARY).await;
}

#[tokio::test]
async fn our_client_and_check_pass_the_sdk_signer_under_a_prefix_with_reserved_characters() {
    assert_judged_correct("/gw:v1/a@b!$&'()*+,;=", PERMANENT).await;
}

#[tokio::test]
async fn our_client_and_check_pass_the_sdk_signer_under_a_percent_encoded_prefix() {
    assert_judged_correct("/dli%20gw/100%25", PERMANENT).await;
}

#[tokio::test]
async fn our_client_and_check_pass_the_sdk_signer_under_a_non_ascii_prefix() {
    assert_judged_correct("/%C3%A9quipe/%E6%95%B0%E6%8D%AE", TEMPORARY).await;
}

#[tokio::test]
async fn the_sdk_signer_refuses_our_client_with_a_wrong_secret_key() {
    go_programs();
    let judge = judge(PERMANENT, "").await;
    let wrong = Credentials {
        secret_key: "not-the-secret-key",
        ..PERMANENT
    };
    let client = our_client(&judge, wrong);
    let credential = client.credential().await.expect("AK/SK needs no fetch");
    let error = client
        .batch_stop(&credential, &[128], false)
        .await
        .expect_err("a wrong key is refused");
    assert_eq!(error.http_status(), Some(401), "{error}");
    assert_eq!(error.error_code(), Some("APIGW.0301"), "{error}");
    let (ok, stdout, _) = check(&judge, wrong).await;
    assert!(!ok);
    assert!(
        stdout.contains("FAILED:     the API gateway rejected the AK/SK signature"),
        "{stdout}"
    );
}

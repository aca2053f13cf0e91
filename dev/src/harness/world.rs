//! What both harnesses stand on: the CRD on a control plane, namespaces, JobStopRequests in
//! bulk, the DLI stand-in and the operator's command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt, ResourceExt};

use super::error::HarnessError;
use super::process::OperatorSpec;
use crate::sim::{DliSim, SimConfig};
use crate::testenv::ControlPlane;
use dli_stop_operator::api::{
    ConfirmSpec, JobStopRequest, JobStopRequestSpec, JobStopRequestStatus,
};

pub const ACCESS_KEY: &str = "HARNESSACCESSKEY";
pub const SECRET_KEY: &str = "harness-secret-key";
pub const IAM_DOMAIN: &str = "harness-domain";
pub const IAM_USER: &str = "harness-operator";
pub const IAM_PASSWORD: &str = "harness-password";
const CRD_NAME: &str = "jobstoprequests.dli.stop-operator.io";

/// Installs the CRD generated from the Rust types (identical to `crds/`, a test checks that)
/// and waits until it is served.
pub async fn install_crd(cp: &ControlPlane) -> Result<(), HarnessError> {
    let crds: Api<CustomResourceDefinition> = Api::all(cp.client());
    crds.patch(
        CRD_NAME,
        &PatchParams::apply("dli-harness").force(),
        &Patch::Apply(JobStopRequest::crd()),
    )
    .await
    .map_err(HarnessError::kube("install the JobStopRequest CRD"))?;
    cp.wait_crd_established(CRD_NAME, Duration::from_secs(60))
        .await?;
    Ok(())
}

/// A stand-in that knows the harness's AK/SK and IAM user, with `jobs` running.
pub async fn start_sim(config: SimConfig, jobs: &[i64]) -> Result<DliSim, HarnessError> {
    let sim = DliSim::start(config).await.map_err(HarnessError::StandIn)?;
    sim.add_ak_sk(ACCESS_KEY, SECRET_KEY);
    sim.add_iam_user(IAM_DOMAIN, IAM_USER, IAM_PASSWORD);
    sim.add_running_jobs(jobs);
    Ok(sim)
}

/// A stand-in that answers at once: jobs stop the moment they are asked to.
pub fn instant_sim() -> SimConfig {
    SimConfig {
        stop_delay: Duration::ZERO,
        savepoint_delay: Duration::ZERO,
        ..SimConfig::default()
    }
}

/// A request named `name` for `job_ids`.
pub fn request(
    name: &str,
    job_ids: Vec<i64>,
    confirm: bool,
    trigger_savepoint: bool,
) -> JobStopRequest {
    let spec = JobStopRequestSpec {
        job_ids,
        job_selector: None,
        trigger_savepoint,
        connection_ref: None,
        confirm: Some(ConfirmSpec {
            enabled: confirm,
            // The schema's minimum: a confirmation that cannot finish fails soon.
            timeout_seconds: 30,
        }),
        nonce: None,
        ttl_seconds_after_finished: None,
        delivery_deadline_seconds: None,
    };
    let mut object = JobStopRequest::new(name, spec);
    object.metadata = ObjectMeta {
        name: Some(name.to_string()),
        ..ObjectMeta::default()
    };
    object
}

/// Creates `objects` with up to `concurrency` creates in flight; returns them as created.
pub async fn create_all(
    api: &Api<JobStopRequest>,
    objects: Vec<JobStopRequest>,
    concurrency: usize,
) -> Result<Vec<JobStopRequest>, HarnessError> {
    futures::stream::iter(objects)
        .map(|object| async move {
            api.create(&PostParams::default(), &object)
                .await
                .map_err(HarnessError::kube(format!("create {}", object.name_any())))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
}

/// Replaces the status of `object` (guarded by its resourceVersion) and returns the result.
pub async fn write_status(
    api: &Api<JobStopRequest>,
    object: &JobStopRequest,
    status: JobStopRequestStatus,
) -> Result<JobStopRequest, HarnessError> {
    let mut next = object.clone();
    next.metadata.managed_fields = None;
    next.status = Some(status);
    api.replace_status(&object.name_any(), &PostParams::default(), &next)
        .await
        .map_err(HarnessError::kube(format!(
            "write the status of {}",
            object.name_any()
        )))
}

pub async fn list_all(api: &Api<JobStopRequest>) -> Result<Vec<JobStopRequest>, HarnessError> {
    Ok(api
        .list(&ListParams::default())
        .await
        .map_err(HarnessError::kube("list JobStopRequests"))?
        .items)
}

/// Removes every request in the namespace, so a finished run does not weigh on the next one
/// (the test control plane has no namespace controller to do it).
pub async fn delete_all(api: &Api<JobStopRequest>) -> Result<(), HarnessError> {
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .map_err(HarnessError::kube("delete the run's JobStopRequests"))?;
    Ok(())
}

/// How the operator logs in to the stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// Signed requests (AK/SK): nothing to fetch before a call.
    AkSk,
    /// An IAM password: a token is fetched from the stand-in's IAM first.
    IamPassword,
}

/// The operator's knobs that a harness chooses.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    pub concurrency: u16,
    pub metrics_port: u16,
    pub rust_log: String,
    /// Extra flags, e.g. `--leader-elect`.
    pub extra: Vec<String>,
    pub login: Login,
    /// A kubeconfig other than the control plane's (e.g. one through a [`Relay`]).
    ///
    /// [`Relay`]: super::relay::Relay
    pub kubeconfig: Option<PathBuf>,
}

/// Writes to `path` the control plane's kubeconfig with `server` as the API server's
/// address (the API server's certificate names 127.0.0.1, whatever the port).
pub fn kubeconfig_via(cp: &ControlPlane, server: &str, path: &Path) -> Result<(), HarnessError> {
    let write_error = |source| HarnessError::Write {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(cp.kubeconfig_path()).map_err(write_error)?;
    let mut config: serde_json::Value = serde_saphyr::from_str(&text)
        .map_err(|error| write_error(std::io::Error::other(error.to_string())))?;
    if let Some(clusters) = config["clusters"].as_array_mut() {
        for cluster in clusters {
            cluster["cluster"]["server"] = serde_json::json!(server);
        }
    }
    let yaml = serde_saphyr::to_string(&config)
        .map_err(|error| write_error(std::io::Error::other(error.to_string())))?;
    std::fs::write(path, yaml).map_err(write_error)
}

/// `dli-stop-operator run` scoped to `namespace`, with the stand-in as its default connection.
pub fn operator_spec(
    binary: &Path,
    cp: &ControlPlane,
    namespace: &str,
    sim: &DliSim,
    options: &OperatorOptions,
    log: &Path,
) -> OperatorSpec {
    let mut args: Vec<String> = [
        "run",
        "--namespace",
        namespace,
        "--operator-namespace",
        namespace,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    args.extend([
        "--metrics-addr".to_string(),
        format!("127.0.0.1:{}", options.metrics_port),
        "--concurrency".to_string(),
        options.concurrency.to_string(),
    ]);
    args.extend(options.extra.iter().cloned());
    let kubeconfig = options
        .kubeconfig
        .as_deref()
        .unwrap_or(cp.kubeconfig_path());
    let mut env = vec![
        ("KUBECONFIG".to_string(), kubeconfig.display().to_string()),
        ("DLI_ENDPOINT".to_string(), sim.endpoint()),
        ("DLI_PROJECT_ID".to_string(), sim.project_id()),
        ("RUST_LOG".to_string(), options.rust_log.clone()),
    ];
    let login = match options.login {
        Login::AkSk => vec![
            ("DLI_ACCESS_KEY", ACCESS_KEY),
            ("DLI_SECRET_KEY", SECRET_KEY),
        ],
        Login::IamPassword => vec![
            ("DLI_USERNAME", IAM_USER),
            ("DLI_PASSWORD", IAM_PASSWORD),
            ("DLI_DOMAIN_NAME", IAM_DOMAIN),
        ],
    };
    env.extend(
        login
            .into_iter()
            .map(|(key, value)| (key.to_string(), value.to_string())),
    );
    if options.login == Login::IamPassword {
        env.push(("DLI_IAM_ENDPOINT".to_string(), sim.endpoint()));
    }
    OperatorSpec {
        binary: binary.to_path_buf(),
        args,
        env,
        log: log.to_path_buf(),
    }
}

/// The operator's `/metrics` page, or `None` while it is not serving.
pub async fn operator_metrics(http: &reqwest::Client, port: u16) -> Option<String> {
    let response = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    response.text().await.ok()
}

/// The value of one sample (exact name and labels) on a Prometheus text page.
pub fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// API server requests counted by `(verb, resource, subresource)`.
pub type RequestCounts = BTreeMap<(String, String, String), f64>;

/// Request counts and time spent, by kind, from the API server's own `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct ApiServerFigures {
    pub count: RequestCounts,
    pub seconds_sum: RequestCounts,
    pub seconds_count: RequestCounts,
}

pub async fn apiserver_figures(client: &Client) -> Result<ApiServerFigures, HarnessError> {
    let page = apiserver_page(client).await?;
    Ok(ApiServerFigures {
        count: parse_request_counts(&page),
        seconds_sum: parse_by_request_kind(&page, "apiserver_request_duration_seconds_sum"),
        seconds_count: parse_by_request_kind(&page, "apiserver_request_duration_seconds_count"),
    })
}

/// The API server's own `/metrics` page.
pub async fn apiserver_page(client: &Client) -> Result<String, HarnessError> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| HarnessError::Kubernetes {
            what: "build the /metrics request".to_string(),
            source: kube::Error::HttpError(e),
        })?;
    client
        .request_text(request)
        .await
        .map_err(HarnessError::kube("read the API server's /metrics"))
}

/// Sums `apiserver_request_total` over the labels other than verb, resource and subresource.
pub fn parse_request_counts(page: &str) -> RequestCounts {
    parse_by_request_kind(page, "apiserver_request_total")
}

/// Sums one labelled series (e.g. `apiserver_request_duration_seconds_sum`) by
/// `(verb, resource, subresource)`.
pub fn parse_by_request_kind(page: &str, metric: &str) -> RequestCounts {
    let mut counts = RequestCounts::new();
    let prefix = format!("{metric}{{");
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(prefix.as_str()) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix("=\""))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        *counts
            .entry((label("verb"), label("resource"), label("subresource")))
            .or_default() += value;
    }
    counts
}

/// `after - before` for the resources a run touches, dropping what did not change.
pub fn request_delta(
    before: &RequestCounts,
    after: &RequestCounts,
    resources: &[&str],
) -> RequestCounts {
    after
        .iter()
        .filter(|((_, resource, _), _)| resources.contains(&resource.as_str()))
        .filter_map(|(key, value)| {
            let delta = value - before.get(key).copied().unwrap_or(0.0);
            (delta > 0.0).then(|| (key.clone(), delta))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_server_counts_are_summed_per_verb_and_resource() {
        let page = r#"# HELP apiserver_request_total Counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="dli.stop-operator.io",resource="jobstoprequests",scope="resource",subresource="",verb="POST",version="v1alpha1"} 10
apiserver_request_total{code="409",component="apiserver",dry_run="",group="dli.stop-operator.io",resource="jobstoprequests",scope="resource",subresource="",verb="POST",version="v1alpha1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="dli.stop-operator.io",resource="jobstoprequests",scope="resource",subresource="status",verb="PUT",version="v1alpha1"} 20
apiserver_request_total{code="201",component="apiserver",dry_run="",group="events.k8s.io",resource="events",scope="resource",subresource="",verb="POST",version="v1"} 5
"#;
        let before = parse_request_counts(page);
        let key = |verb: &str, resource: &str, sub: &str| {
            (verb.to_string(), resource.to_string(), sub.to_string())
        };
        assert_eq!(before.get(&key("POST", "jobstoprequests", "")), Some(&12.0));
        assert_eq!(
            before.get(&key("PUT", "jobstoprequests", "status")),
            Some(&20.0)
        );
        let mut after = before.clone();
        after.insert(key("PUT", "jobstoprequests", "status"), 26.0);
        after.insert(key("POST", "events", ""), 9.0);
        let delta = request_delta(&before, &after, &["jobstoprequests"]);
        assert_eq!(delta.len(), 1);
        assert_eq!(
            delta.get(&key("PUT", "jobstoprequests", "status")),
            Some(&6.0)
        );
    }

    #[test]
    fn one_sample_is_found_by_its_exact_series() {
        let page = "x_total{result=\"success\"} 12\nx_total{result=\"error\"} 3\n";
        assert_eq!(sample(page, "x_total{result=\"success\"}"), Some(12.0));
        assert_eq!(sample(page, "x_total{result=\"error\"}"), Some(3.0));
        assert_eq!(sample(page, "x_total"), None);
    }

    #[test]
    fn requests_carry_their_jobs_and_a_short_confirmation() {
        let object = request("r-1", vec![3, 4], false, true);
        assert_eq!(object.name_any(), "r-1");
        assert_eq!(object.spec.job_ids, vec![3, 4]);
        assert!(!object.spec.confirm().enabled);
        assert!(object.spec.trigger_savepoint);
    }
}

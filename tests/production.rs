//! Production shape on the real control plane: the shipped manifests, the shipped RBAC as the
//! operator's only permissions, two replicas with leader election, and /metrics.

#[path = "e2e/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use dli_stop_dev::sim::{DliSim, SimConfig};
use dli_stop_dev::testenv::ControlPlane;
use dli_stop_operator::api::{JobStopRequest, Phase, conditions};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use support::{
    ACCESS_KEY, FAST_TIMINGS, Operator, SECRET_KEY, install_crd, repo_path, run_kubectl,
};

const OPERATOR_NAMESPACE: &str = "dli-stop-operator";
const SERVICE_ACCOUNT: &str = "system:serviceaccount:dli-stop-operator:dli-stop-operator";

fn request(name: &str, ids: &[i64], extra: &str) -> JobStopRequest {
    let yaml = format!(
        "apiVersion: dli.stop-operator.io/v1alpha1\nkind: JobStopRequest\nmetadata:\n  name: {name}\nspec:\n  jobIds: {ids:?}\n  confirm:\n    enabled: false\n{extra}"
    );
    serde_saphyr::from_str(&yaml).expect("valid request")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Sums a counter over its samples whose labels contain all of `labels`, failing on any line
/// that is not valid Prometheus text.
fn counter(page: &str, name: &str, labels: &[&str]) -> f64 {
    let mut total = 0.0;
    for line in page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let metric = series.split('{').next().unwrap_or_default();
        assert!(
            metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if metric == name && labels.iter().all(|l| series.contains(l)) {
            total += value;
        }
    }
    total
}

async fn scrape(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics body")
}

/// Scrapes `port` until `done` holds for the page, for at most 30 s.
async fn scrape_until(port: u16, what: &str, done: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = scrape(port).await;
        if done(&page) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never: {what}\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_all(
    api: &Api<JobStopRequest>,
    names: &[String],
    what: &str,
    check: impl Fn(&JobStopRequest) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let mut missing = Vec::new();
        for name in names {
            if !api.get(name).await.is_ok_and(|r| check(&r)) {
                missing.push(name.clone());
            }
        }
        if missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {what}: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn is_ready(request: &JobStopRequest) -> bool {
    request
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_true(&s.conditions, conditions::READY))
}

#[tokio::test]
async fn every_shipped_manifest_passes_server_side_dry_run() {
    let cp = ControlPlane::shared().await.expect("control plane");
    install_crd(cp).await;
    let namespace = cp.create_namespace("dry-run").await.expect("namespace");
    // A dry run cannot create the namespace the other objects live in, so that one is real.
    run_kubectl(
        cp,
        &[
            "apply",
            "-f",
            &repo_path("deploy/base/namespace.yaml")
                .display()
                .to_string(),
        ],
        None,
    )
    .await
    .expect("namespace applies");
    for kustomization in ["deploy", "deploy/overlays/cluster-secrets"] {
        let rendered = run_kubectl(
            cp,
            &["kustomize", &repo_path(kustomization).display().to_string()],
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("kustomize {kustomization}: {e}"));
        run_kubectl(
            cp,
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&rendered),
        )
        .await
        .unwrap_or_else(|e| panic!("dry run of {kustomization}: {e}"));
    }
    run_kubectl(
        cp,
        &[
            "apply",
            "--dry-run=server",
            "-n",
            &namespace,
            "-f",
            &repo_path("examples").display().to_string(),
        ],
        None,
    )
    .await
    .expect("examples pass a server-side dry run");
}

/// The shipped RBAC is enough (the whole flow works as the ServiceAccount) and not too much
/// (a Secret in another namespace stays unreadable); two replicas stop each job once; killing
/// the leader hands over; /metrics agrees with the stand-in.
#[tokio::test]
async fn two_replicas_with_the_shipped_rbac_stop_each_job_exactly_once() {
    let cp = ControlPlane::shared().await.expect("control plane");
    install_crd(cp).await;
    run_kubectl(
        cp,
        &["apply", "-k", &repo_path("deploy").display().to_string()],
        None,
    )
    .await
    .expect("deploy/ applies");

    let sim = DliSim::start(SimConfig {
        stop_delay: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await
    .expect("stand-in");
    sim.add_ak_sk(ACCESS_KEY, SECRET_KEY);
    let connection = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: dli-connection\n  namespace: {OPERATOR_NAMESPACE}\nstringData:\n  endpoint: {}\n  projectId: {}\n  accessKey: {ACCESS_KEY}\n  secretKey: {SECRET_KEY}\n",
        sim.endpoint(),
        sim.project_id()
    );
    run_kubectl(cp, &["apply", "-f", "-"], Some(&connection))
        .await
        .expect("default Secret");

    let namespace = cp.create_namespace("ha").await.expect("namespace");
    let kubeconfig = cp
        .kubeconfig_for(
            SERVICE_ACCOUNT,
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:dli-stop-operator",
            ],
        )
        .expect("ServiceAccount kubeconfig");
    let ports = [free_port(), free_port()];
    let mut replicas: Vec<Operator> = ports
        .iter()
        .enumerate()
        .map(|(index, port)| {
            let metrics = format!("127.0.0.1:{port}");
            let pod = format!("operator-{index}");
            let mut args = vec![
                "--namespace",
                namespace.as_str(),
                "--operator-namespace",
                OPERATOR_NAMESPACE,
                "--default-connection-namespaces",
                namespace.as_str(),
                "--leader-elect",
                "--lease-duration",
                "3s",
                "--metrics-addr",
                metrics.as_str(),
                "--pod-name",
                pod.as_str(),
            ];
            args.extend(FAST_TIMINGS);
            Operator::start_with(&kubeconfig, &args, &[])
        })
        .collect();

    let api: Api<JobStopRequest> = Api::namespaced(cp.client(), &namespace);
    let first_ids: Vec<i64> = (1000..1050).collect();
    sim.add_running_jobs(&first_ids);
    let mut names = Vec::new();
    for id in &first_ids {
        let name = format!("stop-{id}");
        api.create(&PostParams::default(), &request(&name, &[*id], ""))
            .await
            .expect("create");
        names.push(name);
    }
    wait_all(&api, &names, "Ready", is_ready).await;
    for id in &first_ids {
        assert_eq!(sim.stop_calls(*id), 1, "job {id}");
    }
    assert_eq!(sim.total_stop_calls(), 50);

    let mut pages = Vec::new();
    for port in ports {
        pages.push(scrape(port).await);
    }
    let delivered: f64 = pages
        .iter()
        .map(|page| {
            counter(
                page,
                "dli_stop_operator_dli_requests_total",
                &["operation=\"batch_stop\"", "outcome=\"delivered\""],
            )
        })
        .sum();
    assert_eq!(delivered, 50.0, "metrics disagree with the stand-in");
    let leaders: f64 = pages
        .iter()
        .map(|page| counter(page, "dli_stop_operator_leader", &[]))
        .sum();
    assert_eq!(leaders, 1.0, "exactly one replica leads");

    // The base RBAC reads only the operator's own Secret: a connectionRef elsewhere is refused
    // and the request says so.
    let elsewhere = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: team-dli\n  namespace: {namespace}\nstringData:\n  endpoint: {}\n  projectId: {}\n  accessKey: {ACCESS_KEY}\n  secretKey: {SECRET_KEY}\n",
        sim.endpoint(),
        sim.project_id()
    );
    run_kubectl(cp, &["apply", "-f", "-"], Some(&elsewhere))
        .await
        .expect("team Secret");
    sim.add_running_jobs(&[2000]);
    api.create(
        &PostParams::default(),
        &request(
            "own-secret",
            &[2000],
            "  connectionRef:\n    name: team-dli\n",
        ),
    )
    .await
    .expect("create");
    wait_all(
        &api,
        &["own-secret".to_string()],
        "Pending with a RBAC message",
        |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(Phase::Pending)
                    && conditions::find(&s.conditions, conditions::READY).is_some_and(|c| {
                        c.reason == "ConnectionInvalid" && c.message.contains("may not read Secret")
                    })
            })
        },
    )
    .await;
    assert_eq!(sim.stop_calls(2000), 0);

    // Kill the leader; the other replica takes over and finishes new requests, once each.
    let leases: Api<Lease> = Api::namespaced(cp.client(), OPERATOR_NAMESPACE);
    let holder = leases
        .get("dli-stop-operator")
        .await
        .expect("lease")
        .spec
        .and_then(|s| s.holder_identity)
        .expect("lease has a holder");
    let leader_index = if holder.starts_with("operator-0/") {
        0
    } else {
        1
    };
    replicas[leader_index].kill().await;
    let second_ids: Vec<i64> = (3000..3010).collect();
    sim.add_running_jobs(&second_ids);
    let mut second = Vec::new();
    for id in &second_ids {
        let name = format!("after-failover-{id}");
        api.create(&PostParams::default(), &request(&name, &[*id], ""))
            .await
            .expect("create");
        second.push(name);
    }
    wait_all(&api, &second, "Ready after failover", is_ready).await;
    for id in second_ids.iter().chain(&first_ids) {
        assert_eq!(sim.stop_calls(*id), 1, "job {id}");
    }
    let survivor = &replicas[1 - leader_index];
    let log = survivor.log();
    assert!(!log.contains("panicked"), "{log}");
    let by_id: BTreeMap<i64, usize> = second_ids
        .iter()
        .map(|id| (*id, sim.stop_calls(*id)))
        .collect();
    assert!(by_id.values().all(|calls| *calls == 1), "{by_id:?}");

    // A replica that loses the Lease stops exporting request counts: frozen at their last
    // values they would keep alerts such as DliStopOutcomeUnknown firing.
    let survivor_port = ports[1 - leader_index];
    scrape_until(
        survivor_port,
        "the leader counts the finished requests",
        |page| counter(page, "dli_stop_operator_requests", &["phase=\"Succeeded\""]) >= 60.0,
    )
    .await;
    let now = serde_json::to_value(MicroTime(jiff::Timestamp::now())).expect("time");
    let taken = serde_json::json!({"spec": {
        "holderIdentity": "intruder",
        "acquireTime": now,
        "renewTime": now,
        "leaseDurationSeconds": 3600,
    }});
    leases
        .patch(
            "dli-stop-operator",
            &PatchParams::default(),
            &Patch::Merge(&taken),
        )
        .await
        .expect("take the lease");
    scrape_until(
        survivor_port,
        "the replica notices it lost the lease",
        |page| counter(page, "dli_stop_operator_leader", &[]) == 0.0,
    )
    .await;
    // The controller stops just after leadership ends, and forgets the counts as it does.
    scrape_until(
        survivor_port,
        "a replica that does not lead stops exporting request counts",
        |page| !page.contains("dli_stop_operator_requests{"),
    )
    .await;
}

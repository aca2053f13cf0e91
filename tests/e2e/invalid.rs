//! A status integer past what its type holds: refused by the schema, and should one be stored
//! anyway (an older schema), the operator skips that request and reconciles the others.

use std::time::Duration;

use dli_stop_dev::sim::{DliSim, SimConfig};
use dli_stop_dev::testenv::ControlPlane;
use dli_stop_operator::api::Phase;
use kube::Api;
use serde_json::Value;

use crate::request;
use crate::support::{
    ACCESS_KEY, Env, Operator, SECRET_KEY, WAIT, repo_path, wait_crd_established,
};

/// The shipped CRD without any `maximum`, as a schema from before the bounds were added may
/// have stored values the types cannot hold.
fn crd_without_maxima() -> String {
    let yaml = std::fs::read_to_string(repo_path("crds/jobstoprequests.yaml")).expect("CRD file");
    let mut crd: Value = serde_saphyr::from_str(&yaml).expect("CRD YAML");
    fn strip(value: &mut Value) {
        match value {
            Value::Object(fields) => {
                fields.remove("maximum");
                fields.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut crd);
    crd.to_string()
}

/// A status with `attempts` past what a u32 holds (written by hand, or stored under an older
/// schema) fails to deserialize. Unguarded, it failed every list and watch of the kind, and
/// the operator reconciled nothing at all after a restart.
#[tokio::test]
async fn an_unreadable_request_is_skipped_and_the_others_still_complete() {
    // A control plane of its own: the CRD it installs differs from the shipped one.
    let cp = ControlPlane::start().await.expect("control plane starts");
    cp.run_kubectl_with_input(&["apply", "-f", "-"], Some(&crd_without_maxima()))
        .await
        .expect("CRD installs");
    wait_crd_established(&cp).await;
    let namespace = cp.create_namespace("invalid").await.expect("namespace");
    let sim = DliSim::start(SimConfig {
        stop_delay: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await
    .expect("stand-in starts");
    sim.add_ak_sk(ACCESS_KEY, SECRET_KEY);
    sim.add_running_jobs(&[1, 2]);
    let kubectl = |args: Vec<&str>, stdin: Option<String>| {
        let mut all = vec!["-n", namespace.as_str()];
        all.extend(args);
        let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
        let cp = &cp;
        async move {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            cp.run_kubectl_with_input(&args, stdin.as_deref())
                .await
                .expect("kubectl succeeds")
        }
    };

    kubectl(vec!["apply", "-f", "-"], Some(request("broken", &[1], ""))).await;
    kubectl(
        vec![
            "patch",
            "jsr",
            "broken",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"submission":{"generation":1,"state":"Answered","attempts":5000000000}}}"#,
        ],
        None,
    )
    .await;

    let operator = Operator::start(&cp, &namespace, &sim).await;
    kubectl(vec!["apply", "-f", "-"], Some(request("fine", &[2], ""))).await;
    let requests: Api<dli_stop_operator::api::JobStopRequest> =
        Api::namespaced(cp.client(), &namespace);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let fine = requests.get("fine").await.expect("read back");
        if fine.status.and_then(|s| s.phase) == Some(Phase::Succeeded) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the readable request never finished; operator log:\n{}",
            operator.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sim.stop_calls(2), 1);
    assert_eq!(
        sim.stop_calls(1),
        0,
        "the unreadable request was left alone"
    );

    let events = kubectl(
        vec![
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=broken",
            "-o",
            "jsonpath={.items[*].reason}",
        ],
        None,
    )
    .await;
    assert!(events.contains("InvalidObject"), "events: {events}");
    assert!(
        operator.log().contains("cannot read this request"),
        "{}",
        operator.log_tail()
    );
}

/// The shipped schema bounds every status integer by what its type holds, so the API server
/// refuses such a status before it is stored.
#[tokio::test]
async fn the_shipped_schema_refuses_a_status_integer_the_operator_cannot_hold() {
    let env = Env::start("bounded", &[3]).await;
    env.apply(&request("bounded", &[3], "")).await;
    let refused = env
        .kubectl(&[
            "patch",
            "jsr",
            "bounded",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"submission":{"generation":1,"attempts":5000000000}}}"#,
        ])
        .await
        .expect_err("the API server refuses the value");
    assert!(
        refused.contains("status.submission.attempts")
            && refused.contains("less than or equal to 4294967295"),
        "{refused}"
    );
}

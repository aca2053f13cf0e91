//! Tenancy on the real API server, with real RBAC: a team member with the shipped user role
//! (a client certificate of their own, not the admin) stops the team's jobs through the team's
//! Secret and nothing else; the operator runs with the shipped RBAC of its ServiceAccount plus
//! the team-namespace component; a connection pointing at loopback is refused before any
//! connection; the user roles reach the built-in `view`/`edit`/`admin` through Kubernetes' own
//! aggregation controller. Only loopback is ever dialled.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use dli_stop_dev::counting_listener::CountingListener;
use dli_stop_dev::sim::{DliSim, SimConfig};
use dli_stop_dev::testenv::{ControlPlane, cache_dir};
use dli_stop_operator::api::{JobStopRequest, Phase, conditions};
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

use super::request;
use super::support::{
    ACCESS_KEY, Env, FAST_TIMINGS, Operator, SECRET_KEY, dli_env, install_crd, repo_path,
    run_kubectl,
};

const OPERATOR_NAMESPACE: &str = "dli-stop-operator";
const OPERATOR: &str = "system:serviceaccount:dli-stop-operator:dli-stop-operator";
const OPERATOR_GROUPS: [&str; 2] = [
    "system:serviceaccounts",
    "system:serviceaccounts:dli-stop-operator",
];
const JSR: &str = "jobstoprequests.dli.stop-operator.io";

static SHIPPED_RBAC: OnceCell<()> = OnceCell::const_new();

/// The operator's RBAC and the user roles from `deploy/base`, as `kubectl apply -k deploy/`
/// installs them, but no Deployment: the operator under test runs as a process here.
async fn install_shipped_rbac(cp: &ControlPlane) {
    SHIPPED_RBAC
        .get_or_init(|| async {
            for file in ["namespace.yaml", "rbac.yaml", "user-roles.yaml"] {
                let path = repo_path("deploy/base").join(file);
                run_kubectl(cp, &["apply", "-f", &path.display().to_string()], None)
                    .await
                    .unwrap_or_else(|e| panic!("{file} applies: {e}"));
            }
        })
        .await;
}

/// `examples/team-namespace/` rendered by kustomize for `namespace`, applied: the operator may
/// read Secrets there.
async fn include_team_component(cp: &ControlPlane, namespace: &str) {
    let example = repo_path("examples/team-namespace").display().to_string();
    let rendered = run_kubectl(cp, &["kustomize", &example], None)
        .await
        .expect("the example renders");
    assert!(
        rendered.contains("namespace: team-a\n"),
        "the example targets team-a:\n{rendered}"
    );
    let for_test = rendered.replace("namespace: team-a\n", &format!("namespace: {namespace}\n"));
    run_kubectl(cp, &["apply", "-f", "-"], Some(&for_test))
        .await
        .expect("the component applies");
}

/// A member of `group`, with a kubeconfig of their own.
struct Member {
    kubeconfig: PathBuf,
}

impl Member {
    fn new(cp: &ControlPlane, user: &str, group: &str) -> Member {
        Member {
            kubeconfig: cp.kubeconfig_for(user, &[group]).expect("user kubeconfig"),
        }
    }

    /// `kubectl apply -n NAMESPACE -f -` of `yaml` as this member.
    async fn apply(
        &self,
        cp: &ControlPlane,
        namespace: &str,
        yaml: String,
    ) -> Result<String, String> {
        self.kubectl(cp, &["apply", "-n", namespace, "-f", "-"], Some(&yaml))
            .await
    }

    /// kubectl as this member; `Ok(stdout)` or `Err(stderr)`.
    async fn kubectl(
        &self,
        cp: &ControlPlane,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, String> {
        kubectl_with(cp, &self.kubeconfig, args, stdin).await
    }
}

async fn kubectl_with(
    cp: &ControlPlane,
    kubeconfig: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, String> {
    let mut child = tokio::process::Command::new(cp.kubectl_path())
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl starts");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).await.expect("stdin");
    }
    let output = child.wait_with_output().await.expect("kubectl runs");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn secret(name: &str, sim: &DliSim, endpoint: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n  endpoint: {endpoint}\n  projectId: {}\n  accessKey: {ACCESS_KEY}\n  secretKey: {SECRET_KEY}\n{extra}",
        sim.project_id()
    )
}

fn ready_condition(request: &JobStopRequest) -> Option<(String, String)> {
    let status = request.status.as_ref()?;
    let ready = conditions::find(&status.conditions, conditions::READY)?;
    (ready.observed_generation == request.metadata.generation)
        .then(|| (ready.reason.clone(), ready.message.clone()))
}

async fn wait_reason(env: &Env, name: &str, reason: &str) -> String {
    let found = env
        .wait_for(name, reason, |r| {
            ready_condition(r).is_some_and(|(found, _)| found == reason)
        })
        .await;
    ready_condition(&found)
        .map(|(_, message)| message)
        .unwrap_or_default()
}

async fn sim_with_jobs(ids: &[i64]) -> DliSim {
    let sim = DliSim::start(SimConfig {
        stop_delay: Duration::from_millis(500),
        ..SimConfig::default()
    })
    .await
    .expect("stand-in starts");
    sim.add_ak_sk(ACCESS_KEY, SECRET_KEY);
    sim.add_running_jobs(ids);
    sim
}

/// The operator as its ServiceAccount with the shipped RBAC, watching `namespace`, with the
/// stand-in as the admin's default connection.
fn operator_as_its_service_account(
    cp: &ControlPlane,
    namespace: &str,
    sim: &DliSim,
    extra: &[&str],
) -> Operator {
    let kubeconfig = cp
        .kubeconfig_for(OPERATOR, &OPERATOR_GROUPS)
        .expect("operator kubeconfig");
    let mut args = vec![
        "--namespace",
        namespace,
        "--operator-namespace",
        OPERATOR_NAMESPACE,
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    args.extend(FAST_TIMINGS);
    args.extend(extra);
    Operator::start_with(&kubeconfig, &args, &dli_env(sim))
}

#[tokio::test]
async fn a_team_stops_its_own_jobs_through_its_own_secret_and_nothing_else() {
    let cp = ControlPlane::shared().await.expect("control plane");
    install_crd(cp).await;
    install_shipped_rbac(cp).await;
    let team = cp.create_namespace("team").await.expect("namespace");
    let other = cp.create_namespace("other").await.expect("namespace");
    include_team_component(cp, &team).await;

    // What a namespace admin grants the team: the shipped role for requests (as the README
    // shows), and Secrets of its own namespace.
    let group = format!("{team}-members");
    run_kubectl(
        cp,
        &[
            "create",
            "rolebinding",
            "dli-stop-requests",
            "-n",
            &team,
            "--clusterrole=dli-stop-operator-edit",
            &format!("--group={group}"),
        ],
        None,
    )
    .await
    .expect("rolebinding");
    run_kubectl(
        cp,
        &[
            "create",
            "role",
            "team-secrets",
            "-n",
            &team,
            "--verb=get,create,update,patch",
            "--resource=secrets",
        ],
        None,
    )
    .await
    .expect("role");
    run_kubectl(
        cp,
        &[
            "create",
            "rolebinding",
            "team-secrets",
            "-n",
            &team,
            "--role=team-secrets",
            &format!("--group={group}"),
        ],
        None,
    )
    .await
    .expect("rolebinding");
    let alice = Member::new(cp, "alice", &group);

    let sim = sim_with_jobs(&[11, 12, 21, 31]).await;
    let operator = operator_as_its_service_account(cp, &team, &sim, &["--allow-private-endpoints"]);
    let mut env = Env {
        cp,
        namespace: team.clone(),
        sim,
        operator,
    };
    let as_alice = |yaml: String| alice.apply(cp, &team, yaml);

    // The team's own Secret, scoped to jobs 11 and 12, stops job 11.
    let endpoint = env.sim.endpoint();
    as_alice(secret(
        "dli-team",
        &env.sim,
        &endpoint,
        "  allowedJobIds: \"11-12\"\n",
    ))
    .await
    .expect("alice writes her team's Secret");
    as_alice(request(
        "own",
        &[11],
        "  connectionRef:\n    name: dli-team\n",
    ))
    .await
    .expect("alice creates a request");
    env.wait_ready("own").await;
    assert_eq!(env.sim.stop_calls(11), 1);

    // A job outside the scope: refused before any claim or call, final.
    as_alice(request(
        "out-of-scope",
        &[12, 31],
        "  connectionRef:\n    name: dli-team\n",
    ))
    .await
    .expect("apply");
    let refused = env.wait_phase("out-of-scope", Phase::Failed).await;
    let status = refused.status.clone().expect("status");
    assert!(status.submission.is_none(), "nothing was claimed");
    let stalled = conditions::find(&status.conditions, conditions::STALLED).expect("Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "JobsNotAllowed")
    );
    assert!(stalled.message.contains("31"), "{}", stalled.message);

    // No connectionRef: the admin's default connection is not this namespace's.
    as_alice(request("no-ref", &[21], "")).await.expect("apply");
    let message = wait_reason(&env, "no-ref", "DefaultConnectionNotAllowed").await;
    assert!(
        message.contains("--default-connection-namespaces"),
        "{message}"
    );

    // Another namespace's Secret: a name is looked up in the request's own namespace, and a
    // path is not a name.
    run_kubectl(
        cp,
        &["apply", "-n", &other, "-f", "-"],
        Some(&secret("dli-other", &env.sim, &endpoint, "")),
    )
    .await
    .expect("the other team's Secret");
    as_alice(request(
        "borrowed",
        &[21],
        "  connectionRef:\n    name: dli-other\n",
    ))
    .await
    .expect("apply");
    let message = wait_reason(&env, "borrowed", "ConnectionInvalid").await;
    assert!(
        message.contains(&format!("Secret {team}/dli-other")) && message.contains("does not exist"),
        "{message}"
    );
    for name in [
        format!("{other}/dli-other"),
        format!("../{other}/dli-other"),
    ] {
        let refused = as_alice(request(
            "path",
            &[21],
            &format!("  connectionRef:\n    name: {name}\n"),
        ))
        .await
        .expect_err("the API server refuses a path");
        assert!(refused.contains("DNS-1123 subdomain"), "{refused}");
    }
    assert!(
        alice
            .kubectl(cp, &["get", "secret", "dli-other", "-n", &other], None)
            .await
            .is_err(),
        "alice reads another namespace's Secret"
    );
    assert!(
        cp.can_i(OPERATOR, &OPERATOR_GROUPS, &["get", "secrets", "-n", &team])
            .await
    );
    assert!(
        !cp.can_i(
            OPERATOR,
            &OPERATOR_GROUPS,
            &["get", "secrets", "-n", &other]
        )
        .await
    );
    assert!(
        !cp.can_i(
            OPERATOR,
            &OPERATOR_GROUPS,
            &["list", "secrets", "-n", &team]
        )
        .await
    );

    env.settle().await;
    assert_eq!(
        env.sim.total_stop_calls(),
        1,
        "only job 11 was ever stopped"
    );
    let events = env.event_reasons("out-of-scope").await;
    assert!(events.iter().any(|r| r == "JobsNotAllowed"), "{events:?}");
    let events = env.event_reasons("no-ref").await;
    assert!(
        events.iter().any(|r| r == "DefaultConnectionNotAllowed"),
        "{events:?}"
    );
    assert!(
        env.operator
            .log()
            .contains("outside the connection's allowedJobIds"),
        "{}",
        env.operator.log_tail()
    );

    // Once the admin names the namespace, the waiting request goes through; the refused one
    // stays refused.
    env.operator.kill().await;
    env.operator = operator_as_its_service_account(
        cp,
        &team,
        &env.sim,
        &[
            "--allow-private-endpoints",
            "--default-connection-namespaces",
            &format!("ops,{team}"),
        ],
    );
    env.wait_ready("no-ref").await;
    assert_eq!(env.sim.stop_calls(21), 1);
    env.settle().await;
    assert_eq!(env.sim.stop_calls(12), 0);
    assert_eq!(env.sim.stop_calls(31), 0);
    assert_eq!(env.sim.total_stop_calls(), 2);
}

/// Kubernetes' ClusterRole aggregation controller (`make control-plane` builds it), run as the
/// admin while the returned process lives: the test control plane has no controller manager.
fn start_aggregator(cp: &ControlPlane) -> tokio::process::Child {
    let binary = cache_dir(&|name| std::env::var(name).ok()).join("clusterrole-aggregator");
    assert!(
        binary.is_file(),
        "{} is missing: run `make control-plane`",
        binary.display()
    );
    tokio::process::Command::new(&binary)
        .arg(format!("--kubeconfig={}", cp.kubeconfig_path().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the aggregator starts")
}

#[tokio::test]
async fn an_endpoint_on_loopback_is_refused_before_any_connection() {
    let cp = ControlPlane::shared().await.expect("control plane");
    install_crd(cp).await;
    let namespace = cp.create_namespace("egress").await.expect("namespace");
    let sim = sim_with_jobs(&[41, 42]).await;
    let listener = CountingListener::start().await;
    // The count moves for a real connection, so zero below means none was made.
    tokio::net::TcpStream::connect(("127.0.0.1", listener.port))
        .await
        .expect("the listener accepts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while listener.count() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut args = vec![
        "--namespace",
        namespace.as_str(),
        "--operator-namespace",
        OPERATOR_NAMESPACE,
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    args.extend(FAST_TIMINGS);
    let operator = Operator::start_with(cp.kubeconfig_path(), &args, &dli_env(&sim));
    let env = Env {
        cp,
        namespace,
        sim,
        operator,
    };
    let by_ip = format!("http://127.0.0.1:{}", listener.port);
    let by_name = format!("http://localhost:{}", listener.port);
    env.apply(&secret("by-ip", &env.sim, &by_ip, "")).await;
    env.apply(&secret("by-name", &env.sim, &by_name, "")).await;
    env.apply(&request(
        "via-ip",
        &[41],
        "  connectionRef:\n    name: by-ip\n",
    ))
    .await;
    env.apply(&request(
        "via-name",
        &[42],
        "  connectionRef:\n    name: by-name\n",
    ))
    .await;

    let message = wait_reason(&env, "via-ip", "EndpointNotAllowed").await;
    assert!(
        message.contains("127.0.0.1 is a loopback address")
            && message.contains("--allow-private-endpoints"),
        "{message}"
    );
    let message = wait_reason(&env, "via-name", "EndpointNotAllowed").await;
    assert!(message.contains("localhost resolves to"), "{message}");
    // Pending requests look again after the retry delay (5 s with these flags): let them.
    tokio::time::sleep(Duration::from_secs(7)).await;
    for name in ["via-ip", "via-name"] {
        let pending = env.requests().get(name).await.expect("request");
        let status = pending.status.expect("status");
        assert_eq!(status.phase, Some(Phase::Pending));
        assert!(status.submission.is_none(), "nothing was claimed");
        let events = env.event_reasons(name).await;
        assert!(
            events.iter().any(|r| r == "EndpointNotAllowed"),
            "{events:?}"
        );
    }
    assert_eq!(listener.count(), 1, "the operator connected to loopback");
    assert_eq!(env.sim.total_stop_calls(), 0);
}

/// The default connection is the admin's and may point anywhere, the stand-in on loopback
/// included; the same Secret named by a request's `connectionRef` is a request's connection
/// and is guarded, even after its unguarded client was built for the default.
#[tokio::test]
async fn the_default_secret_is_trusted_but_not_when_a_request_names_it() {
    let cp = ControlPlane::shared().await.expect("control plane");
    install_crd(cp).await;
    let namespace = cp.create_namespace("trusted").await.expect("namespace");
    let sim = sim_with_jobs(&[51, 52]).await;
    let mut args = vec![
        "--namespace",
        namespace.as_str(),
        "--operator-namespace",
        namespace.as_str(),
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    args.extend(FAST_TIMINGS);
    let operator = Operator::start_with(cp.kubeconfig_path(), &args, &[]);
    let env = Env {
        cp,
        namespace,
        sim,
        operator,
    };
    let endpoint = env.sim.endpoint();
    env.apply(&secret("dli-connection", &env.sim, &endpoint, ""))
        .await;
    env.apply(&request("by-default", &[51], "")).await;
    env.wait_ready("by-default").await;
    env.apply(&request(
        "by-name",
        &[52],
        "  connectionRef:\n    name: dli-connection\n",
    ))
    .await;
    let message = wait_reason(&env, "by-name", "EndpointNotAllowed").await;
    assert!(
        message.contains("127.0.0.1 is a loopback address"),
        "{message}"
    );
    assert_eq!(env.sim.stop_calls(51), 1);
    assert_eq!(env.sim.stop_calls(52), 0);
}

#[tokio::test]
async fn the_shipped_user_roles_grant_what_teams_need_and_nothing_more() {
    let cp = ControlPlane::shared().await.expect("control plane");
    install_crd(cp).await;
    install_shipped_rbac(cp).await;
    let team = cp.create_namespace("roles").await.expect("namespace");
    let elsewhere = cp.create_namespace("elsewhere").await.expect("namespace");
    for (user, role) in [
        ("editor", "dli-stop-operator-edit"),
        ("viewer", "dli-stop-operator-view"),
    ] {
        run_kubectl(
            cp,
            &[
                "create",
                "rolebinding",
                user,
                "-n",
                &team,
                &format!("--clusterrole={role}"),
                &format!("--user={user}"),
            ],
            None,
        )
        .await
        .expect("rolebinding");
    }
    let cases: &[(&str, &[&str], bool)] = &[
        ("editor", &["create", JSR], true),
        ("editor", &["update", JSR], true),
        ("editor", &["patch", JSR], true),
        ("editor", &["delete", JSR], true),
        ("editor", &["deletecollection", JSR], true),
        ("editor", &["list", JSR], true),
        ("editor", &["watch", JSR], true),
        ("editor", &["get", JSR, "--subresource=status"], true),
        ("editor", &["update", JSR, "--subresource=status"], false),
        ("editor", &["patch", JSR, "--subresource=status"], false),
        ("editor", &["get", "secrets"], false),
        ("viewer", &["get", JSR], true),
        ("viewer", &["list", JSR], true),
        ("viewer", &["watch", JSR], true),
        ("viewer", &["create", JSR], false),
        ("viewer", &["delete", JSR], false),
        ("viewer", &["update", JSR, "--subresource=status"], false),
    ];
    let mut wrong = Vec::new();
    for (user, args, expected) in cases {
        let mut in_team = args.to_vec();
        in_team.extend(["-n", team.as_str()]);
        if cp.can_i(user, &[], &in_team).await != *expected {
            wrong.push(format!("{user} {args:?} should be {expected}"));
        }
        let mut outside = args.to_vec();
        outside.extend(["-n", elsewhere.as_str()]);
        if cp.can_i(user, &[], &outside).await {
            wrong.push(format!("{user} {args:?} is allowed outside the namespace"));
        }
    }
    assert!(wrong.is_empty(), "RBAC differs:\n{}", wrong.join("\n"));

    // Through the built-in roles, as Kubernetes' own aggregation controller fills them in.
    let _aggregator = start_aggregator(cp);
    for (user, role) in [("owner", "admin"), ("member", "edit"), ("reader", "view")] {
        run_kubectl(
            cp,
            &[
                "create",
                "rolebinding",
                &format!("builtin-{user}"),
                "-n",
                &team,
                &format!("--clusterrole={role}"),
                &format!("--user={user}"),
            ],
            None,
        )
        .await
        .expect("rolebinding");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cp.can_i("member", &[], &["create", JSR, "-n", &team]).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the built-in edit role never gained JobStopRequests"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let builtin: &[(&str, &[&str], bool)] = &[
        ("owner", &["create", JSR], true),
        ("owner", &["delete", JSR], true),
        ("owner", &["update", JSR, "--subresource=status"], false),
        ("member", &["create", JSR], true),
        ("member", &["delete", JSR], true),
        ("member", &["update", JSR, "--subresource=status"], false),
        ("reader", &["get", JSR], true),
        ("reader", &["list", JSR], true),
        ("reader", &["get", JSR, "--subresource=status"], true),
        ("reader", &["create", JSR], false),
        ("reader", &["update", JSR], false),
    ];
    for (user, args, expected) in builtin {
        let mut in_team = args.to_vec();
        in_team.extend(["-n", team.as_str()]);
        if cp.can_i(user, &[], &in_team).await != *expected {
            wrong.push(format!(
                "{user} (built-in role) {args:?} should be {expected}"
            ));
        }
    }
    assert!(wrong.is_empty(), "RBAC differs:\n{}", wrong.join("\n"));

    // Labelled for the built-in roles' aggregation, as Kubernetes documents for CRDs.
    let roles: kube::Api<k8s_openapi::api::rbac::v1::ClusterRole> = kube::Api::all(cp.client());
    let labels = |name: &str| {
        let roles = roles.clone();
        let name = name.to_owned();
        async move {
            let role = roles.get(&name).await.expect("role exists");
            let mut found: Vec<String> = role
                .metadata
                .labels
                .unwrap_or_default()
                .into_iter()
                .filter(|(key, value)| {
                    key.starts_with("rbac.authorization.k8s.io/aggregate-to-") && value == "true"
                })
                .map(|(key, _)| {
                    key.trim_start_matches("rbac.authorization.k8s.io/")
                        .to_owned()
                })
                .collect();
            found.sort();
            found
        }
    };
    assert_eq!(
        labels("dli-stop-operator-view").await,
        [
            "aggregate-to-admin",
            "aggregate-to-edit",
            "aggregate-to-view"
        ]
    );
    assert_eq!(
        labels("dli-stop-operator-edit").await,
        ["aggregate-to-admin", "aggregate-to-edit"]
    );
}

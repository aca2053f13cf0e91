//! Leader election against a real API server, with the permissions the shipped Role grants
//! (`deploy/base/rbac.yaml`): one leader among two replicas, a fast hand-over when the leader
//! goes away, and a leader cut off from the API server stepping down before anyone else can
//! take its lease.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dli_stop_dev::testenv::ControlPlane;
use dli_stop_operator::leader::{LeaderConfig, LeaderHandle, elect};
use dli_stop_operator::metrics::Metrics;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The lease name the shipped Role allows (`--lease-name` default).
const LEASE: &str = "dli-stop-operator";
// A leader steps down a second before its lease expires; with a 6 s lease renewed every 2 s,
// a renewal may come 3 s late (a loaded machine) before that happens.
const LEASE_DURATION: Duration = Duration::from_secs(6);
const RENEW_INTERVAL: Duration = Duration::from_secs(2);
const SERVICE_ACCOUNT: &str = "dli-stop-operator";

fn config(namespace: &str, identity: &str) -> LeaderConfig {
    LeaderConfig {
        lease_duration: LEASE_DURATION,
        renew_interval: RENEW_INTERVAL,
        ..LeaderConfig::new(LEASE, namespace, identity)
    }
}

/// Installs the operator's namespaced Role from `deploy/base/rbac.yaml` into `namespace` and
/// binds it to the operator's ServiceAccount there; returns that account's user and groups.
async fn grant_shipped_role(cp: &ControlPlane, namespace: &str) -> (String, [String; 2]) {
    let manifests = std::fs::read_to_string("deploy/base/rbac.yaml").unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&manifests).unwrap();
    let mut role = documents
        .into_iter()
        .find(|doc| doc["kind"] == "Role")
        .map(|doc| serde_json::from_value::<Role>(doc).unwrap())
        .expect("deploy/base/rbac.yaml has a Role");
    role.metadata.namespace = Some(namespace.to_owned());
    let role_name = role.metadata.name.clone().unwrap();

    let client = cp.client();
    Api::<Role>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(role_name.clone()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: role_name,
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: SERVICE_ACCOUNT.to_owned(),
            namespace: Some(namespace.to_owned()),
            ..Subject::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(client, namespace)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    (
        format!("system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"),
        [
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{namespace}"),
        ],
    )
}

/// A client with the operator's permissions, talking to `server` (the API server or a proxy).
async fn operator_client(
    cp: &ControlPlane,
    identity: &(String, [String; 2]),
    server: Option<&str>,
) -> kube::Client {
    let (user, groups) = identity;
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let path = cp.kubeconfig_for(user, &groups).unwrap();
    let kubeconfig = Kubeconfig::read_from(path).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    if let Some(server) = server {
        config.cluster_url = server.parse().unwrap();
    }
    kube::Client::try_from(config).unwrap()
}

/// A TCP relay to the API server that can be cut: the network partition of one replica.
struct Relay {
    url: String,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { url, task }
    }

    /// Drops every open connection and refuses new ones.
    async fn cut(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn api_server_addr(cp: &ControlPlane) -> SocketAddr {
    let url: http::Uri = cp.server_url().parse().unwrap();
    format!("{}:{}", url.host().unwrap(), url.port_u16().unwrap())
        .parse()
        .unwrap()
}

/// Notes, in a task of its own, when `receiver` comes to say `want`: started before the
/// change, it times each replica's change independently of the order the test awaits them.
fn when_it_says(mut receiver: watch::Receiver<bool>, want: bool) -> JoinHandle<Instant> {
    tokio::spawn(async move {
        receiver.wait_for(|leading| *leading == want).await.unwrap();
        Instant::now()
    })
}

/// Waits until `receiver` says `want`; returns when that was seen, or `None` after `within`.
async fn wait_for(
    receiver: &mut watch::Receiver<bool>,
    want: bool,
    within: Duration,
) -> Option<Instant> {
    tokio::time::timeout(within, receiver.wait_for(|leading| *leading == want))
        .await
        .ok()
        .map(|seen| {
            seen.unwrap();
            Instant::now()
        })
}

async fn holder(cp: &ControlPlane, namespace: &str) -> Option<String> {
    let lease = Api::<Lease>::namespaced(cp.client(), namespace)
        .get(LEASE)
        .await
        .unwrap();
    lease.spec.and_then(|spec| spec.holder_identity)
}

struct Replica {
    leading: watch::Receiver<bool>,
    handle: LeaderHandle,
    metrics: Metrics,
}

async fn replica(client: kube::Client, namespace: &str, identity: &str) -> Replica {
    let metrics = Metrics::new();
    let (leading, handle) = elect(client, config(namespace, identity), metrics.clone())
        .await
        .unwrap();
    Replica {
        leading,
        handle,
        metrics,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_replicas_leads_and_a_dropped_leader_hands_over() {
    let cp = ControlPlane::shared().await.unwrap();
    let namespace = cp.create_namespace("leader-handover").await.unwrap();
    let account = grant_shipped_role(cp, &namespace).await;

    let a = replica(
        operator_client(cp, &account, None).await,
        &namespace,
        "replica-a",
    )
    .await;
    let b = replica(
        operator_client(cp, &account, None).await,
        &namespace,
        "replica-b",
    )
    .await;

    // Someone leads soon, and from then on exactly that one, for two lease durations.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !*a.leading.borrow() && !*b.leading.borrow() {
        assert!(Instant::now() < deadline, "nobody became leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let a_leads = *a.leading.borrow();
    let watch_until = Instant::now() + 2 * LEASE_DURATION;
    while Instant::now() < watch_until {
        assert_eq!(*a.leading.borrow(), a_leads, "replica-a flapped");
        assert_eq!(*b.leading.borrow(), !a_leads, "not exactly one leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (leader, follower, follower_name) = if a_leads {
        (a, b, "replica-b")
    } else {
        (b, a, "replica-a")
    };
    assert!(
        leader
            .metrics
            .encode()
            .contains("dli_stop_operator_leader 1\n")
    );
    assert!(
        follower
            .metrics
            .encode()
            .contains("dli_stop_operator_leader 0\n")
    );

    let stopped = when_it_says(leader.leading.clone(), false);
    let started = when_it_says(follower.leading.clone(), true);
    let dropped = Instant::now();
    drop(leader.handle);
    // Generous waits: they bound a loaded machine's delays, not the protocol's timing; the
    // order of the two changes is what matters.
    let stopped = tokio::time::timeout(LEASE_DURATION, stopped)
        .await
        .expect("a dropped elector stops leading well within a lease duration")
        .unwrap();
    let took_over = tokio::time::timeout(LEASE_DURATION * 3, started)
        .await
        .expect("the follower takes over after the lease expires")
        .unwrap();
    assert!(stopped < took_over, "two leaders at once");
    assert!(took_over - dropped <= LEASE_DURATION * 3);
    assert_eq!(holder(cp, &namespace).await.as_deref(), Some(follower_name));
    assert!(
        follower
            .metrics
            .encode()
            .contains("dli_stop_operator_leader 1\n")
    );

    follower.handle.release().await;
    assert!(!*follower.leading.borrow());
    assert_eq!(
        holder(cp, &namespace).await,
        None,
        "release clears the holder"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_steps_down_before_another_takes_over() {
    let cp = ControlPlane::shared().await.unwrap();
    let namespace = cp.create_namespace("leader-partition").await.unwrap();
    let account = grant_shipped_role(cp, &namespace).await;

    let relay = Relay::start(api_server_addr(cp)).await;
    let partitioned = operator_client(cp, &account, Some(&relay.url)).await;
    let mut a = replica(partitioned, &namespace, "replica-a").await;
    assert!(
        wait_for(&mut a.leading, true, Duration::from_secs(10))
            .await
            .is_some(),
        "the only replica becomes leader"
    );
    let b = replica(
        operator_client(cp, &account, None).await,
        &namespace,
        "replica-b",
    )
    .await;
    tokio::time::sleep(LEASE_DURATION).await;
    assert!(
        *a.leading.borrow() && !*b.leading.borrow(),
        "a healthy leader keeps its lease"
    );

    let stepped_down = when_it_says(a.leading.clone(), false);
    let took_over = when_it_says(b.leading.clone(), true);
    let cut = Instant::now();
    relay.cut().await;
    let stepped_down = tokio::time::timeout(LEASE_DURATION * 2, stepped_down)
        .await
        .expect("the cut-off leader steps down")
        .unwrap();
    let took_over = tokio::time::timeout(LEASE_DURATION * 4, took_over)
        .await
        .expect("the other replica takes over the expired lease")
        .unwrap();

    assert!(
        stepped_down - cut < LEASE_DURATION,
        "stepped down {:?} after the cut",
        stepped_down - cut
    );
    assert!(
        stepped_down < took_over,
        "two leaders at once: replica-b led {:?} before replica-a stepped down",
        stepped_down - took_over
    );
    assert_eq!(holder(cp, &namespace).await.as_deref(), Some("replica-b"));
    assert!(a.metrics.encode().contains("dli_stop_operator_leader 0\n"));

    b.handle.release().await;
    // Releasing through the cut connection fails quickly and harmlessly.
    tokio::time::timeout(Duration::from_secs(5), a.handle.release())
        .await
        .expect("release gives up instead of hanging");
}

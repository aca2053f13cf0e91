//! The Helm chart `deploy/helm/dli-stop-operator`, judged by the real helm (built by
//! `make control-plane`) and the real API server: it lints strictly; its defaults are the
//! kustomize base in substance, dry-run cleanly and install as the README says; values render
//! what they say, and every option dry-runs, ServiceMonitor and PrometheusRule included; its
//! CRD is the repository's.
//!
//! Names: installed as the release `dli-stop-operator` in the namespace `dli-stop-operator`
//! (what the README shows), every object has the base's name, so objects are compared by kind
//! and name as they are. Labels differ by design (Helm's usual set, and selectors carry
//! `app.kubernetes.io/instance`), so labels are left out and a selector counts as equal when it
//! selects its own rendering's operator pods (or, for the ServiceMonitor, its metrics Service).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use dli_stop_dev::testenv::{ControlPlane, helm_binary};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

const CHART: &str = "deploy/helm/dli-stop-operator";
/// The release name and namespace the README installs with.
const RELEASE: &str = "dli-stop-operator";
const JSR: &str = "jobstoprequests.dli.stop-operator.io";
/// Stands in for a label selector that selects what it should (see the module docs).
const SELECTS_OPERATOR_PODS: &str = "<selects the operator pods>";
const SELECTS_METRICS_SERVICE: &str = "<selects the metrics Service>";

/// Every option away from its default, for lint and the dry-run.
const EVERY_OPTION: &str = r#"
replicaCount: 3
image: {repository: registry.example.com/dli-stop-operator, tag: "9.9.9", pullPolicy: Always}
imagePullSecrets: [{name: registry-credentials}]
leaderElection: {leaseName: team-lease, leaseDuration: 20s}
defaultConnection:
  secretName: team-dli
  allowedNamespaces: [analytics, etl]
rbac: {readSecretsInAllNamespaces: true}
serviceAccount: {annotations: {example.com/role: dli}}
operator:
  watchNamespace: analytics
  concurrency: 4
  logFormat: text
  logLevel: info,kube=warn
  extraEnv: [{name: DLI_REQUEST_TIMEOUT, value: 60s}]
terminationGracePeriodSeconds: 150
podLabels: {team: data}
podAnnotations: {example.com/scrape: "false"}
priorityClassName: ""
podDisruptionBudget: {minAvailable: 2}
metrics:
  service: {port: 9090}
  serviceMonitor: {enabled: true, labels: {release: prometheus}, interval: 15s}
  prometheusRule: {enabled: true, labels: {release: prometheus}}
"#;

/// helm with config, cache and data dirs of its own, so tests never touch the user's.
struct Helm {
    binary: PathBuf,
    home: TempDir,
}

impl Helm {
    fn new() -> Helm {
        Helm {
            binary: helm_binary(&|name| std::env::var(name).ok()).unwrap(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.binary);
        for (variable, dir) in [
            ("HELM_CACHE_HOME", "cache"),
            ("HELM_CONFIG_HOME", "config"),
            ("HELM_DATA_HOME", "data"),
        ] {
            command.env(variable, self.home.path().join(dir));
        }
        command.kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().await.unwrap()
    }

    /// A file in helm's temp home, e.g. a values file.
    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.home.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// `helm template <release> CHART -n <namespace> <extra>`, which must succeed.
    async fn template(&self, release: &str, namespace: &str, extra: &[&str]) -> String {
        let output = self
            .run(&[&["template", release, CHART, "-n", namespace], extra].concat())
            .await;
        assert!(
            output.status.success(),
            "helm template {extra:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Why `helm template` with `extra` is refused; panics when it renders.
    async fn refusal(&self, extra: &[&str]) -> String {
        let output = self
            .run(&[&["template", RELEASE, CHART, "-n", RELEASE], extra].concat())
            .await;
        assert!(!output.status.success(), "helm template {extra:?} rendered");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

/// Objects by (kind, name).
type Objects = BTreeMap<(String, String), Value>;

fn objects(yaml: &str) -> Objects {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
        .into_iter()
        .filter(|object| !object.is_null())
        .map(|object| {
            let kind = object["kind"].as_str().unwrap().to_owned();
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            ((kind, name), object)
        })
        .collect()
}

fn object<'a>(objects: &'a Objects, kind: &str, name: &str) -> &'a Value {
    objects
        .get(&(kind.to_owned(), name.to_owned()))
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", objects.keys()))
}

fn of_kind<'a>(objects: &'a Objects, kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|((k, _), _)| k == kind)
        .map(|(_, object)| object)
        .collect()
}

/// The one object of `kind`.
fn only<'a>(objects: &'a Objects, kind: &str) -> &'a Value {
    match of_kind(objects, kind).as_slice() {
        [object] => object,
        other => panic!("{} objects of kind {kind}", other.len()),
    }
}

/// Replaces every map equal to `selector` by `marker`, recursively.
fn mark_selector(value: &mut Value, selector: &Value, marker: &str) {
    if value == selector {
        *value = json!(marker);
        return;
    }
    match value {
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| mark_selector(v, selector, marker)),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| mark_selector(v, selector, marker)),
        _ => {}
    }
}

/// The objects without labels, with the operator pods' selector marked (see the module docs).
fn in_substance(objects: &Objects) -> Objects {
    let selector = only(objects, "Deployment")["spec"]["selector"]["matchLabels"].clone();
    assert_eq!(
        only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"],
        selector,
        "the pods carry exactly the Deployment's selector labels"
    );
    objects
        .iter()
        .map(|(key, object)| {
            let mut object = object.clone();
            if let Some(metadata) = object["metadata"].as_object_mut() {
                metadata.remove("labels");
            }
            mark_selector(&mut object, &selector, SELECTS_OPERATOR_PODS);
            (key.clone(), object)
        })
        .collect()
}

/// `kubectl kustomize <dir>`.
async fn kustomize(cp: &ControlPlane, dir: &str) -> Objects {
    objects(&cp.run_kubectl(&["kustomize", dir]).await.unwrap())
}

/// kubectl with `input` on stdin.
async fn kubectl_with_input(cp: &ControlPlane, args: &[&str], input: &str) -> Output {
    let mut child = cp
        .kubectl()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    child.wait_with_output().await.unwrap()
}

/// `kubectl apply --dry-run=server` of `manifests`: it must succeed with nothing on stderr
/// (no warning: Pod Security, deprecated APIs, unknown fields).
async fn dry_run_cleanly(cp: &ControlPlane, manifests: &str) {
    let output = kubectl_with_input(
        cp,
        &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
        manifests,
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.is_empty(),
        "server-side dry-run: {}\nstderr: {stderr}\nstdout: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
}

/// A namespace where Pod Security enforces `restricted`, so a dry-run of a Deployment that
/// breaks it fails.
async fn restricted_namespace(cp: &ControlPlane, prefix: &str) -> String {
    let namespace = cp.create_namespace(prefix).await.unwrap();
    cp.run_kubectl(&[
        "label",
        "namespace",
        &namespace,
        "pod-security.kubernetes.io/enforce=restricted",
    ])
    .await
    .unwrap();
    namespace
}

fn container(objects: &Objects) -> &Value {
    &only(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

/// The container's plain `name: value` environment variables.
fn env(objects: &Objects) -> BTreeMap<String, String> {
    container(objects)["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|var| Some((var["name"].as_str()?.into(), var["value"].as_str()?.into())))
        .collect()
}

/// Lines of the first ```sh block after `heading` in README.md, continuations joined.
fn readme_commands(heading: &str) -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let section = &readme[readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no {heading}"))..];
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("no ```sh block under {heading}"));
    block
        .replace("\\\n", " ")
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn the_chart_lints_strictly() {
    let helm = Helm::new();
    let every_option = helm.write("every-option.yaml", EVERY_OPTION);
    let every_option = every_option.to_str().unwrap();
    for extra in [&[][..], &["-f", every_option], &["--set", "replicaCount=1"]] {
        let output = helm
            .run(&[&["lint", "--strict", CHART], extra].concat())
            .await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 chart(s) linted, 0 chart(s) failed"),
            "helm lint --strict {extra:?}:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_chart_crd_is_the_repository_crd() {
    let repository = std::fs::read_to_string("crds/jobstoprequests.yaml").unwrap();
    let chart = std::fs::read_to_string(Path::new(CHART).join("crds/jobstoprequests.yaml"))
        .expect("the chart carries the CRD in crds/, where Helm installs it from");
    assert!(
        chart == repository,
        "{CHART}/crds/jobstoprequests.yaml differs from crds/jobstoprequests.yaml: run `make crds`"
    );
    let files: Vec<_> = std::fs::read_dir(Path::new(CHART).join("crds"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(
        files,
        ["jobstoprequests.yaml"],
        "the chart's crds/ holds only the CRD"
    );
}

#[test]
fn the_chart_app_version_is_the_operator_version() {
    let chart: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(Path::new(CHART).join("Chart.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
}

/// The chart README's values table is where users find values: one missing there does not
/// exist for them. Every value the schema knows has a row.
#[test]
fn every_value_is_in_the_chart_readme() {
    fn leaves(prefix: &str, schema: &Value, out: &mut Vec<String>) {
        for (key, property) in schema["properties"].as_object().unwrap() {
            let path = format!("{prefix}{key}");
            if property.get("properties").is_some() {
                leaves(&format!("{path}."), property, out);
            } else if key != "global" {
                out.push(path);
            }
        }
    }
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(CHART).join("values.schema.json")).unwrap(),
    )
    .unwrap();
    let readme = std::fs::read_to_string(Path::new(CHART).join("README.md")).unwrap();
    let mut values = Vec::new();
    leaves("", &schema, &mut values);
    let missing: Vec<_> = values
        .iter()
        .filter(|path| !readme.contains(&format!("| `{path}` |")))
        .collect();
    assert!(values.len() > 30, "only {} values found", values.len());
    assert!(
        missing.is_empty(),
        "the chart README has no row for {missing:?}"
    );
}

#[tokio::test]
async fn the_defaults_are_the_kustomize_base() {
    let cp = ControlPlane::shared().await.unwrap();
    let helm = Helm::new();
    let chart = in_substance(&objects(&helm.template(RELEASE, RELEASE, &[]).await));
    let mut base = in_substance(&kustomize(cp, "deploy/base").await);
    // Helm installs into a namespace that exists (created as the README shows, or with
    // --create-namespace); a chart that owned it would delete it, Secrets and all, on uninstall.
    base.remove(&("Namespace".to_owned(), RELEASE.to_owned()))
        .expect("the base creates its namespace");

    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        base.keys().collect::<Vec<_>>(),
        "the same objects with the same names"
    );
    for (key, base_object) in &base {
        assert_eq!(
            serde_json::to_string_pretty(&chart[key]).unwrap(),
            serde_json::to_string_pretty(base_object).unwrap(),
            "{key:?} differs (left: chart, right: base)"
        );
    }
}

#[tokio::test]
async fn the_monitoring_values_render_deploy_monitoring() {
    let cp = ControlPlane::shared().await.unwrap();
    let helm = Helm::new();
    let chart = objects(
        &helm
            .template(
                RELEASE,
                RELEASE,
                &[
                    "--set",
                    "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true",
                ],
            )
            .await,
    );
    let base = kustomize(cp, "deploy/base").await;
    let monitoring = kustomize(cp, "deploy/monitoring").await;

    for kind in ["ServiceMonitor", "PrometheusRule"] {
        let in_substance = |objects: &Objects, services: &Objects| {
            let mut object = only(objects, kind).clone();
            object["metadata"].as_object_mut().unwrap().remove("labels");
            let service_labels = &only(services, "Service")["metadata"]["labels"];
            let selector = object["spec"]["selector"]["matchLabels"].clone();
            if let Some(selector_labels) = selector.as_object()
                && selector_labels
                    .iter()
                    .all(|(label, value)| &service_labels[label] == value)
            {
                mark_selector(&mut object, &selector, SELECTS_METRICS_SERVICE);
            }
            object
        };
        assert_eq!(
            serde_json::to_string_pretty(&in_substance(&chart, &chart)).unwrap(),
            serde_json::to_string_pretty(&in_substance(&monitoring, &base)).unwrap(),
            "{kind} differs (left: chart, right: deploy/monitoring)"
        );
    }
}

/// The README's "Install with Helm" commands, run as written on a fresh API server, with a
/// server-side dry-run of the default render in the namespace they create before `helm
/// install` (afterwards the objects exist and kubectl would warn that helm made them).
#[tokio::test]
async fn the_readme_install_works_and_the_defaults_dry_run_cleanly() {
    let cp = ControlPlane::shared().await.unwrap();
    let helm = Helm::new();
    let commands = readme_commands("### Install with Helm");
    let first_helm = commands
        .iter()
        .position(|command| command[0] == "helm")
        .expect("the README installs with helm");
    assert!(
        commands[..first_helm]
            .iter()
            .all(|command| command[0] == "kubectl"),
        "{commands:?}"
    );

    for (index, command) in commands.iter().enumerate() {
        if index == first_helm {
            dry_run_cleanly(cp, &helm.template(RELEASE, RELEASE, &[]).await).await;
        }
        let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
        let output = match command[0].as_str() {
            "kubectl" => cp.kubectl().args(&args).output().await.unwrap(),
            "helm" => {
                let kubeconfig = format!("--kubeconfig={}", cp.kubeconfig_path().display());
                helm.run(&[&args[..], &[&kubeconfig]].concat()).await
            }
            other => panic!("the README runs {other}; this test knows kubectl and helm"),
        };
        assert!(
            output.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    cp.wait_crd_established(JSR, std::time::Duration::from_secs(30))
        .await
        .expect("helm installs the CRD from the chart's crds/");
    let deployment = cp
        .run_kubectl(&[
            "-n",
            RELEASE,
            "get",
            "deployment/dli-stop-operator",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].args}",
        ])
        .await
        .unwrap();
    assert_eq!(deployment, r#"2 ["run","--leader-elect"]"#);
}

#[tokio::test]
async fn every_option_dry_runs_with_the_prometheus_operator_crds() {
    let cp = ControlPlane::shared().await.unwrap();
    cp.install_monitoring_crds().await.unwrap();
    let helm = Helm::new();
    let values = helm.write("every-option.yaml", EVERY_OPTION);
    let namespace = restricted_namespace(cp, "dli-helm-options").await;
    let rendered = helm
        .template("options", &namespace, &["-f", values.to_str().unwrap()])
        .await;
    let kinds: Vec<_> = objects(&rendered)
        .into_keys()
        .map(|(kind, _)| kind)
        .collect();
    for kind in ["ServiceMonitor", "PrometheusRule", "PodDisruptionBudget"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    dry_run_cleanly(cp, &rendered).await;
}

#[tokio::test]
async fn replicas_decide_leader_election_and_the_disruption_budget() {
    let helm = Helm::new();
    let render = |extra: &'static [&'static str]| {
        let helm = &helm;
        async move { objects(&helm.template(RELEASE, RELEASE, extra).await) }
    };
    let args = |objects: &Objects| container(objects)["args"].clone();

    let two = render(&["--set", "replicaCount=2"]).await;
    assert_eq!(args(&two), json!(["run", "--leader-elect"]));
    assert_eq!(only(&two, "Deployment")["spec"]["replicas"], 2);
    assert_eq!(of_kind(&two, "PodDisruptionBudget").len(), 1);

    let one = render(&["--set", "replicaCount=1"]).await;
    assert_eq!(args(&one), json!(["run"]));
    assert!(
        of_kind(&one, "PodDisruptionBudget").is_empty(),
        "minAvailable 1 of 1 replica would block every drain"
    );

    let one_electing = render(&["--set", "replicaCount=1,leaderElection.enabled=true"]).await;
    assert_eq!(args(&one_electing), json!(["run", "--leader-elect"]));

    let refusal = helm
        .refusal(&["--set", "replicaCount=3,leaderElection.enabled=false"])
        .await;
    assert!(
        refusal.contains("leaderElection.enabled=false"),
        "{refusal}"
    );
}

#[tokio::test]
async fn another_release_name_prefixes_names_and_the_lease() {
    let helm = Helm::new();
    let rendered = objects(&helm.template("team-a", "dli-team-a", &[]).await);
    let fullname = "team-a-dli-stop-operator";
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "PodDisruptionBudget",
    ] {
        object(&rendered, kind, fullname);
    }
    object(&rendered, "Service", "team-a-dli-stop-operator-metrics");
    for binding in ["ClusterRoleBinding", "RoleBinding"] {
        assert_eq!(
            object(&rendered, binding, fullname)["subjects"],
            json!([{"kind": "ServiceAccount", "name": fullname, "namespace": "dli-team-a"}])
        );
    }
    assert_eq!(
        only(&rendered, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"],
        fullname
    );
    // The lease the operator elects with is the one the Role grants.
    assert_eq!(env(&rendered)["LEASE_NAME"], fullname);
    assert_eq!(
        object(&rendered, "Role", fullname)["rules"][1],
        json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
               "resourceNames": [fullname], "verbs": ["get", "update", "patch"]})
    );
}

#[tokio::test]
async fn the_default_connection_values_reach_the_operator_and_its_role() {
    let helm = Helm::new();
    let rendered = objects(
        &helm
            .template(
                RELEASE,
                RELEASE,
                &[
                    "--set",
                    "defaultConnection.secretName=team-dli",
                    "--set",
                    "defaultConnection.allowedNamespaces={analytics,etl}",
                ],
            )
            .await,
    );
    let env = env(&rendered);
    assert_eq!(env["DLI_CONNECTION_SECRET"], "team-dli");
    assert_eq!(env["DEFAULT_CONNECTION_NAMESPACES"], "analytics,etl");
    assert_eq!(
        object(&rendered, "Role", RELEASE)["rules"][2],
        json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["team-dli"],
               "verbs": ["get"]})
    );

    let everyone = objects(
        &helm
            .template(
                RELEASE,
                RELEASE,
                &["--set", "defaultConnection.allowedNamespaces={*}"],
            )
            .await,
    );
    assert_eq!(self::env(&everyone)["DEFAULT_CONNECTION_NAMESPACES"], "*");
}

#[tokio::test]
async fn reading_secrets_everywhere_is_the_cluster_secrets_overlay() {
    let cp = ControlPlane::shared().await.unwrap();
    let helm = Helm::new();
    let rendered = objects(
        &helm
            .template(
                RELEASE,
                RELEASE,
                &["--set", "rbac.readSecretsInAllNamespaces=true"],
            )
            .await,
    );
    let overlay = kustomize(cp, "deploy/overlays/cluster-secrets").await;
    let name = "dli-stop-operator-secrets";
    assert_eq!(
        object(&rendered, "ClusterRole", name)["rules"],
        object(&overlay, "ClusterRole", name)["rules"]
    );
    for field in ["roleRef", "subjects"] {
        assert_eq!(
            object(&rendered, "ClusterRoleBinding", name)[field],
            object(&overlay, "ClusterRoleBinding", name)[field]
        );
    }
}

#[tokio::test]
async fn the_image_comes_from_its_values() {
    let helm = Helm::new();
    let image = |extra: &'static [&'static str]| {
        let helm = &helm;
        async move {
            container(&objects(&helm.template(RELEASE, RELEASE, extra).await))["image"].clone()
        }
    };
    assert_eq!(
        image(&[]).await,
        format!("dli-stop-operator:{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        image(&[
            "--set",
            "image.repository=registry.example.com/dli,image.tag=1.2.3"
        ])
        .await,
        "registry.example.com/dli:1.2.3"
    );
    let digest = format!("sha256:{}", "ab".repeat(32));
    let pinned = objects(
        &helm
            .template(
                RELEASE,
                RELEASE,
                &["--set", &format!("image.digest={digest}")],
            )
            .await,
    );
    assert_eq!(
        container(&pinned)["image"],
        format!("dli-stop-operator@{digest}")
    );
}

#[tokio::test]
async fn the_schema_refuses_values_that_mean_nothing() {
    let helm = Helm::new();
    for (extra, names) in [
        (["--set", "replicas=2"], "replicas"),
        (["--set", "replicaCount=two"], "replicaCount"),
        (
            ["--set", "defaultConnection.allowedNamespaces={Team_A}"],
            "allowedNamespaces",
        ),
        (["--set", "operator.logFormat=yaml"], "logFormat"),
        (
            ["--set", "leaderElection.leaseDuration=soon"],
            "leaseDuration",
        ),
    ] {
        let refusal = helm.refusal(&extra).await;
        assert!(
            refusal.contains("schema") && refusal.contains(names),
            "{extra:?}: {refusal}"
        );
    }
    let refusal = helm
        .refusal(&[
            "--set",
            "metrics.service.enabled=false,metrics.serviceMonitor.enabled=true",
        ])
        .await;
    assert!(refusal.contains("metrics.service.enabled"), "{refusal}");
}

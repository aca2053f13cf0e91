//! The test control plane is a real Kubernetes API: schemas, watches, kubectl and RBAC behave
//! as on a cluster. Every test shares one control plane and works in its own namespace.

use std::time::{Duration, Instant};

use dli_stop_dev::testenv::{ControlPlane, wait_for};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

const CRD_NAME: &str = "widgets.smoke.testenv.dli.io";
const TIMEOUT: Duration = Duration::from_secs(30);

fn widget_resource() -> ApiResource {
    ApiResource {
        group: "smoke.testenv.dli.io".to_owned(),
        version: "v1".to_owned(),
        api_version: "smoke.testenv.dli.io/v1".to_owned(),
        kind: "Widget".to_owned(),
        plural: "widgets".to_owned(),
    }
}

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": "smoke.testenv.dli.io",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "required": ["size"],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1, "maximum": 10},
                            "color": {"type": "string", "enum": ["red", "blue"]}
                        }
                    }}
                }}
            }]
        }
    }))
    .expect("the inline CRD is valid")
}

/// Installs the Widget CRD (idempotent, so parallel tests may all call it) and waits until
/// the server serves it.
async fn install_widgets(cp: &ControlPlane) {
    let crds: Api<CustomResourceDefinition> = Api::all(cp.client());
    crds.patch(
        CRD_NAME,
        &PatchParams::apply("smoke-test").force(),
        &Patch::Apply(widget_crd()),
    )
    .await
    .expect("install the Widget CRD");
    cp.wait_crd_established(CRD_NAME, TIMEOUT)
        .await
        .expect("Widget CRD established");
}

fn widget(name: &str, size: i64) -> DynamicObject {
    DynamicObject::new(name, &widget_resource())
        .data(json!({"spec": {"size": size, "color": "red"}}))
}

fn size_of(obj: &DynamicObject) -> Option<i64> {
    obj.data.pointer("/spec/size").and_then(|v| v.as_i64())
}

#[tokio::test]
async fn objects_are_created_read_and_watched_through_kube_rs() {
    let cp = ControlPlane::shared().await.expect("control plane");
    install_widgets(cp).await;
    let ns = cp.create_namespace("smoke-kube").await.unwrap();
    let widgets: Api<DynamicObject> = Api::namespaced_with(cp.client(), &ns, &widget_resource());

    widgets
        .create(&PostParams::default(), &widget("w1", 3))
        .await
        .expect("create widget");
    let read = widgets.get("w1").await.expect("read widget back");
    assert_eq!(size_of(&read), Some(3));

    let waiter = {
        let widgets = widgets.clone();
        tokio::spawn(
            async move { wait_for(&widgets, "w1", |w| size_of(w) == Some(7), TIMEOUT).await },
        )
    };
    widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 7}})),
        )
        .await
        .expect("patch widget");
    let seen = waiter.await.unwrap().expect("watch sees the change");
    assert_eq!(size_of(&seen), Some(7));
    assert!(
        seen.metadata.generation >= Some(2),
        "spec change bumps generation"
    );
}

#[tokio::test]
async fn kubectl_uses_the_same_cluster_through_its_kubeconfig() {
    let cp = ControlPlane::shared().await.expect("control plane");
    install_widgets(cp).await;
    let ns = cp.create_namespace("smoke-kubectl").await.unwrap();

    let manifest = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        manifest.path(),
        format!(
            "apiVersion: smoke.testenv.dli.io/v1\nkind: Widget\nmetadata:\n  name: from-kubectl\n  namespace: {ns}\nspec:\n  size: 4\n  color: blue\n"
        ),
    )
    .unwrap();
    let applied = cp.apply_file(manifest.path()).await.expect("kubectl apply");
    assert!(
        applied.contains("widget.smoke.testenv.dli.io/from-kubectl serverside-applied"),
        "{applied}"
    );

    let widgets: Api<DynamicObject> = Api::namespaced_with(cp.client(), &ns, &widget_resource());
    assert_eq!(
        size_of(&widgets.get("from-kubectl").await.unwrap()),
        Some(4)
    );

    widgets
        .create(&PostParams::default(), &widget("from-kube-rs", 2))
        .await
        .unwrap();
    let listed = cp
        .run_kubectl(&[
            "get",
            "widgets",
            "-n",
            &ns,
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .await
        .expect("kubectl get");
    assert_eq!(listed, "from-kube-rs from-kubectl");
}

#[tokio::test]
async fn the_server_refuses_objects_that_break_the_schema() {
    let cp = ControlPlane::shared().await.expect("control plane");
    install_widgets(cp).await;
    let ns = cp.create_namespace("smoke-schema").await.unwrap();
    let widgets: Api<DynamicObject> = Api::namespaced_with(cp.client(), &ns, &widget_resource());

    let refused = widgets
        .create(&PostParams::default(), &widget("too-big", 11))
        .await
        .expect_err("size 11 is above the schema maximum");
    match refused {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status
                    .message
                    .contains("spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a refusal from the API server, got {other}"),
    }

    let manifest = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        manifest.path(),
        format!(
            "apiVersion: smoke.testenv.dli.io/v1\nkind: Widget\nmetadata:\n  name: too-big\n  namespace: {ns}\nspec:\n  size: 4\n  color: green\n"
        ),
    )
    .unwrap();
    let refused = cp
        .apply_file(manifest.path())
        .await
        .expect_err("green is not an allowed color");
    assert!(
        refused
            .to_string()
            .contains(r#"spec.color: Unsupported value: "green": supported values: "red", "blue""#),
        "{refused}"
    );
}

#[tokio::test]
async fn rbac_refuses_a_user_until_a_role_binding_allows_it() {
    let cp = ControlPlane::shared().await.expect("control plane");
    install_widgets(cp).await;
    let ns = cp.create_namespace("smoke-rbac").await.unwrap();
    let elsewhere = cp.create_namespace("smoke-rbac-other").await.unwrap();
    let alice = cp.client_as("alice", &["smoke-testers"]).await.unwrap();
    let alice_widgets: Api<DynamicObject> =
        Api::namespaced_with(alice.clone(), &ns, &widget_resource());

    let denied = alice_widgets
        .list(&Default::default())
        .await
        .expect_err("no RBAC yet");
    assert_forbidden(&denied, "User \"alice\" cannot list resource \"widgets\"");

    let roles: Api<Role> = Api::namespaced(cp.client(), &ns);
    roles
        .create(
            &PostParams::default(),
            &Role {
                metadata: ObjectMeta {
                    name: Some("widget-reader".into()),
                    ..Default::default()
                },
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec!["smoke.testenv.dli.io".into()]),
                    resources: Some(vec!["widgets".into()]),
                    verbs: vec!["get".into(), "list".into(), "watch".into()],
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(cp.client(), &ns);
    bindings
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: ObjectMeta {
                    name: Some("alice-reads-widgets".into()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: "widget-reader".into(),
                },
                subjects: Some(vec![Subject {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "User".into(),
                    name: "alice".into(),
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();

    // The authorizer reads RBAC objects from an informer, so a grant takes effect shortly after.
    let started = Instant::now();
    loop {
        match alice_widgets.list(&Default::default()).await {
            Ok(_) => break,
            Err(e) if started.elapsed() < TIMEOUT => {
                assert_forbidden(&e, "cannot list");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the RoleBinding never took effect: {e}"),
        }
    }

    let still_denied = alice_widgets
        .create(&PostParams::default(), &widget("nope", 1))
        .await
        .expect_err("the role only reads");
    assert_forbidden(&still_denied, "cannot create resource \"widgets\"");
    let other_ns: Api<DynamicObject> = Api::namespaced_with(alice, &elsewhere, &widget_resource());
    let denied = other_ns
        .list(&Default::default())
        .await
        .expect_err("only in the bound namespace");
    assert_forbidden(&denied, &format!("in the namespace \"{elsewhere}\""));
}

#[tokio::test]
async fn client_certificates_carry_the_user_and_both_groups() {
    let cp = ControlPlane::shared().await.expect("control plane");
    let user = "system:serviceaccount:ops:dli-stop-operator";
    let groups = ["system:serviceaccounts", "system:serviceaccounts:ops"];
    let client = cp.client_as(user, &groups).await.unwrap();
    let review = Api::<SelfSubjectReview>::all(client)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("anyone may ask who they are");
    let info = review.status.and_then(|s| s.user_info).expect("user info");
    assert_eq!(info.username.as_deref(), Some(user));
    let seen = info.groups.unwrap_or_default();
    for group in groups.iter().chain(&["system:authenticated"]) {
        assert!(
            seen.iter().any(|g| g == group),
            "{group} missing from {seen:?}"
        );
    }

    let kubeconfig = cp.kubeconfig_for("bob", &["auditors"]).unwrap();
    let output = tokio::process::Command::new(cp.kubectl_path())
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "bob");
}

fn assert_forbidden(error: &kube::Error, expected: &str) {
    match error {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 403, "{status:?}");
            assert!(status.message.contains(expected), "{}", status.message);
        }
        other => panic!("expected 403 Forbidden, got {other}"),
    }
}

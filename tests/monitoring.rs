//! `deploy/monitoring/`: the alerts are valid PromQL over metrics the operator really exports,
//! with labels those metrics really carry, and the ServiceMonitor selects the metrics Service
//! and its port. A renamed metric or label would otherwise leave an alert that never fires.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dli_stop_operator::api::Phase;
use dli_stop_operator::metrics::{DliOperation, Metrics, ReconcileResult};
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;

/// Series Prometheus makes itself for every target, and the labels it adds to each series.
const PROMETHEUS_SERIES: &[&str] = &["up"];
const TARGET_LABELS: &[&str] = &["job", "instance", "namespace", "pod", "service", "endpoint"];

fn manifest(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rules() -> Vec<Value> {
    let rule = manifest("deploy/monitoring/prometheusrule.yaml");
    assert_eq!(rule["kind"], "PrometheusRule");
    rule["spec"]["groups"]
        .as_array()
        .expect("spec.groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").clone())
        .collect()
}

/// Every series the operator exports, with its label names, after each metric has been
/// touched once (labelled families show no series before that).
fn exported_series() -> BTreeMap<String, BTreeSet<String>> {
    let metrics = Metrics::new();
    metrics.reconcile(ReconcileResult::Success, Duration::from_millis(1));
    metrics.dli_call(
        DliOperation::BatchStop,
        "delivered",
        Duration::from_millis(1),
    );
    metrics.job_finished("stopped", 1);
    let phases: Vec<(&'static str, i64)> = Phase::ALL.iter().map(|p| (p.as_str(), 1)).collect();
    metrics.set_requests_by_phase(&phases);
    metrics.set_leader(true);
    metrics.token_refresh("ok");

    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in metrics.encode().lines().filter(|l| !l.starts_with('#')) {
        let (name, labels) = match line.split_once('{') {
            Some((name, rest)) => (name, rest.split_once('}').map_or("", |(labels, _)| labels)),
            None => (line.split_whitespace().next().unwrap_or(""), ""),
        };
        let names = labels
            .split(',')
            .filter_map(|pair| pair.split_once('=').map(|(label, _)| label.to_owned()));
        series.entry(name.to_owned()).or_default().extend(names);
    }
    series
}

#[derive(Default)]
struct Selectors(Vec<VectorSelector>);

impl ExprVisitor for Selectors {
    type Error = String;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        match expr {
            Expr::VectorSelector(selector) => self.0.push(selector.clone()),
            Expr::MatrixSelector(matrix) => self.0.push(matrix.vs.clone()),
            _ => {}
        }
        Ok(true)
    }
}

#[test]
fn every_alert_is_valid_promql_over_exported_metrics_and_labels() {
    let exported = exported_series();
    let phases: BTreeSet<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
    let rules = rules();
    assert!(
        rules.len() >= 5,
        "expected the shipped alerts, got {rules:?}"
    );
    let mut problems = Vec::new();
    for rule in &rules {
        let alert = rule["alert"].as_str().expect("every rule is an alert");
        let expr = rule["expr"].as_str().expect("expr");
        let parsed = match parser::parse(expr) {
            Ok(parsed) => parsed,
            Err(error) => {
                problems.push(format!("{alert}: `{expr}` is not PromQL: {error}"));
                continue;
            }
        };
        let mut selectors = Selectors::default();
        walk_expr(&mut selectors, &parsed).expect("the walk cannot fail");
        for selector in selectors.0 {
            let Some(name) = selector.name.as_deref() else {
                problems.push(format!("{alert}: a selector without a metric name"));
                continue;
            };
            if PROMETHEUS_SERIES.contains(&name) {
                continue;
            }
            let Some(labels) = exported.get(name) else {
                problems.push(format!("{alert}: the operator exports no `{name}`"));
                continue;
            };
            for matcher in &selector.matchers.matchers {
                let label = matcher.name.as_str();
                if !labels.contains(label) && !TARGET_LABELS.contains(&label) {
                    problems.push(format!("{alert}: `{name}` has no label `{label}`"));
                }
                if label == "phase"
                    && matches!(matcher.op, MatchOp::Equal)
                    && !phases.contains(matcher.value.as_str())
                {
                    problems.push(format!("{alert}: there is no phase `{}`", matcher.value));
                }
            }
        }
        if !matches!(
            rule["labels"]["severity"].as_str(),
            Some("critical" | "warning")
        ) {
            problems.push(format!("{alert}: severity must be critical or warning"));
        }
        for annotation in ["summary", "description"] {
            if rule["annotations"][annotation]
                .as_str()
                .is_none_or(str::is_empty)
            {
                problems.push(format!("{alert}: no {annotation}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_service_monitor_scrapes_the_metrics_service() {
    let monitor = manifest("deploy/monitoring/servicemonitor.yaml");
    let service = manifest("deploy/base/service.yaml");
    assert_eq!(monitor["kind"], "ServiceMonitor");
    assert_eq!(
        monitor["metadata"]["namespace"],
        service["metadata"]["namespace"]
    );
    let wanted = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels");
    for (label, value) in wanted {
        assert_eq!(
            &service["metadata"]["labels"][label], value,
            "the Service lacks the label {label}={value} the ServiceMonitor selects"
        );
    }
    let ports: Vec<&Value> = service["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|port| &port["name"])
        .collect();
    for endpoint in monitor["spec"]["endpoints"].as_array().expect("endpoints") {
        assert!(
            ports.contains(&&endpoint["port"]),
            "the Service has no port named {}",
            endpoint["port"]
        );
        assert_eq!(endpoint["path"], "/metrics");
    }
}

#[test]
fn the_down_alert_watches_the_job_of_the_metrics_service() {
    let service = manifest("deploy/base/service.yaml");
    let job = format!("job=\"{}\"", service["metadata"]["name"].as_str().unwrap());
    let down = rules()
        .into_iter()
        .find(|rule| rule["alert"] == "DliStopOperatorDown")
        .expect("a DliStopOperatorDown alert");
    assert!(
        down["expr"].as_str().unwrap().contains(&job),
        "the ServiceMonitor's job label is the Service name: {job}"
    );
}

//! The `preview` command: resolves a request's `spec.jobSelector` with the connection the
//! operator would use for it and prints the jobs a stop would reach, stopping nothing. It calls
//! the same [`selection::resolve`] and [`selected::forced_verdict`] the controller calls, so
//! the review step before a merge shows what the operator then does.

use std::path::PathBuf;
use std::process::ExitCode;

use k8s_openapi::api::core::v1::Secret;
use serde::Serialize;

use crate::api::conditions::reason;
use crate::api::{JobStopRequest, SkippedJob};
use crate::controller::job_scope::{self, JobScope};
use crate::controller::selected;
use crate::dli::connection::Connection;
use crate::dli::{ClientOptions, DliClient};
use crate::error_chain::ErrorChain;
use crate::selection::{self, Selection};

/// What to preview and where the operator's default connection lives.
#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// The JobStopRequest manifest (YAML or JSON).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// The request's namespace when its manifest names none [default: the kubeconfig's].
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// The operator's namespace, where its default connection Secret lives.
    #[arg(long, env = "POD_NAMESPACE", default_value = "dli-stop-operator")]
    pub operator_namespace: String,
    /// Name of the operator's default connection Secret.
    #[arg(long, env = "DLI_CONNECTION_SECRET", default_value = "dli-connection")]
    pub default_connection_secret: String,
    /// Print the selection as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is not a JobStopRequest: {reason}")]
    NotARequest { path: String, reason: String },
    #[error("cannot reach Kubernetes to read Secret {secret}: {reason}")]
    Kubernetes { secret: String, reason: String },
    #[error("Secret {0} does not exist")]
    MissingSecret(String),
    #[error("the connection from {source_name} is unusable: {reason}")]
    Connection { source_name: String, reason: String },
    #[error("cannot list DLI jobs")]
    List(#[source] crate::dli::DliError),
}

/// Where the operator takes a request's connection from, by the README's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionSource {
    /// A Secret: `spec.connectionRef` in the request's namespace, or the operator's default.
    Secret { namespace: String, name: String },
    /// The `DLI_*` variables, the default connection when `DLI_ENDPOINT` is set.
    Env,
}

impl std::fmt::Display for ConnectionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionSource::Secret { namespace, name } => write!(f, "Secret {namespace}/{name}"),
            ConnectionSource::Env => f.write_str("the DLI_* variables"),
        }
    }
}

/// The connection the operator would use for `request`, which lives in `namespace` unless its
/// manifest names one.
pub fn connection_source(
    request: &JobStopRequest,
    namespace: &str,
    args: &PreviewArgs,
    env_endpoint_set: bool,
) -> ConnectionSource {
    match &request.spec.connection_ref {
        Some(reference) => ConnectionSource::Secret {
            namespace: request
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.to_string()),
            name: reference.name.clone(),
        },
        None if env_endpoint_set => ConnectionSource::Env,
        None => ConnectionSource::Secret {
            namespace: args.operator_namespace.clone(),
            name: args.default_connection_secret.clone(),
        },
    }
}

/// What `preview --json` prints.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PreviewReport {
    pub stop: Vec<PreviewJob>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedJob>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmatched_names: Vec<String>,
    /// Why the operator would end the generation without a call, if it would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PreviewJob {
    pub job_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The report for a selection through a connection limited to `scope`, with the outcome the
/// operator would record for it.
pub fn report(selection: &Selection, scope: &JobScope) -> PreviewReport {
    let forced = selected::forced_verdict(selection);
    let outside = scope.outside(&selection.job_ids());
    let too_many = selection.too_many();
    PreviewReport {
        stop: if too_many {
            Vec::new()
        } else {
            selection
                .stop
                .iter()
                .map(|target| PreviewJob {
                    job_id: target.job_id,
                    name: Some(target.name.clone()),
                })
                .collect()
        },
        skipped: selection.skipped.clone(),
        unmatched_names: selection.unmatched_names.clone(),
        refused: forced
            .filter(|verdict| verdict.reason != reason::NOTHING_TO_STOP)
            .map(|verdict| verdict.message)
            .or_else(|| (!outside.is_empty()).then(|| job_scope::refusal_message(&outside))),
    }
}

/// Runs the preview and returns the process exit code: non-zero when the request would be
/// refused or the preview could not be made.
pub async fn run(args: PreviewArgs) -> ExitCode {
    match preview(&args).await {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(error) => {
                        eprintln!("error: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", render(&report));
            }
            if report.refused.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("error: {}", ErrorChain(&error));
            ExitCode::FAILURE
        }
    }
}

async fn preview(args: &PreviewArgs) -> Result<PreviewReport, PreviewError> {
    let path = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|error| PreviewError::Read {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    let request: JobStopRequest =
        serde_saphyr::from_str(&text).map_err(|error| PreviewError::NotARequest {
            path: path.clone(),
            reason: error.to_string(),
        })?;
    let Some(selector) = &request.spec.job_selector else {
        return Ok(PreviewReport {
            stop: request
                .spec
                .job_ids
                .iter()
                .map(|&job_id| PreviewJob { job_id, name: None })
                .collect(),
            skipped: Vec::new(),
            unmatched_names: Vec::new(),
            refused: None,
        });
    };
    let namespace = match &args.namespace {
        Some(namespace) => namespace.clone(),
        None => kubeconfig_namespace().await,
    };
    let source = connection_source(
        &request,
        &namespace,
        args,
        std::env::var_os("DLI_ENDPOINT").is_some(),
    );
    eprintln!("connection: {source}");
    let (connection, scope) = load(&source).await?;
    let dli = DliClient::new(connection, ClientOptions::default()).map_err(|error| {
        PreviewError::Connection {
            source_name: source.to_string(),
            reason: error.to_string(),
        }
    })?;
    let selection = selection::resolve(&dli, selector)
        .await
        .map_err(PreviewError::List)?;
    Ok(report(&selection, &scope))
}

/// The current context's namespace, as kubectl takes it; `default` without a kubeconfig.
async fn kubeconfig_namespace() -> String {
    kube::Config::infer()
        .await
        .map_or_else(|_| "default".to_string(), |config| config.default_namespace)
}

/// The connection and the jobs it may stop.
async fn load(source: &ConnectionSource) -> Result<(Connection, JobScope), PreviewError> {
    let unusable = |reason: String| PreviewError::Connection {
        source_name: source.to_string(),
        reason,
    };
    match source {
        ConnectionSource::Env => Connection::from_env(|name| std::env::var(name).ok())
            .map(|connection| (connection, JobScope::Unrestricted))
            .map_err(|e| unusable(e.to_string())),
        ConnectionSource::Secret { namespace, name } => {
            let secret_name = format!("{namespace}/{name}");
            let kubernetes = |reason: String| PreviewError::Kubernetes {
                secret: secret_name.clone(),
                reason,
            };
            let client = kube::Client::try_default()
                .await
                .map_err(|error| kubernetes(error.to_string()))?;
            let secrets: kube::Api<Secret> = kube::Api::namespaced(client, namespace);
            let secret = secrets
                .get_opt(name)
                .await
                .map_err(|error| kubernetes(error.to_string()))?
                .ok_or_else(|| PreviewError::MissingSecret(secret_name.clone()))?;
            let data = secret.data.unwrap_or_default();
            let connection =
                Connection::from_secret_data(&data).map_err(|error| unusable(error.to_string()))?;
            let scope =
                JobScope::from_secret_data(&data).map_err(|error| unusable(error.to_string()))?;
            Ok((connection, scope))
        }
    }
}

/// The report as a reviewer reads it.
pub fn render(report: &PreviewReport) -> String {
    let mut out = String::new();
    if let Some(refused) = &report.refused {
        out.push_str(&format!("REFUSED: {refused}\n"));
    } else if report.stop.is_empty() {
        out.push_str("Nothing to stop: no selected job is running.\n");
    } else {
        out.push_str(&format!("Would stop {} job(s):\n", report.stop.len()));
        out.push_str("  JOB ID        NAME\n");
        for job in &report.stop {
            out.push_str(&format!(
                "  {:<12}  {}\n",
                job.job_id,
                job.name.as_deref().unwrap_or("")
            ));
        }
    }
    if !report.skipped.is_empty() {
        out.push_str(&format!(
            "Skipped {} job(s), in a state no stop applies to:\n",
            report.skipped.len()
        ));
        for job in &report.skipped {
            out.push_str(&format!(
                "  {:<12}  {}  ({})\n",
                job.job_id, job.name, job.state
            ));
        }
    }
    if !report.unmatched_names.is_empty() {
        out.push_str(&format!(
            "No job named: {}\n",
            report.unmatched_names.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::Target;

    fn args() -> PreviewArgs {
        PreviewArgs {
            file: PathBuf::from("request.yaml"),
            namespace: None,
            operator_namespace: "ops".into(),
            default_connection_secret: "dli-connection".into(),
            json: false,
        }
    }

    fn request(yaml: &str) -> JobStopRequest {
        serde_saphyr::from_str(yaml).expect("a request")
    }

    #[test]
    fn the_connection_is_chosen_as_the_operator_chooses_it() {
        let with_ref = request(
            "apiVersion: dli.stop-operator.io/v1alpha1\nkind: JobStopRequest\nmetadata: {name: r}\nspec:\n  jobSelector: {queueName: q}\n  connectionRef: {name: dli-prod}\n",
        );
        assert_eq!(
            connection_source(&with_ref, "team-a", &args(), true),
            ConnectionSource::Secret {
                namespace: "team-a".into(),
                name: "dli-prod".into()
            }
        );
        let without = request(
            "apiVersion: dli.stop-operator.io/v1alpha1\nkind: JobStopRequest\nmetadata: {name: r, namespace: ns}\nspec:\n  jobSelector: {queueName: q}\n",
        );
        assert_eq!(
            connection_source(&without, "team-a", &args(), true),
            ConnectionSource::Env
        );
        assert_eq!(
            connection_source(&without, "team-a", &args(), false),
            ConnectionSource::Secret {
                namespace: "ops".into(),
                name: "dli-connection".into()
            }
        );
    }

    #[test]
    fn a_refusal_is_reported_and_nothing_to_stop_is_not_one() {
        let unmatched = Selection {
            unmatched_names: vec!["billing".into()],
            ..Selection::default()
        };
        let refused = report(&unmatched, &JobScope::Unrestricted)
            .refused
            .expect("refused");
        assert!(refused.contains("`billing`"), "{refused}");
        assert!(
            report(&Selection::default(), &JobScope::Unrestricted)
                .refused
                .is_none()
        );
        let one = Selection {
            stop: vec![Target {
                job_id: 7,
                name: "orders".into(),
            }],
            ..Selection::default()
        };
        let rendered = render(&report(&one, &JobScope::Unrestricted));
        assert!(rendered.contains("Would stop 1 job(s)"), "{rendered}");
        assert!(rendered.contains("orders"), "{rendered}");
    }

    #[test]
    fn jobs_outside_the_secrets_allowed_job_ids_are_refused_as_the_operator_refuses_them() {
        let two = Selection {
            stop: vec![
                Target {
                    job_id: 7,
                    name: "orders".into(),
                },
                Target {
                    job_id: 900,
                    name: "billing".into(),
                },
            ],
            ..Selection::default()
        };
        let scope = JobScope::Only(vec![1..=99]);
        let refused = report(&two, &scope).refused.expect("refused");
        assert_eq!(refused, job_scope::refusal_message(&[900]));
        assert!(
            report(&two, &JobScope::Only(vec![1..=999]))
                .refused
                .is_none()
        );
    }
}

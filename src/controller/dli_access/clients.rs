//! Which DLI client serves a request: its `spec.connectionRef` Secret (in its own namespace
//! only) or the operator's default connection, if the request's namespace may use it. Clients
//! are cached per Secret version so IAM tokens are reused, and the Secret is read on every
//! reconcile so a fixed one just works. Secrets of requests' namespaces get clients that
//! connect only where the endpoint policy allows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};

use crate::api::JobStopRequest;
use crate::api::conditions::reason;
use crate::controller::job_scope::JobScope;
use crate::controller::tenancy::{self, Tenancy};
use crate::dli::connection::Connection;
use crate::dli::{ClientBuildError, ClientOptions, DliClient};
use crate::egress::{self, EndpointPolicy};
use crate::error_chain::ErrorChain;
use crate::metrics::Metrics;

/// Why a request has no usable connection. Messages name keys and Secrets, never values.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionProblem {
    /// The user must fix something. Before the stop call the request waits in `Pending`;
    /// after it (confirming, resolving) it keeps its phase and retries.
    #[error("{0}")]
    Invalid(String),
    /// The admin's rules refuse the connection; handled like `Invalid`, with its own reason.
    #[error("{message}")]
    NotAllowed {
        reason: &'static str,
        message: String,
    },
    /// The API server could not be asked; try again.
    #[error("cannot read Secret {namespace}/{name}")]
    Unreachable {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The default connection of the operator.
#[derive(Debug)]
pub enum DefaultConnection {
    /// From the `DLI_*` environment variables, read once at start.
    Env(Arc<DliClient>),
    /// A Secret in the operator's namespace.
    Secret { namespace: String, name: String },
}

/// The connection serving one request: its client and the jobs it may stop.
#[derive(Debug, Clone)]
pub struct RequestConnection {
    pub dli: Arc<DliClient>,
    pub scope: JobScope,
}

/// Connections by Secret (namespace, name) and endpoint policy, with the Secret version each
/// was built from. The policy is part of the key: the default Secret named by a request's
/// `connectionRef` must not get the unguarded client built for it as the default.
type ClientCache = HashMap<(String, String, EndpointPolicy), (String, RequestConnection)>;

pub struct Connections {
    client: Client,
    default: DefaultConnection,
    options: ClientOptions,
    tenancy: Tenancy,
    metrics: Metrics,
    cache: Mutex<ClientCache>,
}

impl Connections {
    pub fn new(
        client: Client,
        default: DefaultConnection,
        options: ClientOptions,
        tenancy: Tenancy,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            default,
            options,
            tenancy,
            metrics,
            cache: Mutex::default(),
        }
    }

    /// The connection for one request.
    pub async fn for_request(
        &self,
        request: &JobStopRequest,
    ) -> Result<RequestConnection, ConnectionProblem> {
        let namespace = request.namespace().unwrap_or_default();
        if request.spec.connection_ref.is_none()
            && !self.tenancy.may_use_default_connection(&namespace)
        {
            return Err(ConnectionProblem::NotAllowed {
                reason: reason::DEFAULT_CONNECTION_NOT_ALLOWED,
                message: tenancy::default_connection_refusal(&namespace),
            });
        }
        match (&request.spec.connection_ref, &self.default) {
            (Some(reference), _) => {
                let policy = self.tenancy.request_endpoint_policy();
                self.client_from_secret(&namespace, &reference.name, "spec.connectionRef", policy)
                    .await
            }
            (None, DefaultConnection::Env(client)) => Ok(RequestConnection {
                dli: client.clone(),
                scope: JobScope::Unrestricted,
            }),
            (None, DefaultConnection::Secret { namespace, name }) => {
                self.client_from_secret(
                    namespace,
                    name,
                    "the operator's default connection",
                    EndpointPolicy::AnyAddress,
                )
                .await
            }
        }
    }

    async fn client_from_secret(
        &self,
        namespace: &str,
        name: &str,
        role: &str,
        policy: EndpointPolicy,
    ) -> Result<RequestConnection, ConnectionProblem> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = match secrets.get_opt(name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => {
                return Err(ConnectionProblem::Invalid(format!(
                    "Secret {namespace}/{name} ({role}) does not exist"
                )));
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                return Err(ConnectionProblem::Invalid(format!(
                    "the operator may not read Secret {namespace}/{name} ({role}): grant it `get` on \
                     secrets in {namespace} (see deploy/components/team-namespace)"
                )));
            }
            Err(source) => {
                return Err(ConnectionProblem::Unreachable {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    source,
                });
            }
        };
        let version = format!(
            "{}/{}",
            secret.uid().unwrap_or_default(),
            secret.resource_version().unwrap_or_default()
        );
        let key = (namespace.to_string(), name.to_string(), policy);
        if let Some((cached_version, connection)) = self.lock_cache().get(&key)
            && *cached_version == version
        {
            return Ok(connection.clone());
        }
        let data = secret.data.unwrap_or_default();
        let invalid = |error: &dyn std::fmt::Display| {
            ConnectionProblem::Invalid(format!("Secret {namespace}/{name} ({role}): {error}"))
        };
        let endpoint_not_allowed = |error: &dyn std::fmt::Display| ConnectionProblem::NotAllowed {
            reason: reason::ENDPOINT_NOT_ALLOWED,
            message: format!("Secret {namespace}/{name} ({role}): {error}"),
        };
        let connection = Connection::from_secret_data(&data).map_err(|error| invalid(&error))?;
        let scope = JobScope::from_secret_data(&data).map_err(|error| invalid(&error))?;
        egress::vet(policy, &connection.endpoints())
            .await
            .map_err(|refused| endpoint_not_allowed(&refused))?;
        let options = ClientOptions {
            endpoint_policy: policy,
            ..self.options.clone()
        };
        let dli = match DliClient::new(connection, options) {
            Ok(client) => Arc::new(client.with_metrics(self.metrics.clone())),
            Err(ClientBuildError::EndpointRefused(refused)) => {
                return Err(endpoint_not_allowed(&refused));
            }
            Err(error) => return Err(invalid(&ErrorChain(&error))),
        };
        let connection = RequestConnection { dli, scope };
        self.lock_cache().insert(key, (version, connection.clone()));
        Ok(connection)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, ClientCache> {
        // A panic while holding this lock leaves only a cache behind; its data is still valid.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

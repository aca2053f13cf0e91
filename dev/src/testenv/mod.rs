//! A real Kubernetes control plane for tests and demos: etcd plus kube-apiserver on loopback,
//! started the way envtest does it (see `tests/control-plane/` and `make control-plane`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dli_stop_dev::testenv::TestEnvError> {
//! use dli_stop_dev::testenv::ControlPlane;
//! let cp = ControlPlane::shared().await?;
//! let namespace = cp.create_namespace("my-test").await?;
//! let client = cp.client();
//! # let _ = (namespace, client);
//! # Ok(()) }
//! ```
//!
//! Environment: `KUBEBUILDER_ASSETS` (a directory with kube-apiserver, etcd, kubectl),
//! `TEST_ASSET_KUBE_APISERVER` / `TEST_ASSET_ETCD` / `TEST_ASSET_KUBECTL` (single binaries),
//! `DLI_CONTROL_PLANE_CACHE` (where `make control-plane` puts binaries) and
//! `USE_EXISTING_CLUSTER=true` (use the current kubeconfig instead of a private control plane).

mod assets;
mod error;
mod go;
mod kubeconfig;
mod launch;
mod pki;
mod process;
mod stale;
mod wait;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

pub use assets::{KUBERNETES_VERSION, cache_dir, helm_binary, monitoring_crds_dir};
pub use error::TestEnvError;
pub use go::{go_build_command, go_build_outcome};
pub use process::die_with_parent;
pub use wait::wait_for;

use launch::ApiServerFiles;
use pki::Pki;
use process::ManagedProcess;

const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(30);
const APISERVER_READY_TIMEOUT: Duration = Duration::from_secs(90);
const START_ATTEMPTS: usize = 3;

/// A running control plane (or, with `USE_EXISTING_CLUSTER=true`, a handle on the current
/// cluster). Dropping it kills etcd and kube-apiserver and removes its temp dir.
#[derive(Debug)]
pub struct ControlPlane {
    config: kube::Config,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    backend: Backend,
    dir: Mutex<Option<TempDir>>,
    dir_path: PathBuf,
    files_made: AtomicU64,
}

#[derive(Debug)]
enum Backend {
    Private {
        pki: Box<Pki>,
        ca_file: PathBuf,
        apiserver: ManagedProcess,
        etcd: ManagedProcess,
    },
    Existing {
        kubeconfig: Kubeconfig,
    },
}

static SHARED: tokio::sync::OnceCell<ControlPlane> = tokio::sync::OnceCell::const_new();

impl ControlPlane {
    /// Starts a private control plane (or attaches to the current cluster when
    /// `USE_EXISTING_CLUSTER=true`). Fails, never skips, saying what is missing.
    pub async fn start() -> Result<ControlPlane, TestEnvError> {
        let env = |var: &str| std::env::var(var).ok();
        let vendored_etcd = etcd_bin_vendored::etcd_bin_path().map(Path::to_path_buf);
        let vendored_problem = vendored_etcd.as_ref().err().map(ToString::to_string);
        let assets = assets::resolve(&env, vendored_etcd.ok());
        if assets::use_existing_cluster(&env) {
            return Self::attach_existing(&assets).await;
        }
        assets.kube_apiserver.require("kube-apiserver")?;
        // An empty etcd path means no override was given and the vendored crate had none.
        if let Some(problem) = vendored_problem
            && assets.etcd.path.as_os_str().is_empty()
        {
            return Err(TestEnvError::EtcdUnsupported(problem));
        }
        assets.etcd.require("etcd")?;
        assets.kubectl.require("kubectl")?;

        let mut attempt = 1;
        loop {
            match Self::start_private(&assets).await {
                Err(TestEnvError::Exited { log_tail, .. })
                    if attempt < START_ATTEMPTS && log_tail.contains("address already in use") =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One control plane per test binary, started by the first test that asks and torn down
    /// when the process exits. Build clients with [`ControlPlane::client`] inside each test:
    /// a client belongs to the tokio runtime that built it.
    pub async fn shared() -> Result<&'static ControlPlane, TestEnvError> {
        SHARED
            .get_or_try_init(|| async {
                let control_plane = Self::start().await?;
                // SAFETY: registers a plain `extern "C"` function with no arguments; the C
                // runtime calls it once during `exit`. If registration fails the children still
                // die with the process (parent-death signal); only the temp dir would remain.
                unsafe {
                    libc::atexit(shut_down_shared);
                }
                Ok(control_plane)
            })
            .await
    }

    /// An admin (`system:masters`) client, bound to the calling tokio runtime.
    pub fn client(&self) -> kube::Client {
        // `start` already built a client from this same config, so the TLS setup is known good.
        kube::Client::try_from(self.config.clone())
            .expect("client config was validated when the control plane started")
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubectl built beside kube-apiserver (same version as the server).
    pub fn kubectl_path(&self) -> PathBuf {
        self.kubectl.clone()
    }

    /// `kubectl --kubeconfig <admin>`; add arguments and run it. Killed if dropped while running.
    pub fn kubectl(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.kubectl);
        command
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .kill_on_drop(true);
        command
    }

    /// `kubectl auth can-i` as `user` in `groups`: whether RBAC allows `args` (verb, resource,
    /// flags). Panics on any answer but yes or no, so a broken query never reads as "no".
    pub async fn can_i(&self, user: &str, groups: &[&str], args: &[&str]) -> bool {
        let mut full = vec!["auth".to_string(), "can-i".into(), format!("--as={user}")];
        full.extend(groups.iter().map(|group| format!("--as-group={group}")));
        full.extend(args.iter().map(|arg| (*arg).to_string()));
        let output = self
            .kubectl()
            .args(&full)
            .output()
            .await
            .expect("kubectl runs");
        match String::from_utf8_lossy(&output.stdout).trim() {
            "yes" => true,
            "no" => false,
            other => panic!(
                "kubectl {full:?}: {other} {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }

    /// Runs kubectl as admin with `args` and returns its stdout; a non-zero exit is an error
    /// carrying stderr (which is where the API server's refusals end up).
    pub async fn run_kubectl(&self, args: &[&str]) -> Result<String, TestEnvError> {
        self.run_kubectl_with_input(args, None).await
    }

    /// Like [`ControlPlane::run_kubectl`], feeding `input` to kubectl's stdin (for `-f -`).
    pub async fn run_kubectl_with_input(
        &self,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<String, TestEnvError> {
        let io_error = |e| TestEnvError::io(format!("run {}", self.kubectl.display()), e);
        let mut child = self
            .kubectl()
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_error)?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(input.as_bytes()).await.map_err(io_error)?;
        }
        let output = child.wait_with_output().await.map_err(io_error)?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(TestEnvError::Kubectl {
                args: args.join(" "),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// `kubectl apply --server-side -f <path>` (server-side, so large CRDs fit).
    pub async fn apply_file(&self, path: impl AsRef<Path>) -> Result<String, TestEnvError> {
        let path = path.as_ref().display().to_string();
        self.run_kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &path])
            .await
    }

    /// Waits until the CRD `name` (e.g. `jobstoprequests.dli.stop-operator.io`) is served.
    pub async fn wait_crd_established(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<CustomResourceDefinition, TestEnvError> {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client());
        wait_for(&crds, name, crd_established, timeout).await
    }

    /// Creates the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs that
    /// `make control-plane` fetched (never replacing ones the cluster already has) and waits
    /// until they are served.
    pub async fn install_monitoring_crds(&self) -> Result<(), TestEnvError> {
        let dir = monitoring_crds_dir(&|name| std::env::var(name).ok());
        if !dir.join("version").is_file() {
            return Err(TestEnvError::MonitoringCrdsMissing { dir });
        }
        match self
            .run_kubectl(&["create", "-f", &dir.to_string_lossy()])
            .await
        {
            Err(TestEnvError::Kubectl { stderr, .. })
                if stderr.lines().all(|line| line.contains("AlreadyExists")) => {}
            other => {
                other?;
            }
        }
        for crd in [
            "servicemonitors.monitoring.coreos.com",
            "prometheusrules.monitoring.coreos.com",
        ] {
            self.wait_crd_established(crd, Duration::from_secs(30))
                .await?;
        }
        Ok(())
    }

    /// A client authenticated as `user` in `groups` (at most two: enough for a ServiceAccount's
    /// `system:serviceaccounts` and `system:serviceaccounts:<ns>`), subject to RBAC.
    pub async fn client_as(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<kube::Client, TestEnvError> {
        let path = self.kubeconfig_for(user, groups)?;
        let kubeconfig = Kubeconfig::read_from(&path)?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// A kubeconfig file for `user` in `groups`, e.g. to run the operator binary with the
    /// permissions its ServiceAccount would have. On a private control plane it holds a client
    /// certificate signed by the test CA; on an existing cluster it impersonates.
    pub fn kubeconfig_for(&self, user: &str, groups: &[&str]) -> Result<PathBuf, TestEnvError> {
        let stem = format!(
            "user-{}-{}",
            self.files_made.fetch_add(1, Ordering::Relaxed),
            file_safe(user)
        );
        let config = match &self.backend {
            Backend::Private { pki, ca_file, .. } => {
                let credentials = pki.client(user, groups)?;
                let cert = self.write(&format!("{stem}.crt"), &credentials.cert_pem)?;
                let key = self.write(&format!("{stem}.key"), &credentials.key_pem)?;
                kubeconfig::with_client_certificate(&self.server_url(), ca_file, &cert, &key, user)
            }
            Backend::Existing { kubeconfig } => {
                kubeconfig::impersonating(kubeconfig.clone(), user, groups)
            }
        };
        self.write(
            &format!("{stem}.kubeconfig"),
            &serde_saphyr::to_string(&config)?,
        )
    }

    /// Creates a namespace with a server-generated unique name starting with `prefix`, so
    /// tests sharing the control plane never collide. Returns its name.
    pub async fn create_namespace(&self, prefix: &str) -> Result<String, TestEnvError> {
        let namespaces: Api<Namespace> = Api::all(self.client());
        let namespace = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", prefix.trim_end_matches('-'))),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let created = namespaces
            .create(&PostParams::default(), &namespace)
            .await?;
        Ok(created.metadata.name.unwrap_or_default())
    }

    /// The temp dir with the kubeconfigs, certificates and the `etcd.log` and
    /// `kube-apiserver.log` of this control plane; removed on teardown.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> String {
        self.config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned()
    }

    /// Kills the processes and removes the temp dir now; the value stays but is unusable.
    fn shut_down(&self) {
        if let Backend::Private {
            apiserver, etcd, ..
        } = &self.backend
        {
            apiserver.stop();
            etcd.stop();
        }
        drop(self.dir.lock().unwrap_or_else(|p| p.into_inner()).take());
    }

    async fn start_private(assets: &assets::Assets) -> Result<ControlPlane, TestEnvError> {
        let began = Instant::now();
        stale::sweep(&std::env::temp_dir());
        let dir = tempfile::Builder::new()
            .prefix(stale::DIR_PREFIX)
            .tempdir()
            .map_err(|e| TestEnvError::io("create a temp dir for the control plane", e))?;
        let root = dir.path().to_path_buf();
        stale::claim(&root).map_err(|e| TestEnvError::io("mark the temp dir as ours", e))?;
        let put = |name: &str, contents: &str| write_file(&root.join(name), contents);

        let pki = Pki::generate()?;
        let ca_file = put("ca.crt", &pki.ca_pem)?;
        let serving_cert = put("apiserver.crt", &pki.serving.cert_pem)?;
        let serving_key = put("apiserver.key", &pki.serving.key_pem)?;
        let sa_key = put("service-account.key", &pki.service_account_key_pem)?;
        let sa_public = put("service-account.pub", &pki.service_account_public_pem)?;
        let admin_cert = put("admin.crt", &pki.admin.cert_pem)?;
        let admin_key = put("admin.key", &pki.admin.key_pem)?;

        let etcd_port = launch::free_port()?;
        let etcd = ManagedProcess::spawn(
            "etcd",
            &assets.etcd.path,
            &launch::etcd_args(&root.join("etcd"), etcd_port, launch::free_port()?),
            root.join("etcd.log"),
        )?;
        launch::wait_ready(&etcd, "etcd", ETCD_READY_TIMEOUT, || {
            launch::etcd_healthy(etcd_port)
        })
        .await?;

        let secure_port = launch::free_port()?;
        let files = ApiServerFiles {
            cert_dir: &root,
            ca_cert: &ca_file,
            serving_cert: &serving_cert,
            serving_key: &serving_key,
            service_account_key: &sa_key,
            service_account_public: &sa_public,
        };
        let apiserver = ManagedProcess::spawn(
            "kube-apiserver",
            &assets.kube_apiserver.path,
            &launch::apiserver_args(&files, etcd_port, secure_port),
            root.join("kube-apiserver.log"),
        )?;

        let server = format!("https://127.0.0.1:{secure_port}");
        let admin = kubeconfig::with_client_certificate(
            &server,
            &ca_file,
            &admin_cert,
            &admin_key,
            "admin",
        );
        let kubeconfig_path = put("admin.kubeconfig", &serde_saphyr::to_string(&admin)?)?;
        let config =
            kube::Config::from_custom_kubeconfig(admin, &KubeConfigOptions::default()).await?;
        let client = kube::Client::try_from(config.clone())?;
        launch::wait_ready(
            &apiserver,
            "kube-apiserver",
            APISERVER_READY_TIMEOUT,
            || launch::apiserver_ready(&client),
        )
        .await?;
        let namespaces: Api<Namespace> = Api::all(client);
        launch::wait_ready(
            &apiserver,
            "kube-apiserver",
            APISERVER_READY_TIMEOUT,
            || async {
                match namespaces.get_opt("default").await {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err("namespace `default` not created yet".to_owned()),
                    Err(e) => Err(format!("reading namespace `default`: {e}")),
                }
            },
        )
        .await?;
        tracing::info!(
            server = %server,
            dir = %root.display(),
            elapsed_ms = began.elapsed().as_millis() as u64,
            "test control plane ready"
        );

        Ok(ControlPlane {
            config,
            kubeconfig: kubeconfig_path,
            kubectl: assets.kubectl.path.clone(),
            backend: Backend::Private {
                pki: Box::new(pki),
                ca_file,
                apiserver,
                etcd,
            },
            dir: Mutex::new(Some(dir)),
            dir_path: root,
            files_made: AtomicU64::new(0),
        })
    }

    async fn attach_existing(assets: &assets::Assets) -> Result<ControlPlane, TestEnvError> {
        let config = kube::Config::infer().await?;
        kube::Client::try_from(config.clone())?;
        let kubeconfig = Kubeconfig::read()?;
        let dir = tempfile::Builder::new()
            .prefix(stale::DIR_PREFIX)
            .tempdir()
            .map_err(|e| TestEnvError::io("create a temp dir for kubeconfigs", e))?;
        let root = dir.path().to_path_buf();
        stale::claim(&root).map_err(|e| TestEnvError::io("mark the temp dir as ours", e))?;
        let kubeconfig_path = write_file(
            &root.join("current.kubeconfig"),
            &serde_saphyr::to_string(&kubeconfig)?,
        )?;
        let kubectl = if assets.kubectl.path.is_file() {
            assets.kubectl.path.clone()
        } else {
            PathBuf::from("kubectl")
        };
        Ok(ControlPlane {
            config,
            kubeconfig: kubeconfig_path,
            kubectl,
            backend: Backend::Existing { kubeconfig },
            dir: Mutex::new(Some(dir)),
            dir_path: root,
            files_made: AtomicU64::new(0),
        })
    }

    fn write(&self, name: &str, contents: &str) -> Result<PathBuf, TestEnvError> {
        write_file(&self.dir_path.join(name), contents)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.shut_down();
    }
}

extern "C" fn shut_down_shared() {
    if let Some(control_plane) = SHARED.get() {
        control_plane.shut_down();
    }
}

fn crd_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

fn write_file(path: &Path, contents: &str) -> Result<PathBuf, TestEnvError> {
    std::fs::write(path, contents)
        .map_err(|e| TestEnvError::io(format!("write {}", path.display()), e))?;
    Ok(path.to_path_buf())
}

/// `user` reduced to characters that are safe in a file name.
fn file_safe(user: &str) -> String {
    user.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_names_become_plain_file_names() {
        assert_eq!(
            file_safe("system:serviceaccount:ns:op"),
            "system-serviceaccount-ns-op"
        );
    }
}

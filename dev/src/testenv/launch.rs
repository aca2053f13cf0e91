//! Command lines for etcd and kube-apiserver, and the probes that say they are ready.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::TestEnvError;
use super::process::ManagedProcess;

const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A loopback port nobody listens on right now. Another process may still take it before
/// the server binds it; start-up retries when that happens.
pub fn free_port() -> Result<u16, TestEnvError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| TestEnvError::io("find a free loopback port", e))
}

pub fn etcd_args(data_dir: &Path, client_port: u16, peer_port: u16) -> Vec<String> {
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    vec![
        "--name=testenv".to_owned(),
        format!("--data-dir={}", data_dir.display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=testenv={peer}"),
        // Durability is worthless for a throw-away store and fsync dominates its latency.
        "--unsafe-no-fsync".to_owned(),
        "--log-level=warn".to_owned(),
    ]
}

/// The files kube-apiserver reads, all inside the control plane's temp dir.
pub struct ApiServerFiles<'a> {
    pub cert_dir: &'a Path,
    pub ca_cert: &'a Path,
    pub serving_cert: &'a Path,
    pub serving_key: &'a Path,
    pub service_account_key: &'a Path,
    pub service_account_public: &'a Path,
}

pub fn apiserver_args(files: &ApiServerFiles<'_>, etcd_port: u16, secure_port: u16) -> Vec<String> {
    vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        format!("--cert-dir={}", files.cert_dir.display()),
        format!("--tls-cert-file={}", files.serving_cert.display()),
        format!("--tls-private-key-file={}", files.serving_key.display()),
        format!("--secure-port={secure_port}"),
        "--bind-address=127.0.0.1".to_owned(),
        // kube-apiserver refuses a loopback advertise address while it reconciles the
        // `kubernetes` Service endpoints; nothing here needs them.
        "--advertise-address=127.0.0.1".to_owned(),
        "--endpoint-reconciler-type=none".to_owned(),
        format!("--service-account-issuer=https://127.0.0.1:{secure_port}/"),
        format!(
            "--service-account-key-file={}",
            files.service_account_public.display()
        ),
        format!(
            "--service-account-signing-key-file={}",
            files.service_account_key.display()
        ),
        "--authorization-mode=RBAC".to_owned(),
        format!("--client-ca-file={}", files.ca_cert.display()),
        "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
        "--allow-privileged=true".to_owned(),
        // No controller-manager runs, so nothing would create the ServiceAccounts it demands.
        "--disable-admission-plugins=ServiceAccount".to_owned(),
    ]
}

/// Polls `probe` until it answers `Ok`, failing early when the process dies.
pub async fn wait_ready<F, Fut>(
    process: &ManagedProcess,
    name: &'static str,
    timeout: Duration,
    mut probe: F,
) -> Result<(), TestEnvError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    loop {
        let last_problem = match probe().await {
            Ok(()) => return Ok(()),
            Err(problem) => problem,
        };
        if let Some(status) = process.exit_status() {
            return Err(process.exited_error(status));
        }
        if started.elapsed() >= timeout {
            return Err(TestEnvError::NotReady {
                name,
                after: timeout,
                last_problem,
                log_tail: process.log_tail(),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// etcd's `/health` over plain HTTP on loopback; a raw request keeps TLS stacks out of it.
pub async fn etcd_healthy(port: u16) -> Result<(), String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if health_says_true(&response) {
        Ok(())
    } else {
        Err(format!("/health answered {response:?}"))
    }
}

fn health_says_true(response: &str) -> bool {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("health")
                .and_then(|h| h.as_str().map(|h| h == "true"))
        })
        .unwrap_or(false)
}

/// kube-apiserver's `/readyz`, asked with the admin client.
pub async fn apiserver_ready(client: &kube::Client) -> Result<(), String> {
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    match client.request_text(request).await {
        Ok(body) if body.trim() == "ok" => Ok(()),
        Ok(body) => Err(format!("/readyz answered {body:?}")),
        Err(e) => Err(format!("/readyz: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_health_needs_health_true() {
        let ok = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"health\":\"true\",\"reason\":\"\"}";
        assert!(health_says_true(ok));
        let bad = "HTTP/1.0 503 Service Unavailable\r\n\r\n{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}";
        assert!(!health_says_true(bad));
        assert!(!health_says_true("garbage"));
    }

    #[test]
    fn apiserver_gets_the_mandatory_flags_and_rbac() {
        let p = Path::new;
        let files = ApiServerFiles {
            cert_dir: p("/t"),
            ca_cert: p("/t/ca.crt"),
            serving_cert: p("/t/s.crt"),
            serving_key: p("/t/s.key"),
            service_account_key: p("/t/sa.key"),
            service_account_public: p("/t/sa.pub"),
        };
        let args = apiserver_args(&files, 2379, 6443);
        for expected in [
            "--etcd-servers=http://127.0.0.1:2379",
            "--service-account-issuer=https://127.0.0.1:6443/",
            "--service-account-signing-key-file=/t/sa.key",
            "--authorization-mode=RBAC",
            "--client-ca-file=/t/ca.crt",
            "--secure-port=6443",
            "--bind-address=127.0.0.1",
        ] {
            assert!(args.iter().any(|a| a == expected), "missing {expected}");
        }
    }

    #[test]
    fn etcd_listens_on_loopback_only_without_fsync() {
        let args = etcd_args(Path::new("/d"), 1, 2);
        assert!(args.contains(&"--listen-client-urls=http://127.0.0.1:1".to_owned()));
        assert!(args.contains(&"--listen-peer-urls=http://127.0.0.1:2".to_owned()));
        assert!(args.contains(&"--unsafe-no-fsync".to_owned()));
    }
}

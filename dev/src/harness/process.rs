//! The operator binary run as a subprocess, as users run it, plus what `/proc` says about it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::process::{Child, Command};

use super::error::HarnessError;

/// Everything needed to (re)start one operator process.
#[derive(Debug, Clone)]
pub struct OperatorSpec {
    pub binary: PathBuf,
    pub args: Vec<String>,
    /// The whole environment of the process (it starts from an empty one).
    pub env: Vec<(String, String)>,
    /// stdout and stderr go here, appended across restarts.
    pub log: PathBuf,
}

/// The operator binary next to the running executable (`target/<profile>/`), or `$DLI_OPERATOR_BIN`.
pub fn default_operator_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("DLI_OPERATOR_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    // Test binaries live one level down, in `deps/`.
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("dli-stop-operator")
}

/// A free loopback port, for the operator's metrics server, so the harness can read it.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// One operator process; killed when dropped.
#[derive(Debug)]
pub struct OperatorProcess {
    spec: OperatorSpec,
    child: Option<Child>,
    starts: usize,
}

impl OperatorProcess {
    pub fn start(spec: OperatorSpec) -> Result<OperatorProcess, HarnessError> {
        let mut process = OperatorProcess {
            spec,
            child: None,
            starts: 0,
        };
        process.spawn()?;
        Ok(process)
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let io_error = |what, source| HarnessError::Operator {
            what,
            binary: self.spec.binary.clone(),
            source,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log)
            .map_err(|e| io_error("open the log of", e))?;
        let err = log
            .try_clone()
            .map_err(|e| io_error("open the log of", e))?;
        let mut command = std::process::Command::new(&self.spec.binary);
        command
            .args(&self.spec.args)
            .env_clear()
            .envs(self.spec.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        // A harness killed outright must not leave an operator running against a control
        // plane that is gone (which dies with the harness the same way).
        crate::testenv::die_with_parent(&mut command);
        let child = Command::from(command)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| io_error("start", e))?;
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn log_path(&self) -> &Path {
        &self.spec.log
    }

    /// How many times the process was started.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// Fails if the process ended without being asked to (a crash or a refused flag).
    pub fn check_alive(&mut self) -> Result<(), HarnessError> {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.child = None;
            return Err(HarnessError::OperatorExited {
                status: status.to_string(),
                log: self.spec.log.clone(),
            });
        }
        Ok(())
    }

    /// SIGKILL: no graceful shutdown, like a node dying.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error means it is gone already, which is what was asked for.
            let _ = child.kill().await;
        }
    }

    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill().await;
        self.spawn()
    }

    /// SIGTERM, then up to `grace` for a clean exit, then SIGKILL.
    pub async fn terminate(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
            // SAFETY: kill(2) with a pid this process spawned and has not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }

    /// CPU time and memory of the running process, from `/proc`.
    pub fn usage(&self) -> Option<Usage> {
        let pid = self.pid()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(Usage {
            cpu_seconds: cpu_ticks(&stat)? as f64 / clock_ticks_per_second(),
            peak_rss_mib: status_kib(&status, "VmHWM")? as f64 / 1024.0,
            rss_mib: status_kib(&status, "VmRSS")? as f64 / 1024.0,
        })
    }
}

/// What `/proc` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Usage {
    /// User plus system time since the process started.
    pub cpu_seconds: f64,
    /// `VmHWM`: the most resident memory the process ever had.
    pub peak_rss_mib: f64,
    /// `VmRSS`: resident memory now.
    pub rss_mib: f64,
}

/// CPU seconds a process has used so far, or `None` once it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(cpu_ticks(&stat)? as f64 / clock_ticks_per_second())
}

/// Processes whose command line mentions `needle` (e.g. a control plane's temp dir), by
/// pid with their command name.
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(needle)
                .then_some(())?;
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some((pid, name.trim().to_string()))
        })
        .collect()
}

/// `utime + stime` from `/proc/<pid>/stat`, in clock ticks.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses; fields after the last `)`
    // are plain. There, index 0 is field 3 (state), so utime (14) and stime (15) are 11 and 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` figure such as `VmHWM` from `/proc/<pid>/status`.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_add_user_and_system_time_even_with_odd_command_names() {
        let stat = "4242 (dli (stop) op) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 70 0 0 20 0 8 0 123 456789 1234 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(320));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn status_figures_are_read_by_key() {
        let status = "Name:\tdli-stop-operator\nVmPeak:\t  900 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(51234));
        assert_eq!(status_kib(status, "VmRSS"), Some(40000));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn the_own_process_can_be_measured() {
        let pid = std::process::id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("own stat");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("own status");
        assert!(cpu_ticks(&stat).is_some());
        assert!(status_kib(&status, "VmHWM").is_some_and(|kib| kib > 0));
    }
}

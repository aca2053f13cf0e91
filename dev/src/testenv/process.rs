//! Child processes (etcd, kube-apiserver) that never outlive the test process.
//!
//! Linux's parent-death signal is tied to the *thread* that forked the child, and test threads
//! (and tokio's blocking threads) come and go. So every child is forked by one spawner thread
//! that lives as long as the process: when the process ends, however it ends, the kernel
//! SIGKILLs the children. Dropping a [`ManagedProcess`] kills it earlier.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};

use super::TestEnvError;

const LOG_TAIL_LINES: usize = 20;

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// A running child with its output captured to a log file.
#[derive(Debug)]
pub struct ManagedProcess {
    name: &'static str,
    child: Mutex<Option<Child>>,
    log: PathBuf,
}

impl ManagedProcess {
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: PathBuf,
    ) -> Result<Self, TestEnvError> {
        let out = File::create(&log)
            .map_err(|e| TestEnvError::io(format!("create {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| TestEnvError::io(format!("reuse {}", log.display()), e))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        die_with_parent(&mut command);
        let child = spawn_from_long_lived_thread(command)
            .map_err(|e| TestEnvError::io(format!("start {name} ({})", program.display()), e))?;
        Ok(Self {
            name,
            child: Mutex::new(Some(child)),
            log,
        })
    }

    /// How the process ended, if it has.
    pub fn exit_status(&self) -> Option<String> {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Ok(None)) => None,
            Some(Err(e)) => Some(format!("unknown: {e}")),
            None => Some("stopped".to_owned()),
        }
    }

    /// The last lines of its output, for error messages.
    pub fn log_tail(&self) -> String {
        match std::fs::read_to_string(&self.log) {
            Ok(text) => tail(&text, LOG_TAIL_LINES),
            Err(e) => format!("(no log at {}: {e})", self.log.display()),
        }
    }

    pub fn exited_error(&self, status: String) -> TestEnvError {
        TestEnvError::Exited {
            name: self.name,
            status,
            log_tail: self.log_tail(),
        }
    }

    /// Kills the process and reaps it; safe to call more than once.
    pub fn stop(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = guard.take() {
            // Already-exited children make kill fail; wait still reaps them.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Has the child killed when the thread that spawns it ends (Linux), so a test or harness
/// killed outright leaves nothing running.
#[cfg(target_os = "linux")]
pub fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only makes the prctl system call
    // (async-signal-safe) and reads errno; it touches no locks or allocations of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_command: &mut Command) {}

fn spawn_from_long_lived_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Result<mpsc::Sender<SpawnRequest>, String>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("testenv-spawner".to_owned())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            })
            .map(|_| requests)
            .map_err(|e| e.to_string())
    });
    let spawner = spawner
        .as_ref()
        .map_err(|e| io::Error::other(format!("no spawner thread: {e}")))?;
    let (reply, answer) = mpsc::channel();
    spawner
        .send((command, reply))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("spawner thread is gone"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }

    #[test]
    fn stopped_process_is_reaped_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let process = ManagedProcess::spawn(
            "sleeper",
            Path::new("/bin/sh"),
            &["-c".to_owned(), "echo started; exec sleep 30".to_owned()],
            dir.path().join("sleeper.log"),
        )
        .unwrap();
        while process.log_tail().is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(process.exit_status(), None);
        process.stop();
        assert_eq!(process.exit_status().as_deref(), Some("stopped"));
        assert_eq!(process.log_tail(), "started");
    }

    #[test]
    fn early_exit_is_seen_with_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let process = ManagedProcess::spawn(
            "failer",
            Path::new("/bin/sh"),
            &["-c".to_owned(), "echo bad flag >&2; exit 3".to_owned()],
            dir.path().join("failer.log"),
        )
        .unwrap();
        let status = loop {
            if let Some(status) = process.exit_status() {
                break status;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let message = process.exited_error(status).to_string();
        assert!(
            message.contains("failer exited during start-up"),
            "{message}"
        );
        assert!(message.contains("exit status: 3"), "{message}");
        assert!(message.ends_with("bad flag"), "{message}");
    }
}

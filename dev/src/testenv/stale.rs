//! Removes temp dirs left by test processes that were killed (Ctrl-C, SIGKILL) before they
//! could clean up. Their etcd and kube-apiserver died with them; only files remain.

use std::path::Path;

pub const DIR_PREFIX: &str = "dli-testenv-";
const OWNER_FILE: &str = "owner.pid";

/// Marks `dir` as belonging to this process.
pub fn claim(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join(OWNER_FILE), std::process::id().to_string())
}

/// Deletes every `dli-testenv-*` dir under `temp_root` whose owner process is gone.
/// Best effort: a dir that cannot be read or removed is left alone.
pub fn sweep(temp_root: &Path) {
    let Ok(entries) = std::fs::read_dir(temp_root) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let owner = std::fs::read_to_string(entry.path().join(OWNER_FILE)).ok();
        if owner
            .as_deref()
            .is_some_and(|pid| is_abandoned(pid, process_alive))
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// True when the recorded owner pid is well formed and that process no longer exists.
/// Unreadable owners count as alive: deleting a live control plane's files is far worse
/// than leaving garbage.
fn is_abandoned(owner: &str, alive: impl Fn(i32) -> bool) -> bool {
    owner
        .trim()
        .parse::<i32>()
        .is_ok_and(|pid| pid > 0 && !alive(pid))
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 performs only the existence and permission check; nothing is sent.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_owners_make_a_dir_abandoned() {
        assert!(is_abandoned("4242\n", |_| false));
        assert!(!is_abandoned("4242", |_| true));
        assert!(!is_abandoned("not-a-pid", |_| false));
        assert!(!is_abandoned("0", |_| false));
    }

    #[test]
    fn sweep_removes_dirs_of_dead_processes_and_keeps_live_ones() {
        let root = tempfile::tempdir().unwrap();
        let live = root.path().join(format!("{DIR_PREFIX}live"));
        let dead = root.path().join(format!("{DIR_PREFIX}dead"));
        let unrelated = root.path().join("something-else");
        for dir in [&live, &dead, &unrelated] {
            std::fs::create_dir(dir).unwrap();
        }
        claim(&live).unwrap();
        // pid_max on Linux is at most 2^22, so this pid cannot exist.
        std::fs::write(dead.join(OWNER_FILE), "99999999").unwrap();
        std::fs::write(unrelated.join(OWNER_FILE), "99999999").unwrap();

        sweep(root.path());

        assert!(live.exists());
        assert!(!dead.exists());
        assert!(unrelated.exists());
    }
}

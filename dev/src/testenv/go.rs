//! Builds the Go programs under `tests/` that judge the operator with real clients and
//! runtimes (the Huawei Cloud SDK, Argo CD's Lua sandbox, kstatus), all the same way: from the
//! module's pinned versions only, with the local toolchain.

use std::path::Path;
use std::process::{Command, Output};

use super::TestEnvError;

/// `go build` of `packages` (e.g. `./cmd/judge`) of the Go module in `module_dir`, each
/// binary written into the directory `out_dir` under its package's name.
pub fn go_build_command(module_dir: &Path, packages: &[&str], out_dir: &Path) -> Command {
    let mut command = Command::new("go");
    command
        .args(["build", "-mod=readonly", "-buildvcs=false", "-o"])
        .arg(format!("{}/", out_dir.display()))
        .args(packages)
        .current_dir(module_dir)
        .env("GOTOOLCHAIN", "local");
    command
}

/// What a run of [`go_build_command`] came to, in the terms of someone running the tests.
pub fn go_build_outcome(
    module_dir: &Path,
    output: std::io::Result<Output>,
) -> Result<(), TestEnvError> {
    let output = output.map_err(|source| {
        TestEnvError::io(
            format!(
                "run `go build` in {} (the tests need Go)",
                module_dir.display()
            ),
            source,
        )
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(TestEnvError::GoBuild {
            module: module_dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

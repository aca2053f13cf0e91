//! The `check` command: one signed read-only call to DLI with a diagnosis in plain words.

/// Where `check` takes its connection from.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Read the connection from this Secret (`NAMESPACE/NAME`) instead of the `DLI_*` variables.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub secret: Option<String>,
}

/// Runs the check and returns the process exit code.
pub async fn run(_args: CheckArgs) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dli_stop_operator::controller::RunArgs;
use dli_stop_operator::error_chain::ErrorChain;
use dli_stop_operator::{api, check, preview, run, telemetry};

/// Stops Data Lake Insight (DLI) Flink jobs declared as JobStopRequest resources.
#[derive(Debug, Parser)]
#[command(name = "dli-stop-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller.
    Run(Box<RunArgs>),
    /// Print the JobStopRequest CustomResourceDefinition as YAML.
    Crd,
    /// Make one signed read-only call to DLI and say what works and what is wrong.
    Check(check::CheckArgs),
    /// Show which DLI jobs a request's jobSelector resolves to now, stopping nothing.
    Preview(preview::PreviewArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            telemetry::init(args.log_format);
            match run::run(*args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(error = %ErrorChain(&error), "the operator stopped");
                    eprintln!("error: {}", ErrorChain(&error));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Crd => match api::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: cannot render the CRD: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Check(args) => check::run(args).await,
        Command::Preview(args) => preview::run(args).await,
    }
}

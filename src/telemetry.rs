//! Logging setup: `tracing` events to stderr as human text or one JSON object per line.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// What `RUST_LOG` falls back to: our own events at info, kube's chatty internals only when they matter.
pub const DEFAULT_FILTER: &str = "info,kube=warn";

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, for terminals.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber. The level comes from `RUST_LOG` (falling back to
/// [`DEFAULT_FILTER`], also when `RUST_LOG` does not parse).
///
/// Calling it again is harmless: tests and embedders may have installed a subscriber first,
/// and the first one wins.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    // An error here only means a subscriber is already installed, which is the documented no-op.
    let _already_installed = match format {
        // Colours only for a terminal: in a pod's log or a file the escape codes are noise,
        // and formatting them costs CPU on every line.
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn log_format_parses_the_values_users_pass_on_the_command_line() {
        assert_eq!(LogFormat::from_str("json", true), Ok(LogFormat::Json));
        assert_eq!(LogFormat::from_str("text", true), Ok(LogFormat::Text));
        assert!(LogFormat::from_str("yaml", true).is_err());
    }

    #[test]
    fn init_twice_does_not_panic() {
        init(LogFormat::Json);
        init(LogFormat::Text);
        tracing::info!("still logging after a second init");
    }

    #[test]
    fn default_filter_parses() {
        assert!(EnvFilter::try_new(DEFAULT_FILTER).is_ok());
    }
}

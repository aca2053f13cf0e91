//! How errors are told: each layer's message says what went wrong in its own terms and leaves
//! the cause to `source()`, so an error is shown with its whole chain, once, where it ends up
//! (a log line, a status message, the command line).

use std::error::Error;
use std::fmt;

/// Shows an error and its causes on one line: `outer: inner: innermost`. A cause whose
/// message is already in the line is skipped, as some libraries repeat their cause in their
/// own message.
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write the request's status")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("the API server refused: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn every_cause_is_told_once() {
        let error = Outer(Middle(std::io::Error::other("connection reset")));
        assert_eq!(
            ErrorChain(&error).to_string(),
            "cannot write the request's status: the API server refused: connection reset"
        );
    }

    #[test]
    fn an_error_without_a_cause_is_its_message() {
        let error = std::io::Error::other("connection reset");
        assert_eq!(ErrorChain(&error).to_string(), "connection reset");
    }
}

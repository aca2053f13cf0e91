//! Which jobs a connection may stop: the optional `allowedJobIds` key of a connection Secret,
//! so a team's Secret stops only the team's jobs even when its credentials reach more of the
//! DLI project. Pure: parsed from the Secret's data, checked against a request's job ids.
//!
//! Ids, not names or queues: a request's ids are known before any call and a job keeps its id
//! for life, so the check needs no DLI call and cannot be outrun by a rename. A scope of queues
//! or name patterns fits once requests name jobs that way and their ids are resolved; until
//! then the operator refuses a Secret carrying such keys rather than silently not enforcing
//! them.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use k8s_openapi::ByteString;

/// The Secret key holding the scope.
pub const ALLOWED_JOB_IDS: &str = "allowedJobIds";

/// The jobs a connection may stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobScope {
    /// No `allowedJobIds`: whatever the credentials allow.
    Unrestricted,
    /// Only ids in these inclusive ranges.
    Only(Vec<RangeInclusive<i64>>),
}

/// Why the scope of a Secret cannot be read. Messages name keys and entries, never other values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("Secret key `{ALLOWED_JOB_IDS}` is not valid UTF-8")]
    NotUtf8,
    #[error(
        "Secret key `{ALLOWED_JOB_IDS}` is empty: list job ids and ranges (e.g. `128, 200-299`), \
         or remove the key to allow every job"
    )]
    Empty,
    #[error(
        "Secret key `{ALLOWED_JOB_IDS}`: `{0}` is neither a job id nor a range like `200-299` \
         (ids are at least 1, a range's start is not above its end)"
    )]
    BadEntry(String),
    #[error(
        "Secret key `{0}` is not supported: this operator limits jobs by `{ALLOWED_JOB_IDS}` only, \
         and would not enforce it"
    )]
    Unsupported(String),
}

/// What a request is told when some of its jobs are outside its connection's scope.
pub fn refusal_message(outside: &[i64]) -> String {
    format!(
        "the connection may not stop job(s) {}: they are outside its Secret's allowedJobIds; \
         nothing was sent. Remove them from the request, or have the Secret's owner widen \
         allowedJobIds and change spec.nonce",
        outside
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

impl JobScope {
    /// The scope a connection Secret's `data` declares.
    pub fn from_secret_data(data: &BTreeMap<String, ByteString>) -> Result<JobScope, ScopeError> {
        if let Some(unsupported) = data
            .keys()
            .find(|key| key.starts_with("allowed") && key.as_str() != ALLOWED_JOB_IDS)
        {
            return Err(ScopeError::Unsupported(unsupported.clone()));
        }
        match data.get(ALLOWED_JOB_IDS) {
            None => Ok(JobScope::Unrestricted),
            Some(bytes) => {
                let text = std::str::from_utf8(&bytes.0).map_err(|_| ScopeError::NotUtf8)?;
                parse(text).map(JobScope::Only)
            }
        }
    }

    /// The ids of `job_ids` this scope does not allow, in their order.
    pub fn outside(&self, job_ids: &[i64]) -> Vec<i64> {
        match self {
            JobScope::Unrestricted => Vec::new(),
            JobScope::Only(ranges) => job_ids
                .iter()
                .copied()
                .filter(|id| !ranges.iter().any(|range| range.contains(id)))
                .collect(),
        }
    }
}

/// Ids and inclusive ranges separated by commas or white space: `128, 137, 200-299`.
fn parse(text: &str) -> Result<Vec<RangeInclusive<i64>>, ScopeError> {
    let ranges = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|entry| !entry.is_empty())
        .map(|entry| entry_range(entry).ok_or_else(|| ScopeError::BadEntry(entry.to_owned())))
        .collect::<Result<Vec<_>, _>>()?;
    if ranges.is_empty() {
        return Err(ScopeError::Empty);
    }
    Ok(ranges)
}

fn entry_range(entry: &str) -> Option<RangeInclusive<i64>> {
    let id = |text: &str| text.parse::<i64>().ok().filter(|id| *id >= 1);
    match entry.split_once('-') {
        None => id(entry).map(|id| id..=id),
        Some((start, end)) => {
            let (start, end) = (id(start)?, id(end)?);
            (start <= end).then_some(start..=end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), ByteString(value.as_bytes().to_vec())))
            .collect()
    }

    fn scope(value: &str) -> Result<JobScope, ScopeError> {
        JobScope::from_secret_data(&data(&[
            ("endpoint", "https://x"),
            (ALLOWED_JOB_IDS, value),
        ]))
    }

    #[test]
    fn without_the_key_every_job_is_allowed() {
        let scope = JobScope::from_secret_data(&data(&[("endpoint", "https://x")])).expect("ok");
        assert_eq!(scope, JobScope::Unrestricted);
        assert!(scope.outside(&[1, 99_999]).is_empty());
    }

    #[test]
    fn ids_and_ranges_by_commas_spaces_or_lines() {
        let scope = scope("128, 137\n200-299 1000-1000,\n").expect("valid");
        assert_eq!(
            scope,
            JobScope::Only(vec![128..=128, 137..=137, 200..=299, 1000..=1000])
        );
        assert_eq!(
            scope.outside(&[128, 129, 200, 299, 300, 1000, 7]),
            vec![129, 300, 7]
        );
    }

    #[test]
    fn a_blank_scope_is_refused_not_read_as_everything() {
        assert_eq!(scope(""), Err(ScopeError::Empty));
        assert_eq!(scope(" ,\n"), Err(ScopeError::Empty));
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "12x",
            "0",
            "-5",
            "5-",
            "9-3",
            "1-2-3",
            "1..3",
            "a-b",
            "99999999999999999999",
        ] {
            assert_eq!(
                scope(&format!("1, {bad}")),
                Err(ScopeError::BadEntry(bad.to_owned())),
                "{bad}"
            );
        }
        let message = scope("1, 9-3").expect_err("reversed").to_string();
        assert!(message.contains("`9-3`"), "{message}");
    }

    #[test]
    fn scope_keys_this_version_cannot_enforce_are_refused() {
        for key in ["allowedQueues", "allowedJobNames"] {
            let error =
                JobScope::from_secret_data(&data(&[(key, "flink-prod")])).expect_err("unsupported");
            assert_eq!(error, ScopeError::Unsupported(key.to_owned()));
            assert!(!error.to_string().contains("flink-prod"));
        }
    }

    #[test]
    fn non_utf8_is_named() {
        let mut data = data(&[]);
        data.insert(ALLOWED_JOB_IDS.into(), ByteString(vec![0xff]));
        assert_eq!(JobScope::from_secret_data(&data), Err(ScopeError::NotUtf8));
    }
}

//! What the controller's unit tests build their cases from: fixed instants and a plain spec,
//! so a change to the resource's types is made in one place.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{ConfirmSpec, JobStopRequestSpec};

/// `seconds` after a fixed instant.
pub fn time(seconds: i64) -> Time {
    Time(jiff::Timestamp::from_second(1_800_000_000 + seconds).expect("valid timestamp"))
}

/// A request for `ids` with every option left at its default.
pub fn spec(ids: &[i64]) -> JobStopRequestSpec {
    JobStopRequestSpec {
        job_ids: ids.to_vec(),
        job_selector: None,
        trigger_savepoint: false,
        connection_ref: None,
        confirm: None,
        nonce: None,
        ttl_seconds_after_finished: None,
        delivery_deadline_seconds: None,
    }
}

/// A request for `ids` that confirms the stop, or explicitly does not, within 60 s.
pub fn spec_confirming(ids: &[i64], confirm: bool) -> JobStopRequestSpec {
    JobStopRequestSpec {
        confirm: Some(ConfirmSpec {
            enabled: confirm,
            timeout_seconds: 60,
        }),
        ..spec(ids)
    }
}

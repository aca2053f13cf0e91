//! The `JobStopRequest` resource: spec, status and conditions. Pure types and helpers.

pub mod conditions;
mod spec;
mod status;

pub use spec::{
    ConfirmSpec, ConnectionRef, DEFAULT_CONFIRM_TIMEOUT_SECONDS, JobStopRequest,
    JobStopRequestSpec, MAX_JOB_IDS,
};
pub use status::{
    JobResult, JobStopRequestStatus, Phase, RequestError, ResponseElement, Submission,
    SubmissionState, Summary,
};

/// The CRD as YAML, exactly as checked in under `crds/`.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&JobStopRequest::crd())
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_crd_matches_the_code() {
        let generated = super::crd_yaml().expect("the CRD renders");
        let checked_in = include_str!("../../crds/jobstoprequests.yaml");
        assert!(
            generated == checked_in,
            "crds/jobstoprequests.yaml is stale: run `make crds` and commit the result"
        );
    }
}

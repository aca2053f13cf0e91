//! The `JobStopRequest` resource: spec, status and conditions. Pure types and helpers.

pub mod conditions;
mod schema;
mod spec;
mod status;

pub use spec::{
    ConfirmSpec, ConnectionRef, DEFAULT_CONFIRM_TIMEOUT_SECONDS, JobSelector, JobStopRequest,
    JobStopRequestSpec, MAX_JOB_IDS, MAX_SELECTOR_NAMES,
};
pub use status::{
    JobResult, JobStopRequestStatus, Phase, RequestError, ResponseElement, SkippedJob, Submission,
    SubmissionState, Summary,
};

/// The CRD as YAML, exactly as checked in under `crds/`.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&JobStopRequest::crd())
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::{JobStopRequest, MAX_JOB_IDS, MAX_SELECTOR_NAMES};

    #[test]
    fn the_schema_caps_job_ids_at_the_documented_maximum() {
        let crd = serde_json::to_value(JobStopRequest::crd()).expect("CRD serializes");
        let job_ids = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["jobIds"];
        assert_eq!(job_ids["maxItems"], serde_json::json!(MAX_JOB_IDS));
        assert_eq!(job_ids["x-kubernetes-list-type"], "set");
    }

    #[test]
    fn the_schema_caps_selector_names_and_wants_ids_or_a_selector() {
        let crd = serde_json::to_value(JobStopRequest::crd()).expect("CRD serializes");
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let names = &spec["properties"]["jobSelector"]["properties"]["names"];
        assert_eq!(names["maxItems"], serde_json::json!(MAX_SELECTOR_NAMES));
        assert_eq!(names["x-kubernetes-list-type"], "set");
        assert!(
            spec.get("required").is_none(),
            "neither field is required alone"
        );
        assert_eq!(
            spec["x-kubernetes-validations"][0]["rule"],
            "has(self.jobIds) != has(self.jobSelector)"
        );
    }

    #[test]
    fn the_crd_yaml_reads_back_as_the_same_crd() {
        // The writer folds long descriptions; folding must not change a single character.
        let yaml = super::crd_yaml().expect("the CRD renders");
        let read_back: serde_json::Value = serde_saphyr::from_str(&yaml).expect("valid YAML");
        let crd = serde_json::to_value(JobStopRequest::crd()).expect("the CRD serializes");
        assert_eq!(read_back, crd);
    }

    /// Every description and format in the schema, with its path.
    fn walk<'a>(value: &'a serde_json::Value, path: String, found: &mut Vec<(String, &'a str)>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child.as_str()) {
                        ("description" | "format", Some(text)) => {
                            found.push((format!("{path}.{key}"), text));
                        }
                        _ => walk(child, format!("{path}.{key}"), found),
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    walk(child, format!("{path}[{index}]"), found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_schema_speaks_kubernetes_formats_and_prose() {
        let crd = serde_json::to_value(JobStopRequest::crd()).expect("CRD serializes");
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut found = Vec::new();
        walk(schema, String::new(), &mut found);
        for (path, text) in found {
            if path.ends_with(".format") {
                assert!(
                    ["int32", "int64", "date-time"].contains(&text),
                    "{path}: the API server warns about format {text}"
                );
            } else {
                assert!(
                    !text.replace("\n\n", "").contains('\n'),
                    "{path} breaks a line in mid-sentence: {text:?}"
                );
            }
        }
    }

    #[test]
    fn a_new_request_reads_as_observed_generation_zero() {
        let crd = serde_json::to_value(JobStopRequest::crd()).expect("CRD serializes");
        let status =
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"];
        assert_eq!(
            status["default"],
            serde_json::json!({"observedGeneration": 0})
        );
    }

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

//! The JSON bodies the stand-in sends and receives, shaped like the real wire.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::sim::jobs::{Job, JobView};

#[derive(Debug, Clone, Deserialize)]
pub struct BatchStopBody {
    pub job_ids: Vec<i64>,
    #[serde(default)]
    pub trigger_savepoint: bool,
}

/// One element of the batch-stop answer. `is_success` is a string, as on the real wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopElement {
    pub is_success: &'static str,
    pub message: String,
}

impl StopElement {
    pub fn new(success: bool, message: String) -> StopElement {
        StopElement {
            is_success: if success { "true" } else { "false" },
            message,
        }
    }
}

/// The error body of DLI (no `request_id`) or of the API gateway (with one).
pub fn error_body(code: &str, message: &str, request_id: Option<&str>) -> Value {
    match request_id {
        Some(id) => json!({"error_code": code, "error_msg": message, "request_id": id}),
        None => json!({"error_code": code, "error_msg": message}),
    }
}

/// The IAM (Keystone) error body.
pub fn iam_error_body(status: u16, title: &str, message: &str) -> Value {
    json!({"error": {"code": status, "title": title, "message": message}})
}

/// A job as DLI lists or details it. With `null_optional` every field the SDK's models mark
/// optional (all but `job_id`, `status` and `create_time` here) is `null`.
pub fn job_json(job: &Job, view: &JobView, null_optional: bool) -> Value {
    let optional = |value: Value| if null_optional { Value::Null } else { value };
    json!({
        "job_id": job.id,
        "name": optional(json!(job.name)),
        "desc": optional(json!("")),
        "user_name": optional(json!("dli-sim")),
        "job_type": optional(json!("flink_sql_job")),
        "status": view.status,
        "status_desc": optional(json!("")),
        "create_time": job.created_at.as_millisecond(),
        "start_time": optional(json!(job.created_at.as_millisecond())),
        "update_time": optional(json!(view.updated_at.as_millisecond())),
        "queue_name": optional(json!(job.queue_name)),
        "has_savepoint": optional(json!(view.savepoint_path.is_some())),
        "savepoint_path": optional(json!(view.savepoint_path.clone().unwrap_or_default())),
        "restart_times": optional(json!(0)),
    })
}

pub fn job_detail_body(job: &Job, view: &JobView, null_optional: bool) -> Value {
    let mut detail = job_json(job, view, null_optional);
    if let Value::Object(fields) = &mut detail {
        fields.insert("job_config".into(), json!({}));
    }
    json!({"is_success": "true", "message": "", "job_detail": detail})
}

/// The list answer: the page of jobs and the total inside `job_list`, as the API reference
/// and the SDK's `ListFlinkJobsResponse` lay it out.
pub fn job_list_body(total_count: usize, jobs: Vec<Value>) -> Value {
    json!({
        "is_success": "true",
        "message": "",
        "job_list": {"total_count": total_count, "jobs": jobs},
    })
}

/// A 200 body that is valid JSON and at least `bytes` long, to exercise client size limits.
pub fn oversized_body(bytes: usize) -> String {
    let padding = "x".repeat(bytes);
    json!([{"is_success": "true", "message": padding}]).to_string()
}

/// A 200 body a JSON parser must reject: an answer cut short by a broken proxy.
pub const MALFORMED_BODY: &str = r#"[{"is_success":"true","message":"The request for stop"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::jobs::JOB_CANCEL_SUCCESS;
    use jiff::Timestamp;

    #[test]
    fn stop_elements_carry_is_success_as_a_string() {
        let value = serde_json::to_value(StopElement::new(false, "no".into())).unwrap();
        assert_eq!(value, json!({"is_success": "false", "message": "no"}));
    }

    #[test]
    fn job_detail_reports_savepoint_and_times_in_milliseconds() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let job = Job::new(5, "job_running", at);
        let view = JobView {
            status: JOB_CANCEL_SUCCESS.into(),
            updated_at: at,
            savepoint_path: Some("obs://b/jobs/savepoint/5/1/".into()),
        };
        let body = job_detail_body(&job, &view, false);
        let detail = &body["job_detail"];
        assert_eq!(body["is_success"], "true");
        assert_eq!(detail["job_id"], 5);
        assert_eq!(detail["status"], JOB_CANCEL_SUCCESS);
        assert_eq!(detail["has_savepoint"], true);
        assert_eq!(detail["savepoint_path"], "obs://b/jobs/savepoint/5/1/");
        assert_eq!(detail["update_time"], 1_800_000_000_000i64);
        assert_eq!(detail["job_config"], json!({}));
    }

    #[test]
    fn sparse_jobs_answer_null_for_every_optional_field() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let job = Job::new(5, "job_running", at);
        let view = JobView {
            status: "job_running".into(),
            updated_at: at,
            savepoint_path: None,
        };
        let detail = job_json(&job, &view, true);
        assert_eq!(detail["job_id"], 5);
        assert_eq!(detail["status"], "job_running");
        for field in [
            "name",
            "job_type",
            "status_desc",
            "queue_name",
            "has_savepoint",
        ] {
            assert_eq!(detail[field], Value::Null, "{field}");
        }
    }

    #[test]
    fn the_job_list_nests_its_page_in_job_list() {
        let body = job_list_body(7, vec![json!({"job_id": 1})]);
        assert_eq!(body["job_list"]["total_count"], 7);
        assert_eq!(body["job_list"]["jobs"][0]["job_id"], 1);
        assert_eq!(body.get("jobs"), None);
    }

    #[test]
    fn oversized_bodies_are_big_valid_json_and_malformed_ones_are_not_json() {
        let body = oversized_body(10_000);
        assert!(body.len() >= 10_000);
        assert!(serde_json::from_str::<Value>(&body).is_ok());
        assert!(serde_json::from_str::<Value>(MALFORMED_BODY).is_err());
    }
}

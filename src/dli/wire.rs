//! The JSON bodies DLI and its API gateway exchange, shaped like the real wire (e.g.
//! `is_success` comes as a string, `"true"`).

use serde::{Deserialize, Deserializer, Serialize};

/// The batch-stop request body. Serialised compactly; its exact bytes are signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopRequestBody<'a> {
    pub job_ids: &'a [i64],
    pub trigger_savepoint: bool,
}

/// One element of the batch-stop answer array (not keyed by job: see [`super::mapping`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerElement {
    #[serde(deserialize_with = "lenient_bool")]
    pub is_success: bool,
    #[serde(default)]
    pub message: String,
}

/// `is_success` is documented as a Boolean but sent as the string `"true"`/`"false"`, and the
/// SDKs flipped between the two; anything else is a malformed answer, not a guess.
fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrString {
        Bool(bool),
        String(String),
    }
    match BoolOrString::deserialize(deserializer)? {
        BoolOrString::Bool(value) => Ok(value),
        BoolOrString::String(text) => match text.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(serde::de::Error::custom(format!(
                "is_success must be true or false, got {text:?}"
            ))),
        },
    }
}

/// A DLI Flink job status. Unknown values are kept so a new DLI status never breaks parsing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Init,
    Submitting,
    SubmitFail,
    Running,
    RunningException,
    Downloading,
    Idle,
    Canceling,
    CancelSuccess,
    CancelFail,
    Savepointing,
    Finish,
    ArrearageStopped,
    ArrearageRecovering,
    Other(String),
}

impl JobStatus {
    /// The wire name, e.g. `job_cancel_success`.
    pub fn as_str(&self) -> &str {
        match self {
            JobStatus::Init => "job_init",
            JobStatus::Submitting => "job_submitting",
            JobStatus::SubmitFail => "job_submit_fail",
            JobStatus::Running => "job_running",
            JobStatus::RunningException => "job_running_exception",
            JobStatus::Downloading => "job_downloading",
            JobStatus::Idle => "job_idle",
            JobStatus::Canceling => "job_canceling",
            JobStatus::CancelSuccess => "job_cancel_success",
            JobStatus::CancelFail => "job_cancel_fail",
            JobStatus::Savepointing => "job_savepointing",
            JobStatus::Finish => "job_finish",
            JobStatus::ArrearageStopped => "job_arrearage_stopped",
            JobStatus::ArrearageRecovering => "job_arrearage_recovering",
            JobStatus::Other(other) => other,
        }
    }

    pub fn parse(value: &str) -> JobStatus {
        match value {
            "job_init" => JobStatus::Init,
            "job_submitting" => JobStatus::Submitting,
            "job_submit_fail" => JobStatus::SubmitFail,
            "job_running" => JobStatus::Running,
            "job_running_exception" => JobStatus::RunningException,
            "job_downloading" => JobStatus::Downloading,
            "job_idle" => JobStatus::Idle,
            "job_canceling" => JobStatus::Canceling,
            "job_cancel_success" => JobStatus::CancelSuccess,
            "job_cancel_fail" => JobStatus::CancelFail,
            "job_savepointing" => JobStatus::Savepointing,
            "job_finish" => JobStatus::Finish,
            "job_arrearage_stopped" => JobStatus::ArrearageStopped,
            "job_arrearage_recovering" => JobStatus::ArrearageRecovering,
            other => JobStatus::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JobStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JobStatus, D::Error> {
        String::deserialize(deserializer).map(|value| JobStatus::parse(&value))
    }
}

/// A job as the job-detail and job-list APIs describe it (fields the operator uses).
///
/// Every field but `job_id` is optional in the official SDK's models and may come as `null`:
/// a missing or `null` field reads as empty, so one sparse job never fails a whole answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDetail {
    pub job_id: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub job_type: String,
    /// `None` when DLI did not say: confirmation keeps polling such a job.
    #[serde(default)]
    pub status: Option<JobStatus>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status_desc: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub queue_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub has_savepoint: bool,
    /// Empty on the wire when there is none; `None` here then.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub savepoint_path: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub update_time: Option<i64>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn empty_as_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.filter(|value| !value.is_empty()))
}

/// `GET /v1.0/{project}/streaming/jobs/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct JobDetailBody {
    pub job_detail: JobDetail,
}

/// `GET /v1.0/{project}/streaming/jobs`: the jobs sit inside `job_list`, as in the SDK's
/// `ListFlinkJobsResponse` and the API reference.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobListBody {
    #[serde(default, deserialize_with = "null_as_default")]
    pub job_list: JobListPage,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobListPage {
    /// How many jobs match the query in all, over every page.
    #[serde(default)]
    pub total_count: Option<u64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub jobs: Vec<JobDetail>,
}

/// The batch-stop answer as it comes: an array of elements (the reference this project
/// follows), a single element object (another published regional reference), or, with a
/// success status, a DLI error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopAnswerBody {
    Elements(Vec<AnswerElement>),
    Single(AnswerElement),
    Refusal(ErrorBody),
}

impl StopAnswerBody {
    /// Reads the body by its shape, so a malformed answer says what is wrong in it rather
    /// than that it matched no shape.
    pub fn parse(body: &[u8]) -> Result<StopAnswerBody, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_slice(body)?;
        match value {
            serde_json::Value::Array(_) => serde_json::from_value(value).map(Self::Elements),
            serde_json::Value::Object(ref fields) if fields.contains_key("error_code") => {
                serde_json::from_value(value).map(Self::Refusal)
            }
            serde_json::Value::Object(_) => serde_json::from_value(value).map(Self::Single),
            _ => Err(serde::de::Error::custom(
                "expected an array of answers or one answer object",
            )),
        }
    }
}

/// The error body of DLI (`DLI.*`) and of the API gateway (`APIGW.*`, with `request_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error_code: String,
    #[serde(default)]
    pub error_msg: String,
    #[serde(default)]
    pub request_id: Option<String>,
}

impl ErrorBody {
    /// Whether the API gateway answered, not DLI itself.
    pub fn is_gateway(&self) -> bool {
        self.error_code.starts_with("APIGW.")
    }
}

/// IAM's (Keystone) error body: `{"error":{"code":401,"title":"...","message":"..."}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct IamErrorBody {
    pub error: IamErrorDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IamErrorDetail {
    #[serde(default)]
    pub message: String,
}

/// The part of IAM's token answer the operator reads; the token itself is a header.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenBody {
    pub token: TokenDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenDetail {
    pub expires_at: jiff::Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_body_is_compact_and_in_wire_order() {
        let body = serde_json::to_string(&StopRequestBody {
            job_ids: &[128, 137],
            trigger_savepoint: false,
        })
        .expect("serialisable");
        assert_eq!(body, r#"{"job_ids":[128,137],"trigger_savepoint":false}"#);
    }

    #[test]
    fn is_success_accepts_bools_and_their_strings() {
        let parsed: Vec<AnswerElement> = serde_json::from_str(
            r#"[{"is_success":"true","message":"a"},{"is_success":false,"message":"b"},
                {"is_success":"false"},{"is_success":true,"message":"d"}]"#,
        )
        .expect("valid answer");
        let flags: Vec<bool> = parsed.iter().map(|element| element.is_success).collect();
        assert_eq!(flags, [true, false, false, true]);
        assert_eq!(parsed[2].message, "");
    }

    #[test]
    fn other_is_success_values_are_a_parse_error() {
        for body in [
            r#"[{"is_success":"yes","message":""}]"#,
            r#"[{"is_success":"TRUE","message":""}]"#,
            r#"[{"is_success":1,"message":""}]"#,
            r#"[{"message":"no flag"}]"#,
        ] {
            assert!(
                serde_json::from_str::<Vec<AnswerElement>>(body).is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn job_detail_reads_status_and_savepoint() {
        let body: JobDetailBody = serde_json::from_str(
            r#"{"is_success":"true","message":"","job_detail":{"job_id":128,"name":"n",
                "job_type":"flink_sql_job","status":"job_cancel_success","status_desc":"",
                "has_savepoint":true,"savepoint_path":"obs://b/jobs/savepoint/128/1/",
                "update_time":1800000000000,"job_config":{}}}"#,
        )
        .expect("valid detail");
        let detail = body.job_detail;
        assert_eq!(detail.status, Some(JobStatus::CancelSuccess));
        assert_eq!(
            detail.savepoint_path.as_deref(),
            Some("obs://b/jobs/savepoint/128/1/")
        );
        assert!(detail.has_savepoint);
    }

    #[test]
    fn an_empty_savepoint_path_is_none_and_unknown_statuses_are_kept() {
        let detail: JobDetail =
            serde_json::from_str(r#"{"job_id":1,"status":"job_teleporting","savepoint_path":""}"#)
                .expect("valid detail");
        assert_eq!(detail.savepoint_path, None);
        let status = detail.status.expect("status");
        assert_eq!(status, JobStatus::Other("job_teleporting".into()));
        assert_eq!(status.to_string(), "job_teleporting");
    }

    #[test]
    fn null_and_missing_optional_fields_read_as_empty() {
        let detail: JobDetail = serde_json::from_str(
            r#"{"job_id":7,"name":null,"job_type":null,"status":null,"status_desc":null,
                "queue_name":null,"has_savepoint":null,"savepoint_path":null,"update_time":null}"#,
        )
        .expect("a sparse detail reads");
        assert_eq!(detail.job_id, 7);
        assert_eq!(detail.name, "");
        assert_eq!(detail.status, None);
        assert!(!detail.has_savepoint);
        let bare: JobDetail = serde_json::from_str(r#"{"job_id":8}"#).expect("a bare detail reads");
        assert_eq!(bare.queue_name, "");
    }

    #[test]
    fn the_job_list_sits_inside_job_list_as_the_sdk_reads_it() {
        let body: JobListBody = serde_json::from_str(
            r#"{"is_success":"true","message":"","job_list":{"total_count":12,
                "jobs":[{"job_id":1,"name":"a","status":"job_running","queue_name":null}]}}"#,
        )
        .expect("a list answer reads");
        assert_eq!(body.job_list.total_count, Some(12));
        assert_eq!(body.job_list.jobs.len(), 1);
        assert_eq!(body.job_list.jobs[0].status, Some(JobStatus::Running));
        let empty: JobListBody =
            serde_json::from_str(r#"{"is_success":"true","job_list":null}"#).expect("reads");
        assert_eq!(empty.job_list.total_count, None);
    }

    #[test]
    fn the_stop_answer_is_read_as_an_array_an_object_or_a_refusal() {
        let parse = |body: &str| StopAnswerBody::parse(body.as_bytes());
        assert!(matches!(
            parse(r#"[{"is_success":"true","message":"a"}]"#),
            Ok(StopAnswerBody::Elements(elements)) if elements.len() == 1
        ));
        assert_eq!(
            parse(r#"{"is_success":"true","message":"delivered"}"#).expect("object"),
            StopAnswerBody::Single(AnswerElement {
                is_success: true,
                message: "delivered".into()
            })
        );
        assert!(matches!(
            parse(r#"{"error_code":"DLI.0001","error_msg":"bad ids"}"#),
            Ok(StopAnswerBody::Refusal(body)) if body.error_msg == "bad ids"
        ));
        for malformed in [r#""text""#, "42", r#"{"message":"no flag"}"#, "[1]", "{"] {
            assert!(parse(malformed).is_err(), "{malformed}");
        }
    }

    #[test]
    fn every_known_status_round_trips() {
        for name in [
            "job_init",
            "job_submitting",
            "job_submit_fail",
            "job_running",
            "job_running_exception",
            "job_downloading",
            "job_idle",
            "job_canceling",
            "job_cancel_success",
            "job_cancel_fail",
            "job_savepointing",
            "job_finish",
            "job_arrearage_stopped",
            "job_arrearage_recovering",
        ] {
            let status = JobStatus::parse(name);
            assert!(!matches!(status, JobStatus::Other(_)), "{name}");
            assert_eq!(status.as_str(), name);
        }
    }

    #[test]
    fn error_bodies_of_dli_and_the_gateway_parse() {
        let dli: ErrorBody =
            serde_json::from_str(r#"{"error_code":"DLI.0001","error_msg":"bad"}"#).expect("dli");
        assert!(!dli.is_gateway());
        assert_eq!(dli.request_id, None);
        let gateway: ErrorBody = serde_json::from_str(
            r#"{"error_code":"APIGW.0301","error_msg":"sig","request_id":"r-1"}"#,
        )
        .expect("gateway");
        assert!(gateway.is_gateway());
        assert_eq!(gateway.request_id.as_deref(), Some("r-1"));
    }
}

//! The promises a chaos run checks at the end, as a pure function of what the API server and
//! the stand-in report, so each rule is unit-tested on its own.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use dli_stop_operator::api::conditions::{self, READY, reason};
use dli_stop_operator::api::{JobStopRequestStatus, Phase, SubmissionState};
use dli_stop_operator::controller::status::classify_job_state;
use dli_stop_operator::dli::JobStateClass;

/// One request as the API server has it at the end of a run.
#[derive(Debug, Clone)]
pub struct Observed {
    pub name: String,
    pub uid: String,
    pub generation: i64,
    pub job_ids: Vec<i64>,
    /// Job ids of the earlier generations, oldest (generation 1) first.
    pub superseded_job_ids: Vec<Vec<i64>>,
    pub status: Option<JobStopRequestStatus>,
}

/// One job as the stand-in knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandInJob {
    /// The status it reports now, for the violation's message.
    pub status: String,
    /// Whether it took a stop for the job that is to succeed (its own record).
    pub stopped: bool,
}

/// A broken promise, naming the request (or log) that broke it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Violation {
    /// The request never reached a final phase for its generation.
    NotFinal { name: String, phase: String },
    /// More than one stop call reached DLI for one (uid, generation).
    RepeatedCall {
        name: String,
        uid: String,
        generation: i64,
        calls: usize,
    },
    /// No stop call reached DLI although the status does not say the outcome is unknown.
    MissingCall { name: String, phase: String },
    /// Phase `Unknown` without the `OutcomeUnknown` reason that tells the user what to do.
    UnknownWithoutReason { name: String, reason: String },
    /// The status says a job stopped (or DLI accepted its stop) but the stand-in never stopped it.
    FalseSuccess {
        name: String,
        job_id: i64,
        stand_in: String,
    },
    /// An operator process panicked.
    Panic { log: String, line: String },
    /// An operator process exited without being killed.
    OperatorExited { replica: usize, status: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotFinal { name, phase } => {
                write!(f, "{name}: not final (phase {phase})")
            }
            Violation::RepeatedCall {
                name,
                uid,
                generation,
                calls,
            } => write!(
                f,
                "{name} (uid {uid}, generation {generation}): {calls} stop calls reached DLI"
            ),
            Violation::MissingCall { name, phase } => {
                write!(f, "{name}: phase {phase} but no stop call reached DLI")
            }
            Violation::UnknownWithoutReason { name, reason } => {
                write!(f, "{name}: phase Unknown with reason {reason:?}")
            }
            Violation::FalseSuccess {
                name,
                job_id,
                stand_in,
            } => write!(
                f,
                "{name}: claims job {job_id} stopped but the stand-in has it {stand_in}"
            ),
            Violation::Panic { log, line } => write!(f, "panic in {log}: {line}"),
            Violation::OperatorExited { replica, status } => {
                write!(f, "operator replica {replica} exited by itself: {status}")
            }
        }
    }
}

/// Checks every request against the stop calls the stand-in received (`calls`: the job ids of
/// each), the stand-in's own record of each job, and the operator logs (`(name, text)`).
///
/// Requests must use disjoint job ids, so a call maps to the request whose jobs it names.
pub fn check(
    requests: &[Observed],
    calls: &[Vec<i64>],
    stand_in: &BTreeMap<i64, StandInJob>,
    logs: &[(String, String)],
) -> Vec<Violation> {
    let mut violations = Vec::new();
    for request in requests {
        check_request(request, calls, stand_in, &mut violations);
    }
    for (log, text) in logs {
        violations.extend(
            text.lines()
                .filter(|line| line.contains("panicked at"))
                .map(|line| Violation::Panic {
                    log: log.clone(),
                    line: line.to_string(),
                }),
        );
    }
    violations
}

/// DLI's answers an operator process logged as received ("DLI accepted the stop call", "DLI
/// rejected the stop call") whose generation's status records no answer, as
/// `(request, generation)`, for generations no later one replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LostAnswers {
    /// The process that received it was killed later (a later start in its replica's log):
    /// what it held in memory died with it.
    pub with_their_process: Vec<(String, i64)>,
    /// Its process lived on: the promise to write held answers was broken.
    pub by_a_live_process: Vec<(String, i64)>,
}

/// Finds the answers lost between DLI and the status; `logs` are the replicas' logs, each
/// appended to by the processes that replica ran, one after another.
pub fn answers_lost(requests: &[Observed], logs: &[(String, String)]) -> LostAnswers {
    let mut lost = LostAnswers::default();
    for (_, text) in logs {
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if !(line.contains("DLI accepted the stop call")
                || line.contains("DLI rejected the stop call"))
            {
                continue;
            }
            let (Some(name), Some(generation)) =
                (span_field(line, "name"), span_field(line, "generation"))
            else {
                continue;
            };
            let Ok(generation) = generation.parse::<i64>() else {
                continue;
            };
            let Some(request) = requests.iter().find(|r| r.name == name) else {
                continue;
            };
            let submission = request.status.as_ref().and_then(|s| s.submission.as_ref());
            let recorded = submission
                .is_none_or(|s| s.generation != generation || s.state == SubmissionState::Answered);
            if recorded {
                continue;
            }
            let killed = lines[index + 1..]
                .iter()
                .any(|later| later.contains("starting dli-stop-operator"));
            let list = if killed {
                &mut lost.with_their_process
            } else {
                &mut lost.by_a_live_process
            };
            if !list.contains(&(name.clone(), generation)) {
                list.push((name, generation));
            }
        }
    }
    lost
}

/// The value of `field` in a log line's span (`field="value"` or `field=value`), colours and
/// all stripped.
fn span_field(line: &str, field: &str) -> Option<String> {
    let plain: String = strip_ansi(line);
    let start = plain.find(&format!("{field}="))? + field.len() + 1;
    let rest = &plain[start..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => rest.split([' ', '}', ':']).next()?,
    };
    Some(value.to_string())
}

fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// How many of the stop calls name any of `job_ids` (requests use disjoint job ids, so these
/// are the calls made for the generation that has them).
pub fn calls_naming(calls: &[Vec<i64>], job_ids: &[i64]) -> usize {
    calls
        .iter()
        .filter(|call| call.iter().any(|id| job_ids.contains(id)))
        .count()
}

fn check_request(
    request: &Observed,
    calls: &[Vec<i64>],
    stand_in: &BTreeMap<i64, StandInJob>,
    violations: &mut Vec<Violation>,
) {
    let name = request.name.clone();
    let status = request.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or(Phase::Pending);
    let phase_name = phase.as_str().to_string();
    if !phase.is_final() || status.observed_generation != Some(request.generation) {
        violations.push(Violation::NotFinal {
            name: name.clone(),
            phase: phase_name.clone(),
        });
    }
    // An earlier generation may have had its call or been replaced before it; never two.
    for (index, job_ids) in request.superseded_job_ids.iter().enumerate() {
        let made = calls_naming(calls, job_ids);
        if made > 1 {
            violations.push(Violation::RepeatedCall {
                name: name.clone(),
                uid: request.uid.clone(),
                generation: i64::try_from(index).unwrap_or(i64::MAX - 1) + 1,
                calls: made,
            });
        }
    }
    let made = calls_naming(calls, &request.job_ids);
    if made > 1 {
        violations.push(Violation::RepeatedCall {
            name: name.clone(),
            uid: request.uid.clone(),
            generation: request.generation,
            calls: made,
        });
    }
    let ready_reason = conditions::find(&status.conditions, READY)
        .map(|c| c.reason.clone())
        .unwrap_or_default();
    if phase == Phase::Unknown {
        if ready_reason != reason::OUTCOME_UNKNOWN {
            violations.push(Violation::UnknownWithoutReason {
                name: name.clone(),
                reason: ready_reason,
            });
        }
    } else if made == 0 && phase.is_final() && ready_reason != reason::STOP_NEVER_SENT {
        violations.push(Violation::MissingCall {
            name: name.clone(),
            phase: phase_name,
        });
    }
    for result in &status.results {
        let says_stopped = result.is_success == Some(true)
            || result
                .state
                .as_deref()
                .is_some_and(|s| classify_job_state(s) == JobStateClass::Stopped);
        if !says_stopped {
            continue;
        }
        // Judged by what the stand-in did, never by how the operator reads job statuses.
        let job = stand_in.get(&result.job_id);
        if !job.is_some_and(|job| job.stopped) || made == 0 {
            violations.push(Violation::FalseSuccess {
                name: name.clone(),
                job_id: result.job_id,
                stand_in: job.map_or_else(
                    || "unknown".to_string(),
                    |job| format!("{} and never took a stop for it", job.status),
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dli_stop_operator::api::JobResult;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn observed(name: &str, jobs: &[i64], phase: Phase, reason: &str) -> Observed {
        Observed {
            name: name.to_string(),
            uid: format!("uid-{name}"),
            generation: 1,
            job_ids: jobs.to_vec(),
            superseded_job_ids: Vec::new(),
            status: Some(JobStopRequestStatus {
                observed_generation: Some(1),
                phase: Some(phase),
                results: jobs
                    .iter()
                    .map(|&job_id| JobResult {
                        job_id,
                        is_success: Some(phase == Phase::Succeeded),
                        state: None,
                        ..JobResult::default()
                    })
                    .collect(),
                conditions: vec![Condition {
                    type_: READY.to_string(),
                    status: (phase == Phase::Succeeded).to_string(),
                    reason: reason.to_string(),
                    message: String::new(),
                    observed_generation: Some(1),
                    last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
                }],
                ..JobStopRequestStatus::default()
            }),
        }
    }

    fn stopped(jobs: &[i64]) -> BTreeMap<i64, StandInJob> {
        jobs.iter()
            .map(|&id| {
                let job = StandInJob {
                    status: "job_cancel_success".to_string(),
                    stopped: true,
                };
                (id, job)
            })
            .collect()
    }

    #[test]
    fn one_call_per_succeeded_request_passes() {
        let requests = [
            observed("a", &[1, 2], Phase::Succeeded, "JobsStopped"),
            observed("b", &[3], Phase::Succeeded, "StopDelivered"),
        ];
        let calls = vec![vec![1, 2], vec![3]];
        assert_eq!(check(&requests, &calls, &stopped(&[1, 2, 3]), &[]), vec![]);
    }

    #[test]
    fn a_second_call_for_the_same_generation_is_caught() {
        let requests = [observed("a", &[1], Phase::Succeeded, "JobsStopped")];
        let calls = vec![vec![1], vec![1]];
        let violations = check(&requests, &calls, &stopped(&[1]), &[]);
        assert!(matches!(
            violations.as_slice(),
            [Violation::RepeatedCall { calls: 2, .. }]
        ));
    }

    #[test]
    fn each_earlier_generation_may_have_had_one_call_but_not_two() {
        let mut respecified = observed("a", &[5], Phase::Succeeded, "JobsStopped");
        respecified.generation = 3;
        respecified.superseded_job_ids = vec![vec![1, 2], vec![3]];
        if let Some(status) = respecified.status.as_mut() {
            status.observed_generation = Some(3);
        }
        let stand_in = stopped(&[1, 2, 3, 5]);
        // Generation 1 had its call, generation 2 was replaced before it, 3 has its own.
        let calls = vec![vec![1, 2], vec![5]];
        assert_eq!(
            check(std::slice::from_ref(&respecified), &calls, &stand_in, &[]),
            vec![]
        );
        let calls = vec![vec![1, 2], vec![3], vec![3], vec![5]];
        assert_eq!(
            check(&[respecified], &calls, &stand_in, &[]),
            vec![Violation::RepeatedCall {
                name: "a".into(),
                uid: "uid-a".into(),
                generation: 2,
                calls: 2,
            }]
        );
    }

    #[test]
    fn success_without_a_call_is_caught_but_unknown_without_one_is_allowed() {
        let requests = [
            observed("a", &[1], Phase::Succeeded, "JobsStopped"),
            observed("b", &[2], Phase::Unknown, reason::OUTCOME_UNKNOWN),
        ];
        let running: BTreeMap<i64, StandInJob> = [1, 2]
            .into_iter()
            .map(|id| {
                let job = StandInJob {
                    status: "job_running".to_string(),
                    stopped: false,
                };
                (id, job)
            })
            .collect();
        let violations = check(&requests, &[], &running, &[]);
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(matches!(violations[0], Violation::MissingCall { .. }));
        assert!(matches!(
            violations[1],
            Violation::FalseSuccess { job_id: 1, .. }
        ));
    }

    /// A job that ended on its own reads as stopped to the operator's classification; only
    /// the stand-in's record tells whether a stop call stopped it.
    #[test]
    fn success_is_judged_by_what_the_stand_in_did() {
        let requests = [observed("a", &[1], Phase::Succeeded, "JobsStopped")];
        let ended_by_itself: BTreeMap<i64, StandInJob> = [(
            1,
            StandInJob {
                status: "job_finish".to_string(),
                stopped: false,
            },
        )]
        .into_iter()
        .collect();
        let violations = check(&requests, &[vec![1]], &ended_by_itself, &[]);
        assert!(
            matches!(
                violations.as_slice(),
                [Violation::FalseSuccess { job_id: 1, .. }]
            ),
            "{violations:?}"
        );
    }

    #[test]
    fn a_stop_never_sent_needs_no_call() {
        let requests = [observed("a", &[1], Phase::Failed, "StopNeverSent")];
        assert_eq!(check(&requests, &[], &stopped(&[]), &[]), vec![]);
    }

    #[test]
    fn unknown_must_say_outcome_unknown() {
        let requests = [observed("a", &[1], Phase::Unknown, "DliUnavailable")];
        let violations = check(&requests, &[vec![1]], &stopped(&[1]), &[]);
        assert!(matches!(
            violations.as_slice(),
            [Violation::UnknownWithoutReason { .. }]
        ));
    }

    #[test]
    fn requests_left_in_flight_are_not_final() {
        let requests = [observed("a", &[1], Phase::Confirming, "Confirming")];
        let violations = check(&requests, &[vec![1]], &stopped(&[1]), &[]);
        assert!(matches!(
            violations.as_slice(),
            [Violation::NotFinal { .. }]
        ));
    }

    #[test]
    fn an_answer_logged_but_not_recorded_is_lost() {
        let mut answered = observed("a", &[1], Phase::Succeeded, "JobsStopped");
        if let Some(status) = answered.status.as_mut() {
            status.submission = Some(dli_stop_operator::api::Submission {
                generation: 1,
                state: SubmissionState::Answered,
                ..dli_stop_operator::api::Submission::default()
            });
        }
        let mut resolved = answered.clone();
        resolved.name = "b".into();
        if let Some(submission) = resolved.status.as_mut().and_then(|s| s.submission.as_mut()) {
            submission.state = SubmissionState::Ambiguous;
        }
        let line = |name: &str| {
            format!(
                "\u{1b}[2m2026-01-01T00:00:00Z\u{1b}[0m  INFO \u{1b}[1mreconcile\u{1b}[0m{{namespace=\"ns\" name=\"{name}\" generation=1}}: x: DLI accepted the stop call request_id=\"r\"\n"
            )
        };
        let logs = [("op.log".to_string(), line("a") + &line("b"))];
        let lost = answers_lost(&[answered.clone(), resolved.clone()], &logs);
        assert_eq!(lost.by_a_live_process, vec![("b".to_string(), 1)]);
        assert!(lost.with_their_process.is_empty());

        let killed = line("b") + "INFO dli_stop_operator::run: starting dli-stop-operator\n";
        let lost = answers_lost(&[answered, resolved], &[("op.log".to_string(), killed)]);
        assert_eq!(lost.with_their_process, vec![("b".to_string(), 1)]);
        assert!(lost.by_a_live_process.is_empty());
    }

    #[test]
    fn panics_in_logs_are_reported() {
        let logs = [(
            "operator-0.log".to_string(),
            "ok\nthread 'tokio-runtime-worker' panicked at src/x.rs:1:1:\nboom".to_string(),
        )];
        let violations = check(&[], &[], &BTreeMap::new(), &logs);
        assert!(matches!(violations.as_slice(), [Violation::Panic { .. }]));
    }
}

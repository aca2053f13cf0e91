//! One reconcile of a `JobStopRequest`: the once-per-generation protocol, step by step (the
//! step numbers are those of the README's "How it works").
//! Decisions live in `plan` and `status` (pure); this module only reads, calls and writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, warn};

use super::Context;
use super::connections::{ConnectionProblem, RequestConnection};
use super::dli_calls::{self, CallOutcome};
use super::error::Error;
use super::events;
use super::plan::{self, Step};
use super::status::{self as transition, JobObservation, JobVerdict};
use crate::api::{JobStopRequest, JobStopRequestStatus, Phase, SubmissionState};
use crate::dli::DliClient;
use crate::metrics::ReconcileResult;

/// How many job-detail calls one request makes at once.
const DETAIL_CONCURRENCY: usize = 8;
/// Writes of one call's result before it is left for job detail to resolve, and the pause
/// after a failed first write (doubling with each try, as retries of the call do).
const RESULT_WRITE_TRIES: u32 = 4;
const RESULT_WRITE_PAUSE: Duration = Duration::from_millis(500);

pub async fn reconcile(request: Arc<JobStopRequest>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_step(&request, &ctx).await;
    ctx.metrics
        .reconcile(reconcile_result(&result), started.elapsed());
    if result.is_ok() {
        ctx.error_streaks
            .succeeded(request.uid().as_deref().unwrap_or_default());
    }
    result
}

/// How a reconcile ended, for the metrics: a requeue means a step is still to come.
fn reconcile_result(result: &Result<Action, Error>) -> ReconcileResult {
    match result {
        Ok(action) if *action == Action::await_change() => ReconcileResult::Success,
        Ok(_) => ReconcileResult::Requeue,
        Err(_) => ReconcileResult::Error,
    }
}

async fn reconcile_step(request: &Arc<JobStopRequest>, ctx: &Context) -> Result<Action, Error> {
    if request.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    // The cached copy is older than what is stored, which the operator cannot read.
    if ctx
        .invalid
        .contains(request.uid().as_deref().unwrap_or_default())
    {
        return Ok(Action::await_change());
    }
    let generation = request.meta().generation.unwrap_or_default();
    let step = plan::next_step(
        request.status.as_ref(),
        generation,
        &ctx.holder,
        Timestamp::now(),
        ctx.settings.claim_grace,
    );
    match step {
        Step::CallDone => after_call(request, ctx, generation).await,
        Step::Resolve => resolve(request, ctx, generation).await,
        Step::WaitForClaimant(wait) => {
            info!(
                wait_seconds = wait.as_secs(),
                "another operator process holds a fresh claim; waiting for it"
            );
            Ok(Action::requeue(wait))
        }
        Step::Submit => submit(request, ctx, generation).await,
    }
}

/// Steps 3 to 5: claim, call once, record the outcome.
async fn submit(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
) -> Result<Action, Error> {
    let Some(connection) = connection_or_pending(request, ctx, generation).await? else {
        return Ok(Action::requeue(ctx.settings.connection_retry));
    };
    let outside = connection.scope.outside(&request.spec.job_ids);
    if !outside.is_empty() {
        return refuse_jobs_outside_scope(request, ctx, generation, &outside).await;
    }
    let dli = connection.dli;
    let old = request.status.clone().unwrap_or_default();
    let claimed_status = transition::claim(&old, &request.spec, generation, &ctx.holder, &now());
    let claimed = match write_status(ctx, request, claimed_status.clone()).await {
        Ok(Some(claimed)) => claimed,
        Ok(None) => {
            info!("the claim lost a race with another writer; starting over");
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        // The write may have landed with its answer lost. Without this check the next
        // reconcile would find an unanswered claim of ours and resolve a call never made.
        Err(error) => match reread_own_claim(ctx, request, &claimed_status).await {
            Some(claimed) => claimed,
            None => return Err(error),
        },
    };
    let attempts = claimed
        .status
        .as_ref()
        .and_then(|s| s.submission.as_ref())
        .map_or(1, |s| s.attempts);
    info!(
        attempts,
        jobs = request.spec.job_ids.len(),
        "generation claimed; calling DLI batch stop"
    );

    let outcome = dli_calls::batch_stop(&dli, &ctx.metrics, &request.spec).await;
    let now = now();
    let base = claimed.status.clone().unwrap_or_default();
    let (next, action) = match outcome {
        CallOutcome::Delivered(answer) => {
            info!(
                request_id = answer.request_id.as_deref().unwrap_or(""),
                "DLI accepted the stop call"
            );
            let status = transition::delivered(&base, &request.spec, generation, &answer, &now);
            (status, None)
        }
        CallOutcome::Rejected { error, request_id } => {
            warn!(code = error.code.as_deref().unwrap_or(""), message = %error.message, "DLI rejected the stop call");
            let status =
                transition::rejected(&base, &request.spec, generation, error, request_id, &now);
            (status, None)
        }
        CallOutcome::NotDelivered {
            why,
            message,
            retry_after,
        } => {
            let delay = plan::retry_backoff(
                attempts,
                ctx.settings.retry_initial_backoff,
                ctx.settings.retry_max_backoff,
                retry_after,
            );
            warn!(attempts, retry_in_seconds = delay.as_secs(), %message, "the stop call did not reach DLI; retrying");
            let status = transition::not_delivered(&base, generation, why, &message, delay, &now);
            (status, Some(Action::requeue(delay)))
        }
        CallOutcome::Ambiguous { message } => {
            warn!(%message, "the stop call may have reached DLI without an answer; resolving read-only");
            let status = transition::ambiguous(&base, generation, &message, &now);
            (
                status,
                Some(Action::requeue(ctx.settings.confirm_poll_interval)),
            )
        }
    };
    let written = write_result(ctx, &claimed, generation, next).await?;
    match action {
        Some(action) => Ok(action),
        None => Ok(follow_up(ctx, &written)),
    }
}

/// Step 4: an unanswered claim. Never resend; ask DLI for the jobs' states instead.
async fn resolve(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
) -> Result<Action, Error> {
    let dli = match ctx.connections.for_request(request).await {
        Ok(connection) => connection.dli,
        Err(problem) => return Err(Error::Connection(problem)),
    };
    let observations = observe(&dli, ctx, &request.spec.job_ids).await?;
    let old = request.status.clone().unwrap_or_default();
    let next = transition::resolved(&old, &request.spec, generation, &observations, &now());
    if next.phase == Some(Phase::Unknown) {
        warn!("the outcome of the stop call is unknown; it will not be sent again");
    }
    match write_status(ctx, request, next).await? {
        Some(written) => Ok(follow_up(ctx, &written)),
        None => Ok(Action::requeue(Duration::from_secs(1))),
    }
}

/// Step 5 and TTL: the call for this generation is done.
async fn after_call(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
) -> Result<Action, Error> {
    let status = request.status.clone().unwrap_or_default();
    if status.phase == Some(Phase::Confirming) {
        return confirm(request, ctx, generation, &status).await;
    }
    expire(request, ctx, &status).await
}

/// Step 5: poll job detail for the jobs not yet settled, until stopped or timed out.
async fn confirm(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
    status: &JobStopRequestStatus,
) -> Result<Action, Error> {
    let timeout =
        Duration::from_secs(u64::try_from(request.spec.confirm().timeout_seconds).unwrap_or(0));
    let timed_out = answered_for(status) >= timeout;
    let pending: Vec<i64> = status
        .results
        .iter()
        .filter(|r| transition::job_verdict(r, true) == JobVerdict::Pending)
        .map(|r| r.job_id)
        .collect();
    let observed = match ctx.connections.for_request(request).await {
        Ok(connection) => observe(&connection.dli, ctx, &pending).await,
        Err(problem) => Err(Error::Connection(problem)),
    };
    // Once the timeout has passed, DLI being unreachable must not keep the request open.
    let observations = match observed {
        Ok(observations) => observations,
        Err(error) if timed_out => {
            warn!(%error, "cannot read the jobs' states; confirmation timed out");
            Vec::new()
        }
        Err(error) => return Err(error),
    };
    let next = transition::confirmed(
        status,
        &request.spec,
        generation,
        &observations,
        timed_out,
        &now(),
    );
    match write_status(ctx, request, next).await? {
        Some(written) => Ok(follow_up(ctx, &written)),
        None => Ok(Action::requeue(Duration::from_secs(1))),
    }
}

/// What to do after a status was written: poll again, wait for the TTL, or wait for a change.
fn follow_up(ctx: &Context, request: &JobStopRequest) -> Action {
    let Some(status) = request.status.as_ref() else {
        return Action::await_change();
    };
    match status.phase {
        Some(Phase::Confirming) => {
            let timeout = Duration::from_secs(
                u64::try_from(request.spec.confirm().timeout_seconds).unwrap_or(0),
            );
            let since_answer = answered_for(status);
            let delay = plan::confirm_poll_delay(since_answer, ctx.settings.confirm_poll_interval);
            Action::requeue(
                delay
                    .min(timeout.saturating_sub(since_answer))
                    .max(Duration::from_secs(1)),
            )
        }
        Some(phase) if phase.is_final() => {
            ttl_remaining(request, status).map_or_else(Action::await_change, Action::requeue)
        }
        _ => Action::await_change(),
    }
}

/// Deletes a finished request whose `ttlSecondsAfterFinished` has passed.
async fn expire(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    status: &JobStopRequestStatus,
) -> Result<Action, Error> {
    if !status.phase.is_some_and(Phase::is_final) {
        return Ok(Action::await_change());
    }
    match ttl_remaining(request, status) {
        None => Ok(Action::await_change()),
        Some(remaining) if !remaining.is_zero() => Ok(Action::requeue(remaining)),
        Some(_) => {
            let api: Api<JobStopRequest> =
                Api::namespaced(ctx.client.clone(), &request.namespace().unwrap_or_default());
            // The version this decision was made on: a user who changed the spec (a new
            // nonce) since then must get the new generation sent, not a deleted request.
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: request.uid(),
                    resource_version: request.resource_version(),
                }),
                ..DeleteParams::default()
            };
            match api.delete(&request.name_any(), &params).await {
                Ok(_) => {
                    info!("ttlSecondsAfterFinished passed; request deleted");
                    Ok(Action::await_change())
                }
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(Action::await_change()),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    info!(
                        "the request changed since it was read; deciding again on the new version"
                    );
                    Ok(Action::requeue(Duration::from_secs(1)))
                }
                Err(source) => Err(Error::Delete(source)),
            }
        }
    }
}

fn ttl_remaining(request: &JobStopRequest, status: &JobStopRequestStatus) -> Option<Duration> {
    let ttl =
        Duration::from_secs(u64::try_from(request.spec.ttl_seconds_after_finished?).unwrap_or(0));
    let finished = status.finished_at.as_ref()?;
    let elapsed =
        Duration::try_from(Timestamp::now().duration_since(finished.0)).unwrap_or(Duration::ZERO);
    Some(ttl.saturating_sub(elapsed))
}

fn answered_for(status: &JobStopRequestStatus) -> Duration {
    let since = status.submission.as_ref().and_then(|s| {
        s.submitted_at
            .as_ref()
            .or(s.last_attempt_at.as_ref())
            .or(s.claimed_at.as_ref())
    });
    since.map_or(Duration::ZERO, |t| {
        Duration::try_from(Timestamp::now().duration_since(t.0)).unwrap_or(Duration::ZERO)
    })
}

/// The request's connection, or `None` after recording why there is none.
async fn connection_or_pending(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
) -> Result<Option<RequestConnection>, Error> {
    let (reason, message) = match ctx.connections.for_request(request).await {
        Ok(connection) => return Ok(Some(connection)),
        Err(ConnectionProblem::Invalid(message)) => {
            (transition::reason::CONNECTION_INVALID, message)
        }
        Err(ConnectionProblem::NotAllowed { reason, message }) => (reason, message),
        Err(problem) => return Err(Error::Connection(problem)),
    };
    warn!(reason, %message, "no usable DLI connection; the request waits");
    let old = request.status.clone().unwrap_or_default();
    let next = transition::waiting_for_connection(
        &old,
        &request.spec,
        generation,
        reason,
        &message,
        &now(),
    );
    write_status(ctx, request, next).await?;
    Ok(None)
}

/// Ends the generation without a claim or a call: its connection may not stop some of its jobs.
async fn refuse_jobs_outside_scope(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
    outside: &[i64],
) -> Result<Action, Error> {
    let message = format!(
        "the connection may not stop job(s) {}: they are outside its Secret's allowedJobIds; \
         nothing was sent. Remove them from spec.jobIds, or have the Secret's owner widen \
         allowedJobIds and change spec.nonce",
        outside
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    warn!(outside = ?outside, "jobs outside the connection's allowedJobIds; refused without a call");
    let old = request.status.clone().unwrap_or_default();
    let next =
        transition::jobs_not_allowed(&old, &request.spec, generation, outside, &message, &now());
    match write_status(ctx, request, next).await? {
        Some(written) => Ok(follow_up(ctx, &written)),
        None => Ok(Action::requeue(Duration::from_secs(1))),
    }
}

/// Job detail for each id; a job DLI no longer knows is an observation without a status, and
/// a job whose detail has no status is left out (nothing was observed).
async fn observe(
    dli: &DliClient,
    ctx: &Context,
    job_ids: &[i64],
) -> Result<Vec<JobObservation>, Error> {
    let observations: Vec<Option<JobObservation>> = futures::stream::iter(job_ids.iter().copied())
        .map(|job_id| dli_calls::job_detail(dli, &ctx.metrics, job_id))
        .buffer_unordered(DETAIL_CONCURRENCY)
        .try_collect()
        .await
        .map_err(Error::JobDetail)?;
    Ok(observations.into_iter().flatten().collect())
}

/// Writes `next` if it differs from the object's status, guarded by the object's
/// resourceVersion. Returns the written object, or `None` on a conflict.
async fn write_status(
    ctx: &Context,
    request: &JobStopRequest,
    next: JobStopRequestStatus,
) -> Result<Option<JobStopRequest>, Error> {
    if request.status.as_ref() == Some(&next) {
        return Ok(Some(request.clone()));
    }
    let api: Api<JobStopRequest> =
        Api::namespaced(ctx.client.clone(), &request.namespace().unwrap_or_default());
    let mut object = request.clone();
    object.metadata.managed_fields = None;
    object.status = Some(next);
    match api
        .replace_status(&request.name_any(), &PostParams::default(), &object)
        .await
    {
        Ok(written) => {
            if let Some(status) = written.status.as_ref() {
                for (result, count) in
                    transition::newly_finished_jobs(request.status.as_ref(), status, &request.spec)
                {
                    ctx.metrics.job_finished(result, count);
                }
            }
            if let Some(transition) = written
                .status
                .as_ref()
                .and_then(|status| events::transition(request.status.as_ref(), status))
            {
                ctx.announcer.announce(written.object_ref(&()), transition);
            }
            Ok(Some(written))
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(source) => Err(Error::StatusWrite(source)),
    }
}

/// The object as stored, if it carries exactly the claim this process just tried to write.
async fn reread_own_claim(
    ctx: &Context,
    request: &JobStopRequest,
    claim: &JobStopRequestStatus,
) -> Option<JobStopRequest> {
    let api: Api<JobStopRequest> =
        Api::namespaced(ctx.client.clone(), &request.namespace().unwrap_or_default());
    let stored = api.get_status(&request.name_any()).await.ok()?;
    // The whole record, times included: an earlier try of ours for the same generation has
    // the same holder, attempt count and state when this claim was built from a stale cache.
    let stored_claim = stored.status.as_ref().and_then(|s| s.submission.as_ref());
    let ours = stored.uid() == request.uid() && stored_claim == claim.submission.as_ref();
    ours.then_some(stored)
}

/// Step 2: writes the result of a claimed try. A conflict (labels changed, a watch was stale)
/// or a failed write (the API server briefly unavailable) re-reads the object and writes again
/// while the claim is still ours and unresolved, a few times: a result dropped here could only
/// be resolved through job detail later, which turns a certain outcome into a guess.
async fn write_result(
    ctx: &Context,
    claimed: &JobStopRequest,
    generation: i64,
    next: JobStopRequestStatus,
) -> Result<JobStopRequest, Error> {
    let api: Api<JobStopRequest> =
        Api::namespaced(ctx.client.clone(), &claimed.namespace().unwrap_or_default());
    let mut target = claimed.clone();
    let mut tries = 0;
    loop {
        tries += 1;
        let failure = match write_status(ctx, &target, next.clone()).await {
            Ok(Some(written)) => return Ok(written),
            Ok(None) => Error::ClaimLost,
            Err(error) => error,
        };
        if tries == RESULT_WRITE_TRIES {
            return Err(failure);
        }
        if !matches!(failure, Error::ClaimLost) {
            warn!(error = %failure, "writing the stop call's result failed; trying again");
            let pause = plan::retry_backoff(
                tries,
                RESULT_WRITE_PAUSE,
                ctx.settings.retry_max_backoff,
                None,
            );
            tokio::time::sleep(pause).await;
        }
        let fresh = match api.get_status(&claimed.name_any()).await {
            Ok(fresh) => fresh,
            Err(source) => {
                warn!(error = %source, "re-reading the request failed; trying again");
                continue;
            }
        };
        // A failed write may have landed with its answer lost.
        if fresh.uid() == claimed.uid() && fresh.status.as_ref() == Some(&next) {
            return Ok(fresh);
        }
        if !claim_still_open(&fresh, claimed, generation, &ctx.holder) {
            return Err(Error::ClaimLost);
        }
        target = fresh;
    }
}

/// Whether `fresh` still carries this holder's unanswered claim on `generation`.
fn claim_still_open(
    fresh: &JobStopRequest,
    claimed: &JobStopRequest,
    generation: i64,
    holder: &str,
) -> bool {
    fresh.uid() == claimed.uid()
        && fresh
            .status
            .as_ref()
            .and_then(|s| s.submission.as_ref())
            .is_some_and(|s| {
                s.generation == generation
                    && s.state != SubmissionState::Answered
                    && s.claimed_by.as_deref() == Some(holder)
            })
        && fresh.status.as_ref().and_then(|s| s.observed_generation) != Some(generation)
}

/// Now, in whole seconds: what the API server stores, so a status read back equals the one
/// written.
fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

#[cfg(test)]
mod tests {
    use http::{Method, Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::json;

    use super::*;
    use crate::controller::tenancy::DefaultConnectionNamespaces;
    use crate::controller::{DefaultConnection, Settings, Tenancy};
    use crate::dli::ClientOptions;
    use crate::metrics::Metrics;
    use crate::sim::{DliSim, SimConfig};

    #[test]
    fn a_reconcile_that_asks_to_come_back_counts_as_a_requeue() {
        let done: Result<Action, Error> = Ok(Action::await_change());
        let later: Result<Action, Error> = Ok(Action::requeue(Duration::from_secs(10)));
        let failed: Result<Action, Error> = Err(Error::ClaimLost);
        assert_eq!(reconcile_result(&done), ReconcileResult::Success);
        assert_eq!(reconcile_result(&later), ReconcileResult::Requeue);
        assert_eq!(reconcile_result(&failed), ReconcileResult::Error);
    }

    async fn body_of(request: Request<Body>) -> Vec<u8> {
        request
            .into_body()
            .collect_bytes()
            .await
            .expect("request body")
            .to_vec()
    }

    fn settings() -> Settings {
        Settings {
            claim_grace: Duration::from_secs(40),
            retry_initial_backoff: Duration::from_secs(1),
            retry_max_backoff: Duration::from_secs(10),
            confirm_poll_interval: Duration::from_secs(1),
            connection_retry: Duration::from_secs(5),
            error_retry: Duration::from_secs(5),
            submitting_event_delay: Duration::from_secs(2),
        }
    }

    type ApiServer = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    /// The stand-in with job 7 running, a context whose API server the test plays, and a
    /// request for job 7 at generation 1 with `status` as the cache last saw it.
    async fn claim_fixture(
        status: serde_json::Value,
    ) -> (DliSim, Context, JobStopRequest, ApiServer) {
        let sim = DliSim::start(SimConfig::default()).await.expect("stand-in");
        sim.add_ak_sk("AK", "SK");
        sim.add_running_jobs(&[7]);
        let endpoint = sim.endpoint();
        let project = sim.project_id();
        let connection = crate::connection::Connection::from_env(|key| match key {
            "DLI_ENDPOINT" => Some(endpoint.clone()),
            "DLI_PROJECT_ID" => Some(project.clone()),
            "DLI_ACCESS_KEY" => Some("AK".into()),
            "DLI_SECRET_KEY" => Some("SK".into()),
            _ => None,
        })
        .expect("connection");
        let dli = DliClient::new(connection, ClientOptions::default()).expect("client");
        let (service, api_server) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let ctx = Context::new(
            kube::Client::new(service, "default"),
            DefaultConnection::Env(Arc::new(dli)),
            ClientOptions::default(),
            Tenancy {
                operator_namespace: "ns".into(),
                default_connection_namespaces: DefaultConnectionNamespaces::All,
                allow_private_endpoints: false,
            },
            Metrics::new(),
            "op-a".into(),
            settings(),
        );
        let request: JobStopRequest = serde_json::from_value(json!({
            "apiVersion": "dli.stop-operator.io/v1alpha1",
            "kind": "JobStopRequest",
            "metadata": {"name": "r", "namespace": "ns", "uid": "u-1", "generation": 1, "resourceVersion": "1"},
            "spec": {"jobIds": [7], "confirm": {"enabled": false}},
            "status": status,
        }))
        .expect("request");
        (sim, ctx, request, api_server)
    }

    /// Answers the re-read that follows a failed write with `stored`.
    async fn answer_reread(api_server: &mut ApiServer, stored: &serde_json::Value) {
        let (reread, answer) = api_server.next_request().await.expect("re-read");
        assert_eq!(reread.method(), Method::GET);
        answer.send_response(Response::new(Body::from(
            serde_json::to_vec(stored).expect("json"),
        )));
    }

    /// Runs one reconcile while `server` plays the API server: it must make exactly one stop
    /// call and write generation 1 as Succeeded.
    async fn one_call_and_succeeded(
        sim: &DliSim,
        ctx: Context,
        request: JobStopRequest,
        server: tokio::task::JoinHandle<JobStopRequest>,
    ) {
        reconcile(Arc::new(request), Arc::new(ctx))
            .await
            .expect("reconcile succeeds");
        let written = server.await.expect("api server task");
        assert_eq!(sim.total_stop_calls(), 1);
        let status = written.status.expect("status");
        assert_eq!(status.phase, Some(Phase::Succeeded));
        assert_eq!(status.observed_generation, Some(1));
    }

    /// Stores the next status write as sent and returns it; refuses everything after it
    /// (Events and the like): the reconcile must not depend on them.
    async fn accept_the_result_and_refuse_the_rest(mut api_server: ApiServer) -> JobStopRequest {
        let (result, answer) = api_server.next_request().await.expect("result write");
        assert_eq!(result.method(), Method::PUT);
        let written = body_of(result).await;
        answer.send_response(Response::new(Body::from(written.clone())));
        tokio::spawn(async move {
            while let Some((_, answer)) = api_server.next_request().await {
                let mut refused = Response::new(Body::from(b"{}".to_vec()));
                *refused.status_mut() = StatusCode::FORBIDDEN;
                answer.send_response(refused);
            }
        });
        serde_json::from_slice::<JobStopRequest>(&written).expect("written object")
    }

    /// The API server stores the claim but its answer is lost: the operator must notice the
    /// claim is its own and make the call, not resolve (and report Unknown for) a call it
    /// never made.
    #[tokio::test]
    async fn a_claim_whose_answer_was_lost_still_makes_the_one_call() {
        let (sim, ctx, request, mut api_server) = claim_fixture(json!(null)).await;

        let server = tokio::spawn(async move {
            let (claim, answer) = api_server.next_request().await.expect("claim write");
            assert_eq!(claim.method(), Method::PUT);
            let mut stored: serde_json::Value =
                serde_json::from_slice(&body_of(claim).await).expect("json");
            stored["metadata"]["resourceVersion"] = json!("2");
            answer.send_error("connection reset after the write");

            answer_reread(&mut api_server, &stored).await;

            accept_the_result_and_refuse_the_rest(api_server).await
        });

        one_call_and_succeeded(&sim, ctx, request, server).await;
    }

    /// The API server fails the result write once: the result is written again, not left for
    /// job detail to guess.
    #[tokio::test]
    async fn a_failed_result_write_is_tried_again() {
        let (sim, ctx, request, mut api_server) = claim_fixture(json!(null)).await;
        let server = tokio::spawn(async move {
            let (claim, answer) = api_server.next_request().await.expect("claim write");
            let mut claimed: serde_json::Value =
                serde_json::from_slice(&body_of(claim).await).expect("json");
            claimed["metadata"]["resourceVersion"] = json!("2");
            answer.send_response(Response::new(Body::from(
                serde_json::to_vec(&claimed).expect("json"),
            )));

            let (_, answer) = api_server.next_request().await.expect("result write");
            let mut unavailable = Response::new(Body::from(
                serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1",
                    "status": "Failure", "message": "etcd leader changed", "code": 500}))
                .expect("json"),
            ));
            *unavailable.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            answer.send_response(unavailable);

            answer_reread(&mut api_server, &claimed).await;

            accept_the_result_and_refuse_the_rest(api_server).await
        });

        one_call_and_succeeded(&sim, ctx, request, server).await;
    }

    /// A request whose reconciles keep failing is retried later and later, up to the longest
    /// retry delay; one success starts over.
    #[tokio::test]
    async fn repeated_failures_back_off_until_a_reconcile_succeeds() {
        let (_sim, ctx, request, _api_server) = claim_fixture(json!(null)).await;
        let (ctx, request) = (Arc::new(ctx), Arc::new(request));
        let fail =
            || crate::controller::error_policy(request.clone(), &Error::ClaimLost, ctx.clone());
        let seconds = |s| Action::requeue(Duration::from_secs(s));
        assert_eq!(
            [fail(), fail(), fail()],
            [seconds(5), seconds(10), seconds(10)]
        );
        ctx.error_streaks.succeeded("u-1");
        assert_eq!(fail(), seconds(5));
    }

    /// A finished request past its TTL is deleted only as it was read: the delete carries the
    /// uid and the resourceVersion, and a conflict (the user changed `nonce` meanwhile) makes
    /// the operator look again instead of giving up.
    #[tokio::test]
    async fn ttl_deletion_is_preconditioned_on_the_version_read() {
        let (_sim, ctx, mut request, mut api_server) = claim_fixture(json!({
            "observedGeneration": 1,
            "phase": "Succeeded",
            "finishedAt": "2020-01-01T00:00:00Z",
        }))
        .await;
        request.spec.ttl_seconds_after_finished = Some(60);
        request.metadata.resource_version = Some("7".into());
        let server = tokio::spawn(async move {
            let (delete, answer) = api_server.next_request().await.expect("delete");
            assert_eq!(delete.method(), Method::DELETE);
            let options: serde_json::Value =
                serde_json::from_slice(&body_of(delete).await).expect("delete options");
            let mut conflict = Response::new(Body::from(
                serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1",
                    "status": "Failure", "reason": "Conflict", "code": 409,
                    "message": "the object has been modified"}))
                .expect("json"),
            ));
            *conflict.status_mut() = StatusCode::CONFLICT;
            answer.send_response(conflict);
            options
        });
        let action = reconcile(Arc::new(request), Arc::new(ctx))
            .await
            .expect("reconcile");
        let options = server.await.expect("api server task");
        assert_eq!(
            options["preconditions"],
            json!({"uid": "u-1", "resourceVersion": "7"})
        );
        assert_eq!(action, Action::requeue(Duration::from_secs(1)));
    }

    /// A stale cache shows try 1 undelivered while try 2 of ours is stored and was sent. A
    /// failed claim write for "try 2" must not take that stored claim for the one just
    /// written: that would send the same try twice.
    #[tokio::test]
    async fn an_earlier_try_of_ours_is_not_taken_for_a_claim_whose_answer_was_lost() {
        let (sim, ctx, request, mut api_server) = claim_fixture(json!({
            "submission": {"generation": 1, "claimedBy": "op-a", "claimedAt": "2020-01-01T00:00:00Z",
                "lastAttemptAt": "2020-01-01T00:00:00Z", "state": "NotDelivered", "attempts": 1},
        }))
        .await;
        let server = tokio::spawn(async move {
            let (claim, answer) = api_server.next_request().await.expect("claim write");
            assert_eq!(claim.method(), Method::PUT);
            let mut stored: serde_json::Value =
                serde_json::from_slice(&body_of(claim).await).expect("json");
            answer.send_error("connection reset before the write");

            // What is stored: try 2 of the same holder, claimed earlier and already sent.
            stored["metadata"]["resourceVersion"] = json!("5");
            stored["status"]["submission"]["lastAttemptAt"] = json!("2020-01-01T00:00:30Z");
            answer_reread(&mut api_server, &stored).await;
        });

        let result = reconcile(Arc::new(request), Arc::new(ctx)).await;
        server.await.expect("api server task");
        assert!(result.is_err(), "the failed claim write is reported");
        assert_eq!(sim.total_stop_calls(), 0, "try 2 was not sent again");
    }
}

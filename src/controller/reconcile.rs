//! One reconcile of a `JobStopRequest`: the once-per-generation protocol, step by step (the
//! step numbers are those of the README's "How it works").
//! Decisions live in `plan`, `status`, `adoption` and `deadlines` (pure); this module only
//! reads, calls and writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::{Instrument, info, info_span, warn};

use super::Context;
use super::adoption;
use super::capped::cap_status;
use super::deadlines;
use super::dli_access::calls::{self as dli_calls, CallOutcome};
use super::dli_access::clients::{ConnectionProblem, RequestConnection};
use super::error::Error;
use super::events;
use super::held_answers::HeldAnswer;
use super::job_scope;
use super::plan::{self, Situation, Step};
use super::selected;
use super::status::{self as transition, CallJob, JobObservation, JobVerdict, NotDeliveredReason};
use crate::api::conditions::reason;
use crate::api::{JobStopRequest, JobStopRequestStatus, Phase};
use crate::dli::{DliClient, DliError};
use crate::error_chain::ErrorChain;
use crate::metrics::ReconcileResult;
use crate::selection::{self, Selection};

/// How many job-detail calls one request makes at once.
const DETAIL_CONCURRENCY: usize = 8;
/// Writes (and re-reads) of a held answer within one reconcile, and the pause after a failed
/// one (doubling with each). The answer stays held after the last: the next reconcile goes on.
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
    let uid = request.uid().unwrap_or_default();
    // The cached copy is older than what is stored, which the operator cannot read.
    if ctx.invalid.contains(&uid) {
        return Ok(Action::await_change());
    }
    // An answer of ours not yet written comes first: it is the truth about its try, and
    // nothing may be decided (resolving, claiming again) as if it did not exist.
    if let Some(held) = ctx.held.get(&uid) {
        return deliver(request, ctx, held).await;
    }
    let generation = request.meta().generation.unwrap_or_default();
    let fingerprint = adoption::fingerprint(&request.spec);
    let step = plan::next_step(
        request.status.as_ref(),
        &Situation {
            generation,
            fingerprint: &fingerprint,
            holder: &ctx.holder,
            now: Timestamp::now(),
            claim_grace: ctx.settings.try_bounds.claim_grace(),
            delivery_deadline: request.spec.delivery_deadline(),
        },
    );
    match step {
        Step::CallDone => after_call(request, ctx, generation).await,
        Step::Adopt => adopt(request, ctx, generation).await,
        Step::Resolve => resolve(request, ctx, generation).await,
        Step::WaitForClaimant(wait) => {
            info!(
                wait_seconds = wait.as_secs(),
                "another operator process holds a fresh claim; waiting for it"
            );
            Ok(Action::requeue(wait))
        }
        Step::GiveUp => give_up(request, ctx, generation).await,
        Step::Submit => submit(request, ctx, generation).await,
    }
}

/// Steps 1 to 3: everything a try needs first (connection, credential), the claim, then the
/// call, once, only if the claim landed in time; its outcome is held until it is written.
async fn submit(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
) -> Result<Action, Error> {
    let Some(connection) = connection_or_pending(request, ctx, generation).await? else {
        return Ok(Action::requeue(ctx.settings.connection_retry));
    };
    let dli = connection.dli;
    let old = request.status.clone().unwrap_or_default();
    // A selector is resolved once per generation, before its claim records the ids; every
    // later try of the generation sends what the claim recorded.
    let selection = match &request.spec.job_selector {
        Some(selector) if !transition::selection_recorded(&old, generation) => {
            let selection = match selection::resolve(&dli, selector).await {
                Ok(selection) => selection,
                Err(error) => {
                    let unsent = UnsentTry::JobsNotListed(&error);
                    return record_unsent_try(request, ctx, generation, unsent).await;
                }
            };
            info!(
                selected = selection.stop.len(),
                skipped = selection.skipped.len(),
                unmatched_names = selection.unmatched_names.len(),
                "spec.jobSelector resolved"
            );
            if let Some(verdict) = selected::forced_verdict(&selection) {
                return end_by_selection(request, ctx, generation, &selection, verdict).await;
            }
            Some(selection)
        }
        _ => None,
    };
    let jobs = match &selection {
        Some(selection) => transition::selected_jobs(selection),
        None => transition::call_jobs(&old, &request.spec),
    };
    let job_ids = transition::call_job_ids(&jobs);
    let outside = connection.scope.outside(&job_ids);
    if !outside.is_empty() {
        return refuse_jobs_outside_scope(request, ctx, generation, &jobs, &outside).await;
    }
    let credential = match dli.credential().await {
        Ok(credential) => credential,
        Err(error) => {
            return record_unsent_try(request, ctx, generation, UnsentTry::NoCredential(&error))
                .await;
        }
    };
    let claim_started = Instant::now();
    let claimed_status = match &selection {
        Some(selection) => transition::claim_selection(
            &old,
            &request.spec,
            selection,
            generation,
            &ctx.holder,
            &now(),
        ),
        None => transition::claim(&old, &request.spec, generation, &ctx.holder, &now()),
    };
    let attempt = claimed_status.submission.as_ref().map_or(1, |s| s.attempts);
    let claimed = match write_status(ctx, request, claimed_status.clone()).await {
        Ok(Some(claimed)) => claimed,
        Ok(None) => {
            info!("the claim lost a race with another writer; starting over");
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        // The write may have landed with its answer lost. Without this check the next
        // reconcile would find an unanswered claim of ours and resolve a call never made.
        Err(error) => match reread_own_claim(ctx, request, &claimed_status).await {
            Reread::Ours(claimed) => *claimed,
            Reread::NotOurs => return Err(error),
            Reread::Unknown => {
                // If it is stored, it is closed as the try that was not sent it is.
                let not_sent = CallOutcome::NotDelivered {
                    why: NotDeliveredReason::ClaimDelayed,
                    message: "the claim's write was not confirmed, so the call was not sent"
                        .to_string(),
                    retry_after: None,
                };
                let held = held_answer(ctx, request, &claimed_status, attempt, not_sent);
                ctx.held.hold(held);
                return Err(error);
            }
        },
    };
    let claim_age = claim_started.elapsed();
    let outcome = if ctx.settings.try_bounds.may_send(claim_age) {
        info!(
            attempts = attempt,
            jobs = job_ids.len(),
            "generation claimed; calling DLI batch stop"
        );
        dli_calls::batch_stop(
            &dli,
            &ctx.metrics,
            &credential,
            &job_ids,
            request.spec.trigger_savepoint,
        )
        .await
    } else {
        // Another process may already count this claim's time as spent.
        warn!(
            claim_ms = claim_age.as_millis() as u64,
            "the claim took too long to be written; not calling DLI on it"
        );
        CallOutcome::NotDelivered {
            why: NotDeliveredReason::ClaimDelayed,
            message: format!(
                "the claim took {}s to be written, too long to call DLI on it",
                claim_age.as_secs()
            ),
            retry_after: None,
        }
    };
    log_outcome(&outcome, attempt);
    let held = held_answer(
        ctx,
        request,
        claimed.status.as_ref().unwrap_or(&claimed_status),
        attempt,
        outcome,
    );
    ctx.held.hold(held.clone());
    deliver(&claimed, ctx, held).await
}

fn log_outcome(outcome: &CallOutcome, attempts: u32) {
    match outcome {
        CallOutcome::Delivered(answer) => info!(
            request_id = answer.request_id.as_deref().unwrap_or(""),
            "DLI accepted the stop call"
        ),
        CallOutcome::Rejected { error, .. } => warn!(
            code = error.code.as_deref().unwrap_or(""),
            message = %error.message,
            "DLI rejected the stop call"
        ),
        CallOutcome::NotDelivered { message, .. } => {
            warn!(attempts, %message, "the stop call did not reach DLI; retrying");
        }
        CallOutcome::Ambiguous { message } => warn!(
            %message,
            "the stop call may have reached DLI without an answer; resolving read-only"
        ),
    }
}

/// The answer of try `attempt` of the claim in `claimed`, ready to be held.
fn held_answer(
    ctx: &Context,
    request: &JobStopRequest,
    claimed: &JobStopRequestStatus,
    attempt: u32,
    outcome: CallOutcome,
) -> HeldAnswer {
    let at = now();
    let retry_after = match &outcome {
        CallOutcome::NotDelivered { retry_after, .. } => *retry_after,
        _ => None,
    };
    HeldAnswer {
        uid: request.uid().unwrap_or_default(),
        namespace: request.namespace().unwrap_or_default(),
        name: request.name_any(),
        generation: request.meta().generation.unwrap_or_default(),
        attempt,
        spec: request.spec.clone(),
        retry_in: next_try_in(ctx, request, claimed, attempt, retry_after),
        outcome,
        at,
    }
}

/// When to try again after try `attempt` did not reach DLI: backoff, but never past the
/// generation's delivery deadline.
fn next_try_in(
    ctx: &Context,
    request: &JobStopRequest,
    claimed: &JobStopRequestStatus,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let backoff = plan::retry_backoff(
        attempt,
        ctx.settings.retry_initial_backoff,
        ctx.settings.retry_max_backoff,
        retry_after,
    );
    let claimed_at = claimed
        .submission
        .as_ref()
        .and_then(|s| s.claimed_at.as_ref());
    let until_deadline = plan::until_delivery_deadline(
        claimed_at,
        Timestamp::now(),
        request.spec.delivery_deadline(),
    );
    plan::next_try_in(backoff, until_deadline)
}

/// Why a try ended before its claim: nothing was sent.
#[derive(Clone, Copy)]
enum UnsentTry<'a> {
    /// No IAM token for the stop call.
    NoCredential(&'a DliError),
    /// DLI's job list, which a selector is resolved from, could not be read.
    JobsNotListed(&'a DliError),
}

/// A try that failed before its claim: recorded in one write as a try that did not reach DLI,
/// so the status, an Event and the log say why the request waits. No claim is needed first,
/// because nothing can have been sent; a selector is resolved again on the next try.
async fn record_unsent_try(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
    unsent: UnsentTry<'_>,
) -> Result<Action, Error> {
    let old = request.status.clone().unwrap_or_default();
    let at = now();
    let tried = transition::claim(&old, &request.spec, generation, &ctx.holder, &at);
    let attempt = tried.submission.as_ref().map_or(1, |s| s.attempts);
    let (error, message) = match unsent {
        UnsentTry::NoCredential(error) => {
            let message = ErrorChain(error).to_string();
            warn!(attempts = attempt, error = %message, "no credential for the stop call; it was not sent");
            (error, message)
        }
        UnsentTry::JobsNotListed(error) => {
            let message = format!(
                "listing the jobs of spec.jobSelector failed: {}",
                ErrorChain(error)
            );
            warn!(attempts = attempt, error = %message, "the stop was not sent");
            (error, message)
        }
    };
    let delay = next_try_in(ctx, request, &tried, attempt, error.retry_after());
    let next = transition::not_delivered(
        &tried,
        generation,
        dli_calls::not_delivered_reason(error),
        &message,
        delay,
        &at,
    );
    match write_status(ctx, request, next).await? {
        Some(_) => Ok(Action::requeue(delay)),
        None => Ok(Action::requeue(Duration::from_secs(1))),
    }
}

/// Writes a held answer until it lands, or until the stored object shows that the claim it
/// answers is no longer this process's open claim; then the answer is let go. When the API
/// server stays unavailable, the answer stays held and the next reconcile goes on.
async fn deliver(
    object: &JobStopRequest,
    ctx: &Context,
    held: HeldAnswer,
) -> Result<Action, Error> {
    let api: Api<JobStopRequest> =
        Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let mut target = object.clone();
    // Only the stored object, never a cached copy, proves the claim is no longer ours.
    let mut target_is_stored = false;
    let mut tries = 0;
    loop {
        if held.claim_open_in(&target, &ctx.holder) {
            let base = target.status.clone().unwrap_or_default();
            tries += 1;
            match write_status(ctx, &target, held.recorded_on(&base)).await {
                Ok(Some(written)) => {
                    ctx.held.release(&held);
                    return Ok(after_recording(ctx, &held, &written));
                }
                Ok(None) if tries >= RESULT_WRITE_TRIES => {
                    return Ok(Action::requeue(Duration::from_secs(1)));
                }
                Ok(None) => {}
                Err(error) if tries >= RESULT_WRITE_TRIES => return Err(error),
                Err(error) => {
                    warn!(error = %ErrorChain(&error), "writing the stop call's result failed; trying again");
                    tokio::time::sleep(result_write_pause(ctx, tries)).await;
                }
            }
        } else if target_is_stored {
            ctx.held.release(&held);
            info!(
                generation = held.generation,
                attempt = held.attempt,
                "the stored request does not carry the open claim this answer belongs to; letting the answer go"
            );
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        match api.get_status(&object.name_any()).await {
            Ok(stored) => {
                target = stored;
                target_is_stored = true;
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                ctx.held.release(&held);
                return Ok(Action::await_change());
            }
            Err(source) => {
                tries += 1;
                if tries >= RESULT_WRITE_TRIES {
                    return Err(Error::StatusRead(source));
                }
                warn!(error = %source, "re-reading the request failed; trying again");
                tokio::time::sleep(result_write_pause(ctx, tries)).await;
            }
        }
    }
}

/// Writes the answers this process holds outside any reconcile: while another replica leads
/// (the lease decides who calls DLI, not who may record an answer it got) and on the way
/// out. Each lands only on this process's own open claim, as in [`deliver`]; all are tried
/// at once, so the pass takes no longer than one answer's tries.
pub async fn write_held_answers(ctx: &Context) {
    futures::future::join_all(ctx.held.all().into_iter().map(|held| {
        let span = info_span!(
            "held_answer",
            namespace = held.namespace.as_str(),
            name = held.name.as_str(),
            generation = held.generation,
        );
        write_held_answer(ctx, held).instrument(span)
    }))
    .await;
}

async fn write_held_answer(ctx: &Context, held: HeldAnswer) {
    let api: Api<JobStopRequest> = Api::namespaced(ctx.client.clone(), &held.namespace);
    let written = match api.get_status(&held.name).await {
        Ok(stored) => deliver(&stored, ctx, held).await.map(|_| ()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            ctx.held.release(&held);
            Ok(())
        }
        Err(source) => Err(Error::StatusRead(source)),
    };
    if let Err(error) = written {
        warn!(error = %ErrorChain(&error), "the stop call's answer is still to be written; trying again later");
    }
}

fn result_write_pause(ctx: &Context, tries: u32) -> Duration {
    plan::retry_backoff(
        tries,
        RESULT_WRITE_PAUSE,
        ctx.settings.retry_max_backoff,
        None,
    )
}

/// What follows a recorded answer: the next try, resolving, or confirmation and TTL.
fn after_recording(ctx: &Context, held: &HeldAnswer, written: &JobStopRequest) -> Action {
    match held.outcome {
        CallOutcome::NotDelivered { .. } => Action::requeue(held.retry_in),
        CallOutcome::Ambiguous { .. } => Action::requeue(ctx.settings.confirm_poll_interval),
        CallOutcome::Delivered(_) | CallOutcome::Rejected { .. } => follow_up(ctx, written),
    }
}

/// Step 5: an unanswered claim. Never resend; ask DLI for the jobs' states instead, for at
/// most the resolve timeout.
async fn resolve(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
) -> Result<Action, Error> {
    let old = request.status.clone().unwrap_or_default();
    let observed = match ctx.connections.for_request(request).await {
        Ok(connection) => {
            let sent = transition::call_jobs(&old, &request.spec);
            observe(&connection.dli, ctx, &transition::call_job_ids(&sent)).await
        }
        Err(problem) => Err(Error::Connection(problem)),
    };
    let next = match observed {
        Ok(observations) => {
            transition::resolved(&old, &request.spec, generation, &observations, &now())
        }
        Err(error) => {
            let attempt_at = old
                .submission
                .as_ref()
                .and_then(|s| s.last_attempt_at.as_ref().or(s.claimed_at.as_ref()));
            let timeout = ctx.settings.resolve_timeout;
            if !plan::resolving_expired(attempt_at, Timestamp::now(), timeout) {
                return Err(error);
            }
            warn!(error = %ErrorChain(&error), "the jobs' states stayed unreadable; the outcome is unknown");
            deadlines::resolving_gave_up(
                &old,
                &request.spec,
                generation,
                &ErrorChain(&error).to_string(),
                timeout,
                &now(),
            )
        }
    };
    if next.phase == Some(Phase::Unknown) {
        warn!("the outcome of the stop call is unknown; it will not be sent again");
    }
    record(ctx, request, next).await
}

/// The delivery deadline passed with no try reaching DLI: the generation ends, never sent.
async fn give_up(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
) -> Result<Action, Error> {
    warn!("no try reached DLI before the delivery deadline; the stop was never sent");
    let old = request.status.clone().unwrap_or_default();
    let next = deadlines::never_sent(&old, &request.spec, generation, &now());
    record(ctx, request, next).await
}

/// A generation that sends nothing new keeps the outcome of the call already made.
async fn adopt(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
) -> Result<Action, Error> {
    let old = request.status.clone().unwrap_or_default();
    let call_generation = old.submission.as_ref().map_or(0, |s| s.generation);
    info!(
        call_generation,
        "this generation changes nothing sent to DLI; keeping the outcome of the call made"
    );
    let next = adoption::adopted(&old, generation, call_generation);
    record(ctx, request, next).await
}

/// Step 6 and TTL: the call for this generation is done.
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

/// Step 6: poll job detail for the jobs not yet settled, until stopped or timed out.
async fn confirm(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
    status: &JobStopRequestStatus,
) -> Result<Action, Error> {
    let confirm = request.spec.confirm();
    let timed_out = plan::confirmation_timed_out(&request.spec, status, Timestamp::now());
    let pending: Vec<i64> = status
        .results
        .iter()
        .filter(|r| transition::job_verdict(r, confirm.enabled) == JobVerdict::Pending)
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
            warn!(error = %ErrorChain(&error), "cannot read the jobs' states; confirmation timed out");
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
    record(ctx, request, next).await
}

/// What to do after a status was written: poll again, wait for the TTL, or wait for a change.
fn follow_up(ctx: &Context, request: &JobStopRequest) -> Action {
    request
        .status
        .as_ref()
        .and_then(|status| {
            plan::follow_up(
                &request.spec,
                status,
                Timestamp::now(),
                ctx.settings.confirm_poll_interval,
            )
        })
        .map_or_else(Action::await_change, Action::requeue)
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
    match plan::ttl_remaining(&request.spec, status, Timestamp::now()) {
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

/// The request's connection, or `None` after recording why there is none.
async fn connection_or_pending(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
) -> Result<Option<RequestConnection>, Error> {
    let (reason, message) = match ctx.connections.for_request(request).await {
        Ok(connection) => return Ok(Some(connection)),
        Err(ConnectionProblem::Invalid(message)) => (reason::CONNECTION_INVALID, message),
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

/// Ends a selector's generation without a claim or a call, as its selection decided.
async fn end_by_selection(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
    selection: &Selection,
    verdict: transition::Verdict,
) -> Result<Action, Error> {
    info!(
        reason = verdict.reason,
        "the selection ends the generation without a call"
    );
    let old = request.status.clone().unwrap_or_default();
    let next = selected::ended_by_selection(&old, selection, verdict, generation, &now());
    match write_status(ctx, request, next).await? {
        Some(written) => Ok(follow_up(ctx, &written)),
        None => Ok(Action::requeue(Duration::from_secs(1))),
    }
}

/// Ends the generation without a claim or a call: its connection may not stop some of its jobs.
async fn refuse_jobs_outside_scope(
    request: &Arc<JobStopRequest>,
    ctx: &Context,
    generation: i64,
    jobs: &[CallJob],
    outside: &[i64],
) -> Result<Action, Error> {
    let message = job_scope::refusal_message(outside);
    warn!(outside = ?outside, "jobs outside the connection's allowedJobIds; refused without a call");
    let old = request.status.clone().unwrap_or_default();
    let next = transition::jobs_not_allowed(&old, jobs, generation, outside, &message, &now());
    record(ctx, request, next).await
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

/// Writes `next`, its text capped, if it differs from the object's status, guarded by the
/// object's resourceVersion. Returns the written object, or `None` on a conflict.
async fn write_status(
    ctx: &Context,
    request: &JobStopRequest,
    next: JobStopRequestStatus,
) -> Result<Option<JobStopRequest>, Error> {
    let next = cap_status(next);
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
        Ok(mut written) => {
            // Like the cached copies: the next write of this request clones it, and the field
            // list it would carry is never read.
            written.metadata.managed_fields = None;
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

/// Writes `next` and says what follows it; a write that lost a race with another writer is
/// decided again on the newer version.
async fn record(
    ctx: &Context,
    request: &JobStopRequest,
    next: JobStopRequestStatus,
) -> Result<Action, Error> {
    match write_status(ctx, request, next).await? {
        Some(written) => Ok(follow_up(ctx, &written)),
        None => Ok(Action::requeue(Duration::from_secs(1))),
    }
}

/// What the stored object says about a claim whose write failed.
enum Reread {
    /// It carries exactly this claim: the write landed.
    Ours(Box<JobStopRequest>),
    /// It does not: the write did not land (or was overwritten).
    NotOurs,
    /// It could not be read.
    Unknown,
}

/// Reads the object back after the write of `claim` failed.
async fn reread_own_claim(
    ctx: &Context,
    request: &JobStopRequest,
    claim: &JobStopRequestStatus,
) -> Reread {
    let api: Api<JobStopRequest> =
        Api::namespaced(ctx.client.clone(), &request.namespace().unwrap_or_default());
    let Ok(stored) = api.get_status(&request.name_any()).await else {
        return Reread::Unknown;
    };
    // The whole record, times included: an earlier try of ours for the same generation has
    // the same holder, attempt count and state when this claim was built from a stale cache.
    let stored_claim = stored.status.as_ref().and_then(|s| s.submission.as_ref());
    if stored.uid() == request.uid() && stored_claim == claim.submission.as_ref() {
        Reread::Ours(Box::new(stored))
    } else {
        Reread::NotOurs
    }
}

/// Now, in whole seconds: what the API server stores, so a status read back equals the one
/// written.
fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

#[cfg(test)]
mod tests {
    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::json;

    use super::*;
    use crate::api::SubmissionState;
    use crate::api::conditions::{self, READY};
    use crate::controller::played_api_server::{Failure, Op, PlayedApiServer};
    use crate::controller::tenancy::DefaultConnectionNamespaces;
    use crate::controller::{DefaultConnection, Settings, Tenancy};
    use crate::dli::ClientOptions;
    use crate::metrics::Metrics;
    use dli_stop_dev::sim::{DliSim, Fault, Operation, Refusal, SimConfig};

    #[test]
    fn a_reconcile_that_asks_to_come_back_counts_as_a_requeue() {
        let done: Result<Action, Error> = Ok(Action::await_change());
        let later: Result<Action, Error> = Ok(Action::requeue(Duration::from_secs(10)));
        let failed: Result<Action, Error> = Err(Error::ClaimLost);
        assert_eq!(reconcile_result(&done), ReconcileResult::Success);
        assert_eq!(reconcile_result(&later), ReconcileResult::Requeue);
        assert_eq!(reconcile_result(&failed), ReconcileResult::Error);
    }

    fn settings() -> Settings {
        Settings {
            try_bounds: plan::TryBounds::new(Duration::from_secs(5), Duration::from_secs(25)),
            resolve_timeout: Duration::from_secs(600),
            retry_initial_backoff: Duration::from_secs(1),
            retry_max_backoff: Duration::from_secs(10),
            confirm_poll_interval: Duration::from_secs(1),
            connection_retry: Duration::from_secs(5),
            error_retry: Duration::from_secs(5),
            submitting_event_delay: Duration::from_secs(2),
        }
    }

    /// `seconds` ago, as the API server writes times.
    fn ago(seconds: i64) -> String {
        Timestamp::from_second(Timestamp::now().as_second() - seconds)
            .expect("valid timestamp")
            .to_string()
    }

    /// How the operator process under test reaches DLI.
    enum Auth {
        AkSk,
        IamPassword,
    }

    /// The stand-in with job 7 running, an operator process "op-a" whose API server is
    /// played, and request `r` stored at generation 1 with `spec` and `status`.
    struct Fixture {
        sim: DliSim,
        ctx: Arc<Context>,
        api: PlayedApiServer,
    }

    impl Fixture {
        async fn new(spec: serde_json::Value, status: serde_json::Value) -> Fixture {
            Fixture::with(spec, status, Auth::AkSk, settings()).await
        }

        async fn with(
            spec: serde_json::Value,
            status: serde_json::Value,
            auth: Auth,
            settings: Settings,
        ) -> Fixture {
            let sim = DliSim::start(SimConfig::default()).await.expect("stand-in");
            sim.add_ak_sk("AK", "SK");
            sim.add_iam_user("acme", "operator", "pa55word");
            sim.add_running_jobs(&[7]);
            let endpoint = sim.endpoint();
            let project = sim.project_id();
            let connection = crate::dli::connection::Connection::from_env(|key| {
                let value = match (key, &auth) {
                    ("DLI_ENDPOINT", _) | ("DLI_IAM_ENDPOINT", Auth::IamPassword) => {
                        endpoint.as_str()
                    }
                    ("DLI_PROJECT_ID", _) => project.as_str(),
                    ("DLI_ACCESS_KEY", Auth::AkSk) => "AK",
                    ("DLI_SECRET_KEY", Auth::AkSk) => "SK",
                    ("DLI_USERNAME", Auth::IamPassword) => "operator",
                    ("DLI_PASSWORD", Auth::IamPassword) => "pa55word",
                    ("DLI_DOMAIN_NAME", Auth::IamPassword) => "acme",
                    _ => return None,
                };
                Some(value.to_string())
            })
            .expect("connection");
            let dli = DliClient::new(connection, ClientOptions::default()).expect("client");
            let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
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
                settings,
            );
            let api = PlayedApiServer::start(
                handle,
                json!({
                    "apiVersion": "dli.stop-operator.io/v1alpha1",
                    "kind": "JobStopRequest",
                    "metadata": {"name": "r", "namespace": "ns", "uid": "u-1", "generation": 1,
                        "resourceVersion": "1"},
                    "spec": spec,
                    "status": status,
                }),
            );
            Fixture {
                sim,
                ctx: Arc::new(ctx),
                api,
            }
        }

        /// The object as stored now, which is what the watch delivers once it caught up.
        fn stored(&self) -> JobStopRequest {
            self.api.object().expect("the request is stored")
        }

        async fn reconcile(&self, cached: &JobStopRequest) -> Result<Action, Error> {
            reconcile(Arc::new(cached.clone()), self.ctx.clone()).await
        }

        async fn reconcile_stored(&self) -> Result<Action, Error> {
            self.reconcile(&self.stored()).await
        }

        fn ready(&self) -> (String, String, String) {
            let status = self.api.status();
            let ready = conditions::find(&status.conditions, READY).expect("Ready");
            (
                ready.status.clone(),
                ready.reason.clone(),
                ready.message.clone(),
            )
        }
    }

    fn job_7_no_confirm() -> serde_json::Value {
        json!({"jobIds": [7], "confirm": {"enabled": false}})
    }

    /// A selector naming the stand-in's job 7 by its name, confirmation off.
    fn job_7_by_name() -> serde_json::Value {
        json!({"jobSelector": {"names": ["dli-sim-job-7"]}, "confirm": {"enabled": false}})
    }

    /// The claim records the resolved id and name before the call; the call sends it.
    #[tokio::test]
    async fn a_selector_is_resolved_into_the_claim_before_the_call() {
        let fixture = Fixture::new(job_7_by_name(), json!(null)).await;
        fixture.reconcile_stored().await.expect("reconcile");
        let writes = fixture.api.status_writes();
        let claim = writes.first().expect("the claim");
        assert_eq!(
            claim.submission.as_ref().map(|s| s.state),
            Some(SubmissionState::InFlight)
        );
        assert_eq!(
            claim
                .results
                .iter()
                .map(|r| (r.job_id, r.name.as_deref()))
                .collect::<Vec<_>>(),
            vec![(7, Some("dli-sim-job-7"))]
        );
        assert_eq!(fixture.api.status().phase, Some(Phase::Succeeded));
        assert_eq!(fixture.sim.stop_calls(7), 1);
        assert_eq!(fixture.sim.list_calls(), 1);
    }

    /// A later try of a claimed generation sends the ids its claim recorded, even where the
    /// selector would now resolve to nothing, and never lists again.
    #[tokio::test]
    async fn a_retry_sends_the_recorded_ids_without_resolving_again() {
        let not_delivered = json!({"phase": "Submitting", "submission": {"generation": 1,
            "claimedBy": "op-a", "claimedAt": ago(10), "lastAttemptAt": ago(10),
            "state": "NotDelivered", "attempts": 1},
            "results": [{"jobId": 7, "name": "orders"}]});
        let spec = json!({"jobSelector": {"names": ["orders"]}, "confirm": {"enabled": false}});
        let fixture = Fixture::new(spec, not_delivered).await;
        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.sim.list_calls(), 0, "no resolution");
        assert_eq!(fixture.sim.stop_calls(7), 1);
        let status = fixture.api.status();
        assert_eq!(status.phase, Some(Phase::Succeeded));
        assert_eq!(status.results[0].name.as_deref(), Some("orders"));
    }

    /// An unanswered selector claim is resolved read-only through the recorded ids.
    #[tokio::test]
    async fn an_unanswered_selector_claim_is_resolved_through_the_recorded_ids() {
        let unanswered = json!({"phase": "Submitting", "submission": {"generation": 1,
            "claimedBy": "op-b", "claimedAt": ago(600), "lastAttemptAt": ago(600),
            "state": "InFlight", "attempts": 1},
            "results": [{"jobId": 7, "name": "orders"}]});
        let spec = json!({"jobSelector": {"names": ["orders"]}, "confirm": {"enabled": false}});
        let fixture = Fixture::new(spec, unanswered).await;
        fixture.sim.add_job(7, "job_cancel_success");
        fixture.reconcile_stored().await.expect("reconcile");
        let status = fixture.api.status();
        assert_eq!(status.phase, Some(Phase::Succeeded));
        assert_eq!(status.results[0].name.as_deref(), Some("orders"));
        assert_eq!(fixture.sim.detail_calls(), 1);
        assert_eq!(fixture.sim.list_calls(), 0);
        assert_eq!(fixture.sim.total_stop_calls(), 0);
    }

    /// A try recorded before anything was resolved (no token then) resolves on the next try.
    #[tokio::test]
    async fn a_claim_that_recorded_no_jobs_is_resolved_on_the_next_try() {
        let unsent = json!({"phase": "Submitting", "submission": {"generation": 1,
            "claimedBy": "op-a", "claimedAt": ago(10), "lastAttemptAt": ago(10),
            "state": "NotDelivered", "attempts": 1}});
        let fixture = Fixture::new(job_7_by_name(), unsent).await;
        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.sim.list_calls(), 1);
        assert_eq!(fixture.sim.stop_calls(7), 1);
        let status = fixture.api.status();
        assert_eq!(status.submission.map(|s| s.attempts), Some(2));
        assert_eq!(status.results[0].job_id, 7);
    }

    /// Listing fails: the status says why the request waits, no job is recorded, and the
    /// next try resolves the selector and makes the one call.
    #[tokio::test]
    async fn a_failed_listing_is_recorded_as_a_try_not_sent_and_resolved_again() {
        let fixture = Fixture::new(job_7_by_name(), json!(null)).await;
        fixture.sim.inject(
            Operation::ListJobs,
            Fault::GatewayRefuses(Refusal::Unavailable),
        );
        fixture.reconcile_stored().await.expect("reconcile");
        let status = fixture.api.status();
        assert!(status.results.is_empty());
        assert_eq!(
            status.submission.map(|s| s.state),
            Some(SubmissionState::NotDelivered)
        );
        let (ready, why, message) = fixture.ready();
        assert_eq!(
            (ready.as_str(), why.as_str()),
            ("False", reason::DLI_UNAVAILABLE)
        );
        assert!(
            message.contains("listing the jobs of spec.jobSelector failed"),
            "{message}"
        );
        assert_eq!(fixture.sim.total_stop_calls(), 0);
        fixture.reconcile_stored().await.expect("reconcile");
        // The gateway refused the first listing before DLI saw it.
        assert_eq!(fixture.sim.list_calls(), 1);
        assert_eq!(fixture.sim.stop_calls(7), 1);
    }

    /// Nothing the selector names runs: the generation is Ready with no claim and no call.
    #[tokio::test]
    async fn a_selector_with_nothing_running_ends_ready_without_a_claim() {
        let fixture = Fixture::new(job_7_by_name(), json!(null)).await;
        fixture.sim.add_job(7, "job_cancel_success");
        fixture.reconcile_stored().await.expect("reconcile");
        let status = fixture.api.status();
        assert_eq!(status.phase, Some(Phase::Succeeded));
        assert!(status.submission.is_none());
        assert_eq!(status.skipped.len(), 1);
        assert_eq!(fixture.ready().1, "NothingToStop");
        assert_eq!(fixture.sim.total_stop_calls(), 0);
    }

    /// The API server stores the claim but its answer is lost: the operator must notice the
    /// claim is its own and make the call, not resolve (and report Unknown for) a call it
    /// never made.
    #[tokio::test]
    async fn a_claim_whose_answer_was_lost_still_makes_the_one_call() {
        let fixture = Fixture::new(job_7_no_confirm(), json!(null)).await;
        fixture.api.fail(Op::WriteStatus, Failure::AnswerLost, 1);
        let cached = fixture.stored();
        fixture.reconcile(&cached).await.expect("reconcile");
        assert_eq!(fixture.sim.total_stop_calls(), 1);
        let status = fixture.api.status();
        assert_eq!(status.phase, Some(Phase::Succeeded));
        assert_eq!(status.observed_generation, Some(1));
    }

    /// The API server fails the result write once: the result is written again, not left for
    /// job detail to guess.
    #[tokio::test]
    async fn a_failed_result_write_is_tried_again() {
        let fixture = Fixture::new(job_7_no_confirm(), json!(null)).await;
        fixture
            .api
            .fail_after(Op::WriteStatus, 1, Failure::Unavailable, 1);
        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.sim.total_stop_calls(), 1);
        assert_eq!(fixture.api.status().phase, Some(Phase::Succeeded));
        assert_eq!(fixture.sim.detail_calls(), 0, "nothing was resolved");
    }

    /// Another process claimed the generation after the cached copy was read: the claim must
    /// carry the resourceVersion it was decided on, be refused, and a refusal is no claim.
    #[tokio::test]
    async fn the_claim_is_refused_when_the_object_changed_since_it_was_read() {
        let fixture = Fixture::new(job_7_no_confirm(), json!(null)).await;
        let cached = fixture.stored();
        fixture.api.edit(|object| {
            object["status"] = json!({"phase": "Submitting", "submission": {
                "generation": 1, "claimedBy": "op-b", "claimedAt": ago(0),
                "lastAttemptAt": ago(0), "state": "InFlight", "attempts": 1}});
        });
        let action = fixture.reconcile(&cached).await.expect("reconcile");
        assert_eq!(action, Action::requeue(Duration::from_secs(1)));
        assert_eq!(fixture.sim.total_stop_calls(), 0, "op-b makes the call");
        let submission = fixture.api.status().submission.expect("claim");
        assert_eq!(submission.claimed_by.as_deref(), Some("op-b"));
        assert!(fixture.api.status_writes().is_empty());
    }

    /// A stale cache shows try 1 undelivered while try 2 of ours is stored and was sent. A
    /// failed claim write for "try 2" must not take that stored claim for the one just
    /// written: that would send the same try twice.
    #[tokio::test]
    async fn an_earlier_try_of_ours_is_not_taken_for_a_claim_whose_answer_was_lost() {
        let try_1 = json!({"submission": {"generation": 1, "claimedBy": "op-a",
            "claimedAt": ago(20), "lastAttemptAt": ago(20), "state": "NotDelivered",
            "attempts": 1}});
        let fixture = Fixture::new(job_7_no_confirm(), try_1).await;
        let cached = fixture.stored();
        fixture.api.edit(|object| {
            object["status"]["submission"]["state"] = json!("InFlight");
            object["status"]["submission"]["attempts"] = json!(2);
            object["status"]["submission"]["lastAttemptAt"] = json!(ago(10));
        });
        fixture.api.fail(Op::WriteStatus, Failure::Unavailable, 1);
        let result = fixture.reconcile(&cached).await;
        assert!(result.is_err(), "the failed claim write is reported");
        assert_eq!(
            fixture.sim.total_stop_calls(),
            0,
            "try 2 was not sent again"
        );
    }

    /// DLI answered (here: refused the request, `DLI.16001`) and the API server then stays
    /// unavailable for longer than one reconcile's writes. The answer is kept and written by a
    /// later reconcile, never resolved through job detail into `Unknown`.
    #[tokio::test]
    async fn an_answer_is_written_after_the_api_server_comes_back() {
        let fixture = Fixture::new(json!({"jobIds": [9]}), json!(null)).await;
        fixture
            .api
            .fail_after(Op::WriteStatus, 1, Failure::Unavailable, 10);
        fixture.api.fail(Op::Read, Failure::Unavailable, 10);
        let first = fixture.reconcile_stored().await;
        assert!(first.is_err(), "the result could not be written yet");
        assert_eq!(fixture.sim.total_stop_calls(), 1);
        let claimed = fixture.stored();
        assert_eq!(
            claimed
                .status
                .as_ref()
                .and_then(|s| s.submission.as_ref())
                .map(|s| s.state),
            Some(SubmissionState::InFlight)
        );

        fixture.api.heal();
        // The watch shows this process's own unanswered claim: resolving it would guess.
        fixture.reconcile(&claimed).await.expect("reconcile");
        let status = fixture.api.status();
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(
            status.error.and_then(|e| e.code).as_deref(),
            Some("DLI.16001")
        );
        assert_eq!(fixture.sim.detail_calls(), 0, "nothing was resolved");
        assert_eq!(fixture.sim.total_stop_calls(), 1);
        assert!(fixture.ctx.held.get("u-1").is_none(), "written, let go");
    }

    /// The lease moved on while this process held an answer: it is written all the same (on
    /// its own open claim), not left for the new leader to resolve into a guess.
    #[tokio::test]
    async fn a_process_that_no_longer_leads_still_writes_the_answer_it_holds() {
        let fixture = Fixture::new(json!({"jobIds": [9]}), json!(null)).await;
        fixture
            .api
            .fail_after(Op::WriteStatus, 1, Failure::Unavailable, 10);
        fixture.api.fail(Op::Read, Failure::Unavailable, 10);
        assert!(fixture.reconcile_stored().await.is_err());
        fixture.api.heal();

        let (_leader, not_leading) = tokio::sync::watch::channel(false);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let running = crate::controller::run_while_leader(
            fixture.ctx.clone(),
            Some("ns".into()),
            1,
            not_leading,
            shutdown,
        );
        let waiting = async {
            let written = tokio::time::timeout(Duration::from_secs(30), async {
                while fixture.api.status().phase != Some(Phase::Failed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await;
            stop.send_replace(true);
            written
        };
        let ((), written) = tokio::join!(running, waiting);
        assert!(written.is_ok(), "the held answer was never written");
        assert_eq!(
            fixture.api.status().error.and_then(|e| e.code).as_deref(),
            Some("DLI.16001")
        );
        assert_eq!(fixture.sim.detail_calls(), 0);
    }

    /// The held answer's claim was resolved by another process meanwhile: the answer is let
    /// go without a write, and the other process's record stands.
    #[tokio::test]
    async fn a_held_answer_is_let_go_once_its_claim_is_no_longer_ours() {
        let fixture = Fixture::new(job_7_no_confirm(), json!(null)).await;
        fixture
            .api
            .fail_after(Op::WriteStatus, 1, Failure::Unavailable, 10);
        fixture.api.fail(Op::Read, Failure::Unavailable, 10);
        assert!(fixture.reconcile_stored().await.is_err());
        let claimed = fixture.stored();
        fixture.api.heal();
        fixture.api.edit(|object| {
            object["status"]["submission"]["state"] = json!("Ambiguous");
            object["status"]["observedGeneration"] = json!(1);
            object["status"]["phase"] = json!("Unknown");
        });
        let writes = fixture.api.status_writes().len();
        let action = fixture.reconcile(&claimed).await.expect("reconcile");
        assert_eq!(action, Action::requeue(Duration::from_secs(1)));
        assert_eq!(fixture.api.status_writes().len(), writes, "nothing written");
        assert!(fixture.ctx.held.get("u-1").is_none());
        assert_eq!(fixture.api.status().phase, Some(Phase::Unknown));
    }

    /// A claim that took too long to land may already count as spent for other processes: the
    /// call is not made on it; the next try makes it.
    #[tokio::test]
    async fn a_claim_written_too_slowly_is_not_followed_by_the_call() {
        let mut settings = settings();
        settings.try_bounds.send_window = Duration::from_secs(3);
        let fixture = Fixture::with(job_7_no_confirm(), json!(null), Auth::AkSk, settings).await;
        fixture.api.fail(
            Op::WriteStatus,
            Failure::Slow(Duration::from_millis(2500)),
            1,
        );
        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.sim.total_stop_calls(), 0);
        let status = fixture.api.status();
        assert_eq!(
            status.submission.as_ref().map(|s| s.state),
            Some(SubmissionState::NotDelivered)
        );
        assert_eq!(fixture.ready().1, reason::CLAIM_DELAYED);

        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.sim.total_stop_calls(), 1);
        let status = fixture.api.status();
        assert_eq!(status.phase, Some(Phase::Succeeded));
        assert_eq!(status.submission.map(|s| s.attempts), Some(2));
    }

    /// IAM fails: the token is fetched before the claim, so no claim is ever written for a
    /// try that could not be sent, and the failed try is recorded as not delivered.
    #[tokio::test]
    async fn without_a_token_nothing_is_claimed_and_the_try_is_recorded_as_not_sent() {
        let fixture = Fixture::with(
            job_7_no_confirm(),
            json!(null),
            Auth::IamPassword,
            settings(),
        )
        .await;
        fixture
            .sim
            .inject(Operation::IamToken, Fault::DliFails { dli_acted: false });
        let action = fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(action, Action::requeue(Duration::from_secs(1)));
        let writes = fixture.api.status_writes();
        assert_eq!(writes.len(), 1, "{writes:?}");
        assert_eq!(
            writes[0].submission.as_ref().map(|s| s.state),
            Some(SubmissionState::NotDelivered)
        );
        assert_eq!(fixture.ready().1, reason::UNAUTHORIZED);

        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.sim.total_stop_calls(), 1);
        assert_eq!(fixture.api.status().phase, Some(Phase::Succeeded));
    }

    /// A job DLI no longer knows (job detail answers `DLI.16001`) cannot be stopping: its
    /// confirmation ends at once, failed, instead of polling until the timeout.
    #[tokio::test]
    async fn a_job_that_vanished_while_confirming_fails_at_once() {
        let confirming = json!({"observedGeneration": 1, "phase": "Confirming",
            "submission": {"generation": 1, "claimedBy": "op-a", "claimedAt": ago(5),
                "submittedAt": ago(5), "state": "Answered", "attempts": 1},
            "results": [{"jobId": 8, "isSuccess": true}]});
        let fixture = Fixture::new(json!({"jobIds": [8]}), confirming).await;
        fixture.reconcile_stored().await.expect("reconcile");
        let status = fixture.api.status();
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(
            status.results[0].message.as_deref(),
            Some("the job no longer exists in DLI")
        );
    }

    /// A job that never stops does not keep the request confirming for ever.
    #[tokio::test]
    async fn confirmation_ends_at_its_timeout() {
        let confirming = json!({"observedGeneration": 1, "phase": "Confirming",
            "submission": {"generation": 1, "claimedBy": "op-a", "claimedAt": ago(120),
                "submittedAt": ago(120), "state": "Answered", "attempts": 1},
            "results": [{"jobId": 7, "isSuccess": true}]});
        let spec = json!({"jobIds": [7], "confirm": {"timeoutSeconds": 60}});
        let fixture = Fixture::new(spec, confirming).await;
        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.api.status().phase, Some(Phase::Failed));
        assert_eq!(fixture.ready().1, reason::CONFIRM_TIMEOUT);
    }

    /// Tries that keep failing to reach DLI end at the delivery deadline: no call then, and a
    /// status that says the stop was never sent.
    #[tokio::test]
    async fn tries_stop_at_the_delivery_deadline_and_say_the_stop_was_never_sent() {
        let failing = json!({"phase": "Submitting", "submission": {"generation": 1,
            "claimedBy": "op-a", "claimedAt": ago(7200), "lastAttemptAt": ago(60),
            "state": "NotDelivered", "attempts": 9}});
        let fixture = Fixture::new(job_7_no_confirm(), failing).await;
        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.sim.total_stop_calls(), 0);
        let status = fixture.api.status();
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(fixture.ready().1, reason::STOP_NEVER_SENT);
    }

    /// Resolving an unanswered call while job detail keeps failing: retried within the
    /// resolve timeout, `Unknown` with the last error after it.
    #[tokio::test]
    async fn resolving_ends_unknown_with_the_last_error_after_its_timeout() {
        let unanswered = |seconds: i64| {
            json!({"phase": "Submitting", "submission": {"generation": 1, "claimedBy": "op-b",
                "claimedAt": ago(seconds), "lastAttemptAt": ago(seconds), "state": "Ambiguous",
                "attempts": 1}})
        };
        let fixture = Fixture::new(job_7_no_confirm(), unanswered(60)).await;
        fixture.sim.inject(
            Operation::JobDetail,
            Fault::GatewayRefuses(Refusal::Unavailable),
        );
        assert!(fixture.reconcile_stored().await.is_err(), "still trying");
        assert!(fixture.api.status_writes().is_empty());

        let fixture = Fixture::new(job_7_no_confirm(), unanswered(700)).await;
        fixture.sim.inject(
            Operation::JobDetail,
            Fault::GatewayRefuses(Refusal::Unavailable),
        );
        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.api.status().phase, Some(Phase::Unknown));
        let (_, reason, message) = fixture.ready();
        assert_eq!(reason, reason::OUTCOME_UNKNOWN);
        assert!(message.contains("APIGW.0613"), "{message}");
        assert_eq!(fixture.sim.total_stop_calls(), 0);
    }

    /// While resolving, a job whose stop failed proves the stop arrived: a failure, not an
    /// unknown outcome.
    #[tokio::test]
    async fn while_resolving_a_failed_stop_proves_the_call_arrived() {
        let unanswered = json!({"phase": "Submitting", "submission": {"generation": 1,
            "claimedBy": "op-b", "claimedAt": ago(60), "lastAttemptAt": ago(60),
            "state": "Ambiguous", "attempts": 1}});
        let fixture = Fixture::new(job_7_no_confirm(), unanswered).await;
        fixture.sim.add_job(7, "job_cancel_fail");
        fixture.reconcile_stored().await.expect("reconcile");
        let status = fixture.api.status();
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(status.results[0].state.as_deref(), Some("job_cancel_fail"));
        assert_eq!(fixture.sim.total_stop_calls(), 0);
    }

    /// DLI refuses to stop a job that is already stopped; job detail shows it stopped, so it
    /// counts as stopped, with DLI's message kept.
    #[tokio::test]
    async fn a_job_dli_refused_because_it_was_already_stopped_counts_as_stopped() {
        let fixture = Fixture::new(job_7_no_confirm(), json!(null)).await;
        fixture.sim.add_job(7, "job_cancel_success");
        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.api.status().phase, Some(Phase::Confirming));
        fixture.reconcile_stored().await.expect("reconcile");
        let status = fixture.api.status();
        assert_eq!(status.phase, Some(Phase::Succeeded));
        let message = status.results[0].message.clone().unwrap_or_default();
        assert!(message.contains("cannot be stopped"), "{message}");
        assert_eq!(fixture.sim.total_stop_calls(), 1);
    }

    /// Adding `ttlSecondsAfterFinished` changes nothing sent: the new generation keeps the
    /// outcome, no call. Changing `nonce` does send again.
    #[tokio::test]
    async fn only_a_change_to_what_is_sent_makes_a_new_call() {
        let fixture = Fixture::new(job_7_no_confirm(), json!(null)).await;
        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.api.status().phase, Some(Phase::Succeeded));

        fixture
            .api
            .edit(|object| object["spec"]["ttlSecondsAfterFinished"] = json!(3600));
        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.sim.total_stop_calls(), 1, "no second call");
        let status = fixture.api.status();
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(status.phase, Some(Phase::Succeeded));
        let (ready, _, message) = fixture.ready();
        assert_eq!(ready, "True");
        assert!(
            message.starts_with("Generation 2 changes nothing sent to DLI"),
            "{message}"
        );

        fixture
            .api
            .edit(|object| object["spec"]["nonce"] = json!("again"));
        fixture.reconcile_stored().await.expect("reconcile");
        assert_eq!(fixture.sim.total_stop_calls(), 2, "a new nonce sends again");
        assert_eq!(
            fixture.api.status().submission.map(|s| s.generation),
            Some(3)
        );
    }

    /// A request whose reconciles keep failing is retried later and later, up to the longest
    /// retry delay; one success starts over.
    #[tokio::test]
    async fn repeated_failures_back_off_until_a_reconcile_succeeds() {
        let fixture = Fixture::new(job_7_no_confirm(), json!(null)).await;
        let request = Arc::new(fixture.stored());
        let fail = || {
            crate::controller::error_policy(request.clone(), &Error::ClaimLost, fixture.ctx.clone())
        };
        let seconds = |s| Action::requeue(Duration::from_secs(s));
        assert_eq!(
            [fail(), fail(), fail()],
            [seconds(5), seconds(10), seconds(10)]
        );
        fixture.ctx.error_streaks.succeeded("u-1");
        assert_eq!(fail(), seconds(5));
    }

    /// A finished request past its TTL is deleted only as it was read: the user changed
    /// `nonce` since, so the delete is refused and the operator looks again instead of
    /// deleting a request whose new generation was never sent.
    #[tokio::test]
    async fn ttl_deletion_is_preconditioned_on_the_version_read() {
        let finished = json!({"observedGeneration": 1, "phase": "Succeeded",
            "finishedAt": "2020-01-01T00:00:00Z"});
        let spec = json!({"jobIds": [7], "ttlSecondsAfterFinished": 60});
        let fixture = Fixture::new(spec, finished).await;
        let cached = fixture.stored();
        fixture
            .api
            .edit(|object| object["spec"]["nonce"] = json!("again"));
        let action = fixture.reconcile(&cached).await.expect("reconcile");
        assert_eq!(action, Action::requeue(Duration::from_secs(1)));
        assert!(fixture.api.object().is_some(), "not deleted");

        let unchanged = Fixture::new(
            json!({"jobIds": [7], "ttlSecondsAfterFinished": 60}),
            json!({"observedGeneration": 1, "phase": "Succeeded",
                "finishedAt": "2020-01-01T00:00:00Z"}),
        )
        .await;
        unchanged.reconcile_stored().await.expect("reconcile");
        assert!(unchanged.api.object().is_none(), "deleted as read");
    }
}

//! Resolving a `spec.jobSelector` to job ids with DLI's job list. The controller (inside its
//! write-ahead claim) and `preview` both call [`resolve`], so what a preview shows is what the
//! operator stops, given the same jobs in DLI.

mod matching;

pub use matching::{Selection, Target, matches, select, stoppable};

use std::collections::BTreeSet;

use crate::api::{JobSelector, MAX_JOB_IDS};
use crate::dli::{DliClient, DliError, JobDetail, JobFilter, JobList};

/// Jobs per list call: DLI's largest page.
pub const PAGE_SIZE: u32 = 100;
/// Pages read per listing at most (100,000 jobs), so an answer that never ends the paging
/// cannot keep a reconcile going for ever; a listing that does not end by then is an error,
/// never a partial selection.
const MAX_PAGES: u64 = 1000;

/// The listings a selector needs: with a queue, the queue once (DLI's name filter added when
/// there is one name); without, each name once. Filters are hints; [`select`] decides.
pub fn listings(selector: &JobSelector) -> Vec<JobFilter> {
    match (&selector.queue_name, selector.names.as_slice()) {
        (Some(queue), names) => vec![JobFilter {
            name: match names {
                [only] => Some(only.clone()),
                _ => None,
            },
            queue_name: Some(queue.clone()),
        }],
        (None, names) => names
            .iter()
            .map(|name| JobFilter {
                name: Some(name.clone()),
                queue_name: None,
            })
            .collect(),
    }
}

/// Lists the jobs `selector` may name (every page of each listing) and selects among them.
/// Listing ends early once more jobs were selected than one request may stop.
pub async fn resolve(dli: &DliClient, selector: &JobSelector) -> Result<Selection, DliError> {
    resolve_with(selector, |filter, offset| async move {
        dli.list_jobs_page(&filter, PAGE_SIZE, offset).await
    })
    .await
}

/// [`resolve`] with `list_page(filter, offset)` reading one page of `PAGE_SIZE` jobs.
async fn resolve_with<F, Page>(
    selector: &JobSelector,
    mut list_page: F,
) -> Result<Selection, DliError>
where
    F: FnMut(JobFilter, u64) -> Page,
    Page: Future<Output = Result<JobList, DliError>>,
{
    let mut listed: Vec<JobDetail> = Vec::new();
    let mut to_stop = BTreeSet::new();
    for filter in listings(selector) {
        let mut offset = 0_u64;
        let mut ended = false;
        for _ in 0..MAX_PAGES {
            let page = list_page(filter.clone(), offset).await?;
            let received = u64::try_from(page.jobs.len()).unwrap_or(u64::MAX);
            for job in page.jobs.into_iter().filter(|job| matches(selector, job)) {
                if job.status.as_ref().is_some_and(stoppable) {
                    to_stop.insert(job.job_id);
                }
                listed.push(job);
            }
            offset += received;
            let last_page = received < u64::from(PAGE_SIZE)
                || page.total_count.is_some_and(|total| offset >= total);
            if last_page || to_stop.len() > MAX_JOB_IDS {
                ended = true;
                break;
            }
        }
        if !ended {
            return Err(DliError::Malformed {
                status: 200,
                detail: format!(
                    "the job list did not end within {MAX_PAGES} pages of {PAGE_SIZE} jobs"
                ),
                request_id: None,
            });
        }
    }
    Ok(select(selector, &listed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(names: &[&str], queue: Option<&str>) -> JobSelector {
        JobSelector {
            names: names.iter().map(|n| (*n).to_string()).collect(),
            queue_name: queue.map(str::to_string),
        }
    }

    fn filter(name: Option<&str>, queue: Option<&str>) -> JobFilter {
        JobFilter {
            name: name.map(str::to_string),
            queue_name: queue.map(str::to_string),
        }
    }

    #[test]
    fn a_queue_is_listed_once_with_a_single_name_as_a_hint() {
        assert_eq!(
            listings(&selector(&[], Some("q"))),
            vec![filter(None, Some("q"))]
        );
        assert_eq!(
            listings(&selector(&["a"], Some("q"))),
            vec![filter(Some("a"), Some("q"))]
        );
        assert_eq!(
            listings(&selector(&["a", "b"], Some("q"))),
            vec![filter(None, Some("q"))]
        );
    }

    #[test]
    fn names_without_a_queue_are_listed_one_by_one() {
        assert_eq!(
            listings(&selector(&["a", "b"], None)),
            vec![filter(Some("a"), None), filter(Some("b"), None)]
        );
    }

    fn page(ids: std::ops::Range<i64>, total_count: Option<u64>) -> JobList {
        JobList {
            total_count,
            jobs: ids
                .map(|id| {
                    serde_json::from_value(serde_json::json!({
                        "job_id": id, "name": "orders", "queue_name": "q", "status": "job_running"
                    }))
                    .expect("a job")
                })
                .collect(),
            request_id: None,
            http_status: 200,
        }
    }

    #[tokio::test]
    async fn pages_are_read_until_a_short_one() {
        let mut offsets = Vec::new();
        let selection = resolve_with(&selector(&[], Some("q")), |_, offset| {
            offsets.push(offset);
            let first = i64::try_from(offset).expect("small offset") + 1;
            let size = if offset < 200 { 100 } else { 30 };
            std::future::ready(Ok(page(first..first + size, None)))
        })
        .await
        .expect("the listing ends");
        assert_eq!(offsets, vec![0, 100, 200]);
        assert_eq!(selection.stop.len(), 230);
    }

    /// A list that ignores `offset` and never says how many jobs there are would repeat its
    /// first page for ever: the listing fails rather than select from what it read.
    #[tokio::test]
    async fn a_listing_that_never_ends_is_an_error_not_a_partial_selection() {
        let mut calls = 0_u64;
        let outcome = resolve_with(&selector(&["orders"], None), |_, _| {
            calls += 1;
            std::future::ready(Ok(page(1..101, None)))
        })
        .await;
        assert!(
            matches!(&outcome, Err(DliError::Malformed { detail, .. }) if detail.contains("did not end")),
            "{outcome:?}"
        );
        assert_eq!(calls, MAX_PAGES);
    }
}

//! What a run cost: CPU of the processes on the machine, the API server's request figures
//! and the load the run met.

use std::collections::BTreeMap;

use super::ApiCalls;
use crate::harness::process;
use crate::harness::world::{self, ApiServerFigures};
use crate::testenv::ControlPlane;

/// The resources whose API calls a run counts.
const COUNTED_RESOURCES: [&str; 3] = ["jobstoprequests", "events", "leases"];

pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Milliseconds per event from a histogram's count and sum (in seconds).
pub(super) fn mean_ms(count: Option<f64>, sum_seconds: Option<f64>) -> Option<f64> {
    count
        .zip(sum_seconds)
        .filter(|(count, _)| *count > 0.0)
        .map(|(count, sum)| sum * 1000.0 / count)
}

pub(super) fn per_request(
    before: &ApiServerFigures,
    after: &ApiServerFigures,
    requests: usize,
) -> Vec<ApiCalls> {
    let seconds = world::request_delta(&before.seconds_sum, &after.seconds_sum, &COUNTED_RESOURCES);
    let timed = world::request_delta(
        &before.seconds_count,
        &after.seconds_count,
        &COUNTED_RESOURCES,
    );
    world::request_delta(&before.count, &after.count, &COUNTED_RESOURCES)
        .into_iter()
        .map(|(key, count)| ApiCalls {
            per_request: count / requests.max(1) as f64,
            mean_ms: mean_ms(timed.get(&key).copied(), seconds.get(&key).copied()),
            verb: key.0,
            resource: key.1,
            subresource: key.2,
        })
        .collect()
}

/// CPU time of the control plane's processes and of this harness, to see where a run's
/// time goes on a machine they all share.
pub(super) struct MachineCpu {
    start: Vec<(u32, String, f64)>,
}

impl MachineCpu {
    pub(super) fn snapshot(cp: &ControlPlane) -> MachineCpu {
        let mut pids = process::processes_mentioning(&cp.dir().display().to_string());
        pids.push((std::process::id(), "dli-bench (harness)".to_string()));
        let start = pids
            .into_iter()
            .filter_map(|(pid, name)| Some((pid, name, process::cpu_seconds(pid)?)))
            .collect();
        MachineCpu { start }
    }

    pub(super) fn since(&self) -> BTreeMap<String, f64> {
        self.start
            .iter()
            .filter_map(|(pid, name, start)| {
                Some((name.clone(), process::cpu_seconds(*pid)? - start))
            })
            .collect()
    }
}

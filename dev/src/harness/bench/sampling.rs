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

/// The sum of every sample of `metric`, whatever its labels, on a Prometheus text page.
pub(super) fn sum_of(page: &str, metric: &str) -> f64 {
    page.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.rsplit_once('}')?.1,
                None => rest,
            };
            value
                .strip_prefix(' ')?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_is_summed_over_its_labels_and_not_confused_with_a_longer_name() {
        let page = "\
# HELP apiserver_request_body_size_bytes Apiserver request body size in bytes.
apiserver_request_body_size_bytes_sum{group=\"dli.stop-operator.io\",resource=\"jobstoprequests\",verb=\"update\"} 1500
apiserver_request_body_size_bytes_sum{group=\"\",resource=\"events\",verb=\"create\"} 500
apiserver_request_body_size_bytes_sum_other 7
apiserver_request_body_size_bytes_count{group=\"\",resource=\"events\",verb=\"create\"} 2
process_cpu_seconds_total 12.5
";
        assert_eq!(
            sum_of(page, "apiserver_request_body_size_bytes_sum"),
            2000.0
        );
        assert_eq!(sum_of(page, "process_cpu_seconds_total"), 12.5);
        assert_eq!(sum_of(page, "apiserver_watch_events_sizes_sum"), 0.0);
    }
}

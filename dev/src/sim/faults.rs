//! Faults the stand-in injects: one-shot queues per operation plus an optional seeded random mode.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The DLI/IAM operations faults can be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    BatchStop,
    JobDetail,
    ListJobs,
    IamToken,
}

/// One injected misbehaviour, named by the layer it happens in and its moment.
///
/// A call passes the API gateway, reaches DLI, which acts on it, and DLI's answer passes the
/// gateway on its way back. A fault before forwarding ([`Fault::GatewayRefuses`]) never
/// reaches DLI: the call is not counted and has no effect. Every other fault counts the call
/// as received by DLI, whether or not DLI then acted on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The gateway waits this long before forwarding; then all goes on normally.
    Latency(Duration),
    /// The gateway answers the call itself and never forwards it.
    GatewayRefuses(Refusal),
    /// DLI receives the call (and acts on it when `dli_acted`), then the gateway loses its
    /// answer.
    AnswerLost { loss: Loss, dli_acted: bool },
    /// DLI fails with a 500 (`DLI.0999`), after acting on the call when `dli_acted`.
    DliFails { dli_acted: bool },
    /// DLI acts, and its 200 answer arrives cut short (not JSON).
    MalformedBody,
    /// DLI acts and answers 200 with a valid JSON body of (at least) this many bytes.
    OversizedBody(usize),
    /// Keep the request open until released. `applied: true` applies the operation on arrival
    /// and holds only the answer; `false` applies it on release (even if the client has gone).
    Hold { applied: bool },
}

/// How the gateway refuses a call before forwarding it (its published error codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 429 `APIGW.0308`, the throttling threshold, with `Retry-After` when given.
    Throttled { retry_after_secs: Option<u64> },
    /// 503 `APIGW.0613`: IAM is unavailable, so the gateway cannot authenticate the call.
    Unavailable,
    /// The gateway reads the request and drops the connection without forwarding it.
    Cut,
}

/// What the client gets instead of DLI's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// 502 `APIGW.0201` "Backend unavailable."
    BadGateway,
    /// 504 `APIGW.0201` "Backend timeout."
    GatewayTimeout,
    /// The connection is dropped instead of the answer.
    Cut,
}

impl Fault {
    /// Whether the call gets past the gateway, i.e. DLI receives it.
    pub fn reaches_dli(&self) -> bool {
        !matches!(self, Fault::GatewayRefuses(_))
    }
}

/// Random faults for chaos runs: each call draws one of `kinds` with `probability`.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomFaults {
    pub probability: f64,
    pub seed: u64,
    pub kinds: Vec<Fault>,
}

/// The pending faults of a stand-in.
#[derive(Debug, Default)]
pub struct FaultBook {
    queues: HashMap<Operation, VecDeque<Fault>>,
    random: Option<(RandomFaults, SplitMix64)>,
}

impl FaultBook {
    pub fn push(&mut self, op: Operation, fault: Fault) {
        self.queues.entry(op).or_default().push_back(fault);
    }

    pub fn set_random(&mut self, random: Option<RandomFaults>) {
        self.random = random.map(|r| {
            let rng = SplitMix64(r.seed);
            (r, rng)
        });
    }

    /// Drops the faults still queued for `op`.
    pub fn clear(&mut self, op: Operation) {
        self.queues.remove(&op);
    }

    pub fn pending(&self, op: Operation) -> usize {
        self.queues.get(&op).map_or(0, VecDeque::len)
    }

    /// The fault for the next `op` call: queued ones first, then a random draw.
    pub fn next(&mut self, op: Operation) -> Option<Fault> {
        if let Some(fault) = self.queues.get_mut(&op).and_then(VecDeque::pop_front) {
            return Some(fault);
        }
        let (random, rng) = self.random.as_mut()?;
        if random.kinds.is_empty() || rng.next_f64() >= random.probability {
            return None;
        }
        let len = u64::try_from(random.kinds.len()).ok()?;
        let index = usize::try_from(rng.next_u64() % len).ok()?;
        random.kinds.get(index).cloned()
    }
}

/// A tiny seeded generator: chaos runs must be reproducible from their seed.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        // The top 53 bits fit an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_faults_are_consumed_in_order_per_operation() {
        let mut book = FaultBook::default();
        let dli_fails = Fault::DliFails { dli_acted: false };
        let unavailable = Fault::GatewayRefuses(Refusal::Unavailable);
        book.push(Operation::BatchStop, dli_fails.clone());
        book.push(Operation::BatchStop, Fault::MalformedBody);
        book.push(Operation::JobDetail, unavailable.clone());
        assert_eq!(book.next(Operation::BatchStop), Some(dli_fails));
        assert_eq!(book.next(Operation::JobDetail), Some(unavailable));
        assert_eq!(book.next(Operation::BatchStop), Some(Fault::MalformedBody));
        assert_eq!(book.next(Operation::BatchStop), None);
        assert_eq!(book.next(Operation::ListJobs), None);
    }

    #[test]
    fn only_refusals_before_forwarding_do_not_reach_dli() {
        for refusal in [
            Refusal::Throttled {
                retry_after_secs: Some(1),
            },
            Refusal::Unavailable,
            Refusal::Cut,
        ] {
            assert!(!Fault::GatewayRefuses(refusal).reaches_dli());
        }
        for loss in [Loss::BadGateway, Loss::GatewayTimeout, Loss::Cut] {
            for dli_acted in [true, false] {
                assert!(Fault::AnswerLost { loss, dli_acted }.reaches_dli());
            }
        }
        assert!(Fault::DliFails { dli_acted: false }.reaches_dli());
    }

    fn draws(seed: u64, probability: f64) -> Vec<Option<Fault>> {
        let mut book = FaultBook::default();
        book.set_random(Some(RandomFaults {
            probability,
            seed,
            kinds: vec![
                Fault::DliFails { dli_acted: false },
                Fault::GatewayRefuses(Refusal::Unavailable),
            ],
        }));
        (0..200).map(|_| book.next(Operation::BatchStop)).collect()
    }

    #[test]
    fn random_faults_are_reproducible_from_the_seed_and_follow_the_probability() {
        assert_eq!(draws(7, 0.3), draws(7, 0.3));
        assert_ne!(draws(7, 0.3), draws(8, 0.3));
        let hits = draws(7, 0.3).iter().filter(|f| f.is_some()).count();
        assert!((30..=90).contains(&hits), "{hits} faults in 200 draws");
        assert!(draws(7, 0.0).iter().all(Option::is_none));
        assert!(draws(7, 1.0).iter().all(Option::is_some));
    }

    #[test]
    fn queued_faults_win_over_random_ones() {
        let mut book = FaultBook::default();
        book.set_random(Some(RandomFaults {
            probability: 1.0,
            seed: 1,
            kinds: vec![Fault::DliFails { dli_acted: false }],
        }));
        book.push(Operation::BatchStop, Fault::MalformedBody);
        assert_eq!(book.next(Operation::BatchStop), Some(Fault::MalformedBody));
        assert_eq!(
            book.next(Operation::BatchStop),
            Some(Fault::DliFails { dli_acted: false })
        );
    }
}

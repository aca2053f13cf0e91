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

/// One injected misbehaviour.
///
/// Faults answered "at the gateway" (429, 502, 503) never reach DLI: the call is not counted
/// and has no effect. Every other fault counts the call as received, because the client cannot
/// tell whether it was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Wait, then answer normally.
    Latency(Duration),
    /// 429 from the gateway, with `Retry-After` when given.
    Status429 { retry_after_secs: Option<u64> },
    /// 500 from DLI; the operation has no effect.
    Status500,
    /// 502 from the gateway.
    Status502,
    /// 503 from the gateway.
    Status503,
    /// Read the whole request, then drop the connection without answering. `applied`: whether
    /// the operation took effect before the cut.
    CutAfterRequest { applied: bool },
    /// 200 whose body is not JSON; the operation took effect.
    MalformedBody,
    /// 200 with a valid JSON body of (at least) this many bytes; the operation took effect.
    OversizedBody(usize),
    /// Keep the request open until released. `applied: true` applies the operation on arrival
    /// and holds only the answer; `false` applies it on release (even if the client has gone).
    Hold { applied: bool },
}

impl Fault {
    /// Whether the call gets past the gateway, i.e. DLI may have acted on it.
    pub fn reaches_dli(&self) -> bool {
        !matches!(
            self,
            Fault::Status429 { .. } | Fault::Status502 | Fault::Status503
        )
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
        book.push(Operation::BatchStop, Fault::Status500);
        book.push(Operation::BatchStop, Fault::MalformedBody);
        book.push(Operation::JobDetail, Fault::Status503);
        assert_eq!(book.next(Operation::BatchStop), Some(Fault::Status500));
        assert_eq!(book.next(Operation::JobDetail), Some(Fault::Status503));
        assert_eq!(book.next(Operation::BatchStop), Some(Fault::MalformedBody));
        assert_eq!(book.next(Operation::BatchStop), None);
        assert_eq!(book.next(Operation::ListJobs), None);
    }

    #[test]
    fn gateway_faults_do_not_reach_dli() {
        assert!(
            !Fault::Status429 {
                retry_after_secs: Some(1)
            }
            .reaches_dli()
        );
        assert!(!Fault::Status502.reaches_dli());
        assert!(!Fault::Status503.reaches_dli());
        assert!(Fault::Status500.reaches_dli());
        assert!(Fault::CutAfterRequest { applied: false }.reaches_dli());
    }

    fn draws(seed: u64, probability: f64) -> Vec<Option<Fault>> {
        let mut book = FaultBook::default();
        book.set_random(Some(RandomFaults {
            probability,
            seed,
            kinds: vec![Fault::Status500, Fault::Status503],
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
            kinds: vec![Fault::Status500],
        }));
        book.push(Operation::BatchStop, Fault::MalformedBody);
        assert_eq!(book.next(Operation::BatchStop), Some(Fault::MalformedBody));
        assert_eq!(book.next(Operation::BatchStop), Some(Fault::Status500));
    }
}

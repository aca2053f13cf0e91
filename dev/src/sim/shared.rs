//! The state one running stand-in shares between its connections and its handles.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::sim::server::stopped;
use crate::sim::state::{IdSource, SimState};

#[derive(Debug)]
pub struct Shared {
    state: Mutex<SimState>,
    pub ids: IdSource,
    /// Bumped by every release; held requests wait for it to move past what they saw.
    release: watch::Sender<u64>,
    held: AtomicUsize,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub fn new(state: SimState, shutdown: watch::Receiver<bool>) -> Shared {
        Shared {
            state: Mutex::new(state),
            ids: IdSource::default(),
            release: watch::Sender::new(0),
            held: AtomicUsize::new(0),
            shutdown,
        }
    }

    /// The state, even after a panic elsewhere: every mutation leaves it consistent, so a
    /// poisoned lock carries no half-written data.
    pub fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Lets every request held so far go on.
    pub fn release_held(&self) {
        self.release.send_modify(|generation| *generation += 1);
    }

    /// Waits for the next release; false when the stand-in shut down first.
    pub async fn hold(&self) -> bool {
        let mut release = self.release.subscribe();
        let seen = *release.borrow_and_update();
        let mut shutdown = self.shutdown.clone();
        self.held.fetch_add(1, Ordering::SeqCst);
        let released = tokio::select! {
            released = async { release.wait_for(|generation| *generation > seen).await.is_ok() } => released,
            () = stopped(&mut shutdown) => false,
        };
        self.held.fetch_sub(1, Ordering::SeqCst);
        released
    }
}

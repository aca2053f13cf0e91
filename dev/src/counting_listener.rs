//! A listener on 127.0.0.1 that accepts, counts and hangs up: proof that a connection was, or
//! was never, made to an endpoint the operator must refuse.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpListener;

pub struct CountingListener {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl CountingListener {
    pub async fn start() -> CountingListener {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        CountingListener { port, accepted }
    }

    /// Connections accepted so far.
    pub fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

//! A TCP relay between operator processes and the API server that can be taken down: while
//! down, open connections are dropped and new ones closed at once, so every API-server call
//! fails the way it does when the API server or the network to it goes away.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Relay {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Relays connections to `target`, up.
    pub async fn start(target: SocketAddr) -> std::io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, watching) = watch::channel(true);
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !*watching.borrow() {
                    continue;
                }
                tokio::spawn(relay(inbound, target, watching.clone()));
            }
        });
        Ok(Relay { addr, up, task })
    }

    /// `https://127.0.0.1:<port>`: the API server's address through the relay.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Takes the relay down (dropping every open connection) or brings it back up.
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies both ways until either side closes or the relay goes down.
async fn relay(mut inbound: TcpStream, target: SocketAddr, mut up: watch::Receiver<bool>) {
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}

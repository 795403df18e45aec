//! A TCP proxy on 127.0.0.1 that injects faults between a client and a real server:
//! connections cut after some bytes, HTTP 503 answers, slow forwarding.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::server::{ServerThread, bind};

/// What the proxy does to new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward faithfully.
    None,
    /// Forward, but close both sides once this many bytes went server → client.
    CutDownstreamAfter(u64),
    /// Forward, but close both sides once this many bytes went client → server.
    CutUpstreamAfter(u64),
    /// Answer this many connections with `503 Slow Down` without reaching the server.
    Reject503(usize),
    /// Forward in small chunks with a pause before each.
    Slow(Duration),
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    _thread: ServerThread,
    address: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    connections: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// Starts a proxy to `target`.
    pub fn start(target: SocketAddr) -> anyhow::Result<FaultProxy> {
        let (listener, address) = bind("127.0.0.1:0").context("binding the proxy")?;
        let fault = Arc::new(Mutex::new(Fault::None));
        let connections = Arc::new(AtomicUsize::new(0));
        let (next_fault, accepted) = (fault.clone(), connections.clone());
        let thread = ServerThread::serve("fault-proxy", listener, move |client| {
            accepted.fetch_add(1, Ordering::SeqCst);
            handle(client, target, take_fault(&next_fault))
        })
        .context("starting the proxy")?;
        Ok(FaultProxy {
            _thread: thread,
            address,
            fault,
            connections,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Changes the fault for connections accepted from now on.
    pub fn set(&self, fault: Fault) {
        if let Ok(mut current) = self.fault.lock() {
            *current = fault;
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The fault for a new connection (a `Reject503` counts down to `None`).
fn take_fault(fault: &Mutex<Fault>) -> Fault {
    let Ok(mut current) = fault.lock() else {
        return Fault::None;
    };
    let now = *current;
    if let Fault::Reject503(n) = now {
        *current = if n > 1 {
            Fault::Reject503(n - 1)
        } else {
            Fault::None
        };
    }
    now
}

async fn handle(mut client: TcpStream, target: SocketAddr, fault: Fault) {
    if let Fault::Reject503(_) = fault {
        // Read the request head, answer 503, close: the SDK treats it as throttling.
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let body = "<Error><Code>SlowDown</Code><Message>injected</Message></Error>";
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.write_all(response.as_bytes()).await;
        let _ = client.shutdown().await;
        return;
    }
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (up_limit, down_limit, pause) = match fault {
        Fault::CutUpstreamAfter(n) => (Some(n), None, None),
        Fault::CutDownstreamAfter(n) => (None, Some(n), None),
        Fault::Slow(pause) => (None, None, Some(pause)),
        _ => (None, None, None),
    };
    let upstream = pipe(client_read, server_write, up_limit, pause);
    let downstream = pipe(server_read, client_write, down_limit, pause);
    // Either side ending (or being cut) ends the connection.
    tokio::select! {
        _ = upstream => {},
        _ = downstream => {},
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    limit: Option<u64>,
    pause: Option<Duration>,
) {
    let mut buf = vec![0u8; if pause.is_some() { 1024 } else { 64 * 1024 }];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        let n = match limit {
            Some(limit) if sent + n as u64 >= limit => {
                let rest = (limit - sent) as usize;
                let _ = to.write_all(&buf[..rest]).await;
                // Abrupt end: no more bytes either way.
                return;
            }
            _ => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        sent += n as u64;
    }
    let _ = to.shutdown().await;
}

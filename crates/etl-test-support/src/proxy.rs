//! A TCP proxy on 127.0.0.1 that injects faults between a client and a real server:
//! connections cut after some bytes, HTTP 503 answers, slow forwarding.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

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
    address: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    connections: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `target`.
    pub fn start(target: SocketAddr) -> anyhow::Result<FaultProxy> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the proxy")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let fault = Arc::new(Mutex::new(Fault::None));
        let connections = Arc::new(AtomicUsize::new(0));
        let (shutdown, stop) = oneshot::channel();
        let (thread_fault, thread_connections) = (fault.clone(), connections.clone());
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(accept_loop(
                    listener,
                    target,
                    thread_fault,
                    thread_connections,
                    stop,
                ));
            })?;
        Ok(FaultProxy {
            address,
            fault,
            connections,
            shutdown: Some(shutdown),
            thread: Some(thread),
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

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    target: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    connections: Arc<AtomicUsize>,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                connections.fetch_add(1, Ordering::SeqCst);
                let this_fault = match fault.lock() {
                    Ok(mut current) => {
                        let now = *current;
                        if let Fault::Reject503(n) = now {
                            *current = if n > 1 { Fault::Reject503(n - 1) } else { Fault::None };
                        }
                        now
                    }
                    Err(_) => Fault::None,
                };
                tokio::spawn(handle(client, target, this_fault));
            }
        }
    }
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

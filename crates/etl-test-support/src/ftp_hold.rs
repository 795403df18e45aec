//! A proxy in front of an FTP server (control and passive data connections) that holds
//! one exchange at a chosen point until the test releases it: a signal can then arrive
//! at exactly that point of a client's transfer, with no sleep racing the client.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::ftp_lines::{next_line, passive_reply};
use crate::server::{ServerThread, bind};

/// Where the first transfer through the proxy is held.
#[derive(Debug, Clone, Copy)]
pub enum HoldAt {
    /// A download's data connection, once this many bytes reached the client.
    DataAfter(usize),
    /// The server's reply with this code (e.g. `"226"`, the transfer's completion), before
    /// it reaches the client; the data connection is already closed.
    Reply(&'static str),
    /// The client's command with this verb (e.g. `"QUIT"`), before it reaches the server.
    Command(&'static str),
}

/// A running holding proxy; stops when dropped (a held exchange is then cut).
pub struct HoldingFtpProxy {
    _thread: ServerThread,
    port: u16,
    hold: Arc<Hold>,
}

struct Hold {
    at: HoldAt,
    /// The point was reached (only the first time counts).
    reached: AtomicBool,
    released: watch::Sender<bool>,
}

impl Hold {
    /// Called at the point: the first caller waits for the release.
    async fn wait(&self) {
        if self.reached.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut released = self.released.subscribe();
        let _ = released.wait_for(|released| *released).await;
    }
}

impl HoldingFtpProxy {
    /// Proxies to the FTP server on 127.0.0.1:`server_port`, holding at `at`.
    ///
    /// # Panics
    ///
    /// When the socket cannot be bound (test setup).
    pub fn start(server_port: u16, at: HoldAt) -> HoldingFtpProxy {
        let (listener, address) = bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, server_port));
        let hold = Arc::new(Hold {
            at,
            reached: AtomicBool::new(false),
            released: watch::Sender::new(false),
        });
        let shared = Arc::clone(&hold);
        let thread = ServerThread::serve("ftp-holding-proxy", listener, move |client| {
            session(client, target, Arc::clone(&shared))
        })
        .expect("start the FTP proxy");
        HoldingFtpProxy {
            _thread: thread,
            port: address.port(),
            hold,
        }
    }

    /// The control port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether a transfer reached the hold point.
    pub fn reached(&self) -> bool {
        self.hold.reached.load(Ordering::SeqCst)
    }

    /// Waits until a transfer is held; `false` if none was within `timeout`.
    pub fn wait_reached(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.reached() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Lets the held transfer go on (and every later one pass).
    pub fn release(&self) {
        self.hold.released.send_replace(true);
    }
}

/// The data port a passive reply names: `227 ... (h1,h2,h3,h4,p1,p2)` or
/// `229 ... (|||port|)`; `None` for any other line.
fn passive_port(line: &str) -> Option<u16> {
    if !line.starts_with("227 ") && !line.starts_with("229 ") {
        return None;
    }
    let inside = &line[line.find('(')? + 1..line.rfind(')')?];
    if line.starts_with("229") {
        return inside.trim_matches('|').parse().ok();
    }
    let numbers: Vec<u16> = inside
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect::<Option<_>>()?;
    match numbers[..] {
        [_, _, _, _, high, low] => Some(high * 256 + low),
        _ => None,
    }
}

/// Relays one data connection; the server-to-client side may be held.
async fn relay_data(listener: TcpListener, server: SocketAddr, hold: Arc<Hold>) {
    let Ok((client, _)) = listener.accept().await else {
        return;
    };
    let Ok(upstream) = TcpStream::connect(server).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = upstream.into_split();
    let down = async move {
        let mut sent = 0usize;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut chunk = &buf[..n];
            if let HoldAt::DataAfter(limit) = hold.at
                && sent < limit
                && sent + chunk.len() >= limit
            {
                let (before, after) = chunk.split_at(limit - sent);
                if client_write.write_all(before).await.is_err() {
                    return;
                }
                sent += before.len();
                chunk = after;
                hold.wait().await;
            }
            if client_write.write_all(chunk).await.is_err() {
                return;
            }
            sent += chunk.len();
        }
        let _ = client_write.shutdown().await;
    };
    let up = async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    tokio::join!(down, up);
}

async fn session(client: TcpStream, target: SocketAddr, hold: Arc<Hold>) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (client_read, mut client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    let replies = Arc::clone(&hold);
    let downstream = async move {
        let mut lines = BufReader::new(server_read);
        let mut line = String::new();
        while next_line(&mut lines, &mut line).await {
            let mut reply = line.clone();
            if let Some(port) = passive_port(&line) {
                let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await else {
                    break;
                };
                let Ok(local) = listener.local_addr() else {
                    break;
                };
                reply = passive_reply(line.starts_with("229"), local.port());
                let server = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                tokio::spawn(relay_data(listener, server, Arc::clone(&replies)));
            }
            if let HoldAt::Reply(code) = replies.at
                && line.starts_with(code)
            {
                replies.wait().await;
            }
            if client_write.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
    };
    let upstream = async move {
        let mut lines = BufReader::new(client_read);
        let mut line = String::new();
        while next_line(&mut lines, &mut line).await {
            let verb = line.split_whitespace().next().unwrap_or_default();
            if let HoldAt::Command(held) = hold.at
                && verb.eq_ignore_ascii_case(held)
            {
                hold.wait().await;
            }
            if server_write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = downstream => {},
        () = upstream => {},
    }
}

#[cfg(test)]
mod tests {
    use super::passive_port;
    use crate::ftp_lines::passive_reply;

    #[test]
    fn passive_replies_are_read_and_rewritten() {
        assert_eq!(
            passive_port("227 Entering Passive Mode (127,0,0,1,195,80)\r\n"),
            Some(195 * 256 + 80)
        );
        assert_eq!(
            passive_port("229 Entering Extended Passive Mode (|||50000|)\r\n"),
            Some(50000)
        );
        assert_eq!(passive_port("226 done (1,2,3,4,5,6)\r\n"), None);
        assert_eq!(passive_port(&passive_reply(false, 50000)), Some(50000));
        assert_eq!(passive_port(&passive_reply(true, 50001)), Some(50001));
    }
}

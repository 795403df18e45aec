//! A control-connection proxy in front of an FTP server that counts the commands
//! clients send and, like vsftpd, hides MLSD/MLST (removed from FEAT, refused with 500).
//!
//! Data connections go straight to the real server (its PASV/EPSV replies pass through).
//! For benchmarks it can add a round-trip time to every command (two to PASV/EPSV, whose
//! data connection costs a TCP handshake more), a model of a link with latency.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

use crate::ftp_lines::next_line;
use crate::server::{ServerThread, bind};

/// A running counting proxy; stops when dropped.
pub struct CountingFtpProxy {
    _thread: ServerThread,
    port: u16,
    commands: Arc<Mutex<Vec<String>>>,
}

impl CountingFtpProxy {
    /// Proxies to the FTP server on 127.0.0.1:`server_port`, without MLSD.
    ///
    /// # Panics
    ///
    /// When the socket cannot be bound (test setup).
    pub fn without_mlsd(server_port: u16) -> CountingFtpProxy {
        CountingFtpProxy::start(server_port, true, std::time::Duration::ZERO)
    }

    /// Proxies to 127.0.0.1:`server_port`, hiding MLSD when `hide_mlsd`, answering every
    /// command `round_trip` late (PASV/EPSV twice that).
    ///
    /// # Panics
    ///
    /// When the socket cannot be bound (test setup).
    pub fn start(
        server_port: u16,
        hide_mlsd: bool,
        round_trip: std::time::Duration,
    ) -> CountingFtpProxy {
        let (listener, address) = bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, server_port));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&commands);
        let thread = ServerThread::serve("ftp-counting-proxy", listener, move |client| {
            session(client, target, Arc::clone(&recorded), hide_mlsd, round_trip)
        })
        .expect("start the FTP proxy");
        CountingFtpProxy {
            _thread: thread,
            port: address.port(),
            commands,
        }
    }

    /// The control port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every command verb received so far (upper case, in order).
    pub fn commands(&self) -> Vec<String> {
        self.lines()
            .iter()
            .map(|line| {
                line.split(' ')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase()
            })
            .collect()
    }

    /// Every command line received so far (verb upper case, `PASS` argument hidden).
    pub fn lines(&self) -> Vec<String> {
        self.commands.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// How many times `verb` was received.
    pub fn count(&self, verb: &str) -> usize {
        self.commands().iter().filter(|c| *c == verb).count()
    }

    /// Forgets the commands received so far.
    pub fn clear(&self) {
        if let Ok(mut commands) = self.commands.lock() {
            commands.clear();
        }
    }
}

async fn write_line(to: &Arc<tokio::sync::Mutex<OwnedWriteHalf>>, line: &str) -> bool {
    to.lock().await.write_all(line.as_bytes()).await.is_ok()
}

async fn session(
    client: TcpStream,
    target: SocketAddr,
    commands: Arc<Mutex<Vec<String>>>,
    hide_mlsd: bool,
    round_trip: std::time::Duration,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
    let to_client = Arc::clone(&client_write);
    let downstream = async move {
        let mut lines = BufReader::new(server_read);
        let mut line = String::new();
        while next_line(&mut lines, &mut line).await {
            let feature = line.trim_start().to_ascii_uppercase();
            if hide_mlsd
                && line.starts_with(' ')
                && (feature.starts_with("MLST") || feature.starts_with("MLSD"))
            {
                continue;
            }
            if !write_line(&to_client, &line).await {
                break;
            }
        }
    };
    let upstream = async move {
        let mut lines = BufReader::new(client_read);
        let mut line = String::new();
        while next_line(&mut lines, &mut line).await {
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let argument = line.trim_end().split_once(' ').map_or("", |(_, rest)| rest);
            let recorded = match (verb.as_str(), argument) {
                (_, "") => verb.clone(),
                ("PASS", _) => "PASS ***".to_owned(),
                _ => format!("{verb} {argument}"),
            };
            if let Ok(mut commands) = commands.lock() {
                commands.push(recorded);
            }
            if !round_trip.is_zero() {
                let trips = if verb == "PASV" || verb == "EPSV" {
                    2
                } else {
                    1
                };
                tokio::time::sleep(round_trip * trips).await;
            }
            if hide_mlsd && (verb == "MLSD" || verb == "MLST") {
                if !write_line(&client_write, "500 Unknown command.\r\n").await {
                    break;
                }
                continue;
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

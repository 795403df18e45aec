//! A deliberately broken FTP server: it serves one file at any path, but cuts the data
//! connection after a number of bytes and reports `426` — a transfer dropped mid-RETR.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::ftp_lines::passive_reply;
use crate::server::{ServerThread, bind};

/// A running server; stops when dropped.
pub struct CuttingFtpServer {
    _thread: ServerThread,
    port: u16,
}

impl CuttingFtpServer {
    /// Serves `content` (its first `cut_after` bytes, then a cut) on an ephemeral port.
    ///
    /// # Panics
    ///
    /// When the socket cannot be bound (test setup).
    pub fn start(content: Vec<u8>, cut_after: usize) -> CuttingFtpServer {
        let (listener, address) = bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let thread = ServerThread::serve("ftp-cutting-server", listener, move |stream| {
            session(stream, content.clone(), cut_after)
        })
        .expect("start the FTP server");
        CuttingFtpServer {
            _thread: thread,
            port: address.port(),
        }
    }

    /// The control port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}

async fn session(stream: TcpStream, content: Vec<u8>, cut_after: usize) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 cutting test server\r\n").await;
    let mut passive: Option<TcpListener> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        let (command, _argument) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let reply: String = match command.to_ascii_uppercase().as_str() {
            "USER" => "331 password please\r\n".into(),
            "PASS" => "230 logged in\r\n".into(),
            "TYPE" => "200 type set\r\n".into(),
            "FEAT" => "211-Features:\r\n SIZE\r\n MDTM\r\n211 End\r\n".into(),
            "SIZE" => format!("213 {}\r\n", content.len()),
            "MDTM" => "213 20261124000000\r\n".into(),
            "PASV" | "EPSV" => {
                let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await else {
                    return;
                };
                let Ok(SocketAddr::V4(address)) = listener.local_addr() else {
                    return;
                };
                passive = Some(listener);
                let port = address.port();
                passive_reply(command.eq_ignore_ascii_case("EPSV"), port)
            }
            "RETR" => {
                let Some(listener) = passive.take() else {
                    let _ = write.write_all(b"425 use PASV first\r\n").await;
                    continue;
                };
                let _ = write.write_all(b"150 opening data connection\r\n").await;
                if let Ok((mut data, _)) = listener.accept().await {
                    let _ = data
                        .write_all(&content[..cut_after.min(content.len())])
                        .await;
                    // The cut: the data connection drops without the rest of the file.
                    drop(data);
                }
                "426 connection closed; transfer aborted\r\n".into()
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            "NOOP" => "200 ok\r\n".into(),
            _ => "502 not implemented\r\n".into(),
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

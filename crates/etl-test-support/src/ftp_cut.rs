//! A deliberately broken FTP server: it serves one file at any path, but cuts the data
//! connection after a number of bytes and reports `426` — a transfer dropped mid-RETR.

use std::net::{Ipv4Addr, SocketAddr};
use std::thread::JoinHandle;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A running server; stops when dropped.
pub struct CuttingFtpServer {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CuttingFtpServer {
    /// Serves `content` (its first `cut_after` bytes, then a cut) on an ephemeral port.
    ///
    /// # Panics
    ///
    /// When the socket cannot be bound (test setup).
    pub fn start(content: Vec<u8>, cut_after: usize) -> CuttingFtpServer {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("address").port();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                tokio::spawn(session(stream, content.clone(), cut_after));
                            }
                        }
                    }
                }
            });
        });
        CuttingFtpServer {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The control port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for CuttingFtpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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
                if command.eq_ignore_ascii_case("EPSV") {
                    format!("229 Entering Extended Passive Mode (|||{port}|)\r\n")
                } else {
                    format!(
                        "227 Entering Passive Mode (127,0,0,1,{},{})\r\n",
                        port >> 8,
                        port & 0xff
                    )
                }
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

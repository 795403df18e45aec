//! An in-process FTP server (libunftp over a local directory) on 127.0.0.1.
//!
//! libunftp's own `listen` does not report an ephemeral port, so this binds
//! `127.0.0.1:0` itself and hands every accepted control connection to a fresh
//! server's `service`. The server runs on its own thread and current-thread
//! runtime, accepts any user and password, supports MLSD/MDTM/SIZE, and stops
//! (closing every session) when the [`FtpServer`] is dropped. Tests change files
//! by writing into the root directory directly.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use unftp_sbe_fs::Filesystem;

use crate::server::{ServerThread, bind};

/// A running FTP server serving one local directory.
#[derive(Debug)]
pub struct FtpServer {
    thread: ServerThread,
    port: u16,
    root: PathBuf,
}

/// Serves one control connection with a fresh server over `root`.
async fn serve_session(root: PathBuf, stream: tokio::net::TcpStream) {
    let server = libunftp::ServerBuilder::new(Box::new(move || {
        Filesystem::new(root.clone()).expect("FTP test server root must exist")
    }))
    .greeting("etl test FTP server")
    .passive_host(Ipv4Addr::LOCALHOST)
    .build()
    .expect("FTP test server configuration");
    let _ = server.service(stream).await;
}

impl FtpServer {
    /// Starts serving `root` on `127.0.0.1` on an ephemeral port.
    ///
    /// # Panics
    ///
    /// When the socket cannot be bound or the thread cannot start (test setup).
    pub fn start(root: &Path) -> FtpServer {
        FtpServer::start_on(root, 0)
    }

    /// Starts serving `root` on a given port (0: ephemeral), e.g. to restart a server
    /// where its clients expect it.
    ///
    /// # Panics
    ///
    /// When the socket cannot be bound or the thread cannot start (test setup).
    pub fn start_on(root: &Path, port: u16) -> FtpServer {
        let (listener, address) = bind((Ipv4Addr::LOCALHOST, port)).expect("bind FTP port");
        let port = address.port();
        let root = root.to_path_buf();
        let served = root.clone();
        let thread = ServerThread::serve(&format!("ftp-server-{port}"), listener, move |stream| {
            serve_session(served.clone(), stream)
        })
        .expect("start the FTP server");
        FtpServer { thread, port, root }
    }

    /// The control port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host to connect to (`127.0.0.1`).
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The directory being served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stops the server and closes every session (also done on drop).
    pub fn stop(&mut self) {
        self.thread.stop();
    }
}

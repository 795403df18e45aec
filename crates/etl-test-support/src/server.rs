//! The thread, runtime and accept loop every server and proxy of this crate runs on, and
//! the guard that stops them: dropping it ends the loop, the thread and every connection.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A listener bound to `address` (`127.0.0.1:0`: an ephemeral port) and the address it got.
pub(crate) fn bind(address: impl std::net::ToSocketAddrs) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address)?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}

/// A running accept loop on its own thread and current-thread runtime; stops when dropped.
#[derive(Debug)]
pub(crate) struct ServerThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Accepts connections on `listener` in a thread named `name`; `accept` turns each one
    /// into a task. Returns once the loop listens, or with why it could not start.
    pub(crate) fn serve<A, F>(name: &str, listener: TcpListener, mut accept: A) -> io::Result<Self>
    where
        A: FnMut(TcpStream) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        listener.set_nonblocking(true)?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (ready, started) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // The runtime lives and dies on this thread: built here, and dropped here,
                // which cancels every open connection.
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                if let Ok((stream, _)) = accepted {
                                    tokio::spawn(accept(stream));
                                }
                            }
                        }
                    }
                });
            })?;
        // On an error the guard goes at once, joining the thread that sent it.
        let server = ServerThread {
            stop: Some(stop),
            thread: Some(thread),
        };
        match started.recv() {
            Ok(Ok(())) => Ok(server),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(io::Error::other(format!("{name}: the server thread ended"))),
        }
    }

    /// Ends the loop and waits for the thread (also done on drop).
    pub(crate) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop();
    }
}

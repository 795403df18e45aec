//! Control-connection helpers shared by the hand-made FTP servers and proxies: reading one
//! line, and the passive-mode replies that name a data port.

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};

/// Reads the next line into `line` (cleared first); `false` at the end or on an error.
pub(crate) async fn next_line<R: AsyncRead + Unpin>(
    lines: &mut BufReader<R>,
    line: &mut String,
) -> bool {
    line.clear();
    matches!(lines.read_line(line).await, Ok(n) if n > 0)
}

/// The reply to `EPSV` (`extended`) or `PASV` naming a data port on 127.0.0.1.
pub(crate) fn passive_reply(extended: bool, port: u16) -> String {
    if extended {
        format!("229 Entering Extended Passive Mode (|||{port}|)\r\n")
    } else {
        format!(
            "227 Entering Passive Mode (127,0,0,1,{},{})\r\n",
            port >> 8,
            port & 0xff
        )
    }
}

//! Pure parsing of directory listings: MLSD facts and LIST lines (UNIX and DOS
//! styles, via suppaftp's parser) into [`RemoteEntry`] values. No I/O here.

use std::time::SystemTime;

use suppaftp::list::{File, ListParser};

/// One entry of a remote directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    /// File name within its directory.
    pub name: String,
    /// Full remote path (`dir/name`).
    pub path: String,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Last modification time, when the server reports one.
    pub modified: Option<SystemTime>,
    /// Whether this entry is a directory.
    pub is_dir: bool,
    /// Whether `size`/`modified` came from an exact source (MLSD, or SIZE/MDTM);
    /// `false` when they come from a LIST line only (minute or day precision).
    pub exact: bool,
}

/// Joins a remote directory and a name with exactly one `/`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Parses one MLSD line; `None` for the `cdir`/`pdir` entries, `.`/`..` and
/// unparseable lines.
pub fn parse_mlsd_line(dir: &str, line: &str) -> Option<RemoteEntry> {
    let facts = line
        .split("; ")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if facts.contains("type=cdir") || facts.contains("type=pdir") {
        return None;
    }
    let file = ListParser::parse_mlsd(line).ok()?;
    let has_modify = facts.contains("modify=");
    entry(dir, &file, has_modify, true)
}

/// Parses one LIST line in UNIX (`ls -l`) or DOS style; `None` for `total N`
/// lines, `.`/`..` and anything unparseable.
pub fn parse_list_line(dir: &str, line: &str) -> Option<RemoteEntry> {
    let file = ListParser::parse_posix(line)
        .or_else(|_| ListParser::parse_dos(line))
        .ok()?;
    entry(dir, &file, true, false)
}

fn entry(dir: &str, file: &File, has_time: bool, exact: bool) -> Option<RemoteEntry> {
    let name = file.name();
    // A name with a slash would escape the directory; servers must not send one.
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return None;
    }
    let modified = file.modified();
    Some(RemoteEntry {
        name: name.to_owned(),
        path: join(dir, name),
        size: if file.is_directory() {
            0
        } else {
            u64::try_from(file.size()).unwrap_or(u64::MAX)
        },
        modified: (has_time && modified != SystemTime::UNIX_EPOCH).then_some(modified),
        is_dir: file.is_directory(),
        exact,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn mlsd_file_and_dir() {
        let e = parse_mlsd_line(
            "/in",
            "type=file;size=12;modify=20230414101112;UNIX.mode=0644; a b.csv",
        )
        .unwrap();
        assert_eq!(e.name, "a b.csv");
        assert_eq!(e.path, "/in/a b.csv");
        assert_eq!(e.size, 12);
        assert!(!e.is_dir && e.exact);
        assert_eq!(
            e.modified,
            Some(UNIX_EPOCH + Duration::from_secs(1_681_467_072))
        );
        let d = parse_mlsd_line("/", "type=dir;modify=20230414101112; sub").unwrap();
        assert!(d.is_dir);
        assert_eq!(d.path, "/sub");
    }

    #[test]
    fn mlsd_skips_current_and_parent() {
        assert_eq!(
            parse_mlsd_line("/", "type=cdir;modify=20230414101112; ."),
            None
        );
        assert_eq!(
            parse_mlsd_line("/", "type=pdir;modify=20230414101112; .."),
            None
        );
    }

    #[test]
    fn list_unix_and_dos() {
        let e = parse_list_line(
            "/",
            "-rw-r--r--    1 1000     1000           17 Apr 14  2023 test.csv",
        )
        .unwrap();
        assert_eq!(
            (e.name.as_str(), e.size, e.is_dir, e.exact),
            ("test.csv", 17, false, false)
        );
        assert!(e.modified.is_some());
        let d = parse_list_line("/x", "drwxr-xr-x    2 0 0 4096 Nov  5 13:46 day 1").unwrap();
        assert!(d.is_dir);
        assert_eq!(d.path, "/x/day 1");
        let dos = parse_list_line("/", "04-14-23  03:09PM                 8192 omar.txt").unwrap();
        assert_eq!((dos.name.as_str(), dos.size), ("omar.txt", 8192));
        let dos_dir = parse_list_line("/", "04-14-23  03:09PM       <DIR>          sub").unwrap();
        assert!(dos_dir.is_dir);
    }

    #[test]
    fn list_skips_noise() {
        assert_eq!(parse_list_line("/", "total 12"), None);
        assert_eq!(
            parse_list_line("/", "drwxr-xr-x 2 0 0 4096 Nov  5 13:46 .."),
            None
        );
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/in", "a"), "/in/a");
        assert_eq!(join("/in/", "a"), "/in/a");
        assert_eq!(join("", "a"), "a");
    }
}

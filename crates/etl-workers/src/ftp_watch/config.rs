//! The event source configuration: the YAML in `EventSource.config` (or the file
//! given to `ftp-watch scan --config`), validated into [`WatchSettings`].
//!
//! Keys (all optional; unknown keys are an error):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `server` | `default` | which of ftp-watch's configured servers to watch |
//! | `host`, `port` | the server's | seed configs: accepted only when equal to a configured server's |
//! | `dir` | `/` | directory to watch; event names are relative to it |
//! | `passive` | `true` | passive mode (`false`: active) |
//! | `tls` | the server's | `true` forces explicit FTPS; `false` cannot downgrade a TLS server |
//! | `interval` | `10s` | time between polls (humantime: `500ms`, `1m`) |
//! | `recursive` | `true` | also watch subdirectories |
//! | `depth` | none | levels of subfolders watched below `dir` (`0`: `dir` only) |
//! | `exclude` | none | a pattern or list: names (`tmp`, `*.part`) or relative paths (`2019/*`) left out; excluded folders are not listed |
//! | `skip_unchanged_folders` | `false` | reuse the last listing of a folder whose time is unchanged (and over a day old on a LIST server): for write-once layouts, since overwriting a file in place leaves its folder's time alone |
//! | `suffix` | none | a suffix or list of suffixes the file name must end with |
//! | `glob` | none | a pattern or list (`*`, `?`) the file name must match |
//! | `settle` | `1` | polls a new size+time must stay unchanged before it is announced |
//! | `existing` | `ignore` | `ignore` or `emit` files present on a first start |
//! | `state` | none | where the announced listing is kept across restarts: a local JSON file, or `s3://bucket/key` |
//! | `user` | the server's | accepted only when equal to the server's user |
//! | `szfield`, `dtfields` | | the seed's LIST column positions: accepted and ignored |
//!
//! Servers and credentials are ftp-watch's own settings ([`super::servers`]); a config
//! only chooses among them and never carries a password.

use std::time::Duration;

use etl_ftp::FtpSettings;
use serde::Deserialize;

use super::filter::{Exclude, NameFilter};
use super::servers::{ChoiceError, Registry};
use super::state::StateLocation;

/// What to do with files already present when a source starts without state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Existing {
    /// Take them as already announced (the seed's behaviour).
    #[default]
    Ignore,
    /// Announce them as `new` (after settling).
    Emit,
}

/// One value or a list of values.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single string.
    One(String),
    /// A list of strings.
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// The YAML configuration as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// Name of a configured server.
    pub server: Option<String>,
    /// FTP server host (must be a configured server's).
    pub host: Option<String>,
    /// Control port.
    pub port: Option<u16>,
    /// Watched directory.
    pub dir: Option<String>,
    /// Passive mode.
    pub passive: Option<bool>,
    /// Explicit FTPS.
    pub tls: Option<bool>,
    /// Poll interval (humantime).
    pub interval: Option<String>,
    /// Watch subdirectories.
    pub recursive: Option<bool>,
    /// Levels of subfolders watched.
    pub depth: Option<usize>,
    /// Names or relative paths left out.
    pub exclude: Option<OneOrMany>,
    /// Reuse listings of unchanged folders.
    pub skip_unchanged_folders: Option<bool>,
    /// Name suffix filter.
    pub suffix: Option<OneOrMany>,
    /// Name glob filter.
    pub glob: Option<OneOrMany>,
    /// Settle polls.
    pub settle: Option<u32>,
    /// Existing files policy.
    pub existing: Option<Existing>,
    /// State file.
    pub state: Option<String>,
    /// Login user.
    pub user: Option<String>,
    /// Rejected with a clear message: passwords are ftp-watch's settings.
    pub password: Option<serde::de::IgnoredAny>,
    /// Rejected like `password`.
    pub passwd: Option<serde::de::IgnoredAny>,
    /// The seed's size column of LIST lines: ignored (listings are parsed from MLSD/LIST).
    pub szfield: Option<serde::de::IgnoredAny>,
    /// The seed's time columns of LIST lines: ignored like `szfield`.
    pub dtfields: Option<serde::de::IgnoredAny>,
}

/// Values taken from the environment (`FTP_*`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `FTP_HOST`.
    pub host: Option<String>,
    /// `FTP_PORT`.
    pub port: Option<String>,
    /// `FTP_USER`.
    pub user: Option<String>,
    /// `FTP_PASSWD` (never printed).
    pub password: Option<String>,
    /// `FTP_TLS`.
    pub tls: Option<String>,
    /// `FTP_CA_FILE`.
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Environment {
    /// Reads `FTP_HOST`, `FTP_PORT`, `FTP_USER`, `FTP_PASSWD`, `FTP_TLS`, `FTP_CA_FILE`.
    pub fn from_env() -> Self {
        use crate::env_vars::{FTP_CA_FILE, FTP_HOST, FTP_PASSWD, FTP_PORT, FTP_TLS, FTP_USER};
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Environment {
            host: get(FTP_HOST),
            port: get(FTP_PORT),
            user: get(FTP_USER),
            password: get(FTP_PASSWD),
            tls: get(FTP_TLS),
            ca_file: get(FTP_CA_FILE),
        }
    }
}

/// A configuration problem (`scan` exits 2 for either).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Malformed or unknown keys or values (the stream gets `InvalidArgument`).
    #[error("invalid ftp-watch config: {0}")]
    Invalid(String),
    /// A server ftp-watch was not configured with (the stream gets `PermissionDenied`).
    #[error("refused ftp-watch config: {0}")]
    Denied(#[from] ChoiceError),
}

/// Validated settings of one watched source.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// Name of the configured server watched.
    pub server: String,
    /// How to reach the server.
    pub ftp: FtpSettings,
    /// Watched directory (absolute or relative to the login directory).
    pub dir: String,
    /// Time between polls.
    pub interval: Duration,
    /// Watch subdirectories.
    pub recursive: bool,
    /// Levels of subfolders watched (`None`: no limit; `Some(0)` when not recursive).
    pub depth: Option<usize>,
    /// Folders and files left out.
    pub exclude: Exclude,
    /// Reuse listings of unchanged folders (write-once layouts).
    pub skip_unchanged_folders: bool,
    /// Which file names count.
    pub filter: NameFilter,
    /// Polls a size+time must stay unchanged before it is announced.
    pub settle: u32,
    /// First-start policy.
    pub existing: Existing,
    /// Where the state is kept (a local file or an S3 object).
    pub state: Option<StateLocation>,
    /// Seed keys that were given and are ignored (for one info line).
    pub ignored: Vec<&'static str>,
}

/// Default poll interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

impl WatchSettings {
    /// Parses YAML bytes and resolves them against the configured `servers`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the offending key.
    pub fn from_yaml(yaml: &[u8], servers: &Registry) -> Result<Self, ConfigError> {
        let config: WatchConfig = if yaml.iter().all(u8::is_ascii_whitespace) {
            WatchConfig::default()
        } else {
            serde_yaml::from_slice(yaml).map_err(|e| ConfigError::Invalid(e.to_string()))?
        };
        Self::resolve(config, servers)
    }

    /// Resolves a parsed configuration against the configured `servers`. Pure: the
    /// chosen server is one of `servers`, or an error.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the offending key.
    pub fn resolve(config: WatchConfig, servers: &Registry) -> Result<Self, ConfigError> {
        if config.password.is_some() || config.passwd.is_some() {
            return Err(ConfigError::Invalid(
                "a password is not accepted in the config; ftp-watch takes it from its own settings (FTP_PASSWD or a servers file)"
                    .to_owned(),
            ));
        }
        let server = servers.choose(
            config.server.as_deref(),
            config.host.as_deref(),
            config.port,
        )?;
        if let Some(user) = &config.user
            && *user != server.user
        {
            return Err(ConfigError::Invalid(format!(
                "`user` {user:?} is not the user of server {:?}; credentials come with the server, leave `user` out",
                server.name
            )));
        }
        if config.tls == Some(false) && server.tls {
            return Err(ConfigError::Invalid(format!(
                "`tls: false` would send the credentials of server {:?} in clear; leave `tls` out",
                server.name
            )));
        }
        let interval = match config.interval {
            Some(text) => humantime::parse_duration(&text)
                .map_err(|e| ConfigError::Invalid(format!("`interval` {text:?}: {e}")))?,
            None => DEFAULT_INTERVAL,
        };
        if interval < Duration::from_millis(10) {
            return Err(ConfigError::Invalid(format!(
                "`interval` {interval:?} is too short (at least 10ms)"
            )));
        }
        let state = match config.state {
            Some(text) => StateLocation::parse(&text).map_err(ConfigError::Invalid)?,
            None => None,
        };
        let filter = NameFilter::new(
            config.suffix.map(OneOrMany::into_vec).unwrap_or_default(),
            config.glob.map(OneOrMany::into_vec).unwrap_or_default(),
        );
        let mut ftp = FtpSettings::new(server.host.clone());
        ftp.port = server.port;
        ftp.user.clone_from(&server.user);
        ftp.password.clone_from(&server.password);
        ftp.passive = config.passive.unwrap_or(true);
        ftp.tls = config.tls.unwrap_or(server.tls);
        ftp.ca_file.clone_from(&server.ca_file);
        let dir = config.dir.unwrap_or_else(|| "/".to_owned());
        let recursive = config.recursive.unwrap_or(true);
        if !recursive && config.depth.is_some_and(|d| d > 0) {
            return Err(ConfigError::Invalid(
                "`depth` above 0 contradicts `recursive: false`; leave one out".to_owned(),
            ));
        }
        let exclude = config.exclude.map(OneOrMany::into_vec).unwrap_or_default();
        if exclude.iter().any(|p| p.trim_matches('/').is_empty()) {
            return Err(ConfigError::Invalid(
                "`exclude` has an empty pattern".to_owned(),
            ));
        }
        let ignored = [
            ("szfield", config.szfield.is_some()),
            ("dtfields", config.dtfields.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
        .collect();
        Ok(WatchSettings {
            ignored,
            server: server.name.clone(),
            ftp,
            dir: if dir.is_empty() { "/".to_owned() } else { dir },
            interval,
            recursive,
            depth: if recursive { config.depth } else { Some(0) },
            exclude: Exclude::new(exclude),
            skip_unchanged_folders: config.skip_unchanged_folders.unwrap_or(false),
            filter,
            settle: config.settle.unwrap_or(1),
            existing: config.existing.unwrap_or_default(),
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn servers() -> Registry {
        Registry::from_environment(&Environment {
            host: Some("ftp.example".into()),
            port: None,
            user: Some("etl".into()),
            password: Some("secret".into()),
            tls: None,
            ca_file: None,
        })
        .unwrap()
    }

    fn message(e: &ConfigError) -> String {
        e.to_string()
    }

    #[test]
    fn seed_config_keeps_working_with_defaults() {
        let s = WatchSettings::from_yaml(
            b"host: ftp.example\ndir: /upload\npassive: true\n",
            &servers(),
        )
        .unwrap();
        assert_eq!(s.server, "default");
        assert_eq!(s.ftp.host, "ftp.example");
        assert_eq!(s.ftp.port, 21);
        assert_eq!(s.ftp.user, "etl");
        assert_eq!(s.ftp.password, "secret");
        assert_eq!(s.dir, "/upload");
        assert_eq!(s.interval, Duration::from_secs(10));
        assert!(s.recursive && s.ftp.passive && !s.ftp.tls);
        assert_eq!(
            (s.settle, s.existing, s.state.as_ref()),
            (1, Existing::Ignore, None)
        );
        assert!(!format!("{s:?}").contains("secret"));
    }

    #[test]
    fn every_key() {
        let yaml = b"server: default\nhost: ftp.example\nport: 21\ndir: in\npassive: false\ntls: true\ninterval: 200ms\nrecursive: false\nsuffix: [.csv, .CSV]\nglob: '2023*'\nsettle: 3\nexisting: emit\nstate: /tmp/s.json\nuser: etl\n";
        let s = WatchSettings::from_yaml(yaml, &servers()).unwrap();
        assert_eq!(s.ftp.port, 21);
        assert_eq!(s.ftp.user, "etl");
        assert_eq!(s.interval, Duration::from_millis(200));
        assert!(!s.recursive && !s.ftp.passive && s.ftp.tls);
        assert_eq!((s.settle, s.existing), (3, Existing::Emit));
        assert_eq!(
            s.state,
            Some(StateLocation::File(PathBuf::from("/tmp/s.json")))
        );
        assert!(s.filter.matches("20230414.csv"));
        assert!(!s.filter.matches("x.csv"));
    }

    #[test]
    fn seed_listing_keys_are_accepted_and_ignored() {
        let s = WatchSettings::from_yaml(
            b"host: ftp.example\ndir: /\npassive: true\nszfield: 4\ndtfields: [-4, -3, -2]\n",
            &servers(),
        )
        .unwrap();
        assert_eq!(s.ignored, ["szfield", "dtfields"]);
        assert!(
            WatchSettings::from_yaml(b"", &servers())
                .unwrap()
                .ignored
                .is_empty()
        );
        let e = WatchSettings::from_yaml(b"szfeild: 4\n", &servers()).unwrap_err();
        assert!(message(&e).contains("unknown field `szfeild`"), "{e}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = WatchSettings::from_yaml(b"intervall: 1s\n", &servers()).unwrap_err();
        assert!(message(&e).contains("unknown field `intervall`"), "{e}");
    }

    #[test]
    fn credentials_stay_with_their_server() {
        let e = WatchSettings::from_yaml(b"password: x\n", &servers()).unwrap_err();
        assert!(message(&e).contains("FTP_PASSWD"), "{e}");
        let e = WatchSettings::from_yaml(b"host: evil.example\n", &servers()).unwrap_err();
        assert!(matches!(e, ConfigError::Denied(_)), "{e}");
        let e = WatchSettings::from_yaml(b"port: 2121\n", &servers()).unwrap_err();
        assert!(matches!(e, ConfigError::Denied(_)), "{e}");
        let e = WatchSettings::from_yaml(b"user: root\n", &servers()).unwrap_err();
        assert!(message(&e).contains("`user`"), "{e}");
        let e = WatchSettings::from_yaml(b"server: other\n", &servers()).unwrap_err();
        assert!(matches!(e, ConfigError::Denied(_)), "{e}");
    }

    #[test]
    fn tls_cannot_be_downgraded() {
        let tls = Registry::from_environment(&Environment {
            host: Some("h".into()),
            tls: Some("true".into()),
            ..Environment::default()
        })
        .unwrap();
        assert!(WatchSettings::from_yaml(b"", &tls).unwrap().ftp.tls);
        let e = WatchSettings::from_yaml(b"tls: false\n", &tls).unwrap_err();
        assert!(message(&e).contains("in clear"), "{e}");
    }

    #[test]
    fn bad_values() {
        assert!(WatchSettings::from_yaml(b"dir: /\n", &Registry::default()).is_err());
        assert!(WatchSettings::from_yaml(b"interval: soon\n", &servers()).is_err());
        assert!(WatchSettings::from_yaml(b"existing: maybe\n", &servers()).is_err());
        let e = WatchSettings::from_yaml(b"state: s3://bucket-only\n", &servers()).unwrap_err();
        assert!(message(&e).contains("s3://BUCKET/KEY"), "{e}");
        let s = WatchSettings::from_yaml(b"state: s3://b/k.json\n", &servers()).unwrap();
        assert_eq!(s.state.unwrap().to_string(), "s3://b/k.json");
    }

    #[test]
    fn depth_exclude_and_folder_skipping() {
        let s = WatchSettings::from_yaml(
            b"depth: 2\nexclude: [tmp, '2019/*']\nskip_unchanged_folders: true\n",
            &servers(),
        )
        .unwrap();
        assert_eq!((s.depth, s.skip_unchanged_folders), (Some(2), true));
        assert!(s.exclude.excludes("a/tmp") && s.exclude.excludes("2019/x"));
        let s = WatchSettings::from_yaml(b"recursive: false\n", &servers()).unwrap();
        assert_eq!((s.depth, s.skip_unchanged_folders), (Some(0), false));
        assert!(WatchSettings::from_yaml(b"recursive: false\ndepth: 1\n", &servers()).is_err());
        assert!(WatchSettings::from_yaml(b"exclude: ['/']\n", &servers()).is_err());
    }

    #[test]
    fn empty_config_watches_the_default_server() {
        let s = WatchSettings::from_yaml(b"", &servers()).unwrap();
        assert_eq!((s.ftp.host.as_str(), s.ftp.port), ("ftp.example", 21));
        assert_eq!(s.ftp.user, "etl");
    }
}

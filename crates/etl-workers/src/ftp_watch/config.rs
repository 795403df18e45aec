//! The event source configuration: the YAML in `EventSource.config` (or the file
//! given to `ftp-watch scan --config`), validated into [`WatchSettings`].
//!
//! Keys (all but `host` optional; unknown keys are an error):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `host` | env `FTP_HOST` | FTP server |
//! | `port` | env `FTP_PORT`, else 21 | control port |
//! | `dir` | `/` | directory to watch; event names are relative to it |
//! | `passive` | `true` | passive mode (`false`: active) |
//! | `tls` | `false` | explicit FTPS (`AUTH TLS`) |
//! | `interval` | `10s` | time between polls (humantime: `500ms`, `1m`) |
//! | `recursive` | `true` | also watch subdirectories |
//! | `suffix` | none | a suffix or list of suffixes the file name must end with |
//! | `glob` | none | a pattern or list (`*`, `?`) the file name must match |
//! | `settle` | `1` | polls a new size+time must stay unchanged before it is announced |
//! | `existing` | `ignore` | `ignore` or `emit` files present on a first start |
//! | `state` | none | local JSON file keeping the announced listing across restarts |
//! | `user` | env `FTP_USER`, else `anonymous` | login user |
//!
//! The password only comes from env `FTP_PASSWD`, never from the config.

use std::path::PathBuf;
use std::time::Duration;

use etl_ftp::FtpSettings;
use serde::Deserialize;

use super::filter::NameFilter;

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
    /// FTP server host.
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
    /// Rejected with a clear message: passwords come from `FTP_PASSWD` only.
    pub password: Option<serde::de::IgnoredAny>,
    /// Rejected like `password`.
    pub passwd: Option<serde::de::IgnoredAny>,
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
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Environment {
    /// Reads `FTP_HOST`, `FTP_PORT`, `FTP_USER`, `FTP_PASSWD`.
    pub fn from_env() -> Self {
        use crate::env_vars::{FTP_HOST, FTP_PASSWD, FTP_PORT, FTP_USER};
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Environment {
            host: get(FTP_HOST),
            port: get(FTP_PORT),
            user: get(FTP_USER),
            password: get(FTP_PASSWD),
        }
    }
}

/// A configuration problem (the stream gets it as `InvalidArgument`; `scan` exits 2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid ftp-watch config: {0}")]
pub struct ConfigError(pub String);

/// Validated settings of one watched source.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// How to reach the server.
    pub ftp: FtpSettings,
    /// Watched directory (absolute or relative to the login directory).
    pub dir: String,
    /// Time between polls.
    pub interval: Duration,
    /// Watch subdirectories.
    pub recursive: bool,
    /// Which file names count.
    pub filter: NameFilter,
    /// Polls a size+time must stay unchanged before it is announced.
    pub settle: u32,
    /// First-start policy.
    pub existing: Existing,
    /// Local state file.
    pub state: Option<PathBuf>,
}

/// Default poll interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

impl WatchSettings {
    /// Parses YAML bytes and resolves them with `environment`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the offending key.
    pub fn from_yaml(yaml: &[u8], environment: &Environment) -> Result<Self, ConfigError> {
        let config: WatchConfig = if yaml.iter().all(u8::is_ascii_whitespace) {
            WatchConfig::default()
        } else {
            serde_yaml::from_slice(yaml).map_err(|e| ConfigError(e.to_string()))?
        };
        Self::resolve(config, environment)
    }

    /// Resolves a parsed configuration with `environment`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the offending key.
    pub fn resolve(config: WatchConfig, environment: &Environment) -> Result<Self, ConfigError> {
        if config.password.is_some() || config.passwd.is_some() {
            return Err(ConfigError(
                "a password is not accepted in the config; set FTP_PASSWD in the environment"
                    .to_owned(),
            ));
        }
        let host = config
            .host
            .or_else(|| environment.host.clone())
            .filter(|h| !h.trim().is_empty())
            .ok_or_else(|| ConfigError("`host` is required (or set FTP_HOST)".to_owned()))?;
        let port = match (config.port, &environment.port) {
            (Some(port), _) => port,
            (None, Some(text)) => text
                .parse()
                .map_err(|_| ConfigError(format!("FTP_PORT {text:?} is not a port number")))?,
            (None, None) => etl_ftp::DEFAULT_PORT,
        };
        let interval = match config.interval {
            Some(text) => humantime::parse_duration(&text)
                .map_err(|e| ConfigError(format!("`interval` {text:?}: {e}")))?,
            None => DEFAULT_INTERVAL,
        };
        if interval < Duration::from_millis(10) {
            return Err(ConfigError(format!(
                "`interval` {interval:?} is too short (at least 10ms)"
            )));
        }
        let state = match config.state {
            Some(state) if state.starts_with("s3://") => {
                return Err(ConfigError(format!(
                    "`state` {state:?}: S3 state is not supported yet; use a local file path"
                )));
            }
            Some(state) if state.trim().is_empty() => None,
            Some(state) => Some(PathBuf::from(state)),
            None => None,
        };
        let filter = NameFilter::new(
            config.suffix.map(OneOrMany::into_vec).unwrap_or_default(),
            config.glob.map(OneOrMany::into_vec).unwrap_or_default(),
        );
        let mut ftp = FtpSettings::new(host);
        ftp.port = port;
        if let Some(user) = config.user.or_else(|| environment.user.clone()) {
            ftp.user = user;
        }
        if let Some(password) = &environment.password {
            ftp.password.clone_from(password);
        }
        ftp.passive = config.passive.unwrap_or(true);
        ftp.tls = config.tls.unwrap_or(false);
        let dir = config.dir.unwrap_or_else(|| "/".to_owned());
        Ok(WatchSettings {
            ftp,
            dir: if dir.is_empty() { "/".to_owned() } else { dir },
            interval,
            recursive: config.recursive.unwrap_or(true),
            filter,
            settle: config.settle.unwrap_or(1),
            existing: config.existing.unwrap_or_default(),
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment {
            user: Some("etl".into()),
            password: Some("secret".into()),
            ..Environment::default()
        }
    }

    #[test]
    fn seed_config_keeps_working_with_defaults() {
        let s =
            WatchSettings::from_yaml(b"host: ftp.example\ndir: /upload\npassive: true\n", &env())
                .unwrap();
        assert_eq!(s.ftp.host, "ftp.example");
        assert_eq!(s.ftp.port, 21);
        assert_eq!(s.ftp.user, "etl");
        assert_eq!(s.ftp.password, "secret");
        assert_eq!(s.dir, "/upload");
        assert_eq!(s.interval, Duration::from_secs(10));
        assert!(s.recursive && s.ftp.passive && !s.ftp.tls);
        assert_eq!(
            (s.settle, s.existing, s.state.as_deref()),
            (1, Existing::Ignore, None)
        );
        assert!(!format!("{s:?}").contains("secret"));
    }

    #[test]
    fn every_key() {
        let yaml = b"host: h\nport: 2121\ndir: in\npassive: false\ntls: true\ninterval: 200ms\nrecursive: false\nsuffix: [.csv, .CSV]\nglob: '2023*'\nsettle: 3\nexisting: emit\nstate: /tmp/s.json\nuser: bob\n";
        let s = WatchSettings::from_yaml(yaml, &Environment::default()).unwrap();
        assert_eq!(s.ftp.port, 2121);
        assert_eq!(s.ftp.user, "bob");
        assert_eq!(s.interval, Duration::from_millis(200));
        assert!(!s.recursive && !s.ftp.passive && s.ftp.tls);
        assert_eq!((s.settle, s.existing), (3, Existing::Emit));
        assert_eq!(s.state, Some(PathBuf::from("/tmp/s.json")));
        assert!(s.filter.matches("20230414.csv"));
        assert!(!s.filter.matches("x.csv"));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = WatchSettings::from_yaml(b"host: h\nintervall: 1s\n", &env()).unwrap_err();
        assert!(e.0.contains("unknown field `intervall`"), "{e}");
    }

    #[test]
    fn password_in_config_is_refused() {
        let e = WatchSettings::from_yaml(b"host: h\npassword: x\n", &env()).unwrap_err();
        assert!(e.0.contains("FTP_PASSWD"), "{e}");
    }

    #[test]
    fn bad_values() {
        assert!(WatchSettings::from_yaml(b"dir: /\n", &env()).is_err());
        assert!(WatchSettings::from_yaml(b"host: h\ninterval: soon\n", &env()).is_err());
        assert!(WatchSettings::from_yaml(b"host: h\nexisting: maybe\n", &env()).is_err());
        let e = WatchSettings::from_yaml(b"host: h\nstate: s3://b/k\n", &env()).unwrap_err();
        assert!(e.0.contains("not supported"), "{e}");
    }

    #[test]
    fn host_from_environment() {
        let environment = Environment {
            host: Some("envhost".into()),
            port: Some("2121".into()),
            ..Environment::default()
        };
        let s = WatchSettings::from_yaml(b"", &environment).unwrap();
        assert_eq!((s.ftp.host.as_str(), s.ftp.port), ("envhost", 2121));
        assert_eq!(s.ftp.user, "anonymous");
    }
}

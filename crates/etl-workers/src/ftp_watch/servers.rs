//! The FTP servers ftp-watch may connect to, each with its own credentials: ftp-watch's
//! settings (env `FTP_*` for `default`, a `--servers` YAML file), never an event source's.
//!
//! An event source's config only *chooses* a server ([`Registry::choose`]); a host or
//! port no configured server has is refused before any connection, so credentials are
//! never sent to a host a gRPC client picked.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::config::{ConfigError, Environment};

/// The server an event source gets when its config names none.
pub const DEFAULT_SERVER: &str = "default";

/// One configured server and the credentials bound to it.
#[derive(Clone, PartialEq, Eq)]
pub struct Server {
    /// Its name (`default`, or a key of the servers file).
    pub name: String,
    /// Host name or address, exactly as configured.
    pub host: String,
    /// Control port.
    pub port: u16,
    /// Explicit FTPS.
    pub tls: bool,
    /// PEM bundle of a private CA trusted for FTPS besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Login user.
    pub user: String,
    /// Password (never printed).
    pub password: String,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The `--servers` file: `servers: {NAME: {host, port, tls, ca_file, user, password_file}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServersFile {
    servers: BTreeMap<String, ServerEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerEntry {
    host: String,
    port: Option<u16>,
    tls: Option<bool>,
    ca_file: Option<PathBuf>,
    user: Option<String>,
    password_file: Option<PathBuf>,
}

/// Why a config's choice of server is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    /// `server: NAME` names no configured server.
    #[error("`server: {name}` is not a configured server (configured: {configured})")]
    UnknownServer {
        /// The name asked for.
        name: String,
        /// The configured names.
        configured: String,
    },
    /// `host`/`port` match no configured server (credential binding).
    #[error(
        "{target} is not a server ftp-watch is configured with (configured: {configured}); choose one with `server: NAME`"
    )]
    NotConfigured {
        /// `host:port` as the config gave it.
        target: String,
        /// The configured names.
        configured: String,
    },
    /// `host`/`port` contradict the server named by `server:`.
    #[error("`{key}` does not match server {server:?}; leave it out")]
    Mismatch {
        /// The key (`host` or `port`).
        key: &'static str,
        /// The server's name.
        server: String,
    },
    /// No server at all (no `FTP_HOST`, no servers file).
    #[error("ftp-watch has no FTP server configured (set FTP_HOST or --servers)")]
    NoServers,
}

/// Every server ftp-watch may connect to, by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    servers: BTreeMap<String, Server>,
}

/// Reads `FTP_TLS`-style booleans: `1/0/true/false/yes/no/on/off`.
fn parse_bool(name: &str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError::Invalid(format!(
            "{name} {text:?} is not a boolean (true/false)"
        ))),
    }
}

impl Registry {
    /// The `default` server from `FTP_HOST`, `FTP_PORT`, `FTP_USER`, `FTP_PASSWD`,
    /// `FTP_TLS`, `FTP_CA_FILE`; empty when `FTP_HOST` is not set.
    ///
    /// # Errors
    ///
    /// A malformed `FTP_PORT` or `FTP_TLS`.
    pub fn from_environment(environment: &Environment) -> Result<Self, ConfigError> {
        let mut registry = Registry::default();
        let Some(host) = environment.host.clone() else {
            return Ok(registry);
        };
        let port = match &environment.port {
            Some(text) => text.trim().parse().map_err(|_| {
                ConfigError::Invalid(format!("FTP_PORT {text:?} is not a port number"))
            })?,
            None => etl_ftp::DEFAULT_PORT,
        };
        let tls = match &environment.tls {
            Some(text) => parse_bool("FTP_TLS", text)?,
            None => false,
        };
        registry.servers.insert(
            DEFAULT_SERVER.to_owned(),
            Server {
                name: DEFAULT_SERVER.to_owned(),
                host,
                port,
                tls,
                ca_file: environment.ca_file.clone().map(PathBuf::from),
                user: environment
                    .user
                    .clone()
                    .unwrap_or_else(|| "anonymous".to_owned()),
                password: environment.password.clone().unwrap_or_default(),
            },
        );
        Ok(registry)
    }

    /// Adds the servers of a `--servers` YAML file. Passwords come from each entry's
    /// `password_file` (read with `read_password`, trailing newline removed) or, for
    /// `default` only, from `FTP_PASSWD`.
    ///
    /// # Errors
    ///
    /// Malformed YAML, a server defined twice, an unreadable password file.
    pub fn add_file(
        &mut self,
        yaml: &[u8],
        environment: &Environment,
        read_password: impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<(), ConfigError> {
        let file: ServersFile =
            serde_yaml::from_slice(yaml).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        for (name, entry) in file.servers {
            if self.servers.contains_key(&name) {
                return Err(ConfigError::Invalid(format!(
                    "server {name:?} is defined twice (FTP_HOST defines `default`)"
                )));
            }
            if entry.host.trim().is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "server {name:?}: `host` is empty"
                )));
            }
            let password = match &entry.password_file {
                Some(path) => read_password(path)
                    .map_err(|e| {
                        ConfigError::Invalid(format!(
                            "server {name:?}: cannot read password_file {}: {e}",
                            path.display()
                        ))
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
                None if name == DEFAULT_SERVER => environment.password.clone().unwrap_or_default(),
                None => String::new(),
            };
            let server = Server {
                name: name.clone(),
                host: entry.host,
                port: entry.port.unwrap_or(etl_ftp::DEFAULT_PORT),
                tls: entry.tls.unwrap_or(false),
                ca_file: entry.ca_file.or_else(|| {
                    (name == DEFAULT_SERVER)
                        .then(|| environment.ca_file.clone().map(PathBuf::from))
                        .flatten()
                }),
                user: entry.user.unwrap_or_else(|| "anonymous".to_owned()),
                password,
            };
            self.servers.insert(name, server);
        }
        Ok(())
    }

    /// The server called `name`.
    pub fn get(&self, name: &str) -> Option<&Server> {
        self.servers.get(name)
    }

    /// No server configured.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    fn names(&self) -> String {
        self.servers.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// The server a config chooses: by `server` name (default `default`), or, for the
    /// seed's configs, the one whose host (exact, case-insensitive) and port equal
    /// `host`/`port`. Pure: no name resolution, no connection.
    ///
    /// # Errors
    ///
    /// [`ChoiceError`]: anything that is not a configured server.
    pub fn choose(
        &self,
        server: Option<&str>,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Result<&Server, ChoiceError> {
        if self.servers.is_empty() {
            return Err(ChoiceError::NoServers);
        }
        let host = host.map(str::trim).filter(|h| !h.is_empty());
        let same_host = |s: &Server, h: &str| s.host.eq_ignore_ascii_case(h);
        if let Some(name) = server {
            let chosen = self
                .servers
                .get(name)
                .ok_or_else(|| ChoiceError::UnknownServer {
                    name: name.to_owned(),
                    configured: self.names(),
                })?;
            if host.is_some_and(|h| !same_host(chosen, h)) {
                return Err(ChoiceError::Mismatch {
                    key: "host",
                    server: chosen.name.clone(),
                });
            }
            if port.is_some_and(|p| p != chosen.port) {
                return Err(ChoiceError::Mismatch {
                    key: "port",
                    server: chosen.name.clone(),
                });
            }
            return Ok(chosen);
        }
        let Some(host) = host else {
            let chosen =
                self.servers
                    .get(DEFAULT_SERVER)
                    .ok_or_else(|| ChoiceError::UnknownServer {
                        name: DEFAULT_SERVER.to_owned(),
                        configured: self.names(),
                    })?;
            if port.is_some_and(|p| p != chosen.port) {
                return Err(ChoiceError::NotConfigured {
                    target: format!("{}:{}", chosen.host, port.unwrap_or_default()),
                    configured: self.names(),
                });
            }
            return Ok(chosen);
        };
        let matching: Vec<&Server> = self
            .servers
            .values()
            .filter(|s| same_host(s, host) && port.is_none_or(|p| p == s.port))
            .collect();
        match matching.as_slice() {
            [one] => Ok(one),
            [] => Err(ChoiceError::NotConfigured {
                target: port.map_or_else(|| host.to_owned(), |p| format!("{host}:{p}")),
                configured: self.names(),
            }),
            several => Ok(several
                .iter()
                .find(|s| s.name == DEFAULT_SERVER)
                .copied()
                .unwrap_or(several[0])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        let environment = Environment {
            host: Some("ftp.internal".into()),
            port: Some("2121".into()),
            user: Some("etl".into()),
            password: Some("secret".into()),
            tls: None,
            ca_file: None,
        };
        let mut registry = Registry::from_environment(&environment).unwrap();
        registry
            .add_file(
                b"servers:\n  archive:\n    host: archive.internal\n    user: arch\n    password_file: /run/pw\n    tls: true\n",
                &environment,
                |path| {
                    assert_eq!(path, Path::new("/run/pw"));
                    Ok("archive-pw\n".to_owned())
                },
            )
            .unwrap();
        registry
    }

    #[test]
    fn default_comes_from_the_environment() {
        let r = registry();
        let s = r.choose(None, None, None).unwrap();
        assert_eq!(
            (s.name.as_str(), s.host.as_str(), s.port, s.user.as_str()),
            ("default", "ftp.internal", 2121, "etl")
        );
        assert_eq!(s.password, "secret");
        assert!(!format!("{r:?}").contains("secret"));
        assert!(!format!("{r:?}").contains("archive-pw"));
    }

    #[test]
    fn servers_file_binds_its_own_credentials() {
        let r = registry();
        let s = r.choose(Some("archive"), None, None).unwrap();
        assert_eq!((s.port, s.tls, s.user.as_str()), (21, true, "arch"));
        assert_eq!(s.password, "archive-pw");
        // The seed style: host (and port) equal to a configured server pick it.
        assert_eq!(
            r.choose(None, Some("ARCHIVE.internal"), Some(21))
                .unwrap()
                .name,
            "archive"
        );
        assert_eq!(
            r.choose(None, Some("ftp.internal"), Some(2121))
                .unwrap()
                .name,
            "default"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let r = registry();
        for (server, host, port) in [
            (None, Some("evil.example"), None),
            (None, Some("ftp.internal"), Some(21)),
            (None, None, Some(2122)),
            (None, Some("127.0.0.1"), Some(2121)),
        ] {
            assert!(
                matches!(
                    r.choose(server, host, port),
                    Err(ChoiceError::NotConfigured { .. })
                ),
                "{host:?}:{port:?}"
            );
        }
        assert!(matches!(
            r.choose(Some("nope"), None, None),
            Err(ChoiceError::UnknownServer { .. })
        ));
        assert!(matches!(
            r.choose(Some("archive"), Some("evil.example"), None),
            Err(ChoiceError::Mismatch { key: "host", .. })
        ));
        assert!(matches!(
            r.choose(Some("archive"), None, Some(2121)),
            Err(ChoiceError::Mismatch { key: "port", .. })
        ));
        assert_eq!(
            Registry::default().choose(None, Some("h"), None),
            Err(ChoiceError::NoServers)
        );
    }

    #[test]
    fn servers_file_errors() {
        let environment = Environment {
            host: Some("h".into()),
            ..Environment::default()
        };
        let mut r = Registry::from_environment(&environment).unwrap();
        let twice = r.add_file(b"servers:\n  default:\n    host: x\n", &environment, |_| {
            Ok(String::new())
        });
        assert!(twice.unwrap_err().to_string().contains("defined twice"));
        let typo = r.add_file(b"servers:\n  a:\n    hots: x\n", &environment, |_| {
            Ok(String::new())
        });
        assert!(typo.unwrap_err().to_string().contains("unknown field"));
        let unreadable = r.add_file(
            b"servers:\n  a:\n    host: x\n    password_file: /nope\n",
            &environment,
            |_| Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        );
        assert!(unreadable.unwrap_err().to_string().contains("/nope"));
        let bad_tls = Registry::from_environment(&Environment {
            host: Some("h".into()),
            tls: Some("maybe".into()),
            ..Environment::default()
        });
        assert!(bad_tls.is_err());
    }
}

//! The library's error type. Every variant says which thing is wrong; system errors keep errno.

use std::path::PathBuf;

use husk_init::proto::InitFailure;

use crate::cgroups::CgroupError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("container with id exists: {0}")]
    Exists(String),
    #[error("container does not exist: {0}")]
    NotFound(String),
    /// An operation that the container's current status does not allow.
    #[error("cannot {op} container {id}: container is {status}")]
    WrongState {
        id: String,
        op: &'static str,
        status: String,
    },
    /// A config.json (or option) that cannot be run; `field` names the offending part.
    #[error("invalid config: {field}: {reason}")]
    Config { field: String, reason: String },
    /// The container's init failed at `step`.
    #[error("container init: {0}")]
    Init(InitFailure),
    /// The container's process could not be started after `start` released it.
    #[error("container failed to start: {0}")]
    StartFailed(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Hook(#[from] husk_init::hooks::HookError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("bundle {path}: {reason}")]
    Bundle { path: PathBuf, reason: String },
}

impl Error {
    /// The errno behind this error, when a system call failed (in husk or in the init).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Init(f) => f.errno,
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Hook(h) => h.errno(),
            _ => None,
        }
    }

    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to an io error.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Io {
            context: what(),
            source: std::io::Error::from_raw_os_error(e as i32),
        })
    }
}

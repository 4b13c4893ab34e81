//! The library's error type. Every variant says which thing is wrong; system errors keep errno.

use std::path::PathBuf;

use husk_init::proto::InitFailure;

use crate::cgroups::CgroupError;

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A container id that cannot name a state directory (`id`), and why (`reason`).
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A container with this id exists already.
    #[error("container with given ID already exists: {0}")]
    Exists(String),
    /// No container has this id.
    #[error("container does not exist: {0}")]
    NotFound(String),
    /// An operation that the container's current status does not allow.
    #[error("cannot {op} container {id}: container is {status}")]
    WrongState {
        /// The container's id.
        id: String,
        /// The operation refused, e.g. `start`.
        op: &'static str,
        /// The status it is in.
        status: String,
    },
    /// A config.json (or option) that cannot be run; `field` names the offending part.
    #[error("invalid config: {field}: {reason}")]
    Config {
        /// The field, e.g. `process.args`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The container's init failed at `step`.
    #[error("container init: {0}")]
    Init(InitFailure),
    /// The container's process could not be started after `start` released it.
    #[error("container failed to start: {0}")]
    StartFailed(String),
    /// A system call or file operation failed while doing `context`.
    #[error("{context}: {source}")]
    Io {
        /// What husk was doing, e.g. `create /run/husk/web`.
        context: String,
        /// The error, with its errno.
        #[source]
        source: std::io::Error,
    },
    /// A hook run on the host failed.
    #[error(transparent)]
    Hook(#[from] husk_init::hooks::HookError),
    /// Setting up, changing or reading the container's cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The bundle (its config.json) cannot be read or parsed.
    #[error("bundle {path}: {reason}")]
    Bundle {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// A [`Runtime::execute`](crate::Runtime::execute) request refused before anything was
    /// created.
    #[error("execute: {0}")]
    Execute(#[from] crate::execute::ExecuteError),
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

/// The library's result type.
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

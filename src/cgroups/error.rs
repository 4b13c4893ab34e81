//! Errors of the cgroup manager.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while managing a container's cgroups.
///
/// Each variant names the file or the `linux.resources` field involved; kernel errors keep their
/// errno, reachable through [`CgroupError::raw_os_error`].
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum CgroupError {
    /// `statfs` of the cgroup mount root failed.
    #[error("cannot inspect {path} to detect the cgroup mode: {source}")]
    Detect {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The cgroup mount root holds neither tmpfs (v1/hybrid) nor cgroup2 (v2).
    #[error(
        "{path} is neither a tmpfs (cgroup v1) nor a cgroup2 mount (filesystem magic {magic:#x})"
    )]
    UnknownFilesystem {
        /// The file or directory involved.
        path: PathBuf,
        /// The filesystem's magic number.
        magic: i64,
    },
    /// `linux.cgroupsPath` cannot be used.
    #[error("linux.cgroupsPath {path:?}: {reason}")]
    InvalidPath {
        /// The file or directory involved.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The container's cgroup (or a parent) is frozen before the container runs in it.
    #[error("container's cgroup unexpectedly frozen: {path} (thaw it first)")]
    Frozen {
        /// The file or directory involved.
        path: PathBuf,
    },
    /// `exec --cgroup` named a sub-cgroup that does not exist.
    #[error("sub-cgroup {dir} does not exist (exec --cgroup joins an existing cgroup)")]
    NoSubCgroup {
        /// The sub-cgroup's directory.
        dir: PathBuf,
    },
    /// The runtime's own cgroup could not be found for a hierarchy (needed for relative paths).
    #[error("{what}: no entry for the {hierarchy} hierarchy in /proc/self/cgroup")]
    OwnCgroupNotFound {
        /// What needed it.
        what: String,
        /// The hierarchy, by its controllers.
        hierarchy: String,
    },
    /// A cgroup file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A value could not be written to a cgroup file.
    #[error("{field}: writing {value:?} to {path}: {source}")]
    Write {
        /// The `linux.resources` field or the operation involved.
        field: String,
        /// The file or directory involved.
        path: PathBuf,
        /// The value written.
        value: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A cgroup file holds something we cannot parse.
    #[error("{path}: unexpected content {content:?}")]
    Parse {
        /// The file or directory involved.
        path: PathBuf,
        /// What the file holds.
        content: String,
    },
    /// A cgroup directory could not be created.
    #[error("creating cgroup {path}: {source}")]
    Create {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A cgroup directory could not be removed.
    #[error("removing cgroup {path}: {source}")]
    Remove {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A process could not be moved into the cgroup.
    #[error("adding pid {pid} to {path}: {source}")]
    AddProcess {
        /// The process.
        pid: i32,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An operation done through the `cgroups-rs` crate failed.
    #[error("{field}: {path}: {source}")]
    Library {
        /// The `linux.resources` field or the operation involved.
        field: String,
        /// The file or directory involved.
        path: PathBuf,
        /// errno of the underlying I/O error, when there is one.
        errno: Option<i32>,
        /// The underlying error.
        #[source]
        source: cgroups_rs::fs::error::Error,
    },
    /// A `linux.resources` value is out of range or inconsistent.
    #[error("{field}: invalid value: {reason}")]
    InvalidValue {
        /// The `linux.resources` field or the operation involved.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A field is set but the controller it needs is not mounted / enabled on this host.
    #[error("{field}: the {controller} controller is not available on this host")]
    ControllerMissing {
        /// The `linux.resources` field or the operation involved.
        field: String,
        /// The controller needed.
        controller: String,
    },
    /// The host (kernel or cgroup version) cannot do what was asked.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The freezer did not reach the wanted state in time.
    #[error("{path}: freezer did not reach state {wanted} in time (last seen {seen:?})")]
    FreezeTimeout {
        /// The file or directory involved.
        path: PathBuf,
        /// The state asked for.
        wanted: &'static str,
        /// The state last read.
        seen: String,
    },
    /// systemd (the systemd cgroup driver) refused or failed an operation, or cannot be reached.
    #[error("systemd cgroup driver: {op} {unit}: {reason}")]
    Systemd {
        /// What was asked of systemd.
        op: String,
        /// The unit involved (empty when none is yet).
        unit: String,
        /// What systemd or the bus said.
        reason: String,
    },
    /// A BPF system call for the cgroup v2 device filter failed.
    #[error("device filter: {op}: {source}")]
    Bpf {
        /// The BPF operation.
        op: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl CgroupError {
    /// The errno behind this error, if it came from a system call.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CgroupError::Detect { source, .. }
            | CgroupError::Read { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Create { source, .. }
            | CgroupError::Remove { source, .. }
            | CgroupError::AddProcess { source, .. }
            | CgroupError::Bpf { source, .. } => source.raw_os_error(),
            CgroupError::Library { errno, .. } => *errno,
            CgroupError::NoSubCgroup { .. } => Some(libc::ENOENT),
            _ => None,
        }
    }

    /// Wraps an error of the `cgroups-rs` crate, digging out the errno of its cause.
    pub(crate) fn library(
        field: impl Into<String>,
        path: impl Into<PathBuf>,
        source: cgroups_rs::fs::error::Error,
    ) -> Self {
        let errno = std::error::Error::source(&source)
            .and_then(|cause| cause.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error);
        CgroupError::Library {
            field: field.into(),
            path: path.into(),
            errno,
            source,
        }
    }
}

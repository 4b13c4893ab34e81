//! Container-side security setup applied by init just before execve: capabilities
//! (`caps`) and the seccomp filter (`seccomp`).
//!
//! Order expected from the caller (init, as PID 1 of the container):
//! 1. `caps::parse_capabilities` and `seccomp::build_filter` (on the host too, to fail early);
//! 2. `caps::prepare_before_user_change`;
//! 3. setgroups/setgid/setuid;
//! 4. `caps::apply_after_user_change`;
//! 5. no_new_privs if the spec asks for it, then `SeccompFilter::load` as late as possible.
//!    Without no_new_privs the kernel only accepts a filter from a task holding
//!    CAP_SYS_ADMIN, so in that case the filter has to be loaded before step 4 drops it.

pub mod caps;
pub mod seccomp;

use nix::errno::Errno;

pub use self::caps::{
    apply_after_user_change, parse_capabilities, parse_capability_name, prepare_before_user_change,
    CapabilitySet, ParsedCapabilities,
};
pub use self::seccomp::{build_filter, refuse_notify_deadlocks, NotifyRefusal, SeccompFilter};

/// Why a security step failed. Each variant names the step and the thing it was working
/// on; `errno()` gives the kernel's (or libseccomp's) errno where there is one.
#[derive(thiserror::Error, Debug)]
pub enum SecurityError {
    #[error("unknown capability {name:?} in the {set} set")]
    UnknownCapability { set: CapabilitySet, name: String },

    #[error("prctl(PR_SET_KEEPCAPS, {enable}): {errno}")]
    KeepCapabilities { enable: bool, errno: Errno },

    #[error("dropping {capability} from the bounding set: {errno}")]
    DropBounding { capability: String, errno: Errno },

    #[error(
        "capset(effective={effective}, permitted={permitted}, inheritable={inheritable}): {errno}"
    )]
    SetCapabilities {
        effective: String,
        permitted: String,
        inheritable: String,
        errno: Errno,
    },

    #[error("clearing the ambient capability set: {errno}")]
    ClearAmbient { errno: Errno },

    #[error(
        "raising ambient capability {capability} (it must be permitted and inheritable): {errno}"
    )]
    RaiseAmbient { capability: String, errno: Errno },

    #[error("seccomp: {action} is not a valid default action: {source}")]
    SeccompDefaultAction {
        action: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    #[error("seccomp: errno value {value} for {context} does not fit the 16-bit action data")]
    SeccompErrnoOutOfRange { context: String, value: u32 },

    #[error("seccomp: adding architecture {arch}: {source}")]
    SeccompArchitecture {
        arch: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    #[error("seccomp: filter flag {flag} needs libseccomp >= {needed}, this is {found}")]
    SeccompFlagUnsupported {
        flag: String,
        needed: &'static str,
        found: String,
    },

    #[error("seccomp: setting filter flag {flag}: {source}")]
    SeccompFlag {
        flag: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    #[error("seccomp: syscall {syscall}: argument index {index} is out of range (0..=5)")]
    SeccompArgumentIndex { syscall: String, index: usize },

    #[error("seccomp: adding rule {action} for syscall {syscall}: {source}")]
    SeccompRule {
        syscall: String,
        action: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    #[error("seccomp: {field}: {reason}")]
    SeccompNotifyRefused { field: String, reason: String },

    #[error("seccomp: exporting libseccomp's program: {source}")]
    SeccompExportBpf {
        #[source]
        source: libseccomp::error::SeccompError,
    },

    #[error("seccomp: exporting libseccomp's program ({step}): {errno}")]
    SeccompExport { step: &'static str, errno: Errno },

    #[error("seccomp: the filter program has {instructions} instructions, more than {max}")]
    SeccompProgramTooLong { instructions: usize, max: usize },

    #[error("seccomp: loading the filter into the kernel: {errno}")]
    SeccompLoad { errno: Errno },
}

impl SecurityError {
    /// The failure as the init reports a step's: `step`, the errno and this error's text.
    pub fn failure(&self, step: &str) -> crate::proto::InitFailure {
        crate::proto::InitFailure {
            step: step.to_string(),
            errno: self.errno(),
            detail: Some(self.to_string()),
        }
    }

    /// The errno behind the failure, if the kernel or libseccomp reported one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::KeepCapabilities { errno, .. }
            | Self::DropBounding { errno, .. }
            | Self::SetCapabilities { errno, .. }
            | Self::ClearAmbient { errno }
            | Self::RaiseAmbient { errno, .. }
            | Self::SeccompExport { errno, .. }
            | Self::SeccompLoad { errno } => Some(*errno as i32),
            Self::SeccompDefaultAction { source, .. }
            | Self::SeccompArchitecture { source, .. }
            | Self::SeccompFlag { source, .. }
            | Self::SeccompRule { source, .. }
            | Self::SeccompExportBpf { source } => seccomp_errno(source),
            Self::UnknownCapability { .. }
            | Self::SeccompErrnoOutOfRange { .. }
            | Self::SeccompFlagUnsupported { .. }
            | Self::SeccompArgumentIndex { .. }
            | Self::SeccompNotifyRefused { .. }
            | Self::SeccompProgramTooLong { .. } => None,
        }
    }
}

/// libseccomp reports failures as negative errno values.
fn seccomp_errno(error: &libseccomp::error::SeccompError) -> Option<i32> {
    error.sysrawrc().map(|rc| rc.abs())
}

/// Runs test bodies in forked children so capability and seccomp changes never reach
/// the test process (both are per thread and cannot be undone).
#[cfg(test)]
pub(crate) mod test_support {
    use std::io::Read;
    use std::os::fd::{AsFd, OwnedFd};
    use std::time::{Duration, Instant};

    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signal::{kill, Signal};
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult, Pid};

    const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

    /// These tests change real kernel state, which needs root; without it they fail.
    pub(crate) fn require_root() {
        assert!(
            nix::unistd::Uid::effective().is_root(),
            "this test needs root (it sets capabilities and seccomp filters in a child)"
        );
    }

    pub(crate) struct ChildOutcome {
        pub(crate) status: WaitStatus,
        /// Everything written to the report pipe: the error message or the exec'd output.
        pub(crate) output: String,
    }

    impl ChildOutcome {
        /// Panics with the child's report unless it exited with status 0.
        pub(crate) fn expect_success(self) -> String {
            match self.status {
                WaitStatus::Exited(_, 0) => self.output,
                status => panic!("child failed ({status:?}): {}", self.output),
            }
        }
    }

    /// Forks; the child runs `body` with the write end of a report pipe and exits 0 on
    /// Ok, or writes the error (or panic message) to the pipe and exits 1. `body` may
    /// also exec, with the pipe as its stdout.
    pub(crate) fn fork_child(body: impl FnOnce(&OwnedFd) -> Result<(), String>) -> ChildOutcome {
        let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
        // SAFETY: the child only runs `body` and `_exit`s. Other test threads are not
        // copied, and glibc keeps malloc usable in the child of a threaded parent.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(reader);
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&writer)));
                let (code, message) = match result {
                    Ok(Ok(())) => (0, String::new()),
                    Ok(Err(message)) => (1, message),
                    Err(panic) => (
                        1,
                        panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "panic".to_string()),
                    ),
                };
                let mut bytes = message.as_bytes();
                while !bytes.is_empty() {
                    match nix::unistd::write(&writer, bytes) {
                        Ok(n) => bytes = &bytes[n..],
                        Err(_) => break,
                    }
                }
                // SAFETY: ends the child without running the test harness's exit code.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(writer);
                let output = read_until_closed(reader, child);
                let status = waitpid(child, None).expect("waitpid");
                ChildOutcome { status, output }
            }
        }
    }

    /// Reads the report pipe until the child closes it, killing the child if it hangs.
    fn read_until_closed(reader: OwnedFd, child: Pid) -> String {
        let deadline = Instant::now() + CHILD_TIMEOUT;
        let mut output = Vec::new();
        let mut file = std::fs::File::from(reader);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap();
            let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
            let ready = poll(&mut fds, timeout).expect("poll");
            if ready == 0 {
                let _ = kill(child, Signal::SIGKILL);
                output.extend_from_slice(b"\n[test: child timed out and was killed]");
                break;
            }
            let mut buf = [0u8; 4096];
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => output.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("reading child report: {e}"),
            }
        }
        String::from_utf8_lossy(&output).into_owned()
    }

    /// Runs `body` in a forked child; Err carries the child's status and message.
    pub(crate) fn in_child(body: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        let outcome = fork_child(|_| body());
        match outcome.status {
            WaitStatus::Exited(_, 0) => Ok(()),
            status => Err(format!("child failed ({status:?}): {}", outcome.output)),
        }
    }

    /// A hex capability mask ("CapBnd", "CapEff", ...) from /proc/self/status.
    pub(crate) fn proc_status_mask(field: &str) -> Result<u64, String> {
        let status = std::fs::read_to_string("/proc/self/status")
            .map_err(|e| format!("reading /proc/self/status: {e}"))?;
        let prefix = format!("{field}:");
        let hex = status
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .ok_or_else(|| format!("no {field} in /proc/self/status"))?;
        u64::from_str_radix(hex.trim(), 16).map_err(|e| format!("{field} {hex:?}: {e}"))
    }
}

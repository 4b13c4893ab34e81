//! One-shot sandboxed execution: [`Runtime::execute`] runs one command in a fresh container from
//! an image of the store and gives back its exit status and output.
//!
//! ```no_run
//! # fn main() -> husk::Result<()> {
//! husk::init_if_requested();
//! let runtime = husk::Runtime::builder().state_root("/run/my-app").build();
//! let spec = husk::ExecuteSpec::new("busybox", ["sh", "-c", "echo $((6 * 7))"])
//!     .memory_limit(64 << 20)
//!     .timeout(std::time::Duration::from_secs(5));
//! let result = runtime.execute(&spec)?;
//! assert_eq!(result.stdout, b"42\n");
//! # Ok(()) }
//! ```
//!
//! # The sandbox
//!
//! The container runs with the [hardened profile](crate::profile): no capabilities,
//! `noNewPrivileges`, the default seccomp allowlist, uid 65534 (unless the caller or the image
//! names a user), new pid, ipc, uts, mount, cgroup and network namespaces (the network one holds
//! only `lo`: no network), masked and read-only kernel paths. Its root is a private writable
//! layer over the image on a size-limited tmpfs ([`ExecuteSpec::scratch_size`]), so the
//! container's writes are bounded, charged to its memory limit, seen by no other container and
//! gone afterwards; the image itself is never written.
//!
//! Memory is never unbounded: the container's memory limit always applies (default
//! [`DEFAULT_MEMORY_LIMIT`], swap included where the kernel accounts it), and output is kept
//! up to [`ExecuteSpec::stdout_limit`] / [`ExecuteSpec::stderr_limit`] bytes: the rest is read
//! and dropped, concurrently, so that a chatty process never blocks on a full pipe.
//!
//! # Validation and cleanup
//!
//! A request asking for privileged mode or the host's network, naming an image the store does
//! not have, or with a zero timeout or limit, fails with [`ExecuteError`] before anything is
//! created. Whatever happens after (timeout, OOM kill, a failed start, a panic of the caller's
//! thread while the container runs), the container is force-deleted: its processes, cgroup,
//! state directory, mounts and writable layer are gone when `execute` returns.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxCpuBuilder, LinuxResources};

use crate::container::{ExitStatus, Runtime};
use crate::error::{Error, Result};
use crate::image_container::{ImageRunOptions, WritableLayer};
use crate::profile::HardenedProfile;
use crate::stdio::{Stdio, StdioConfig};

/// Default memory limit of an execution: 512 MiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 512 << 20;
/// Default limit of the number of processes and threads: 256.
pub const DEFAULT_PIDS_LIMIT: u32 = crate::profile::DEFAULT_PIDS_LIMIT;
/// Default timeout: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap of stdout and of stderr: 1 MiB each.
pub const DEFAULT_OUTPUT_LIMIT: usize = 1 << 20;
/// Default size of the writable layer: 64 MiB.
pub const DEFAULT_SCRATCH_SIZE: u64 = 64 << 20;

/// The network an execution gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Network {
    /// A network namespace of its own with only `lo` (the default).
    #[default]
    None,
    /// The host's network namespace: refused by [`Runtime::execute`]
    /// ([`ExecuteError::HostNetwork`]); it exists so that a request for it fails loudly instead
    /// of being silently sandboxed.
    Host,
}

/// What to execute, and under which limits. Made by [`ExecuteSpec::new`] and its setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExecuteSpec {
    /// The image (a name in the store, normalised as docker does).
    pub image: String,
    /// The command and its arguments; replaces the image's Entrypoint and Cmd. Empty: the
    /// image's Entrypoint and Cmd.
    pub command: Vec<String>,
    /// `KEY=VALUE` entries on top of the image's environment.
    pub env: Vec<String>,
    /// Working directory (absolute; default the image's, else `/`).
    pub cwd: Option<PathBuf>,
    /// User (`name`, `uid`, `uid:gid`...; default the image's, else 65534:65534).
    pub user: Option<String>,
    /// Bytes given on the process's stdin (then end-of-file).
    pub stdin: Vec<u8>,
    /// Memory limit in bytes (default [`DEFAULT_MEMORY_LIMIT`]).
    pub memory_limit: u64,
    /// CPU limit in CPUs (e.g. 0.5), as a CFS quota; `None`: no limit.
    pub cpu_limit: Option<f64>,
    /// Maximum number of processes and threads (default [`DEFAULT_PIDS_LIMIT`]).
    pub pids_limit: u32,
    /// At the deadline the container is killed and the result says
    /// [`ExecutionResult::timed_out`] (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// Bytes of stdout kept (default [`DEFAULT_OUTPUT_LIMIT`]).
    pub stdout_limit: usize,
    /// Bytes of stderr kept (default [`DEFAULT_OUTPUT_LIMIT`]).
    pub stderr_limit: usize,
    /// Size of the writable layer's tmpfs (default [`DEFAULT_SCRATCH_SIZE`]).
    pub scratch_size: u64,
    /// The network (default [`Network::None`]).
    pub network: Network,
    /// Privileged mode: refused ([`ExecuteError::Privileged`]), like [`Network::Host`].
    pub privileged: bool,
}

impl ExecuteSpec {
    /// Runs `command` in `image` with the default limits.
    pub fn new<S: Into<String>>(image: &str, command: impl IntoIterator<Item = S>) -> Self {
        ExecuteSpec {
            image: image.to_string(),
            command: command.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: None,
            user: None,
            stdin: Vec::new(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            cpu_limit: None,
            pids_limit: DEFAULT_PIDS_LIMIT,
            timeout: DEFAULT_TIMEOUT,
            stdout_limit: DEFAULT_OUTPUT_LIMIT,
            stderr_limit: DEFAULT_OUTPUT_LIMIT,
            scratch_size: DEFAULT_SCRATCH_SIZE,
            network: Network::None,
            privileged: false,
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push(format!("{key}={value}"));
        self
    }

    /// Sets [`ExecuteSpec::cwd`].
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Sets [`ExecuteSpec::user`].
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_string());
        self
    }

    /// Sets [`ExecuteSpec::stdin`].
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// Sets [`ExecuteSpec::memory_limit`].
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Sets [`ExecuteSpec::cpu_limit`].
    pub fn cpu_limit(mut self, cpus: f64) -> Self {
        self.cpu_limit = Some(cpus);
        self
    }

    /// Sets [`ExecuteSpec::pids_limit`].
    pub fn pids_limit(mut self, limit: u32) -> Self {
        self.pids_limit = limit;
        self
    }

    /// Sets [`ExecuteSpec::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets both output caps.
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.stdout_limit = bytes;
        self.stderr_limit = bytes;
        self
    }

    /// Sets [`ExecuteSpec::scratch_size`].
    pub fn scratch_size(mut self, bytes: u64) -> Self {
        self.scratch_size = bytes;
        self
    }

    /// Sets [`ExecuteSpec::network`].
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Sets [`ExecuteSpec::privileged`].
    pub fn privileged(mut self, privileged: bool) -> Self {
        self.privileged = privileged;
        self
    }
}

/// What an execution did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutionResult {
    /// The exit code, when the process exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it (e.g. 9 after a timeout or an OOM kill).
    pub signal: Option<i32>,
    /// Its stdout, up to [`ExecuteSpec::stdout_limit`] bytes.
    pub stdout: Vec<u8>,
    /// Its stderr, up to [`ExecuteSpec::stderr_limit`] bytes.
    pub stderr: Vec<u8>,
    /// Whether stdout was longer than the limit.
    pub stdout_truncated: bool,
    /// Whether stderr was longer than the limit.
    pub stderr_truncated: bool,
    /// From the start of the process to its end.
    pub duration: Duration,
    /// Killed at the deadline.
    pub timed_out: bool,
    /// The kernel's OOM killer killed a process of the container.
    pub oom_killed: bool,
}

/// A request [`Runtime::execute`] refuses before creating anything.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExecuteError {
    /// Privileged mode was asked for.
    #[error("privileged mode is not available to execute")]
    Privileged,
    /// The host's network was asked for.
    #[error("the host network is not available to execute")]
    HostNetwork,
    /// The store has no such image.
    #[error("unknown image {0}")]
    UnknownImage(String),
    /// A timeout of zero.
    #[error("the timeout is zero")]
    ZeroTimeout,
    /// A limit that would mean "none" or cannot work (`field` names it).
    #[error("{field}: {reason}")]
    InvalidLimit {
        /// The field, e.g. `memory_limit`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl ExecuteSpec {
    /// The checks that need nothing but the request.
    fn validate(&self) -> std::result::Result<(), ExecuteError> {
        if self.privileged {
            return Err(ExecuteError::Privileged);
        }
        if self.network == Network::Host {
            return Err(ExecuteError::HostNetwork);
        }
        if self.timeout.is_zero() {
            return Err(ExecuteError::ZeroTimeout);
        }
        let invalid = |field, reason| Err(ExecuteError::InvalidLimit { field, reason });
        if self.memory_limit == 0 || self.memory_limit > i64::MAX as u64 {
            return invalid(
                "memory_limit",
                "must be positive (memory is never unlimited)",
            );
        }
        if self.pids_limit == 0 {
            return invalid("pids_limit", "0 would mean no limit");
        }
        if self.scratch_size == 0 {
            return invalid("scratch_size", "must be positive");
        }
        if self
            .cpu_limit
            .is_some_and(|c| !c.is_finite() || c <= 0.0 || c > 4096.0)
        {
            return invalid("cpu_limit", "must be a positive number of CPUs");
        }
        Ok(())
    }
}

/// CFS period for the CPU limit: 100 ms.
const CPU_PERIOD: u64 = 100_000;

impl Runtime {
    /// Runs `spec.command` once in a new sandboxed container from `spec.image` and returns
    /// its exit status and output; see the [module docs](crate::execute) for the sandbox.
    ///
    /// Returns an error when the request is refused ([`Error::Execute`]), the image is unknown,
    /// or the container cannot be created or started (e.g. the command does not exist:
    /// [`Error::Init`]). A process that runs and fails, times out or is OOM-killed is a
    /// successful `execute`: the result says what happened. Safe to call from many threads at
    /// once.
    pub fn execute(&self, spec: &ExecuteSpec) -> Result<ExecutionResult> {
        spec.validate()?;
        let id = execution_id();
        // The profile's user (65534) applies unless the caller or the image names one.
        let profile = HardenedProfile::new("/", vec!["sh".to_string()])
            .memory_limit(spec.memory_limit as i64)
            .pids_limit(spec.pids_limit);
        let mut base = profile.spec();
        limit_resources(&mut base, spec)?;
        if let Some(root) = base.root_mut() {
            // The private writable layer: bounded by scratch_size, thrown away afterwards.
            root.set_readonly(Some(false));
        }
        let mut image_opts = ImageRunOptions::default()
            .base_spec(base)
            .writable_layer(WritableLayer::Auto)
            .scratch_size(spec.scratch_size);
        if !spec.command.is_empty() {
            image_opts.entrypoint = Some(spec.command.clone());
        }
        image_opts.env = spec.env.clone();
        image_opts.cwd = spec.cwd.clone();
        image_opts.user = spec.user.clone();
        let opts = crate::config::CreateOptions {
            stdio: StdioConfig {
                stdin: Stdio::Piped,
                stdout: Stdio::Piped,
                stderr: Stdio::Piped,
            },
            ..Default::default()
        };
        // An unknown image fails there before anything is created (one index read, not two).
        let container = match self.create_from_image(&id, &spec.image, &image_opts, &opts) {
            Ok(container) => container,
            Err(Error::Image(crate::image::ImageError::NotFound(name))) => {
                return Err(ExecuteError::UnknownImage(name).into())
            }
            Err(e) => return Err(e),
        };
        // From here on, any return (or panic) force-deletes the container.
        let mut container = container.guard();
        let pipes = std::mem::take(container.pipes());
        let (stdin, stdout, stderr) = (pipes.stdin, pipes.stdout, pipes.stderr);
        std::thread::scope(move |scope| -> Result<_> {
            let out = stdout.map(|f| scope.spawn(move || read_capped(f, spec.stdout_limit)));
            let err = stderr.map(|f| scope.spawn(move || read_capped(f, spec.stderr_limit)));
            let input = &spec.stdin;
            if let Some(f) = stdin {
                scope.spawn(move || write_input(f, input));
            }
            let started = Instant::now();
            let run = run_to_end(&mut container, spec.timeout, started);
            // The delete kills whatever is left, so the readers see end-of-file.
            let oom_killed = container
                .cgroup()
                .and_then(|cg| cg.oom_kill_count().ok())
                .is_some_and(|n| n > 0);
            let deleted = container.delete();
            let (stdout, stdout_truncated) = out.map(join).unwrap_or_default();
            let (stderr, stderr_truncated) = err.map(join).unwrap_or_default();
            let (status, timed_out, duration) = run?;
            deleted?;
            let (exit_code, signal) = match status {
                ExitStatus::Exited(c) => (Some(c), None),
                ExitStatus::Signaled(s) => (None, Some(s)),
                ExitStatus::Unknown => (None, None),
            };
            Ok(ExecutionResult {
                exit_code,
                signal,
                stdout,
                stderr,
                stdout_truncated,
                stderr_truncated,
                duration,
                timed_out,
                oom_killed,
            })
        })
    }
}

fn join(h: std::thread::ScopedJoinHandle<'_, (Vec<u8>, bool)>) -> (Vec<u8>, bool) {
    h.join().unwrap_or_default()
}

/// Starts the container and waits for its end, killing it at the deadline: its status,
/// whether it timed out, and how long it ran.
fn run_to_end(
    container: &mut crate::container::ContainerGuard,
    timeout: Duration,
    started: Instant,
) -> Result<(ExitStatus, bool, Duration)> {
    container.start()?;
    match container.wait_timeout(timeout)? {
        Some(status) => Ok((status, false, started.elapsed())),
        None => {
            container.kill(nix::sys::signal::Signal::SIGKILL, true)?;
            let status = container.wait()?;
            Ok((status, true, started.elapsed()))
        }
    }
}

/// Memory (with swap where accounted), pids and CPU limits into the spec's resources.
fn limit_resources(spec: &mut oci_spec::runtime::Spec, req: &ExecuteSpec) -> Result<()> {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut resources: LinuxResources = linux.resources().clone().unwrap_or_default();
    if swap_accounted() {
        let mut memory = resources.memory().unwrap_or_default();
        memory.set_limit(Some(req.memory_limit as i64));
        memory.set_swap(Some(req.memory_limit as i64));
        resources.set_memory(Some(memory));
    }
    if let Some(cpus) = req.cpu_limit {
        let quota = ((cpus * CPU_PERIOD as f64) as i64).max(1000);
        let cpu = LinuxCpuBuilder::default()
            .quota(quota)
            .period(CPU_PERIOD)
            .build()
            .map_err(|e| Error::config("linux.resources.cpu", e.to_string()))?;
        resources.set_cpu(Some(cpu));
    }
    linux.set_resources(Some(resources));
    spec.set_linux(Some(linux));
    Ok(())
}

/// Whether the kernel accounts swap in memory cgroups (then the limit covers it too).
fn swap_accounted() -> bool {
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes");
    let v2 = std::path::Path::new("/sys/fs/cgroup/memory.swap.max");
    v1.exists() || v2.exists()
}

/// A unique container id for one execution.
fn execution_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "husk-exec-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Reads `file` to its end, keeping the first `cap` bytes: the rest is read and dropped, so
/// the writer never blocks. Whether anything was dropped.
fn read_capped(mut file: File, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = cap - kept.len();
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    (kept, truncated)
}

/// Writes `input` to the process's stdin, then closes it. SIGPIPE is blocked in this thread:
/// a process that exits without reading must not kill the embedder (the write gets EPIPE).
fn write_input(mut file: File, input: &[u8]) {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGPIPE);
    let _ = set.thread_block();
    let _ = file.write_all(input);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_problem() {
        let ok = ExecuteSpec::new("img", ["true"]);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            ok.clone().privileged(true).validate(),
            Err(ExecuteError::Privileged)
        );
        assert_eq!(
            ok.clone().network(Network::Host).validate(),
            Err(ExecuteError::HostNetwork)
        );
        assert_eq!(
            ok.clone().timeout(Duration::ZERO).validate(),
            Err(ExecuteError::ZeroTimeout)
        );
        assert!(matches!(
            ok.clone().memory_limit(0).validate(),
            Err(ExecuteError::InvalidLimit {
                field: "memory_limit",
                ..
            })
        ));
        assert!(matches!(
            ok.clone().cpu_limit(f64::NAN).validate(),
            Err(ExecuteError::InvalidLimit {
                field: "cpu_limit",
                ..
            })
        ));
    }

    #[test]
    fn capped_reader_keeps_the_head_and_drains_the_rest() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            let mut w = File::from(w);
            // More than a pipe holds: the reader must keep draining past the cap.
            for _ in 0..64 {
                w.write_all(&[b'x'; 16 << 10]).unwrap();
            }
        });
        let (kept, truncated) = read_capped(File::from(r), 1000);
        writer.join().unwrap();
        assert_eq!(kept.len(), 1000);
        assert!(truncated);
    }
}

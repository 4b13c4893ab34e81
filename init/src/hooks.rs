//! Running OCI hooks: used by the host side (prestart, createRuntime, poststart, poststop) and by
//! the init (createContainer, startContainer), so both behave the same.
//!
//! Where they differ, they follow runc (callers' hooks rely on it): a host hook, without an `env`
//! of its own, inherits the runtime's environment (so it has a `PATH`), and starts in the bundle
//! directory when `create` or `run` runs it (runc works there), else in the caller's; a hook in
//! the container starts where the init is (the rootfs) with exactly the `env` the init gives it.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::proto::HookPlan;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("run hook {path}: {source}")]
    Spawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("hook {path} failed: {status}")]
    Failed { path: String, status: String },
    #[error("hook {path} timed out after {secs}s")]
    TimedOut { path: String, secs: u64 },
}

impl HookError {
    pub fn errno(&self) -> Option<i32> {
        match self {
            HookError::Spawn { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Where a hook runs: on the host (the runtime's side) or in the container (the init's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Host,
    Container,
}

/// Set by [`host_hooks_start_in_bundle`].
static HOST_HOOKS_IN_BUNDLE: AtomicBool = AtomicBool::new(false);

/// Makes host hooks of this process start in the bundle directory (for `create` and `run`).
pub fn host_hooks_start_in_bundle() {
    HOST_HOOKS_IN_BUNDLE.store(true, Ordering::Relaxed);
}

/// Runs host `hook` with the container state JSON on its stdin and waits for it (up to its
/// timeout). Without an `env` it inherits ours; see [`host_hooks_start_in_bundle`] for its cwd.
pub fn run_hook(hook: &HookPlan, state_json: &str) -> Result<(), HookError> {
    run_hook_on(Side::Host, hook, state_json)
}

/// The `bundle` of a state JSON, when it names an existing directory.
fn bundle_of(state_json: &str) -> Option<std::path::PathBuf> {
    let state: serde_json::Value = serde_json::from_str(state_json).ok()?;
    let bundle = std::path::PathBuf::from(state.get("bundle")?.as_str()?);
    bundle.is_dir().then_some(bundle)
}

fn run_hook_on(side: Side, hook: &HookPlan, state_json: &str) -> Result<(), HookError> {
    let path = hook.path.display().to_string();
    let spawn_err = |source| HookError::Spawn {
        path: path.clone(),
        source,
    };
    let mut cmd = Command::new(&hook.path);
    if let Some((arg0, rest)) = hook.args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    if side == Side::Host && HOST_HOOKS_IN_BUNDLE.load(Ordering::Relaxed) {
        if let Some(bundle) = bundle_of(state_json) {
            cmd.current_dir(bundle);
        }
    }
    if side == Side::Container || !hook.env.is_empty() {
        cmd.env_clear();
    }
    for kv in &hook.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(stdin) = child.stdin.take() {
        // A hook that does not read its stdin closes the pipe early: that is not a failure.
        write_without_sigpipe(stdin, state_json.as_bytes());
    }
    let exited = match hook.timeout_secs {
        None => true,
        Some(secs) => wait_exit(child.id() as i32, Duration::from_secs(secs)).map_err(spawn_err)?,
    };
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        return Err(HookError::TimedOut {
            path,
            secs: hook.timeout_secs.unwrap_or(0),
        });
    }
    let status = child.wait().map_err(spawn_err)?;
    if status.success() {
        return Ok(());
    }
    let status = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (_, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    };
    Err(HookError::Failed { path, status })
}

/// Runs every hook, logging a failure as a warning and going on: the spec's rule for poststart
/// and poststop hooks. `kind` names them in the warning.
pub fn run_hooks_warning(kind: &str, hooks: &[HookPlan], state_json: &str) {
    for hook in hooks {
        if let Err(e) = run_hook(hook, state_json) {
            eprintln!("husk: warning: {kind} {e}");
        }
    }
}

/// Runs host hooks in order, stopping at the first failure.
pub fn run_hooks(hooks: &[HookPlan], state_json: &str) -> Result<(), HookError> {
    hooks.iter().try_for_each(|h| run_hook(h, state_json))
}

/// Runs hooks in the container (createContainer, startContainer) in order, stopping at the first
/// failure: in the init's working directory, with exactly their `env`.
pub fn run_container_hooks(hooks: &[HookPlan], state_json: &str) -> Result<(), HookError> {
    hooks
        .iter()
        .try_for_each(|h| run_hook_on(Side::Container, h, state_json))
}

/// Writes `data` to a hook's stdin with SIGPIPE blocked in this thread: the CLI restores its
/// default action (it dies quietly when its own reader goes away), and a hook that exits without
/// reading must not kill the runtime with it. The SIGPIPE the kernel then queues for this
/// thread is taken before the old mask comes back. Write errors are ignored.
fn write_without_sigpipe(mut stdin: std::process::ChildStdin, data: &[u8]) {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    let mut sigpipe = SigSet::empty();
    sigpipe.add(Signal::SIGPIPE);
    let mut old = SigSet::empty();
    if nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&sigpipe), Some(&mut old))
        .is_err()
    {
        return;
    }
    let result = stdin.write_all(data);
    drop(stdin);
    let broken = result.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
    // EPIPE from a pipe comes with a SIGPIPE for the writing thread, pending now (checked, so
    // that the wait cannot block).
    if broken && !old.contains(Signal::SIGPIPE) && crate::sys::signal_pending(libc::SIGPIPE) {
        let _ = sigpipe.wait();
    }
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
}

/// Waits until the child `pid` exits or `timeout` passes; true when it exited.
fn wait_exit(pid: i32, timeout: Duration) -> std::io::Result<bool> {
    let pidfd = crate::sys::pidfd_open(pid)?;
    crate::sys::wait_readable(pidfd.as_fd(), timeout)
}

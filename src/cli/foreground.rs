//! Waiting for a container process in the foreground while passing signals on.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::tty::Relay;

/// Signals husk passes on to the container instead of dying of them.
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ] {
        set.remove(s);
    }
    set
}

/// Waits for `pid` (a child of husk), forwarding every signal husk receives meanwhile;
/// SIGWINCH resizes the relayed terminal instead.
pub fn wait_forwarding(
    pid: i32,
    signals: &SigSet,
    relay: Option<&Relay>,
) -> husk::Result<husk::ExitStatus> {
    let pid = Pid::from_raw(pid);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(husk::ExitStatus::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return Ok(husk::ExitStatus::Signaled(sig as i32))
            }
            Ok(_) => {}
            Err(nix::errno::Errno::ECHILD) => return Ok(husk::ExitStatus::Unknown),
            Err(e) => {
                return Err(husk::Error::Io {
                    context: "wait for container process".into(),
                    source: e.into(),
                })
            }
        }
        let Some(sig) = wait_signal(signals) else {
            continue;
        };
        match (sig, relay) {
            (libc::SIGCHLD, _) => {}
            (libc::SIGWINCH, Some(r)) => r.resize(),
            _ => forward(pid, sig),
        }
    }
}

/// Sends the raw signal number `sig` to `pid` (errors ignored: the process may have just exited).
fn forward(pid: Pid, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our unreaped child, so it
    // cannot have been recycled for another process.
    unsafe { libc::kill(pid.as_raw(), sig) };
}

/// sigwait(3) for any signal of `signals`, as a raw number. nix's `SigSet::wait` panics on a
/// real-time signal (it has no `Signal` for it), which would kill `husk run` and orphan the
/// container; those are forwarded like the others.
fn wait_signal(signals: &SigSet) -> Option<i32> {
    let mut sig: libc::c_int = 0;
    // SAFETY: both pointers are valid for the call; the set is an initialized sigset_t.
    let rc = unsafe { libc::sigwait(signals.as_ref(), &mut sig) };
    (rc == 0).then_some(sig)
}

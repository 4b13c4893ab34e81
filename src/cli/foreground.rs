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
        let Ok(sig) = signals.wait() else {
            continue;
        };
        match (sig, relay) {
            (Signal::SIGCHLD, _) => {}
            (Signal::SIGWINCH, Some(r)) => r.resize(),
            _ => {
                let _ = nix::sys::signal::kill(pid, sig);
            }
        }
    }
}

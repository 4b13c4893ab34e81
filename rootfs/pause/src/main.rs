//! `husk-pause`: the process that holds a pod's namespaces, the "pause" (sandbox) container that containerd's CRI
//! plugin starts for every pod (RunPodSandbox) from the image its `sandbox_image` setting names. The CRI test
//! (`tests/cri.rs`) packs it as that image, so the test needs no registry.
//!
//! It does nothing but wait. SIGINT or SIGTERM ends it with status 0; as the init of a pod's shared pid namespace it
//! inherits every orphan there and reaps each one as it exits (SIGCHLD), so no zombie piles up. Every other signal
//! keeps its default action (SIGKILL still ends it). Static like every binary of the workspace, so its image is this
//! one file.
//!
//! The three signals are blocked and taken with `sigwaitinfo`: a blocked signal stays pending even for a pid
//! namespace's init, which the kernel spares every signal it has no handler for, and nothing runs in a signal
//! handler.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::args_os().len() > 1 {
        let _ = writeln!(std::io::stderr(), "usage: husk-pause (no arguments)");
        return ExitCode::from(2);
    }
    let waited = SignalSet::of(&[libc::SIGINT, libc::SIGTERM, libc::SIGCHLD]);
    if let Err(e) = waited.block() {
        let _ = writeln!(std::io::stderr(), "husk-pause: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    loop {
        match waited.wait() {
            Ok(libc::SIGCHLD) => reap_exited_children(),
            Ok(signal) => {
                let _ = writeln!(std::io::stderr(), "husk-pause: signal {signal}, exiting");
                return ExitCode::SUCCESS;
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "husk-pause: sigwaitinfo: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}

/// Waits for every child that has exited (several exits may share one SIGCHLD); returns when none is left to reap.
fn reap_exited_children() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`, a valid local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        // 0: children remain but none has exited; -1: ECHILD (no children) or EINTR, both end this round.
        if pid <= 0 {
            return;
        }
    }
}

/// A set of signals (`sigset_t`).
struct SignalSet(libc::sigset_t);

impl SignalSet {
    fn of(signals: &[libc::c_int]) -> SignalSet {
        // SAFETY: sigemptyset initialises the zeroed set it is given; sigaddset with valid signal numbers only
        // sets bits in it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &signal in signals {
                libc::sigaddset(&mut set, signal);
            }
            SignalSet(set)
        }
    }

    /// Adds the set to the calling thread's signal mask (the program has no other thread).
    fn block(&self) -> std::io::Result<()> {
        // SAFETY: the set is initialised; the old mask is not asked for (null).
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.0, std::ptr::null_mut()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(rc))
        }
    }

    /// Waits for one signal of the (blocked) set and returns its number.
    fn wait(&self) -> std::io::Result<libc::c_int> {
        // SAFETY: the set is initialised; the siginfo is not asked for (null).
        let signal = unsafe { libc::sigwaitinfo(&self.0, std::ptr::null_mut()) };
        if signal < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(signal)
        }
    }
}

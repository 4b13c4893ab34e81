//! husk-init: the container side of husk.
//!
//! `husk create` re-executes the husk binary as `husk __husk_init__ <sync-fd>` (a private
//! marker, see [`is_init_invocation`]). The binary's `main` calls [`main`] before anything else
//! (no threads, no logger), and from there on everything up to the `execve` of the user's
//! process lives in this crate (an implementation crate of husk, not a stable API):
//! - stage 1 ([`stage1`]) joins and creates the namespaces in the order the kernel needs, forks
//!   when a pid or time namespace must take effect, reports the child's pid and exits;
//! - stage 2 ([`stage2`]) is the container's PID 1: root filesystem, process attributes, then it
//!   reports ready and blocks on the exec fifo until `husk start`.
//!
//! Errors go back to the parent as [`proto::InitFailure`] (the step and its errno).

// The host-write lint (clippy.toml) guards the host side. Everything here writes inside the
// container: after pivot_root, through RESOLVE_IN_ROOT, or to the init's own /proc/self.
#![allow(clippy::disallowed_methods)]

pub mod hooks;
pub mod mountinfo;
pub mod procfs;
pub mod proto;
mod rootfs;
pub mod security;
mod stage1;
mod stage2;
pub mod sys;

use proto::{Channel, InitFailure, ToParent};

/// Whether this process was started as the init: `argv[1]` is husk's private marker
/// ([`proto::INIT_ARG`]) and `argv[2]` names a descriptor that is a Unix SEQPACKET socket, as
/// the bootstrap socket is. Anything else is left to the program's own `main`.
pub fn is_init_invocation() -> bool {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_none_or(|a| a != proto::INIT_ARG) {
        return false;
    }
    args.next()
        .and_then(|fd| fd.to_str()?.parse::<std::os::fd::RawFd>().ok())
        .is_some_and(sys::is_seqpacket_socket)
}

/// Entry point of the init. Never returns: it execs the container process or exits non-zero.
pub fn main() -> ! {
    let Some(fd) = std::env::args()
        .nth(2)
        .and_then(|a| a.parse::<std::os::fd::RawFd>().ok())
        .filter(|fd| sys::is_seqpacket_socket(*fd))
    else {
        eprintln!("husk init: this command is internal to husk and takes the bootstrap socket fd");
        std::process::exit(2);
    };
    // SAFETY: the parent placed the child end of the bootstrap socketpair at this descriptor and
    // nothing else in this fresh process refers to it.
    let channel = unsafe { Channel::from_raw_fd(fd) };
    let failure = match stage1::run(&channel) {
        Ok(never) => match never {},
        Err(failure) => failure,
    };
    // The parent may be gone already (after `Ready`); stderr is then the only witness.
    if channel
        .send(&ToParent::Failed(failure.clone()), &[])
        .is_err()
    {
        eprintln!("husk init: {failure}");
    }
    std::process::exit(1);
}

/// setns into a mount or user namespace and unshare of a user namespace refuse a process with
/// more than one thread (EINVAL, which names no cause). The init is a fresh exec of the
/// embedding program, so it has threads only when that program started some before calling
/// `husk::init_if_requested` (an async runtime's `main` attribute, a logger): say so.
pub(crate) fn single_threaded() -> Result<(), InitFailure> {
    let threads = std::fs::read_dir("/proc/self/task")
        .step(|| "count the init's threads in /proc/self/task".into())?
        .count();
    if threads > 1 {
        return Err(failure(
            "start the container init",
            format!(
                "the init has {threads} threads, and joining or creating namespaces needs one: \
                 call husk::init_if_requested() first in main, before any thread starts \
                 (e.g. before an async runtime), or use Runtime::with_init_binary"
            ),
        ));
    }
    Ok(())
}

/// Attaches a step description (and the errno) to a failed call.
pub(crate) trait Step<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, InitFailure>;
}

fn errno_of(e: &std::io::Error) -> Option<i32> {
    e.raw_os_error()
}

impl<T> Step<T> for std::io::Result<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, InitFailure> {
        self.map_err(|e| InitFailure {
            step: what(),
            errno: errno_of(&e),
            detail: if e.raw_os_error().is_some() {
                None
            } else {
                Some(e.to_string())
            },
        })
    }
}

impl<T> Step<T> for nix::Result<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, InitFailure> {
        self.map_err(|e| InitFailure {
            step: what(),
            errno: Some(e as i32),
            detail: None,
        })
    }
}

/// A failure with no errno.
pub(crate) fn failure(step: impl Into<String>, detail: impl Into<String>) -> InitFailure {
    InitFailure {
        step: step.into(),
        errno: None,
        detail: Some(detail.into()),
    }
}

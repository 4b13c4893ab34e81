//! Named fault points for the crash-safety tests (issue 13).
//!
//! `HUSK_FAULT=<point>` makes husk SIGKILL itself when it reaches the step named `<point>`
//! (the names are the `&str` arguments of [`point`] across the crate, e.g. `create.cgroup-made`,
//! `delete.killed`). `HUSK_FAULT=<point>:stop-init` names a [`stop_init_point`] instead, where
//! the container's init waits for the host, and stops the init there with SIGSTOP: that is how a
//! wedged init looks to the host (see the bootstrap silence limit in `spawn`).
//!
//! Always compiled in: the tests drive the release binary, and the variable gives the caller
//! nothing it does not already have (whoever sets husk's environment can kill it, or stop its
//! children). The cost is one environment lookup per point, a handful per command.

use std::fmt::Display;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const VARIABLE: &str = "HUSK_FAULT";

/// What the fault named in `HUSK_FAULT` does at its point.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    KillSelf,
    StopInit,
}

/// `point` is only formatted when the variable is set: most runs never pay for it.
fn requested(point: impl Display) -> Option<Action> {
    let wanted = std::env::var_os(VARIABLE)?;
    let wanted = wanted.to_str()?;
    let (name, action) = wanted.split_once(':').unwrap_or((wanted, "kill"));
    if name != point.to_string() {
        return None;
    }
    match action {
        "stop-init" => Some(Action::StopInit),
        _ => Some(Action::KillSelf),
    }
}

/// The step `point` of a command is reached: SIGKILLs this process when `HUSK_FAULT` names it.
pub(crate) fn point(point: impl Display) {
    if requested(point) == Some(Action::KillSelf) {
        let _ = kill(Pid::this(), Signal::SIGKILL);
    }
}

/// A step where the container's init (`init_pid`) waits for the host: `HUSK_FAULT=<point>:stop-init`
/// stops it there with SIGSTOP. Only such steps make a stop deterministic: an init that is free
/// to run on may already have sent its next message when the signal lands.
pub(crate) fn stop_init_point(point: impl Display, init_pid: i32) {
    if requested(point) == Some(Action::StopInit) {
        let _ = kill(Pid::from_raw(init_pid), Signal::SIGSTOP);
    }
}

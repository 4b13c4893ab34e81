//! Named fault points for the crash-safety tests (issue 13).
//!
//! `HUSK_FAULT=<point>` makes husk SIGKILL itself when it reaches the step named `<point>`
//! (the names are the `&str` arguments of [`point`] across the crate, e.g. `create.cgroup-made`,
//! `delete.killed`). `HUSK_FAULT=<point>:stop-init` instead stops the container's init with
//! SIGSTOP there, which is how a wedged init looks to the host (see the bootstrap silence limit
//! in `spawn`).
//!
//! Always compiled in: the tests drive the release binary, and the variable gives the caller
//! nothing it does not already have (whoever sets husk's environment can kill it, or stop its
//! children). The cost is one environment lookup per point, a handful per command.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const VARIABLE: &str = "HUSK_FAULT";

/// What the fault named in `HUSK_FAULT` does at its point.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    KillSelf,
    StopInit,
}

fn requested(point: &str) -> Option<Action> {
    let wanted = std::env::var_os(VARIABLE)?;
    let wanted = wanted.to_str()?;
    let (name, action) = wanted.split_once(':').unwrap_or((wanted, "kill"));
    if name != point {
        return None;
    }
    match action {
        "stop-init" => Some(Action::StopInit),
        _ => Some(Action::KillSelf),
    }
}

/// The step `point` of a command is reached: SIGKILLs this process when `HUSK_FAULT` names it.
pub(crate) fn point(point: &str) {
    if requested(point) == Some(Action::KillSelf) {
        let _ = kill(Pid::this(), Signal::SIGKILL);
    }
}

/// As [`point`], at a step where the container's init (`init_pid`) runs: `HUSK_FAULT=<point>:stop-init`
/// stops it there.
pub(crate) fn init_point(point: &str, init_pid: i32) {
    match requested(point) {
        Some(Action::KillSelf) => {
            let _ = kill(Pid::this(), Signal::SIGKILL);
        }
        Some(Action::StopInit) => {
            let _ = kill(Pid::from_raw(init_pid), Signal::SIGSTOP);
        }
        None => {}
    }
}

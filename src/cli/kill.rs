//! `husk kill`.

use std::path::Path;
use std::str::FromStr;

use clap::Args;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{runtime, CmdResult};

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Send the signal to every process in the container.
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    /// Signal name (KILL or SIGKILL) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// Parses `KILL`, `SIGKILL`, `kill` or `9`.
pub fn parse_signal(s: &str) -> Result<Signal, String> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("unknown signal {s:?}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| format!("unknown signal {s:?}"))
}

pub fn run(root: &Path, a: KillArgs) -> CmdResult {
    // The container first, then the signal: as with runc, an unknown container is the error a
    // caller sees, whatever the signal.
    let container = runtime(root).load(&a.id)?;
    // Signal 0 only asks whether the container's processes exist (kill(2)); nix has no Signal
    // for it.
    let signal = match a.signal.trim() {
        "0" => None,
        s => Some(parse_signal(s)?),
    };
    let stopped = container.status() == husk::Status::Stopped;
    if a.all && stopped {
        // As runc: `kill --all` of a stopped container signals whatever is left in its cgroup
        // (processes of a container without a pid namespace may outlive its init) and succeeds.
        for pid in container.pids().unwrap_or_default() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
        return Ok(0);
    }
    match signal {
        Some(signal) => container.kill(signal, a.all)?,
        None if stopped => return Err(format!("container {} is not running", a.id).into()),
        None => {
            let pids = if a.all {
                container.pids()?
            } else {
                container.pid().into_iter().collect()
            };
            for pid in pids {
                nix::sys::signal::kill(Pid::from_raw(pid), None)
                    .map_err(|e| format!("signal 0 to {pid}: {e}"))?;
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_forms() {
        assert_eq!(parse_signal("KILL"), Ok(Signal::SIGKILL));
        assert_eq!(parse_signal("SIGKILL"), Ok(Signal::SIGKILL));
        assert_eq!(parse_signal("term"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }
}

//! Trying one system call with harmless arguments, to see whether a seccomp filter lets it through.
//!
//! Each known call has default arguments that change nothing (queries, or a resource that is released at once).
//! Calls whose arguments are all integers accept overrides, so a test can exercise argument-matching filter rules
//! (e.g. `getpriority` with `which` = 0 or 1).

use serde_json::{json, Value};

use crate::sys::{self, errno_name};

/// Names of the system calls the probe knows how to try.
pub const KNOWN: &[&str] = &[
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getpgid",
    "getsid",
    "getpriority",
    "sched_yield",
    "personality",
    "kill",
    "unshare",
    "dup",
    "socket",
    "getcwd",
    "uname",
    "getrusage",
    "sysinfo",
    "getrandom",
    "clock_gettime",
];

/// Whether `name` takes only integer arguments that a caller may override.
fn integer_args_only(name: &str) -> bool {
    matches!(
        name,
        "getpgid"
            | "getsid"
            | "getpriority"
            | "personality"
            | "kill"
            | "unshare"
            | "dup"
            | "socket"
    )
}

/// Tries `name` with its default arguments, or with `overrides` (integers) in their place. Returns a JSON object:
/// `{"syscall", "args", "ret", "errno", "errno_name"}` (`ret` null when the call failed, `errno` null when it
/// succeeded), or `{"syscall", "error"}` when the probe cannot try that call.
pub fn try_syscall(name: &str, overrides: &[i64]) -> Value {
    if !KNOWN.contains(&name) {
        return json!({ "syscall": name, "error": format!("unknown to the probe; known: {}", KNOWN.join(" ")) });
    }
    if !overrides.is_empty() && !integer_args_only(name) {
        return json!({ "syscall": name, "error": "this call takes pointer arguments, which cannot be overridden" });
    }
    let mut buffer = [0u8; 4096];
    let buf = buffer.as_mut_ptr() as libc::c_long;
    let own_pid = libc::c_long::from(sys::getpid());
    let (number, defaults): (libc::c_long, Vec<libc::c_long>) = match name {
        "getpid" => (libc::SYS_getpid, vec![]),
        "getppid" => (libc::SYS_getppid, vec![]),
        "gettid" => (libc::SYS_gettid, vec![]),
        "getuid" => (libc::SYS_getuid, vec![]),
        "geteuid" => (libc::SYS_geteuid, vec![]),
        "getgid" => (libc::SYS_getgid, vec![]),
        "getegid" => (libc::SYS_getegid, vec![]),
        "getpgid" => (libc::SYS_getpgid, vec![0]),
        "getsid" => (libc::SYS_getsid, vec![0]),
        "getpriority" => (
            libc::SYS_getpriority,
            vec![libc::c_long::from(libc::PRIO_PROCESS), 0],
        ),
        "sched_yield" => (libc::SYS_sched_yield, vec![]),
        "personality" => (libc::SYS_personality, vec![0xffff_ffff]),
        "kill" => (libc::SYS_kill, vec![own_pid, 0]),
        "unshare" => (libc::SYS_unshare, vec![0]),
        "dup" => (libc::SYS_dup, vec![0]),
        "socket" => (
            libc::SYS_socket,
            vec![
                libc::c_long::from(libc::AF_UNIX),
                libc::c_long::from(libc::SOCK_STREAM | libc::SOCK_CLOEXEC),
                0,
            ],
        ),
        "getcwd" => (libc::SYS_getcwd, vec![buf, buffer.len() as libc::c_long]),
        "uname" => (libc::SYS_uname, vec![buf]),
        "getrusage" => (
            libc::SYS_getrusage,
            vec![libc::c_long::from(libc::RUSAGE_SELF), buf],
        ),
        "sysinfo" => (libc::SYS_sysinfo, vec![buf]),
        "getrandom" => (libc::SYS_getrandom, vec![buf, 8, 0]),
        "clock_gettime" => (
            libc::SYS_clock_gettime,
            vec![libc::c_long::from(libc::CLOCK_MONOTONIC), buf],
        ),
        _ => unreachable!("{name} is in KNOWN"),
    };
    let mut args = [0 as libc::c_long; 6];
    let chosen: Vec<libc::c_long> = if overrides.is_empty() {
        defaults
    } else {
        overrides.iter().map(|&a| a as libc::c_long).collect()
    };
    for (slot, value) in args.iter_mut().zip(&chosen) {
        *slot = *value;
    }
    // SAFETY: pointer arguments (only in the defaults of calls that take them, never overridable) point into
    // `buffer`, which is 4096 writable bytes that outlive the call; every size passed fits in it.
    let result = unsafe { sys::raw_syscall(number, args) };
    if let Ok(fd) = result {
        if matches!(name, "dup" | "socket") {
            sys::close(fd as i32);
        }
    }
    match result {
        Ok(ret) => {
            json!({ "syscall": name, "args": chosen, "ret": ret, "errno": null, "errno_name": null })
        }
        Err(errno) => json!({
            "syscall": name, "args": chosen, "ret": null, "errno": errno, "errno_name": errno_name(errno)
        }),
    }
}

/// Parses `name` or `name:a,b,c` (integers in decimal or 0x hex).
pub fn parse_spec(spec: &str) -> Result<(String, Vec<i64>), String> {
    match spec.split_once(':') {
        None => Ok((spec.to_owned(), Vec::new())),
        Some((name, args)) => {
            let args = args
                .split(',')
                .filter(|a| !a.is_empty())
                .map(parse_int)
                .collect::<Result<Vec<_>, _>>()?;
            Ok((name.to_owned(), args))
        }
    }
}

pub fn parse_int(text: &str) -> Result<i64, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("bad integer {text:?}: {e}"))
}

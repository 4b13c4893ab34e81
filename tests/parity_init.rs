//! runc parity of the container side (issues 11 and 16), checked from inside real containers: descriptors marked
//! close-on-exec where `close_range` is refused, hooks that do not read their stdin, configs as other tools write
//! them (no mount namespace, the rootless spec, read-only /dev, tmpfs modes, tmpcopyup, ...), signal state reset
//! before execve, hostile files in the image, and the validation of root.path and additionalGids.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::Duration;

use husk_testing::{
    require_root, run_with_timeout, unique_id, Bundle, HookKind, OutputExt, Runtime,
    DEFAULT_TIMEOUT,
};
use serde_json::{json, Value};

fn runtime() -> Runtime {
    require_root();
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(10);

/// The descriptor numbers `ls /proc/self/fd` printed: stdio and ls's own directory descriptor (3) when nothing
/// leaked.
fn listed_fds(stdout: &str) -> Vec<u32> {
    let mut fds: Vec<u32> = stdout
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    fds.sort();
    fds
}

/// `run --bundle <bundle> <new id>` with `cmd` adjusted by `adjust` (e.g. a pre_exec), force-deleted afterwards.
fn run_with(rt: &Runtime, bundle: &Bundle, adjust: impl FnOnce(&mut Command)) -> Output {
    let guard = rt.guard(unique_id("run"));
    let mut cmd = rt.cmd(
        ["run", "--bundle"]
            .map(OsStr::new)
            .into_iter()
            .chain([bundle.path().as_os_str(), OsStr::new(guard.id())]),
    );
    adjust(&mut cmd);
    let out = run_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
    drop(guard);
    out
}

// ---- close_range refused (issue 11) ----

/// A seccomp allowlist like older docker and podman profiles: husk's hardened allowlist without `close_range`.
fn allowlist_without_close_range() -> Value {
    let mut profile = serde_json::to_value(husk::profile::default_seccomp_profile()).unwrap();
    let mut removed = false;
    for rule in profile["syscalls"].as_array_mut().unwrap() {
        let names = rule["names"].as_array_mut().unwrap();
        let before = names.len();
        names.retain(|n| n != "close_range");
        removed |= names.len() != before;
    }
    assert!(
        removed,
        "the hardened allowlist no longer names close_range"
    );
    profile
}

#[test]
fn seccomp_allowlist_without_close_range_runs_and_leaks_no_fd() {
    let rt = runtime();
    for no_new_privs in [false, true] {
        let bundle = Bundle::new(&rt)
            .args(["ls", "/proc/self/fd"])
            .no_new_privileges(no_new_privs)
            .set("/linux/seccomp", allowlist_without_close_range());
        let stdout = rt.run_bundle_ok(&bundle);
        assert_eq!(
            listed_fds(&stdout),
            [0, 1, 2, 3],
            "noNewPrivileges {no_new_privs}: {stdout}"
        );
    }
}

/// Installs, in the calling (about to exec) process, a seccomp filter that fails `close_range` with EPERM and allows
/// everything else: a runtime started by a sandbox with an old profile, or on a kernel without the call.
fn refuse_close_range(cmd: &mut Command) {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let program = [
        stmt(load, 4), // seccomp_data.arch
        jump(AUDIT_ARCH_X86_64, 0, 3),
        stmt(load, 0), // seccomp_data.nr
        jump(libc::SYS_close_range as u32, 0, 1),
        stmt(ret, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(ret, SECCOMP_RET_ALLOW),
    ];
    // SAFETY: the closure only calls prctl, which is async-signal-safe, on data it owns.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn close_range_refused_to_the_runtime_falls_back_for_run_and_exec() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).args(["ls", "/proc/self/fd"]);
    let out = run_with(&rt, &bundle, refuse_close_range);
    assert!(out.status.success(), "run:\n{}", out.describe());
    assert_eq!(listed_fds(&out.stdout_str()), [0, 1, 2, 3], "run");

    let bundle = Bundle::new(&rt).args(["sleep", "1000"]);
    let c = rt.create(&bundle);
    c.start();
    let mut cmd = rt.cmd(["exec", c.id(), "ls", "/proc/self/fd"]);
    refuse_close_range(&mut cmd);
    let out = run_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
    assert!(out.status.success(), "exec:\n{}", out.describe());
    assert_eq!(listed_fds(&out.stdout_str()), [0, 1, 2, 3], "exec");
}

// ---- hooks that do not read their stdin (issue 11) ----

#[test]
fn hooks_that_do_not_read_the_state_do_not_kill_the_runtime() {
    let rt = runtime();
    // A state larger than a pipe's buffer: the write cannot complete before `true` exits, so every hook of every
    // round closes the pipe under the runtime's write.
    let mut bundle = Bundle::new(&rt)
        .args(["true"])
        .set("/annotations", json!({ "big": "x".repeat(100 * 1024) }));
    for kind in HookKind::ALL {
        bundle = bundle.add_hook(kind, "/bin/true", &[], &[], None);
    }
    for round in 0..10 {
        let c = rt.create(&bundle);
        c.start();
        assert!(c.wait_status("stopped", WAIT), "round {round}: not stopped");
        let out = rt.run(["delete", c.id()]);
        assert!(
            out.status.success(),
            "round {round}: delete\n{}",
            out.describe()
        );
    }
}

//! The pause program against the real kernel: it ends cleanly on SIGTERM and SIGINT, and as a pid namespace's init it
//! reaps the orphans it inherits. Needs root (a new pid namespace) and util-linux's `unshare` and `nsenter`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PAUSE: &str = env!("CARGO_BIN_EXE_husk-pause");
const TIMEOUT: Duration = Duration::from_secs(30);

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The signals blocked by `pid` (SigBlk of /proc/PID/status), as a bit mask (bit N-1 for signal N).
fn blocked_signals(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).expect("SigBlk is hex"))
        .unwrap_or(0)
}

/// True once `pid` waits for SIGINT, SIGTERM and SIGCHLD: they are in its blocked mask, or it sleeps in
/// sigwaitinfo (during which the kernel shows the mask without the signals waited for).
fn waits_for_signals(pid: u32) -> bool {
    let want = [libc::SIGINT, libc::SIGTERM, libc::SIGCHLD]
        .iter()
        .fold(0u64, |mask, s| mask | 1 << (s - 1));
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    blocked_signals(pid) & want == want || wchan.contains("sigtimedwait")
}

/// Kills the process (and with `--kill-child`, unshare's pause) if a check fails first.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("husk-pause did not exit within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ends_with_status_0_on(signal: libc::c_int) {
    let mut pause = KillOnDrop(
        Command::new(PAUSE)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pause = &mut pause.0;
    wait_until("husk-pause blocks the signals it waits for", || {
        waits_for_signals(pause.id())
    });
    assert!(
        pause.try_wait().unwrap().is_none(),
        "husk-pause exited by itself"
    );
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our unreaped child.
    assert_eq!(unsafe { libc::kill(pause.id() as i32, signal) }, 0);
    let status = wait_exit(pause);
    assert_eq!(status.code(), Some(0), "after signal {signal}: {status:?}");
}

#[test]
fn sigterm_ends_it_with_status_0() {
    ends_with_status_0_on(libc::SIGTERM);
}

#[test]
fn sigint_ends_it_with_status_0() {
    ends_with_status_0_on(libc::SIGINT);
}

#[test]
fn arguments_are_refused() {
    let out = Command::new(PAUSE).arg("-v").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}

/// The children of `pid` (zombies included: they stay on the list until reaped).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[test]
fn as_a_pid_namespace_init_it_reaps_inherited_orphans() {
    for tool in ["unshare", "nsenter"] {
        assert!(
            ["/usr/bin", "/bin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists()),
            "this test needs util-linux's {tool}"
        );
    }
    // unshare forks husk-pause as pid 1 of a new pid namespace and waits for it.
    let mut unshare = KillOnDrop(
        Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", PAUSE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let unshare = &mut unshare.0;
    let mut pause = 0;
    wait_until("unshare forks husk-pause", || {
        pause = children(unshare.id()).first().copied().unwrap_or(0);
        pause != 0 && waits_for_signals(pause)
    });
    // A shell in the namespace starts a sleep in the background and exits at once: the sleep's parent, nsenter, is
    // outside the namespace, so the orphan goes to the namespace's init.
    let status = Command::new("nsenter")
        .args(["--target", &pause.to_string(), "--pid", "--"])
        .args(["/bin/sh", "-c", "sleep 2 & exit 0"])
        .status()
        .unwrap();
    assert!(status.success(), "nsenter: {status:?}");
    wait_until("husk-pause adopts the orphaned sleep", || {
        !children(pause).is_empty()
    });
    // A zombie stays on its parent's children list until the parent reaps it.
    wait_until("husk-pause reaps the orphan once it exits", || {
        children(pause).is_empty()
    });
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is unshare's unreaped child (unshare still runs).
    assert_eq!(unsafe { libc::kill(pause as i32, libc::SIGTERM) }, 0);
    let status = wait_exit(unshare);
    assert_eq!(
        status.code(),
        Some(0),
        "unshare passes on husk-pause's status"
    );
}

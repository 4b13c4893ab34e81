//! Detached containers under a subreaper: after `create`, `run -d` or `exec -d` returns, no runtime process is
//! left, and the container's process is a child of the caller (this test process, which makes itself a child
//! subreaper, as containerd's shim does). `--pid-file` is complete when the runtime returns and never visible
//! half-written (it appears by rename).
//!
//! Own test binary: the subreaper flag is process-wide, and every test here looks at all of this process's
//! children, so the tests take turns.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

mod io_support;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

use husk_testing::{is_gone, unique_id, wait_for, Bundle, Runtime, Spawned, TempDir};
use io_support::{read_pid_file, runtime, sleeper, status_field, WAIT};

/// Held by each test for its whole run.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialize() -> std::sync::MutexGuard<'static, ()> {
    let guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    guard
}

fn my_pid() -> i32 {
    std::process::id() as i32
}

fn parent_of(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("process {pid} is gone: {e}"));
    status_field(&status, "PPid")
        .parse()
        .expect("PPid is a number")
}

/// Every process below this one (children of all its threads, their children, ...).
fn descendants() -> BTreeSet<i32> {
    let mut all: BTreeSet<i32> = BTreeSet::new();
    let mut queue = vec![my_pid()];
    while let Some(pid) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
            {
                if all.insert(child) {
                    queue.push(child);
                }
            }
        }
    }
    all
}

/// Collects the exit status of `pid` (our child) in the background, so it does not linger as a zombie that a
/// runtime's `delete` would wait for.
fn reap_in_background(pid: i32) {
    std::thread::spawn(move || {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    });
}

/// Asserts that nothing but `expected` (and their descendants) is left below this process, apart from zombies
/// (exited, just not yet reaped by us), which are reaped.
fn assert_only_descendants(expected: &[i32], what: &str) {
    let mut keep: BTreeSet<i32> = expected.iter().copied().collect();
    // Descendants of the expected processes belong to them.
    for pid in descendants() {
        if keep.contains(&parent_of_or_zero(pid)) {
            keep.insert(pid);
        }
    }
    let extra: Vec<String> = descendants()
        .into_iter()
        .filter(|pid| !keep.contains(pid) && !is_gone(*pid))
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            )
        })
        .collect();
    assert!(extra.is_empty(), "{what} left processes behind: {extra:#?}");
    for pid in descendants() {
        if !keep.contains(&pid) && parent_of_or_zero(pid) == my_pid() {
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
        }
    }
}

fn parent_of_or_zero(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Watches a directory with inotify and reports what happened to one file name in it.
struct DirWatch {
    fd: OwnedFd,
}

impl DirWatch {
    fn new(dir: &Path) -> DirWatch {
        // SAFETY: inotify_init1 takes flags only; the result is checked before use.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        assert!(
            raw >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let path = CString::new(dir.as_os_str().as_encoded_bytes()).expect("path without NUL");
        let mask = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_MODIFY;
        // SAFETY: `path` is a NUL-terminated string that outlives the call; fd is a live inotify descriptor.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        DirWatch { fd }
    }

    /// The event masks recorded so far for entries named `name`.
    fn events_for(&self, name: &str) -> Vec<u32> {
        let mut masks = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: `buf` is valid for writes of its length for the duration of the call.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let data = &buf[..n as usize];
            let mut offset = 0;
            // struct inotify_event: wd i32, mask u32, cookie u32, len u32, then `len` bytes of NUL-padded name.
            while offset + 16 <= data.len() {
                let field = |at: usize| {
                    u32::from_ne_bytes(data[offset + at..offset + at + 4].try_into().unwrap())
                };
                let (mask, len) = (field(4), field(12) as usize);
                let raw_name = &data[offset + 16..offset + 16 + len];
                let entry = raw_name.split(|b| *b == 0).next().unwrap_or_default();
                if entry == name.as_bytes() {
                    masks.push(mask);
                }
                offset += 16 + len;
            }
        }
        masks
    }
}

/// Checks that `name` in the watched dir was put in place by a rename only (never created or written under its
/// final name), and that it holds `expected_pid` now.
fn assert_pid_file_atomic(watch: &DirWatch, dir: &Path, name: &str, expected_pid: i32) {
    let events = watch.events_for(name);
    assert!(
        events.iter().any(|m| m & libc::IN_MOVED_TO != 0),
        "the pid file did not appear by rename (events {events:x?})"
    );
    assert!(
        !events
            .iter()
            .any(|m| m & (libc::IN_CREATE | libc::IN_MODIFY) != 0),
        "the pid file was created or written under its final name, so a reader could see it incomplete \
         (events {events:x?})"
    );
    assert_eq!(read_pid_file(&dir.join(name)), expected_pid);
}

#[test]
fn create_leaves_the_init_to_the_callers_subreaper_and_nothing_else() {
    let _turn = serialize();
    let rt = runtime();
    let bundle = sleeper(&rt);
    let id = unique_id("reap");
    let guard = rt.guard(&id);
    let dir = TempDir::new("husk-test-pid");
    let watch = DirWatch::new(dir.path());
    let pid_file = dir.join("init.pid");
    let out = Spawned::start(&mut rt.cmd([
        "create",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]))
    .wait(WAIT);
    assert!(out.status.success(), "create failed: {out:?}");
    // Complete as soon as create returns.
    let init = read_pid_file(&pid_file);
    reap_in_background(init);
    assert_pid_file_atomic(&watch, dir.path(), "init.pid", init);
    assert_eq!(guard.pid(), init, "pid file and state disagree");
    assert_eq!(
        parent_of(init),
        my_pid(),
        "the container's init is not a child of the subreaper that ran create"
    );
    assert_only_descendants(&[init], "create");

    // Still ours once started.
    guard.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
    assert_eq!(parent_of(init), my_pid());
    assert_only_descendants(&[init], "start");
    rt.run_ok(["kill", &id, "KILL"]);
    assert!(wait_for(|| is_gone(init), WAIT));
}

#[test]
fn detached_run_leaves_the_init_to_the_callers_subreaper_and_nothing_else() {
    let _turn = serialize();
    let rt = runtime();
    let bundle = sleeper(&rt);
    let id = unique_id("reap");
    let guard = rt.guard(&id);
    let dir = TempDir::new("husk-test-pid");
    let watch = DirWatch::new(dir.path());
    let pid_file = dir.join("run.pid");
    let out = Spawned::start(&mut rt.cmd([
        "run",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]))
    .wait(WAIT);
    assert!(out.status.success(), "run -d failed: {out:?}");
    let init = read_pid_file(&pid_file);
    reap_in_background(init);
    assert_pid_file_atomic(&watch, dir.path(), "run.pid", init);
    assert_eq!(guard.pid(), init);
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
    assert_eq!(
        parent_of(init),
        my_pid(),
        "the container's init is not a child of the subreaper that ran run -d"
    );
    assert_only_descendants(&[init], "run -d");
    rt.run_ok(["kill", &id, "KILL"]);
    assert!(wait_for(|| is_gone(init), WAIT));
}

#[test]
fn detached_exec_leaves_the_process_to_the_callers_subreaper_and_nothing_else() {
    let _turn = serialize();
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = start_container(&rt, &bundle);
    let init = c.pid();
    reap_in_background(init);
    let dir = TempDir::new("husk-test-pid");
    let watch = DirWatch::new(dir.path());
    let pid_file = dir.join("exec.pid");
    let out = Spawned::start(&mut rt.cmd([
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        c.id(),
        "sleep",
        "1000",
    ]))
    .wait(WAIT);
    assert!(out.status.success(), "exec -d failed: {out:?}");
    let process = read_pid_file(&pid_file);
    reap_in_background(process);
    assert_pid_file_atomic(&watch, dir.path(), "exec.pid", process);
    assert_eq!(
        parent_of(process),
        my_pid(),
        "the exec'd process is not a child of the subreaper that ran exec -d"
    );
    assert_only_descendants(&[init, process], "exec -d");
    rt.run_ok(["kill", c.id(), "KILL"]);
    assert!(wait_for(|| is_gone(init) && is_gone(process), WAIT));
}

fn start_container<'rt>(rt: &'rt Runtime, bundle: &Bundle) -> husk_testing::ContainerGuard<'rt> {
    let c = rt.create(bundle);
    c.start();
    assert!(
        wait_for(|| bundle.read_shared("ready").is_some(), WAIT),
        "container did not start"
    );
    c
}

/// A process that `exec -d` started and that ended before the runtime exited: its exit status is
/// the subreaper's (containerd's shim, conmon), never taken by the runtime on its way out. strace
/// holds the runtime's pid-file rename for 300 ms, so the process has ended by then. Before the
/// fix the runtime reaped it when it dropped the process's handle: podman's exec failed with 255
/// and a containerd exec never saw its process end.
#[test]
fn detached_exec_of_a_quick_process_leaves_its_exit_status_to_the_subreaper() {
    let _turn = serialize();
    let rt = runtime();
    assert!(
        std::process::Command::new("strace")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "strace is needed to hold the runtime (make deps installs it)"
    );
    let bundle = sleeper(&rt);
    let c = start_container(&rt, &bundle);
    let init = c.pid();
    reap_in_background(init);
    let dir = TempDir::new("husk-test-pid");
    let pid_file = dir.join("exec.pid");
    let mut cmd = std::process::Command::new("strace");
    cmd.args([
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=rename,renameat,renameat2",
    ])
    .args(["-e", "inject=rename,renameat,renameat2:delay_enter=300000"])
    .arg(rt.binary())
    .arg("--root")
    .arg(rt.root())
    .args(["exec", "-d", "--pid-file"])
    .arg(&pid_file)
    .args([c.id(), "sh", "-c", "exit 7"]);
    let out = Spawned::start(&mut cmd).wait(WAIT);
    assert!(out.status.success(), "exec -d failed: {out:?}");
    let process = read_pid_file(&pid_file);
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(process), None);
    assert!(
        matches!(status, Ok(nix::sys::wait::WaitStatus::Exited(_, 7))),
        "the subreaper did not get the exec'd process's exit status: {status:?}"
    );
    rt.run_ok(["kill", c.id(), "KILL"]);
    assert!(wait_for(|| is_gone(init), WAIT));
}

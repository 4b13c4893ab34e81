//! A container's pid reused by an unrelated process is never signalled (issue 13): the init is
//! killed from outside, its pid is handed to a harmless `sleep` of this test (through the pid
//! namespace's `ns_last_pid`), and then `state`, `kill` and `delete --force` of the container
//! must report it stopped and leave the `sleep` alive. husk checks a recorded pid's start time
//! before signalling it.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use husk_testing::{is_gone, wait_for, Bundle, Runtime};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(30);
const LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";

/// Starts `sleep` as pid `pid`: the kernel gives a new process the pid after `ns_last_pid` when
/// it is free. Other processes of the machine may take it first, hence the retries.
fn sleep_with_pid(pid: i32) -> Option<Child> {
    for _ in 0..200 {
        std::fs::write(LAST_PID, (pid - 1).to_string()).expect("write ns_last_pid");
        let mut child = Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        if child.id() as i32 == pid {
            return Some(child);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

#[test]
fn a_reused_init_pid_is_never_signalled() {
    husk_testing::require_root();
    let rt = runtime();
    let bundle = Bundle::new(&rt).sh("exec sleep 1000");
    let c = rt.create(&bundle);
    c.start();
    let pid = c.pid();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    // The init is not ours: its reaper (PID 1 here, every second or two) frees the pid.
    assert!(
        wait_for(
            || !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            WAIT
        ),
        "the killed init {pid} was never reaped"
    );
    let mut stranger =
        sleep_with_pid(pid).unwrap_or_else(|| panic!("could not get pid {pid} again"));
    let alive = |stranger: &mut Child| stranger.try_wait().unwrap().is_none();

    assert_eq!(
        rt.status(c.id()),
        "stopped",
        "a stranger's pid must not make the container look alive"
    );
    let kill = rt.run(["kill", c.id(), "KILL"]);
    assert!(
        !kill.status.success(),
        "kill of a stopped container must fail"
    );
    assert!(
        alive(&mut stranger),
        "husk kill signalled the process that reused pid {pid}"
    );
    let delete = rt.run(["delete", "--force", c.id()]);
    assert!(
        delete.status.success(),
        "delete --force: {}",
        String::from_utf8_lossy(&delete.stderr)
    );
    std::thread::sleep(Duration::from_millis(200)); // a SIGKILL, had one been sent, lands at once
    assert!(
        alive(&mut stranger),
        "husk delete --force killed the process that reused pid {pid}"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
    assert!(is_gone(pid));
}

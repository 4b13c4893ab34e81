//! Process lifecycle: the order of the init's reports, big configs, and who reaps what
//! (issue 16).

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::process::Stdio;
use std::time::Duration;

use husk_testing::{unique_id, wait_for, Bundle, Runtime, Spawned};

const WAIT: Duration = Duration::from_secs(20);

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// Bug 1: stage 1 reports the container's pid and stage 2 reports `Ready`. With the return of
/// stage 1's clone delayed by 300 ms (strace's fault injection), stage 2 is ready long before
/// stage 1 can send the pid: `create` must still record the pid, and `start` must work.
#[test]
fn create_records_the_pid_when_the_fork_returns_late() {
    let rt = runtime();
    if std::process::Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("skipped: strace is not installed");
        return;
    }
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .sh("echo started > /shared/started");
    let guard = rt.guard(unique_id("race"));
    let rc_file = bundle.path().join("create-rc");
    let create = rt.cmd([
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        guard.id(),
    ]);
    let create_line = std::iter::once(create.get_program())
        .chain(create.get_args())
        .map(|a| format!("'{}'", a.to_str().unwrap()))
        .collect::<Vec<_>>()
        .join(" ");
    // strace follows the container's init until it exits, so the create's own exit status
    // goes through a file; the test waits for that, not for strace.
    let mut strace = std::process::Command::new("strace");
    strace
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=clone,clone3"])
        .args(["-e", "inject=clone:delay_exit=300000"])
        .args(["sh", "-c"])
        .arg(format!(
            "{create_line} >/dev/null 2>&1; echo $? > '{}'",
            rc_file.display()
        ))
        .stdin(Stdio::null());
    let traced = Spawned::start(&mut strace);
    assert!(
        wait_for(|| rc_file.exists(), WAIT),
        "create under strace did not finish"
    );
    assert!(wait_for(
        || std::fs::read_to_string(&rc_file).is_ok_and(|s| s.ends_with('\n')),
        WAIT
    ));
    let rc = std::fs::read_to_string(&rc_file).unwrap();
    let state = rt.state(guard.id());
    assert_eq!(rc.trim(), "0", "create failed; state: {state}");
    assert!(
        state["pid"].as_i64().is_some_and(|p| p > 0),
        "create returned without the container's pid: {state}"
    );
    assert_eq!(state["status"], "created", "{state}");
    guard.start();
    assert!(
        wait_for(|| bundle.read_shared("started").is_some(), WAIT),
        "the container's process did not run"
    );
    assert!(guard.wait_status("stopped", WAIT));
    let _ = traced.wait_or_kill(WAIT);
}

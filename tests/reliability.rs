//! Reliability (issue 13): signals to a foreground `run`, readers during a `create`.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use husk_testing::{unique_id, wait_for, Bundle, HookKind, OutputExt, Runtime, TempDir};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// Generous: these tests must pass on a loaded machine.
const WAIT: Duration = Duration::from_secs(30);

/// A real-time signal sent to `husk run` reaches the container, and `run` lives on. It used to
/// panic there (nix's `SigSet::wait` has no `Signal` for it), leaving the container orphaned.
#[test]
fn real_time_signal_to_foreground_run_is_forwarded() {
    let rt = runtime();
    let rt_signal = libc::SIGRTMIN() + 2;
    let bundle = Bundle::new(&rt).with_shared_dir().sh(&format!(
        "trap 'echo rt >> /shared/got' {rt_signal}; trap 'exit 42' TERM; \
         echo ready > /shared/ready; while :; do sleep 0.05; done"
    ));
    let id = unique_id("rtsig");
    let _guard = rt.guard(&id);
    let mut run = rt.spawn([
        "run".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(
        wait_for(|| bundle.read_shared("ready").is_some(), WAIT),
        "container did not start"
    );
    run.signal(rt_signal);
    let got = wait_for(|| bundle.read_shared("got").is_some(), WAIT);
    let alive = run.try_wait().is_none();
    let (_, stderr) = run.output_so_far();
    assert!(
        got && alive,
        "signal {rt_signal} not forwarded (got {:?}, run alive: {alive})\n{stderr}",
        bundle.read_shared("got")
    );
    run.signal(libc::SIGTERM);
    let out = run.wait(WAIT);
    assert_eq!(out.status.code(), Some(42), "{}", out.describe());
}

/// Lets a hook waiting on `go` finish when dropped, so that a failing test does not leave
/// `create` hanging.
struct Release(PathBuf);

impl Drop for Release {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "");
    }
}

/// `state` and `list` answer while a `create` is held in a createRuntime hook, and show the
/// container as `creating`: a reader never waits for the writer's lock.
#[test]
fn state_and_list_answer_during_a_create_and_show_creating() {
    let rt = runtime();
    let flags = TempDir::new("husk-rel-hook");
    let entered = flags.join("entered");
    let go = flags.join("go");
    let script = format!(
        "touch {entered}; while [ ! -e {go} ]; do sleep 0.05; done",
        entered = entered.display(),
        go = go.display()
    );
    let bundle = Bundle::new(&rt).args(["true"]).add_hook(
        HookKind::CreateRuntime,
        "/bin/sh",
        &["sh", "-c", &script],
        &[],
        None,
    );
    let id = unique_id("held");
    let _guard = rt.guard(&id);
    let release = Release(go.clone());
    let create = rt.spawn([
        "create".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(
        wait_for(|| entered.exists(), WAIT),
        "createRuntime hook never ran"
    );

    // Bounded by a generous timeout only so that a blocked reader fails the test instead of
    // hanging it; the assertion is that they answer while create is still held.
    let state = rt.spawn(["state", id.as_str()]).wait_or_kill(WAIT);
    let list = rt.spawn(["list", "-f", "json"]).wait_or_kill(WAIT);
    let state = state.unwrap_or_else(|o| panic!("state blocked during create\n{}", o.describe()));
    let list = list.unwrap_or_else(|o| panic!("list blocked during create\n{}", o.describe()));
    assert!(!go.exists(), "the hook was released early");
    assert!(state.status.success(), "{}", state.describe());
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).expect("state JSON");
    assert_eq!(state["status"], "creating", "{state}");
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("list JSON");
    let entry = list
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("{id} not listed: {list}"));
    assert_eq!(entry["status"], "creating", "{list}");

    drop(release);
    let out = create.wait(WAIT);
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(rt.status(&id), "created");
    rt.run_ok(["delete", id.as_str()]);
}

/// Before the init's pid is known (here: the clone that starts it delayed by strace), `state` and
/// `list` show a container whose create holds the lock as `creating`, and answer at once.
#[test]
fn state_shows_creating_before_the_init_pid_is_known() {
    if !Path::new("/usr/bin/strace").exists() {
        eprintln!("skipped: /usr/bin/strace is not installed");
        return;
    }
    let rt = runtime();
    let bundle = Bundle::new(&rt).args(["true"]);
    let id = unique_id("early");
    let _guard = rt.guard(&id);
    // Only the create process is traced (no -f): its clone of the init returns 8 s late, far
    // longer than `state` takes even on a loaded machine.
    let mut cmd = std::process::Command::new("/usr/bin/strace");
    cmd.args(["-o", "/dev/null", "-e", "trace=clone,clone3"])
        .args(["-e", "inject=clone,clone3:delay_exit=8000000"])
        .arg(rt.binary())
        .arg("--root")
        .arg(rt.root())
        .args(["create", "--bundle"])
        .arg(bundle.path())
        .arg(&id);
    let create = husk_testing::Spawned::start(&mut cmd);
    assert!(
        wait_for(|| rt.root().join(&id).join("state.json").exists(), WAIT),
        "create never saved its state"
    );
    let state = rt.spawn(["state", id.as_str()]).wait_or_kill(WAIT);
    let state = state.unwrap_or_else(|o| panic!("state blocked during create\n{}", o.describe()));
    assert!(state.status.success(), "{}", state.describe());
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).expect("state JSON");
    let out = create.wait(WAIT);
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(
        state["pid"], 0,
        "create got past the delayed clone: {state}"
    );
    assert_eq!(state["status"], "creating", "{state}");
    assert_eq!(rt.status(&id), "created");
}

//! `state` output, status transitions, id validation and operations refused in the wrong state.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use husk_testing::{is_gone, unique_id, wait_for, Bundle, OutputExt, Runtime};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(10);

fn sleeper(rt: &Runtime) -> Bundle {
    Bundle::new(rt)
        .with_shared_dir()
        .sh("echo ready > /shared/ready; exec sleep 1000")
}

#[test]
fn state_has_required_fields_and_annotations() {
    let rt = runtime();
    let bundle = sleeper(&rt)
        .annotation("org.example.key", "value-1")
        .annotation("org.example.other", "");
    let c = rt.create(&bundle);
    let state = c.state();
    assert!(
        state["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{state}"
    );
    assert_eq!(state["id"], c.id(), "{state}");
    assert_eq!(state["status"], "created", "{state}");
    assert!(state["pid"].as_i64().is_some_and(|p| p > 0), "{state}");
    assert_eq!(state["bundle"], bundle.path().to_str().unwrap(), "{state}");
    assert_eq!(
        state["annotations"]["org.example.key"], "value-1",
        "{state}"
    );
    assert_eq!(state["annotations"]["org.example.other"], "", "{state}");
}

#[test]
fn state_bundle_is_absolute_for_relative_bundle_argument() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let parent = bundle.path().parent().unwrap();
    let name = bundle.path().file_name().unwrap();
    let guard = rt.guard(unique_id("relbundle"));
    let out = husk_testing::run_with_timeout(
        rt.cmd([
            "create".as_ref(),
            "--bundle".as_ref(),
            name,
            guard.id().as_ref(),
        ])
        .current_dir(parent),
        WAIT,
    );
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(guard.state()["bundle"], bundle.path().to_str().unwrap());
}

#[test]
fn bundle_defaults_to_current_directory() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let guard = rt.guard(unique_id("cwdbundle"));
    let out = husk_testing::run_with_timeout(
        rt.cmd(["create", guard.id()]).current_dir(bundle.path()),
        WAIT,
    );
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(guard.state()["bundle"], bundle.path().to_str().unwrap());
}

#[test]
fn status_goes_created_running_stopped() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .sh("echo ready > /shared/ready; while [ ! -e /shared/go ]; do sleep 0.05; done");
    let c = rt.create(&bundle);
    assert_eq!(c.status(), "created");
    c.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
    assert_eq!(c.status(), "running");
    std::fs::write(bundle.shared_dir().join("go"), "").unwrap();
    assert!(
        c.wait_status("stopped", WAIT),
        "container that exited is not stopped: {}",
        c.state()
    );
    // A stopped container can still be queried and then deleted without --force.
    assert_eq!(c.state()["id"], c.id());
    rt.run_ok(["delete", c.id()]);
    assert!(rt.try_state(c.id()).is_none());
}

#[test]
fn container_whose_init_was_killed_directly_is_stopped() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = rt.create(&bundle);
    c.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
    let pid = c.pid();
    // SAFETY: kill(2) has no memory-safety preconditions; pid is the live init of our own container.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(wait_for(|| is_gone(pid), WAIT));
    assert!(
        c.wait_status("stopped", WAIT),
        "runtime did not notice the dead init: {}",
        c.state()
    );
    rt.run_ok(["delete", c.id()]);
}

#[test]
fn created_container_whose_init_was_killed_is_stopped() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = rt.create(&bundle);
    let pid = c.pid();
    // SAFETY: kill(2) has no memory-safety preconditions; pid is the live init of our own container.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(c.wait_status("stopped", WAIT), "{}", c.state());
    rt.run_fail(["start", c.id()]);
    assert!(bundle.read_shared("ready").is_none());
}

#[test]
fn invalid_ids_are_refused_and_leave_nothing() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let long = "a".repeat(1024);
    // No ContainerGuard here: `delete --force ..` is not something to run against a runtime that might accept it.
    // The harness nests the state root so that Runtime's own cleanup stays inside its scratch directory.
    for id in ["", "a/b", "/abs", "..", ".", "../escape", long.as_str()] {
        let out = rt.run([
            "create".as_ref(),
            "--bundle".as_ref(),
            bundle.path().as_os_str(),
            id.as_ref(),
        ]);
        assert!(
            !out.status.success(),
            "create accepted id {id:?}\n{}",
            out.describe()
        );
        assert!(
            rt.list_ids().is_empty(),
            "id {id:?} left {:?}",
            rt.list_ids()
        );
        assert!(
            rt.state_dir_entries().is_empty(),
            "id {id:?} left {:?} in the state root",
            rt.state_dir_entries()
        );
        let out = rt.run([
            "run".as_ref(),
            "--bundle".as_ref(),
            bundle.path().as_os_str(),
            id.as_ref(),
        ]);
        assert!(
            !out.status.success(),
            "run accepted id {id:?}\n{}",
            out.describe()
        );
        assert!(
            rt.state_dir_entries().is_empty(),
            "id {id:?} left {:?} in the state root",
            rt.state_dir_entries()
        );
    }
    assert!(
        bundle.read_shared("ready").is_none(),
        "a container process ran for an invalid id"
    );
    // Nothing escaped the state root either.
    assert!(!rt.scratch_dir().join("escape").exists());
    assert!(!std::path::Path::new("/abs").exists());
}

#[test]
fn unusual_but_valid_ids_work() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    for id in [
        unique_id("with.dots_and-dash"),
        format!("{}-{}", unique_id("x"), "b".repeat(100)),
    ] {
        let c = rt.guard(&id);
        rt.run_ok([
            "create".as_ref(),
            "--bundle".as_ref(),
            bundle.path().as_os_str(),
            id.as_ref(),
        ]);
        assert_eq!(c.state()["id"], id.as_str());
    }
}

#[test]
fn duplicate_id_is_refused_and_original_survives() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = rt.create(&bundle);
    let pid = c.pid();
    for command in ["create", "run"] {
        let out = rt.run([
            command.as_ref(),
            "--bundle".as_ref(),
            bundle.path().as_os_str(),
            c.id().as_ref(),
        ]);
        assert!(
            !out.status.success(),
            "{command} reused a live id\n{}",
            out.describe()
        );
    }
    assert_eq!(c.status(), "created");
    assert_eq!(c.pid(), pid, "duplicate create replaced the original");
    assert_eq!(rt.list_ids(), [c.id()]);
    c.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
}

#[test]
fn operations_in_wrong_state_fail() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = rt.create(&bundle);
    c.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));

    rt.run_fail(["start", c.id()]);
    rt.run_fail(["delete", c.id()]);
    assert_eq!(
        c.status(),
        "running",
        "a refused delete must not touch the container"
    );
    assert!(!is_gone(c.pid()));

    c.kill("KILL");
    assert!(c.wait_status("stopped", WAIT));
    rt.run_fail(["start", c.id()]);
    rt.run_fail(["kill", c.id(), "KILL"]);
    rt.run_ok(["delete", c.id()]);
}

#[test]
fn operations_on_missing_container_fail() {
    let rt = runtime();
    let id = unique_id("missing");
    for args in [
        vec!["state", &id],
        vec!["start", &id],
        vec!["kill", &id, "KILL"],
        vec!["delete", &id],
    ] {
        let out = rt.run_fail(&args);
        assert!(!out.stderr_str().is_empty(), "{args:?} failed silently");
    }
    // Force-deleting something that does not exist is not an error (runc and its clients rely on this).
    rt.run_ok(["delete", "--force", &id]);
}

//! Crash safety (issue 13): husk is SIGKILLed at each named step of create, start, exec and
//! delete (`HUSK_FAULT`, see src/fault.rs). Whatever it leaves, `list`, `state` and
//! `delete --force` handle: no state file is half-written, and afterwards no container process,
//! cgroup, state directory or mount remains. A wedged init (stopped with SIGSTOP at a step) makes
//! `create` fail after the bootstrap silence limit, naming the step, and leaves nothing.
//!
//! husk-only: the fault points are husk's own (runc has no equivalent to compare with).

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use husk_testing::{existing_cgroups, unique_id, wait_for, Bundle, Runtime};
use serde_json::json;

fn runtime() -> Runtime {
    Runtime::with_binary(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(20);

/// Runs husk with `args` and `HUSK_FAULT=fault` (plus `env`), its output in files (a container
/// process may keep pipes open); returns the exit status and stderr.
fn run_with_fault(
    rt: &Runtime,
    args: &[&str],
    fault: &str,
    env: &[(&str, &str)],
) -> (ExitStatus, String) {
    let err_path = rt.scratch_dir().join(format!("stderr-{}", unique_id("f")));
    let stderr = std::fs::File::create(&err_path).unwrap();
    let mut cmd = rt.cmd(args);
    cmd.env("HUSK_FAULT", fault)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "husk {args:?} with HUSK_FAULT={fault} did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    (status, text)
}

fn assert_killed_at(status: ExitStatus, stderr: &str, fault: &str) {
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "HUSK_FAULT={fault}: husk was not killed there (the point was not reached): {status:?} {stderr}"
    );
}

fn container_processes(id: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if std::fs::read_to_string(entry.path().join("cgroup"))
            .is_ok_and(|cgroups| cgroups.contains(&format!("/{id}\n")))
            && !husk_testing::is_gone(pid)
        {
            found.push(pid);
        }
    }
    found
}

fn mounts_naming(text: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(text))
        .map(str::to_string)
        .collect()
}

/// After a crash: the state file, where there is one, is whole JSON; `list` and `state` answer;
/// `delete --force` removes everything the container had.
fn assert_recoverable(rt: &Runtime, id: &str, bundle: &Path, fault: &str) {
    let state_file = rt.root().join(id).join("state.json");
    if let Ok(text) = std::fs::read(&state_file) {
        serde_json::from_slice::<serde_json::Value>(&text).unwrap_or_else(|e| {
            panic!(
                "{fault}: half-written state file {}: {e}",
                state_file.display()
            )
        });
    }
    let list = rt.run(["list", "--format", "json"]);
    assert!(
        list.status.success(),
        "{fault}: list failed: {}",
        String::from_utf8_lossy(&list.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&list.stdout)
        .unwrap_or_else(|e| panic!("{fault}: list printed no JSON: {e}"));
    let state = rt.run(["state", id]);
    let state_err = String::from_utf8_lossy(&state.stderr);
    assert!(
        state.status.success() || state_err.contains("does not exist"),
        "{fault}: state failed: {state_err}"
    );
    let delete = rt.run(["delete", "--force", id]);
    let delete_err = String::from_utf8_lossy(&delete.stderr);
    assert!(
        delete.status.success() || delete_err.contains("does not exist"),
        "{fault}: delete --force failed: {delete_err}"
    );
    let cgroups_path = format!("/{id}");
    let clean = wait_for(
        || {
            container_processes(id).is_empty()
                && existing_cgroups(&cgroups_path).is_empty()
                && !rt.root().join(id).exists()
        },
        WAIT,
    );
    assert!(
        clean,
        "{fault}: left behind: processes {:?}, cgroups {:?}, state dir {}",
        container_processes(id),
        existing_cgroups(&cgroups_path),
        rt.root().join(id).exists()
    );
    assert!(
        !rt.list_ids().contains(&id.to_string()),
        "{fault}: still listed"
    );
    let bundle_text = bundle.to_string_lossy().to_string();
    assert!(
        mounts_naming(&bundle_text).is_empty(),
        "{fault}: mounts left: {:?}",
        mounts_naming(&bundle_text)
    );
}

fn bundle(rt: &Runtime, id: &str) -> Bundle {
    Bundle::new(rt)
        .set("/linux/cgroupsPath", json!(format!("/{id}")))
        .sh("exec sleep 1000")
}

#[test]
fn killed_at_each_step_of_create_leaves_what_delete_force_cleans() {
    husk_testing::require_root();
    let rt = runtime();
    for fault in [
        "state.temp-written",
        "create.state-saved",
        "create.cgroup-made",
        "create.fifo-made",
        "create.bootstrap-sent",
        "create.pid-saved",
        "create.ready-saved",
    ] {
        let id = unique_id("fault");
        let b = bundle(&rt, &id);
        let path = b.path().to_str().unwrap().to_string();
        let (status, err) = run_with_fault(&rt, &["create", "--bundle", &path, &id], fault, &[]);
        assert_killed_at(status, &err, fault);
        assert_recoverable(&rt, &id, b.path(), fault);
    }
}

#[test]
fn killed_at_each_step_of_start_exec_and_delete_leaves_what_delete_force_cleans() {
    husk_testing::require_root();
    let rt = runtime();
    for (command, fault) in [
        ("start", "start.locked"),
        ("start", "start.released"),
        ("exec", "exec.bootstrap-sent"),
        ("delete", "delete.killed"),
        ("delete", "delete.cgroup-removed"),
    ] {
        let id = unique_id("fault");
        let b = bundle(&rt, &id);
        let path = b.path().to_str().unwrap().to_string();
        let created = rt.run(["create", "--bundle", &path, &id]);
        assert!(
            created.status.success(),
            "create: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        if command != "start" {
            rt.run_ok(["start", &id]);
        }
        let args: Vec<&str> = match command {
            "start" => vec!["start", &id],
            "exec" => vec!["exec", &id, "/bin/sleep", "1000"],
            _ => vec!["delete", "--force", &id],
        };
        let (status, err) = run_with_fault(&rt, &args, fault, &[]);
        assert_killed_at(status, &err, fault);
        if fault == "start.locked" {
            assert_eq!(
                rt.status(&id),
                "created",
                "{fault}: the container must still wait for start"
            );
        }
        assert_recoverable(&rt, &id, b.path(), fault);
    }
}

/// A wedged init (stopped at a step) fails `create` once it was silent for the limit, with an
/// error naming the step, and leaves nothing behind.
#[test]
fn a_wedged_init_fails_create_after_the_silence_limit_naming_the_step() {
    husk_testing::require_root();
    let rt = runtime();
    for (fault, step) in [
        (
            "create.bootstrap-sending:stop-init",
            "reporting the container's pid",
        ),
        // Stopped while it waits for the runtime hooks' answer, the init cannot have reported
        // ready already (a stop at `create.pid-saved` races with an init that runs on, and
        // lost on a loaded CI machine); the startContainer hook only makes it ask.
        ("create.hooks-asked:stop-init", "setting up the container"),
    ] {
        let id = unique_id("wedge");
        let b = bundle(&rt, &id).set("/hooks", json!({"startContainer": [{"path": "/bin/true"}]}));
        let path = b.path().to_str().unwrap().to_string();
        let started = Instant::now();
        let (status, err) = run_with_fault(
            &rt,
            &["create", "--bundle", &path, &id],
            fault,
            &[("HUSK_BOOTSTRAP_TIMEOUT", "2")],
        );
        let took = started.elapsed();
        assert_eq!(status.code(), Some(1), "{fault}: {status:?} {err}");
        assert!(
            took >= Duration::from_secs(2),
            "{fault}: failed before the limit: {took:?}"
        );
        assert!(
            err.contains(step) && err.contains("silent for 2s"),
            "{fault}: {err}"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{fault}: not one line: {err}"
        );
        assert!(
            wait_for(
                || container_processes(&id).is_empty()
                    && existing_cgroups(&format!("/{id}")).is_empty(),
                WAIT
            ),
            "{fault}: left: processes {:?} cgroups {:?}",
            container_processes(&id),
            existing_cgroups(&format!("/{id}"))
        );
        assert!(!rt.root().join(&id).exists(), "{fault}: state dir left");
    }
}

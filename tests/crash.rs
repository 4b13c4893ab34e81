//! A runtime killed in the middle of `create` must leave nothing that `delete --force` cannot clean up.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use husk_testing::{
    existing_cgroups, is_gone, unique_id, wait_for, write_script, Bundle, HookKind, OutputExt,
    Runtime,
};
use serde_json::json;

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(10);

fn kill_runtime_during_hook(rt: &Runtime, kind: HookKind) {
    let id = unique_id("crash");
    let cgroups_path = format!("/{id}");
    let plain = Bundle::new(rt)
        .with_shared_dir()
        .set("/linux/cgroupsPath", json!(cgroups_path))
        .sh("echo ready > /shared/ready; exec sleep 1000");
    let started = plain.path().join("hook-started");
    let release = plain.path().join("hook-release");
    // The hook blocks until the test releases it, so it never outlives the test and never needs to be killed by
    // pid (its pid may be namespace-local, depending on where the hook runs).
    let hook = plain.path().join("slow-hook.sh");
    write_script(
        &hook,
        &format!(
            "touch {}; i=0; while [ ! -e {} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done",
            started.display(),
            release.display()
        ),
    );
    let hooked = plain.add_hook(kind, hook.to_str().unwrap(), &[], &[], None);

    let guard = rt.guard(&id);
    let create = rt.spawn([
        "create".as_ref(),
        "--bundle".as_ref(),
        hooked.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(
        wait_for(|| started.exists(), WAIT),
        "{} hook never ran",
        kind.as_str()
    );

    create.signal(libc::SIGKILL);
    let out = create.wait(WAIT);
    assert_eq!(
        out.status.code(),
        None,
        "runtime was not killed: {}",
        out.describe()
    );

    // Whatever state the interrupted create left, `delete --force` must clean it up, while the hook still runs.
    let init_pid = rt
        .try_state(&id)
        .and_then(|s| s["pid"].as_i64())
        .filter(|p| *p > 0);
    let _ = rt.run(["delete", "--force", &id]);
    let listed = rt.list_ids().contains(&id);
    let state_left = rt.try_state(&id).is_some();
    let init_alive = init_pid.is_some_and(|pid| !wait_for(|| is_gone(pid as i32), WAIT));
    let cgroups_left = existing_cgroups(&cgroups_path);
    let mounts_left = hooked.leftover_mounts();
    std::fs::write(&release, "").unwrap();

    assert!(!listed, "{id} still listed after delete --force");
    assert!(!state_left, "state still answers for {id}");
    assert!(
        !init_alive,
        "container init {init_pid:?} survived delete --force"
    );
    if rt.is_runc() {
        // runc 1.1.5 leaves the container's (empty) cgroup directories behind when it is killed during create;
        // `delete --force` does not remove them. Clean up after it. See tests/RUNC_DIFFERENCES.md.
        for dir in &cgroups_left {
            let _ = std::fs::remove_dir(dir);
        }
    } else {
        assert!(
            cgroups_left.is_empty(),
            "cgroups left after delete --force: {cgroups_left:?}"
        );
    }
    assert!(mounts_left.is_empty(), "mounts left: {mounts_left:?}");

    // The id is free again: a normal container can use it.
    let bundle = hooked.remove(&format!("/hooks/{}", kind.as_str()));
    let out = rt.run([
        "create".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(
        out.status.success(),
        "id {id} cannot be reused after crash cleanup\n{}",
        out.describe()
    );
    guard.start();
    assert!(
        wait_for(|| bundle.read_shared("ready").is_some(), WAIT),
        "reused container did not run"
    );
    assert_eq!(guard.status(), "running");
    drop(guard);
    assert!(
        existing_cgroups(&cgroups_path).is_empty(),
        "delete left cgroups {:?}",
        existing_cgroups(&cgroups_path)
    );
}

#[test]
fn runtime_killed_during_create_runtime_hook() {
    kill_runtime_during_hook(&runtime(), HookKind::CreateRuntime);
}

#[test]
fn runtime_killed_during_prestart_hook() {
    kill_runtime_during_hook(&runtime(), HookKind::Prestart);
}

#[test]
fn runtime_killed_during_create_container_hook() {
    let rt = runtime();
    if rt.is_runc() {
        // runc 1.1.5 records the container only after the createContainer hooks have run (they run inside its
        // `runc init`). Killed during such a hook, it leaves `runc init` and the container's cgroups behind until the
        // hook exits, and `delete --force` does not know the id. See tests/RUNC_DIFFERENCES.md.
        eprintln!("skipped for runc: known leak when runc is killed during a createContainer hook");
        return;
    }
    kill_runtime_during_hook(&rt, HookKind::CreateContainer);
}

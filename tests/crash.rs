//! A runtime killed in the middle of `create` must leave nothing that `delete --force` cannot clean up.

use std::time::Duration;

use husk_testing::{is_gone, unique_id, wait_for, write_script, Bundle, HookKind, OutputExt, Runtime};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(10);

fn kill_runtime_during_hook(kind: HookKind) {
    let rt = runtime();
    let plain = Bundle::new(&rt)
        .with_shared_dir()
        .sh("echo ready > /shared/ready; exec sleep 1000");
    let hook_pid_file = plain.path().join("hook.pid");
    let hook = plain.path().join("slow-hook.sh");
    // `exec` so that the recorded pid is the sleeping process itself.
    write_script(&hook, &format!("echo $$ > {}; exec sleep 60", hook_pid_file.display()));
    let hooked = plain.add_hook(kind, hook.to_str().unwrap(), &[], &[], None);

    let id = unique_id("crash");
    let guard = rt.guard(&id);
    let create = rt.spawn(["create".as_ref(), "--bundle".as_ref(), hooked.path().as_os_str(), id.as_ref()]);
    let hook_started = wait_for(|| std::fs::read_to_string(&hook_pid_file).is_ok_and(|s| s.ends_with('\n')), WAIT);
    assert!(hook_started, "{} hook never ran", kind.as_str());
    let hook_pid: i32 = std::fs::read_to_string(&hook_pid_file).unwrap().trim().parse().unwrap();

    create.signal(libc::SIGKILL);
    let out = create.wait(WAIT);
    assert_eq!(out.status.code(), None, "runtime was not killed: {}", out.describe());

    // Whatever state the interrupted create left, `delete --force` must clean it up.
    let init_pid = rt.try_state(&id).and_then(|s| s["pid"].as_i64()).filter(|p| *p > 0);
    let _ = rt.run(["delete", "--force", &id]);
    assert!(!rt.list_ids().contains(&id), "{} still listed after delete --force", id);
    assert!(rt.try_state(&id).is_none(), "state still answers for {id}");
    if let Some(pid) = init_pid {
        assert!(wait_for(|| is_gone(pid as i32), WAIT), "container init {pid} survived delete --force");
    }
    assert!(hooked.leftover_mounts().is_empty(), "{:?}", hooked.leftover_mounts());

    // The orphaned hook is the test's own doing; stop it.
    if !is_gone(hook_pid) {
        // SAFETY: kill(2) has no memory-safety preconditions; hook_pid is the hook process this test caused.
        unsafe { libc::kill(hook_pid, libc::SIGKILL) };
    }

    // The id is free again: a normal container can use it.
    let bundle = hooked.remove(&format!("/hooks/{}", kind.as_str()));
    let out = rt.run(["create".as_ref(), "--bundle".as_ref(), bundle.path().as_os_str(), id.as_ref()]);
    assert!(out.status.success(), "id {id} cannot be reused after crash cleanup\n{}", out.describe());
    guard.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT), "reused container did not run");
    assert_eq!(guard.status(), "running");
}

#[test]
fn runtime_killed_during_create_runtime_hook() {
    kill_runtime_during_hook(HookKind::CreateRuntime);
}

#[test]
fn runtime_killed_during_prestart_hook() {
    kill_runtime_during_hook(HookKind::Prestart);
}

#[test]
fn runtime_killed_during_create_container_hook() {
    kill_runtime_during_hook(HookKind::CreateContainer);
}

//! runtime.md: the state of a container, the lifecycle (including the steps at which hooks run and what a hook
//! failure does), the operations state/create/start/kill/delete, and the rule that a failed operation leaves
//! nothing behind.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::time::Duration;

use husk_testing::{
    is_gone, namespace_inode, unique_id, wait_for, HookKind, NamespaceHolder, OutputExt,
};
use serde_json::json;

use super::support::{
    bundle, create_args, probe_then_sleep, register, start_probe, CgroupPath, Ctx, Report,
    TestResult,
};

register!("runtime":
    state_has_required_properties,
    state_annotations_match_config,
    state_pid_is_container_process_as_seen_by_host,
    state_status_created_after_create,
    state_status_running_after_start,
    state_status_stopped_after_process_exits,
    state_status_stopped_after_kill,
    state_without_id_is_error,
    state_of_unknown_container_is_error,
    create_without_id_is_error,
    create_does_not_run_user_process,
    create_makes_namespaces_and_cgroup_before_start,
    create_with_duplicate_id_is_error_and_keeps_first,
    create_unrealizable_config_is_error_and_leaves_nothing,
    create_bundle_without_config_is_error,
    config_changes_after_create_have_no_effect,
    start_runs_user_process,
    start_without_id_is_error,
    start_of_unknown_container_is_error,
    start_of_running_container_is_error_without_effect,
    start_of_stopped_container_is_error,
    kill_sends_signal_to_container_process,
    kill_of_created_container_delivers_signal,
    kill_without_id_is_error,
    kill_of_unknown_container_is_error,
    kill_of_stopped_container_is_error_without_effect,
    delete_without_id_is_error,
    delete_of_unknown_container_is_error,
    delete_of_running_container_is_error_without_effect,
    delete_of_created_container_is_error_without_effect,
    delete_removes_resources_created_by_create,
    delete_keeps_resources_not_created_by_container,
    delete_allows_id_reuse,
    lifecycle_hooks_run_at_their_steps_in_order,
    prestart_hook_failure_is_error_and_destroys_container,
    create_runtime_hook_failure_is_error_and_destroys_container,
    create_container_hook_failure_is_error_and_destroys_container,
    create_hook_failure_continues_with_poststop_hooks,
    start_container_hook_failure_is_error_and_process_not_run,
    poststart_hook_failure_is_only_a_warning,
    poststop_hook_failure_is_only_a_warning,
);

const SETTLE: Duration = Duration::from_millis(500);
const WAIT: Duration = Duration::from_secs(20);

fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|e| panic!("canonicalize {}: {e}", path.display()))
        .to_string_lossy()
        .into_owned()
}

/// The state's `status`: "The value MAY be one of created, running, stopped (creating)"; `ociVersion`, `id`,
/// `status`, `pid` (when created or running) and `bundle` (absolute) are REQUIRED.
fn state_has_required_properties(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).sh("exit 0");
    let container = rt.create(&bundle);
    let state = container.state();
    assert!(
        state["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "ociVersion missing or not a string: {state}"
    );
    assert_eq!(state["id"], container.id(), "id: {state}");
    assert_eq!(state["status"], "created", "status: {state}");
    let pid = state["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "pid must be a positive int while created: {state}");
    let bundle_path = state["bundle"]
        .as_str()
        .unwrap_or_else(|| panic!("bundle missing or not a string: {state}"));
    assert!(
        bundle_path.starts_with('/'),
        "bundle must be absolute: {state}"
    );
    assert_eq!(
        canonical(Path::new(bundle_path)),
        canonical(bundle.path()),
        "bundle is not the bundle directory: {state}"
    );
    Ok(())
}

/// `annotations`: the annotations associated with the container (from config.json).
fn state_annotations_match_config(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .sh("exit 0")
        .annotation("org.opencontainers.conformance.a", "value one")
        .annotation("org.opencontainers.conformance.b", "");
    let container = rt.create(&bundle);
    let state = container.state();
    assert_eq!(
        state["annotations"],
        json!({ "org.opencontainers.conformance.a": "value one", "org.opencontainers.conformance.b": "" }),
        "state: {state}"
    );
    Ok(())
}

/// `pid` is the ID of the container process, as seen by the host.
fn state_pid_is_container_process_as_seen_by_host(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).with_shared_dir().args(probe_then_sleep(&[]));
    let (container, report) = start_probe(&rt, &bundle);
    let pid = container.pid();
    assert_eq!(
        namespace_inode(pid, "pid"),
        report.ns("pid"),
        "state pid {pid} is not in the container's pid namespace"
    );
    assert_eq!(
        namespace_inode(pid, "mnt"),
        report.ns("mnt"),
        "state pid {pid} is not in the container's mount namespace"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| v.split_whitespace().collect::<Vec<_>>())
        .expect("NSpid");
    assert_eq!(
        nspid.first().copied(),
        Some(pid.to_string().as_str()),
        "the first NSpid must be the host pid"
    );
    assert_eq!(
        nspid.last().copied(),
        Some("1"),
        "state pid {pid} is not the container's first process (NSpid {nspid:?}), the probe saw pid {}",
        report.at("/pid")
    );
    Ok(())
}

/// create: "Upon successful completion of this operation the status property of this container MUST be created."
fn state_status_created_after_create(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).sh("exit 0");
    let container = rt.create(&bundle);
    assert_eq!(container.status(), "created");
    std::thread::sleep(SETTLE);
    assert_eq!(
        container.status(),
        "created",
        "status changed without start"
    );
    Ok(())
}

/// start: "Upon successful completion of this operation the status property of this container MUST be running."
fn state_status_running_after_start(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).args(["sleep", "600"]);
    let container = rt.create(&bundle);
    container.start();
    assert_eq!(container.status(), "running");
    Ok(())
}

/// kill: "When the process in the container is stopped, irrespective of it being as a result of a kill operation
/// or any other reason, the status property of this container MUST be stopped."
fn state_status_stopped_after_process_exits(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).sh("exit 3");
    let container = rt.create(&bundle);
    container.start();
    assert!(
        container.wait_status("stopped", WAIT),
        "status after exit: {:?}",
        rt.try_state(container.id())
    );
    Ok(())
}

/// The same after `kill`.
fn state_status_stopped_after_kill(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).args(["sleep", "600"]);
    let container = rt.create(&bundle);
    container.start();
    container.kill("KILL");
    assert!(
        container.wait_status("stopped", WAIT),
        "status after kill: {:?}",
        rt.try_state(container.id())
    );
    Ok(())
}

/// state: "This operation MUST generate an error if it is not provided the ID of a container."
fn state_without_id_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    rt.run_fail(["state"]);
    Ok(())
}

/// state: "Attempting to query a container that does not exist MUST generate an error."
fn state_of_unknown_container_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    rt.run_fail(["state", &unique_id("nonexistent")]);
    Ok(())
}

/// create: "This operation MUST generate an error if it is not provided a path to the bundle and the container ID".
/// (Without a --bundle option a runc-like CLI uses the working directory, so the ID is what is left out.)
fn create_without_id_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).sh("exit 0");
    rt.run_fail([
        "create".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
    ] as [&std::ffi::OsStr; 3]);
    assert!(
        rt.list_ids().is_empty(),
        "a container exists after a failed create: {:?}",
        rt.list_ids()
    );
    Ok(())
}

/// create: "the user-specified program MUST NOT be run at this time"; start then runs it.
fn create_does_not_run_user_process(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).with_shared_dir().sh("echo ran >> /shared/ran");
    let container = rt.create(&bundle);
    std::thread::sleep(SETTLE);
    assert_eq!(
        bundle.read_shared("ran"),
        None,
        "the user process ran during create"
    );
    container.start();
    assert!(
        wait_for(|| bundle.read_shared("ran").is_some(), WAIT),
        "the user process did not run after start"
    );
    Ok(())
}

/// Lifecycle step 2: "the resources requested in the config.json MUST be created" by create (namespaces, cgroup,
/// hostname), before start.
fn create_makes_namespaces_and_cgroup_before_start(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let cgroup = CgroupPath::new();
    let bundle = bundle(&rt)
        .sh("exit 0")
        .set("/linux/cgroupsPath", json!(cgroup.as_str()));
    let container = rt.create(&bundle);
    let pid = container.pid();
    for kind in ["pid", "net", "ipc", "uts", "mnt"] {
        assert_ne!(
            namespace_inode(pid, kind),
            husk_testing::host_namespace_inode(kind),
            "after create, the container's {kind} namespace is the host's"
        );
    }
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read cgroup");
    assert!(
        cgroups
            .lines()
            .any(|l| l.ends_with(&format!(":{}", cgroup.as_str()))),
        "after create, pid {pid} is not in cgroup {}:\n{cgroups}",
        cgroup.as_str()
    );
    Ok(())
}

/// create: "If the ID provided is not unique across all containers within the scope of the runtime ... the
/// implementation MUST generate an error and a new container MUST NOT be created."
fn create_with_duplicate_id_is_error_and_keeps_first(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let first = bundle(&rt).sh("exit 0");
    let second = bundle(&rt).sh("exit 0");
    let container = rt.create(&first);
    let before = container.state();
    rt.run_fail(create_args(&second, container.id()));
    let after = container.state();
    assert_eq!(
        (&after["status"], &after["pid"], &after["bundle"]),
        (&before["status"], &before["pid"], &before["bundle"]),
        "the first container changed"
    );
    assert_eq!(rt.list_ids(), vec![container.id().to_owned()]);
    Ok(())
}

/// Lifecycle step 2: "If the runtime is unable to create the environment specified in the config.json, it MUST
/// generate an error"; Errors: "generating an error MUST leave the state of the environment as if the operation
/// were never attempted".
fn create_unrealizable_config_is_error_and_leaves_nothing(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let cgroup = CgroupPath::new();
    let missing = format!("/nonexistent-{}", unique_id("src"));
    let bundle = bundle(&rt)
        .sh("exit 0")
        .set("/linux/cgroupsPath", json!(cgroup.as_str()))
        .add_mount("/mnt/missing", "bind", &missing, &["rbind"]);
    let id = unique_id("unrealizable");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    assert_eq!(rt.try_state(&id), None, "state exists after failed create");
    assert!(rt.list_ids().is_empty(), "listed: {:?}", rt.list_ids());
    assert!(
        rt.state_dir_entries().is_empty(),
        "left in the state root: {:?}",
        rt.state_dir_entries()
    );
    assert!(
        wait_for(
            || husk_testing::existing_cgroups(cgroup.as_str()).is_empty(),
            Duration::from_secs(5)
        ),
        "cgroups left behind: {:?}",
        husk_testing::existing_cgroups(cgroup.as_str())
    );
    assert!(
        bundle.leftover_mounts().is_empty(),
        "mounts left under the bundle: {:?}",
        bundle.leftover_mounts()
    );
    Ok(())
}

/// A bundle must hold config.json; without it create has no configuration and must fail, creating nothing.
fn create_bundle_without_config_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt);
    std::fs::remove_file(bundle.config_path()).expect("remove config.json");
    let id = unique_id("noconfig");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    assert_eq!(rt.try_state(&id), None);
    Ok(())
}

/// Lifecycle step 2: "Any updates to config.json after this step MUST NOT affect the container."
fn config_changes_after_create_have_no_effect(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .with_shared_dir()
        .hostname("before")
        .sh("hostname > /shared/out");
    let container = rt.create(&bundle);
    let bundle = bundle.hostname("after").sh("echo changed > /shared/out");
    container.start();
    assert!(
        wait_for(|| bundle.read_shared("out").is_some(), WAIT),
        "the process wrote nothing"
    );
    assert!(container.wait_status("stopped", WAIT));
    assert_eq!(bundle.read_shared("out").as_deref(), Some("before\n"));
    Ok(())
}

/// start: "This operation MUST run the user-specified program as specified by process."
fn start_runs_user_process(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let args = [
        "/usr/bin/probe",
        "report",
        "--path",
        "/ with space",
        "--out",
        "/shared/report.json",
    ];
    let bundle = bundle(&rt).with_shared_dir().args(args);
    let container = rt.create(&bundle);
    container.start();
    let text = super::support::wait_shared(&bundle, "report.json", WAIT)
        .expect("the probe did not run after start");
    let report = Report::parse(&text);
    assert_eq!(report.at("/args"), &json!(args));
    Ok(())
}

/// start: "This operation MUST generate an error if it is not provided the container ID."
fn start_without_id_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    rt.run_fail(["start"]);
    Ok(())
}

/// start: "Attempting to start a container that does not exist MUST generate an error."
fn start_of_unknown_container_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    rt.run_fail(["start", &unique_id("nonexistent")]);
    Ok(())
}

/// start: "Attempting to start a container that is not created MUST have no effect on the container and MUST
/// generate an error."
fn start_of_running_container_is_error_without_effect(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .with_shared_dir()
        .sh("echo started >> /shared/count; exec sleep 600");
    let container = rt.create(&bundle);
    container.start();
    assert!(wait_for(|| bundle.read_shared("count").is_some(), WAIT));
    let pid = container.pid();
    rt.run_fail(["start", container.id()]);
    std::thread::sleep(SETTLE);
    assert_eq!(container.status(), "running");
    assert_eq!(container.pid(), pid);
    assert_eq!(
        bundle.read_shared("count").as_deref(),
        Some("started\n"),
        "the process ran twice"
    );
    Ok(())
}

/// The same for a stopped container.
fn start_of_stopped_container_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .with_shared_dir()
        .sh("echo started >> /shared/count");
    let container = rt.create(&bundle);
    container.start();
    assert!(container.wait_status("stopped", WAIT));
    rt.run_fail(["start", container.id()]);
    std::thread::sleep(SETTLE);
    assert_eq!(container.status(), "stopped");
    assert_eq!(bundle.read_shared("count").as_deref(), Some("started\n"));
    Ok(())
}

/// kill: "This operation MUST send the specified signal to the container process."
fn kill_sends_signal_to_container_process(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).with_shared_dir().sh(
        "trap 'echo USR1 > /shared/signal; exit 0' USR1; echo ready > /shared/ready; \
         while true; do sleep 0.1; done",
    );
    let container = rt.create(&bundle);
    container.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
    container.kill("USR1");
    assert!(
        wait_for(|| bundle.read_shared("signal").is_some(), WAIT),
        "the process did not receive SIGUSR1"
    );
    assert!(container.wait_status("stopped", WAIT));
    Ok(())
}

/// kill: "Attempting to send a signal to a container that is neither created nor running MUST have no effect on
/// the container and MUST generate an error" — so a created container accepts signals.
fn kill_of_created_container_delivers_signal(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).sh("exit 0");
    let container = rt.create(&bundle);
    let pid = container.pid();
    container.kill("KILL");
    assert!(
        container.wait_status("stopped", WAIT),
        "status after SIGKILL to a created container: {:?}",
        rt.try_state(container.id())
    );
    assert!(wait_for(|| is_gone(pid), WAIT), "pid {pid} still alive");
    Ok(())
}

/// kill: "This operation MUST generate an error if it is not provided the container ID."
fn kill_without_id_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    rt.run_fail(["kill"]);
    Ok(())
}

/// kill: "Attempting to send a signal to a container that does not exist MUST generate an error."
fn kill_of_unknown_container_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    rt.run_fail(["kill", &unique_id("nonexistent"), "KILL"]);
    Ok(())
}

/// kill: a stopped container: no effect, and an error.
fn kill_of_stopped_container_is_error_without_effect(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).sh("exit 0");
    let container = rt.create(&bundle);
    container.start();
    assert!(container.wait_status("stopped", WAIT));
    let before = container.state();
    rt.run_fail(["kill", container.id(), "TERM"]);
    let after = container.state();
    assert_eq!(after["status"], "stopped");
    assert_eq!(after["bundle"], before["bundle"]);
    Ok(())
}

/// delete: "This operation MUST generate an error if it is not provided the container ID."
fn delete_without_id_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    rt.run_fail(["delete"]);
    Ok(())
}

/// delete: "Attempting to delete a container that does not exist MUST generate an error."
fn delete_of_unknown_container_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    rt.run_fail(["delete", &unique_id("nonexistent")]);
    Ok(())
}

/// delete: "Attempting to delete a container that is not stopped MUST have no effect on the container and MUST
/// generate an error." (running)
fn delete_of_running_container_is_error_without_effect(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).args(["sleep", "600"]);
    let container = rt.create(&bundle);
    container.start();
    let pid = container.pid();
    rt.run_fail(["delete", container.id()]);
    assert_eq!(container.status(), "running");
    assert_eq!(container.pid(), pid);
    assert!(!is_gone(pid), "the process was killed");
    Ok(())
}

/// The same for a created container (created is not stopped).
fn delete_of_created_container_is_error_without_effect(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).sh("exit 0");
    let container = rt.create(&bundle);
    let pid = container.pid();
    let out = rt.run(["delete", container.id()]);
    assert!(
        !out.status.success(),
        "delete of a created container succeeded\n{}",
        out.describe()
    );
    assert_eq!(container.status(), "created");
    assert_eq!(container.pid(), pid);
    Ok(())
}

/// delete: "Deleting a container MUST delete the resources that were created during the create step."
fn delete_removes_resources_created_by_create(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let cgroup = CgroupPath::new();
    let bundle = bundle(&rt)
        .sh("exit 0")
        .set("/linux/cgroupsPath", json!(cgroup.as_str()));
    let container = rt.create(&bundle);
    let pid = container.pid();
    assert!(
        !husk_testing::existing_cgroups(cgroup.as_str()).is_empty(),
        "create made no cgroup at {}",
        cgroup.as_str()
    );
    container.start();
    assert!(container.wait_status("stopped", WAIT));
    rt.run_ok(["delete", container.id()]);
    assert_eq!(rt.try_state(container.id()), None, "state after delete");
    assert!(rt.list_ids().is_empty());
    assert!(wait_for(|| is_gone(pid), WAIT), "pid {pid} still alive");
    assert!(
        wait_for(
            || husk_testing::existing_cgroups(cgroup.as_str()).is_empty(),
            Duration::from_secs(5)
        ),
        "cgroups left: {:?}",
        husk_testing::existing_cgroups(cgroup.as_str())
    );
    assert!(
        bundle.leftover_mounts().is_empty(),
        "mounts left: {:?}",
        bundle.leftover_mounts()
    );
    assert!(
        rt.state_dir_entries().is_empty(),
        "state left: {:?}",
        rt.state_dir_entries()
    );
    Ok(())
}

/// delete: "resources associated with the container, but not created by this container, MUST NOT be deleted."
fn delete_keeps_resources_not_created_by_container(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let holder = NamespaceHolder::new(&["network"]);
    let net_inode = holder.inode("network");
    let bundle = bundle(&rt)
        .with_shared_dir()
        .add_namespace("network", Some(&holder.path("network")))
        .sh("echo hello > /shared/file");
    let container = rt.create(&bundle);
    container.start();
    assert!(container.wait_status("stopped", WAIT));
    rt.run_ok(["delete", container.id()]);
    assert_eq!(
        namespace_inode(holder.pid(), "network"),
        net_inode,
        "the joined network namespace changed"
    );
    assert_eq!(
        bundle.read_shared("file").as_deref(),
        Some("hello\n"),
        "the bind-mounted host directory lost its contents"
    );
    assert!(
        bundle.rootfs().join("bin/busybox").exists(),
        "the rootfs was removed"
    );
    assert!(bundle.config_path().exists(), "config.json was removed");
    Ok(())
}

/// delete: "Once a container is deleted its ID MAY be used by a subsequent container" (and create must accept it,
/// the ID being unique again).
fn delete_allows_id_reuse(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let id = unique_id("reuse");
    let _guard = rt.guard(id.clone());
    for round in 0..2 {
        let bundle = bundle(&rt).sh("exit 0");
        rt.run_ok(create_args(&bundle, &id));
        assert_eq!(rt.status(&id), "created", "round {round}");
        rt.run_ok(["start", &id]);
        assert!(
            wait_for(
                || rt.try_state(&id).is_some_and(|s| s["status"] == "stopped"),
                WAIT
            ),
            "round {round}"
        );
        rt.run_ok(["delete", &id]);
    }
    Ok(())
}

fn hook_log(bundle: &husk_testing::Bundle) -> Vec<String> {
    bundle
        .read_shared("hooks.log")
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Adds two hooks of every kind, each appending `<kind>-<n>` to the shared `hooks.log`.
fn with_all_hooks(bundle: husk_testing::Bundle) -> husk_testing::Bundle {
    let host_log = bundle.shared_dir().join("hooks.log");
    let mut bundle = bundle;
    for kind in HookKind::ALL {
        for n in 1..=2 {
            let label = format!("{}-{n}", kind.as_str());
            let path = if kind == HookKind::StartContainer {
                // Resolved and run in the container, where the shared directory is /shared.
                bundle.rootfs_script(
                    &format!("conformance-{label}.sh"),
                    &format!("echo {label} >> /shared/hooks.log"),
                )
            } else {
                let host = bundle.path().join(format!("{label}.sh"));
                husk_testing::write_script(
                    &host,
                    &format!("cat > /dev/null; echo {label} >> '{}'", host_log.display()),
                );
                host.to_string_lossy().into_owned()
            };
            bundle = bundle.add_hook(kind, &path, &[], &[], None);
        }
    }
    bundle
}

/// Lifecycle steps 3-13: prestart, createRuntime and createContainer hooks during create (in that order, each in
/// the listed order); startContainer before the user program; poststart after it is started, before start returns;
/// poststop during delete.
fn lifecycle_hooks_run_at_their_steps_in_order(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle =
        with_all_hooks(bundle(&rt).with_shared_dir()).sh("echo process >> /shared/hooks.log");
    let container = rt.create(&bundle);
    let after_create = hook_log(&bundle);
    container.start();
    let after_start = hook_log(&bundle);
    assert!(container.wait_status("stopped", WAIT));
    rt.run_ok(["delete", container.id()]);
    let all = hook_log(&bundle);
    let create_phase = [
        "prestart-1",
        "prestart-2",
        "createRuntime-1",
        "createRuntime-2",
        "createContainer-1",
        "createContainer-2",
    ];
    assert_eq!(after_create, create_phase, "hooks run by create");
    let hooks_only: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|l| *l != "process")
        .collect();
    let expected: Vec<&str> = create_phase
        .iter()
        .copied()
        .chain([
            "startContainer-1",
            "startContainer-2",
            "poststart-1",
            "poststart-2",
            "poststop-1",
            "poststop-2",
        ])
        .collect();
    assert_eq!(hooks_only, expected, "hook order over the whole life");
    for hook in ["startContainer-2", "poststart-2"] {
        assert!(
            after_start.iter().any(|l| l == hook),
            "{hook} had not run when start returned: {after_start:?}"
        );
    }
    let process = all
        .iter()
        .position(|l| l == "process")
        .expect("the process ran");
    let start_container = all.iter().position(|l| l == "startContainer-2").unwrap();
    assert!(
        process > start_container,
        "the process ran before startContainer hooks: {all:?}"
    );
    let poststop = all.iter().position(|l| l == "poststop-1").unwrap();
    assert!(
        process < poststop,
        "the process ran after poststop: {all:?}"
    );
    Ok(())
}

/// Lifecycle steps 3-5: "If any prestart/createRuntime/createContainer hook fails, the runtime MUST generate an
/// error, stop the container, and continue the lifecycle at step 12" (destroy), so nothing is left and the user
/// program never runs.
fn failing_create_hook(ctx: &Ctx, kind: HookKind) -> TestResult {
    let rt = ctx.runtime();
    let cgroup = CgroupPath::new();
    let bundle = bundle(&rt)
        .with_shared_dir()
        .set("/linux/cgroupsPath", json!(cgroup.as_str()))
        .sh("echo ran > /shared/ran");
    let hook = bundle.path().join("fail.sh");
    husk_testing::write_script(&hook, "cat > /dev/null; exit 1");
    let bundle = bundle.add_hook(kind, &hook.to_string_lossy(), &[], &[], None);
    let id = unique_id("hookfail");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    std::thread::sleep(SETTLE);
    assert_eq!(bundle.read_shared("ran"), None, "the user program ran");
    assert_eq!(rt.try_state(&id), None, "the container still exists");
    assert!(
        wait_for(
            || husk_testing::existing_cgroups(cgroup.as_str()).is_empty(),
            Duration::from_secs(5)
        ),
        "cgroups left: {:?}",
        husk_testing::existing_cgroups(cgroup.as_str())
    );
    assert!(
        bundle.leftover_mounts().is_empty(),
        "mounts left: {:?}",
        bundle.leftover_mounts()
    );
    Ok(())
}

fn prestart_hook_failure_is_error_and_destroys_container(ctx: &Ctx) -> TestResult {
    failing_create_hook(ctx, HookKind::Prestart)
}

fn create_runtime_hook_failure_is_error_and_destroys_container(ctx: &Ctx) -> TestResult {
    failing_create_hook(ctx, HookKind::CreateRuntime)
}

fn create_container_hook_failure_is_error_and_destroys_container(ctx: &Ctx) -> TestResult {
    failing_create_hook(ctx, HookKind::CreateContainer)
}

/// Continuing "the lifecycle at step 12" after a failed create hook reaches step 13: "The poststop hooks MUST be
/// invoked by the runtime."
fn create_hook_failure_continues_with_poststop_hooks(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).with_shared_dir().sh("exit 0");
    let fail = bundle.path().join("fail.sh");
    husk_testing::write_script(&fail, "cat > /dev/null; exit 1");
    let poststop = bundle.path().join("poststop.sh");
    let marker = bundle.shared_dir().join("poststop");
    husk_testing::write_script(
        &poststop,
        &format!("cat > /dev/null; echo ran > '{}'", marker.display()),
    );
    let bundle = bundle
        .add_hook(
            HookKind::CreateRuntime,
            &fail.to_string_lossy(),
            &[],
            &[],
            None,
        )
        .add_hook(
            HookKind::Poststop,
            &poststop.to_string_lossy(),
            &[],
            &[],
            None,
        );
    let id = unique_id("hookfail");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    assert!(
        wait_for(|| marker.exists(), Duration::from_secs(5)),
        "no poststop hook ran after the failed createRuntime hook"
    );
    Ok(())
}

/// Lifecycle step 7: "If any startContainer hook fails, the runtime MUST generate an error, stop the container,
/// and continue the lifecycle at step 12" — start fails and the user program does not run.
fn start_container_hook_failure_is_error_and_process_not_run(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).with_shared_dir().sh("echo ran > /shared/ran");
    let hook = bundle.rootfs_script("conformance-fail.sh", "exit 1");
    let bundle = bundle.add_hook(HookKind::StartContainer, &hook, &[], &[], None);
    let container = rt.create(&bundle);
    let out = rt.run(["start", container.id()]);
    std::thread::sleep(SETTLE);
    assert_eq!(bundle.read_shared("ran"), None, "the user program ran");
    assert!(
        !out.status.success(),
        "start succeeded although a startContainer hook failed\n{}",
        out.describe()
    );
    let state = rt.try_state(container.id());
    assert!(
        state.as_ref().is_none_or(|s| s["status"] == "stopped"),
        "the container was not stopped: {state:?}"
    );
    Ok(())
}

/// Lifecycle step 9: "If any poststart hook fails, the runtime MUST log a warning, but the remaining hooks and
/// lifecycle continue as if the hook had succeeded."
fn poststart_hook_failure_is_only_a_warning(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).with_shared_dir().args(["sleep", "600"]);
    let fail = bundle.path().join("fail.sh");
    husk_testing::write_script(&fail, "cat > /dev/null; exit 1");
    let second = bundle.path().join("second.sh");
    let marker = bundle.shared_dir().join("second");
    husk_testing::write_script(
        &second,
        &format!("cat > /dev/null; echo ran > '{}'", marker.display()),
    );
    let bundle = bundle
        .add_hook(HookKind::Poststart, &fail.to_string_lossy(), &[], &[], None)
        .add_hook(
            HookKind::Poststart,
            &second.to_string_lossy(),
            &[],
            &[],
            None,
        );
    let id = unique_id("poststart");
    let guard = rt.guard(id.clone());
    let create = rt.run(create_args(&bundle, &id));
    assert!(
        create.status.success(),
        "create failed\n{}",
        create.describe()
    );
    let start = rt.run(["start", &id]);
    assert!(start.status.success(), "start failed\n{}", start.describe());
    assert!(marker.exists(), "the second poststart hook did not run");
    assert_eq!(guard.status(), "running");
    Ok(())
}

/// Lifecycle step 13: "If any poststop hook fails, the runtime MUST log a warning, but the remaining hooks and
/// lifecycle continue as if the hook had succeeded."
fn poststop_hook_failure_is_only_a_warning(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).with_shared_dir().sh("exit 0");
    let fail = bundle.path().join("fail.sh");
    husk_testing::write_script(&fail, "cat > /dev/null; exit 1");
    let second = bundle.path().join("second.sh");
    let marker = bundle.shared_dir().join("second");
    husk_testing::write_script(
        &second,
        &format!("cat > /dev/null; echo ran > '{}'", marker.display()),
    );
    let bundle = bundle
        .add_hook(HookKind::Poststop, &fail.to_string_lossy(), &[], &[], None)
        .add_hook(
            HookKind::Poststop,
            &second.to_string_lossy(),
            &[],
            &[],
            None,
        );
    let container = rt.create(&bundle);
    container.start();
    assert!(container.wait_status("stopped", WAIT));
    rt.run_ok(["delete", container.id()]);
    assert!(marker.exists(), "the second poststop hook did not run");
    assert_eq!(
        rt.try_state(container.id()),
        None,
        "the container was not deleted"
    );
    Ok(())
}

//! OCI hooks: all six kinds run in order with the container state on stdin, get their args and env, time out, and
//! a failing createRuntime hook fails `create` without leaving a container.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use husk_testing::{
    is_gone, unique_id, wait_for, write_script, Bundle, HookKind, OutputExt, Runtime,
};
use serde_json::Value;

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(10);

/// Body of a logging hook: appends one line `name<TAB>arg<TAB>env<TAB>leak<TAB>state` to `log`, where `state` is
/// the JSON read from stdin with newlines flattened. The environment is recorded before anything else, and PATH is
/// set by the script itself since a hook gets exactly the configured environment.
fn logging_hook_body(log: &str) -> String {
    format!(
        "env_value=\"$HOOK_ENV\"; leak=\"${{CARGO_MANIFEST_DIR:+leaked}}\"\n\
         PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
         state=$(cat | tr '\\n' ' ')\n\
         printf '%s\\t%s\\t%s\\t%s\\t%s\\n' \"$1\" \"$2\" \"$env_value\" \"$leak\" \"$state\" >> {log}"
    )
}

#[derive(Debug)]
struct HookRecord {
    name: String,
    arg: String,
    env: String,
    leak: String,
    state: Value,
}

fn read_hook_log(bundle: &Bundle) -> Vec<HookRecord> {
    let text = bundle.read_shared("hooks.log").unwrap_or_default();
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.splitn(5, '\t').collect();
            assert_eq!(fields.len(), 5, "bad hook log line {line:?}");
            HookRecord {
                name: fields[0].to_owned(),
                arg: fields[1].to_owned(),
                env: fields[2].to_owned(),
                leak: fields[3].to_owned(),
                state: serde_json::from_str(fields[4]).unwrap_or_else(|e| {
                    panic!(
                        "{} hook got invalid state JSON ({e}): {}",
                        fields[0], fields[4]
                    )
                }),
            }
        })
        .collect()
}

/// A bundle with one logging hook of every kind. Host hooks run a script in the bundle directory; the startContainer
/// hook runs a copy inside the container's rootfs and logs through the shared directory.
fn bundle_with_all_hooks(rt: &Runtime) -> Bundle {
    let bundle = Bundle::new(rt)
        .with_shared_dir()
        .sh("echo ready > /shared/ready; exec sleep 1000");
    let host_log = bundle.shared_dir().join("hooks.log");
    let host_script = bundle.path().join("hook.sh");
    write_script(&host_script, &logging_hook_body(host_log.to_str().unwrap()));
    let container_script = bundle.rootfs_script("hook.sh", &logging_hook_body("/shared/hooks.log"));
    let mut bundle = bundle;
    for kind in HookKind::ALL {
        let path = if kind == HookKind::StartContainer {
            container_script.clone()
        } else {
            host_script.to_string_lossy().into_owned()
        };
        let arg = format!("arg-{}", kind.as_str());
        let env = format!("HOOK_ENV=env-{}", kind.as_str());
        bundle = bundle.add_hook(kind, &path, &[&path, kind.as_str(), &arg], &[&env], None);
    }
    bundle
}

#[test]
fn all_hooks_run_in_order_with_state_args_and_env() {
    let rt = runtime();
    let bundle = bundle_with_all_hooks(&rt);
    let id = unique_id("hooks");
    let c = rt.guard(&id);
    rt.run_ok([
        "create".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    // The spec runs poststart after the user process has started, i.e. during `start`. runc 1.1.5 runs it at the
    // end of `create` instead (fixed in runc 1.2). See tests/RUNC_DIFFERENCES.md.
    let (create_phase, start_phase): (&[&str], &[&str]) = if rt.is_runc() {
        (
            &["prestart", "createRuntime", "createContainer", "poststart"],
            &["startContainer"],
        )
    } else {
        (
            &["prestart", "createRuntime", "createContainer"],
            &["startContainer", "poststart"],
        )
    };
    let after_create: Vec<String> = read_hook_log(&bundle).into_iter().map(|r| r.name).collect();
    assert_eq!(after_create, create_phase, "hooks run by create");

    c.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
    let after_start: Vec<String> = read_hook_log(&bundle).into_iter().map(|r| r.name).collect();
    assert_eq!(
        after_start[create_phase.len()..],
        *start_phase,
        "hooks run by start"
    );

    c.kill("KILL");
    assert!(c.wait_status("stopped", WAIT));
    rt.run_ok(["delete", &id]);

    let records = read_hook_log(&bundle);
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    let expected: Vec<&str> = create_phase
        .iter()
        .chain(start_phase)
        .copied()
        .chain(["poststop"])
        .collect();
    assert_eq!(names, expected);
    for record in &records {
        let state = &record.state;
        assert_eq!(record.arg, format!("arg-{}", record.name), "{record:?}");
        assert_eq!(record.env, format!("env-{}", record.name), "{record:?}");
        assert_eq!(
            record.leak, "",
            "{} hook inherited the runtime's environment",
            record.name
        );
        assert!(
            state["ociVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("1.")),
            "{record:?}"
        );
        assert_eq!(state["id"], id.as_str(), "{record:?}");
        assert_eq!(
            state["bundle"],
            bundle.path().to_str().unwrap(),
            "{record:?}"
        );
        assert!(state["status"].is_string(), "{record:?}");
        if record.name != "poststop" {
            assert!(
                state["pid"].as_i64().is_some_and(|p| p > 0),
                "{} hook state lacks pid: {state}",
                record.name
            );
        }
    }
    for record in &records[..2] {
        assert_eq!(record.state["status"], "creating", "{record:?}");
    }
    let poststop = records.last().unwrap();
    assert_eq!(poststop.state["status"], "stopped", "{poststop:?}");
}

#[test]
fn hooks_run_for_foreground_run() {
    let rt = runtime();
    let bundle = bundle_with_all_hooks(&rt).sh("echo ran");
    let out = rt.run_bundle(&bundle);
    assert!(out.status.success(), "{}", out.describe());
    let names: Vec<String> = read_hook_log(&bundle).into_iter().map(|r| r.name).collect();
    let expected = if rt.is_runc() {
        // runc 1.1.5 runs poststart before the user process starts (see all_hooks_run_in_order...).
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "startContainer",
            "poststop",
        ]
    } else {
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ]
    };
    assert_eq!(names, expected);
}

#[test]
fn hook_timeout_kills_hook_and_fails_create() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).sh("echo should-not-run");
    let pid_file = bundle.path().join("hook.pid");
    let script = bundle.path().join("slow.sh");
    // exec: the recorded pid is the sleeping process, and this hook runs on the host, so it is a host pid.
    write_script(
        &script,
        &format!("echo $$ > {}; exec sleep 30", pid_file.display()),
    );
    let bundle = bundle.add_hook(
        HookKind::CreateRuntime,
        script.to_str().unwrap(),
        &[],
        &[],
        Some(1),
    );

    let id = unique_id("timeout");
    let _guard = rt.guard(&id);
    let started = Instant::now();
    let out = rt.run([
        "create".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    let took = started.elapsed();
    assert!(
        !out.status.success(),
        "create succeeded although its hook timed out\n{}",
        out.describe()
    );
    assert!(
        took < Duration::from_secs(10),
        "timeout of 1s not enforced: create took {took:?}"
    );
    let hook_pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("hook ran")
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_for(|| is_gone(hook_pid), WAIT),
        "timed-out hook {hook_pid} still runs"
    );
    assert!(rt.list_ids().is_empty(), "{:?}", rt.list_ids());
}

#[test]
fn failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    let rt = runtime();
    for kind in [
        HookKind::CreateRuntime,
        HookKind::Prestart,
        HookKind::CreateContainer,
    ] {
        let bundle = Bundle::new(&rt)
            .with_shared_dir()
            .sh("echo ran > /shared/ran");
        let script = bundle.path().join("fail.sh");
        write_script(
            &script,
            "cat > /dev/null; echo hook-failed-on-purpose >&2; exit 3",
        );
        let bundle = bundle.add_hook(kind, script.to_str().unwrap(), &[], &[], None);
        let id = unique_id("failhook");
        let _guard = rt.guard(&id);
        let out = rt.run([
            "create".as_ref(),
            "--bundle".as_ref(),
            bundle.path().as_os_str(),
            id.as_ref(),
        ]);
        assert!(
            !out.status.success(),
            "{} hook failure ignored\n{}",
            kind.as_str(),
            out.describe()
        );
        assert!(
            rt.list_ids().is_empty(),
            "{}: {:?}",
            kind.as_str(),
            rt.list_ids()
        );
        assert!(rt.try_state(&id).is_none());
        assert!(
            rt.state_dir_entries().is_empty(),
            "{}: {:?}",
            kind.as_str(),
            rt.state_dir_entries()
        );
        assert!(bundle.read_shared("ran").is_none(), "container process ran");
        assert!(
            bundle.leftover_mounts().is_empty(),
            "{:?}",
            bundle.leftover_mounts()
        );
    }
}

#[test]
fn failing_start_container_hook_fails_start() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .sh("echo ran > /shared/ran");
    let script = bundle.rootfs_script("fail.sh", "exit 5");
    let bundle = bundle.add_hook(HookKind::StartContainer, &script, &[], &[], None);
    let c = rt.create(&bundle);
    let out = rt.run(["start", c.id()]);
    if rt.is_runc() {
        // runc 1.1.5's `start` only releases the init process and exits 0 before the hook has even run; the failure
        // is visible only as a container that stops without running its process. See tests/RUNC_DIFFERENCES.md.
        assert!(out.status.success(), "{}", out.describe());
    } else {
        assert!(
            !out.status.success(),
            "startContainer hook failure ignored\n{}",
            out.describe()
        );
    }
    assert!(
        c.wait_status("stopped", WAIT),
        "container not stopped after its startContainer hook failed"
    );
    assert!(
        bundle.read_shared("ran").is_none(),
        "user process ran despite failed startContainer hook"
    );
}

#[test]
fn failing_poststop_hook_does_not_block_delete() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).sh("true");
    let script = bundle.path().join("fail.sh");
    write_script(&script, "exit 9");
    let bundle = bundle.add_hook(HookKind::Poststop, script.to_str().unwrap(), &[], &[], None);
    let c = rt.create(&bundle);
    c.start();
    assert!(c.wait_status("stopped", WAIT));
    let _ = rt.run(["delete", c.id()]);
    assert!(
        rt.try_state(c.id()).is_none(),
        "a failing poststop hook kept the container"
    );
}

//! The systemd cgroup driver (`--systemd-cgroup`), through the CLI, on real containers.
//!
//! Which host each test needs:
//! * on a host with systemd as PID 1 and cgroup v2 (the VM lane), every test drives real
//!   containers: the transient scope, its properties (`systemctl show`), the delegated cgroup's
//!   files, `update`, pause/resume, `events --stats`, and that nothing is left;
//! * on a host without systemd (the development host), the same tests check instead that
//!   `--systemd-cgroup` is refused with one clear line and leaves nothing (no state, no cgroup):
//!   each still asserts, none passes vacuously.
//!
//! A systemd host with cgroup v1 is not supported by husk's systemd driver: the tests fail
//! loudly there, saying so.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use husk_testing::cgroups::{is_v2, read_keyed, read_trimmed};
use husk_testing::{unique_id, wait_for, Bundle, OutputExt, Runtime};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// Whether this host runs systemd as its init (what `sd_booted()` checks).
fn systemd_host() -> bool {
    Path::new("/run/systemd/system").exists()
}

/// On a systemd host: `Some(runtime)`, after checking it is cgroup v2. Without systemd: checks
/// that `--systemd-cgroup create` of `bundle` fails with the clear one-line error and leaves no
/// state and no cgroup, and returns `None` (the calling test is then done).
fn systemd_or_refused(bundle: impl FnOnce(&Runtime) -> Bundle) -> Option<Runtime> {
    let rt = runtime();
    if systemd_host() {
        assert!(
            is_v2(),
            "husk's systemd cgroup driver needs cgroup v2; this systemd host is not"
        );
        return Some(rt);
    }
    let bundle = bundle(&rt);
    let id = unique_id("sd");
    let _guard = rt.guard(id.clone());
    let out = rt.run_fail([
        "--systemd-cgroup",
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    let stderr = out.stderr_str();
    let expected = if rt.is_runc() {
        "systemd not running on this host"
    } else {
        "systemd cgroup driver: no systemd instance reachable"
    };
    assert!(stderr.contains(expected), "{}", out.describe());
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "not one line: {}",
        out.describe()
    );
    assert!(
        rt.state_dir_entries().is_empty(),
        "state left: {:?}",
        rt.state_dir_entries()
    );
    let leftovers = cgroup_dirs_containing(&id);
    assert!(leftovers.is_empty(), "cgroups left: {leftovers:?}");
    None
}

/// Every directory under /sys/fs/cgroup (three levels deep, all hierarchies) whose name holds
/// `tag`.
fn cgroup_dirs_containing(tag: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut level = vec![PathBuf::from("/sys/fs/cgroup")];
    for _ in 0..5 {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    if entry.file_name().to_string_lossy().contains(tag) {
                        found.push(entry.path());
                    }
                    next.push(entry.path());
                }
            }
        }
        level = next;
    }
    found
}

/// A busybox bundle running `script`, with no cgroup namespace (so /proc/self/cgroup shows the
/// host's path) and a shared directory for results.
fn bundle(rt: &Runtime, script: &str) -> Bundle {
    Bundle::new(rt)
        .with_shared_dir()
        .remove_namespace("cgroup")
        .remove("/linux/cgroupsPath")
        .sh(script)
}

fn systemctl(args: &[&str]) -> String {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .expect("run systemctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `systemctl show -p NAME --value UNIT`.
fn property(unit: &str, name: &str) -> String {
    systemctl(&["show", "-p", name, "--value", unit])
        .trim()
        .to_owned()
}

/// Units of any state whose name holds `tag`.
fn units_containing(tag: &str) -> Vec<String> {
    systemctl(&[
        "list-units",
        "--all",
        "--plain",
        "--no-legend",
        "--no-pager",
    ])
    .lines()
    .filter(|l| l.contains(tag))
    .map(str::to_owned)
    .collect()
}

/// `--systemd-cgroup create --bundle B ID`, panicking on failure.
fn create(rt: &Runtime, bundle: &Bundle, id: &str) {
    rt.run_ok([
        "--systemd-cgroup",
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        id,
    ]);
}

fn assert_gone(id: &str, unit: &str, dir: &Path) {
    assert!(
        wait_for(|| units_containing(id).is_empty(), WAIT),
        "units left: {:?}",
        units_containing(id)
    );
    assert!(!dir.exists(), "{} left", dir.display());
    assert_eq!(
        property(unit, "LoadState"),
        "not-found",
        "{unit} still loaded"
    );
}

#[test]
fn scope_in_system_slice_carries_the_mapped_properties() {
    let script = "cat /proc/self/cgroup > /shared/cgroup; exec sleep 1000";
    let limits = |b: Bundle| {
        b.set("/linux/resources/memory", json!({"limit": 64 << 20}))
            .set("/linux/resources/pids", json!({"limit": 64}))
            .set(
                "/linux/resources/cpu",
                json!({"quota": 50000, "period": 100000, "cpus": "0", "shares": 2048}),
            )
    };
    let Some(rt) = systemd_or_refused(|rt| limits(bundle(rt, script))) else {
        return;
    };
    let b = limits(bundle(&rt, script));
    let id = unique_id("sdscope");
    let _guard = rt.guard(id.clone());
    create(&rt, &b, &id);
    let unit = format!("husk-{id}.scope");
    let path = format!("/system.slice/{unit}");
    let dir = PathBuf::from(format!("/sys/fs/cgroup{path}"));
    assert_eq!(property(&unit, "ActiveState"), "active");
    assert_eq!(property(&unit, "Slice"), "system.slice");
    assert_eq!(property(&unit, "Delegate"), "yes");
    assert_eq!(property(&unit, "MemoryMax"), (64u64 << 20).to_string());
    assert_eq!(property(&unit, "TasksMax"), "64");
    assert_eq!(property(&unit, "CPUQuotaPerSecUSec"), "500ms");
    assert_eq!(property(&unit, "AllowedCPUs"), "0");
    // cpu.shares 2048 is cpu.weight 1 + (2046 * 9999) / 262142 = 79, as runc converts it.
    assert_eq!(property(&unit, "CPUWeight"), "79");
    assert_eq!(property(&unit, "DevicePolicy"), "strict");
    assert!(
        property(&unit, "Description").contains(&id),
        "{}",
        property(&unit, "Description")
    );
    // The files of the delegated cgroup agree.
    assert_eq!(
        read_trimmed(&dir.join("memory.max")),
        (64u64 << 20).to_string()
    );
    assert_eq!(read_trimmed(&dir.join("pids.max")), "64");
    assert_eq!(read_trimmed(&dir.join("cpu.max")), "50000 100000");
    assert_eq!(read_trimmed(&dir.join("cpu.weight")), "79");
    assert_eq!(read_trimmed(&dir.join("cpuset.cpus")), "0");
    // The init is in the scope from the start (stage 1 went in before it ran anything).
    let procs = read_trimmed(&dir.join("cgroup.procs"));
    assert!(
        procs.lines().any(|p| p == rt.pid(&id).to_string()),
        "{procs}"
    );
    rt.run_ok(["start", &id]);
    assert!(
        wait_for(
            || b.read_shared("cgroup").is_some_and(|c| !c.is_empty()),
            WAIT
        ),
        "the container wrote no /proc/self/cgroup"
    );
    assert_eq!(
        b.read_shared("cgroup").unwrap().trim(),
        format!("0::{path}")
    );
    // exec joins the same scope.
    let out = rt.run_ok(["exec", &id, "cat", "/proc/self/cgroup"]);
    assert_eq!(out.stdout_str().trim(), format!("0::{path}"));
    // An allowed device passes both device filters (systemd's DeviceAllow= and husk's).
    rt.run_ok(["exec", &id, "sh", "-c", "echo x > /dev/null"]);
    rt.run_ok(["delete", "--force", &id]);
    assert_gone(&id, &unit, &dir);
    assert!(rt.state_dir_entries().is_empty());
}

#[test]
fn fork_bomb_stops_at_tasks_max() {
    // In a subshell: busybox sh gives up at the first failed fork.
    let script = "(i=0; while [ $i -lt 60 ]; do sleep 1000 & i=$((i+1)); done) 2>/dev/null; \
                  echo forked > /shared/done; exec sleep 1000";
    let limited = |b: Bundle| b.set("/linux/resources/pids", json!({"limit": 16}));
    let Some(rt) = systemd_or_refused(|rt| limited(bundle(rt, script))) else {
        return;
    };
    let b = limited(bundle(&rt, script));
    let id = unique_id("sdbomb");
    let _guard = rt.guard(id.clone());
    create(&rt, &b, &id);
    rt.run_ok(["start", &id]);
    assert!(
        wait_for(|| b.read_shared("done").is_some(), WAIT),
        "the loop never finished"
    );
    let unit = format!("husk-{id}.scope");
    let dir = PathBuf::from(format!("/sys/fs/cgroup/system.slice/{unit}"));
    assert_eq!(property(&unit, "TasksMax"), "16");
    let current: u64 = read_trimmed(&dir.join("pids.current")).parse().unwrap();
    assert!(current <= 16, "pids.current {current} above the limit");
    assert!(
        current >= 10,
        "pids.current {current}: the loop did not fork"
    );
    let events = read_keyed(&dir.join("pids.events"));
    assert!(
        events.get("max").copied().unwrap_or(0) > 0,
        "no fork was refused: {events:?}"
    );
    rt.run_ok(["delete", "--force", &id]);
    assert_gone(&id, &unit, &dir);
}

#[test]
fn update_pause_events_kill_and_ps_use_the_saved_driver() {
    let script = "exec sleep 1000";
    let limited = |b: Bundle| {
        b.set("/linux/resources/memory", json!({"limit": 64 << 20}))
            .set("/linux/resources/pids", json!({"limit": 64}))
    };
    let Some(rt) = systemd_or_refused(|rt| limited(bundle(rt, script))) else {
        return;
    };
    let b = limited(bundle(&rt, script));
    let id = unique_id("sdupd");
    let _guard = rt.guard(id.clone());
    create(&rt, &b, &id);
    rt.run_ok(["start", &id]);
    let unit = format!("husk-{id}.scope");
    let dir = PathBuf::from(format!("/sys/fs/cgroup/system.slice/{unit}"));
    // No --systemd-cgroup from here on: the state remembers the driver.
    rt.run_ok([
        "update",
        "--memory",
        "100M",
        "--memory-swap",
        "200M",
        "--pids-limit",
        "30",
        &id,
    ]);
    assert_eq!(property(&unit, "MemoryMax"), (100u64 << 20).to_string());
    assert_eq!(property(&unit, "MemorySwapMax"), (100u64 << 20).to_string());
    assert_eq!(property(&unit, "TasksMax"), "30");
    assert_eq!(
        read_trimmed(&dir.join("memory.max")),
        (100u64 << 20).to_string()
    );
    assert_eq!(
        read_trimmed(&dir.join("memory.swap.max")),
        (100u64 << 20).to_string()
    );
    assert_eq!(read_trimmed(&dir.join("pids.max")), "30");
    // The runtime's properties survive a daemon-reload (systemd rewrites the files from them).
    systemctl(&["daemon-reload"]);
    assert!(
        wait_for(
            || read_trimmed(&dir.join("memory.max")) == (100u64 << 20).to_string(),
            WAIT
        ),
        "memory.max after daemon-reload: {}",
        read_trimmed(&dir.join("memory.max"))
    );

    rt.run_ok(["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    assert_eq!(
        read_keyed(&dir.join("cgroup.events")).get("frozen"),
        Some(&1)
    );
    rt.run_ok(["resume", &id]);
    assert_eq!(rt.status(&id), "running");
    assert_eq!(
        read_keyed(&dir.join("cgroup.events")).get("frozen"),
        Some(&0)
    );

    let out = rt.run_ok(["events", "--stats", &id]);
    let stats: serde_json::Value = serde_json::from_str(out.stdout_str().trim())
        .unwrap_or_else(|e| panic!("events --stats: {e}: {}", out.describe()));
    assert_eq!(stats["type"], "stats", "{stats}");
    assert!(
        stats["data"]["memory"]["usage"]["usage"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{stats}"
    );
    assert!(
        stats["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );
    assert_eq!(stats["data"]["pids"]["limit"], 30, "{stats}");

    let out = rt.run_ok(["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_str(out.stdout_str().trim()).unwrap();
    assert_eq!(pids, vec![rt.pid(&id)]);

    rt.run_ok(["kill", "--all", &id, "KILL"]);
    assert!(
        wait_for(|| rt.status(&id) == "stopped", WAIT),
        "kill --all left it {}",
        rt.status(&id)
    );
    rt.run_ok(["delete", &id]);
    assert_gone(&id, &unit, &dir);
}

#[test]
fn bad_cgroups_path_is_one_line_and_leaves_no_unit() {
    for bad in [
        "/not/the/systemd/form",
        "system.slice:husk",
        "x.scope:husk:n",
    ] {
        let Some(rt) =
            systemd_or_refused(|rt| bundle(rt, "true").set("/linux/cgroupsPath", json!(bad)))
        else {
            continue;
        };
        let b = bundle(&rt, "true").set("/linux/cgroupsPath", json!(bad));
        let id = unique_id("sdbad");
        let _guard = rt.guard(id.clone());
        let out = rt.run_fail([
            "--systemd-cgroup",
            "create",
            "--bundle",
            b.path().to_str().unwrap(),
            &id,
        ]);
        let stderr = out.stderr_str();
        assert!(
            stderr.contains("linux.cgroupsPath"),
            "{bad}: {}",
            out.describe()
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{bad}: {}",
            out.describe()
        );
        assert!(rt.state_dir_entries().is_empty(), "{bad}: state left");
        assert!(units_containing(&id).is_empty(), "{bad}: unit left");
        assert!(cgroup_dirs_containing(&id).is_empty(), "{bad}: cgroup left");
    }
}

#[test]
fn two_containers_in_a_custom_slice() {
    let script = "cat /proc/self/cgroup > /shared/cgroup; exec sleep 1000";
    let Some(rt) = systemd_or_refused(|rt| {
        bundle(rt, script).set("/linux/cgroupsPath", json!("test-husk.slice:husk:x"))
    }) else {
        return;
    };
    let ids = [unique_id("sdslice"), unique_id("sdslice")];
    let guards: Vec<_> = ids.iter().map(|id| rt.guard(id.clone())).collect();
    let mut bundles = Vec::new();
    for id in &ids {
        let b = bundle(&rt, script).set(
            "/linux/cgroupsPath",
            json!(format!("test-husk.slice:husk:{id}")),
        );
        create(&rt, &b, id);
        rt.run_ok(["start", id]);
        bundles.push(b);
    }
    for (id, b) in ids.iter().zip(&bundles) {
        let unit = format!("husk-{id}.scope");
        let path = format!("/test.slice/test-husk.slice/{unit}");
        assert!(
            wait_for(
                || b.read_shared("cgroup").is_some_and(|c| !c.is_empty()),
                WAIT
            ),
            "{id} wrote nothing"
        );
        assert_eq!(
            b.read_shared("cgroup").unwrap().trim(),
            format!("0::{path}")
        );
        assert_eq!(property(&unit, "Slice"), "test-husk.slice");
        assert!(Path::new(&format!("/sys/fs/cgroup{path}")).is_dir());
    }
    for id in &ids {
        rt.run_ok(["delete", "--force", id]);
        let unit = format!("husk-{id}.scope");
        assert_gone(
            id,
            &unit,
            &PathBuf::from(format!("/sys/fs/cgroup/test.slice/test-husk.slice/{unit}")),
        );
    }
    drop(guards);
    systemctl(&["stop", "test-husk.slice"]);
}

#[test]
fn twenty_containers_leave_no_unit() {
    let Some(rt) = systemd_or_refused(|rt| bundle(rt, "true")) else {
        return;
    };
    let running = bundle(&rt, "exec sleep 1000");
    let quick = bundle(&rt, "true");
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = unique_id("sdmany");
        let _guard = rt.guard(id.clone());
        if i % 2 == 0 {
            // Created, started, force-deleted while running.
            create(&rt, &running, &id);
            rt.run_ok(["start", &id]);
            rt.run_ok(["delete", "--force", &id]);
        } else {
            // run in the foreground: the scope empties as the process exits, then delete.
            rt.run_ok([
                "--systemd-cgroup",
                "run",
                "--bundle",
                quick.path().to_str().unwrap(),
                &id,
            ]);
        }
        ids.push(id);
    }
    for id in &ids {
        let unit = format!("husk-{id}.scope");
        assert_gone(
            id,
            &unit,
            &PathBuf::from(format!("/sys/fs/cgroup/system.slice/{unit}")),
        );
    }
    assert!(rt.state_dir_entries().is_empty());
}

#[test]
fn commands_that_make_no_cgroup_accept_the_flag() {
    // On any host: the flag is global, and list, state and the like ignore it (as runc does).
    let rt = runtime();
    let out = rt.run_ok(["--systemd-cgroup", "list"]);
    assert!(out.stdout_str().starts_with("ID"), "{}", out.describe());
    let out = rt.run_fail(["--systemd-cgroup", "state", "no-such-container"]);
    assert!(
        out.stderr_str().contains("no-such-container"),
        "{}",
        out.describe()
    );
}

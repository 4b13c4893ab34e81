//! Reliability (issue 13): signals to a foreground `run`, readers during a `create`, and many
//! parallel callers against one `--root` leaving nothing behind.
//!
//! `HUSK_REL_N` sizes the parallel lifecycle test (containers in all, default 200) and
//! `HUSK_REL_CALLERS` the number of parallel callers (default 8).

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

use husk_testing::{
    existing_cgroups, unique_id, wait_for, zombie_children, Bundle, HookKind, OutputExt, Runtime,
    TempDir,
};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// Generous: these tests must pass on a loaded machine.
const WAIT: Duration = Duration::from_secs(30);

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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

/// Mount entries (mount point, type, source) that name `dirs`: what husk could leak from this
/// test. Other work on the machine mounts and unmounts elsewhere meanwhile.
fn mounts_naming(dirs: &[&Path]) -> BTreeSet<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    info.lines()
        .filter(|line| dirs.iter().any(|d| line.contains(&*d.to_string_lossy())))
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let after = line.split(" - ").nth(1).unwrap_or("");
            format!("{} {after}", fields.get(4).unwrap_or(&""))
        })
        .collect()
}

/// Runs one command of a container's life; records it as a failure unless it succeeds.
fn step(rt: &Runtime, args: &[&str], failures: &Mutex<Vec<String>>) -> bool {
    let out = rt.run(args);
    if !out.status.success() {
        failures
            .lock()
            .unwrap()
            .push(format!("{args:?}: {}", out.describe()));
    }
    out.status.success()
}

/// 200 containers (HUSK_REL_N) created, started, killed and deleted by 8 parallel callers
/// (HUSK_REL_CALLERS) against one root: no command fails, and afterwards no mount, cgroup,
/// state directory, zombie or container process is left.
#[test]
fn parallel_lifecycles_against_one_root_leave_nothing() {
    let count = env_number("HUSK_REL_N", 200);
    let callers = env_number("HUSK_REL_CALLERS", 8).max(1);
    let rt = runtime();
    let bundle = Bundle::new(&rt).args(["sleep", "100000"]);
    let prefix = unique_id("par");
    let watched = [rt.root(), bundle.path()];
    let mounts_before = mounts_naming(&watched);
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let lists = AtomicUsize::new(0);
    std::thread::scope(|s| {
        // A reader meanwhile: `list` must always answer with whole, valid states.
        s.spawn(|| {
            while next.load(Ordering::Relaxed) < count + callers {
                let out = rt.run(["list", "-f", "json"]);
                let valid = out.status.success()
                    && serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok_and(|v| {
                        v.is_null()
                            || v.as_array().is_some_and(|a| {
                                a.iter().all(|c| {
                                    ["creating", "created", "running", "stopped", "paused"]
                                        .contains(&c["status"].as_str().unwrap_or(""))
                                })
                            })
                    });
                if !valid {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("list during the run: {}", out.describe()));
                }
                lists.fetch_add(1, Ordering::Relaxed);
            }
        });
        for _ in 0..callers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let id = format!("{prefix}-{i}");
                let bundle_path = bundle.path().to_str().expect("UTF-8 bundle path");
                let ok = step(&rt, &["create", "--bundle", bundle_path, &id], &failures)
                    && step(&rt, &["start", &id], &failures)
                    && step(&rt, &["kill", &id, "KILL"], &failures);
                if ok {
                    let stopped = wait_for(
                        || rt.try_state(&id).is_some_and(|s| s["status"] == "stopped"),
                        WAIT,
                    );
                    if !stopped {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{id}: not stopped after SIGKILL"));
                    }
                    step(&rt, &["delete", &id], &failures);
                } else {
                    // Leave nothing behind for the checks below, whatever failed.
                    let _ = rt.run(["delete", "--force", &id]);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let leftover_state = rt.state_dir_entries();
    let leftover_cgroups: Vec<_> = (0..count)
        .flat_map(|i| existing_cgroups(&format!("/{prefix}-{i}")))
        .collect();
    let mounts_after = mounts_naming(&watched);
    let new_mounts: Vec<_> = mounts_after.difference(&mounts_before).collect();
    // The other tests of this binary run beside this one, and a child of theirs may be a zombie
    // for a moment before they wait for it: only a zombie that stays is a leak. A new one may
    // appear at any moment while they run, so the zombies seen first are followed, not the set.
    let seen = zombie_children();
    let staying = || -> Vec<i32> {
        let now = zombie_children();
        seen.iter()
            .copied()
            .filter(|pid| now.contains(pid))
            .collect()
    };
    wait_for(|| staying().is_empty(), Duration::from_secs(10));
    let zombies: Vec<String> = staying().iter().map(|&pid| describe_pid(pid)).collect();
    let orphans = processes_in_cgroups_named(&prefix);
    eprintln!(
        "{count} containers by {callers} callers ({} lists meanwhile): {} failures, {} state dirs, \
         {} cgroups, {} mounts, {} zombies, {} container processes left",
        lists.load(Ordering::Relaxed),
        failures.len(),
        leftover_state.len(),
        leftover_cgroups.len(),
        new_mounts.len(),
        zombies.len(),
        orphans.len()
    );
    assert!(
        failures.is_empty(),
        "{} commands failed, first: {}",
        failures.len(),
        failures.first().map(String::as_str).unwrap_or("")
    );
    assert!(leftover_state.is_empty(), "state left: {leftover_state:?}");
    assert!(
        leftover_cgroups.is_empty(),
        "cgroups left: {leftover_cgroups:?}"
    );
    assert!(new_mounts.is_empty(), "mounts left: {new_mounts:?}");
    assert!(zombies.is_empty(), "zombie children: {zombies:?}");
    assert!(orphans.is_empty(), "container processes left: {orphans:?}");
}

/// `pid` and its command name, as `/proc/<pid>/stat` shows them (a zombie keeps its name).
fn describe_pid(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let name = stat
        .split_once(" (")
        .and_then(|(_, rest)| rest.rsplit_once(')'))
        .map_or("?", |(name, _)| name);
    format!("{pid} ({name})")
}

/// Live (non-zombie) processes in a cgroup named with `prefix`: container processes of this
/// test that nothing owns any more.
fn processes_in_cgroups_named(prefix: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if std::fs::read_to_string(entry.path().join("cgroup"))
            .is_ok_and(|cgroups| cgroups.contains(&format!("/{prefix}-")))
            && !husk_testing::is_gone(pid)
        {
            found.push(pid);
        }
    }
    found
}

/// Two `create` calls with one id at the same moment: exactly one wins, the other fails in one
/// line saying that the container already exists and naming it (runc 1.1.5's phrase, "container
/// with given ID already exists", which clients match on, plus the id, which runc's lacks), and
/// the winner's container is intact.
#[test]
fn simultaneous_creates_of_one_id_exactly_one_wins() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).args(["sleep", "100000"]);
    let bundle_path = bundle.path().to_str().expect("UTF-8 bundle path");
    for round in 0..env_number("HUSK_REL_DUP_ROUNDS", 10) {
        let id = unique_id(&format!("dup{round}"));
        let _guard = rt.guard(&id);
        let barrier = Barrier::new(2);
        let outs: Vec<_> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut cmd = rt.cmd(["create", "--bundle", bundle_path, &id]);
                        barrier.wait();
                        husk_testing::run_with_timeout(&mut cmd, WAIT)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let winners = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(
            winners,
            1,
            "round {round}: {winners} creates won\n{}\n{}",
            outs[0].describe(),
            outs[1].describe()
        );
        let loser = outs.iter().find(|o| !o.status.success()).unwrap();
        let err = loser.stderr_str();
        assert!(
            err.contains("already exists")
                && (rt.is_runc() || err.contains(id.as_str()))
                && err.lines().count() == 1,
            "round {round}: unclear error for the losing create:\n{}",
            loser.describe()
        );
        assert_eq!(rt.status(&id), "created", "round {round}");
        rt.run_ok(["delete", "--force", id.as_str()]);
        assert!(rt.state_dir_entries().is_empty(), "round {round}");
        assert!(
            existing_cgroups(&format!("/{id}")).is_empty(),
            "round {round}"
        );
    }
}

/// `delete` racing other commands on the same container (`kill`, `state`, `start`): those may
/// lose (a real conflict, "does not exist"), but the delete succeeds and leaves no state
/// directory: a loser must not recreate the lock file in a directory being removed.
#[test]
fn delete_racing_other_commands_leaves_no_state() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).args(["sleep", "100000"]);
    let bundle_path = bundle.path().to_str().expect("UTF-8 bundle path");
    for round in 0..env_number("HUSK_REL_DELETE_ROUNDS", 30) {
        let id = unique_id(&format!("del{round}"));
        let _guard = rt.guard(&id);
        rt.run_ok(["create", "--bundle", bundle_path, &id]);
        rt.run_ok(["start", &id]);
        let barrier = Barrier::new(4);
        let deleted = std::thread::scope(|s| {
            for op in [["kill", "KILL"], ["state", ""], ["pause", ""]] {
                let (barrier, rt, id) = (&barrier, &rt, &id);
                s.spawn(move || {
                    barrier.wait();
                    // Until the container is gone: each try may fail in a real conflict.
                    for _ in 0..50 {
                        let args: Vec<&str> = [op[0], id.as_str(), op[1]]
                            .into_iter()
                            .filter(|a| !a.is_empty())
                            .collect();
                        let out = rt.run(&args);
                        if out.stderr_str().contains("does not exist") {
                            break;
                        }
                    }
                });
            }
            barrier.wait();
            rt.run(["delete", "--force", &id])
        });
        assert!(
            deleted.status.success(),
            "round {round}: {}",
            deleted.describe()
        );
        assert!(
            rt.state_dir_entries().is_empty(),
            "round {round}: state left: {:?}",
            rt.state_dir_entries()
        );
        assert!(
            existing_cgroups(&format!("/{id}")).is_empty(),
            "round {round}"
        );
    }
}

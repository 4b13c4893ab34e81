//! runc parity of the command line and of cgroup handling (issue 11, "Commands" and the cgroup items; issue 16,
//! bug 6): each test drives the runtime the way a real caller does and passes against husk and runc 1.1.5
//! (`HUSK_TEST_RUNTIME=/usr/sbin/runc`), apart from the differences listed in tests/RUNC_DIFFERENCES.md.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

mod io_support;

use std::path::PathBuf;

use husk_testing::{wait_for, Bundle, ContainerGuard, OutputExt, Runtime, TempDir};
use io_support::{cgroup_dirs, runtime, sleeper, WAIT};
use serde_json::json;

/// Creates and starts `bundle` (which must write /shared/ready) and waits until its process runs.
fn running<'rt>(rt: &'rt Runtime, bundle: &Bundle) -> ContainerGuard<'rt> {
    let c = rt.create(bundle);
    c.start();
    assert!(
        wait_for(|| bundle.read_shared("ready").is_some(), WAIT),
        "container process did not start"
    );
    c
}

/// A container whose process has exited (status `stopped`), and its bundle.
fn stopped(rt: &Runtime) -> (ContainerGuard<'_>, Bundle) {
    let bundle = Bundle::new(rt).args(["sh", "-c", "exit 0"]);
    let c = rt.create(&bundle);
    c.start();
    assert!(
        c.wait_status("stopped", WAIT),
        "container did not stop: {}",
        c.status()
    );
    (c, bundle)
}

#[test]
fn exec_process_file_without_user_runs_as_root() {
    let rt = runtime();
    let bundle = sleeper(&rt).user(1000, 1000, &[]);
    let c = running(&rt, &bundle);
    let dir = TempDir::new("husk-test-parity");
    let process = dir.join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["/bin/sh", "-c", "echo $(id -u):$(id -g)"], "cwd": "/"}).to_string(),
    )
    .unwrap();
    let out = rt.run_ok(["exec", "--process", process.to_str().unwrap(), c.id()]);
    assert_eq!(out.stdout_str().trim(), "0:0", "{}", out.describe());
}

#[test]
fn exec_into_a_sub_cgroup_that_does_not_exist_is_refused() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let dirs = cgroup_dirs(c.pid());
    let out = rt.run([
        "exec",
        "--cgroup",
        "no-such-sub",
        c.id(),
        "sh",
        "-c",
        "exit 0",
    ]);
    assert!(
        !out.status.success(),
        "exec into a missing sub-cgroup succeeded\n{}",
        out.describe()
    );
    for dir in &dirs {
        let sub = dir.join("no-such-sub");
        assert!(!sub.exists(), "{} was created", sub.display());
    }
    // An existing one is joined.
    let sub_dirs: Vec<PathBuf> = dirs.iter().map(|d| d.join("sub")).collect();
    for sub in &sub_dirs {
        std::fs::create_dir(sub).unwrap();
        // A new v1 cpuset has no CPUs or memory nodes until given some.
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = std::fs::read_to_string(sub.parent().unwrap().join(file)) {
                std::fs::write(sub.join(file), value).unwrap();
            }
        }
    }
    let out = rt.run_ok([
        "exec",
        "--cgroup",
        "sub",
        c.id(),
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(
        out.stdout_str().lines().any(|l| l.ends_with("/sub")),
        "exec'd process is not in the sub-cgroup\n{}",
        out.describe()
    );
    for sub in &sub_dirs {
        let _ = wait_for(|| std::fs::remove_dir(sub).is_ok() || !sub.exists(), WAIT);
    }
}

#[test]
fn kill_with_signal_zero_checks_that_the_container_runs() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    rt.run_ok(["kill", c.id(), "0"]);
    rt.run_ok(["kill", "--all", c.id(), "0"]);
    assert_eq!(
        c.status(),
        "running",
        "signal 0 must not disturb the container"
    );
    let (s, _bundle) = stopped(&rt);
    rt.run_fail(["kill", s.id(), "0"]);
}

#[test]
fn kill_all_of_a_stopped_container_succeeds() {
    let rt = runtime();
    let (c, _bundle) = stopped(&rt);
    rt.run_ok(["kill", "--all", c.id(), "KILL"]);
    rt.run_ok(["kill", "-a", c.id()]);
    // Without --all it is still an error, as in runc.
    rt.run_fail(["kill", c.id(), "KILL"]);
}

/// A cgroup made before any container, at the same path in every hierarchy, holding a host process (a
/// "victim": another container's process or a host service in real life). Killed and removed on drop.
struct ForeignCgroup {
    /// The path as `linux.cgroupsPath` names it.
    path: String,
    dirs: Vec<PathBuf>,
    victim: std::process::Child,
}

impl ForeignCgroup {
    fn new() -> ForeignCgroup {
        let path = format!("/{}", husk_testing::unique_id("foreign"));
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mounts = mountinfo.lines().filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let is_cgroup = right.starts_with("cgroup ") || right.starts_with("cgroup2 ");
            (is_cgroup && fields.get(3) == Some(&"/")).then(|| PathBuf::from(fields[4]))
        });
        let victim = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let mut foreign = ForeignCgroup {
            path: path.clone(),
            dirs: Vec::new(),
            victim,
        };
        for mount in mounts {
            let dir = mount.join(&path[1..]);
            std::fs::create_dir(&dir).unwrap();
            foreign.dirs.push(dir.clone());
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(value) = std::fs::read_to_string(mount.join(file)) {
                    std::fs::write(dir.join(file), value).unwrap();
                }
            }
            std::fs::write(dir.join("cgroup.procs"), foreign.victim.id().to_string()).unwrap();
        }
        foreign
    }

    /// Panics unless the victim still runs and every directory is still there.
    fn assert_untouched(&mut self, after: &str) {
        assert!(
            self.victim.try_wait().unwrap().is_none(),
            "the process in the pre-existing cgroup was killed by {after}"
        );
        for dir in &self.dirs {
            assert!(dir.is_dir(), "{after} removed {}", dir.display());
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
            assert!(
                procs.lines().any(|l| l == self.victim.id().to_string()),
                "the victim left {} after {after}",
                dir.display()
            );
        }
    }
}

impl Drop for ForeignCgroup {
    fn drop(&mut self) {
        let _ = self.victim.kill();
        let _ = self.victim.wait();
        for dir in &self.dirs {
            let _ = wait_for(|| std::fs::remove_dir(dir).is_ok() || !dir.exists(), WAIT);
        }
    }
}

#[test]
fn delete_spares_processes_and_directories_of_a_cgroup_it_did_not_create() {
    let rt = runtime();
    let mut foreign = ForeignCgroup::new();

    // delete --force of a running container.
    let bundle = sleeper(&rt).set("/linux/cgroupsPath", json!(foreign.path));
    let c = running(&rt, &bundle);
    let init = c.pid();
    rt.run_ok(["delete", "--force", c.id()]);
    assert!(
        wait_for(|| husk_testing::is_gone(init), WAIT),
        "the container's init survived delete --force"
    );
    foreign.assert_untouched("delete --force");

    // delete of a stopped container.
    let bundle = Bundle::new(&rt)
        .args(["sh", "-c", "exit 0"])
        .set("/linux/cgroupsPath", json!(foreign.path));
    let c = rt.create(&bundle);
    c.start();
    assert!(c.wait_status("stopped", WAIT), "container did not stop");
    let out = rt.run(["delete", c.id()]);
    foreign.assert_untouched("delete");
    assert!(out.status.success(), "delete failed\n{}", out.describe());
}

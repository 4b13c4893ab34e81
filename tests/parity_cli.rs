//! runc parity of the command line and of cgroup handling (issue 11, "Commands" and the cgroup items; issue 16,
//! bug 6): each test drives the runtime the way a real caller does and passes against husk and runc 1.1.5
//! (`HUSK_TEST_RUNTIME=/usr/sbin/runc`), apart from the differences listed in tests/RUNC_DIFFERENCES.md.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

mod io_support;

use std::path::PathBuf;

use husk_testing::cgroups::{self, CgroupMode};
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

/// A process.json without `capabilities` (or noNewPrivileges, rlimits) must not run with every
/// capability of the runtime: it gets the container's, as in runc.
#[test]
fn exec_process_file_without_capabilities_gets_the_containers() {
    let rt = runtime();
    let bundle = sleeper(&rt)
        .set(
            "/process/capabilities",
            json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}),
        )
        .no_new_privileges(true);
    let c = running(&rt, &bundle);
    let dir = TempDir::new("husk-test-parity");
    let process = dir.join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["/bin/sh", "-c", "grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status"], "cwd": "/"})
            .to_string(),
    )
    .unwrap();
    let out = rt.run_ok(["exec", "--process", process.to_str().unwrap(), c.id()]);
    let stdout = out.stdout_str();
    // CAP_KILL is bit 5. runc 1.1.5 does not carry noNewPrivileges over (RUNC_DIFFERENCES).
    let mut expected = vec!["CapBnd:\t0000000000000020", "CapEff:\t0000000000000020"];
    if !rt.is_runc() {
        expected.push("NoNewPrivs:\t1");
    }
    for expected in expected {
        assert!(
            stdout.contains(expected),
            "no {expected:?}\n{}",
            out.describe()
        );
    }
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
        // A new v1 cpuset has no CPUs or memory nodes until given some (a v2 sub-cgroup has no
        // cpuset files: the container's cgroup enables no controllers below itself).
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let parent_value = std::fs::read_to_string(sub.parent().unwrap().join(file));
            if let (Ok(value), true) = (parent_value, sub.join(file).exists()) {
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
    // runc's controller:path form: the sub-cgroup in the memory hierarchy only (v1: a v2 host
    // has one hierarchy for every controller, checked below; runc 1.1.5 refuses it there too,
    // "unknown controller memory in SubCgroupPaths", seen in the VM lane).
    let remove_subs = || {
        for sub in &sub_dirs {
            let _ = wait_for(|| std::fs::remove_dir(sub).is_ok() || !sub.exists(), WAIT);
        }
    };
    if cgroups::is_v2() {
        let out = rt.run(["exec", "--cgroup", "memory:sub", c.id(), "true"]);
        remove_subs();
        if !rt.is_runc() {
            assert!(
                out.stderr_str().contains("needs cgroup v1"),
                "{}",
                out.describe()
            );
        }
        return;
    }
    let out = rt.run_ok([
        "exec",
        "--cgroup",
        "memory:sub",
        c.id(),
        "cat",
        "/proc/self/cgroup",
    ]);
    let text = out.stdout_str();
    let line = |controller: &str| {
        text.lines()
            .find(|l| l.split(':').nth(1) == Some(controller))
            .unwrap_or_else(|| panic!("no {controller} line in\n{text}"))
            .to_string()
    };
    assert!(line("memory").ends_with("/sub"), "{text}");
    assert!(!line("pids").ends_with("/sub"), "{text}");
    remove_subs();
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
        let victim = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let mut foreign = ForeignCgroup {
            path: path.clone(),
            dirs: Vec::new(),
            victim,
        };
        for mount in cgroup_mounts() {
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

#[test]
fn events_lines_have_keys_in_runc_order() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let out = rt.run_ok(["events", "--stats", c.id()]);
    let line = out.stdout_str();
    let prefix = format!(r#"{{"type":"stats","id":"{}","data":{{"#, c.id());
    assert!(
        line.starts_with(&prefix),
        "events line does not start with {prefix}\n{}",
        out.describe()
    );
    let _: serde_json::Value = serde_json::from_str(line.trim()).expect("events line is JSON");
}

/// True if `line` is a logrus text line `time="..." level=<level> msg=...`.
fn is_logrus_line(line: &str, level: &str) -> bool {
    line.starts_with("time=\"") && line.contains(&format!(" level={level} msg="))
}

#[test]
fn debug_prints_logrus_debug_lines() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).args(["sh", "-c", "echo hello"]);
    let id = husk_testing::unique_id("debug");
    let _guard = rt.guard(&id);
    let out = husk_testing::run_with_timeout(
        rt.bare_cmd(["--root".as_ref(), rt.root().as_os_str()])
            .args(["--debug", "run", "--bundle"])
            .arg(bundle.path())
            .arg(&id),
        WAIT,
    );
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout_str(), "hello\n");
    assert!(
        out.stderr_str().lines().any(|l| is_logrus_line(l, "debug")),
        "no level=debug line on stderr\n{}",
        out.describe()
    );
}

#[test]
fn log_file_is_created_and_gets_logrus_or_json_lines() {
    let rt = runtime();
    let dir = TempDir::new("husk-test-log");
    let bundle = Bundle::new(&rt).args(["sh", "-c", "exit 0"]);

    // A successful command still creates the file.
    let text_log = dir.join("text.log");
    let id = husk_testing::unique_id("log");
    let _guard = rt.guard(&id);
    let mut cmd = rt.cmd(["--log".as_ref(), text_log.as_os_str()]);
    cmd.args(["--debug", "run", "--bundle"])
        .arg(bundle.path())
        .arg(&id);
    let out = husk_testing::run_with_timeout(&mut cmd, WAIT);
    assert!(out.status.success(), "{}", out.describe());
    let text = std::fs::read_to_string(&text_log).expect("--log file was not created");
    assert!(
        text.lines().any(|l| is_logrus_line(l, "debug")),
        "no debug line in the --log file:\n{text}"
    );
    assert!(
        !out.stderr_str().contains("level=debug"),
        "debug lines went to stderr too\n{}",
        out.describe()
    );

    // An error goes to the file as JSON with --log-format json.
    let json_log = dir.join("json.log");
    let mut cmd = rt.cmd(["--log".as_ref(), json_log.as_os_str()]);
    cmd.args(["--log-format", "json", "state", "no-such-container"]);
    let out = husk_testing::run_with_timeout(&mut cmd, WAIT);
    assert!(!out.status.success(), "{}", out.describe());
    let text = std::fs::read_to_string(&json_log).expect("--log file was not created");
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not a JSON line ({e}):\n{text}"));
    assert_eq!(line["level"], "error", "{text}");
    assert!(
        line["msg"].as_str().unwrap().contains("does not exist"),
        "{text}"
    );
    assert!(line["time"].is_string(), "{text}");

    // And a file named for a command that logs nothing exists afterwards.
    let quiet_log = dir.join("quiet.log");
    let mut cmd = rt.cmd(["--log".as_ref(), quiet_log.as_os_str()]);
    cmd.args(["list", "-q"]);
    let out = husk_testing::run_with_timeout(&mut cmd, WAIT);
    assert!(out.status.success(), "{}", out.describe());
    assert!(
        quiet_log.exists(),
        "--log file of a quiet command was not created"
    );
}

/// The memory limit of the container's own cgroup as the container sees it (its cgroup namespace
/// puts its cgroup at the root of the mount): v1 `memory.limit_in_bytes`, v2 `memory.max`.
fn container_memory_limit_file() -> &'static str {
    match cgroups::mode() {
        CgroupMode::V2 => "/sys/fs/cgroup/memory.max",
        _ => "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    }
}

#[test]
fn kernel_memory_limits_are_ignored_with_a_warning_at_create() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .set(
            "/linux/resources/memory",
            json!({"limit": 104857600, "kernel": 10485760, "kernelTCP": 10485760}),
        )
        .args([
            "sh",
            "-c",
            &format!("cat {}", container_memory_limit_file()),
        ]);
    let out = rt.run_bundle(&bundle);
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout_str().trim(), "104857600", "{}", out.describe());
    assert!(
        out.stderr_str()
            .lines()
            .any(|l| is_logrus_line(l, "warning")
                && l.contains("Kernel memory settings are ignored")),
        "no warning about the ignored kernel memory settings\n{}",
        out.describe()
    );
}

#[test]
fn joining_a_cgroup_with_processes_warns_that_it_is_not_empty() {
    let rt = runtime();
    let foreign = ForeignCgroup::new();
    let bundle = Bundle::new(&rt)
        .args(["sh", "-c", "exit 0"])
        .set("/linux/cgroupsPath", json!(foreign.path));
    let out = rt.run_bundle(&bundle);
    assert!(out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str()
            .lines()
            .any(|l| is_logrus_line(l, "warning")
                && l.contains("container's cgroup is not empty: 1 process(es) found")),
        "no warning about the non-empty cgroup\n{}",
        out.describe()
    );
}

#[test]
fn foreground_terminal_output_has_plain_newlines() {
    use std::os::unix::process::CommandExt;
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .set("/process/terminal", json!(true))
        // runc clears ONLCR only once its relay has the pty, which may be after the process
        // started: the process waits for a line from us, sent once its first output arrived.
        .args([
            "sh",
            "-c",
            "echo ready; read x; echo one; echo two; echo END",
        ]);
    let id = husk_testing::unique_id("onlcr");
    let _guard = rt.guard(&id);
    // The runtime runs on a terminal of its own (as from an interactive shell): both runc and
    // husk need a controlling terminal for `run` with process.terminal in the foreground.
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut cmd = rt.cmd(["run", "--bundle"]);
    cmd.arg(bundle.path()).arg(&id);
    let slave = || std::process::Stdio::from(pty.slave.try_clone().unwrap());
    cmd.stdin(slave()).stdout(slave()).stderr(slave());
    // SAFETY: setsid and ioctl are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(pty.slave);
    let master = std::fs::File::from(pty.master);
    // Read raw (io_support's pty reader drops carriage returns, which are the point here).
    let reader = std::thread::spawn(move || {
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let mut answered = false;
        while !String::from_utf8_lossy(&raw).contains("END") {
            match std::io::Read::read(&mut &master, &mut buf) {
                Ok(n) if n > 0 => raw.extend_from_slice(&buf[..n]),
                _ => break, // EIO: every slave closed
            }
            if !answered && String::from_utf8_lossy(&raw).contains("ready") {
                answered = true;
                let _ = std::io::Write::write_all(&mut &master, b"go\n");
            }
        }
        String::from_utf8_lossy(&raw).into_owned()
    });
    let _ = io_support::wait_child(&mut child, WAIT, "run");
    assert!(
        wait_for(|| reader.is_finished(), WAIT),
        "no END from the container"
    );
    let text = reader.join().unwrap();
    // runc 1.1.5 calls ClearONLCR in its relay, yet its output here still has \r\n
    // (tests/RUNC_DIFFERENCES.md).
    let expected = if rt.is_runc() {
        "one\r\ntwo\r\nEND"
    } else {
        "one\ntwo\nEND"
    };
    assert!(
        text.contains(expected),
        "container terminal output is not {expected:?}: {text:?}"
    );
}

/// Mount points of the cgroup hierarchies (v1 and the hybrid cgroup2) mounted at their root.
fn cgroup_mounts() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let is_cgroup = right.starts_with("cgroup ") || right.starts_with("cgroup2 ");
            (is_cgroup && fields.get(3) == Some(&"/")).then(|| PathBuf::from(fields[4]))
        })
        .collect()
}

/// Removes `path` (relative to each hierarchy root) and its parents up to the first component, in every
/// hierarchy, when dropped (a runtime may leave parents of a nested `cgroupsPath` behind).
struct CgroupTree(String);

impl Drop for CgroupTree {
    fn drop(&mut self) {
        for mount in cgroup_mounts() {
            let mut dir = mount.join(&self.0);
            while dir != mount {
                let _ = wait_for(|| std::fs::remove_dir(&dir).is_ok() || !dir.exists(), WAIT);
                dir.pop();
            }
        }
    }
}

#[test]
fn update_to_a_smaller_period_and_quota_under_a_limited_parent() {
    let rt = runtime();
    let parent = husk_testing::unique_id("cpu-parent");
    let _tree = CgroupTree(format!("{parent}/child"));
    // The parent allows half a CPU. On v1 the kernel refuses a child's quota/period above 1/2;
    // v2 writes both in one `cpu.max` and limits only at run time, so there the order is moot
    // and the test checks that each update lands.
    let v2 = cgroups::is_v2();
    let parent_dir = cgroups::hierarchy_root("cpu").join(&parent);
    std::fs::create_dir(&parent_dir).unwrap();
    if v2 {
        std::fs::write(parent_dir.join("cpu.max"), "50000 100000").unwrap();
    } else {
        std::fs::write(parent_dir.join("cpu.cfs_period_us"), "100000").unwrap();
        std::fs::write(parent_dir.join("cpu.cfs_quota_us"), "50000").unwrap();
    }
    let bundle = sleeper(&rt)
        .set("/linux/cgroupsPath", json!(format!("/{parent}/child")))
        .set(
            "/linux/resources/cpu",
            json!({"quota": 50000, "period": 100000}),
        );
    let c = running(&rt, &bundle);
    // Period first would make 50000/50000 = 1 CPU for a moment: the kernel refuses that.
    rt.run_ok([
        "update",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        c.id(),
    ]);
    let child = parent_dir.join("child");
    // (quota, period) as the host's layout shows them.
    let limit = || {
        if v2 {
            let max = cgroups::read_trimmed(&child.join("cpu.max"));
            let (quota, period) = max.split_once(' ').unwrap();
            (quota.to_string(), period.to_string())
        } else {
            (
                cgroups::read_trimmed(&child.join("cpu.cfs_quota_us")),
                cgroups::read_trimmed(&child.join("cpu.cfs_period_us")),
            )
        }
    };
    assert_eq!(limit(), ("25000".into(), "50000".into()));
    // And back up: now period first is the order that works.
    rt.run_ok([
        "update",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        c.id(),
    ]);
    assert_eq!(limit(), ("50000".into(), "100000".into()));
}

#[test]
fn update_ignores_unknown_letters_in_device_access() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let dir = TempDir::new("husk-test-parity");
    let resources = dir.join("resources.json");
    std::fs::write(
        &resources,
        json!({"devices": [
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwa"}
        ]})
        .to_string(),
    )
    .unwrap();
    rt.run_ok(["update", "-r", resources.to_str().unwrap(), c.id()]);
    let out = rt.run([
        "exec",
        c.id(),
        "sh",
        "-c",
        "echo x > /dev/null && echo write-allowed",
    ]);
    if rt.is_runc() {
        // runc 1.1.5's update takes no device rules from -r at all (RUNC_DIFFERENCES.md).
        assert!(
            out.stdout_str().contains("write-allowed"),
            "{}",
            out.describe()
        );
    } else {
        assert!(
            !out.stdout_str().contains("write-allowed"),
            "the deny rule (rw of rwa) was not applied\n{}",
            out.describe()
        );
    }
}

/// A cgroup made beforehand in every hierarchy and frozen (v1 freezer, or v2 `cgroup.freeze`);
/// thawed and removed on drop.
struct FrozenCgroup {
    path: String,
    _tree: CgroupTree,
}

impl FrozenCgroup {
    fn new() -> FrozenCgroup {
        let path = husk_testing::unique_id("frozen");
        let tree = CgroupTree(path.clone());
        for mount in cgroup_mounts() {
            let dir = mount.join(&path);
            std::fs::create_dir(&dir).unwrap();
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(value) = std::fs::read_to_string(mount.join(file)) {
                    std::fs::write(dir.join(file), value).unwrap();
                }
            }
        }
        let frozen = FrozenCgroup { path, _tree: tree };
        frozen.set_frozen(true);
        frozen
    }

    fn set_frozen(&self, frozen: bool) {
        let dir = cgroups::hierarchy_root("freezer").join(&self.path);
        let is_done = || {
            if cgroups::is_v2() {
                let events = cgroups::read_keyed(&dir.join("cgroup.events"));
                events.get("frozen") == Some(&u64::from(frozen))
            } else {
                let state = cgroups::read_trimmed(&dir.join("freezer.state"));
                state == if frozen { "FROZEN" } else { "THAWED" }
            }
        };
        let (file, value) = match (cgroups::is_v2(), frozen) {
            (true, _) => ("cgroup.freeze", if frozen { "1" } else { "0" }),
            (false, true) => ("freezer.state", "FROZEN"),
            (false, false) => ("freezer.state", "THAWED"),
        };
        // Thawing on drop is best effort: the directory may be gone already.
        if std::fs::write(dir.join(file), value).is_ok() && frozen {
            assert!(wait_for(is_done, WAIT), "the test cgroup did not freeze");
        }
    }
}

impl Drop for FrozenCgroup {
    fn drop(&mut self) {
        self.set_frozen(false);
    }
}

#[test]
fn a_frozen_cgroup_fails_run_instead_of_hanging() {
    let rt = runtime();
    let frozen = FrozenCgroup::new();
    let bundle = Bundle::new(&rt)
        .args(["sleep", "1000"])
        .set("/linux/cgroupsPath", json!(format!("/{}", frozen.path)));
    let id = husk_testing::unique_id("frozen");
    let guard = rt.guard(&id);
    let mut cmd = rt.cmd(["run", "-d", "--bundle"]);
    cmd.arg(bundle.path()).arg(&id);
    let out = husk_testing::Spawned::start(&mut cmd).wait_or_kill(WAIT);
    let out = match out {
        Ok(out) => out,
        Err(out) => panic!("run -d in a frozen cgroup hung\n{}", out.describe()),
    };
    assert!(
        !out.status.success(),
        "run -d succeeded\n{}",
        out.describe()
    );
    assert!(
        out.stderr_str().contains("cgroup unexpectedly frozen"),
        "the error does not say that the cgroup is frozen\n{}",
        out.describe()
    );
    assert!(rt.list_ids().is_empty(), "a container was left behind");
    drop(guard);
}

#[test]
fn error_messages_that_tools_match() {
    let rt = runtime();
    let dir = TempDir::new("husk-test-parity");

    // cgroup v2 settings on a cgroup v1 host (on a v2 host they are simply valid).
    if !cgroups::is_v2() {
        let bundle = Bundle::new(&rt).args(["sleep", "1000"]).set(
            "/linux/resources/unified",
            json!({"memory.high": "100000000"}),
        );
        let out = rt.run_bundle(&bundle);
        assert!(!out.status.success(), "{}", out.describe());
        assert!(
            out.stderr_str().contains("invalid configuration"),
            "{}",
            out.describe()
        );
    }

    // A seccomp agent that is not listening.
    let bundle = Bundle::new(&rt).args(["sleep", "1000"]).set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": dir.join("no-agent.sock"),
            "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    let out = rt.run_bundle(&bundle);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str()
            .contains("failed to connect with seccomp agent"),
        "{}",
        out.describe()
    );
    assert!(rt.list_ids().is_empty(), "a container was left behind");

    // exec into a paused container.
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    rt.run_ok(["pause", c.id()]);
    let out = rt.run(["exec", c.id(), "sh", "-c", "exit 0"]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str()
            .contains("cannot exec in a paused container"),
        "{}",
        out.describe()
    );
    rt.run_ok(["resume", c.id()]);
}

#[test]
fn a_failed_create_spares_processes_of_a_cgroup_it_did_not_create() {
    let rt = runtime();
    let dir = TempDir::new("husk-test-parity");
    let mut foreign = ForeignCgroup::new();
    // Fails once the init runs in the cgroup: no seccomp agent listens.
    let bundle = Bundle::new(&rt)
        .args(["sleep", "1000"])
        .set("/linux/cgroupsPath", json!(foreign.path))
        .set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": dir.join("no-agent.sock"),
                "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            }),
        );
    let out = rt.run_bundle(&bundle);
    assert!(!out.status.success(), "{}", out.describe());
    foreign.assert_untouched("a failed create");
}

/// The directories `create` makes must be in the saved state before the init is spawned: a
/// `create` killed then leaves them for `delete --force` to remove (delete removes only what the
/// state says husk created). strace holds `create` in its first clone after the cgroup exists.
#[test]
fn delete_force_after_create_killed_before_the_init_runs_removes_the_cgroup() {
    let rt = runtime();
    if rt.is_runc() {
        // runc saves no state before its init runs (see crash::runtime_killed_during_*).
        return;
    }
    if std::process::Command::new("strace")
        .arg("-V")
        .stdout(std::process::Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("skipped: strace is not installed");
        return;
    }
    let id = husk_testing::unique_id("killed");
    let path = format!("/{id}");
    let _tree = CgroupTree(id.clone());
    let bundle = Bundle::new(&rt)
        .args(["sleep", "1000"])
        .set("/linux/cgroupsPath", json!(path));
    let guard = rt.guard(&id);
    let create = rt.cmd(["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    let mut strace = std::process::Command::new("strace");
    strace
        .args(["-f", "-qq", "-o", "/dev/null"])
        .args(["-e", "trace=clone,clone3,vfork,fork"])
        .args(["-e", "inject=clone,clone3,vfork,fork:delay_enter=30000000"])
        .arg(create.get_program())
        .args(create.get_args())
        .stdin(std::process::Stdio::null());
    let traced = husk_testing::Spawned::start(&mut strace);
    let husk = || -> Option<i32> {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", traced.pid())).ok()?;
        children.split_whitespace().next()?.parse().ok()
    };
    // Held at the entry of a clone (x86_64: fork 57, vfork 58, clone 56, clone3 435).
    let in_clone = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/syscall")).is_ok_and(|s| {
            matches!(
                s.split_whitespace().next(),
                Some("56" | "57" | "58" | "435")
            )
        })
    };
    assert!(
        wait_for(|| husk().is_some_and(in_clone), WAIT),
        "create did not reach its first clone"
    );
    let husk = husk().unwrap();
    let pids_dir = cgroups::hierarchy_root("pids").join(&id);
    assert!(pids_dir.is_dir(), "the first clone came before the cgroup");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(husk), nix::sys::signal::SIGKILL).unwrap();
    traced.signal(libc::SIGKILL); // strace would sit out the injected delay
    let _ = traced.wait_or_kill(WAIT);
    assert!(
        !husk_testing::existing_cgroups(&path).is_empty(),
        "nothing left to clean up: the test did not catch create in time"
    );
    rt.run_ok(["delete", "--force", &id]);
    assert!(
        husk_testing::existing_cgroups(&path).is_empty(),
        "delete --force left {:?}",
        husk_testing::existing_cgroups(&path)
    );
    drop(guard);
}

/// `kill` of a container that does not exist says so, whatever the signal: runc looks the container up before it
/// parses the signal, and callers match on "does not exist" (found by the differential tester: husk said
/// `unknown signal "BOGUS"`).
#[test]
fn kill_of_a_missing_container_says_it_does_not_exist_before_judging_the_signal() {
    let rt = runtime();
    let id = husk_testing::unique_id("nosuch");
    for signal in ["BOGUS", "KILL"] {
        let out = rt.run_fail(["kill", &id, signal]);
        assert!(
            out.stderr_str().contains("does not exist"),
            "kill {signal}: {}",
            out.describe()
        );
    }
    // An existing container with an unknown signal is refused, and keeps running.
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    let out = rt.run_fail(["kill", c.id(), "BOGUS"]);
    assert!(
        !out.stderr_str().contains("does not exist"),
        "{}",
        out.describe()
    );
    assert_eq!(c.status(), "running");
}

/// A flag given in its short and its long spelling in one command line (`exec -e A=1 --env B=2`) is refused, as
/// runc refuses it, before anything runs; one spelling used twice is fine (found by the differential tester: husk
/// ran the process with both variables).
#[test]
fn short_and_long_spelling_of_one_flag_are_refused_together() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = running(&rt, &bundle);
    for args in [
        vec![
            "exec",
            "-e",
            "A=1",
            "--env",
            "B=2",
            c.id(),
            "sh",
            "-c",
            "echo ran > /shared/ran",
        ],
        vec![
            "exec",
            "--env=A=1",
            "-e",
            "B=2",
            c.id(),
            "sh",
            "-c",
            "echo ran > /shared/ran",
        ],
    ] {
        let out = rt.run(&args);
        assert!(!out.status.success(), "{args:?}: {}", out.describe());
        assert!(
            out.stderr_str()
                .to_lowercase()
                .contains("two forms of the same flag"),
            "{args:?}: {}",
            out.describe()
        );
    }
    assert_eq!(bundle.read_shared("ran"), None, "a refused exec ran");
    let out = rt.run_ok([
        "exec",
        "-e",
        "A=1",
        "-e",
        "B=2",
        c.id(),
        "sh",
        "-c",
        "echo $A$B",
    ]);
    assert_eq!(out.stdout_str(), "12\n");
    // An operand that looks like a flag belongs to the process, not to exec.
    let out = rt.run_ok(["exec", "-e", "A=1", c.id(), "sh", "-c", "echo $A", "--env"]);
    assert_eq!(out.stdout_str(), "1\n");
}

/// `exec` without `--process`: a variable the container's env lists twice (or that `--env` sets again) is passed
/// once, with its last value, as runc's exec does (found by the differential tester: husk passed `DUP=1 DUP=2`).
/// The process's environ is read by the exec'd `cat` itself (a shell would fold the duplicates).
#[test]
fn exec_passes_a_variable_listed_twice_once_with_its_last_value() {
    let rt = runtime();
    let bundle = sleeper(&rt).add_env("DUP=1").add_env("DUP=2");
    let c = running(&rt, &bundle);
    let dups = |extra: &[&str]| {
        let mut args = vec!["exec"];
        args.extend(extra);
        args.extend([c.id(), "cat", "/proc/self/environ"]);
        let out = rt.run_ok(&args);
        out.stdout_str()
            .split('\0')
            .filter(|kv| kv.starts_with("DUP="))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(dups(&[]), ["DUP=2"]);
    assert_eq!(dups(&["--env", "DUP=3"]), ["DUP=3"]);
}

/// `exec -u uid` without a gid keeps the container's gid, `--additional-gids` adds to the container's groups, and a
/// process.json without `oomScoreAdj` gets the container's, as in runc (found by the differential tester: husk gave
/// gid 0, only the given groups and oom_score_adj 0).
#[test]
fn exec_keeps_the_containers_gid_and_oom_score_adj() {
    let rt = runtime();
    let bundle = sleeper(&rt).user(123, 456, &[1001]).oom_score_adj(500);
    let c = running(&rt, &bundle);
    let out = rt.run_ok([
        "exec",
        "-u",
        "65534",
        c.id(),
        "sh",
        "-c",
        "echo $(id -u):$(id -g)",
    ]);
    assert_eq!(out.stdout_str().trim(), "65534:456", "{}", out.describe());
    // --additional-gids adds to the container's groups.
    let out = rt.run_ok([
        "exec",
        "--additional-gids",
        "1002",
        c.id(),
        "grep",
        "^Groups:",
        "/proc/self/status",
    ]);
    let status = out.stdout_str();
    let groups: Vec<&str> = status.split_whitespace().skip(1).collect();
    assert_eq!(groups, ["1001", "1002"], "{}", out.describe());
    let dir = TempDir::new("husk-test-parity");
    let process = dir.join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["/bin/cat", "/proc/self/oom_score_adj"], "cwd": "/", "user": {"uid": 0, "gid": 0}})
            .to_string(),
    )
    .unwrap();
    let out = rt.run_ok(["exec", "--process", process.to_str().unwrap(), c.id()]);
    assert_eq!(out.stdout_str().trim(), "500", "{}", out.describe());
}

/// `kill` of a created container with SIGTERM (or SIGHUP, SIGINT, SIGQUIT) stops it, as runc's Go init exits on
/// them; husk's init, the pid namespace's init without a handler, ignored the signal and the container stayed
/// created (found by the differential tester after a failed start).
#[test]
fn terminating_signals_stop_a_created_container() {
    let rt = runtime();
    for signal in ["TERM", "HUP", "INT", "QUIT"] {
        let bundle = sleeper(&rt);
        let c = rt.create(&bundle);
        rt.run_ok(["kill", c.id(), signal]);
        assert!(
            c.wait_status("stopped", WAIT),
            "{signal}: still {}",
            c.status()
        );
    }
    // A signal that ends neither runtime's init leaves the container created: start then runs it.
    let bundle = sleeper(&rt);
    let c = rt.create(&bundle);
    rt.run_ok(["kill", c.id(), "USR1"]);
    c.start();
    assert!(
        wait_for(|| bundle.read_shared("ready").is_some(), WAIT),
        "the container did not run after SIGUSR1"
    );
}

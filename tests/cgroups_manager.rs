//! Real-kernel tests of the cgroup manager. They need root; each checks v1 files on a v1 or
//! hybrid host (the development machine) and v2 files on a pure v2 host (the VM lane).

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use husk::cgroups::{CgroupError, CgroupManager, CgroupMode, SavedCgroup};
use husk_testing::cgroups::{hierarchy_root, read_keyed};
use oci_spec::runtime::LinuxResources;

const MIB: i64 = 1 << 20;

/// The host's cgroup mode; panics unless running as root.
fn require_root() -> CgroupMode {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create real cgroups and must run as root"
    );
    husk::cgroups::detect_mode().expect("detect cgroup mode")
}

/// True on a pure cgroup v2 host.
fn v2() -> bool {
    require_root() == CgroupMode::Unified
}

/// cgroup v2's `cpu.weight` for v1 `cpu.shares`, as runc converts (and documents) it.
fn weight_of_shares(shares: u64) -> u64 {
    1 + ((shares - 2) * 9999) / 262142
}

fn unique(name: &str) -> String {
    format!("husk-test-{}-{name}", std::process::id())
}

fn resources(json: serde_json::Value) -> LinuxResources {
    serde_json::from_value(json).expect("valid linux.resources")
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// Kills the test's children and destroys its cgroups when the test ends, passed or not.
struct Guard {
    manager: CgroupManager,
    children: Vec<Child>,
    extra_dirs: Vec<PathBuf>,
}

impl Guard {
    fn new(manager: CgroupManager) -> Self {
        Guard {
            manager,
            children: Vec::new(),
            extra_dirs: Vec::new(),
        }
    }

    fn spawn(&mut self, program: &str, args: &[&str]) -> i32 {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let pid = child.id() as i32;
        self.children.push(child);
        pid
    }

    fn spawn_sleep(&mut self) -> i32 {
        self.spawn("sleep", &["100"])
    }

    fn spawn_busy(&mut self) -> i32 {
        self.spawn("sh", &["-c", "while :; do :; done"])
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Err(e) = self.manager.thaw() {
            eprintln!("cleanup: thaw: {e}");
        }
        if let Err(e) = self.manager.destroy() {
            eprintln!("cleanup: destroy: {e}");
        }
        for dir in self.extra_dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn hierarchy_dir(manager: &CgroupManager, controller: &str) -> PathBuf {
    manager
        .dir_for(controller)
        .unwrap_or_else(|| panic!("no {controller} hierarchy on this host"))
        .to_path_buf()
}

/// Every directory the manager uses, plus every parent it created.
fn all_dirs(manager: &CgroupManager) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for h in manager.hierarchies().iter().filter(|h| !h.skipped) {
        dirs.push(h.dir.clone());
        dirs.extend(h.created.iter().cloned());
    }
    dirs
}

/// `/proc/<pid>/cgroup` must put the process in the manager's cgroup in every hierarchy.
fn assert_member(manager: &CgroupManager, pid: i32) {
    let content = read(format!("/proc/{pid}/cgroup"));
    let entries = husk::cgroups::parse_proc_cgroup(&content);
    for h in manager.hierarchies().iter().filter(|h| !h.skipped) {
        let entry = entries
            .iter()
            .find(|e| {
                if h.unified {
                    e.hierarchy_id == 0
                } else {
                    e.controllers == h.controllers
                }
            })
            .unwrap_or_else(|| panic!("no line for {:?} in {content}", h.controllers));
        assert_eq!(entry.path, h.path, "pid {pid} in {:?}", h.controllers);
    }
}

/// Sum of user and system ticks of a process, from /proc/<pid>/stat.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = read(format!("/proc/{pid}/stat"));
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn create_applies_resources_and_adds_process() {
    require_root();
    let base = format!("/{}", unique("limits"));
    let manager = CgroupManager::new(Some(Path::new(&format!("{base}/c"))), "ignored").unwrap();
    let mut guard = Guard::new(manager.clone());
    let v2 = v2();
    let mut res = serde_json::json!({
        "memory": {"limit": 64 * MIB, "swap": 128 * MIB, "reservation": 32 * MIB},
        "pids": {"limit": 32},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
    });
    if !v2 {
        // cgroup v2 has no per-cgroup swappiness (a test below checks it is refused there).
        res["memory"]["swappiness"] = serde_json::json!(10);
    }
    manager.create(Some(&resources(res))).unwrap();
    assert_eq!(manager.path(), Path::new(&format!("{base}/c")));

    let memory = hierarchy_dir(&manager, "memory");
    assert_eq!(memory, hierarchy_root("memory").join(&base[1..]).join("c"));
    let cpu = hierarchy_dir(&manager, "cpu");
    if v2 {
        assert_eq!(read(memory.join("memory.max")), (64 * MIB).to_string());
        // v2 counts swap on its own: 128 MiB of memory plus swap is 64 MiB of swap.
        assert_eq!(read(memory.join("memory.swap.max")), (64 * MIB).to_string());
        assert_eq!(read(memory.join("memory.low")), (32 * MIB).to_string());
        assert_eq!(
            read(cpu.join("cpu.weight")),
            weight_of_shares(512).to_string()
        );
        assert_eq!(read(cpu.join("cpu.max")), "50000 100000");
    } else {
        assert_eq!(
            read(memory.join("memory.limit_in_bytes")),
            (64 * MIB).to_string()
        );
        assert_eq!(
            read(memory.join("memory.memsw.limit_in_bytes")),
            (128 * MIB).to_string()
        );
        assert_eq!(
            read(memory.join("memory.soft_limit_in_bytes")),
            (32 * MIB).to_string()
        );
        assert_eq!(read(memory.join("memory.swappiness")), "10");
        assert_eq!(read(cpu.join("cpu.shares")), "512");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
    }
    assert_eq!(read(hierarchy_dir(&manager, "pids").join("pids.max")), "32");
    let cpuset = hierarchy_dir(&manager, "cpuset");
    assert_eq!(read(cpuset.join("cpuset.cpus")), "0");
    assert_eq!(read(cpuset.join("cpuset.mems")), "0");

    // Both the parent and the leaf were made here, in every hierarchy.
    for h in manager.hierarchies().iter().filter(|h| !h.skipped) {
        assert_eq!(h.created.len(), 2, "{:?}: {:?}", h.controllers, h.created);
        assert_eq!(h.created.last(), Some(&h.dir));
    }

    let pid = guard.spawn_sleep();
    manager.add_process(pid).unwrap();
    assert_member(&manager, pid);
    assert_eq!(manager.pids().unwrap(), vec![pid]);
    assert_eq!(read(cpuset.join("cgroup.procs")), pid.to_string());

    // Hybrid host with a writable cgroup2 hierarchy: the 0:: line follows too.
    if manager.mode() == CgroupMode::Hybrid {
        let unified = manager
            .hierarchies()
            .into_iter()
            .find(|h| h.unified)
            .unwrap();
        assert!(
            !unified.skipped,
            "the cgroup2 hierarchy is writable as root"
        );
        assert!(read(format!("/proc/{pid}/cgroup")).contains(&format!("0::{base}/c")));
    }

    // destroy removes every directory, the created parents included.
    let dirs = all_dirs(&manager);
    let child = guard.children.pop().unwrap();
    child_killed(child);
    manager.destroy().unwrap();
    for dir in dirs {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
}

fn child_killed(mut child: Child) -> std::process::ExitStatus {
    child.kill().unwrap();
    child.wait().unwrap()
}

#[test]
fn default_path_is_container_id_below_own_cgroup() {
    require_root();
    let id = unique("default");
    let manager = CgroupManager::new(None, &id).unwrap();
    let _guard = Guard::new(manager.clone());
    manager.create(None).unwrap();
    let own = husk::cgroups::parse_proc_cgroup(&read("/proc/self/cgroup"));
    for h in manager.hierarchies().iter().filter(|h| !h.skipped) {
        let mine = own
            .iter()
            .find(|e| {
                if h.unified {
                    e.hierarchy_id == 0
                } else {
                    e.controllers == h.controllers
                }
            })
            .unwrap();
        // On v2 a relative path starts from the parent of the own cgroup (which holds
        // processes, so its children could not get controllers), as runc does.
        let base = if manager.mode() == CgroupMode::Unified {
            mine.path.parent().unwrap_or(&mine.path)
        } else {
            &mine.path
        };
        assert_eq!(h.path, base.join(&id), "{:?}", h.controllers);
        assert!(h.dir.is_dir(), "{}", h.dir.display());
    }
}

#[test]
fn freeze_stops_and_thaw_resumes_processes() {
    require_root();
    let manager =
        CgroupManager::new(Some(Path::new(&format!("/{}", unique("freeze")))), "x").unwrap();
    let mut guard = Guard::new(manager.clone());
    manager.create(None).unwrap();
    let busy = guard.spawn_busy();
    let sleeper = guard.spawn_sleep();
    manager.add_process(busy).unwrap();
    manager.add_process(sleeper).unwrap();
    assert!(!manager.is_frozen().unwrap());

    manager.freeze().unwrap();
    assert!(manager.is_frozen().unwrap());
    let freezer = hierarchy_dir(&manager, "freezer");
    assert_kernel_frozen(&freezer, true);
    let before = cpu_ticks(busy);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(busy), before, "a frozen busy loop must not run");

    manager.thaw().unwrap();
    assert!(!manager.is_frozen().unwrap());
    assert_kernel_frozen(&freezer, false);
    thread::sleep(Duration::from_millis(300));
    assert!(cpu_ticks(busy) > before, "a thawed busy loop runs again");
}

/// The kernel's view of a freezer cgroup: v1 `freezer.state`, v2 `cgroup.freeze` and the
/// `frozen` key of `cgroup.events` (set once every process is frozen).
fn assert_kernel_frozen(dir: &Path, frozen: bool) {
    if v2() {
        assert_eq!(
            read(dir.join("cgroup.freeze")),
            if frozen { "1" } else { "0" }
        );
        let events = read_keyed(&dir.join("cgroup.events"));
        assert_eq!(events["frozen"], u64::from(frozen), "{events:?}");
    } else {
        let state = if frozen { "FROZEN" } else { "THAWED" };
        assert_eq!(read(dir.join("freezer.state")), state);
    }
}

#[test]
fn stats_report_usage_of_busy_child() {
    require_root();
    let manager =
        CgroupManager::new(Some(Path::new(&format!("/{}", unique("stats")))), "x").unwrap();
    let mut guard = Guard::new(manager.clone());
    manager
        .create(Some(&resources(serde_json::json!({
            "memory": {"limit": 256 * MIB},
            "pids": {"limit": 10},
        }))))
        .unwrap();
    // Memory is charged where it is allocated, so the child allocates (4 MB in a shell
    // variable) only after it has been moved.
    let busy = guard.spawn(
        "sh",
        &[
            "-c",
            "sleep 0.2; x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done",
        ],
    );
    manager.add_process(busy).unwrap();
    // Until the 4 MB are allocated, the loop runs alone and has had 0.1 s of CPU (a loaded or
    // emulated machine takes its time).
    let busy_enough = husk_testing::wait_for(
        || {
            manager.stats().is_ok_and(|s| {
                s.cpu.is_some_and(|c| c.usage_total > 100_000_000)
                    && s.memory.is_some_and(|m| m.usage.usage > 4_000_000)
                    // head and tr gone: only the loop's shell left
                    && s.pids.is_some_and(|p| p.current == 1)
            })
        },
        Duration::from_secs(60),
    );
    let stats = manager.stats().unwrap();
    let cpu = stats.cpu.expect("cpu stats");
    assert!(
        busy_enough,
        "no 4 MB and 0.1 s of CPU: {cpu:?} {:?}",
        stats.memory
    );
    assert!(cpu.usage_user + cpu.usage_system > 0, "{cpu:?}");
    // cgroup v2 keeps no per-CPU usage.
    assert_eq!(cpu.usage_per_cpu.is_empty(), v2(), "{cpu:?}");
    let memory = stats.memory.expect("memory stats");
    assert_eq!(memory.usage.limit, (256 * MIB) as u64);
    assert!(memory.usage.usage > 4_000_000, "{:?}", memory.usage);
    assert!(memory.usage.max_usage >= memory.usage.usage);
    assert!(!memory.raw.is_empty());
    let pids = stats.pids.expect("pids stats");
    assert_eq!(pids.current, 1);
    assert_eq!(pids.limit, Some(10));
    assert!(stats.blkio.is_some());
}

#[test]
fn destroy_after_sigkill_removes_everything_and_is_idempotent() {
    require_root();
    let base = format!("/{}", unique("kill"));
    let manager = CgroupManager::new(Some(Path::new(&format!("{base}/a/b"))), "x").unwrap();
    let mut guard = Guard::new(manager.clone());
    manager.create(None).unwrap();
    let pid = guard.spawn_sleep();
    manager.add_process(pid).unwrap();
    // A sub-cgroup the container made for itself must go too.
    let memory = hierarchy_dir(&manager, "memory");
    std::fs::create_dir(memory.join("inner")).unwrap();
    let mut dirs = all_dirs(&manager);
    dirs.push(memory.join("inner"));

    // SIGKILL and do not reap: the member is a zombie while destroy runs.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    manager.destroy().unwrap();
    for dir in &dirs {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
    assert!(!hierarchy_root("pids").join(&base[1..]).exists());
    // Again, and from a saved copy: nothing left to do, no error.
    manager.destroy().unwrap();
    CgroupManager::from_saved(&manager.saved())
        .destroy()
        .unwrap();
}

#[test]
fn saved_state_round_trips_and_destroys_created_parents() {
    require_root();
    let base = format!("/{}", unique("saved"));
    let manager = CgroupManager::new(Some(Path::new(&format!("{base}/c"))), "x").unwrap();
    let guard = Guard::new(manager.clone());
    manager.create(None).unwrap();
    let json = serde_json::to_string(&manager.saved()).unwrap();
    let saved: SavedCgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(saved, manager.saved());
    let restored = CgroupManager::from_saved(&saved);
    assert_eq!(restored.path(), manager.path());
    let dirs = all_dirs(&restored);
    assert!(dirs.iter().any(|d| d.ends_with(&base[1..])));
    restored.destroy().unwrap();
    for dir in dirs {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
    drop(guard);
}

#[test]
fn joining_existing_cgroup_keeps_it_and_its_parent() {
    require_root();
    let root = hierarchy_root("pids");
    let parent = root.join(unique("join"));
    let leaf = parent.join("c");
    std::fs::create_dir_all(&leaf).unwrap();
    let path = Path::new("/").join(leaf.strip_prefix(&root).unwrap());
    let manager = CgroupManager::new(Some(&path), "x").unwrap();
    let mut guard = Guard::new(manager.clone());
    guard.extra_dirs = vec![parent.clone(), leaf.clone()];
    manager.create(None).unwrap();
    let pids_hierarchy = manager
        .hierarchies()
        .into_iter()
        .find(|h| {
            if v2() {
                h.unified
            } else {
                h.controllers == ["pids"]
            }
        })
        .unwrap();
    assert!(pids_hierarchy.created.is_empty(), "joined, not created");
    let pid = guard.spawn_sleep();
    manager.add_process(pid).unwrap();
    assert_eq!(read(leaf.join("cgroup.procs")), pid.to_string());
    let child = guard.children.pop().unwrap();
    child_killed(child);

    manager.destroy().unwrap();
    // Only what husk created is removed (issue 16, bug 6); runc 1.1.5 removes an empty joined
    // cgroup too (tests/RUNC_DIFFERENCES.md).
    assert!(leaf.is_dir(), "a joined cgroup stays");
    assert!(parent.is_dir(), "a parent made by someone else stays");
}

#[test]
fn update_changes_limits_in_place() {
    require_root();
    let manager =
        CgroupManager::new(Some(Path::new(&format!("/{}", unique("update")))), "x").unwrap();
    let _guard = Guard::new(manager.clone());
    manager
        .create(Some(&resources(serde_json::json!({
            "memory": {"limit": 64 * MIB, "swap": 64 * MIB},
            "pids": {"limit": 5},
        }))))
        .unwrap();
    // Growing both needs memsw written first, shrinking needs memory first: both must work.
    manager
        .update(&resources(serde_json::json!({
            "memory": {"limit": 256 * MIB, "swap": 512 * MIB},
            "pids": {"limit": -1},
            "cpu": {"quota": -1, "shares": 2048},
        })))
        .unwrap();
    let memory = hierarchy_dir(&manager, "memory");
    let cpu = hierarchy_dir(&manager, "cpu");
    let v2 = v2();
    // (memory limit, memory plus swap limit) as the host's files show them.
    let memory_limits = || {
        if v2 {
            let limit = read(memory.join("memory.max"));
            let swap = read(memory.join("memory.swap.max"));
            let sum = match (limit.parse::<i64>(), swap.parse::<i64>()) {
                (Ok(l), Ok(s)) => (l + s).to_string(),
                _ => "max".to_owned(),
            };
            (limit, sum)
        } else {
            let unlimited = |v: String| {
                if v.parse::<u64>().unwrap() > 1 << 60 {
                    "max".to_owned()
                } else {
                    v
                }
            };
            (
                unlimited(read(memory.join("memory.limit_in_bytes"))),
                unlimited(read(memory.join("memory.memsw.limit_in_bytes"))),
            )
        }
    };
    assert_eq!(
        memory_limits(),
        ((256 * MIB).to_string(), (512 * MIB).to_string())
    );
    assert_eq!(
        read(hierarchy_dir(&manager, "pids").join("pids.max")),
        "max"
    );
    if v2 {
        assert_eq!(read(cpu.join("cpu.max")), "max 100000");
        assert_eq!(
            read(cpu.join("cpu.weight")),
            weight_of_shares(2048).to_string()
        );
    } else {
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "-1");
        assert_eq!(read(cpu.join("cpu.shares")), "2048");
    }
    manager
        .update(&resources(serde_json::json!({
            "memory": {"limit": 32 * MIB, "swap": 48 * MIB},
        })))
        .unwrap();
    assert_eq!(
        memory_limits(),
        ((32 * MIB).to_string(), (48 * MIB).to_string())
    );
    // Unlimited memory with no swap given lifts the swap limit too.
    manager
        .update(&resources(serde_json::json!({"memory": {"limit": -1}})))
        .unwrap();
    assert_eq!(memory_limits(), ("max".to_owned(), "max".to_owned()));
}

/// Runs `sh -c script` in the manager's cgroup (moved there before the script goes on) and
/// returns its output lines.
fn lines_from_inside(manager: &CgroupManager, guard: &mut Guard, script: &str) -> Vec<String> {
    use std::io::{Read, Write};
    let mut child = Command::new("sh")
        .args(["-c", &format!("read _; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let pid = child.id() as i32;
    guard.children.push(child);
    manager.add_process(pid).unwrap();
    assert_member(manager, pid);
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let mut output = String::new();
    stdout.read_to_string(&mut output).unwrap();
    output.lines().map(str::to_owned).collect()
}

#[test]
fn device_rules_are_applied_in_order() {
    require_root();
    let manager =
        CgroupManager::new(Some(Path::new(&format!("/{}", unique("devices")))), "x").unwrap();
    let mut guard = Guard::new(manager.clone());
    if !v2() {
        manager
            .create(Some(&resources(serde_json::json!({
                "devices": [
                    {"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 5, "access": "r"},
                    {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "rw"},
                    {"allow": false, "type": "b", "major": 7, "minor": 0, "access": "w"},
                ]
            }))))
            .unwrap();
        let list = read(hierarchy_dir(&manager, "devices").join("devices.list"));
        let mut lines: Vec<&str> = list.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["b 7:0 r", "c 1:3 rwm", "c 5:* r"]);
        return;
    }
    // cgroup v2 has no list to read back: the eBPF filter is checked by what a process in the
    // cgroup can open. 1:3 null, 1:5 zero, 1:7 full, 1:9 urandom.
    manager
        .create(Some(&resources(serde_json::json!({
            "devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "access": "r"},
                {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rw"},
                {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "w"},
            ]
        }))))
        .unwrap();
    let lines = lines_from_inside(
        &manager,
        &mut guard,
        "echo >/dev/null && echo null-write; \
         head -c1 /dev/zero >/dev/null && echo zero-read; \
         echo >/dev/zero && echo zero-write; \
         head -c1 /dev/urandom >/dev/null && echo urandom-read; \
         (exec 3>/dev/urandom) && echo urandom-write; \
         (exec 3</dev/full) && echo full-read; \
         echo done",
    );
    assert_eq!(
        lines,
        [
            "null-write",
            "zero-read",
            "urandom-read",
            "full-read",
            "done"
        ]
    );
}
#[test]
fn values_the_host_cannot_apply_are_errors_naming_the_field() {
    require_root();
    let manager =
        CgroupManager::new(Some(Path::new(&format!("/{}", unique("errors")))), "x").unwrap();
    let _guard = Guard::new(manager.clone());
    manager.create(None).unwrap();
    if v2() {
        return values_v2_cannot_apply(&manager);
    }
    let fails = |json: serde_json::Value, field: &str| -> CgroupError {
        let err = manager
            .update(&resources(json.clone()))
            .expect_err(&format!("{json} must fail"));
        assert!(
            err.to_string().contains(field),
            "{field} not named in: {err}"
        );
        err
    };
    // This kernel accepts a kernel memory limit but ignores it.
    fails(
        serde_json::json!({"memory": {"kernel": 64 * MIB}}),
        "linux.resources.memory.kernel",
    );
    let err = fails(
        serde_json::json!({"memory": {"useHierarchy": false}}),
        "linux.resources.memory.useHierarchy",
    );
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    fails(
        serde_json::json!({"memory": {"swappiness": 101}}),
        "linux.resources.memory.swappiness",
    );
    fails(
        serde_json::json!({"cpu": {"shares": 1}}),
        "linux.resources.cpu.shares",
    );
    fails(
        serde_json::json!({"unified": {"memory.high": "1G"}}),
        "linux.resources.unified",
    );
    fails(
        serde_json::json!({"blockIO": {"leafWeight": 100}}),
        "linux.resources.blockIO.leafWeight",
    );
    for (json, field) in [
        (serde_json::json!({"network": {"classID": 1}}), "net_cls"),
        (
            serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}),
            "hugetlb",
        ),
    ] {
        // Not mounted as v1 hierarchies on this host; elsewhere they would simply apply.
        let mounted = manager.dir_for(field).is_some();
        let result = manager.update(&resources(json));
        if mounted {
            result.unwrap();
        } else {
            let err = result.unwrap_err();
            assert!(
                matches!(err, CgroupError::ControllerMissing { ref controller, .. } if controller == field),
                "{err}"
            );
        }
    }
}

/// The v2 half of `values_the_host_cannot_apply_are_errors_naming_the_field`: v1-only
/// settings are refused naming the field, and what v2 has (`unified`) applies.
fn values_v2_cannot_apply(manager: &CgroupManager) {
    for (json, field) in [
        (
            serde_json::json!({"memory": {"kernel": 64 * MIB}}),
            "linux.resources.memory.kernel",
        ),
        (
            serde_json::json!({"memory": {"kernelTCP": 64 * MIB}}),
            "linux.resources.memory.kernelTCP",
        ),
        (
            serde_json::json!({"memory": {"swappiness": 10}}),
            "linux.resources.memory.swappiness",
        ),
        (
            serde_json::json!({"memory": {"useHierarchy": false}}),
            "linux.resources.memory.useHierarchy",
        ),
        (
            serde_json::json!({"memory": {"disableOOMKiller": true}}),
            "linux.resources.memory.disableOOMKiller",
        ),
        (
            serde_json::json!({"memory": {"limit": 64 * MIB, "swap": 32 * MIB}}),
            "linux.resources.memory.swap",
        ),
        (
            serde_json::json!({"blockIO": {"leafWeight": 100}}),
            "linux.resources.blockIO.leafWeight",
        ),
        (
            serde_json::json!({"network": {"classID": 1}}),
            "linux.resources.network",
        ),
        (
            serde_json::json!({"unified": {"../memory.high": "1G"}}),
            "linux.resources.unified",
        ),
    ] {
        let err = manager
            .update(&resources(json.clone()))
            .expect_err(&format!("{json} must fail"));
        assert!(
            err.to_string().contains(field),
            "{field} not named in: {err}"
        );
    }
    let dir = hierarchy_dir(manager, "memory");
    assert_eq!(
        read(dir.join("memory.max")),
        "max",
        "changed by a refused update"
    );
    manager
        .update(&resources(
            serde_json::json!({"unified": {"memory.high": "1073741824"}}),
        ))
        .unwrap();
    assert_eq!(read(dir.join("memory.high")), "1073741824");
}

#[test]
fn v2_device_filter_restricts_device_access() {
    let mode = require_root();
    assert_ne!(
        mode,
        CgroupMode::Legacy,
        "the eBPF filter needs a cgroup2 hierarchy (v2, or hybrid's)"
    );
    let manager = CgroupManager::new(Some(Path::new(&format!("/{}", unique("bpf")))), "x").unwrap();
    let mut guard = Guard::new(manager.clone());
    manager.create(None).unwrap();
    let dir = manager
        .unified_dir()
        .expect("cgroup2 hierarchy")
        .to_path_buf();
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_value(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rw"},
            {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "w"},
        ]))
        .unwrap();
    husk::cgroups::attach_v2_device_filter(&dir, &rules).unwrap();
    let lines = lines_from_inside(
        &manager,
        &mut guard,
        "head -c1 /dev/zero >/dev/null && echo zero-read; \
         echo >/dev/zero && echo zero-write; \
         echo >/dev/null && echo null-write; \
         head -c1 /dev/urandom >/dev/null && echo urandom-read; \
         echo done",
    );
    assert_eq!(lines, ["zero-read", "null-write", "done"]);
}

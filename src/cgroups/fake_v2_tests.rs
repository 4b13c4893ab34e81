//! cgroup v2 code paths over a fake cgroupfs: a temp directory holding the files a v2 cgroup
//! with the usual controllers enabled would have. The development host is v1 hybrid, so these
//! are what checks the v2 writes, reads, freezer and OOM watch. The kernel's own behaviour
//! (conversions it refuses, values it clamps) is not imitated: only what husk writes and how it
//! reads what the kernel would write.

// The fake cgroupfs is a temp dir of the test's own; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use husk_testing::TempDir;
use oci_spec::runtime::LinuxResources;
use serde_json::json;

use super::{CgroupError, CgroupManager, CgroupMode, OomWakeup, SavedCgroup, SavedHierarchy};

/// Files of a v2 cgroup with cpu, cpuset, io, memory, pids and hugetlb enabled; every file is
/// empty unless given content (husk's writes never truncate, so each test starts clean).
const V2_FILES: &[(&str, &str)] = &[
    ("cgroup.procs", ""),
    ("cgroup.events", "populated 1\nfrozen 0\n"),
    ("cgroup.freeze", ""),
    ("cpu.weight", ""),
    ("cpu.max", "max 100000"),
    ("cpu.max.burst", ""),
    ("cpu.idle", ""),
    ("cpu.stat", ""),
    ("cpuset.cpus", ""),
    ("cpuset.mems", ""),
    ("cpuset.cpus.effective", "0-3\n"),
    ("cpuset.mems.effective", "0\n"),
    ("io.weight", ""),
    ("io.max", ""),
    ("io.stat", ""),
    ("memory.max", ""),
    ("memory.low", ""),
    ("memory.swap.max", ""),
    ("memory.current", "0\n"),
    ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
    ("memory.stat", "anon 0\nfile 0\n"),
    ("pids.max", ""),
    ("pids.current", "0\n"),
    ("hugetlb.2MB.max", ""),
    ("hugetlb.2MB.current", "0\n"),
    ("hugetlb.2MB.events", "max 0\n"),
];

struct FakeCgroup {
    _root: TempDir,
    dir: PathBuf,
    manager: CgroupManager,
}

impl FakeCgroup {
    /// A fake `<root>/ctr` cgroup, managed as v2; `skip` names files to leave out (a controller
    /// that is not enabled).
    fn new(skip: &[&str]) -> FakeCgroup {
        let root = TempDir::new("husk-fake-cgroup2");
        let dir = root.join("ctr");
        std::fs::create_dir(&dir).unwrap();
        for (file, content) in V2_FILES.iter().filter(|(f, _)| !skip.contains(f)) {
            std::fs::write(dir.join(file), content).unwrap();
        }
        let manager = CgroupManager::from_saved(&SavedCgroup {
            mode: CgroupMode::Unified,
            path: PathBuf::from("/ctr"),
            hierarchies: vec![SavedHierarchy {
                controllers: Vec::new(),
                unified: true,
                mount_point: root.path().to_path_buf(),
                path: PathBuf::from("/ctr"),
                dir: dir.clone(),
                created: Vec::new(),
                skipped: false,
            }],
            systemd: None,
        });
        FakeCgroup {
            _root: root,
            dir,
            manager,
        }
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn write(&self, file: &str, content: &str) {
        std::fs::write(self.dir.join(file), content).unwrap();
    }

    fn update(&self, resources: serde_json::Value) -> Result<(), CgroupError> {
        let resources: LinuxResources = serde_json::from_value(resources).unwrap();
        self.manager.update(&resources)
    }
}

#[test]
fn memory_limits_are_converted() {
    let cg = FakeCgroup::new(&[]);
    cg.update(json!({"memory": {"limit": 100 << 20, "swap": 150 << 20, "reservation": 50 << 20}}))
        .unwrap();
    assert_eq!(cg.read("memory.max"), (100u64 << 20).to_string());
    // v2 swap is swap alone: memory+swap minus memory.
    assert_eq!(cg.read("memory.swap.max"), (50u64 << 20).to_string());
    assert_eq!(cg.read("memory.low"), (50u64 << 20).to_string());
}

#[test]
fn unlimited_memory_is_max() {
    let cg = FakeCgroup::new(&[]);
    cg.update(json!({"memory": {"limit": -1}})).unwrap();
    assert_eq!(cg.read("memory.max"), "max");
    assert_eq!(cg.read("memory.swap.max"), "max");
}

#[test]
fn v1_only_memory_fields_are_refused() {
    let cg = FakeCgroup::new(&[]);
    for memory in [
        json!({"kernel": 1 << 20}),
        json!({"kernelTCP": 1 << 20}),
        json!({"swappiness": 10}),
        json!({"disableOOMKiller": true}),
    ] {
        let err = cg.update(json!({ "memory": memory })).unwrap_err();
        assert!(
            matches!(err, CgroupError::Unsupported(_)),
            "{memory}: {err}"
        );
    }
    assert_eq!(cg.read("memory.max"), "", "nothing written");
}

#[test]
fn check_before_update_compares_with_usage() {
    let cg = FakeCgroup::new(&[]);
    cg.write("memory.current", "5000000\n");
    let err = cg
        .update(json!({"memory": {"limit": 1000000, "checkBeforeUpdate": true}}))
        .unwrap_err();
    assert!(matches!(err, CgroupError::InvalidValue { .. }), "{err}");
    assert_eq!(cg.read("memory.max"), "");
}

#[test]
fn cpu_values_are_converted() {
    let cg = FakeCgroup::new(&[]);
    cg.update(json!({"cpu": {
        "shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0",
        "burst": 1000, "idle": 1
    }}))
    .unwrap();
    // 1 + (1024 - 2) * 9999 / 262142
    assert_eq!(cg.read("cpu.weight"), "39");
    assert_eq!(cg.read("cpu.max"), "50000 100000");
    assert_eq!(cg.read("cpu.max.burst"), "1000");
    assert_eq!(cg.read("cpu.idle"), "1");
    assert_eq!(cg.read("cpuset.cpus"), "0-1");
    assert_eq!(cg.read("cpuset.mems"), "0");
}

#[test]
fn cpu_period_alone_keeps_the_quota() {
    let cg = FakeCgroup::new(&[]);
    cg.write("cpu.max", "25000 100000");
    cg.update(json!({"cpu": {"period": 200000}})).unwrap();
    assert_eq!(cg.read("cpu.max"), "25000 200000");
}

#[test]
fn realtime_cpu_is_refused() {
    let cg = FakeCgroup::new(&[]);
    let err = cg
        .update(json!({"cpu": {"realtimeRuntime": 1000}}))
        .unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported(_)), "{err}");
}

#[test]
fn pids_limit_and_unlimited() {
    let cg = FakeCgroup::new(&[]);
    cg.update(json!({"pids": {"limit": 42}})).unwrap();
    assert_eq!(cg.read("pids.max"), "42");
    cg.update(json!({"pids": {"limit": -1}})).unwrap();
    assert_eq!(cg.read("pids.max"), "max");
}

#[test]
fn missing_controller_names_the_field() {
    let cg = FakeCgroup::new(&["pids.max", "memory.max", "cpu.weight"]);
    for (resources, field) in [
        (json!({"pids": {"limit": 5}}), "pids"),
        (json!({"memory": {"limit": 1 << 20}}), "memory"),
        (json!({"cpu": {"shares": 512}}), "cpu.shares"),
    ] {
        match cg.update(resources) {
            Err(CgroupError::ControllerMissing {
                field: f,
                controller,
            }) => assert!(f.contains(field), "{f} / {controller}"),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn block_io_weight_and_throttles() {
    let cg = FakeCgroup::new(&[]);
    cg.update(json!({"blockIO": {
        "weight": 500,
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
    }}))
    .unwrap();
    // 1 + (500 - 10) * 9999 / 990
    assert_eq!(cg.read("io.weight"), "4950");
    assert_eq!(cg.read("io.max"), "8:0 rbps=1048576");
    let err = cg
        .update(json!({"blockIO": {"leafWeight": 300}}))
        .unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported(_)), "{err}");
}

#[test]
fn bfq_weight_is_taken_unconverted() {
    let cg = FakeCgroup::new(&[]);
    cg.write("io.bfq.weight", "");
    cg.update(json!({"blockIO": {"weight": 500}})).unwrap();
    assert_eq!(cg.read("io.bfq.weight"), "500");
    assert_eq!(cg.read("io.weight"), "");
}

#[test]
fn hugetlb_limit() {
    let cg = FakeCgroup::new(&[]);
    cg.update(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}))
        .unwrap();
    assert_eq!(cg.read("hugetlb.2MB.max"), "4194304");
    let err = cg
        .update(json!({"hugepageLimits": [{"pageSize": "1GB", "limit": 1}]}))
        .unwrap_err();
    assert!(
        matches!(err, CgroupError::ControllerMissing { .. }),
        "{err}"
    );
}

#[test]
fn unified_keys_are_written_and_checked() {
    let cg = FakeCgroup::new(&[]);
    cg.update(json!({"unified": {"memory.low": "1234"}}))
        .unwrap();
    assert_eq!(cg.read("memory.low"), "1234");
    for key in ["../escape", "noperiod", "memory.nonexistent"] {
        let err = cg.update(json!({"unified": {key: "1"}})).unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::InvalidValue { .. } | CgroupError::ControllerMissing { .. }
            ),
            "{key}: {err}"
        );
    }
    assert!(!cg.dir.parent().unwrap().join("escape").exists());
}

#[test]
fn network_classes_are_refused() {
    let cg = FakeCgroup::new(&[]);
    let err = cg.update(json!({"network": {"classID": 1}})).unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported(_)), "{err}");
}

#[test]
fn stats_are_read_from_v2_files() {
    let cg = FakeCgroup::new(&[]);
    cg.write("memory.current", "1048576\n");
    cg.write("memory.max", "max\n");
    cg.write("memory.events", "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n");
    cg.write("memory.stat", "anon 900000\nfile 4096\n");
    cg.write("memory.swap.current", "8192\n");
    cg.write("memory.swap.max", "1048576\n");
    cg.write("memory.swap.events", "high 0\nmax 0\nfail 1\n");
    cg.write(
        "cpu.stat",
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 300\n",
    );
    cg.write("pids.current", "3\n");
    cg.write("pids.max", "max\n");
    cg.write(
        "io.stat",
        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
    );
    cg.write("hugetlb.2MB.current", "2097152\n");
    cg.write("hugetlb.2MB.events", "max 3\n");

    let stats = cg.manager.stats().unwrap();
    let memory = stats.memory.unwrap();
    assert_eq!(memory.usage.usage, 1048576);
    assert_eq!(memory.usage.limit, u64::MAX, "max reads as unlimited");
    assert_eq!(memory.usage.failcnt, 7);
    assert_eq!(memory.oom_kill_count, 2);
    assert_eq!(memory.cache, 4096);
    let swap = memory.swap.unwrap();
    assert_eq!((swap.usage, swap.limit, swap.failcnt), (8192, 1048576, 1));
    let cpu = stats.cpu.unwrap();
    assert_eq!(
        cpu.usage_total, 1_500_000,
        "microseconds become nanoseconds"
    );
    assert_eq!((cpu.usage_user, cpu.usage_system), (1_000_000, 500_000));
    assert_eq!((cpu.periods, cpu.throttled_periods), (10, 4));
    assert_eq!(cpu.throttled_time, 300_000);
    let pids = stats.pids.unwrap();
    assert_eq!((pids.current, pids.limit), (3, None));
    let blkio = stats.blkio.unwrap();
    let bytes: Vec<(&str, u64)> = blkio
        .io_service_bytes_recursive
        .iter()
        .map(|e| (e.op.as_str(), e.value))
        .collect();
    assert_eq!(bytes, [("Read", 4096), ("Write", 8192)]);
    assert_eq!(blkio.io_serviced_recursive.len(), 2);
    let huge = &stats.hugetlb["2MB"];
    assert_eq!((huge.usage, huge.failcnt), (2097152, 3));
    let cpuset = stats.cpuset.unwrap();
    assert_eq!(cpuset.cpus, [0, 1, 2, 3]);
    assert_eq!(cpuset.mems, [0]);
    assert_eq!(cg.manager.oom_kill_count().unwrap(), 2);
}

#[test]
fn freezer_uses_cgroup_freeze_and_events() {
    let cg = FakeCgroup::new(&[]);
    assert!(!cg.manager.is_frozen().unwrap());
    // The kernel reports the frozen state in cgroup.events; here it is there already.
    cg.write("cgroup.events", "populated 1\nfrozen 1\n");
    cg.manager.freeze().unwrap();
    assert_eq!(cg.read("cgroup.freeze"), "1");
    assert!(cg.manager.is_frozen().unwrap());
    cg.write("cgroup.events", "populated 1\nfrozen 0\n");
    cg.manager.thaw().unwrap();
    assert_eq!(cg.read("cgroup.freeze"), "0");
}

#[test]
fn pids_come_from_cgroup_procs_of_the_tree() {
    let cg = FakeCgroup::new(&[]);
    cg.write("cgroup.procs", "30\n10\n");
    std::fs::create_dir(cg.dir.join("sub")).unwrap();
    std::fs::write(cg.dir.join("sub/cgroup.procs"), "20\n").unwrap();
    assert_eq!(cg.manager.pids().unwrap(), [10, 20, 30]);
}

fn wait_readable(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    husk_init::sys::wait_readable(fd, std::time::Duration::from_secs(5)).unwrap()
}

#[test]
fn oom_watch_reports_new_kills_and_removal() {
    let cg = FakeCgroup::new(&[]);
    let mut watch = cg.manager.watch_oom().unwrap();
    assert_eq!(watch.read().unwrap(), OomWakeup::Nothing);
    // The kernel rewrites memory.events when a counter moves.
    cg.write("memory.events", "low 0\nhigh 0\nmax 1\noom 1\noom_kill 2\n");
    assert!(wait_readable(watch.as_fd()));
    assert_eq!(watch.read().unwrap(), OomWakeup::Oom(2));
    cg.write("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 2\n");
    assert!(wait_readable(watch.as_fd()));
    assert_eq!(watch.read().unwrap(), OomWakeup::Nothing, "no new kill");
    remove_tree(&cg.dir);
    assert!(wait_readable(watch.as_fd()));
    assert_eq!(watch.read().unwrap(), OomWakeup::CgroupRemoved);
}

fn remove_tree(dir: &Path) {
    std::fs::remove_dir_all(dir).unwrap();
}

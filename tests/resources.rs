//! Resource control through the CLI: limits seen from inside the container, `update`, `pause` /
//! `resume`, `ps`, `events` (stats and OOM), where cgroups go (`linux.cgroupsPath`) and that none
//! are left behind. Runtime-agnostic (also run against runc; see RUNC_DIFFERENCES.md).
//!
//! cgroup-mode aware: on a v1 host (legacy or hybrid, as the development host) the tests check v1
//! files and semantics, on a pure v2 host (the VM lane) v2 ones; the few that exist only on one
//! layout say so and fail loudly on the other. The `library_*` test drives the husk library
//! directly, whatever `HUSK_TEST_RUNTIME` says.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use husk_testing::cgroups::{
    self as cg, cgroup_dir, dirs_named, is_v2, read_keyed, read_trimmed, CgroupMode, Cleanup,
    TagCleanup,
};
use husk_testing::{
    existing_cgroups, is_gone, unique_id, wait_for, Bundle, ContainerGuard, OutputExt, Runtime,
    Spawned,
};
use serde_json::{json, Value};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(20);
/// How long a memory hog may take to meet the OOM killer: it copies tens of MB through a pipe,
/// minutes under emulation (the VM lane, debug builds).
const OOM_WAIT: Duration = Duration::from_secs(180);
const MIB: u64 = 1 << 20;
/// v1 controllers whose cgroup a container must be in (named hierarchies aside).
const V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids", "blkio",
];

/// cgroup v2's `cpu.weight` for v1 `cpu.shares`, as runc converts (and documents) it.
fn weight_of_shares(shares: u64) -> u64 {
    1 + ((shares - 2) * 9999) / 262142
}

/// A FIFO in the bundle's shared directory: the container blocks reading it until the test writes.
fn make_fifo(bundle: &Bundle, name: &str) -> PathBuf {
    let path = bundle.shared_dir().join(name);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o666))
        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
    path
}

/// Writes a line into a FIFO (blocking until the container opens it for reading).
fn send(fifo: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(fifo)
        .unwrap_or_else(|e| panic!("open {}: {e}", fifo.display()));
    writeln!(f, "{line}").unwrap();
}

fn read_shared_trimmed(bundle: &Bundle, name: &str) -> Option<String> {
    bundle.read_shared(name).map(|s| s.trim().to_owned())
}

/// Waits until the container wrote a line into a shared file; returns it, trimmed.
fn wait_shared(bundle: &Bundle, name: &str, timeout: Duration) -> String {
    assert!(
        wait_for(
            || bundle.read_shared(name).is_some_and(|s| s.ends_with('\n')),
            timeout
        ),
        "the container did not write /shared/{name}"
    );
    read_shared_trimmed(bundle, name).unwrap()
}

/// `events --stats <id>`: checks the envelope and returns `data`.
fn stats(rt: &Runtime, id: &str) -> Value {
    let out = rt.run_ok(["events", "--stats", id]);
    let event: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "events --stats is not one JSON object: {e}\n{}",
            out.describe()
        )
    });
    assert_eq!(event["type"], "stats", "{event}");
    assert_eq!(event["id"], id, "{event}");
    assert!(event["data"].is_object(), "{event}");
    event["data"].clone()
}

/// A number from runc's stats JSON, where zero values are left out.
fn num(v: &Value, pointer: &str) -> u64 {
    match v.pointer(pointer) {
        None => 0,
        Some(n) => n
            .as_u64()
            .unwrap_or_else(|| panic!("{pointer} is not a number in {v}")),
    }
}

/// The JSON lines printed so far by a spawned `events`.
fn event_lines(events: &mut Spawned) -> Vec<Value> {
    let (stdout, _) = events.output_so_far();
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event {l:?}: {e}")))
        .collect()
}

/// The cgroup of `pid` for each v1 controller and for cgroup2 (`""`), from /proc/<pid>/cgroup.
fn proc_cgroups(pid: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in cg::proc_cgroups(pid) {
        if line.controllers.is_empty() {
            out.push((String::new(), line.path.clone()));
        }
        for c in &line.controllers {
            if V1_CONTROLLERS.contains(&c.as_str()) {
                out.push((c.clone(), line.path.clone()));
            }
        }
    }
    out
}

#[test]
fn memory_limit_oom_kills_and_events_report_it() {
    let rt = runtime();
    let limit = 32 * MIB;
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .set(
            "/linux/resources/memory",
            json!({"limit": limit, "swap": limit}),
        )
        // The subshell hoards memory until the OOM killer stops it; the init survives: the
        // hog and its helpers ask to be the OOM killer's first choice, so a second kill while
        // the first victim is still dying does not land on the init.
        .sh("read go < /shared/go; \
             (echo 1000 > /proc/self/oom_score_adj; x=$(head -c 400000000 /dev/zero | tr '\\0' a)); \
             echo $? > /shared/rc; exec sleep 1000");
    let go = make_fifo(&bundle, "go");
    let c = rt.create(&bundle);
    c.start();
    let mut events = rt.spawn(["events", "--interval", "1s", c.id()]);
    // Once the first stats line is out, the OOM watch is in place.
    assert!(
        wait_for(|| !event_lines(&mut events).is_empty(), WAIT),
        "no stats from events: {:?}",
        events.output_so_far()
    );
    send(&go, "go");
    let rc_written = wait_for(
        || bundle.read_shared("rc").is_some_and(|s| s.ends_with('\n')),
        OOM_WAIT,
    );
    assert!(
        rc_written,
        "no exit status of the memory hog; container {}\n{}",
        c.state(),
        kernel_oom_log()
    );
    assert_eq!(
        read_shared_trimmed(&bundle, "rc").unwrap(),
        "137",
        "the memory hog was not SIGKILLed"
    );
    let oom = json!({"type": "oom", "id": c.id()});
    assert!(
        wait_for(|| event_lines(&mut events).contains(&oom), OOM_WAIT),
        "events reported no OOM: {:?}",
        events.output_so_far()
    );
    for line in event_lines(&mut events) {
        assert!(
            line["type"] == "stats" || line == oom,
            "unexpected event {line}"
        );
        assert_eq!(line["id"], c.id());
    }
    assert_eq!(c.status(), "running", "the init should have survived");
    let data = stats(&rt, c.id());
    assert_eq!(num(&data, "/memory/usage/limit"), limit, "{data}");
    assert!(num(&data, "/memory/usage/max") >= limit - MIB, "{data}");
    // The kernel's own record: the limit, and the kill counted in the container's cgroup.
    let memory = cgroup_dir(c.pid(), "memory");
    let (limit_file, oom_file) = match cg::mode() {
        CgroupMode::V2 => ("memory.max", "memory.events"),
        _ => ("memory.limit_in_bytes", "memory.oom_control"),
    };
    assert_eq!(read_trimmed(&memory.join(limit_file)), limit.to_string());
    let kills = read_keyed(&memory.join(oom_file));
    assert!(
        kills.get("oom_kill").is_some_and(|n| *n >= 1),
        "{oom_file}: {kills:?}"
    );
    if is_v2() {
        // swap == limit: no swap on top of the memory (memory.swap.max is the difference).
        assert_eq!(read_trimmed(&memory.join("memory.swap.max")), "0");
    }
    // The stream ends by itself once the container is deleted.
    rt.run_ok(["delete", "--force", c.id()]);
    let out = events
        .wait_or_kill(WAIT)
        .unwrap_or_else(|o| panic!("events did not end after delete\n{}", o.describe()));
    assert!(out.status.success(), "{}", out.describe());
}

#[test]
fn fork_loop_stops_at_pids_limit() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .set("/linux/resources/pids", json!({"limit": 10}))
        // Only shell builtins after the fork loop: no fork is left once the limit is reached.
        .sh("( i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); echo $i > /shared/started; done; \
               echo all > /shared/all ) 2> /shared/err; \
             echo $? > /shared/loop_rc; read go < /shared/go");
    let go = make_fifo(&bundle, "go");
    let c = rt.create(&bundle);
    c.start();
    let loop_rc = wait_shared(&bundle, "loop_rc", WAIT);
    assert_ne!(loop_rc, "0", "the fork loop did not fail");
    assert!(
        bundle.read_shared("all").is_none(),
        "all 40 forks succeeded"
    );
    let started: u32 = wait_shared(&bundle, "started", WAIT).parse().unwrap();
    // The init and the subshell take 2 of the 10.
    assert!(
        (1..=8).contains(&started),
        "{started} background processes started under a limit of 10"
    );
    let err = read_shared_trimmed(&bundle, "err").unwrap_or_default();
    assert!(
        err.contains("fork"),
        "no fork error from the shell: {err:?}"
    );
    // Left: the init and the background processes (the subshell has exited).
    let data = stats(&rt, c.id());
    assert_eq!(num(&data, "/pids/limit"), 10, "{data}");
    assert_eq!(
        num(&data, "/pids/current"),
        u64::from(started) + 1,
        "{data}"
    );
    // Same file name on v1 and v2; the kernel counted the refused forks too.
    let pids = cgroup_dir(c.pid(), "pids");
    assert_eq!(read_trimmed(&pids.join("pids.max")), "10");
    assert!(
        read_keyed(&pids.join("pids.events"))
            .get("max")
            .is_some_and(|n| *n >= 1),
        "pids.events: {}",
        read_trimmed(&pids.join("pids.events"))
    );
    send(&go, "go");
}

#[test]
fn cpu_quota_throttles_and_stats_show_it() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .set(
            "/linux/resources/cpu",
            json!({"quota": 10000, "period": 100000}),
        )
        .sh("while :; do :; done");
    let c = rt.create(&bundle);
    c.start();
    std::thread::sleep(Duration::from_millis(500));
    let before = stats(&rt, c.id());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let after = stats(&rt, c.id());
    let wall = t0.elapsed().as_nanos() as f64;
    assert!(num(&after, "/cpu/throttling/periods") > 0, "{after}");
    assert!(
        num(&after, "/cpu/throttling/throttledPeriods")
            > num(&before, "/cpu/throttling/throttledPeriods"),
        "no new throttled periods: {before} -> {after}"
    );
    assert!(num(&after, "/cpu/throttling/throttledTime") > 0, "{after}");
    let used = (num(&after, "/cpu/usage/total") - num(&before, "/cpu/usage/total")) as f64;
    assert!(used > 0.0, "the busy loop did not run");
    // 10% of one CPU, with room for period boundaries and accounting lag.
    assert!(
        used / wall < 0.25,
        "the busy loop used {:.0}% of a CPU under a 10% quota",
        100.0 * used / wall
    );
    assert!(num(&after, "/cpu/usage/user") > 0, "{after}");
    let percpu = after["cpu"]["usage"]["percpu"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let cpu = cgroup_dir(c.pid(), "cpu");
    if is_v2() {
        assert_eq!(read_trimmed(&cpu.join("cpu.max")), "10000 100000");
        // cgroup v2 keeps no per-CPU usage (runc reports none there either).
        assert!(percpu.is_empty(), "per-CPU usage on cgroup v2? {after}");
        let stat = read_keyed(&cpu.join("cpu.stat"));
        assert!(stat["nr_throttled"] > 0, "cpu.stat: {stat:?}");
    } else {
        assert_eq!(read_trimmed(&cpu.join("cpu.cfs_quota_us")), "10000");
        assert_eq!(read_trimmed(&cpu.join("cpu.cfs_period_us")), "100000");
        assert!(!percpu.is_empty(), "no per-CPU usage: {after}");
    }
}

/// The CPU time (ns) a container's cgroup used, from its stats.
fn cpu_used(rt: &Runtime, id: &str) -> u64 {
    num(&stats(rt, id), "/cpu/usage/total")
}

#[test]
fn stats_report_what_the_container_uses() {
    let rt = runtime();
    let limit = 128 * MIB;
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .set(
            "/linux/resources",
            json!({"memory": {"limit": limit}, "pids": {"limit": 50}}),
        )
        // 8 MB held in a shell variable, some CPU in a loop, then two processes wait.
        .sh("x=$(head -c 8000000 /dev/zero | tr '\\0' a); \
             i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; \
             sleep 1000 & echo ready > /shared/ready; wait");
    let c = rt.create(&bundle);
    c.start();
    wait_shared(&bundle, "ready", WAIT);
    let data = stats(&rt, c.id());
    let usage = num(&data, "/memory/usage/usage");
    assert!(usage >= 8_000_000, "memory usage {usage}: {data}");
    assert_eq!(num(&data, "/memory/usage/limit"), limit, "{data}");
    assert!(num(&data, "/memory/usage/max") >= usage, "{data}");
    // The kernel's anonymous memory counter (memory.stat: v1 rss, v2 anon) holds the 8 MB.
    let anon_key = if is_v2() { "anon" } else { "rss" };
    let anon = num(&data, &format!("/memory/raw/{anon_key}"));
    assert!(anon >= 8_000_000, "memory.stat {anon_key} {anon}: {data}");
    assert!(num(&data, "/cpu/usage/total") > 0, "{data}");
    assert!(num(&data, "/cpu/usage/user") > 0, "{data}");
    assert_eq!(num(&data, "/pids/current"), 2, "{data}");
    assert_eq!(num(&data, "/pids/limit"), 50, "{data}");
    // The same numbers as the host's files (memory moves a little between the two reads).
    let memory = cgroup_dir(c.pid(), "memory");
    let host_usage: u64 = read_trimmed(&memory.join(if is_v2() {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    }))
    .parse()
    .unwrap();
    assert!(
        host_usage.abs_diff(usage) < 4 * MIB,
        "stats say {usage}, the host's file {host_usage}"
    );
}

#[test]
fn cpu_shares_split_a_contended_cpu() {
    // Two busy containers on the same CPU: the one with 4 times the shares (v1 cpu.shares, v2
    // cpu.weight as converted) gets the larger part.
    let rt = runtime();
    let busy = |shares: u64| {
        Bundle::new(&rt)
            .set(
                "/linux/resources/cpu",
                json!({"shares": shares, "cpus": "0"}),
            )
            .sh("while :; do :; done")
    };
    let (heavy_bundle, light_bundle) = (busy(2048), busy(512));
    let heavy = rt.create(&heavy_bundle);
    let light = rt.create(&light_bundle);
    for (c, shares) in [(&heavy, 2048), (&light, 512)] {
        let cpu = cgroup_dir(c.pid(), "cpu");
        if is_v2() {
            assert_eq!(
                read_trimmed(&cpu.join("cpu.weight")),
                weight_of_shares(shares).to_string()
            );
        } else {
            assert_eq!(read_trimmed(&cpu.join("cpu.shares")), shares.to_string());
        }
    }
    heavy.start();
    light.start();
    // Both loops running before the window opens (a loaded machine may start them late).
    assert!(
        wait_for(
            || cpu_used(&rt, heavy.id()) > 0 && cpu_used(&rt, light.id()) > 0,
            WAIT
        ),
        "the loops did not start"
    );
    let (h0, l0) = (cpu_used(&rt, heavy.id()), cpu_used(&rt, light.id()));
    // The measuring window: the ratio of CPU time over it is the assertion.
    std::thread::sleep(Duration::from_secs(3));
    let (h1, l1) = (cpu_used(&rt, heavy.id()), cpu_used(&rt, light.id()));
    let (h, l) = ((h1 - h0) as f64, (l1 - l0) as f64);
    assert!(h > 0.0 && l > 0.0, "both loops should run: {h} {l}");
    // 4:1 in theory; other load on the CPU (tests run side by side) blurs it.
    assert!(
        h / l > 2.0,
        "2048 vs 512 shares used {:.0} ms vs {:.0} ms of CPU",
        h / 1e6,
        l / 1e6
    );
}

#[test]
fn cpuset_pins_the_container() {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(
        cpus >= 2,
        "pinning can only be told apart from the default with 2+ CPUs (this host has {cpus})"
    );
    let last = cpus - 1;
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .set(
            "/linux/resources/cpu",
            json!({"cpus": last.to_string(), "mems": "0"}),
        )
        .sh("grep -E '^(Cpus|Mems)_allowed_list' /proc/self/status; nproc");
    let out = rt.run_bundle_ok(&bundle);
    assert!(
        out.contains(&format!("Cpus_allowed_list:\t{last}\n")),
        "not pinned to CPU {last}:\n{out}"
    );
    assert!(out.contains("Mems_allowed_list:\t0\n"), "{out}");
    assert_eq!(out.lines().last(), Some("1"), "nproc: {out}");
}

#[test]
fn cpuset_shows_in_stats() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .set("/linux/resources/cpu", json!({"cpus": "0", "mems": "0"}))
        .sh("exec sleep 1000");
    let c = rt.create(&bundle);
    // The same file names on v1 and v2.
    let cpuset = cgroup_dir(c.pid(), "cpuset");
    assert_eq!(read_trimmed(&cpuset.join("cpuset.cpus")), "0");
    assert_eq!(read_trimmed(&cpuset.join("cpuset.mems")), "0");
    let data = stats(&rt, c.id());
    assert_eq!(data["cpuset"]["cpus"], json!([0]), "{data}");
    assert_eq!(data["cpuset"]["mems"], json!([0]), "{data}");
}

/// A disk of this host (not a loop, ram, zram, nbd or optical device): its `major:minor`.
fn a_disk() -> (u64, u64) {
    let mut names: Vec<_> = std::fs::read_dir("/sys/block")
        .expect("read /sys/block")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !["loop", "ram", "zram", "nbd", "sr"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .filter(|n| Path::new("/sys/block").join(n).join("device").exists())
        .collect();
    names.sort();
    let name = names.first().expect("this host has no disk in /sys/block");
    let dev = read_trimmed(&Path::new("/sys/block").join(name).join("dev"));
    let (major, minor) = dev.split_once(':').expect("major:minor");
    (major.parse().unwrap(), minor.parse().unwrap())
}

/// `cat` of files below /sys/fs/cgroup inside a running container (through `exec`, which joins
/// its cgroup namespace).
fn cat_inside(rt: &Runtime, id: &str, file: &str) -> String {
    let path = format!("/sys/fs/cgroup/{file}");
    rt.run_ok(["exec", id, "cat", &path])
        .stdout_str()
        .trim()
        .to_owned()
}

#[test]
fn block_io_limits_seen_inside() {
    let rt = runtime();
    let (major, minor) = a_disk();
    let dev = format!("{major}:{minor}");
    let bundle = Bundle::new(&rt)
        .add_namespace("cgroup", None)
        .set(
            "/linux/resources/blockIO",
            json!({
                "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": MIB}],
                "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}],
            }),
        )
        .sh("exec sleep 1000");
    let c = rt.create(&bundle);
    c.start();
    let v2 = is_v2();
    if v2 {
        assert_eq!(
            cat_inside(&rt, c.id(), "io.max"),
            format!("{dev} rbps={MIB} wbps=max riops=max wiops=100")
        );
    } else {
        let read_bps = cat_inside(&rt, c.id(), "blkio/blkio.throttle.read_bps_device");
        assert_eq!(read_bps, format!("{dev} {MIB}"));
        let write_iops = cat_inside(&rt, c.id(), "blkio/blkio.throttle.write_iops_device");
        assert_eq!(write_iops, format!("{dev} 100"));
    }
    // Lifting a throttle through update.
    let lift = json!({"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 0}]}});
    let out = update_from_stdin(&rt, c.id(), &lift);
    assert!(out.status.success(), "{}", out.describe());
    if rt.is_runc() {
        // runc 1.1.5's update applies only the blkio weight, not the throttles.
    } else if v2 {
        assert_eq!(
            cat_inside(&rt, c.id(), "io.max"),
            format!("{dev} rbps=max wbps=max riops=max wiops=100")
        );
    } else {
        let read_bps = cat_inside(&rt, c.id(), "blkio/blkio.throttle.read_bps_device");
        assert_eq!(read_bps, "");
    }

    // The proportional weight needs a scheduler that has one (BFQ, or v2's io.weight from
    // blk-iocost): with one, update sets it; without, update fails naming the field.
    let dir = cgroup_dir(c.pid(), "blkio");
    let candidates: &[(&str, u64)] = if v2 {
        // BFQ takes the v1 value; io.weight the converted one (1 + (w - 10) * 9999 / 990).
        &[("io.bfq.weight", 500), ("io.weight", 4950)]
    } else {
        &[("blkio.bfq.weight", 500), ("blkio.weight", 500)]
    };
    let out = rt.run(["update", "--blkio-weight", "500", c.id()]);
    match candidates.iter().find(|(f, _)| dir.join(f).exists()) {
        Some((file, value)) => {
            assert!(out.status.success(), "{}", out.describe());
            let inside = cat_inside(
                &rt,
                c.id(),
                &format!("{}{file}", if v2 { "" } else { "blkio/" }),
            );
            assert!(
                inside.split_whitespace().any(|w| w == value.to_string()),
                "{file} inside: {inside:?}, expected {value}"
            );
        }
        None => {
            assert!(
                !out.status.success(),
                "no weight file, yet: {}",
                out.describe()
            );
            // husk names the field; runc 1.1.5 the file it did not find.
            let named = if rt.is_runc() {
                "weight"
            } else {
                "blockIO.weight"
            };
            assert!(out.stderr_str().contains(named), "{}", out.describe());
        }
    }
}

/// Opens a device node for writing inside a container, printing `opened` or the shell's error.
/// (A subshell: a failed `exec` redirection ends a non-interactive shell.)
const OPEN_KMSG: &str = "(exec 3>/dev/husk-kmsg) && echo opened";

/// A bundle whose container has a node for /dev/kmsg (1:11, not among the devices every
/// container may use), and `rules` after the spec's blanket deny.
fn kmsg_bundle(rt: &Runtime, rules: Value, script: &str) -> Bundle {
    let mut devices = vec![json!({"allow": false, "access": "rwm"})];
    devices.extend(rules.as_array().cloned().unwrap_or_default());
    Bundle::new(rt)
        .add_device("/dev/husk-kmsg", "c", 1, 11, 0o666, 0, 0)
        .set("/linux/resources/devices", json!(devices))
        .sh(script)
}

#[test]
fn device_rules_decide_what_opens_inside() {
    // On v1 the devices cgroup, on v2 the eBPF filter: the same node opens or not depending only
    // on the rules (opened write-only, /dev/kmsg needs no capability).
    let rt = runtime();
    let script = &format!("{OPEN_KMSG}; echo x > /dev/null && echo null");
    let allowed = kmsg_bundle(
        &rt,
        json!([{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]),
        script,
    );
    let out = rt.run_bundle(&allowed);
    assert_eq!(out.stdout_str(), "opened\nnull\n", "{}", out.describe());
    let denied = kmsg_bundle(&rt, json!([]), script);
    let out = rt.run_bundle(&denied);
    assert_eq!(out.stdout_str(), "null\n", "{}", out.describe());
    assert!(
        out.stderr_str().contains("Operation not permitted"),
        "{}",
        out.describe()
    );
    // Read access is not write access; a later deny takes back an earlier allow.
    let read_only = kmsg_bundle(
        &rt,
        json!([{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"},
               {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "w"}]),
        script,
    );
    let out = rt.run_bundle(&read_only);
    assert_eq!(out.stdout_str(), "null\n", "{}", out.describe());

    // update adds rules to those in force (as v1's devices.allow does): the node opens, and the
    // devices every container may use stay usable.
    let running = kmsg_bundle(&rt, json!([]), "exec sleep 1000");
    let c = rt.create(&running);
    c.start();
    let open = |c: &ContainerGuard| {
        rt.run([
            "exec",
            c.id(),
            "sh",
            "-c",
            &format!("{OPEN_KMSG}; echo x > /dev/null && echo null"),
        ])
    };
    let out = open(&c);
    assert_eq!(out.stdout_str(), "null\n", "{}", out.describe());
    let allow =
        json!({"devices": [{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]});
    let out = update_from_stdin(&rt, c.id(), &allow);
    assert!(out.status.success(), "{}", out.describe());
    let out = open(&c);
    // runc 1.1.5's update ignores device rules.
    let expected = if rt.is_runc() {
        "null\n"
    } else {
        "opened\nnull\n"
    };
    assert_eq!(out.stdout_str(), expected, "{}", out.describe());
}

/// A container that answers "what are my limits" from inside, on request: it reads its own
/// cgroup's files at /sys/fs/cgroup, in a cgroup namespace (so that, on v2, the mount shows the
/// container's cgroup as its root).
struct LimitsProbe<'rt> {
    bundle: Bundle,
    ask: PathBuf,
    asked: u32,
    container: Option<ContainerGuard<'rt>>,
}

impl<'rt> LimitsProbe<'rt> {
    /// Memory limit, pids limit, CPU shares or weight, CPU quota (v2: quota and period), CPU
    /// period (v2: repeated), cpuset CPUs, as files below /sys/fs/cgroup inside.
    fn files() -> [&'static str; 6] {
        match cg::mode() {
            CgroupMode::V2 => [
                "memory.max",
                "pids.max",
                "cpu.weight",
                "cpu.max",
                "cpu.max",
                "cpuset.cpus",
            ],
            _ => [
                "memory/memory.limit_in_bytes",
                "pids/pids.max",
                "cpu/cpu.shares",
                "cpu/cpu.cfs_quota_us",
                "cpu/cpu.cfs_period_us",
                "cpuset/cpuset.cpus",
            ],
        }
    }

    fn start(rt: &'rt Runtime, resources: Value) -> LimitsProbe<'rt> {
        let files: Vec<String> = Self::files()
            .iter()
            .map(|f| format!("/sys/fs/cgroup/{f}"))
            .collect();
        let bundle = Bundle::new(rt)
            .with_shared_dir()
            .add_namespace("cgroup", None)
            .set("/linux/resources", resources)
            .sh(&format!(
                // A read that meets only the end of a previous writer is retried.
                "cat /proc/self/cgroup > /shared/cgroup; \
                 while :; do read n < /shared/ask || continue; \
                   {{ echo $n; cat {}; }} > /shared/answer.tmp; mv /shared/answer.tmp /shared/answer; \
                 done",
                files.join(" ")
            ));
        let ask = make_fifo(&bundle, "ask");
        let container = rt.create(&bundle);
        container.start();
        LimitsProbe {
            bundle,
            ask,
            asked: 0,
            container: Some(container),
        }
    }

    fn id(&self) -> &str {
        self.container.as_ref().unwrap().id()
    }

    /// The limits as the container reads them, in the order of [`LimitsProbe::FILES`].
    fn limits(&mut self) -> Vec<String> {
        self.asked += 1;
        send(&self.ask, &self.asked.to_string());
        let n = self.asked.to_string();
        let mut answer = Vec::new();
        let answered = wait_for(
            || {
                answer = self
                    .bundle
                    .read_shared("answer")
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_owned)
                    .collect();
                answer.first() == Some(&n)
            },
            WAIT,
        );
        assert!(answered, "no answer {n} from inside: {answer:?}");
        assert_eq!(answer.len(), 1 + Self::files().len(), "{answer:?}");
        answer.split_off(1)
    }
}

impl Drop for LimitsProbe<'_> {
    fn drop(&mut self) {
        // The container goes first: its guard deletes it before the bundle is removed.
        self.container.take();
    }
}

/// `update --resources -` with `json` on stdin.
fn update_from_stdin(rt: &Runtime, id: &str, json: &Value) -> std::process::Output {
    let mut child = rt
        .cmd(["update", "--resources", "-", id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn update");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait for update")
}

/// What [`LimitsProbe::limits`] should read on this host for these limits (`quota` None: no
/// quota).
fn expected_limits(
    memory: u64,
    pids: u64,
    shares: u64,
    quota: Option<u64>,
    period: u64,
    cpus: &str,
) -> Vec<String> {
    match cg::mode() {
        CgroupMode::V2 => {
            let max = match quota {
                Some(q) => format!("{q} {period}"),
                None => format!("max {period}"),
            };
            vec![
                memory.to_string(),
                pids.to_string(),
                weight_of_shares(shares).to_string(),
                max.clone(),
                max,
                cpus.into(),
            ]
        }
        _ => vec![
            memory.to_string(),
            pids.to_string(),
            shares.to_string(),
            quota.map_or("-1".into(), |q| q.to_string()),
            period.to_string(),
            cpus.into(),
        ],
    }
}

#[test]
fn update_changes_limits_seen_inside() {
    let rt = runtime();
    let mut probe = LimitsProbe::start(
        &rt,
        json!({
            "memory": {"limit": 64 * MIB},
            "pids": {"limit": 100},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"}
        }),
    );
    let id = probe.id().to_owned();
    let initial = probe.limits();
    assert_eq!(
        initial,
        expected_limits(64 * MIB, 100, 1024, Some(50000), 100000, "0-1")
    );
    // The cgroup namespace shows the container its own cgroup as the root.
    let inside = read_shared_trimmed(&probe.bundle, "cgroup").unwrap_or_default();
    if is_v2() {
        assert_eq!(inside, "0::/", "/proc/self/cgroup inside");
    } else {
        assert!(
            inside.lines().all(|l| l.ends_with(":/")),
            "/proc/self/cgroup inside: {inside}"
        );
    }

    rt.run_ok([
        "update",
        "--memory",
        "48M",
        "--pids-limit",
        "7",
        "--cpu-share",
        "512",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "200000",
        "--cpuset-cpus",
        "0",
        &id,
    ]);
    assert_eq!(
        probe.limits(),
        expected_limits(48 * MIB, 7, 512, Some(30000), 200000, "0")
    );

    // From a file: only what it names changes.
    let file = rt.scratch_dir().join("resources.json");
    std::fs::write(
        &file,
        json!({"memory": {"limit": 40 * MIB}, "pids": {"limit": 9}}).to_string(),
    )
    .unwrap();
    rt.run_ok(["update", "-r", file.to_str().unwrap(), &id]);
    // From stdin.
    let out = update_from_stdin(&rt, &id, &json!({"cpu": {"shares": 256, "quota": -1}}));
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(
        probe.limits(),
        expected_limits(40 * MIB, 9, 256, None, 200000, "0")
    );

    // What cannot be applied fails and changes nothing.
    let mut bad = vec![
        vec!["update", "--memory", "12x", &id],
        vec!["update", "--l3-cache-schema", "L3:0=f", &id],
        vec!["update", "--mem-bw-schema", "MB:0=50", &id],
    ];
    if !is_v2() {
        // v1 refuses a limit below the current usage; v2 takes it and reclaims or OOM-kills.
        bad.push(vec!["update", "--memory", "4k", &id]);
    }
    for bad in bad {
        let out = rt.run_fail(&bad);
        assert!(
            !out.stderr_str().trim().is_empty(),
            "{bad:?} failed silently"
        );
    }
    let out = update_from_stdin(&rt, &id, &json!({"memory": {"limit": "lots"}}));
    assert!(!out.status.success(), "{}", out.describe());
    let unchanged = [(40 * MIB).to_string(), "9".to_owned()];
    assert_eq!(probe.limits()[..2], unchanged);
    // Nothing given: nothing changes.
    rt.run_ok(["update", &id]);
    assert_eq!(probe.limits()[..2], unchanged);
    rt.run_fail(["update", "--memory", "32M", "no-such-container"]);
}

#[test]
fn update_of_stopped_container_fails() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).sh("true");
    let c = rt.create(&bundle);
    c.start();
    assert!(c.wait_status("stopped", WAIT), "{}", c.state());
    let out = rt.run_fail(["update", "--pids-limit", "5", c.id()]);
    assert!(!out.stderr_str().trim().is_empty());
}

/// Three busy counters in the shared dir, and the container's pids.
fn counters(rt: &Runtime) -> (Bundle, ContainerGuard<'_>) {
    let bundle = Bundle::new(rt).with_shared_dir().sh(
        "for n in 1 2 3; do \
           (i=0; while :; do i=$((i+1)); echo $i > /shared/c$n.tmp; mv /shared/c$n.tmp /shared/c$n; \
            sleep 0.05; done) & \
         done; \
         trap 'echo term > /shared/term' TERM; \
         while :; do wait; done",
    );
    let c = rt.create(&bundle);
    c.start();
    (bundle, c)
}

fn counter_values(bundle: &Bundle) -> Vec<Option<u64>> {
    (1..=3)
        .map(|n| read_shared_trimmed(bundle, &format!("c{n}")).and_then(|s| s.parse().ok()))
        .collect()
}

/// Waits until every counter moved past `since`.
fn all_counters_advance(bundle: &Bundle, since: &[Option<u64>]) -> bool {
    wait_for(
        || {
            counter_values(bundle)
                .iter()
                .zip(since)
                .all(|(now, before)| now.is_some() && now > before)
        },
        WAIT,
    )
}

/// `ps --format json`: the container's pids.
fn ps_pids(rt: &Runtime, id: &str) -> Vec<i32> {
    let out = rt.run_ok(["ps", "--format", "json", id]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ps --format json: {e}\n{}", out.describe()))
}

/// Whether the kernel reports `pid`'s cgroup frozen: v1 `freezer.state` FROZEN (THAWED when
/// not), v2 `cgroup.freeze` set and `frozen 1` in `cgroup.events` (0 and 0 when not): the
/// kernel sets that only once every process of the cgroup is frozen.
fn kernel_says_frozen(pid: i32) -> bool {
    let dir = cgroup_dir(pid, "freezer");
    match cg::mode() {
        CgroupMode::V2 => {
            let asked = read_trimmed(&dir.join("cgroup.freeze"));
            let frozen = read_keyed(&dir.join("cgroup.events"))["frozen"];
            assert_eq!(
                asked == "1",
                frozen == 1,
                "pid {pid}: cgroup.freeze {asked}, frozen {frozen}"
            );
            frozen == 1
        }
        _ => match read_trimmed(&dir.join("freezer.state")).as_str() {
            "FROZEN" => true,
            "THAWED" => false,
            other => panic!("pid {pid}: freezer.state {other}"),
        },
    }
}

#[test]
fn pause_freezes_every_process_and_resume_thaws() {
    let rt = runtime();
    let (bundle, c) = counters(&rt);
    assert!(all_counters_advance(&bundle, &[None, None, None]));
    let pids = ps_pids(&rt, c.id());
    assert!(pids.len() >= 4, "init and three loops expected: {pids:?}");
    assert!(!kernel_says_frozen(c.pid()));

    rt.run_ok(["pause", c.id()]);
    assert_eq!(c.status(), "paused");
    let frozen = counter_values(&bundle);
    // (The loops' short-lived children come and go: the pids differ from those seen before.)
    let paused_pids = ps_pids(&rt, c.id());
    assert!(paused_pids.contains(&c.pid()), "{paused_pids:?}");
    // (A child that had exited, unreaped, as the freeze came can be gone by now under runc.)
    for pid in paused_pids.into_iter().filter(|p| !is_gone(*p)) {
        assert!(kernel_says_frozen(pid), "pid {pid} not frozen");
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        counter_values(&bundle),
        frozen,
        "counters moved while paused"
    );
    let out = rt.run_fail(["pause", c.id()]);
    assert!(!out.stderr_str().trim().is_empty());
    assert_eq!(c.status(), "paused");
    // ps works on a paused container: a header and one row per process.
    let table = rt.run_ok(["ps", c.id()]).stdout_str();
    assert_eq!(
        table.lines().count(),
        ps_pids(&rt, c.id()).len() + 1,
        "{table}"
    );

    rt.run_ok(["resume", c.id()]);
    assert_eq!(c.status(), "running");
    for pid in ps_pids(&rt, c.id()).into_iter().filter(|p| !is_gone(*p)) {
        assert!(!kernel_says_frozen(pid), "pid {pid} still frozen");
    }
    assert!(
        all_counters_advance(&bundle, &frozen),
        "counters did not move after resume: {frozen:?} -> {:?}",
        counter_values(&bundle)
    );
    let out = rt.run_fail(["resume", c.id()]);
    assert!(!out.stderr_str().trim().is_empty());
    assert_eq!(c.status(), "running");
}

#[test]
fn pause_and_resume_need_the_right_state() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .sh("echo started > /shared/started; exec sleep 1000");
    let c = rt.create(&bundle);
    rt.run_fail(["resume", c.id()]);
    assert_eq!(c.status(), "created");
    // A created container can be paused (as runc allows); it cannot start until resumed, and
    // resumes to created.
    rt.run_ok(["pause", c.id()]);
    assert_eq!(c.status(), "paused");
    rt.run_fail(["start", c.id()]);
    assert_eq!(c.status(), "paused");
    rt.run_ok(["resume", c.id()]);
    assert_eq!(c.status(), "created");
    c.start();
    assert_eq!(wait_shared(&bundle, "started", WAIT), "started");
    assert_eq!(c.status(), "running");
    rt.run_fail(["pause", "no-such-container"]);
    rt.run_fail(["resume", "no-such-container"]);
    let quick = Bundle::new(&rt).sh("true");
    let stopped = rt.create(&quick);
    stopped.start();
    assert!(stopped.wait_status("stopped", WAIT));
    rt.run_fail(["pause", stopped.id()]);
    rt.run_fail(["resume", stopped.id()]);
}

#[test]
fn delete_of_paused_container() {
    let rt = runtime();
    let cgroups_path = format!("/{}", unique_id("husk-res-delpaused"));
    let _cleanup = TagCleanup(cgroups_path.trim_start_matches('/').to_owned());
    let bundle = Bundle::new(&rt)
        .set("/linux/cgroupsPath", json!(cgroups_path))
        .sh("sleep 1000 & exec sleep 1001");
    let c = rt.create(&bundle);
    c.start();
    assert!(wait_for(|| ps_pids(&rt, c.id()).len() == 2, WAIT));
    let pids = ps_pids(&rt, c.id());
    rt.run_ok(["pause", c.id()]);
    let out = rt.run_fail(["delete", c.id()]);
    assert!(!out.stderr_str().trim().is_empty());
    assert_eq!(c.status(), "paused");
    rt.run_ok(["delete", "--force", c.id()]);
    assert!(rt.try_state(c.id()).is_none());
    for pid in pids {
        assert!(wait_for(|| is_gone(pid), WAIT), "pid {pid} survived delete");
    }
    assert!(
        existing_cgroups(&cgroups_path).is_empty(),
        "{:?}",
        existing_cgroups(&cgroups_path)
    );
}

#[test]
fn kill_of_paused_container() {
    let rt = runtime();
    let (bundle, c) = counters(&rt);
    assert!(all_counters_advance(&bundle, &[None, None, None]));
    rt.run_ok(["pause", c.id()]);
    // A catchable signal waits for the resume.
    c.kill("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.status(), "paused");
    assert!(bundle.read_shared("term").is_none(), "handled while frozen");
    rt.run_ok(["resume", c.id()]);
    assert_eq!(wait_shared(&bundle, "term", WAIT), "term");
    // SIGKILL stops a paused container.
    rt.run_ok(["pause", c.id()]);
    let pids = ps_pids(&rt, c.id());
    c.kill("KILL");
    assert!(c.wait_status("stopped", WAIT), "{}", c.state());
    for pid in pids {
        assert!(wait_for(|| is_gone(pid), WAIT), "pid {pid} survived");
    }
    rt.run_ok(["delete", c.id()]);
}

#[test]
fn ps_lists_the_container_processes() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).sh("sleep 1000 & exec sleep 1001");
    let c = rt.create(&bundle);
    c.start();
    assert!(wait_for(|| ps_pids(&rt, c.id()).len() == 2, WAIT));
    let pids: BTreeSet<i32> = ps_pids(&rt, c.id()).into_iter().collect();
    assert!(pids.contains(&c.pid()), "{pids:?}");

    let table = rt.run_ok(["ps", c.id()]).stdout_str();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let column = header.iter().position(|h| *h == "PID").expect("PID column");
    let rows: BTreeSet<i32> = lines
        .map(|l| l.split_whitespace().nth(column).unwrap().parse().unwrap())
        .collect();
    assert_eq!(rows, pids, "{table}");
    assert!(table.contains("sleep 1001"), "{table}");

    // Extra arguments go to ps.
    let custom = rt.run_ok(["ps", c.id(), "-o", "pid,comm"]).stdout_str();
    let mut lines = custom.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{custom}");
    assert!(
        rows.iter().all(|r| r.trim_end().ends_with("sleep")),
        "{custom}"
    );
    // Without a PID column there is nothing to filter on.
    rt.run_fail(["ps", c.id(), "-o", "comm"]);
    rt.run_fail(["ps", "no-such-container"]);
}

#[test]
fn events_refuses_stopped_container_and_bad_interval() {
    let rt = runtime();
    let quick = Bundle::new(&rt).sh("true");
    let c = rt.create(&quick);
    c.start();
    assert!(c.wait_status("stopped", WAIT));
    rt.run_fail(["events", "--stats", c.id()]);
    rt.run_fail(["events", c.id()]);
    let sleeper = Bundle::new(&rt).sh("exec sleep 1000");
    let running = rt.create(&sleeper);
    rt.run_fail(["events", "--interval", "0s", running.id()]);
    rt.run_fail(["events", "--interval", "soon", running.id()]);
    rt.run_fail(["events", "--stats", "no-such-container"]);
}

#[test]
fn hundred_containers_with_limits_leave_no_cgroups() {
    let rt = runtime();
    let tag = unique_id("husk-res-many");
    let resources = json!({
        "memory": {"limit": 32 * MIB},
        "pids": {"limit": 20},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000}
    });
    let default_path = Bundle::new(&rt)
        .set("/linux/resources", resources.clone())
        .sh("exec sleep 1000");
    let cycle = |i: usize| {
        let id = format!("{tag}-{i}");
        let guard = rt.guard(id.clone());
        // Half in the default place (the id, relative to the runtime's cgroup), half absolute.
        let absolute;
        let bundle = if i.is_multiple_of(2) {
            &default_path
        } else {
            absolute = Bundle::new(&rt)
                .set("/linux/resources", resources.clone())
                .set("/linux/cgroupsPath", json!(format!("/{tag}-abs-{i}")))
                .sh("exec sleep 1000");
            &absolute
        };
        rt.run_ok(["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
        if i.is_multiple_of(3) {
            rt.run_ok(["start", &id]);
        }
        rt.run_ok(["delete", "--force", &id]);
        drop(guard);
    };
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let cycle = &cycle;
                s.spawn(move || (w..100).step_by(4).for_each(cycle))
            })
            .collect();
        for w in workers {
            w.join().expect("worker panicked");
        }
    });
    let left = dirs_named(&tag);
    let _cleanup = Cleanup(left.clone());
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    assert!(
        rt.state_dir_entries().is_empty(),
        "{:?}",
        rt.state_dir_entries()
    );
}

/// Where a relative cgroupsPath starts for `controller`'s hierarchy: the runtime's (and this
/// test's) own cgroup on v1; on v2 its parent, as runc does there (the own cgroup holds
/// processes, so its children could not get domain controllers).
fn relative_base(controller: &str) -> String {
    let own = cg::cgroup_of("self", controller);
    if is_v2() {
        Path::new(&own)
            .parent()
            .map_or(own.clone(), |p| p.to_string_lossy().into_owned())
    } else {
        own
    }
}

/// Checks where a container with `cgroups_path` (None: not set) lands, and that delete removes
/// its cgroups. Parents a runtime made for a nested path are left (by runc and husk alike): the
/// caller removes them.
fn check_placement(rt: &Runtime, cgroups_path: Option<&str>) {
    let mut bundle = Bundle::new(rt)
        .set("/linux/resources/pids", json!({"limit": 17}))
        .sh("exec sleep 1000");
    if let Some(path) = cgroups_path {
        bundle = bundle.set("/linux/cgroupsPath", json!(path));
    }
    let c = rt.create(&bundle);
    let pid = c.pid();
    let relative = cgroups_path.unwrap_or(c.id());
    let v2 = is_v2();
    let mut leaves = Vec::new();
    for (controller, path) in proc_cgroups(&pid.to_string()) {
        if controller.is_empty() && !v2 {
            continue; // cgroup2 in hybrid mode: joined by both runtimes, no controllers to check
        }
        let expected = if relative.starts_with('/') {
            relative.to_owned()
        } else {
            let base = relative_base(if v2 { "pids" } else { &controller });
            format!("{}/{relative}", base.trim_end_matches('/'))
        };
        assert_eq!(path, expected, "{controller:?} cgroup of {cgroups_path:?}");
        let dir = cg::hierarchy_root(if v2 { "pids" } else { &controller })
            .join(expected.trim_start_matches('/'));
        leaves.push(dir);
    }
    let pids_dir = cgroup_dir(pid, "pids");
    assert!(leaves.contains(&pids_dir), "{pids_dir:?} not in {leaves:?}");
    assert_eq!(read_trimmed(&pids_dir.join("pids.max")), "17");
    rt.run_ok(["delete", "--force", c.id()]);
    for leaf in &leaves {
        assert!(!leaf.exists(), "{} left after delete", leaf.display());
    }
}

#[test]
fn cgroups_path_absolute_relative_and_default() {
    let rt = runtime();
    let tag = unique_id("husk-res-place");
    let _cleanup = TagCleanup(tag.clone());
    check_placement(&rt, Some(&format!("/{tag}-abs/leaf")));
    check_placement(&rt, Some(&format!("{tag}-rel/leaf")));
    check_placement(&rt, None);
}

#[test]
fn joins_an_existing_cgroup() {
    let rt = runtime();
    let path = format!("/{}", unique_id("husk-res-join"));
    let mut made = Vec::new();
    let controllers: &[&str] = if is_v2() { &["pids"] } else { V1_CONTROLLERS };
    for controller in controllers {
        let root = cg::hierarchy_root(controller);
        let dir = root.join(path.trim_start_matches('/'));
        // cpu and cpuacct can share one hierarchy: create each directory once.
        if dir.exists() {
            continue;
        }
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        made.push(dir.clone());
        if *controller == "cpuset" {
            // A usable pre-existing v1 cpuset has its CPUs and memory nodes.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                std::fs::write(dir.join(file), read_trimmed(&root.join(file))).unwrap();
            }
        }
    }
    let _cleanup = Cleanup(made);
    // The runtime also makes it in the hierarchies not listed above (cgroup2, name=systemd).
    let _tag_cleanup = TagCleanup(path.trim_start_matches('/').to_owned());
    let pids_dir = cg::hierarchy_root("pids").join(path.trim_start_matches('/'));
    std::fs::write(pids_dir.join("pids.max"), "50").unwrap();

    let bundle = Bundle::new(&rt)
        .set("/linux/cgroupsPath", json!(path))
        .set("/linux/resources/pids", json!({"limit": 20}))
        .sh("exec sleep 1000");
    let c = rt.create(&bundle);
    c.start();
    for (controller, cgroup) in proc_cgroups(&c.pid().to_string()) {
        assert_eq!(cgroup, path, "{controller}");
    }
    assert_eq!(read_trimmed(&pids_dir.join("pids.max")), "20");
    let procs = read_trimmed(&pids_dir.join("cgroup.procs"));
    assert_eq!(procs, c.pid().to_string());
    rt.run_ok(["delete", "--force", c.id()]);
    if rt.is_runc() {
        // runc 1.1.5 removes an empty joined cgroup too (tests/RUNC_DIFFERENCES.md).
        assert!(
            existing_cgroups(&path).is_empty(),
            "{:?}",
            existing_cgroups(&path)
        );
    } else {
        // husk removes only the directories it made (issue 16, bug 6); the guards remove the
        // rest.
        assert!(pids_dir.is_dir(), "the joined cgroup was removed");
    }
}

#[test]
fn kernel_memory_options() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).sh("exec sleep 1000");
    let c = rt.create(&bundle);
    let memory = cgroup_dir(c.pid(), "memory");
    if is_v2() {
        // cgroup v2 has neither limit. runc 1.1.5 warns and ignores both; husk refuses them,
        // naming what is missing, and changes nothing.
        let before = read_trimmed(&memory.join("memory.max"));
        for (flag, missing) in [
            ("--kernel-memory", "no kernel memory limit"),
            ("--kernel-memory-tcp", "no kernel TCP memory limit"),
        ] {
            let out = rt.run(["update", flag, "10M", c.id()]);
            if rt.is_runc() {
                assert!(out.status.success(), "{}", out.describe());
            } else {
                assert!(!out.status.success(), "{}", out.describe());
                assert!(out.stderr_str().contains(missing), "{}", out.describe());
            }
        }
        assert_eq!(read_trimmed(&memory.join("memory.max")), before);
        return;
    }
    let tcp = memory.join("memory.kmem.tcp.limit_in_bytes");
    let tcp_before = read_trimmed(&tcp);
    let kmem_out = rt.run(["update", "--kernel-memory", "10M", c.id()]);
    let tcp_out = rt.run(["update", "--kernel-memory-tcp", "10M", c.id()]);
    if rt.is_runc() {
        // runc 1.1.5 warns that kernel memory settings are ignored, and ignores both.
        assert!(kmem_out.status.success(), "{}", kmem_out.describe());
        assert!(tcp_out.status.success(), "{}", tcp_out.describe());
        assert!(
            tcp_out.stderr_str().contains("ignored"),
            "{}",
            tcp_out.describe()
        );
        assert_eq!(read_trimmed(&tcp), tcp_before);
        return;
    }
    // husk applies the TCP buffer limit (v1 still enforces it) and refuses a kernel memory limit
    // that the kernel would accept but not enforce.
    assert!(tcp_out.status.success(), "{}", tcp_out.describe());
    assert_eq!(read_trimmed(&tcp), (10 * MIB).to_string());
    let kmem_file = memory.join("memory.kmem.limit_in_bytes");
    let enforced = {
        // Kernels since 5.16 ignore kmem limits: the file keeps its value whatever is written.
        let value = read_trimmed(&kmem_file);
        value == (10 * MIB).to_string()
    };
    if enforced {
        assert!(kmem_out.status.success(), "{}", kmem_out.describe());
    } else {
        assert!(!kmem_out.status.success(), "{}", kmem_out.describe());
        assert!(
            kmem_out.stderr_str().contains("kernel memory"),
            "{}",
            kmem_out.describe()
        );
    }
}

/// The kernel's recent OOM-killer lines, for failure messages.
fn kernel_oom_log() -> String {
    let out = std::process::Command::new("dmesg").output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let text = text.unwrap_or_else(|e| format!("(dmesg: {e})"));
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("oom") || l.contains("Killed process"))
        .collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Deletes a library-created container when dropped.
struct LibGuard<'a>(&'a husk::Runtime, String);

impl Drop for LibGuard<'_> {
    fn drop(&mut self) {
        if let Ok(c) = self.0.load(&self.1) {
            let _ = c.delete(true);
        }
    }
}

#[test]
fn library_pause_update_stats_and_oom_events() {
    let rt = runtime(); // only to write the bundle
    let lib = husk::Runtime::new(rt.scratch_dir().join("lib-root"))
        .with_init_binary(env!("CARGO_BIN_EXE_husk"));
    let limit = 24 * MIB;
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .set(
            "/linux/resources/memory",
            json!({"limit": limit, "swap": limit}),
        )
        .sh("read go < /shared/go; \
             (echo 1000 > /proc/self/oom_score_adj; x=$(head -c 400000000 /dev/zero | tr '\\0' a)); echo $? > /shared/rc; \
             exec sleep 1000");
    let go = make_fifo(&bundle, "go");
    let id = unique_id("lib");
    let _guard = LibGuard(&lib, id.clone());
    let mut c = lib
        .create(&id, bundle.path(), &Default::default())
        .expect("create");
    c.start().expect("start");
    assert_eq!(c.status(), husk::Status::Running);

    c.pause().expect("pause");
    assert_eq!(c.status(), husk::Status::Paused);
    assert!(matches!(c.pause(), Err(husk::Error::WrongState { .. })));
    c.resume().expect("resume");
    assert_eq!(c.status(), husk::Status::Running);
    assert!(matches!(c.resume(), Err(husk::Error::WrongState { .. })));

    let stats = c.stats().expect("stats");
    let memory = stats.memory.expect("memory stats");
    assert_eq!(memory.usage.limit, limit);
    assert!(stats.pids.expect("pids stats").current >= 1);
    assert_eq!(c.oom_kill_count().expect("oom count"), 0);
    assert!(!c.oom_killed().unwrap());

    let update: husk::oci_spec::runtime::LinuxResources =
        serde_json::from_value(json!({"pids": {"limit": 5}})).unwrap();
    c.update(&update).expect("update");
    assert_eq!(c.stats().unwrap().pids.unwrap().limit, Some(5));

    let events = c.events(Duration::from_millis(200)).expect("events");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for event in events {
            if tx.send(event.map_err(|e| e.to_string())).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(WAIT).expect("a first event");
    assert!(matches!(first, Ok(husk::Event::Stats(_))), "{first:?}");
    send(&go, "go");
    let deadline = Instant::now() + OOM_WAIT;
    let mut got_oom = false;
    while !got_oom && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Ok(husk::Event::Oom)) => got_oom = true,
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => panic!("event error: {e}"),
        }
    }
    assert!(got_oom, "no Event::Oom");
    let rc_written = wait_for(
        || bundle.read_shared("rc").is_some_and(|s| s.ends_with('\n')),
        OOM_WAIT,
    );
    assert!(
        rc_written,
        "no exit status of the memory hog; container {:?}, pids {:?}, OOM kills {:?}\n{}",
        c.status(),
        c.pids(),
        c.oom_kill_count(),
        kernel_oom_log()
    );
    assert_eq!(read_shared_trimmed(&bundle, "rc").unwrap(), "137");
    assert!(c.oom_kill_count().unwrap() >= 1);
    assert!(c.oom_killed().unwrap());

    lib.load(&id).unwrap().delete(true).expect("delete");
    // The stream ends once the container is gone.
    let ended = wait_for(|| reader.is_finished(), WAIT);
    assert!(ended, "events did not end after delete");
    reader.join().unwrap();
}

//! Resource control through the CLI: limits seen from inside the container, `update`, `pause` /
//! `resume`, `ps`, `events` (stats and OOM), where cgroups go (`linux.cgroupsPath`) and that none
//! are left behind. Runtime-agnostic (also run against runc; see RUNC_DIFFERENCES.md).
//!
//! Several checks read cgroup v1 files (the development host is v1 hybrid); on another host they
//! fail naming the cgroup mode instead of passing without checking. The `library_*` test drives the
//! husk library directly, whatever `HUSK_TEST_RUNTIME` says.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use husk_testing::{
    existing_cgroups, is_gone, unique_id, wait_for, Bundle, ContainerGuard, OutputExt, Runtime,
    Spawned,
};
use serde_json::{json, Value};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(20);
const MIB: u64 = 1 << 20;
/// v1 controllers whose cgroup a container must be in (named hierarchies aside).
const V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids", "blkio",
];

/// Panics unless the host has cgroup v1 controllers mounted (v1 or hybrid).
fn require_v1() {
    let v2_only = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert!(
        !v2_only && Path::new("/sys/fs/cgroup/memory").is_dir(),
        "this test reads cgroup v1 files, but the host is cgroup v2 only (or has no v1 memory \
         hierarchy); the v2 paths are covered by unit tests over a fake cgroupfs"
    );
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
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        if controllers.is_empty() {
            out.push((String::new(), path.to_owned()));
        }
        for c in controllers.split(',') {
            if V1_CONTROLLERS.contains(&c) {
                out.push((c.to_owned(), path.to_owned()));
            }
        }
    }
    out
}

/// The host directory of `pid`'s cgroup for a v1 controller.
fn cgroup_dir_of(pid: i32, controller: &str) -> PathBuf {
    let (_, path) = proc_cgroups(&pid.to_string())
        .into_iter()
        .find(|(c, _)| c == controller)
        .unwrap_or_else(|| panic!("pid {pid} has no {controller} cgroup"));
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'))
}

fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// Removes cgroup directories a test made (or made a runtime make) when dropped, deepest first.
struct CgroupCleanup(Vec<PathBuf>);

impl Drop for CgroupCleanup {
    fn drop(&mut self) {
        let mut dirs = std::mem::take(&mut self.0);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Removes, when dropped, every cgroup directory whose name contains the tag, in every hierarchy
/// (named and cgroup2 ones included), deepest first.
struct CgroupTagCleanup(String);

impl Drop for CgroupTagCleanup {
    fn drop(&mut self) {
        drop(CgroupCleanup(cgroup_dirs_named(&self.0)));
    }
}

/// Every directory below each hierarchy whose name contains `tag` (the host-wide leak check).
fn cgroup_dirs_named(tag: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, tag: &str, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            if entry.file_name().to_string_lossy().contains(tag) {
                out.push(path.clone());
            }
            if depth < 6 {
                walk(&path, tag, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), tag, 0, &mut out);
    out
}

#[test]
fn memory_limit_oom_kills_and_events_report_it() {
    require_v1();
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
        WAIT,
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
        wait_for(|| event_lines(&mut events).contains(&oom), WAIT),
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
    // The stream ends by itself once the container is deleted.
    rt.run_ok(["delete", "--force", c.id()]);
    let out = events
        .wait_or_kill(WAIT)
        .unwrap_or_else(|o| panic!("events did not end after delete\n{}", o.describe()));
    assert!(out.status.success(), "{}", out.describe());
}

#[test]
fn fork_loop_stops_at_pids_limit() {
    require_v1();
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
    let pids_max = cgroup_dir_of(c.pid(), "pids").join("pids.max");
    assert_eq!(read_trimmed(&pids_max), "10");
    send(&go, "go");
}

#[test]
fn cpu_quota_throttles_and_stats_show_it() {
    require_v1();
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
    let percpu = after["cpu"]["usage"]["percpu"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!percpu.is_empty(), "no per-CPU usage: {after}");
}

#[test]
fn cpuset_pins_the_container() {
    require_v1();
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
    require_v1();
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .set("/linux/resources/cpu", json!({"cpus": "0", "mems": "0"}))
        .sh("exec sleep 1000");
    let c = rt.create(&bundle);
    let data = stats(&rt, c.id());
    assert_eq!(data["cpuset"]["cpus"], json!([0]), "{data}");
    assert_eq!(data["cpuset"]["mems"], json!([0]), "{data}");
}

/// A container that answers "what are my limits" from inside, on request.
struct LimitsProbe<'rt> {
    bundle: Bundle,
    ask: PathBuf,
    asked: u32,
    container: Option<ContainerGuard<'rt>>,
}

impl<'rt> LimitsProbe<'rt> {
    const FILES: [&'static str; 6] = [
        "memory/memory.limit_in_bytes",
        "pids/pids.max",
        "cpu/cpu.shares",
        "cpu/cpu.cfs_quota_us",
        "cpu/cpu.cfs_period_us",
        "cpuset/cpuset.cpus",
    ];

    fn start(rt: &'rt Runtime, resources: Value) -> LimitsProbe<'rt> {
        let files: Vec<String> = Self::FILES
            .iter()
            .map(|f| format!("/sys/fs/cgroup/{f}"))
            .collect();
        let bundle = Bundle::new(rt)
            .with_shared_dir()
            .set("/linux/resources", resources)
            .sh(&format!(
                // A read that meets only the end of a previous writer is retried.
                "while :; do read n < /shared/ask || continue; \
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
        assert_eq!(answer.len(), 1 + Self::FILES.len(), "{answer:?}");
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

#[test]
fn update_changes_limits_seen_inside() {
    require_v1();
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
        [
            (64 * MIB).to_string(),
            "100".into(),
            "1024".into(),
            "50000".into(),
            "100000".into(),
            "0-1".into()
        ]
    );

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
        [
            (48 * MIB).to_string(),
            "7".into(),
            "512".into(),
            "30000".into(),
            "200000".into(),
            "0".into()
        ]
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
        [
            (40 * MIB).to_string(),
            "9".into(),
            "256".into(),
            "-1".into(),
            "200000".into(),
            "0".into()
        ]
    );

    // What cannot be applied fails and changes nothing.
    for bad in [
        vec!["update", "--memory", "12x", &id],
        vec!["update", "--l3-cache-schema", "L3:0=f", &id],
        vec!["update", "--mem-bw-schema", "MB:0=50", &id],
        vec!["update", "--memory", "4k", &id], // below the current usage
    ] {
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

/// The freezer state of `pid`'s cgroup, as the kernel reports it.
fn freezer_state(pid: i32) -> String {
    let path = cgroup_dir_of(pid, "freezer").join("freezer.state");
    read_trimmed(&path)
}

#[test]
fn pause_freezes_every_process_and_resume_thaws() {
    require_v1();
    let rt = runtime();
    let (bundle, c) = counters(&rt);
    assert!(all_counters_advance(&bundle, &[None, None, None]));
    let pids = ps_pids(&rt, c.id());
    assert!(pids.len() >= 4, "init and three loops expected: {pids:?}");

    rt.run_ok(["pause", c.id()]);
    assert_eq!(c.status(), "paused");
    let frozen = counter_values(&bundle);
    for pid in ps_pids(&rt, c.id()) {
        assert_eq!(freezer_state(pid), "FROZEN", "pid {pid}");
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
    let _cleanup = CgroupTagCleanup(cgroups_path.trim_start_matches('/').to_owned());
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
    let left = cgroup_dirs_named(&tag);
    let _cleanup = CgroupCleanup(left.clone());
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    assert!(
        rt.state_dir_entries().is_empty(),
        "{:?}",
        rt.state_dir_entries()
    );
}

/// The runtime's (and this test's) own cgroup for `controller`.
fn own_cgroup(controller: &str) -> String {
    proc_cgroups("self")
        .into_iter()
        .find(|(c, _)| c == controller)
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no {controller} line in /proc/self/cgroup"))
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
    let mut leaves = Vec::new();
    for (controller, path) in proc_cgroups(&pid.to_string()) {
        if controller.is_empty() {
            continue; // cgroup2 in hybrid mode: joined by both runtimes, no controllers to check
        }
        let expected = if relative.starts_with('/') {
            relative.to_owned()
        } else {
            let own = own_cgroup(&controller);
            format!("{}/{relative}", own.trim_end_matches('/'))
        };
        assert_eq!(path, expected, "{controller} cgroup of {cgroups_path:?}");
        let dir = Path::new("/sys/fs/cgroup")
            .join(&controller)
            .join(expected.trim_start_matches('/'));
        leaves.push(dir);
    }
    assert!(!leaves.is_empty());
    let pids_dir = leaves
        .iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/pids"))
        .expect("pids hierarchy");
    assert_eq!(read_trimmed(&pids_dir.join("pids.max")), "17");
    rt.run_ok(["delete", "--force", c.id()]);
    for leaf in &leaves {
        assert!(!leaf.exists(), "{} left after delete", leaf.display());
    }
}

#[test]
fn cgroups_path_absolute_relative_and_default() {
    require_v1();
    let rt = runtime();
    let tag = unique_id("husk-res-place");
    let _cleanup = CgroupTagCleanup(tag.clone());
    check_placement(&rt, Some(&format!("/{tag}-abs/leaf")));
    check_placement(&rt, Some(&format!("{tag}-rel/leaf")));
    check_placement(&rt, None);
}

#[test]
fn joins_an_existing_cgroup() {
    require_v1();
    let rt = runtime();
    let path = format!("/{}", unique_id("husk-res-join"));
    let mut made = Vec::new();
    for controller in V1_CONTROLLERS {
        let root = Path::new("/sys/fs/cgroup").join(controller);
        let dir = root.join(path.trim_start_matches('/'));
        // cpu and cpuacct can share one hierarchy: create each directory once.
        if dir.exists() {
            continue;
        }
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        made.push(dir.clone());
        if *controller == "cpuset" {
            // A usable pre-existing cpuset has its CPUs and memory nodes.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                std::fs::write(dir.join(file), read_trimmed(&root.join(file))).unwrap();
            }
        }
    }
    let _cleanup = CgroupCleanup(made);
    // The runtime also makes it in the hierarchies not listed above (cgroup2, name=systemd).
    let _tag_cleanup = CgroupTagCleanup(path.trim_start_matches('/').to_owned());
    let pids_dir = Path::new("/sys/fs/cgroup/pids").join(path.trim_start_matches('/'));
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
fn systemd_cgroup_driver_without_systemd_is_refused() {
    let rt = runtime();
    let systemd = Path::new("/run/systemd/system").exists();
    assert!(
        !systemd,
        "this test checks a host without systemd (husk has no systemd cgroup driver; runc would use it here)"
    );
    let bundle = Bundle::new(&rt).sh("true");
    let id = unique_id("sd");
    let _guard = rt.guard(id.clone());
    let out = rt.run_fail([
        "--systemd-cgroup",
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    let expected = if rt.is_runc() {
        "systemd not running on this host"
    } else {
        "systemd cgroup driver: no systemd instance reachable"
    };
    assert!(out.stderr_str().contains(expected), "{}", out.describe());
    assert!(
        rt.state_dir_entries().is_empty(),
        "{:?}",
        rt.state_dir_entries()
    );
    // Commands that make no cgroups accept the flag.
    rt.run_ok(["--systemd-cgroup", "list"]);
}

#[test]
fn kernel_memory_options() {
    require_v1();
    let rt = runtime();
    let bundle = Bundle::new(&rt).sh("exec sleep 1000");
    let c = rt.create(&bundle);
    let memory = cgroup_dir_of(c.pid(), "memory");
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
    require_v1();
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
    let deadline = Instant::now() + WAIT;
    let mut got_oom = false;
    while !got_oom && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Ok(husk::Event::Oom)) => got_oom = true,
            Ok(Ok(husk::Event::Stats(_))) | Err(_) => {}
            Ok(Err(e)) => panic!("event error: {e}"),
        }
    }
    assert!(got_oom, "no Event::Oom");
    let rc_written = wait_for(
        || bundle.read_shared("rc").is_some_and(|s| s.ends_with('\n')),
        WAIT,
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

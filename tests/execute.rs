//! One-shot sandboxed execution (`husk::Runtime::execute`) on an image installed from the test
//! rootfs: isolation of concurrent executions, OOM kills, timeouts, output caps, validation,
//! and that nothing (mounts, cgroups, state, processes) is left behind.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use husk::{ExecuteError, ExecuteSpec, Network};
use husk_testing::images::{
    processes_in_cgroup, rootfs_tarball, state_left, tree_snapshot, FileStamp,
};
use husk_testing::{mounts_under, require_root, TempDir};

/// A library runtime with its own state root, image store (busybox installed) and cgroup
/// parent, all private to one test.
struct Env {
    scratch: TempDir,
    rt: husk::Runtime,
    cgroup_parent: String,
    image_tree: BTreeMap<PathBuf, FileStamp>,
    image_dirs: Vec<PathBuf>,
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Env {
    fn new() -> Env {
        require_root();
        let scratch = TempDir::new("husk-execute");
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cgroup_parent = format!("husk-test-execute-{}-{n}", std::process::id());
        let rt = husk::Runtime::builder()
            .state_root(scratch.path().join("state"))
            .store(scratch.path().join("store"))
            .cgroup_parent(format!("/{cgroup_parent}"))
            .init_binary(env!("CARGO_BIN_EXE_husk"))
            .build();
        let tarball = rootfs_tarball();
        let image = rt
            .install_image(
                husk::image::ImageSource::RootfsTar(tarball.clone()),
                "busybox",
                &Default::default(),
            )
            .unwrap_or_else(|e| panic!("install {}: {e}", tarball.display()));
        let mut image_dirs = image.layers.clone();
        image_dirs.push(image.rootfs.clone());
        let image_tree = tree_snapshot(&image_dirs);
        Env {
            scratch,
            rt,
            cgroup_parent,
            image_tree,
            image_dirs,
        }
    }

    /// Everything an execution may have made is gone, and the image is as installed.
    fn assert_nothing_left(&self) {
        let state = self.scratch.path().join("state");
        let mounts = mounts_under(self.scratch.path());
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        let left = state_left(&state);
        assert!(
            left.is_empty(),
            "state left under {}: {left:?}",
            state.display()
        );
        for cg in self.cgroup_dirs() {
            let children: Vec<_> = std::fs::read_dir(&cg)
                .map(|d| d.flatten().filter(|e| e.path().is_dir()).collect())
                .unwrap_or_default();
            assert!(
                children.is_empty(),
                "cgroups left in {}: {children:?}",
                cg.display()
            );
        }
        let procs = processes_in_cgroup(&self.cgroup_parent);
        assert!(procs.is_empty(), "processes left: {procs:?}");
        assert!(
            tree_snapshot(&self.image_dirs) == self.image_tree,
            "the image's files changed"
        );
    }

    /// The test's cgroup parent in every hierarchy where it exists.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            for dir in [
                entry.path().join(&self.cgroup_parent),
                // cgroup2 mounted at the root (v2 hosts).
                Path::new("/sys/fs/cgroup").join(&self.cgroup_parent),
            ] {
                if dir.is_dir() && !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
        dirs
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for dir in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn twenty_concurrent_executions_each_see_only_their_own_writes() {
    let env = Env::new();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let rt = &env.rt;
                s.spawn(move || {
                    let script =
                        format!("echo {i} > /written-{i} && ls / | grep written; cat /written-{i}");
                    // Root, so that the image's root directory is writable.
                    let spec = ExecuteSpec::new("busybox", ["sh", "-c", &script])
                        .user("0:0")
                        .timeout(Duration::from_secs(120));
                    (i, rt.execute(&spec))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, result) in results {
        let r = result.unwrap_or_else(|e| panic!("execution {i}: {e}"));
        assert_eq!(
            (r.exit_code, text(&r.stdout)),
            (Some(0), format!("written-{i}\n{i}\n")),
            "execution {i} (stderr {:?})",
            text(&r.stderr)
        );
        assert!(!r.timed_out && !r.oom_killed);
    }
    env.assert_nothing_left();
}

#[test]
fn stdin_env_cwd_exit_code_and_the_sandbox_defaults() {
    let env = Env::new();
    let script = "cat; echo \"$GREETING\"; pwd; id -u; ls /sys/class/net; exit 3";
    let spec = ExecuteSpec::new("busybox", ["sh", "-c", script])
        .stdin("from stdin\n")
        .env("GREETING", "hello")
        .cwd("/tmp");
    let r = env.rt.execute(&spec).expect("execute");
    // 65534: the hardened profile's user; only `lo`: no network.
    assert_eq!(
        text(&r.stdout),
        "from stdin\nhello\n/tmp\n65534\nlo\n",
        "stderr: {}",
        text(&r.stderr)
    );
    assert_eq!((r.exit_code, r.signal, r.timed_out), (Some(3), None, false));
    env.assert_nothing_left();
}

#[test]
fn a_memory_hog_is_oom_killed_and_says_so() {
    let env = Env::new();
    // tail keeps the last lines: /dev/zero has no newline, so it grows without end.
    let spec = ExecuteSpec::new("busybox", ["tail", "/dev/zero"])
        .memory_limit(32 << 20)
        .timeout(Duration::from_secs(120));
    let r = env.rt.execute(&spec).expect("execute");
    assert!(r.oom_killed, "not reported as OOM-killed: {r:?}");
    assert_eq!(r.signal, Some(9), "{r:?}");
    assert!(!r.timed_out);
    env.assert_nothing_left();
}

#[test]
fn sleep_past_the_timeout_is_killed_at_the_deadline() {
    let env = Env::new();
    let spec = ExecuteSpec::new("busybox", ["sleep", "100"]).timeout(Duration::from_secs(1));
    let r = env.rt.execute(&spec).expect("execute");
    assert!(r.timed_out, "{r:?}");
    assert_eq!(r.signal, Some(9));
    assert!(r.duration >= Duration::from_secs(1), "{:?}", r.duration);
    assert!(r.duration < Duration::from_secs(30), "{:?}", r.duration);
    env.assert_nothing_left();
}

#[test]
fn output_is_truncated_at_the_cap_without_blocking_the_writer() {
    let env = Env::new();
    // 1 MB: far more than a pipe holds, so the process would block if the rest were not read.
    let script = "head -c 1000000 /dev/zero | tr '\\0' x; echo done >&2";
    let spec = ExecuteSpec::new("busybox", ["sh", "-c", script])
        .output_limit(1000)
        .timeout(Duration::from_secs(120));
    let r = env.rt.execute(&spec).expect("execute");
    assert_eq!(r.stdout, vec![b'x'; 1000]);
    assert!(r.stdout_truncated);
    assert_eq!(
        (text(&r.stderr), r.stderr_truncated),
        ("done\n".into(), false)
    );
    assert_eq!(r.exit_code, Some(0));
    env.assert_nothing_left();
}

#[test]
fn refused_requests_fail_before_anything_is_created() {
    let env = Env::new();
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ok = ExecuteSpec::new("busybox", ["true"]);
    let cases = [
        (ok.clone().privileged(true), ExecuteError::Privileged),
        (ok.clone().network(Network::Host), ExecuteError::HostNetwork),
        (
            ExecuteSpec::new("no-such-image", ["true"]),
            ExecuteError::UnknownImage("docker.io/library/no-such-image:latest".into()),
        ),
        (
            ok.clone().timeout(Duration::ZERO),
            ExecuteError::ZeroTimeout,
        ),
    ];
    for (spec, expected) in cases {
        match env.rt.execute(&spec) {
            Err(husk::Error::Execute(e)) => {
                if let (ExecuteError::UnknownImage(_), ExecuteError::UnknownImage(_)) =
                    (&e, &expected)
                {
                    assert!(e.to_string().contains("no-such-image"), "{e}");
                } else {
                    assert_eq!(e, expected);
                }
            }
            other => panic!("expected {expected:?}, got {other:?}"),
        }
        // Nothing at all: not even the state root.
        assert!(
            !env.scratch.path().join("state").exists(),
            "{expected:?}: the state root was created"
        );
        assert!(
            env.cgroup_dirs().is_empty(),
            "{expected:?}: a cgroup was created"
        );
    }
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ours = |m: &str| {
        m.lines()
            .filter(|l| l.contains(env.scratch.path().to_str().unwrap()))
            .count()
    };
    assert_eq!(ours(&mounts_before), ours(&mounts_after));
    env.assert_nothing_left();
}

#[test]
fn execute_from_a_thread_of_a_program_whose_other_threads_keep_running() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let env = Env::new();
    let stop = AtomicBool::new(false);
    let work = AtomicU64::new(0);
    let lock = std::sync::Mutex::new(Vec::<u64>::new());
    std::thread::scope(|s| {
        // An embedder's own threads: busy with work of their own (allocating, holding a lock
        // now and then) before, during and after the executions.
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let n = work.fetch_add(1, Ordering::Relaxed);
                    let mut v = lock.lock().unwrap();
                    v.push(n);
                    if v.len() > 1000 {
                        v.clear();
                    }
                    drop(v);
                    std::thread::yield_now();
                }
            });
        }
        while work.load(Ordering::Relaxed) < 1000 {
            std::thread::yield_now();
        }
        // execute, from a thread spawned while the others run, twice over.
        let results = s
            .spawn(|| {
                (0..2)
                    .map(|i| {
                        let script = format!("echo run {i}; cat; exit {i}");
                        let spec = ExecuteSpec::new("busybox", ["sh", "-c", &script])
                            .stdin("from the embedder\n")
                            .timeout(Duration::from_secs(120));
                        env.rt.execute(&spec)
                    })
                    .collect::<Vec<_>>()
            })
            .join()
            .expect("the executing thread panicked");
        let during = work.load(Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        for (i, r) in results.into_iter().enumerate() {
            let r = r.unwrap_or_else(|e| panic!("execute {i} from a threaded program: {e}"));
            assert_eq!(
                (r.exit_code, text(&r.stdout)),
                (Some(i as i32), format!("run {i}\nfrom the embedder\n")),
                "stderr: {}",
                text(&r.stderr)
            );
        }
        assert!(during > 1000, "the other threads stopped working");
    });
    env.assert_nothing_left();
}

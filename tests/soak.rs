//! Soak test (issue 16): many containers through the library from a multi-threaded program,
//! which ends with no failure, no zombie, no leaked fd, no cgroup and no state left.
//!
//! The test binary is the embedding program (hence `harness = false`): `main` calls
//! `husk::init_if_requested()` first, as the README asks, and only then starts its threads, which
//! each call the API. Sized by the environment:
//! - `HUSK_SOAK_N`: containers in all (default 200; the long run is 10000);
//! - `HUSK_SOAK_CONCURRENCY`: threads, each running one container at a time (default 20).
//!
//! Every 10th container runs until killed, after a process exec'd in it was dropped without a
//! wait (it must still be reaped); every 25th is created and deleted without being started;
//! every 50th (from the 5th) names a program that does not exist, so its create must fail
//! cleanly; the others run `exit 3` and must report exactly that.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use husk::{ExitStatus, Signal};
use husk_testing::{existing_cgroups, zombie_children, Bundle, Runtime};

fn main() {
    // First, before any thread: re-executed as a container's init, this never returns.
    husk::init_if_requested();
    let count = env_number("HUSK_SOAK_N", 200);
    let concurrency = env_number("HUSK_SOAK_CONCURRENCY", 20).max(1);
    soak(count, concurrency);
    println!("test soak ... ok");
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The kind of run container `i` gets.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// `exit 3`: create, start, wait (Exited(3)), delete.
    Exits,
    /// Runs until killed; a process exec'd in it is dropped unwaited first.
    Killed,
    /// Created and deleted, never started.
    NeverStarted,
    /// Its program does not exist: create fails, leaving nothing.
    CreateFails,
}

fn kind(i: usize) -> Kind {
    if i % 50 == 5 {
        Kind::CreateFails
    } else if i.is_multiple_of(25) {
        Kind::NeverStarted
    } else if i.is_multiple_of(10) {
        Kind::Killed
    } else {
        Kind::Exits
    }
}

fn soak(count: usize, concurrency: usize) {
    let cli = Runtime::from_env(env!("CARGO_BIN_EXE_husk"));
    let quick = Bundle::new(&cli).args(["sh", "-c", "exit 3"]);
    let forever = Bundle::new(&cli).args(["sleep", "100000"]);
    let missing = Bundle::new(&cli).args(["/no/such/program"]);
    let root = cli.scratch_dir().join("soak-root");
    // The init is this binary (/proc/self/exe), entered through init_if_requested in main.
    let rt = husk::Runtime::new(&root);
    let prefix = format!("soak-{}", std::process::id());

    // One container first, so that whatever the library keeps open for good is counted in.
    let bundles = [quick.path(), forever.path(), missing.path()];
    run_one(&rt, &format!("{prefix}-warmup"), 1, bundles).expect("warm-up container");
    let fds_before = open_fds();

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::<String>::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..concurrency {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let id = format!("{prefix}-{i}");
                if let Err(e) = run_one(&rt, &id, i, bundles) {
                    failures.lock().unwrap().push(format!("{id}: {e}"));
                }
            });
        }
    });
    let elapsed = started.elapsed();

    let failures = failures.into_inner().unwrap();
    let zombies = zombie_children();
    let fds_after = open_fds();
    let leftover_state: Vec<String> = std::fs::read_dir(&root)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let leftover_cgroups: Vec<_> = (0..count)
        .flat_map(|i| existing_cgroups(&format!("{prefix}-{i}")))
        .collect();
    println!(
        "soak: {count} containers, concurrency {concurrency}, {:.1} s ({:.1} ms each), \
         {} failures, {} zombies, fds {} -> {}, {} state dirs and {} cgroups left",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / count.max(1) as f64,
        failures.len(),
        zombies.len(),
        fds_before.len(),
        fds_after.len(),
        leftover_state.len(),
        leftover_cgroups.len(),
    );
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(zombies.is_empty(), "zombie children left: {zombies:?}");
    assert_eq!(fds_before, fds_after, "descriptors leaked");
    assert!(leftover_state.is_empty(), "state left: {leftover_state:?}");
    assert!(
        leftover_cgroups.is_empty(),
        "cgroups left: {leftover_cgroups:?}"
    );
}

/// One container's life through the library; any surprise is an error naming it.
fn run_one(rt: &husk::Runtime, id: &str, i: usize, bundles: [&Path; 3]) -> Result<(), String> {
    let [quick, forever, missing] = bundles;
    let kind = kind(i);
    if kind == Kind::CreateFails {
        return match rt.create(id, missing, &Default::default()) {
            Err(husk::Error::Init(_)) => Ok(()),
            Err(e) => Err(format!("create of a missing program: {e}")),
            Ok(c) => {
                let _ = c.delete(true);
                Err("create of a missing program succeeded".into())
            }
        };
    }
    let bundle = if kind == Kind::Exits { quick } else { forever };
    let mut c = rt
        .create(id, bundle, &Default::default())
        .map_err(|e| format!("create: {e}"))?;
    if c.pid().is_none() {
        return Err("create returned without a pid".into());
    }
    if kind == Kind::NeverStarted {
        return c.delete(false).map_err(|e| format!("delete created: {e}"));
    }
    c.start().map_err(|e| format!("start: {e}"))?;
    let expected = if kind == Kind::Killed {
        let p = husk::Command::new("sleep")
            .arg("100000")
            .spawn(&c)
            .map_err(|e| format!("exec: {e}"))?;
        drop(p);
        c.kill(Signal::SIGKILL, false)
            .map_err(|e| format!("kill: {e}"))?;
        ExitStatus::Signaled(9)
    } else {
        ExitStatus::Exited(3)
    };
    let status = c
        .wait_timeout(Duration::from_secs(60))
        .map_err(|e| format!("wait: {e}"))?
        .ok_or("wait: still running after 60 s")?;
    if status != expected {
        return Err(format!("ended with {status}, expected {expected}"));
    }
    c.delete(false).map_err(|e| format!("delete: {e}"))
}

/// The descriptors open in this process.
fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let target = std::fs::read_link(e.path()).unwrap_or_default();
                    format!(
                        "{} -> {}",
                        e.file_name().to_string_lossy(),
                        target.display()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    // The directory handle read_dir itself held.
    fds.retain(|f| !f.ends_with(&format!("/proc/{}/fd", std::process::id())));
    fds
}

//! Process lifecycle: the order of the init's reports, big configs, and who reaps what
//! (issue 16).

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::process::Stdio;
use std::time::Duration;

use husk::ExitStatus;
use husk_testing::{is_child, unique_id, wait_for, zombie_children, Bundle, Runtime, Spawned};
use nix::sys::signal::Signal;

const WAIT: Duration = Duration::from_secs(20);

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// The library, with a state root of the test's own and the husk binary as the init.
fn engine(rt: &Runtime) -> husk::Runtime {
    husk::Runtime::new(rt.scratch_dir().join("lib-root"))
        .with_init_binary(env!("CARGO_BIN_EXE_husk"))
}

/// A container's process that runs until killed.
fn forever(rt: &Runtime) -> Bundle {
    Bundle::new(rt).sh("while true; do sleep 1; done")
}

/// Bug 1: stage 1 reports the container's pid and stage 2 reports `Ready`. With the return of
/// stage 1's clone delayed by 300 ms (strace's fault injection), stage 2 is ready long before
/// stage 1 can send the pid: `create` must still record the pid, and `start` must work.
#[test]
fn create_records_the_pid_when_the_fork_returns_late() {
    let rt = runtime();
    if std::process::Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("skipped: strace is not installed");
        return;
    }
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .sh("echo started > /shared/started");
    let guard = rt.guard(unique_id("race"));
    let rc_file = bundle.path().join("create-rc");
    let create = rt.cmd([
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        guard.id(),
    ]);
    let create_line = std::iter::once(create.get_program())
        .chain(create.get_args())
        .map(|a| format!("'{}'", a.to_str().unwrap()))
        .collect::<Vec<_>>()
        .join(" ");
    // strace follows the container's init until it exits, so the create's own exit status
    // goes through a file; the test waits for that, not for strace.
    let mut strace = std::process::Command::new("strace");
    strace
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=clone,clone3"])
        .args(["-e", "inject=clone:delay_exit=300000"])
        .args(["sh", "-c"])
        .arg(format!(
            "{create_line} >/dev/null 2>&1; echo $? > '{}'",
            rc_file.display()
        ))
        .stdin(Stdio::null());
    let traced = Spawned::start(&mut strace);
    assert!(
        wait_for(|| rc_file.exists(), WAIT),
        "create under strace did not finish"
    );
    assert!(wait_for(
        || std::fs::read_to_string(&rc_file).is_ok_and(|s| s.ends_with('\n')),
        WAIT
    ));
    let rc = std::fs::read_to_string(&rc_file).unwrap();
    let state = rt.state(guard.id());
    assert_eq!(rc.trim(), "0", "create failed; state: {state}");
    assert!(
        state["pid"].as_i64().is_some_and(|p| p > 0),
        "create returned without the container's pid: {state}"
    );
    assert_eq!(state["status"], "created", "{state}");
    guard.start();
    assert!(
        wait_for(|| bundle.read_shared("started").is_some(), WAIT),
        "the container's process did not run"
    );
    assert!(guard.wait_status("stopped", WAIT));
    let _ = traced.wait_or_kill(WAIT);
}

/// Bug 1 for exec: joining the container's pid namespace, exec forks as create does, and the
/// same late clone return must not lose the process's pid (its exit code is the exec's). The
/// host reads an exec's messages until end of file, so the pid came in time even before the
/// fix: this guards the ordering against regressions.
#[test]
fn exec_reports_the_exit_code_when_the_fork_returns_late() {
    let rt = runtime();
    if std::process::Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("skipped: strace is not installed");
        return;
    }
    let bundle = forever(&rt);
    let guard = rt.create(&bundle);
    guard.start();
    let exec = rt.cmd(["exec", guard.id(), "sh", "-c", "exit 7"]);
    let out = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=clone,clone3"])
        .args(["-e", "inject=clone:delay_exit=300000"])
        .arg(exec.get_program())
        .args(exec.get_args())
        .stdin(Stdio::null())
        .output()
        .expect("run exec under strace");
    assert_eq!(
        out.status.code(),
        Some(7),
        "exec under a late fork: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 11: a config.json of over a megabyte (Kubernetes service links make envs this big, and
/// many mounts) is more than a socket message can carry: the bootstrap must still reach the init,
/// and the container must see all of it.
#[test]
fn a_config_over_a_megabyte_reaches_the_container() {
    let rt = runtime();
    const VARS: usize = 2000;
    const VALUE_LEN: usize = 500;
    const MOUNTS: usize = 200;
    let bundle = Bundle::new(&rt).with_shared_dir().edit(|config| {
        let env = config["process"]["env"].as_array_mut().unwrap();
        for i in 0..VARS {
            env.push(format!("BIG_{i}={}", "x".repeat(VALUE_LEN)).into());
        }
        let mounts = config["mounts"].as_array_mut().unwrap();
        for i in 0..MOUNTS {
            mounts.push(serde_json::json!({
                "destination": format!("/big/m{i}"),
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["size=64k"],
            }));
        }
    });
    let bundle = bundle.sh("env | grep -c '^BIG_' > /shared/vars; \
         printf %s \"$BIG_1999\" | wc -c > /shared/len; \
         grep -c ' /big/m' /proc/self/mounts > /shared/mounts");
    let size = std::fs::metadata(bundle.config_path()).unwrap().len();
    assert!(size > 1_000_000, "config.json is only {size} bytes");
    let out = rt.run_bundle(&bundle);
    assert!(out.status.success(), "run failed: {out:?}");
    let read = |name: &str| {
        bundle
            .read_shared(name)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(read("vars"), VARS.to_string());
    assert_eq!(read("len"), VALUE_LEN.to_string());
    assert_eq!(read("mounts"), MOUNTS.to_string());
}

/// Bug 2: the init of a container this program created is its child; `delete` must reap it,
/// whether the container was never started, is running (force), or its handle was dropped
/// and the container loaded again.
#[test]
fn delete_reaps_the_init_this_program_created() {
    let rt = runtime();
    let lib = engine(&rt);
    let bundle = forever(&rt);

    let c = lib
        .create(&unique_id("reap"), bundle.path(), &Default::default())
        .expect("create");
    let pid = c.pid().expect("pid");
    c.delete(false).expect("delete a created container");
    assert!(
        !is_child(pid),
        "delete of a never-started container left its init {pid} as a zombie of ours"
    );

    let mut c = lib
        .create(&unique_id("reap"), bundle.path(), &Default::default())
        .expect("create");
    c.start().expect("start");
    let pid = c.pid().expect("pid");
    c.delete(true).expect("force delete");
    assert!(
        !is_child(pid),
        "force delete of a running container left its init {pid} as a zombie of ours"
    );

    let id = unique_id("reap");
    let mut c = lib
        .create(&id, bundle.path(), &Default::default())
        .expect("create");
    c.start().expect("start");
    let pid = c.pid().expect("pid");
    drop(c);
    lib.load(&id)
        .expect("load")
        .delete(true)
        .expect("force delete");
    assert!(
        !is_child(pid),
        "force delete through a second handle left the init {pid} as a zombie of ours"
    );
}

/// Bug 3: a process exec'd through the library and dropped without `wait` stays our child.
/// Unreaped, it keeps the container's PID 1 in the kernel's `zap_pid_ns_processes` once the
/// init is killed, so a wait on the init never ends and a delete leaves the init alive. The
/// library must reap it.
#[test]
fn a_dropped_exec_process_hangs_neither_wait_nor_delete() {
    let rt = runtime();
    let lib = engine(&rt);
    let bundle = forever(&rt);

    // Wait on the init after the exec'd process was dropped.
    let mut c = lib
        .create(&unique_id("drop"), bundle.path(), &Default::default())
        .expect("create");
    c.start().expect("start");
    let init = c.pid().expect("pid");
    let p = husk::Command::new("sleep")
        .arg("1000")
        .spawn(&c)
        .expect("exec");
    let exec_pid = p.pid();
    drop(p);
    assert_eq!(c.try_wait().expect("try_wait"), None, "the init is running");
    c.kill(Signal::SIGKILL, false).expect("kill");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let status = c.wait();
        let _ = tx.send((status, c));
    });
    let (status, c) = rx
        .recv_timeout(WAIT)
        .expect("Container::wait hung after a dropped exec'd process");
    assert_eq!(status.expect("wait"), ExitStatus::Signaled(9));
    assert_eq!(
        c.try_wait().expect("try_wait"),
        Some(ExitStatus::Signaled(9))
    );
    c.delete(false).expect("delete");
    assert!(!is_child(init), "init {init} left as our zombie");
    assert!(!is_child(exec_pid), "exec'd {exec_pid} left as our zombie");

    // Force-delete right after the exec'd process was dropped.
    let mut c = lib
        .create(&unique_id("drop"), bundle.path(), &Default::default())
        .expect("create");
    c.start().expect("start");
    let init = c.pid().expect("pid");
    let p = husk::Command::new("sleep")
        .arg("1000")
        .spawn(&c)
        .expect("exec");
    let exec_pid = p.pid();
    drop(p);
    c.delete(true).expect("force delete");
    assert!(
        !is_child(init),
        "delete -f left the init {init} alive or a zombie"
    );
    assert!(
        !is_child(exec_pid),
        "delete -f left exec'd {exec_pid} a zombie"
    );
    let _ = zombie_children;
}

/// The RAII guard: an error (`?`) between create and delete leaves nothing running and no
/// zombie; `into_inner` keeps the container.
#[test]
fn a_guard_force_deletes_and_reaps_on_drop() {
    let rt = runtime();
    let lib = engine(&rt);
    let bundle = forever(&rt);
    let id = unique_id("guard");
    let mut init = 0;
    let result: husk::Result<()> = (|| {
        let mut c = lib.create(&id, bundle.path(), &Default::default())?.guard();
        c.start()?;
        init = c.pid().unwrap_or(0);
        // A failing step: the guard goes out of scope with the container running.
        Err(husk::Error::NotFound("something else".into()))
    })();
    assert!(result.is_err());
    assert!(init > 0);
    assert!(
        matches!(lib.load(&id), Err(husk::Error::NotFound(_))),
        "the guard did not delete the container"
    );
    assert!(
        !is_child(init),
        "the guard left the init {init} as our zombie"
    );

    let id = unique_id("guard");
    let c = lib
        .create(&id, bundle.path(), &Default::default())
        .expect("create")
        .guard()
        .into_inner();
    drop(c);
    let c = lib.load(&id).expect("into_inner kept the container");
    assert_eq!(c.status(), husk::Status::Created);
    c.delete(true).expect("delete");
}

/// `Process::try_wait`, `wait_timeout` and `pidfd`: a caller can wait on many processes
/// without a thread each. `ExitStatus` says whether it succeeded and prints itself.
#[test]
fn processes_can_be_polled_through_their_pidfd() {
    let rt = runtime();
    let lib = engine(&rt);
    let bundle = forever(&rt);
    let mut c = lib
        .create(&unique_id("poll"), bundle.path(), &Default::default())
        .expect("create")
        .guard();
    c.start().expect("start");
    let quick = husk::Command::new("sh")
        .args(["-c", "exit 0"])
        .spawn(&c)
        .expect("exec");
    let slow = husk::Command::new("sh")
        .args(["-c", "sleep 0.3; exit 2"])
        .spawn(&c)
        .expect("exec");
    assert_eq!(
        slow.wait_timeout(Duration::from_millis(20)).expect("wait"),
        None
    );
    // One poll over both pidfds until each has ended.
    let mut pending = vec![&quick, &slow];
    let deadline = std::time::Instant::now() + WAIT;
    while !pending.is_empty() && std::time::Instant::now() < deadline {
        let mut fds: Vec<libc::pollfd> = pending
            .iter()
            .map(|p| libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&p.pidfd().expect("pidfd")),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: fds is a valid array of pollfd for the duration of the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
        pending.retain(|p| p.try_wait().expect("try_wait").is_none());
    }
    assert!(pending.is_empty(), "processes did not end");
    let status = quick.try_wait().unwrap().unwrap();
    assert!(status.success());
    assert_eq!(status.to_string(), "exit code 0");
    let status = slow.try_wait().unwrap().unwrap();
    assert_eq!(status, ExitStatus::Exited(2));
    assert!(!status.success());
    assert_eq!(ExitStatus::Signaled(9).to_string(), "signal 9 (SIGKILL)");
}

//! Regression tests for classes of container escape that runtimes have had to fix. Each test
//! performs the attack from inside a container and checks that it fails.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use husk_testing::{require_root, wait_for, Bundle, Runtime, TempDir};

fn runtime_binary() -> PathBuf {
    require_root();
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
        .binary()
        .to_path_buf()
}

/// A private copy of the runtime binary in `dir`, under the original's file name (which the
/// harness uses to tell runc apart). The CVE-2019-5736 tests attack this copy, so that no other
/// test keeps it busy (ETXTBSY would hide the hole) and a successful attack harms nothing.
fn private_runtime_copy(dir: &Path) -> PathBuf {
    let original = runtime_binary();
    let copy = dir.join(original.file_name().unwrap());
    std::fs::copy(&original, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// CVE-2019-5736: a container process grabs /proc/1/exe while PID 1 is still the runtime's
/// init, waits until the runtime is gone, then writes through it to the runtime binary on the
/// host. `caps` are the container's capabilities: with CAP_SYS_PTRACE the attacker gets past
/// a non-dumpable init, so the binary itself must be out of reach.
fn proc_exe_attack(caps: &[&str]) {
    let dir = TempDir::new("husk-test-exe");
    let copy = private_runtime_copy(dir.path());
    let before = std::fs::read(&copy).unwrap();
    let rt = Runtime::with_binary(&copy);

    let caps = serde_json::json!(caps);
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .set(
            "/process/capabilities",
            serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps}),
        )
        .args(["sleep", "100"]);
    let c = rt.create(&bundle);
    // The attacker, started while the init (PID 1) still runs the runtime's code. Detached, so
    // that no runtime process waits for it (and keeps the binary busy).
    rt.run_ok([
        "exec",
        "-d",
        c.id(),
        "sh",
        "-c",
        // A failed redirection of `exec` ends the shell: an inner one holds the fd.
        "sh -c 'exec 3</proc/1/exe && echo held > /shared/held; \
         while [ ! -e /shared/go ]; do sleep 0.05; done; \
         (echo pwned >> /proc/self/fd/3) 2> /shared/error && echo WROTE > /shared/wrote; echo done > /shared/done' \
         || echo refused > /shared/held",
    ]);
    assert!(wait_for(
        || bundle.read_shared("held").is_some(),
        Duration::from_secs(10)
    ));
    c.start();
    if bundle.read_shared("held").unwrap().trim() == "held" {
        // The init has exec'd `sleep`: no runtime process is left running the binary.
        std::fs::write(bundle.shared_dir().join("go"), "").unwrap();
        assert!(wait_for(
            || bundle.read_shared("done").is_some(),
            Duration::from_secs(10)
        ));
        eprintln!(
            "write refused: {}",
            bundle.read_shared("error").unwrap_or_default().trim()
        );
    } else {
        eprintln!("/proc/1/exe refused to the container");
    }
    assert_eq!(
        bundle.read_shared("wrote"),
        None,
        "wrote through /proc/1/exe"
    );
    assert!(
        std::fs::read(&copy).unwrap() == before,
        "the runtime binary changed"
    );
}

#[test]
fn runtime_binary_cannot_be_overwritten_through_proc_exe() {
    proc_exe_attack(&["CAP_KILL", "CAP_SETUID", "CAP_SETGID"]);
}

#[test]
fn runtime_binary_cannot_be_overwritten_even_with_cap_sys_ptrace() {
    proc_exe_attack(&["CAP_KILL", "CAP_SYS_PTRACE"]);
}

/// How the runtime is made to execute the image's `#!/proc/self/exe` file.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// `exec` into the attacker's container.
    Exec,
    /// `run` of a second container that joins the attacker's pid namespace.
    RunJoiningPidNamespace,
}

/// A pipe whose buffer is already full: a process writing to the write end blocks until the
/// test reads. (read end, write end), both close-on-exec and blocking.
fn full_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these two descriptors, owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    set_nonblocking(&write, true);
    let chunk = [b'.'; 4096];
    // SAFETY: `chunk` is a valid buffer of its length.
    while unsafe { libc::write(write.as_raw_fd(), chunk.as_ptr().cast(), chunk.len()) } > 0 {}
    set_nonblocking(&write, false);
    set_nonblocking(&read, true);
    (read, write)
}

fn set_nonblocking(fd: &OwnedFd, on: bool) {
    // SAFETY: F_GETFL/F_SETFL only read and change the flags of our own descriptor.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        assert_eq!(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags), 0);
    }
}

/// CVE-2019-5736 as published: the image has `/bin/evil` starting with `#!/proc/self/exe`.
/// When the runtime's init executes it, the kernel runs the init's own executable again, as a
/// dumpable container process. The attacker in the container (`probe hold-exe`) opens that
/// process's /proc/PID/exe with O_PATH, waits until the runtime binary is no longer running,
/// then reopens the descriptor through /proc/self/fd/N for writing and writes over the binary.
///
/// The runtime run as `/proc/self/exe /bin/evil` prints a usage error and exits; its stderr is
/// a full pipe, so it blocks in that write until the attacker holds its exe, which makes the
/// race deterministic (a real attacker just polls faster). `binary` is the runtime under attack
/// (a private copy). Returns the attacker's report, or None when the runtime never ran its
/// binary in the container (runc 1.1.5: executing the file fails with ENOENT).
fn shebang_attack(entry: Entry, binary: &Path) -> Option<serde_json::Value> {
    let before = std::fs::read(binary).unwrap();
    let rt = Runtime::with_binary(binary);
    let with_evil = |bundle: Bundle| {
        let evil = bundle.rootfs().join("bin/evil");
        std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
        std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
        bundle
    };
    let attacker = with_evil(Bundle::new(&rt).with_shared_dir()).args([
        "probe",
        "hold-exe",
        "/bin/evil",
        "/shared/held",
        "/shared/go",
        "--out",
        "/shared/result",
    ]);
    let c = rt.create(&attacker);
    c.start();

    let (stderr_read, stderr_write) = full_pipe();
    let victim_id = husk_testing::unique_id("evil");
    let _victim_guard = rt.guard(victim_id.clone());
    let victim_bundle;
    let mut cmd = match entry {
        Entry::Exec => rt.cmd(["exec", c.id(), "/bin/evil"]),
        Entry::RunJoiningPidNamespace => {
            let pid_ns = PathBuf::from(format!("/proc/{}/ns/pid", c.pid()));
            victim_bundle = with_evil(Bundle::new(&rt))
                .add_namespace("pid", Some(&pid_ns))
                .args(["/bin/evil"]);
            rt.cmd([
                "run".as_ref(),
                "--bundle".as_ref(),
                victim_bundle.path().as_os_str(),
                victim_id.as_ref(),
            ])
        }
    };
    let mut runtime = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr_write))
        .spawn()
        .unwrap();
    drop(cmd);
    let held = wait_for(
        || attacker.read_shared("held").is_some(),
        Duration::from_secs(30),
    );
    // Let the runtime binary finish (its write no longer blocks) and wait until nothing runs it.
    let mut output = Vec::new();
    let mut buf = [0u8; 65536];
    let exited = wait_for(
        || {
            // SAFETY: `buf` is a valid buffer of its length; the descriptor is non-blocking.
            let n =
                unsafe { libc::read(stderr_read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                output.extend_from_slice(&buf[..n as usize]);
            }
            runtime.try_wait().unwrap().is_some()
        },
        Duration::from_secs(30),
    );
    if !exited {
        let _ = runtime.kill();
        let _ = runtime.wait();
    }
    // What the last write left (the runtime may have exited right after the last read).
    loop {
        // SAFETY: `buf` is a valid buffer of its length; the descriptor is non-blocking.
        let n = unsafe { libc::read(stderr_read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        output.extend_from_slice(&buf[..n as usize]);
    }
    let said = String::from_utf8_lossy(&output);
    let said = said.trim_start_matches('.').trim();
    if !held && rt.is_runc() && said.contains("no such file or directory") {
        eprintln!("runc: {entry:?} of the #!/proc/self/exe file failed: {said}");
        assert!(std::fs::read(binary).unwrap() == before);
        return None;
    }
    assert!(
        held,
        "the attacker never held the exe ({entry:?}); runtime said: {said}"
    );
    assert!(exited, "{entry:?} of /bin/evil did not end");
    eprintln!("{entry:?}: the runtime binary in the container said: {said}");
    // The second container is gone too: nothing runs the binary any more.
    let _ = rt.run(["delete", "--force", &victim_id]);

    std::fs::write(attacker.shared_dir().join("go"), "").unwrap();
    assert!(wait_for(
        || attacker.read_shared("result").is_some(),
        Duration::from_secs(30)
    ));
    let report: serde_json::Value =
        serde_json::from_str(&attacker.read_shared("result").unwrap()).unwrap();
    eprintln!("{entry:?}: attacker's report: {report}");
    assert_eq!(
        report["held"], true,
        "the attacker did not get hold of /proc/PID/exe: {report}"
    );
    assert_eq!(
        report["wrote"], false,
        "wrote through /proc/PID/exe: {report}"
    );
    assert!(
        std::fs::read(binary).unwrap() == before,
        "the runtime binary changed"
    );
    Some(report)
}

#[test]
fn shebang_proc_self_exe_during_exec_cannot_overwrite_the_runtime() {
    let dir = TempDir::new("husk-test-exe");
    shebang_attack(Entry::Exec, &private_runtime_copy(dir.path()));
}

#[test]
fn shebang_proc_self_exe_during_run_cannot_overwrite_the_runtime() {
    let dir = TempDir::new("husk-test-exe");
    shebang_attack(
        Entry::RunJoiningPidNamespace,
        &private_runtime_copy(dir.path()),
    );
}

/// An overlayfs mount made on the host for a test, unmounted on drop.
struct OverlayMount(PathBuf);

impl OverlayMount {
    /// Mounts an overlayfs with mount options `options` (layers given as paths) on `target`.
    fn new(options: &str, target: &Path) -> OverlayMount {
        let status = std::process::Command::new("mount")
            .args(["-t", "overlay", "-o", options, "husk-test"])
            .arg(target)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot mount overlay ({options}) on {}",
            target.display()
        );
        OverlayMount(target.to_path_buf())
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The same attack when husk cannot use a read-only overlay of the binary's directory: the
/// binary is on a writable overlayfs that is already two deep (the kernel's stacking limit),
/// so a third cannot go over it. The init then runs from a sealed memfd copy, which the
/// attacker can hold but not write.
#[test]
fn shebang_proc_self_exe_is_harmless_with_the_sealed_copy_fallback() {
    let dir = TempDir::new("husk-test-exe");
    let [bin, empty, inner, upper, work, outer] =
        ["bin", "empty", "inner", "upper", "work", "outer"].map(|d| dir.join(d));
    for d in [&bin, &empty, &inner, &upper, &work, &outer] {
        std::fs::create_dir(d).unwrap();
    }
    let name = private_runtime_copy(&bin).file_name().unwrap().to_owned();
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let _inner = OverlayMount::new(&format!("lowerdir={}:{}", path(&bin), path(&empty)), &inner);
    let _outer = OverlayMount::new(
        &format!(
            "lowerdir={},upperdir={},workdir={}",
            path(&inner),
            path(&upper),
            path(&work)
        ),
        &outer,
    );
    let Some(report) = shebang_attack(Entry::Exec, &outer.join(name)) else {
        return;
    };
    assert!(
        report["exe"]
            .as_str()
            .unwrap_or_default()
            .starts_with("/memfd:"),
        "expected the sealed copy: {report}"
    );
}

/// Runs `bundle` with a host directory open (not close-on-exec) at fd 5 of the runtime: a
/// descriptor the runtime must not let into the container.
fn run_with_leaked_dir(rt: &Runtime, bundle: &Bundle, dir: &Path) -> std::process::Output {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let host_dir = std::fs::File::open(dir).unwrap();
    let fd = host_dir.as_raw_fd();
    let id = husk_testing::unique_id("leak");
    let mut cmd = rt.cmd(["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    // SAFETY: dup2 between fork and exec only touches the child's descriptors.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 5) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let _ = rt.run(["delete", "--force", &id]);
    out
}

/// CVE-2024-21626: a descriptor of the runtime's left open into the container (or open while
/// the cwd is set) lets `process.cwd = /proc/self/fd/N` land outside the rootfs.
#[test]
fn no_runtime_descriptor_reaches_the_container() {
    let rt = Runtime::from_env(runtime_binary());
    let host = TempDir::new("husk-test-leak");
    std::fs::write(host.join("HOST-SECRET"), "x").unwrap();
    // Only stdio is open in the container process (ls itself opens the directory it lists).
    let out = run_with_leaked_dir(
        &rt,
        &Bundle::new(&rt).sh("ls /proc/self/fd | tr '\\n' ' '"),
        host.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let fds: Vec<u32> = stdout
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    assert!(out.status.success(), "{out:?}");
    assert!(
        fds.iter().filter(|fd| **fd > 2).count() <= 1,
        "fds open in the container: {stdout}"
    );
    for fd in 3..16 {
        let bundle = Bundle::new(&rt)
            .cwd(&format!("/proc/self/fd/{fd}"))
            .sh("pwd; ls");
        let out = run_with_leaked_dir(&rt, &bundle, host.path());
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            !stdout.contains("HOST-SECRET"),
            "cwd /proc/self/fd/{fd} reached the host: {stdout}"
        );
        assert!(
            !stdout.contains("unreachable"),
            "cwd /proc/self/fd/{fd}: {stdout}"
        );
    }
}

/// CVE-2021-30465 class: a mount destination that is a symlink pointing at a host path must
/// be resolved inside the rootfs, never followed out of it.
#[test]
fn symlinked_mount_destination_stays_in_the_rootfs() {
    let rt = Runtime::from_env(runtime_binary());
    // On another mount than the bundle, and with shared propagation: whatever the runtime
    // mounts outside the rootfs shows up in the host's mount table.
    let host = husk_testing::TempDir::new_in("/dev/shm", "husk-test-symlink-target");
    std::fs::write(host.join("HOST-FILE"), "x").unwrap();
    let _shared = husk_testing::HostMount::shared_bind(host.path());
    let bundle = Bundle::new(&rt)
        .set("/linux/rootfsPropagation", serde_json::json!("rshared"))
        .sh("ls /evil; echo ---; ls /evil-file 2>&1");
    std::os::unix::fs::symlink(host.path(), bundle.rootfs().join("evil")).unwrap();
    let bundle = bundle.add_mount("/evil", "tmpfs", "tmpfs", &["size=1m"]);
    let out = rt.run_bundle(&bundle);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        husk_testing::mounts_under(host.path()).len() <= 1,
        "a mount landed on the host directory: {:?}",
        husk_testing::mounts_under(host.path())
    );
    assert!(host.join("HOST-FILE").exists());
    assert!(
        !stdout.contains("HOST-FILE"),
        "the container saw the host directory: {stdout}"
    );
}

/// The host's procfs and sysfs cannot be bound into the container (they would show what
/// maskedPaths hides), /proc cannot be covered except for a few harmless files, and a procfs
/// cannot be mounted through a symlink the image planted.
#[test]
fn kernel_filesystems_cannot_be_placed_elsewhere() {
    let rt = Runtime::from_env(runtime_binary());
    let cases: [(&str, &str, &str, &[&str]); 4] = [
        ("/host-proc", "bind", "/proc", &["rbind"]),
        ("/host-sys", "bind", "/sys", &["rbind"]),
        ("/proc/kcore", "bind", "/etc/hostname", &["bind"]),
        ("/linked-proc", "proc", "proc", &[]),
    ];
    for (dest, kind, source, options) in cases {
        let bundle = Bundle::new(&rt)
            .add_mount(dest, kind, source, options)
            .sh("cat /host-proc/1/environ /host-sys/kernel/uevent_seqnum /proc/kcore 2>/dev/null | head -c 64; echo ran");
        std::os::unix::fs::symlink("/tmp", bundle.rootfs().join("linked-proc")).unwrap();
        let out = rt.run_bundle(&bundle);
        if rt.is_runc() && dest != "/proc/kcore" {
            // runc 1.1.5 only guards destinations inside /proc (tests/RUNC_DIFFERENCES.md).
            eprintln!(
                "runc: {kind} of {source} at {dest}: success={}",
                out.status.success()
            );
            continue;
        }
        assert!(
            !out.status.success(),
            "{kind} of {source} at {dest} accepted: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            rt.list_ids().is_empty(),
            "a refused container was left behind"
        );
    }
}

//! Regression tests for classes of container escape that runtimes have had to fix. Each test
//! performs the attack from inside a container and checks that it fails.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use husk_testing::{require_root, wait_for, Bundle, Runtime, TempDir};

fn runtime_binary() -> std::path::PathBuf {
    require_root();
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
        .binary()
        .to_path_buf()
}

/// CVE-2019-5736: a container process grabs /proc/1/exe while PID 1 is still the runtime's
/// init, waits until the runtime is gone, then writes through it to the runtime binary on the
/// host. The runtime under test is a private copy, so no other test keeps it busy (ETXTBSY
/// would hide the hole). `caps` are the container's capabilities: with CAP_SYS_PTRACE the
/// attacker gets past a non-dumpable init, so the binary itself must be out of reach.
fn proc_exe_attack(caps: &[&str]) {
    let dir = TempDir::new("husk-test-exe");
    let copy = dir.join("runtime-copy");
    std::fs::copy(runtime_binary(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
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

/// Runs `bundle` with a host directory open (not close-on-exec) at fd 5 of the runtime: a
/// descriptor the runtime must not let into the container.
fn run_with_leaked_dir(
    rt: &Runtime,
    bundle: &Bundle,
    dir: &std::path::Path,
) -> std::process::Output {
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

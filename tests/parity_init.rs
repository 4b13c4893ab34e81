//! runc parity of the container side (issues 11 and 16), checked from inside real containers: descriptors marked
//! close-on-exec where `close_range` is refused, hooks that do not read their stdin, configs as other tools write
//! them (no mount namespace, the rootless spec, read-only /dev, tmpfs modes, tmpcopyup, ...), signal state reset
//! before execve, hostile files in the image, and the validation of root.path and additionalGids.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::Duration;

use husk_testing::{
    require_root, run_with_timeout, unique_id, Bundle, HookKind, OutputExt, Runtime,
    DEFAULT_TIMEOUT,
};
use serde_json::{json, Value};

fn runtime() -> Runtime {
    require_root();
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(10);

/// The descriptor numbers `ls /proc/self/fd` printed: stdio and ls's own directory descriptor (3) when nothing
/// leaked.
fn listed_fds(stdout: &str) -> Vec<u32> {
    let mut fds: Vec<u32> = stdout
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    fds.sort();
    fds
}

/// `run --bundle <bundle> <new id>` with `cmd` adjusted by `adjust` (e.g. a pre_exec), force-deleted afterwards.
fn run_with(rt: &Runtime, bundle: &Bundle, adjust: impl FnOnce(&mut Command)) -> Output {
    let guard = rt.guard(unique_id("run"));
    let mut cmd = rt.cmd(
        ["run", "--bundle"]
            .map(OsStr::new)
            .into_iter()
            .chain([bundle.path().as_os_str(), OsStr::new(guard.id())]),
    );
    adjust(&mut cmd);
    let out = run_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
    drop(guard);
    out
}

// ---- close_range refused (issue 11) ----

/// A seccomp allowlist like older docker and podman profiles: husk's hardened allowlist without `close_range`.
fn allowlist_without_close_range() -> Value {
    let mut profile = serde_json::to_value(husk::profile::default_seccomp_profile()).unwrap();
    let mut removed = false;
    for rule in profile["syscalls"].as_array_mut().unwrap() {
        let names = rule["names"].as_array_mut().unwrap();
        let before = names.len();
        names.retain(|n| n != "close_range");
        removed |= names.len() != before;
    }
    assert!(
        removed,
        "the hardened allowlist no longer names close_range"
    );
    profile
}

#[test]
fn seccomp_allowlist_without_close_range_runs_and_leaks_no_fd() {
    let rt = runtime();
    for no_new_privs in [false, true] {
        let bundle = Bundle::new(&rt)
            .args(["ls", "/proc/self/fd"])
            .no_new_privileges(no_new_privs)
            .set("/linux/seccomp", allowlist_without_close_range());
        let stdout = rt.run_bundle_ok(&bundle);
        assert_eq!(
            listed_fds(&stdout),
            [0, 1, 2, 3],
            "noNewPrivileges {no_new_privs}: {stdout}"
        );
    }
}

/// Installs, in the calling (about to exec) process, a seccomp filter that fails `close_range` with EPERM and allows
/// everything else: a runtime started by a sandbox with an old profile, or on a kernel without the call.
fn refuse_close_range(cmd: &mut Command) {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let program = [
        stmt(load, 4), // seccomp_data.arch
        jump(AUDIT_ARCH_X86_64, 0, 3),
        stmt(load, 0), // seccomp_data.nr
        jump(libc::SYS_close_range as u32, 0, 1),
        stmt(ret, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(ret, SECCOMP_RET_ALLOW),
    ];
    // SAFETY: the closure only calls prctl, which is async-signal-safe, on data it owns.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn close_range_refused_to_the_runtime_falls_back_for_run_and_exec() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).args(["ls", "/proc/self/fd"]);
    let out = run_with(&rt, &bundle, refuse_close_range);
    assert!(out.status.success(), "run:\n{}", out.describe());
    assert_eq!(listed_fds(&out.stdout_str()), [0, 1, 2, 3], "run");

    let bundle = Bundle::new(&rt).args(["sleep", "1000"]);
    let c = rt.create(&bundle);
    c.start();
    let mut cmd = rt.cmd(["exec", c.id(), "ls", "/proc/self/fd"]);
    refuse_close_range(&mut cmd);
    let out = run_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
    assert!(out.status.success(), "exec:\n{}", out.describe());
    assert_eq!(listed_fds(&out.stdout_str()), [0, 1, 2, 3], "exec");
}

// ---- hooks that do not read their stdin (issue 11) ----

#[test]
fn hooks_that_do_not_read_the_state_do_not_kill_the_runtime() {
    let rt = runtime();
    // A state larger than a pipe's buffer: the write cannot complete before `true` exits, so every hook of every
    // round closes the pipe under the runtime's write.
    let mut bundle = Bundle::new(&rt)
        .args(["true"])
        .set("/annotations", json!({ "big": "x".repeat(100 * 1024) }));
    for kind in HookKind::ALL {
        bundle = bundle.add_hook(kind, "/bin/true", &[], &[], None);
    }
    for round in 0..10 {
        let c = rt.create(&bundle);
        c.start();
        assert!(c.wait_status("stopped", WAIT), "round {round}: not stopped");
        let out = rt.run(["delete", c.id()]);
        assert!(
            out.status.success(),
            "round {round}: delete\n{}",
            out.describe()
        );
    }
}

// ---- configs as other tools write them (issue 11) ----

/// Sets `options` of the mount at `destination`.
fn mount_options(bundle: Bundle, destination: &str, options: Value) -> Bundle {
    bundle.edit(|config| {
        for m in config["mounts"].as_array_mut().unwrap() {
            if m["destination"] == destination {
                m["options"] = options.clone();
            }
        }
    })
}

#[test]
fn no_mount_namespace_runs_in_the_callers_chrooted_to_the_rootfs() {
    let rt = runtime();
    if rt.is_runc() {
        // runc needs a /proc it mounts in the caller's namespace, and leaves that and its rootfs bind there after
        // delete (tests/RUNC_DIFFERENCES.md).
        return;
    }
    let bundle = Bundle::new(&rt)
        .args(["sleep", "1000"])
        .remove_namespace("mount")
        .remove("/mounts")
        .remove("/linux/maskedPaths")
        .remove("/linux/readonlyPaths")
        .readonly(false);
    let c = rt.create(&bundle);
    let pid = c.pid();
    assert_eq!(
        husk_testing::namespace_inode(pid, "mnt"),
        husk_testing::host_namespace_inode("mnt"),
        "the container must share the caller's mount namespace"
    );
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(root, std::fs::canonicalize(bundle.rootfs()).unwrap());
    c.start();
    // An exec'd process goes to the same root.
    let out = rt.run_ok([
        "exec",
        c.id(),
        "sh",
        "-c",
        "test -x /bin/busybox && test -d /etc && echo inside",
    ]);
    assert_eq!(out.stdout_str().trim(), "inside");
    c.kill("KILL");
    assert!(c.wait_status("stopped", WAIT));
    drop(c);
    assert_eq!(bundle.leftover_mounts(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn no_mount_namespace_refuses_mounts_that_would_land_in_the_callers() {
    let rt = runtime();
    if rt.is_runc() {
        // runc makes them in the caller's namespace and leaves them there (tests/RUNC_DIFFERENCES.md).
        return;
    }
    let bundle = Bundle::new(&rt)
        .args(["true"])
        .remove_namespace("mount")
        .remove("/linux/maskedPaths")
        .remove("/linux/readonlyPaths");
    let id = unique_id("nomnt");
    let _guard = rt.guard(&id);
    let out = rt.run_fail([
        "create".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    let err = out.stderr_str();
    assert!(
        err.contains("mounts") && err.contains("mount namespace"),
        "{err}"
    );
    assert!(rt.try_state(&id).is_none(), "state left behind");
    assert_eq!(bundle.leftover_mounts(), Vec::<std::path::PathBuf>::new());
}

/// The mounts and namespaces `runc spec --rootless` (and oci-spec's Spec::rootless) write, with the caller's ids
/// mapped to 0.
fn rootless(bundle: Bundle) -> Bundle {
    bundle.edit(|config| {
        config["mounts"] = json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "none", "source": "/sys",
             "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ]);
        config["linux"]["namespaces"] =
            json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
        config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
        config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    })
}

#[test]
fn rootless_spec_binds_the_hosts_sys_with_masks_in_force() {
    let rt = runtime();
    let bundle = rootless(Bundle::new(&rt)).sh("test -d /sys/kernel/mm && echo sysfs; \
         echo firmware: $(ls /sys/firmware | wc -l); touch /sys/x 2>/dev/null || echo ro");
    let out = rt.run_bundle_ok(&bundle);
    assert_eq!(out, "sysfs\nfirmware: 0\nro\n", "{out}");
}

#[test]
fn binds_of_sysfs_elsewhere_stay_refused() {
    let rt = runtime();
    if rt.is_runc() {
        return; // runc binds the host's /sys anywhere (tests/RUNC_DIFFERENCES.md)
    }
    let bundle =
        Bundle::new(&rt)
            .args(["true"])
            .add_mount("/mnt/sys", "none", "/sys", &["rbind", "ro"]);
    let out = rt.run_bundle(&bundle);
    assert!(!out.status.success());
    assert!(out.stderr_str().contains("sysfs"), "{}", out.describe());
}

#[test]
fn readonly_path_on_a_device_the_device_cgroup_denies() {
    let rt = runtime();
    // /dev/loop-control exists in the container but the default device rules do not allow opening it.
    let bundle = Bundle::new(&rt)
        .add_device("/dev/loop-control", "c", 10, 237, 0o600, 0, 0)
        .readonly_path("/dev/loop-control")
        .sh("grep -c ' /dev/loop-control .*ro,' /proc/self/mountinfo");
    let out = rt.run_bundle_ok(&bundle);
    assert_eq!(out.trim(), "1");
}

#[test]
fn read_only_dev_is_made_read_only_last() {
    let rt = runtime();
    let bundle = mount_options(
        Bundle::new(&rt),
        "/dev",
        json!(["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]),
    )
    .sh(
        "test -c /dev/null && test -d /dev/pts && test -d /dev/shm && echo made; \
         touch /dev/x 2>/dev/null || echo ro",
    );
    assert_eq!(rt.run_bundle_ok(&bundle), "made\nro\n");
}

#[test]
fn cwd_the_user_cannot_enter_is_entered_before_dropping_privileges() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .user(1000, 1000, &[])
        .cwd("/secret")
        .sh("pwd");
    let dir = bundle.rootfs().join("secret");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    assert_eq!(rt.run_bundle_ok(&bundle), "/secret\n");
}

#[test]
fn tmpfs_without_mode_keeps_the_mount_points_mode() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .add_mount("/data", "tmpfs", "tmpfs", &["nosuid"])
        .add_mount("/given", "tmpfs", "tmpfs", &["mode=700"])
        // A mount point the image lacks gets tmpfs's own default, as with runc.
        .add_mount("/made/here", "tmpfs", "tmpfs", &["nosuid"])
        // The kept mode goes on the tmpfs's root, not into its options: mountinfo shows what the
        // config asked for, as with runc (found by the differential tester: `mode=7777`).
        .sh("stat -c %a /data /given /made/here; \
             grep ' /data ' /proc/self/mountinfo | grep -c 'mode=' || true");
    for name in ["data", "given"] {
        let dir = bundle.rootfs().join(name);
        std::fs::create_dir(&dir).unwrap();
        // chmod(2) itself, so that the set-id and sticky bits are kept.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o7777))
            .unwrap();
    }
    // runc 1.1.5 gives the mount point's mode even over an explicit mode= (tests/RUNC_DIFFERENCES.md).
    let given = if rt.is_runc() { "7777" } else { "700" };
    assert_eq!(
        rt.run_bundle_ok(&bundle),
        format!("7777\n{given}\n1777\n0\n")
    );
}

#[test]
fn tmpcopyup_copies_the_directory_into_the_tmpfs() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .add_mount("/etc", "tmpfs", "tmpfs", &["tmpcopyup", "nosuid"])
        .sh(
            "grep -c '^root:' /etc/passwd; ls -l /etc/sub/link | grep -c -- '-> ../passwd'; \
             stat -c '%a %u' /etc/sub/file; grep -c ' /etc tmpfs' /proc/self/mounts; \
             echo new > /etc/written && cat /etc/written",
        );
    let etc = bundle.rootfs().join("etc");
    std::fs::create_dir(etc.join("sub")).unwrap();
    std::os::unix::fs::symlink("../passwd", etc.join("sub/link")).unwrap();
    std::fs::write(etc.join("sub/file"), "x").unwrap();
    std::fs::set_permissions(
        etc.join("sub/file"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::chown(etc.join("sub/file"), Some(7), None).unwrap();
    assert_eq!(rt.run_bundle_ok(&bundle), "1\n1\n640 7\n1\nnew\n");
    // The copy went to the tmpfs, not into the image.
    assert!(!etc.join("written").exists());
}

#[test]
fn symlinked_proc_or_sys_in_the_rootfs_is_refused_clearly() {
    let rt = runtime();
    for dir in ["proc", "sys"] {
        let bundle = Bundle::new(&rt).args(["true"]);
        let path = bundle.rootfs().join(dir);
        std::fs::remove_dir_all(&path).unwrap();
        std::os::unix::fs::symlink("/tmp", &path).unwrap();
        let out = rt.run_bundle(&bundle);
        assert!(!out.status.success(), "/{dir}: {}", out.describe());
        assert!(
            out.stderr_str()
                .contains("must be mounted on ordinary directory"),
            "/{dir}: {}",
            out.describe()
        );
    }
}

/// Hooks without an `env` of their own: a createContainer or startContainer hook gets the container process's env
/// (createContainer starts in the rootfs), a host hook (createRuntime, poststop) the runtime's own env and the
/// bundle as its working directory. Found again by the differential tester for the host hooks: husk gave them an
/// empty env and its own cwd (scripts without a PATH failed to find their tools).
#[test]
fn hooks_get_runc_env_and_cwd() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .add_env("FROM_PROCESS=yes")
        .args(["true"]);
    let shared = bundle.shared_dir();
    let hook = |name: &str| {
        let script = bundle.path().join(format!("{name}-hook.sh"));
        husk_testing::write_script(
            &script,
            &format!(
                "pwd -P > {dir}/{name}-cwd; env > {dir}/{name}-env",
                dir = shared.display()
            ),
        );
        script.to_string_lossy().into_owned()
    };
    let (create_container, create_runtime, poststop) = (hook("cc"), hook("rt"), hook("poststop"));
    let inside = bundle.rootfs_script("env-hook.sh", "env > /shared/env");
    let bundle = bundle
        .add_hook(HookKind::CreateContainer, &create_container, &[], &[], None)
        .add_hook(HookKind::StartContainer, &inside, &[], &[], None)
        .add_hook(HookKind::CreateRuntime, &create_runtime, &[], &[], None)
        .add_hook(HookKind::Poststop, &poststop, &[], &[], None);
    rt.run_bundle_ok(&bundle);
    let rootfs = std::fs::canonicalize(bundle.rootfs()).unwrap();
    let bundle_dir = std::fs::canonicalize(bundle.path()).unwrap();
    let read = |name: &str| {
        bundle
            .read_shared(name)
            .unwrap_or_else(|| panic!("hook output {name} missing"))
    };
    assert_eq!(read("cc-cwd").trim(), rootfs.to_str().unwrap());
    for name in ["env", "cc-env"] {
        let env = read(name);
        assert!(
            env.lines().any(|l| l == "FROM_PROCESS=yes"),
            "{name}: {env}"
        );
    }
    let runtime_path = format!("PATH={}", std::env::var("PATH").unwrap_or_default());
    for name in ["rt", "poststop"] {
        assert_eq!(
            read(&format!("{name}-cwd")).trim(),
            bundle_dir.to_str().unwrap(),
            "{name}"
        );
        let env = read(&format!("{name}-env"));
        assert!(env.lines().any(|l| l == runtime_path), "{name}: {env}");
        assert!(!env.contains("FROM_PROCESS"), "{name}: {env}");
    }

    // A separate `delete` runs the poststop hook in the caller's directory: only create and run work in the
    // bundle.
    let bundle = Bundle::new(&rt).with_shared_dir().args(["true"]);
    let poststop = bundle.path().join("poststop-hook.sh");
    husk_testing::write_script(
        &poststop,
        &format!("pwd -P > {}/delete-cwd", bundle.shared_dir().display()),
    );
    let bundle = bundle.add_hook(
        HookKind::Poststop,
        poststop.to_str().unwrap(),
        &[],
        &[],
        None,
    );
    let c = rt.create(&bundle);
    c.start();
    assert!(c.wait_status("stopped", WAIT), "container did not stop");
    let caller_dir = husk_testing::TempDir::new("husk-test-caller-cwd");
    let out = run_with_timeout(
        rt.cmd(["delete", c.id()]).current_dir(caller_dir.path()),
        DEFAULT_TIMEOUT,
    );
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(
        bundle.read_shared("delete-cwd").unwrap_or_default().trim(),
        std::fs::canonicalize(caller_dir.path())
            .unwrap()
            .to_str()
            .unwrap()
    );
}

/// `rootfsPropagation: rshared` (or `shared`) with a rootfs that is a mount point of its own, as an image's overlay
/// is: the rootfs mount became shared with everything else and pivot_root refused it (EINVAL). Found by the
/// differential tester; runc 1.1.5 runs it.
#[test]
fn shared_rootfs_propagation_with_a_rootfs_that_is_a_mount_point() {
    let rt = runtime();
    for propagation in ["rshared", "shared"] {
        let bundle = Bundle::new(&rt)
            .set("/linux/rootfsPropagation", json!(propagation))
            .sh("echo started");
        let rootfs = bundle.rootfs();
        let bound = Command::new("mount")
            .args(["--bind"])
            .arg(&rootfs)
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(bound.success(), "bind the rootfs onto itself");
        /// Unmounts the rootfs's bind onto itself, also when an assertion fails.
        struct Unmount(std::path::PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = Command::new("umount").arg("-l").arg(&self.0).status();
            }
        }
        let _unmount = Unmount(rootfs);
        let out = rt.run_bundle(&bundle);
        assert!(
            out.status.success() && out.stdout_str() == "started\n",
            "{propagation}: {}",
            out.describe()
        );
    }
}

// ---- signal state reset before execve (issue 16, bug 4) ----

/// Makes the runtime start with SIGHUP and SIGPIPE ignored (as under `nohup` or a daemon) and SIGUSR1 blocked.
fn with_leaky_signal_state(cmd: &mut Command) {
    // SAFETY: the closure only calls signal(2) and sigprocmask(2), which are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Checks the `SigBlk` and `SigIgn` masks (in that order, as /proc/<pid>/status lists them) of a container
/// process: both empty. runc 1.1.5 passes the blocked SIGUSR1 and the ignored signal 32 on (only SIGHUP and SIGPIPE
/// reach their default there; tests/RUNC_DIFFERENCES.md), so for runc only those two are checked.
fn check_signal_masks(rt: &Runtime, what: &str, masks: &[&str]) {
    let parsed: Vec<u64> = masks
        .iter()
        .map(|m| u64::from_str_radix(m, 16).unwrap_or_else(|_| panic!("{what}: {masks:?}")))
        .collect();
    assert_eq!(parsed.len(), 2, "{what}: {masks:?}");
    if rt.is_runc() {
        let hup_or_pipe = (1 << (libc::SIGHUP - 1)) | (1 << (libc::SIGPIPE - 1));
        assert_eq!(parsed[1] & hup_or_pipe, 0, "{what}: {masks:?}");
    } else {
        assert_eq!(parsed, [0, 0], "{what}: SigBlk, SigIgn {masks:?}");
    }
}

/// Checks the `SigBlk` and `SigIgn` lines `grep` printed from its own /proc/self/status.
fn assert_clean_signal_state(rt: &Runtime, what: &str, out: &Output) {
    assert!(out.status.success(), "{what}:\n{}", out.describe());
    let text = out.stdout_str();
    let masks: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().last().unwrap_or(""))
        .collect();
    check_signal_masks(rt, what, &masks);
}

#[test]
fn ignored_and_blocked_signals_do_not_reach_the_container() {
    let rt = runtime();
    let report = ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"];
    let bundle = Bundle::new(&rt).args(report);
    let out = run_with(&rt, &bundle, with_leaky_signal_state);
    assert_clean_signal_state(&rt, "run", &out);

    // create and start from the leaky caller too: the container process is started by `start`.
    let bundle = Bundle::new(&rt).args(["sleep", "1000"]);
    let id = unique_id("sig");
    let c = rt.guard(&id);
    let mut create = rt.cmd([
        "create".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref() as &OsStr,
    ]);
    with_leaky_signal_state(&mut create);
    let out = run_with_timeout(&mut create, DEFAULT_TIMEOUT);
    assert!(out.status.success(), "create:\n{}", out.describe());
    c.start();
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.pid())).unwrap();
    let container: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("SigIgn") || l.starts_with("SigBlk"))
        .map(|l| l.split_whitespace().last().unwrap_or(""))
        .collect();
    check_signal_masks(&rt, "create+start", &container);

    let mut exec = rt.cmd(["exec", c.id()].into_iter().chain(report));
    with_leaky_signal_state(&mut exec);
    let out = run_with_timeout(&mut exec, DEFAULT_TIMEOUT);
    assert_clean_signal_state(&rt, "exec", &out);
}

// ---- hostile files in the image (issue 16, bug 7) ----

/// Runs `echo $HOME` (HOME unset in the config, so the runtime picks it from /etc/passwd) in a bundle whose
/// /etc/passwd `prepare` replaced; returns the container's output and how long `run` took.
fn home_with_passwd(rt: &Runtime, prepare: impl FnOnce(&std::path::Path)) -> (String, Duration) {
    let (out, took) = try_home_with_passwd(rt, prepare);
    assert!(
        out.status.success(),
        "container run failed\n{}",
        out.describe()
    );
    (out.stdout_str(), took)
}

/// Like [`home_with_passwd`], whatever the exit status.
fn try_home_with_passwd(
    rt: &Runtime,
    prepare: impl FnOnce(&std::path::Path),
) -> (Output, Duration) {
    let bundle = Bundle::new(rt)
        .edit(|config| {
            let env = config["process"]["env"].as_array_mut().unwrap();
            env.retain(|kv| !kv.as_str().unwrap_or("").starts_with("HOME="));
        })
        .sh("echo $HOME");
    let passwd = bundle.rootfs().join("etc/passwd");
    std::fs::remove_file(&passwd).unwrap();
    prepare(&passwd);
    let started = std::time::Instant::now();
    let out = rt.run_bundle(&bundle);
    (out, started.elapsed())
}

#[test]
fn passwd_that_is_no_regular_file_or_too_large_gives_home_slash() {
    let rt = runtime();
    let (home, _) = home_with_passwd(&rt, |p| {
        std::fs::write(p, "root:x:0:0:root:/root:/bin/sh\n").unwrap()
    });
    assert_eq!(home, "/root\n", "an ordinary passwd is read");

    let (out, took) =
        try_home_with_passwd(&rt, |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap());
    assert!(
        took < Duration::from_secs(20),
        "a link to /dev/zero took {took:?}"
    );
    if rt.is_runc() {
        // runc reads lines of at most 64 KiB and fails (tests/RUNC_DIFFERENCES.md).
        assert!(
            out.stderr_str().contains("token too long"),
            "{}",
            out.describe()
        );
    } else {
        assert!(
            out.status.success(),
            "a link to /dev/zero\n{}",
            out.describe()
        );
        assert_eq!(out.stdout_str(), "/\n", "a link to /dev/zero");
    }

    // 5 MiB of comments, then root's entry: past the bound, so not read.
    let (home, _) = home_with_passwd(&rt, |p| {
        let mut text = "#\n".repeat(5 << 19);
        text.push_str("root:x:0:0:root:/root:/bin/sh\n");
        std::fs::write(p, text).unwrap()
    });
    // runc 1.1.5 reads it all and yet leaves HOME empty here (tests/RUNC_DIFFERENCES.md).
    let expected = if rt.is_runc() { "\n" } else { "/\n" };
    assert_eq!(home, expected, "a 5 MiB passwd");

    if rt.is_runc() {
        return; // runc 1.1.5 blocks on the FIFO (tests/RUNC_DIFFERENCES.md)
    }
    let (home, took) = home_with_passwd(&rt, |p| {
        nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap()
    });
    assert_eq!(home, "/\n", "a FIFO");
    assert!(took < Duration::from_secs(20), "a FIFO took {took:?}");
}

// ---- validation (issue 16, bugs 8 and 9) ----

/// `create` of `bundle` must fail, leave no container, and say `expect` (per runtime) in its error.
fn assert_create_refused(rt: &Runtime, bundle: &Bundle, expect: &str) {
    let id = unique_id("refused");
    let _guard = rt.guard(&id);
    let out = rt.run_fail([
        "create".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref() as &OsStr,
    ]);
    let err = out.stderr_str();
    assert!(
        err.contains(expect),
        "expected {expect:?}\n{}",
        out.describe()
    );
    assert!(rt.try_state(&id).is_none(), "state left behind");
}

#[test]
fn symlinked_root_path_is_refused() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).args(["true"]);
    std::os::unix::fs::symlink("rootfs", bundle.path().join("rootlink")).unwrap();
    let bundle = bundle.set("/root/path", json!("rootlink"));
    let expect = if rt.is_runc() {
        "not an absolute path, or a symlink"
    } else {
        "root.path"
    };
    assert_create_refused(&rt, &bundle, expect);
    // An absolute root.path through a symlinked directory too.
    let link = bundle.path().join("dirlink");
    std::os::unix::fs::symlink(bundle.path(), &link).unwrap();
    let bundle = bundle.set("/root/path", json!(link.join("rootfs").to_str().unwrap()));
    assert_create_refused(&rt, &bundle, expect);
}

#[test]
fn too_many_additional_gids_are_refused_naming_the_field() {
    let rt = runtime();
    let gids: Vec<u32> = (1..=70_000).collect();
    let bundle = Bundle::new(&rt)
        .args(["true"])
        .set("/process/user/additionalGids", json!(gids));
    // runc 1.1.5 finds out at setgroups, in its init (tests/RUNC_DIFFERENCES.md).
    let expect = if rt.is_runc() {
        "setgroups: invalid argument"
    } else {
        "additionalGids"
    };
    assert_create_refused(&rt, &bundle, expect);
}

/// A new user namespace together with a network namespace joined by path (one the caller made, owned by the
/// caller's user namespace): husk made the user namespace first and then could not join the other (`join net
/// namespace: Operation not permitted`); it joins first, as runc does. Found by the differential tester (rootless
/// spec with a joined network namespace).
#[test]
fn new_user_namespace_with_a_joined_network_namespace() {
    let rt = runtime();
    let holder = husk_testing::NamespaceHolder::new(&["network"]);
    let bundle = Bundle::new(&rt)
        .add_namespace("user", None)
        .uid_mapping(0, 100000, 65536)
        .gid_mapping(0, 100000, 65536)
        .add_namespace("network", Some(&holder.path("network")))
        // A sysfs needs a network namespace of the container's own user namespace (the rootless spec binds the
        // host's /sys instead); not what this test is about.
        .remove_mount("/sys/fs/cgroup")
        .remove_mount("/sys")
        .sh("readlink /proc/self/ns/net");
    let out = rt.run_bundle_ok(&bundle);
    assert_eq!(out.trim(), format!("net:[{}]", holder.inode("network")));
}

//! Attacks that aim the runtime's own mounts and writes at the host through /proc: the
//! masked-path source swapped for a link (CVE-2025-31133), a mount destination and a sysctl
//! write redirected into /proc by symlinks (CVE-2025-52881). Each test performs the attack and checks that the host is
//! untouched; the targets are harmless global sysctls, restored whatever happens.

// Test fixtures write into the tests' own temp dirs and restore the sysctls they guard.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use husk_testing::{wait_for, Bundle, HookKind, OutputExt, Runtime, TempDir};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// A global (not namespaced) sysctl of the host whose value the test watches; the value found
/// at the start is written back on drop. Each test guards a different one, so that tests
/// running side by side cannot see each other's changes.
struct HostSysctl {
    path: PathBuf,
    original: String,
}

impl HostSysctl {
    fn watch(key: &str) -> HostSysctl {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        let original = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read host sysctl {}: {e}", path.display()))
            .trim()
            .to_string();
        HostSysctl { path, original }
    }

    /// A value the sysctl does not have now, for the attacker to write.
    fn attack_value(&self) -> String {
        (self.original.parse::<u64>().expect("numeric sysctl") + 7).to_string()
    }

    fn current(&self) -> String {
        std::fs::read_to_string(&self.path)
            .unwrap()
            .trim()
            .to_string()
    }

    fn assert_untouched(&self, context: &str) {
        assert_eq!(
            self.current(),
            self.original,
            "host sysctl {} was changed by the container ({context})",
            self.path.display()
        );
    }
}

impl Drop for HostSysctl {
    fn drop(&mut self) {
        if self.current() != self.original {
            let _ = std::fs::write(&self.path, &self.original);
        }
    }
}

/// CVE-2025-31133: `/dev` is a volume that another process shares. Right after the runtime
/// creates `dev/null` there, that process renames a symlink to a host sysctl over it. A runtime
/// that then binds "/dev/null" onto the masked paths puts the sysctl, writable, at /proc/keys.
#[test]
fn masked_paths_cannot_be_bound_from_a_swapped_dev_null() {
    let rt = runtime();
    let sysctl = HostSysctl::watch("kernel.printk_ratelimit_burst");
    let shared_dev = TempDir::new("husk-test-shared-dev");
    let dev = shared_dev.path().to_path_buf();
    let value = sysctl.attack_value();

    // The racing process: it waits for the runtime's null device and swaps it for a link.
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let racer = {
        let (stop, swaps, dev) = (stop.clone(), swaps.clone(), dev.clone());
        std::thread::spawn(move || {
            use std::os::unix::fs::FileTypeExt;
            let null = dev.join("null");
            let staged = dev.join("null.swap");
            while !stop.load(Ordering::Relaxed) {
                let is_device =
                    std::fs::symlink_metadata(&null).is_ok_and(|m| m.file_type().is_char_device());
                if !is_device {
                    std::thread::yield_now();
                    continue;
                }
                let _ = std::fs::remove_file(&staged);
                std::os::unix::fs::symlink("/proc/sys/kernel/printk_ratelimit_burst", &staged)
                    .unwrap();
                if std::fs::rename(&staged, &null).is_ok() {
                    swaps.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };

    // A createRuntime hook holds the runtime between the devices and the masks until the swap
    // has happened, so that the race is won every time rather than sometimes.
    let bundle = Bundle::new(&rt);
    let hook = bundle.path().join("wait-for-swap.sh");
    husk_testing::write_script(
        &hook,
        &format!(
            "for i in $(seq 1000); do [ -L {null} ] && exit 0; sleep 0.01; done\nexit 0",
            null = dev.join("null").display()
        ),
    );
    // Whatever /proc/keys and /proc/timer_list are bound from is written to, then described.
    let script = format!(
        "for f in /proc/keys /proc/timer_list; do echo {value} > $f; stat -c '%n %F %t:%T' $f; done 2>&1"
    );
    let bundle = bundle
        .remove_mount("/dev")
        .add_mount("/dev", "bind", dev.to_str().unwrap(), &["rbind", "rw"])
        .masked_path("/proc/keys")
        .masked_path("/proc/timer_list")
        .add_hook(
            HookKind::CreateRuntime,
            hook.to_str().unwrap(),
            &[],
            &[],
            None,
        )
        .sh(&script);
    let out = rt.run_bundle(&bundle);
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!(
        "swaps: {}; container: {stdout}; stderr: {}",
        swaps.load(Ordering::SeqCst),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        swaps.load(Ordering::SeqCst) >= 1,
        "the racing process never swapped dev/null: the attack did not happen"
    );
    sysctl.assert_untouched(&stdout);
    for masked in ["/proc/keys", "/proc/timer_list"] {
        assert!(
            stdout.contains(&format!("{masked} character special file 1:3")),
            "{masked} is not masked by a null device: {stdout}"
        );
    }
}

/// Writes a symlink at `link` (creating its parent) pointing at `target`.
fn plant_symlink(target: &str, link: &Path) {
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// CVE-2025-52881, first half: the image has `/data -> /proc/sys/net`, so an ordinary volume
/// at `/data` lands on the container's /proc/sys/net. Inside the volume,
/// `ipv4/ip_unprivileged_port_start` links to a global sysctl, and the config sets
/// `net.ipv4.ip_unprivileged_port_start`: a runtime writing through the container's /proc
/// changes the host's sysctl. The same trick aims a volume at /proc/1/attr, where it would
/// redirect LSM label writes.
#[test]
fn mount_destinations_redirected_into_procfs_are_refused() {
    let rt = runtime();
    let sysctl = HostSysctl::watch("kernel.printk_ratelimit");
    let volume = TempDir::new("husk-test-volume");
    plant_symlink(
        "/proc/sys/kernel/printk_ratelimit",
        &volume.join("ipv4/ip_unprivileged_port_start"),
    );
    let value = sysctl.attack_value();
    let bundle = Bundle::new(&rt)
        .add_mount("/data", "bind", volume.path().to_str().unwrap(), &["rbind"])
        .sysctl("net.ipv4.ip_unprivileged_port_start", &value)
        .sh("echo ran");
    std::os::unix::fs::symlink("/proc/sys/net", bundle.rootfs().join("data")).unwrap();
    let out = rt.run_bundle(&bundle);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    sysctl.assert_untouched(&stderr);
    assert!(
        !out.status.success(),
        "a volume was mounted on /proc/sys/net: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    if !rt.is_runc() {
        assert!(
            stderr.contains("/proc/sys/net") && stderr.contains("procfs"),
            "the error must say where the destination really is: {stderr}"
        );
    }
    assert!(
        rt.list_ids().is_empty(),
        "a refused container was left behind"
    );

    // A volume on /proc/1/attr (through a link) would take the runtime's LSM label writes.
    let bundle = Bundle::new(&rt)
        .add_mount("/lsm", "bind", volume.path().to_str().unwrap(), &["rbind"])
        .sh("echo ran");
    std::os::unix::fs::symlink("/proc/1/attr", bundle.rootfs().join("lsm")).unwrap();
    let out = rt.run_bundle(&bundle);
    assert!(
        !out.status.success(),
        "a volume was mounted on /proc/1/attr: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        rt.list_ids().is_empty(),
        "a refused container was left behind"
    );

    // The allowed destinations still work: an lxcfs-style file over /proc/uptime, and a
    // volume under /sys/fs/cgroup's sysfs directory is not needed by anyone but must not be
    // confused with them.
    let uptime = volume.join("uptime");
    std::fs::write(&uptime, "12345.00 1.00\n").unwrap();
    let bundle = Bundle::new(&rt)
        .add_mount("/proc/uptime", "bind", uptime.to_str().unwrap(), &["bind"])
        .sh("cat /proc/uptime");
    assert_eq!(rt.run_bundle_ok(&bundle).trim(), "12345.00 1.00");
}

/// CVE-2025-52881, second half: whatever covers the container's /proc/sys by the time the
/// runtime writes a sysctl (here a process in the container's mount namespace, a
/// createContainer hook, binds a directory with a planted link over /proc/sys/net/ipv4), the
/// write must reach the container's own network namespace and nothing else.
#[test]
fn sysctl_writes_cannot_be_redirected_by_an_overmount() {
    let rt = runtime();
    let sysctl = HostSysctl::watch("vm.stat_interval");
    let decoy = TempDir::new("husk-test-decoy");
    plant_symlink(
        "/proc/sys/vm/stat_interval",
        &decoy.join("ip_unprivileged_port_start"),
    );
    let bundle = Bundle::new(&rt).with_shared_dir();
    // createContainer hooks run in the container's mount namespace before pivot_root; the
    // container's /proc is then at <rootfs>/proc.
    let hook = bundle.path().join("overmount.sh");
    husk_testing::write_script(
        &hook,
        &format!(
            "set -e\nmount --bind {decoy} {rootfs}/proc/sys/net/ipv4",
            decoy = decoy.path().display(),
            rootfs = bundle.rootfs().display()
        ),
    );
    let value = sysctl.attack_value();
    let bundle = bundle
        .add_hook(
            HookKind::CreateContainer,
            hook.to_str().unwrap(),
            &[],
            &[],
            None,
        )
        .sysctl("net.ipv4.ip_unprivileged_port_start", &value)
        .sh("echo ready > /shared/ready; exec sleep 1000");
    let c = rt.create(&bundle);
    sysctl.assert_untouched("after create");
    c.start();
    assert!(wait_for(
        || bundle.read_shared("ready").is_some(),
        Duration::from_secs(10)
    ));
    // The value landed in the container's network namespace.
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{}/ns/net", c.pid()))
        .args(["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        value,
        "the container's own sysctl: {out:?}"
    );
    sysctl.assert_untouched("after start");
}

/// `--no-pivot` moves the rootfs over `/` and chroots, so the host's /proc and /sys stay in the
/// container's mount namespace below it. A user-namespaced root may mount a fresh procfs or sysfs
/// only while one is fully visible in its mount namespace, and the kernel counts those hidden
/// host mounts: the attack is a container not given /proc or /sys that mounts them anyway. With
/// --no-pivot the kernel must answer as it does with pivot_root: refused for a kind the
/// container was not given, allowed for one it has (its own mount is visible to it either way).
#[test]
fn no_pivot_leaves_no_host_procfs_or_sysfs_to_mount_from() {
    let rt = runtime();
    let caps = serde_json::json!(["CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID"]);
    let script = "mount -t tmpfs scratch /tmp && mkdir /tmp/p /tmp/s || exit 3; \
                  mount -t proc proc /tmp/p 2>/dev/null && echo proc=mounted || echo proc=refused; \
                  mount -t sysfs sysfs /tmp/s 2>/dev/null && echo sysfs=mounted || echo sysfs=refused";
    // (keep /proc, expected output): without /proc, runc 1.1.5 cannot start at all.
    for (keep_proc, expected) in [
        (false, "proc=refused\nsysfs=refused\n"),
        (true, "proc=mounted\nsysfs=refused\n"),
    ] {
        let bundle = Bundle::new(&rt)
            .add_namespace("user", None)
            .uid_mapping(0, 100000, 65536)
            .gid_mapping(0, 100000, 65536)
            .edit(|config| {
                let mounts = config["mounts"].as_array_mut().unwrap();
                mounts.retain(|m| {
                    let dest = m["destination"].as_str().unwrap_or("");
                    (keep_proc && dest == "/proc") || (dest != "/proc" && !dest.starts_with("/sys"))
                });
                config["linux"]["maskedPaths"] = serde_json::json!([]);
                config["linux"]["readonlyPaths"] = serde_json::json!([]);
                for set in ["bounding", "effective", "permitted"] {
                    config["process"]["capabilities"][set] = caps.clone();
                }
            })
            .sh(script);
        for no_pivot in [false, true] {
            let id = husk_testing::unique_id("nopivot-proc");
            let _guard = rt.guard(&id);
            let mut args = vec!["run"];
            if no_pivot {
                args.push("--no-pivot");
            }
            let bundle_path = bundle.path().to_str().unwrap();
            args.extend(["--bundle", bundle_path, &id]);
            let out = rt.run(&args);
            if rt.is_runc() && !keep_proc {
                // runc 1.1.5 cannot start a container without /proc ("error closing exec fds:
                // open /proc/self/fd"); see tests/RUNC_DIFFERENCES.md.
                assert!(!out.status.success(), "{}", out.describe());
                continue;
            }
            assert!(out.status.success(), "{}", out.describe());
            assert_eq!(
                out.stdout_str(),
                expected,
                "keep_proc={keep_proc} no_pivot={no_pivot}: {}",
                out.describe()
            );
        }
    }
}

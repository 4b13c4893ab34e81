//! The container's filesystem view: root path and read-only root, propagation, bind/rbind/tmpfs/proc/sysfs/devpts/
//! mqueue/cgroup mounts and their options, devices, masked and read-only paths, hostname, domainname and sysctls.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::path::Path;

use husk_testing::{Bundle, HostMount, OutputExt, Runtime, TempDir};
use serde_json::json;

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// One line of /proc/self/mountinfo.
#[derive(Debug)]
struct MountEntry {
    root: String,
    mount_point: String,
    options: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    super_options: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(MountEntry {
                root: left.get(3)?.to_string(),
                mount_point: left.get(4)?.to_string(),
                options: left.get(5)?.split(',').map(str::to_owned).collect(),
                optional: left[6..].iter().map(|s| s.to_string()).collect(),
                fstype: right.first()?.to_string(),
                super_options: right
                    .get(2)
                    .map(|o| o.split(',').map(str::to_owned).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The topmost mount at `mount_point` (the last one listed).
fn mount_at<'a>(mounts: &'a [MountEntry], mount_point: &str) -> &'a MountEntry {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == mount_point)
        .unwrap_or_else(|| panic!("no mount at {mount_point}: {mounts:#?}"))
}

fn has(options: &[String], option: &str) -> bool {
    options.iter().any(|o| o == option)
}

/// Runs `cat /proc/self/mountinfo` in the container.
fn mountinfo_inside(rt: &Runtime, bundle: Bundle) -> Vec<MountEntry> {
    parse_mountinfo(&rt.run_bundle_ok(&bundle.sh("cat /proc/self/mountinfo")))
}

/// A host mount made for a test, unmounted on drop.
#[test]
fn relative_and_absolute_root_paths() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).sh("cat /marker");
    std::fs::rename(bundle.rootfs(), bundle.path().join("my-root")).unwrap();
    std::fs::write(bundle.path().join("my-root/marker"), "relative\n").unwrap();
    let bundle = bundle.set("/root/path", json!("my-root"));
    assert_eq!(rt.run_bundle_ok(&bundle), "relative\n");

    std::fs::write(bundle.path().join("my-root/marker"), "absolute\n").unwrap();
    let absolute = bundle.path().join("my-root");
    let bundle = bundle.set("/root/path", json!(absolute.to_str().unwrap()));
    assert_eq!(rt.run_bundle_ok(&bundle), "absolute\n");
}

#[test]
fn missing_root_path_fails() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .set("/root/path", json!("no-such-dir"))
        .sh("echo ran");
    let out = rt.run_bundle(&bundle);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(rt.list_ids().is_empty());
}

#[test]
fn readonly_root_refuses_writes() {
    let rt = runtime();
    let out = rt.run_bundle(&Bundle::new(&rt).readonly(true).sh("touch /new-file"));
    assert_ne!(out.exit_code(), 0, "{}", out.describe());
    assert!(
        out.stderr_str().contains("Read-only file system"),
        "expected EROFS:\n{}",
        out.describe()
    );

    let mounts = mountinfo_inside(&rt, Bundle::new(&rt).readonly(true));
    assert!(
        has(&mount_at(&mounts, "/").options, "ro"),
        "{:?}",
        mount_at(&mounts, "/")
    );

    let bundle = Bundle::new(&rt)
        .readonly(false)
        .sh("touch /new-file && echo written");
    assert_eq!(rt.run_bundle_ok(&bundle), "written\n");
    assert!(
        bundle.rootfs().join("new-file").exists(),
        "write did not reach the bundle's rootfs"
    );
}

#[test]
fn rootfs_propagation_values_are_accepted_and_bogus_refused() {
    let rt = runtime();
    for propagation in [
        "private", "rprivate", "slave", "rslave", "shared", "rshared",
    ] {
        let bundle = Bundle::new(&rt)
            .set("/linux/rootfsPropagation", json!(propagation))
            .sh("echo ok");
        let out = rt.run_bundle(&bundle);
        assert_eq!(
            out.stdout_str(),
            "ok\n",
            "rootfsPropagation={propagation}\n{}",
            out.describe()
        );
    }
    let out = rt.run_bundle(&Bundle::new(&rt).set("/linux/rootfsPropagation", json!("bogus")));
    assert!(
        !out.status.success(),
        "bogus rootfsPropagation accepted\n{}",
        out.describe()
    );
}

/// A rootfs on a shared host mount whose path has a space (mountinfo shows it as `\040`), with
/// `rootfsPropagation` shared: the init must find that mount to make it private before
/// pivot_root. It once compared escaped mountinfo paths with real ones, missed the mount, and
/// pivot_root failed (EINVAL) after the container's /proc, /dev and /sys mounts had propagated
/// onto the host, where they stayed.
#[test]
fn a_rootfs_on_a_shared_mount_with_a_space_in_its_path_runs_and_leaks_no_mount() {
    let rt = runtime();
    let dir = TempDir::new("husk-test-space");
    let base = dir.join("with space");
    std::fs::create_dir(&base).unwrap();
    let _shared = HostMount::shared_bind(&base);
    // Whatever a broken run leaks below `base` goes with it (HostMount unmounts one level).
    struct UnmountBelow(std::path::PathBuf);
    impl Drop for UnmountBelow {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .args(["-R", "-l"])
                .arg(&self.0)
                .status();
        }
    }
    let rootfs = base.join("rootfs");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(husk_testing::default_rootfs())
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(copied.success(), "copy the rootfs to {}", rootfs.display());
    let _leaks = UnmountBelow(rootfs.clone());
    for propagation in ["shared", "rshared", "rslave"] {
        let bundle = Bundle::new(&rt)
            .set("/root/path", json!(rootfs))
            .set("/linux/rootfsPropagation", json!(propagation))
            .sh("echo ok");
        let out = rt.run_bundle(&bundle);
        assert_eq!(
            out.stdout_str(),
            "ok\n",
            "rootfsPropagation={propagation}\n{}",
            out.describe()
        );
        let leaked = husk_testing::mounts_under(&rootfs);
        assert!(
            leaked.is_empty(),
            "rootfsPropagation={propagation}: the container's mounts reached the host: {leaked:?}"
        );
    }
}

/// Starts a container with `rootfsPropagation` set and a shared host directory rbind-mounted at /data, then mounts
/// a tmpfs below that directory on the host. Returns the container's mountinfo, taken from inside afterwards.
fn propagation_seen_inside(rt: &Runtime, propagation: &str) -> Vec<MountEntry> {
    let source = TempDir::new("husk-test-propsrc");
    std::fs::create_dir(source.join("sub")).unwrap();
    let _shared = HostMount::shared_bind(source.path());
    let bundle = Bundle::new(rt)
        .with_shared_dir()
        .set("/linux/rootfsPropagation", json!(propagation))
        .add_mount("/data", "bind", source.path().to_str().unwrap(), &["rbind"])
        .sh("echo ready > /shared/ready; while [ ! -e /shared/go ]; do sleep 0.02; done; \
             cat /proc/self/mountinfo > /shared/mountinfo.tmp; mv /shared/mountinfo.tmp /shared/mountinfo");
    let container = rt.create(&bundle);
    container.start();
    assert!(husk_testing::wait_for(
        || bundle.read_shared("ready").is_some(),
        std::time::Duration::from_secs(10)
    ));
    let submount = HostMount::tmpfs(&source.join("sub"));
    std::fs::write(bundle.shared_dir().join("go"), "").unwrap();
    assert!(husk_testing::wait_for(
        || bundle.read_shared("mountinfo").is_some(),
        std::time::Duration::from_secs(10)
    ));
    let mounts = parse_mountinfo(&bundle.read_shared("mountinfo").unwrap());
    drop(container);
    drop(submount);
    mounts
}

fn propagation_tags(entry: &MountEntry) -> Vec<&str> {
    entry
        .optional
        .iter()
        .map(|o| o.split(':').next().unwrap())
        .collect()
}

#[test]
fn rootfs_propagation_rprivate_isolates_from_host() {
    let rt = runtime();
    let mounts = propagation_seen_inside(&rt, "rprivate");
    assert!(
        propagation_tags(mount_at(&mounts, "/data")).is_empty(),
        "{:?}",
        mount_at(&mounts, "/data")
    );
    assert!(
        !mounts.iter().any(|m| m.mount_point == "/data/sub"),
        "host mount propagated into rprivate container"
    );
}

#[test]
fn rootfs_propagation_rslave_receives_host_mounts() {
    let rt = runtime();
    let mounts = propagation_seen_inside(&rt, "rslave");
    assert_eq!(
        propagation_tags(mount_at(&mounts, "/data")),
        ["master"],
        "{:?}",
        mount_at(&mounts, "/data")
    );
    assert!(
        mounts.iter().any(|m| m.mount_point == "/data/sub"),
        "host mount did not propagate into rslave container"
    );
}

#[test]
fn rootfs_propagation_rshared_shares_with_host() {
    let rt = runtime();
    let mounts = propagation_seen_inside(&rt, "rshared");
    assert!(
        propagation_tags(mount_at(&mounts, "/data")).contains(&"shared"),
        "{:?}",
        mount_at(&mounts, "/data")
    );
    assert!(
        mounts.iter().any(|m| m.mount_point == "/data/sub"),
        "host mount did not propagate into rshared container"
    );
}

#[test]
fn bind_mount_with_options() {
    let rt = runtime();
    let source = TempDir::new("husk-test-bindsrc");
    std::fs::write(source.join("hello"), "from-host\n").unwrap();
    husk_testing::write_script(source.join("prog"), "echo executed");
    let src = source.path().to_str().unwrap();

    let bundle = Bundle::new(&rt)
        .add_mount("/data", "bind", src, &["bind", "ro", "nosuid", "nodev", "noexec"])
        .sh("cat /data/hello; touch /data/new 2>&1 && echo write-ok; /data/prog 2>&1 || echo exec-refused; echo ---; cat /proc/self/mountinfo");
    let out = rt.run_bundle_ok(&bundle);
    let (effects, mountinfo) = out.split_once("---\n").unwrap();
    assert!(effects.starts_with("from-host\n"), "{effects}");
    assert!(
        effects.contains("Read-only file system") && !effects.contains("write-ok"),
        "{effects}"
    );
    assert!(
        effects.contains("exec-refused") && !effects.contains("executed"),
        "{effects}"
    );
    assert!(!source.join("new").exists());
    let mounts = parse_mountinfo(mountinfo);
    let data = mount_at(&mounts, "/data");
    for option in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(has(&data.options, option), "{option} missing: {data:?}");
    }
    assert_eq!(data.root, src, "{data:?}");

    // The same directory, read-write and without the restrictions.
    let bundle = Bundle::new(&rt)
        .add_mount("/data", "bind", src, &["bind", "rw", "suid", "dev", "exec"])
        .sh("touch /data/new && /data/prog; echo ---; cat /proc/self/mountinfo");
    let out = rt.run_bundle_ok(&bundle);
    let (effects, mountinfo) = out.split_once("---\n").unwrap();
    assert_eq!(effects, "executed\n");
    assert!(source.join("new").exists());
    let mounts = parse_mountinfo(mountinfo);
    let data = mount_at(&mounts, "/data");
    for option in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(!has(&data.options, option), "{option} present: {data:?}");
    }
    assert!(
        bundle.leftover_mounts().is_empty(),
        "{:?}",
        bundle.leftover_mounts()
    );
}

#[test]
fn bind_mount_of_single_file() {
    let rt = runtime();
    let source = TempDir::new("husk-test-bindfile");
    std::fs::write(source.join("file"), "single-file\n").unwrap();
    let file = source.join("file");
    let bundle = Bundle::new(&rt)
        .add_mount(
            "/etc/injected",
            "bind",
            file.to_str().unwrap(),
            &["bind", "ro"],
        )
        .sh("cat /etc/injected");
    assert_eq!(rt.run_bundle_ok(&bundle), "single-file\n");
}

#[test]
fn rbind_includes_submounts_and_bind_does_not() {
    let rt = runtime();
    let source = TempDir::new("husk-test-rbindsrc");
    std::fs::create_dir(source.join("sub")).unwrap();
    let submount = HostMount::tmpfs(&source.join("sub"));
    std::fs::write(source.join("sub/inner"), "in-submount\n").unwrap();
    let src = source.path().to_str().unwrap();

    let script = "cat /data/sub/inner 2>/dev/null || echo missing; grep -c ' /data/sub ' /proc/self/mountinfo";
    let recursive = Bundle::new(&rt)
        .add_mount("/data", "bind", src, &["rbind", "ro"])
        .sh(script);
    assert_eq!(rt.run_bundle(&recursive).stdout_str(), "in-submount\n1\n");
    let flat = Bundle::new(&rt)
        .add_mount("/data", "bind", src, &["bind", "ro"])
        .sh(script);
    assert_eq!(rt.run_bundle(&flat).stdout_str(), "missing\n0\n");
    drop(submount);
}

#[test]
fn mount_destination_is_created() {
    let rt = runtime();
    let source = TempDir::new("husk-test-deepdst");
    std::fs::write(source.join("f"), "deep\n").unwrap();
    let bundle = Bundle::new(&rt)
        .add_mount(
            "/a/b/c",
            "bind",
            source.path().to_str().unwrap(),
            &["rbind"],
        )
        .sh("cat /a/b/c/f");
    assert_eq!(rt.run_bundle_ok(&bundle), "deep\n");
}

#[test]
fn tmpfs_mount_with_size_and_mode() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .add_mount("/scratch", "tmpfs", "tmpfs", &["nosuid", "nodev", "size=1m", "mode=750"])
        .sh("stat -c %a /scratch; dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null && echo fit || echo full; echo ---; cat /proc/self/mountinfo");
    let out = rt.run_bundle_ok(&bundle);
    let (effects, mountinfo) = out.split_once("---\n").unwrap();
    assert_eq!(effects, "750\nfull\n", "tmpfs mode or size not applied");
    let mounts = parse_mountinfo(mountinfo);
    let scratch = mount_at(&mounts, "/scratch");
    assert_eq!(scratch.fstype, "tmpfs");
    assert!(has(&scratch.super_options, "size=1024k"), "{scratch:?}");
    assert!(has(&scratch.super_options, "mode=750"), "{scratch:?}");
    assert!(
        has(&scratch.options, "nosuid") && has(&scratch.options, "nodev"),
        "{scratch:?}"
    );
}

#[test]
fn standard_filesystems_are_mounted() {
    let rt = runtime();
    let mounts = mountinfo_inside(&rt, Bundle::new(&rt));
    for (mount_point, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
    ] {
        let entry = mount_at(&mounts, mount_point);
        assert_eq!(entry.fstype, fstype, "{entry:?}");
    }
    // The spec template mounts /sys read-only.
    assert!(has(&mount_at(&mounts, "/sys").options, "ro"));
    let devpts = mount_at(&mounts, "/dev/pts");
    assert!(
        has(&devpts.super_options, "ptmxmode=666"),
        "devpts needs newinstance,ptmxmode=0666: {devpts:?}"
    );
    // cgroup v2 mounts a single cgroup2 filesystem; v1 (and hybrid) hosts get a tmpfs holding per-controller mounts.
    let cgroup = mount_at(&mounts, "/sys/fs/cgroup");
    let v1_controllers = mounts
        .iter()
        .filter(|m| m.mount_point.starts_with("/sys/fs/cgroup/") && m.fstype == "cgroup")
        .count();
    assert!(
        cgroup.fstype == "cgroup2" || (cgroup.fstype == "tmpfs" && v1_controllers > 0),
        "no cgroup filesystem at /sys/fs/cgroup: {cgroup:?}"
    );
}

#[test]
fn proc_shows_container_processes_only() {
    let rt = runtime();
    let out = rt.run_bundle_ok(&Bundle::new(&rt).sh("ls -d /proc/[0-9]* | wc -l"));
    // sh and the pipeline's ls and wc: never the host's hundreds of processes.
    let count: usize = out.trim().parse().unwrap();
    assert!((1..=4).contains(&count), "{out}");
}

#[test]
fn mqueue_and_sysfs_mounts_from_config() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .add_mount(
            "/mnt/mq",
            "mqueue",
            "mqueue",
            &["nosuid", "nodev", "noexec"],
        )
        .add_mount(
            "/mnt/sys",
            "sysfs",
            "sysfs",
            &["ro", "nosuid", "nodev", "noexec"],
        )
        .add_mount("/mnt/proc", "proc", "proc", &["nosuid", "nodev", "noexec"]);
    let mounts = mountinfo_inside(&rt, bundle);
    assert_eq!(mount_at(&mounts, "/mnt/mq").fstype, "mqueue");
    assert_eq!(mount_at(&mounts, "/mnt/sys").fstype, "sysfs");
    assert!(has(&mount_at(&mounts, "/mnt/sys").options, "ro"));
    assert_eq!(mount_at(&mounts, "/mnt/proc").fstype, "proc");
}

#[test]
fn default_devices_exist_with_right_numbers() {
    let rt = runtime();
    let script = "for d in null zero full random urandom tty; do stat -c '%n %F %t %T' /dev/$d; done; \
                  echo x > /dev/null && head -c 4 /dev/zero | wc -c; head -c 8 /dev/urandom | wc -c";
    let out = rt.run_bundle_ok(&Bundle::new(&rt).sh(script));
    let expected = [
        ("null", "1", "3"),
        ("zero", "1", "5"),
        ("full", "1", "7"),
        ("random", "1", "8"),
        ("urandom", "1", "9"),
        ("tty", "5", "0"),
    ];
    let lines: Vec<&str> = out.lines().collect();
    for (line, (name, major, minor)) in lines.iter().zip(expected) {
        assert_eq!(
            *line,
            format!("/dev/{name} character special file {major} {minor}"),
            "{out}"
        );
    }
    assert_eq!(&lines[6..], ["4", "8"], "{out}");
}

#[test]
fn dev_symlinks_and_ptmx() {
    let rt = runtime();
    let script = "for l in fd stdin stdout stderr; do echo $l=$(readlink /dev/$l); done; stat -L -c '%F %t %T' /dev/ptmx";
    let out = rt.run_bundle_ok(&Bundle::new(&rt).sh(script));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..4],
        [
            "fd=/proc/self/fd",
            "stdin=/proc/self/fd/0",
            "stdout=/proc/self/fd/1",
            "stderr=/proc/self/fd/2"
        ],
        "{out}"
    );
    // /dev/ptmx must be the container's devpts ptmx (5:2), as a symlink or a bind mount.
    assert_eq!(lines[4], "character special file 5 2", "{out}");
}

#[test]
fn ptmx_belongs_to_container_devpts() {
    let rt = runtime();
    let out = rt
        .run_bundle_ok(&Bundle::new(&rt).sh("readlink /dev/ptmx || echo not-a-link; ls /dev/pts"));
    let first = out.lines().next().unwrap();
    if first != "not-a-link" {
        assert!(first == "pts/ptmx" || first == "/dev/pts/ptmx", "{out}");
    }
    // A new devpts instance has no ptys of the host's.
    assert_eq!(out.lines().skip(1).collect::<Vec<_>>(), ["ptmx"], "{out}");
}

#[test]
fn custom_device_node() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        // Major 1 minor 3 is the null device, harmless to create and to write to.
        .add_device("/dev/custom-null", "c", 1, 3, 0o640, 1000, 1001)
        .set("/linux/resources/devices/-", json!({ "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" }))
        // The owner may write to it; the spec template gives root no CAP_DAC_OVERRIDE, so the owner is the one to try.
        .user(1000, 1001, &[])
        .sh("stat -c '%F %t %T %a %u %g' /dev/custom-null; echo data > /dev/custom-null && echo writable");
    let out = rt.run_bundle_ok(&bundle);
    assert_eq!(out, "character special file 1 3 640 1000 1001\nwritable\n");
}

#[test]
fn masked_paths_hide_files_and_directories() {
    let rt = runtime();
    let bundle = Bundle::new(&rt);
    std::fs::write(bundle.rootfs().join("etc/secret"), "topsecret\n").unwrap();
    std::fs::create_dir(bundle.rootfs().join("etc/secretdir")).unwrap();
    std::fs::write(bundle.rootfs().join("etc/secretdir/inner"), "hidden\n").unwrap();
    let bundle = bundle
        .masked_path("/etc/secret")
        .masked_path("/etc/secretdir")
        .masked_path("/does/not/exist")
        .sh("echo file=[$(cat /etc/secret)]; echo dir=[$(ls -A /etc/secretdir)]; \
             echo keys=[$(cat /proc/keys)]; touch /etc/secretdir/x 2>/dev/null && echo dir-writable; true");
    let out = rt.run_bundle_ok(&bundle);
    // /proc/keys is in the spec template's maskedPaths (and exists on the host: the kernel has keyrings).
    assert!(Path::new("/proc/keys").exists());
    assert_eq!(out, "file=[]\ndir=[]\nkeys=[]\n", "masked paths visible");
    assert_eq!(
        std::fs::read_to_string(bundle.rootfs().join("etc/secret")).unwrap(),
        "topsecret\n"
    );
}

#[test]
fn readonly_paths_refuse_writes() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).readonly(false);
    std::fs::create_dir(bundle.rootfs().join("etc/rodir")).unwrap();
    let bundle = bundle
        .readonly_path("/etc/rodir")
        .sh("touch /etc/rodir/x 2>&1; touch /etc/rw && echo rw-ok; grep -E ' /etc/rodir | /proc/sys ' /proc/self/mountinfo");
    let out = rt.run_bundle_ok(&bundle);
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("rw-ok"), "{out}");
    assert!(!bundle.rootfs().join("etc/rodir/x").exists());
    let mounts = parse_mountinfo(&out);
    assert!(has(&mount_at(&mounts, "/etc/rodir").options, "ro"), "{out}");
    // The spec template lists /proc/sys among readonlyPaths.
    assert!(has(&mount_at(&mounts, "/proc/sys").options, "ro"), "{out}");
}

#[test]
fn hostname() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .hostname("husk-box")
        .sh("hostname; cat /proc/sys/kernel/hostname");
    assert_eq!(rt.run_bundle_ok(&bundle), "husk-box\nhusk-box\n");
}

#[test]
fn domainname() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .domainname("example.test")
        .sh("cat /proc/sys/kernel/domainname");
    let out = rt.run_bundle_ok(&bundle);
    if rt.is_runc() {
        // runc 1.1.5 ignores `domainname` (support came in runc 1.2): the new uts namespace keeps "(none)".
        // See tests/RUNC_DIFFERENCES.md.
        assert_eq!(
            out, "(none)\n",
            "runc 1.1.5 was expected to ignore domainname"
        );
        return;
    }
    assert_eq!(out, "example.test\n");
}

#[test]
fn hostname_without_uts_namespace_is_refused() {
    let rt = runtime();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let bundle = Bundle::new(&rt)
        .remove_namespace("uts")
        .hostname("must-not-apply")
        .sh("hostname");
    let out = rt.run_bundle(&bundle);
    assert!(!out.status.success(), "{}", out.describe());
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host,
        "host hostname changed!"
    );
}

#[test]
fn sysctls_apply_inside_namespaces_only() {
    let rt = runtime();
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let (shm, fwd) = if host_shm.trim() == "1" {
        ("0", "0")
    } else {
        ("1", "1")
    };
    let bundle = Bundle::new(&rt)
        .sysctl("kernel.shm_rmid_forced", shm)
        .sysctl("net.ipv4.ip_forward", fwd)
        .sh("cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_forward");
    assert_eq!(rt.run_bundle_ok(&bundle), format!("{shm}\n{fwd}\n"));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(),
        host_shm
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
}

#[test]
fn sysctl_for_host_namespace_is_refused() {
    let rt = runtime();
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let other = if host_shm.trim() == "1" { "0" } else { "1" };
    let bundle = Bundle::new(&rt)
        .remove_namespace("ipc")
        .sysctl("kernel.shm_rmid_forced", other)
        .sh("echo ran");
    let out = rt.run_bundle(&bundle);
    assert!(
        !out.status.success(),
        "sysctl of the host's ipc namespace accepted\n{}",
        out.describe()
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(),
        host_shm,
        "host sysctl changed!"
    );
}

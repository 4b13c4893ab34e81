//! The hardened profile (`husk::profile`) run as real containers through the library, checked
//! from inside: who the process is, what it can do, what it cannot, and that the refusals come
//! from where the profile says.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use husk::oci_spec::runtime::Spec;
use husk::profile::{HardenedProfile, MASKED_PATHS, READONLY_PATHS};
use husk::ExitStatus;
use husk_testing::{require_root, unique_id, Bundle, Runtime as CliRuntime};
use nix::sys::signal::Signal;

/// Where the container's results land: a writable bind of a host directory.
const OUT: &str = "/mnt";
const TIMEOUT: Duration = Duration::from_secs(60);

struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// The value of `key=value` lines in stdout.
    fn value(&self, key: &str) -> Option<&str> {
        let prefix = format!("{key}=");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(str::trim)
    }

    fn describe(&self) -> String {
        format!(
            "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A sandbox: a fresh copy of the test rootfs used by a [`HardenedProfile`].
struct Sandbox {
    cli: CliRuntime,
    bundle: Bundle,
    out: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        require_root();
        let cli = CliRuntime::with_binary(env!("CARGO_BIN_EXE_husk"));
        // Bundle gives a private copy of the busybox rootfs (and cleans it up); its config.json
        // is replaced by the profile's.
        let bundle = Bundle::new(&cli);
        let out = bundle.path().join("out");
        std::fs::create_dir(&out).unwrap();
        // The container runs as nobody: let it write its results.
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
        Sandbox { cli, bundle, out }
    }

    /// The profile running `script` (its stdout and stderr go to files under [`OUT`]).
    fn profile(&self, script: &str) -> HardenedProfile {
        let wrapped = format!("exec >{OUT}/stdout 2>{OUT}/stderr\n{script}");
        HardenedProfile::new(
            self.bundle.rootfs(),
            vec!["sh".into(), "-c".into(), wrapped],
        )
        .writable_bind(&self.out, OUT)
    }

    fn run(&self, profile: &HardenedProfile) -> Outcome {
        self.run_edited(profile, |_| {})
    }

    /// Writes the bundle with the profile, lets `edit` change the written spec, then creates,
    /// starts and waits for the container through the library, and deletes it.
    fn run_edited(&self, profile: &HardenedProfile, edit: impl FnOnce(&mut Spec)) -> Outcome {
        profile
            .write_bundle(self.bundle.path())
            .expect("write bundle");
        let config = self.bundle.path().join("config.json");
        let mut spec: Spec =
            serde_json::from_slice(&std::fs::read(&config).unwrap()).expect("config.json");
        edit(&mut spec);
        std::fs::write(&config, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        for name in ["stdout", "stderr"] {
            let _ = std::fs::remove_file(self.out.join(name));
        }

        let rt = husk::Runtime::new(self.cli.scratch_dir().join("lib-root"))
            .with_init_binary(env!("CARGO_BIN_EXE_husk"));
        let id = unique_id("hardened");
        let mut c = rt
            .create(&id, self.bundle.path(), &Default::default())
            .unwrap_or_else(|e| {
                panic!(
                    "create: {e}\nconfig: {}",
                    std::fs::read_to_string(&config).unwrap()
                )
            });
        let _cleanup = Cleanup {
            rt: rt.clone(),
            id: id.clone(),
        };
        c.start().expect("start");
        let done = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let (rt, id, done) = (rt.clone(), id.clone(), done.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + TIMEOUT;
                while !done.load(Ordering::Relaxed) {
                    if Instant::now() >= deadline {
                        if let Ok(c) = rt.load(&id) {
                            let _ = c.kill(Signal::SIGKILL, true);
                        }
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                false
            })
        };
        let status = c.wait().expect("wait");
        done.store(true, Ordering::Relaxed);
        assert!(
            !watchdog.join().unwrap(),
            "container did not finish within {TIMEOUT:?}"
        );
        let read = |name: &str| std::fs::read_to_string(self.out.join(name)).unwrap_or_default();
        Outcome {
            status,
            stdout: read("stdout"),
            stderr: read("stderr"),
        }
    }
}

/// Force-deletes the container when the test is done or panics.
struct Cleanup {
    rt: husk::Runtime,
    id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(c) = self.rt.load(&self.id) {
            if let Err(e) = c.delete(true) {
                eprintln!("deleting container {}: {e}", self.id);
            }
        }
    }
}

fn assert_exit0(outcome: &Outcome) {
    assert_eq!(
        outcome.status,
        ExitStatus::Exited(0),
        "{}",
        outcome.describe()
    );
}

/// Fields of /proc/<pid>/status as `name=value` lines, for the container's PID 1 (the shell)
/// and for a child it execs (`cat`), which must have inherited the same.
const STATUS_FIELDS: &[&str] = &[
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
];

#[test]
fn process_is_nobody_without_capabilities_under_seccomp() {
    let sandbox = Sandbox::new();
    let mut script = String::new();
    for (who, file) in [("init", "/proc/1/status"), ("child", "/proc/self/status")] {
        for field in STATUS_FIELDS {
            script.push_str(&format!(
                "echo \"{who}.{field}=$(cat {file} | grep '^{field}:' | cut -d: -f2 | xargs)\"\n"
            ));
        }
    }
    script.push_str("echo \"id=$(id)\"\necho \"hostname=$(hostname)\"\n");
    let outcome = sandbox.run(&sandbox.profile(&script));
    assert_exit0(&outcome);
    for who in ["init", "child"] {
        let v = |field: &str| {
            outcome
                .value(&format!("{who}.{field}"))
                .unwrap_or("missing")
        };
        assert_eq!(
            v("Uid"),
            "65534 65534 65534 65534",
            "{}",
            outcome.describe()
        );
        assert_eq!(
            v("Gid"),
            "65534 65534 65534 65534",
            "{}",
            outcome.describe()
        );
        assert_eq!(v("Groups"), "", "{}", outcome.describe());
        // Documented: no capability in any set.
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(
                v(set),
                "0000000000000000",
                "{who} {set}\n{}",
                outcome.describe()
            );
        }
        assert_eq!(v("NoNewPrivs"), "1", "{}", outcome.describe());
        assert_eq!(v("Seccomp"), "2", "{}", outcome.describe());
    }
    assert_eq!(
        outcome.value("id"),
        Some("uid=65534(nobody) gid=65534(nogroup)"),
        "{}",
        outcome.describe()
    );
    assert_eq!(outcome.value("hostname"), Some("sandbox"));
}

#[test]
fn ordinary_programs_work() {
    let sandbox = Sandbox::new();
    let script = r#"
set -e
echo hello > /tmp/x
echo "cat=$(cat /tmp/x)"
echo "pipe=$(seq 1 1000 | sort -rn | head -n 1)"
echo "wc=$(ls /bin | wc -l)"
sleep 0.1 &
wait $!
echo "subshell=$( (echo $$ > /dev/null; echo inner) )"
mkdir -p /tmp/d/e
cd /tmp/d
touch f
mv f g
ln -s g h
echo "readlink=$(readlink h)"
mkfifo p
(echo through-fifo > p) &
echo "fifo=$(cat p)"
cd /
rm -r /tmp/d
cp /bin/busybox /tmp/busybox
echo "exec-from-tmp=$(/tmp/busybox echo yes)"
echo "ps=$(ps -o pid,comm | grep -c sh)"
echo "date=$(date +%Y | grep -c '^20')"
echo "dev-null=$(echo gone > /dev/null && echo ok)"
echo "urandom=$(head -c 16 /dev/urandom | wc -c)"
echo "ip-lo=$(ip -o addr show lo | grep -c 127.0.0.1)"
mkdir /tmp/www
echo served > /tmp/www/index.html
httpd -f -p 127.0.0.1:8080 -h /tmp/www &
for i in $(seq 1 100); do
    if body=$(wget -q -O - http://127.0.0.1:8080/index.html 2>/dev/null); then break; fi
    sleep 0.05
done
echo "http=$body"
kill $!
echo finished=yes
"#;
    let outcome = sandbox.run(&sandbox.profile(script));
    assert_exit0(&outcome);
    for (key, want) in [
        ("cat", "hello"),
        ("pipe", "1000"),
        ("subshell", "inner"),
        ("readlink", "g"),
        ("fifo", "through-fifo"),
        ("exec-from-tmp", "yes"),
        ("date", "1"),
        ("dev-null", "ok"),
        ("urandom", "16"),
        ("ip-lo", "1"),
        ("http", "served"),
        ("finished", "yes"),
    ] {
        assert_eq!(
            outcome.value(key),
            Some(want),
            "{key}\n{}",
            outcome.describe()
        );
    }
    let number = |key: &str| -> u32 {
        outcome
            .value(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key}\n{}", outcome.describe()))
    };
    assert!(number("wc") > 100, "{}", outcome.describe());
    assert!(number("ps") >= 1, "{}", outcome.describe());
}

#[test]
fn root_is_read_only_and_writable_places_are_limited() {
    let sandbox = Sandbox::new();
    let before = tree_manifest(&sandbox.bundle.rootfs());
    let script = r#"
touch /bin/new 2>&1; echo "touch-bin=$?"
(echo x > /etc/hostname) 2>&1; echo "write-etc=$?"
mkdir /newdir 2>&1; echo "mkdir-root=$?"
echo "root-opts=$(awk '$5 == "/" { print $6 }' /proc/self/mountinfo)"
echo "sys-opts=$(awk '$5 == "/sys" { print $6 }' /proc/self/mountinfo)"
echo "cgroup-opts=$(awk '$5 == "/sys/fs/cgroup" { print $6 }' /proc/self/mountinfo)"
echo "tmp-opts=$(awk '$5 == "/tmp" { print $6 }' /proc/self/mountinfo)"
echo "tmp-size-kb=$(df -k /tmp | awk 'NR == 2 { print $2 }')"
dd if=/dev/zero of=/tmp/fill bs=64k count=64; echo "fill-tmp=$?"
rm -f /tmp/fill
echo "shm-opts=$(awk '$5 == "/dev/shm" { print $6 }' /proc/self/mountinfo)"
echo ok > /dev/shm/x && echo "shm-write=$(cat /dev/shm/x)"
"#;
    let profile = sandbox.profile(script).tmp_size(1 << 20);
    let outcome = sandbox.run(&profile);
    assert_exit0(&outcome);
    let value = |k| outcome.value(k).unwrap_or("missing");
    for key in ["touch-bin", "write-etc", "mkdir-root"] {
        assert_ne!(value(key), "0", "{key}\n{}", outcome.describe());
    }
    assert!(
        outcome.stdout.matches("Read-only file system").count() >= 3,
        "{}",
        outcome.describe()
    );
    let opts = |key| value(key).split(',').map(String::from).collect::<Vec<_>>();
    assert!(
        opts("root-opts").contains(&"ro".into()),
        "{}",
        outcome.describe()
    );
    assert!(
        opts("sys-opts").contains(&"ro".into()),
        "{}",
        outcome.describe()
    );
    assert!(
        opts("cgroup-opts").contains(&"ro".into()),
        "{}",
        outcome.describe()
    );
    let tmp = opts("tmp-opts");
    for flag in ["rw", "nosuid", "nodev"] {
        assert!(
            tmp.contains(&flag.into()),
            "/tmp {flag}: {}",
            outcome.describe()
        );
    }
    let shm = opts("shm-opts");
    for flag in ["rw", "nosuid", "nodev", "noexec"] {
        assert!(
            shm.contains(&flag.into()),
            "/dev/shm {flag}: {}",
            outcome.describe()
        );
    }
    assert_eq!(value("tmp-size-kb"), "1024", "{}", outcome.describe());
    // 4 MiB into a 1 MiB /tmp.
    assert_ne!(value("fill-tmp"), "0", "{}", outcome.describe());
    assert!(
        outcome.stderr.contains("No space left on device") || outcome.stdout.contains("No space"),
        "{}",
        outcome.describe()
    );
    assert_eq!(value("shm-write"), "ok", "{}", outcome.describe());
    assert_eq!(
        before,
        tree_manifest(&sandbox.bundle.rootfs()),
        "the container changed its root filesystem"
    );
}

/// Path, type, mode, owner and size of every entry below `dir`.
fn tree_manifest(dir: &Path) -> String {
    let out = Command::new("find")
        .arg(dir)
        .args(["-printf", "%P %y %m %U:%G %s\n"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut lines: Vec<_> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn network_has_only_loopback() {
    let sandbox = Sandbox::new();
    let script = r#"
echo "interfaces=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); printf "%s ", $1 }' /proc/net/dev)"
echo "routes=$(awk 'NR > 1' /proc/net/route | wc -l)"
echo | nc -w 2 10.0.0.1 80 2>&1; echo "outside=$?"
"#;
    let outcome = sandbox.run(&sandbox.profile(script));
    assert_exit0(&outcome);
    assert_eq!(
        outcome.value("interfaces"),
        Some("lo"),
        "{}",
        outcome.describe()
    );
    assert_eq!(outcome.value("routes"), Some("0"), "{}", outcome.describe());
    assert_ne!(
        outcome.value("outside"),
        Some("0"),
        "{}",
        outcome.describe()
    );
    assert!(
        outcome.stdout.contains("Network is unreachable"),
        "{}",
        outcome.describe()
    );
}

/// Creating a user namespace is something an unprivileged user may do on this host; the
/// profile's seccomp filter refuses it with EPERM. The same container without the filter
/// succeeds, so the refusal is the filter's. Mounting fails either way (no capability).
#[test]
fn seccomp_refuses_with_eperm_what_an_unprivileged_user_could_do() {
    let sandbox = Sandbox::new();
    let script = r#"
unshare -U true; echo "unshare=$?"
mount -t tmpfs none /tmp; echo "mount=$?"
echo "seccomp=$(grep '^Seccomp:' /proc/self/status | cut -f2)"
"#;
    let profile = sandbox.profile(script);
    let filtered = sandbox.run(&profile);
    assert_exit0(&filtered);
    assert_eq!(
        filtered.value("seccomp"),
        Some("2"),
        "{}",
        filtered.describe()
    );
    assert_ne!(
        filtered.value("unshare"),
        Some("0"),
        "{}",
        filtered.describe()
    );
    assert!(
        filtered
            .stderr
            .contains("unshare(0x10000000): Operation not permitted"),
        "{}",
        filtered.describe()
    );
    assert_ne!(
        filtered.value("mount"),
        Some("0"),
        "{}",
        filtered.describe()
    );

    let control = sandbox.run_edited(&profile, |spec| {
        spec.linux_mut().as_mut().unwrap().set_seccomp(None);
    });
    assert_exit0(&control);
    assert_eq!(
        control.value("seccomp"),
        Some("0"),
        "{}",
        control.describe()
    );
    assert_eq!(
        control.value("unshare"),
        Some("0"),
        "without the filter, nobody may create a user namespace here; otherwise this test \
         cannot tell the filter's refusal apart\n{}",
        control.describe()
    );
    assert_ne!(control.value("mount"), Some("0"), "{}", control.describe());
}

#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    let sandbox = Sandbox::new();
    // Only shell builtins once the limit is reached: anything else would need a fork.
    let script = r#"
echo "pids.max=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
( i=0; while [ $i -lt 200 ]; do sleep 60 & i=$((i + 1)); done; echo "loop-finished" ) 2>/mnt/bomb
n=0
for p in /proc/[0-9]*; do n=$((n + 1)); done
echo "processes=$n"
kill -9 -1
wait
echo "survived=yes"
"#;
    let profile = sandbox.profile(script).pids_limit(24);
    let outcome = sandbox.run(&profile);
    assert_exit0(&outcome);
    assert_eq!(
        outcome.value("pids.max"),
        Some("24"),
        "{}",
        outcome.describe()
    );
    let processes: u32 = outcome
        .value("processes")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{}", outcome.describe()));
    assert!(
        (20..=24).contains(&processes),
        "processes {processes}\n{}",
        outcome.describe()
    );
    assert!(
        !outcome.stdout.contains("loop-finished"),
        "{}",
        outcome.describe()
    );
    let bomb = std::fs::read_to_string(sandbox.out.join("bomb")).unwrap_or_default();
    assert!(
        bomb.contains("can't fork") || bomb.contains("Resource temporarily unavailable"),
        "fork errors: {bomb:?}\n{}",
        outcome.describe()
    );
    assert_eq!(
        outcome.value("survived"),
        Some("yes"),
        "{}",
        outcome.describe()
    );
}

#[test]
fn kernel_information_is_masked_and_read_only() {
    let sandbox = Sandbox::new();
    // Only paths the host kernel has: a missing one has nothing to mask.
    let masked: Vec<&str> = MASKED_PATHS
        .iter()
        .copied()
        .filter(|p| Path::new(p).exists())
        .collect();
    assert!(
        !masked.is_empty(),
        "none of {MASKED_PATHS:?} exists on this host: nothing to check"
    );
    let mut script = String::new();
    for path in &masked {
        script.push_str(&format!(
            "if [ -d {path} ]; then echo \"{path}=dir $(stat -f -c %T {path}) $(ls -A {path} | wc -l)\"; \
             else echo \"{path}=file $(stat -c %t:%T {path}) $(cat {path} | wc -c)\"; fi\n"
        ));
    }
    for path in READONLY_PATHS {
        script.push_str(&format!(
            "echo \"{path}=$(awk '$5 == \"{path}\" {{ print $6 }}' /proc/self/mountinfo)\"\n"
        ));
    }
    script.push_str(
        r#"echo "chardevs=$(find /dev -maxdepth 1 -type c | sort | xargs)"
echo "blockdevs=$(find /dev -type b | wc -l)"
echo "devices.list=$(cat /sys/fs/cgroup/devices/devices.list | xargs)"
"#,
    );
    let outcome = sandbox.run(&sandbox.profile(&script));
    assert_exit0(&outcome);
    for path in &masked {
        let got = outcome.value(path).unwrap_or("missing");
        let want = if Path::new(path).is_dir() {
            "dir tmpfs 0"
        } else {
            // /dev/null bound over it: character device 1:3, empty.
            "file 1:3 0"
        };
        assert_eq!(got, want, "{path}\n{}", outcome.describe());
    }
    for path in READONLY_PATHS {
        if !Path::new(path).exists() {
            continue;
        }
        let opts = outcome.value(path).unwrap_or("missing");
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "{path}: {opts}\n{}",
            outcome.describe()
        );
    }
    assert_eq!(
        outcome.value("chardevs"),
        Some("/dev/full /dev/null /dev/random /dev/tty /dev/urandom /dev/zero"),
        "{}",
        outcome.describe()
    );
    assert_eq!(
        outcome.value("blockdevs"),
        Some("0"),
        "{}",
        outcome.describe()
    );
    let devices = outcome.value("devices.list").unwrap_or("missing");
    assert!(
        !devices.contains("a *:* rwm") && devices.contains("c 1:3 rwm"),
        "device cgroup: {devices}"
    );
}

/// The device cgroup (v1 devices controller, or v2 eBPF filter) refuses a device outside the
/// profile's list even where the node itself is reachable and its mode lets anyone open it: a
/// node of /dev/kmsg (1:11), mode 0666, bound into the sandbox and opened write-only (which
/// writes nothing and, unlike a read, needs no syslog permission). The control run allows 1:11
/// in `linux.resources.devices` and opens it, so the refusal is the device rule's, not the
/// file's mode or the mount's. (Not /dev/net/tun: the runtime's default list allows 10:200,
/// as runc's does.)
#[test]
fn a_reachable_device_outside_the_list_cannot_be_opened() {
    use husk::oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType, MountBuilder};
    let sandbox = Sandbox::new();
    let nodes = husk_testing::TempDir::new("husk-test-devnode");
    let kmsg = nodes.join("kmsg");
    nix::sys::stat::mknod(
        &kmsg,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 11),
    )
    .expect("mknod a kmsg node");
    std::fs::set_permissions(&kmsg, std::fs::Permissions::from_mode(0o666)).unwrap();
    // In a subshell: a failed redirection of `exec` ends the shell that tries it.
    let script = r#"
if (exec 3>/devtest/kmsg) 2>/dev/null; then echo "kmsg=opened"; else echo "kmsg=$( (exec 3>/devtest/kmsg) 2>&1)"; fi
"#;
    let profile = sandbox.profile(script);
    let bind_nodes = |spec: &mut Spec| {
        let mount = MountBuilder::default()
            .destination("/devtest")
            .typ("bind")
            .source(nodes.path())
            .options(vec!["bind".to_string()])
            .build()
            .unwrap();
        spec.mounts_mut().get_or_insert_with(Vec::new).push(mount);
    };
    let outcome = sandbox.run_edited(&profile, bind_nodes);
    assert_exit0(&outcome);
    let seen = outcome.value("kmsg").unwrap_or("missing");
    assert!(
        seen.contains("Operation not permitted"),
        "the device rule did not refuse 1:11 (EPERM expected): {seen}\n{}",
        outcome.describe()
    );

    let control = sandbox.run_edited(&profile, |spec| {
        bind_nodes(spec);
        let allow = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(11)
            .access("w")
            .build()
            .unwrap();
        let resources = spec
            .linux_mut()
            .as_mut()
            .unwrap()
            .resources_mut()
            .get_or_insert_with(Default::default);
        let mut devices = resources.devices().clone().unwrap_or_default();
        devices.push(allow);
        resources.set_devices(Some(devices));
    });
    assert_exit0(&control);
    assert_eq!(
        control.value("kmsg"),
        Some("opened"),
        "control: allowed, the node must open\n{}",
        control.describe()
    );
}

#[test]
fn rlimits_and_memory_limit_are_applied() {
    let sandbox = Sandbox::new();
    let script = r#"
echo "nofile=$(ulimit -n) $(ulimit -Hn)"
echo "nproc=$(ulimit -u)"
echo "core=$(ulimit -c)"
echo "memlock=$(ulimit -l)"
echo "memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
"#;
    let profile = sandbox.profile(script).memory_limit(64 << 20);
    let outcome = sandbox.run(&profile);
    assert_exit0(&outcome);
    for (key, want) in [
        ("nofile", "1024 4096"),
        ("nproc", "4096"),
        ("core", "0"),
        ("memlock", "8192"),
        ("memory", "67108864"),
    ] {
        assert_eq!(
            outcome.value(key),
            Some(want),
            "{key}\n{}",
            outcome.describe()
        );
    }
}

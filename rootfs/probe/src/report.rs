//! The report: everything a process can see about its own environment, as one JSON object.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::sys::{self, errno_name};

/// What the caller asked for beyond the fixed part of the report.
#[derive(Default)]
pub struct Request {
    /// Paths to check for existence, readability and writability.
    pub paths: Vec<String>,
    /// Sysctl keys (dotted, e.g. `net.ipv4.ip_forward`) to read from /proc/sys.
    pub sysctls: Vec<String>,
    /// `controller:file` pairs (controller empty or `unified` for cgroup v2) to read from the own cgroup.
    pub cgroup_files: Vec<String>,
    /// System calls to try: the spec as given (the report's key), the name and optional integer arguments.
    pub syscalls: Vec<(String, String, Vec<i64>)>,
    /// The directory whose device nodes are listed.
    pub dev_dir: String,
}

/// Capability names by bit number (include/uapi/linux/capability.h).
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const RLIMITS: [(&str, libc::__rlimit_resource_t); 16] = [
    ("RLIMIT_CPU", libc::RLIMIT_CPU),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ("RLIMIT_STACK", libc::RLIMIT_STACK),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ("RLIMIT_RSS", libc::RLIMIT_RSS),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("RLIMIT_AS", libc::RLIMIT_AS),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", libc::RLIMIT_NICE),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
];

const NAMESPACES: [&str; 10] = [
    "cgroup",
    "ipc",
    "mnt",
    "net",
    "pid",
    "pid_for_children",
    "time",
    "time_for_children",
    "user",
    "uts",
];

fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

fn error_json(e: &std::io::Error) -> Value {
    json!({ "errno": io_errno(e), "errno_name": errno_name(io_errno(e)), "message": e.to_string() })
}

/// Builds the full report.
pub fn build(request: &Request) -> Value {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uname = sys::uname();
    let uid = sys::resids(false);
    let gid = sys::resids(true);
    let mut report = Map::new();
    report.insert("pid".into(), json!(sys::getpid()));
    report.insert("ppid".into(), json!(sys::getppid()));
    report.insert(
        "args".into(),
        json!(std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()),
    );
    report.insert(
        "env".into(),
        json!(std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect::<Vec<_>>()),
    );
    report.insert(
        "cwd".into(),
        match std::env::current_dir() {
            Ok(dir) => json!(dir.to_string_lossy()),
            Err(e) => error_json(&e),
        },
    );
    report.insert("hostname".into(), json!(uname.nodename));
    report.insert("domainname".into(), json!(uname.domainname));
    report.insert(
        "uname".into(),
        json!({ "sysname": uname.sysname, "release": uname.release, "machine": uname.machine }),
    );
    report.insert("personality".into(), json!(sys::personality()));
    report.insert("namespaces".into(), namespaces());
    report.insert("uid_map".into(), id_map("/proc/self/uid_map"));
    report.insert("gid_map".into(), id_map("/proc/self/gid_map"));
    report.insert(
        "setgroups".into(),
        json!(fs::read_to_string("/proc/self/setgroups")
            .ok()
            .map(|s| s.trim().to_owned())),
    );
    report.insert(
        "uid".into(),
        json!({ "real": uid[0], "effective": uid[1], "saved": uid[2] }),
    );
    report.insert(
        "gid".into(),
        json!({ "real": gid[0], "effective": gid[1], "saved": gid[2] }),
    );
    report.insert("groups".into(), json!(sys::groups()));
    report.insert(
        "umask".into(),
        json!(status_field(&status, "Umask").and_then(|v| u32::from_str_radix(v, 8).ok())),
    );
    report.insert("capabilities".into(), capabilities(&status));
    report.insert("no_new_privs".into(), json!(sys::no_new_privs()));
    report.insert(
        "seccomp".into(),
        json!({
            "mode": status_field(&status, "Seccomp").and_then(|v| v.parse::<u32>().ok()),
            "filters": status_field(&status, "Seccomp_filters").and_then(|v| v.parse::<u32>().ok()),
        }),
    );
    report.insert("rlimits".into(), rlimits());
    report.insert(
        "oom_score_adj".into(),
        json!(fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())),
    );
    report.insert(
        "nspid".into(),
        json!(status_field(&status, "NSpid").map(|v| v
            .split_whitespace()
            .filter_map(|p| p.parse::<i64>().ok())
            .collect::<Vec<_>>())),
    );
    let (stdin_is_tty, winsize) = sys::terminal(0);
    report.insert(
        "terminal".into(),
        json!({
            "stdin_isatty": stdin_is_tty,
            "stdout_isatty": sys::terminal(1).0,
            "rows": winsize.map(|w| w.0),
            "columns": winsize.map(|w| w.1),
            "stdin": fs::read_link("/proc/self/fd/0").ok().map(|p| p.to_string_lossy().into_owned()),
        }),
    );
    report.insert(
        "io_priority".into(),
        match sys::io_priority() {
            Ok((class, level)) => json!({ "class": class, "level": level }),
            Err(errno) => json!({ "errno": errno }),
        },
    );
    let (policy, nice) = sys::scheduler();
    report.insert(
        "scheduler".into(),
        json!({ "policy": policy, "nice": nice }),
    );
    report.insert(
        "timens_offsets".into(),
        json!(fs::read_to_string("/proc/self/timens_offsets")
            .ok()
            .map(|text| text
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>())),
    );
    report.insert(
        "cpus_allowed".into(),
        json!(status_field(&status, "Cpus_allowed_list")),
    );
    report.insert(
        "mems_allowed".into(),
        json!(status_field(&status, "Mems_allowed_list")),
    );
    report.insert(
        "apparmor".into(),
        json!(fs::read_to_string("/proc/self/attr/current")
            .ok()
            .map(|s| s.trim_end_matches(['\n', '\0']).to_owned())),
    );
    let mounts =
        crate::mountinfo::parse(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    report.insert("cgroups".into(), cgroups());
    report.insert(
        "cgroup_files".into(),
        cgroup_files(&request.cgroup_files, &mounts),
    );
    report.insert("mounts".into(), Value::Array(mounts));
    report.insert("paths".into(), paths(&request.paths));
    report.insert("devices".into(), devices(Path::new(&request.dev_dir)));
    report.insert("sysctls".into(), sysctls(&request.sysctls));
    report.insert(
        "syscalls".into(),
        Value::Object(
            request
                .syscalls
                .iter()
                .map(|(spec, name, args)| (spec.clone(), crate::syscalls::try_syscall(name, args)))
                .collect(),
        ),
    );
    // Last, so that nothing the probe opens while building the report shows up.
    report.insert("fds".into(), fds());
    Value::Object(report)
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        line.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

fn namespaces() -> Value {
    let mut map = Map::new();
    for kind in NAMESPACES {
        let value = match fs::metadata(format!("/proc/self/ns/{kind}")) {
            Ok(meta) => json!(meta.ino()),
            Err(_) => Value::Null,
        };
        map.insert(kind.into(), value);
    }
    Value::Object(map)
}

fn id_map(path: &str) -> Value {
    match fs::read_to_string(path) {
        Ok(text) => json!(text
            .lines()
            .map(|line| line
                .split_whitespace()
                .filter_map(|n| n.parse::<u64>().ok())
                .collect::<Vec<_>>())
            .filter(|entry| entry.len() == 3)
            .collect::<Vec<_>>()),
        Err(_) => Value::Null,
    }
}

fn capabilities(status: &str) -> Value {
    let mut sets = Map::new();
    let mut raw = Map::new();
    for (name, key) in [
        ("inheritable", "CapInh"),
        ("permitted", "CapPrm"),
        ("effective", "CapEff"),
        ("bounding", "CapBnd"),
        ("ambient", "CapAmb"),
    ] {
        let Some(mask) = status_field(status, key).and_then(|v| u64::from_str_radix(v, 16).ok())
        else {
            sets.insert(name.into(), Value::Null);
            continue;
        };
        raw.insert(name.into(), json!(format!("{mask:016x}")));
        let names: Vec<String> = (0..64)
            .filter(|bit| mask & (1u64 << bit) != 0)
            .map(|bit| {
                CAPABILITIES
                    .get(bit)
                    .map_or_else(|| format!("CAP_#{bit}"), |n| (*n).to_owned())
            })
            .collect();
        sets.insert(name.into(), json!(names));
    }
    sets.insert("hex".into(), Value::Object(raw));
    Value::Object(sets)
}

fn rlimits() -> Value {
    let mut map = Map::new();
    for (name, resource) in RLIMITS {
        let value = match sys::getrlimit(resource) {
            Ok((soft, hard)) => json!({ "soft": soft, "hard": hard }),
            Err(errno) => json!({ "errno": errno }),
        };
        map.insert(name.into(), value);
    }
    Value::Object(map)
}

fn cgroups() -> Value {
    let text = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    json!(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse::<u32>().ok()?;
            let controllers: Vec<&str> =
                parts.next()?.split(',').filter(|c| !c.is_empty()).collect();
            let path = parts.next()?;
            Some(json!({ "hierarchy": hierarchy, "controllers": controllers, "path": path }))
        })
        .collect::<Vec<_>>())
}

/// Reads each `controller:file` from the process's own cgroup. The cgroup directory is found through the mount
/// table: the mount of that hierarchy whose root is a prefix of the process's cgroup path (mountinfo field 4 is the
/// cgroup the mount shows at its mount point, which with a cgroup namespace or a bind of a sub-cgroup is not "/").
fn cgroup_files(requests: &[String], mounts: &[Value]) -> Value {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Map::new();
    for request in requests {
        let (controller, file) = request.split_once(':').unwrap_or(("", request));
        let v2 = controller.is_empty() || controller == "unified";
        let own_path = own.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let matches = if v2 {
                hierarchy == "0" && controllers.is_empty()
            } else {
                controllers.split(',').any(|c| c == controller)
            };
            matches.then(|| path.to_owned())
        });
        let Some(own_path) = own_path else {
            out.insert(
                request.clone(),
                json!({ "error": format!("no {controller:?} line in /proc/self/cgroup") }),
            );
            continue;
        };
        let dir = mounts.iter().find_map(|m| {
            let fstype = m["fstype"].as_str()?;
            let right_kind = if v2 {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup"
                    && m["super_options"]
                        .as_array()?
                        .iter()
                        .any(|o| o.as_str() == Some(controller))
            };
            if !right_kind {
                return None;
            }
            let root = m["root"].as_str()?;
            let rest = if root == "/" {
                own_path.as_str()
            } else {
                own_path.strip_prefix(root)?
            };
            let rest = rest.trim_start_matches('/');
            let mount_point = m["mount_point"].as_str()?;
            let dir = Path::new(mount_point).join(rest);
            dir.is_dir().then_some(dir)
        });
        let value = match dir {
            None => json!({
                "cgroup": own_path,
                "error": "no mounted cgroup hierarchy shows this process's cgroup",
            }),
            Some(dir) => {
                let path = dir.join(file);
                match fs::read_to_string(&path) {
                    Ok(text) => json!({
                        "cgroup": own_path, "path": path.to_string_lossy(), "value": text.trim_end(),
                    }),
                    Err(e) => json!({
                        "cgroup": own_path, "path": path.to_string_lossy(), "error": error_json(&e),
                    }),
                }
            }
        };
        out.insert(request.clone(), value);
    }
    Value::Object(out)
}

fn file_kind(ft: fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "unknown"
    }
}

/// For each path: whether it exists, what it is, whether it can be opened for reading (`opened`, `open_error`) and
/// read (`readable`, `bytes_read`, `content` or `read_error`), and whether it can be written (`writable`,
/// `write_error`). Writability is tested without changing anything: files are opened write-only (no truncation, no
/// write); directories get a uniquely named empty file created and removed at once.
fn paths(paths: &[String]) -> Value {
    let mut out = Map::new();
    for path in paths {
        let mut entry = Map::new();
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) => {
                entry.insert("exists".into(), json!(false));
                entry.insert("error".into(), error_json(&e));
                out.insert(path.clone(), Value::Object(entry));
                continue;
            }
        };
        entry.insert("exists".into(), json!(true));
        entry.insert("type".into(), json!(file_kind(meta.file_type())));
        entry.insert("mode".into(), json!(meta.mode() & 0o7777));
        entry.insert("uid".into(), json!(meta.uid()));
        entry.insert("gid".into(), json!(meta.gid()));
        entry.insert("dev".into(), json!(meta.dev()));
        entry.insert("ino".into(), json!(meta.ino()));
        let is_dir = fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false);
        if is_dir {
            match fs::read_dir(path) {
                Ok(entries) => {
                    let mut names: Vec<String> = entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    names.sort();
                    entry.insert("readable".into(), json!(true));
                    entry.insert("entries".into(), json!(names));
                }
                Err(e) => {
                    entry.insert("readable".into(), json!(false));
                    entry.insert("read_error".into(), error_json(&e));
                }
            }
            let name = Path::new(path).join(format!(".probe-write-test-{}", sys::getpid()));
            match OpenOptions::new().write(true).create_new(true).open(&name) {
                Ok(_) => {
                    let _ = fs::remove_file(&name);
                    entry.insert("writable".into(), json!(true));
                }
                Err(e) => {
                    entry.insert("writable".into(), json!(false));
                    entry.insert("write_error".into(), error_json(&e));
                }
            }
        } else {
            match OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(path)
            {
                Ok(mut file) => {
                    entry.insert("opened".into(), json!(true));
                    let mut buf = vec![0u8; 65536];
                    match file.read(&mut buf) {
                        Ok(n) => {
                            entry.insert("readable".into(), json!(true));
                            entry.insert("bytes_read".into(), json!(n));
                            let text = String::from_utf8_lossy(&buf[..n.min(512)]).into_owned();
                            entry.insert("content".into(), json!(text));
                        }
                        Err(e) => {
                            entry.insert("readable".into(), json!(false));
                            entry.insert("read_error".into(), error_json(&e));
                        }
                    }
                }
                Err(e) => {
                    entry.insert("opened".into(), json!(false));
                    entry.insert("readable".into(), json!(false));
                    entry.insert("open_error".into(), error_json(&e));
                    entry.insert("read_error".into(), error_json(&e));
                }
            }
            let write = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(path);
            match write {
                Ok(_) => {
                    entry.insert("writable".into(), json!(true));
                }
                Err(e) => {
                    entry.insert("writable".into(), json!(false));
                    entry.insert("write_error".into(), error_json(&e));
                }
            }
        }
        out.insert(path.clone(), Value::Object(entry));
    }
    Value::Object(out)
}

fn dev_major(rdev: u64) -> u64 {
    ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)
}

fn dev_minor(rdev: u64) -> u64 {
    (rdev & 0xff) | ((rdev >> 12) & !0xff)
}

/// Every entry under `dir` (one level of subdirectories, not following symlinks): device nodes with their numbers,
/// symlinks with their targets, and mode and owner of everything.
fn devices(dir: &Path) -> Value {
    let mut found = BTreeMap::new();
    collect_devices(dir, 0, &mut found);
    Value::Array(found.into_values().collect())
}

fn collect_devices(dir: &Path, depth: u32, found: &mut BTreeMap<String, Value>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = file_kind(meta.file_type());
        let mut item = json!({
            "path": path.to_string_lossy(),
            "type": kind,
            "mode": meta.mode() & 0o7777,
            "uid": meta.uid(),
            "gid": meta.gid(),
        });
        if kind == "char" || kind == "block" {
            item["major"] = json!(dev_major(meta.rdev()));
            item["minor"] = json!(dev_minor(meta.rdev()));
        }
        if kind == "symlink" {
            item["target"] = json!(fs::read_link(&path)
                .ok()
                .map(|t| t.to_string_lossy().into_owned()));
        }
        found.insert(path.to_string_lossy().into_owned(), item);
        if kind == "dir" && depth < 1 {
            collect_devices(&path, depth + 1, found);
        }
    }
}

fn sysctls(keys: &[String]) -> Value {
    let mut out = Map::new();
    for key in keys {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let value = match fs::read_to_string(&path) {
            Ok(text) => json!(text.trim_end()),
            Err(e) => json!({ "error": error_json(&e) }),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

/// Open descriptors with their targets, without the one used to list them.
fn fds() -> Value {
    let names: Vec<i32> = match fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return Value::Null,
    };
    // The directory stream is closed now, so readlink fails for its descriptor and drops it from the list.
    let mut fds: Vec<(i32, String)> = names
        .into_iter()
        .filter_map(|fd| {
            let target = fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    fds.sort();
    json!(fds
        .into_iter()
        .map(|(fd, target)| json!({ "fd": fd, "target": target }))
        .collect::<Vec<_>>())
}

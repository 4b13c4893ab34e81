//! config-linux.md: default filesystems, namespaces, user namespace mappings, devices and default devices,
//! cgroups (path, device rules, memory, cpu, cpuset, pids, block IO), sysctl, seccomp, masked and read-only paths,
//! rootfs propagation, personality and mount label.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::path::Path;

use husk_testing::{host_namespace_inode, unique_id, Bundle, NamespaceHolder, OutputExt, Runtime};
use serde_json::{json, Value};

use super::support::{
    bundle, cgroup_v1_controller, create_args, has_super_option, path_errno, probe_args, register,
    require, run_probe, terminal_probe, CgroupPath, Ctx, HostMount, Report, TestResult,
};

register!("config_linux":
    default_filesystems_are_available,
    namespace_pid_created_when_no_path,
    namespace_network_created_when_no_path,
    namespace_ipc_created_when_no_path,
    namespace_uts_created_when_no_path,
    namespace_mount_created_when_no_path,
    namespace_cgroup_created_when_no_path,
    namespace_user_created_when_no_path,
    namespace_time_created_when_no_path,
    namespace_pid_joined_by_path,
    namespace_network_joined_by_path,
    namespace_ipc_joined_by_path,
    namespace_uts_joined_by_path,
    namespace_mount_joined_by_path,
    namespace_cgroup_joined_by_path,
    namespace_user_joined_by_path,
    namespace_time_joined_by_path,
    time_offsets_applied,
    namespace_not_listed_is_inherited_from_runtime,
    namespace_path_of_wrong_type_is_error,
    namespace_duplicate_type_is_error,
    user_namespace_mappings_applied,
    user_namespace_mapping_does_not_change_rootfs_ownership,
    devices_created_with_type_numbers_mode_and_owner,
    devices_existing_different_file_is_error,
    default_devices_supplied,
    default_devices_usable,
    default_device_console_is_the_terminal,
    cgroups_path_absolute_is_relative_to_cgroup_mount,
    cgroups_path_same_value_same_place,
    cgroups_device_rules_applied_in_listed_order,
    resources_memory_limit_and_reservation,
    resources_memory_swap,
    resources_memory_swappiness,
    resources_memory_disable_oom_killer,
    resources_memory_limit_enforced,
    resources_cpu_shares,
    resources_cpu_quota_and_period,
    resources_cpuset_cpus_and_mems,
    resources_pids_limit,
    resources_pids_limit_enforced,
    resources_memory_kernel_tcp,
    resources_memory_use_hierarchy,
    resources_cpu_realtime,
    resources_cpu_idle_and_burst,
    resources_devices_deny_and_allow,
    resources_block_io_weight,
    resources_block_io_throttle,
    resources_hugepage_limits,
    resources_network_class_id_and_priorities,
    sysctl_applied,
    seccomp_installs_filter,
    seccomp_syscall_action_errno_with_errno_ret,
    seccomp_syscall_action_errno_default_eperm,
    seccomp_default_action_errno_with_default_errno_ret,
    seccomp_syscall_action_kill,
    seccomp_syscall_action_trap,
    seccomp_syscall_action_log_allows,
    seccomp_syscall_args_comparison_operators,
    seccomp_syscall_args_all_must_match,
    seccomp_errno_ret_with_non_errno_action_is_error,
    masked_paths_cannot_be_read,
    readonly_paths_cannot_be_written,
    rootfs_propagation_shared,
    rootfs_propagation_slave,
    rootfs_propagation_private,
    rootfs_propagation_unbindable,
    mount_label_applied,
    personality_linux32,
);

fn time_namespace_supported() -> TestResult {
    require(
        Path::new("/proc/self/ns/time").exists(),
        "the kernel has no time namespaces (no /proc/self/ns/time)",
    )
}

/// "The following filesystems SHOULD be made available in each container's filesystem: /proc proc, /sys sysfs,
/// /dev/pts devpts, /dev/shm tmpfs" (with the runtime's own default config).
fn default_filesystems_are_available(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, bundle(&rt), &[]);
    for (mount_point, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
    ] {
        assert_eq!(
            report.mount_at(mount_point)["fstype"],
            fstype,
            "{mount_point}"
        );
    }
    Ok(())
}

/// OCI namespace type to /proc/self/ns name.
fn proc_ns(kind: &str) -> &str {
    match kind {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

/// A bundle whose config can create a user namespace: ids mapped, and no devpts gid outside the mapping.
fn user_namespace_bundle(bundle: Bundle, mapped: (u32, u32, u32)) -> Bundle {
    let (container, host, size) = mapped;
    let bundle = bundle
        .uid_mapping(container, host, size)
        .gid_mapping(container, host, size);
    if size > 5 {
        return bundle;
    }
    bundle.edit(|config| {
        for mount in config["mounts"].as_array_mut().into_iter().flatten() {
            if let Some(options) = mount["options"].as_array_mut() {
                options.retain(|o| o != "gid=5");
            }
        }
    })
}

/// namespaces[].path: "If path is not specified, the runtime MUST create a new container namespace of type type."
fn new_namespace(ctx: &Ctx, kind: &str) -> TestResult {
    let rt = ctx.runtime();
    let mut bundle = bundle(&rt).add_namespace(kind, None);
    if kind == "user" {
        bundle = user_namespace_bundle(bundle, (0, 100000, 65536));
    }
    let report = run_probe(&rt, bundle, &[]);
    let name = proc_ns(kind);
    assert_ne!(
        report.ns(name),
        host_namespace_inode(name),
        "the container shares the runtime's {kind} namespace"
    );
    Ok(())
}

fn namespace_pid_created_when_no_path(ctx: &Ctx) -> TestResult {
    new_namespace(ctx, "pid")
}

fn namespace_network_created_when_no_path(ctx: &Ctx) -> TestResult {
    new_namespace(ctx, "network")
}

fn namespace_ipc_created_when_no_path(ctx: &Ctx) -> TestResult {
    new_namespace(ctx, "ipc")
}

fn namespace_uts_created_when_no_path(ctx: &Ctx) -> TestResult {
    new_namespace(ctx, "uts")
}

fn namespace_mount_created_when_no_path(ctx: &Ctx) -> TestResult {
    new_namespace(ctx, "mount")
}

fn namespace_cgroup_created_when_no_path(ctx: &Ctx) -> TestResult {
    new_namespace(ctx, "cgroup")
}

fn namespace_user_created_when_no_path(ctx: &Ctx) -> TestResult {
    new_namespace(ctx, "user")
}

fn namespace_time_created_when_no_path(ctx: &Ctx) -> TestResult {
    time_namespace_supported()?;
    new_namespace(ctx, "time")
}

/// timeOffsets: "sets the offset for Time Namespace" (monotonic and boottime, seen in /proc/self/timens_offsets).
fn time_offsets_applied(ctx: &Ctx) -> TestResult {
    time_namespace_supported()?;
    let rt = ctx.runtime();
    let bundle = bundle(&rt).add_namespace("time", None).set(
        "/linux/timeOffsets",
        json!({ "monotonic": { "secs": 86400, "nanosecs": 5 }, "boottime": { "secs": 3600, "nanosecs": 0 } }),
    );
    let report = run_probe(&rt, bundle, &[]);
    assert_eq!(
        report.at("/timens_offsets"),
        &json!(["monotonic 86400 5", "boottime 3600 0"]),
        "/proc/self/timens_offsets"
    );
    Ok(())
}

/// namespaces[].path: "The runtime MUST place the container process in the namespace associated with that path."
fn joined_namespace(ctx: &Ctx, kind: &str) -> TestResult {
    let rt = ctx.runtime();
    let holder = NamespaceHolder::new(&[kind]);
    let mut bundle = bundle(&rt).add_namespace(kind, Some(&holder.path(kind)));
    if kind == "user" {
        // `unshare --map-root-user` maps 0 to the host's 0, one id wide; runtimes may want the config to say so.
        bundle = user_namespace_bundle(bundle, (0, 0, 1));
    }
    let report = run_probe(&rt, bundle, &[]);
    assert_eq!(
        report.ns(proc_ns(kind)),
        holder.inode(kind),
        "the container is not in the {kind} namespace at {}",
        holder.path(kind).display()
    );
    Ok(())
}

fn namespace_pid_joined_by_path(ctx: &Ctx) -> TestResult {
    joined_namespace(ctx, "pid")
}

fn namespace_network_joined_by_path(ctx: &Ctx) -> TestResult {
    joined_namespace(ctx, "network")
}

fn namespace_ipc_joined_by_path(ctx: &Ctx) -> TestResult {
    joined_namespace(ctx, "ipc")
}

fn namespace_uts_joined_by_path(ctx: &Ctx) -> TestResult {
    joined_namespace(ctx, "uts")
}

fn namespace_mount_joined_by_path(ctx: &Ctx) -> TestResult {
    joined_namespace(ctx, "mount")
}

fn namespace_cgroup_joined_by_path(ctx: &Ctx) -> TestResult {
    joined_namespace(ctx, "cgroup")
}

fn namespace_user_joined_by_path(ctx: &Ctx) -> TestResult {
    joined_namespace(ctx, "user")
}

fn namespace_time_joined_by_path(ctx: &Ctx) -> TestResult {
    time_namespace_supported()?;
    joined_namespace(ctx, "time")
}

/// "If a namespace type is not specified in the namespaces array, the container MUST inherit the runtime
/// namespace of that type."
fn namespace_not_listed_is_inherited_from_runtime(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .remove_namespace("network")
        .remove_namespace("ipc")
        .remove_namespace("cgroup")
        // A hostname needs a UTS namespace of its own.
        .remove("/hostname")
        .remove_namespace("uts");
    let report = run_probe(&rt, bundle, &[]);
    for kind in ["net", "ipc", "uts", "cgroup"] {
        assert_eq!(
            report.ns(kind),
            host_namespace_inode(kind),
            "{kind} namespace not inherited"
        );
    }
    Ok(())
}

/// "The runtime MUST generate an error if path is not associated with a namespace of type type."
fn namespace_path_of_wrong_type_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let holder = NamespaceHolder::new(&["uts"]);
    let bundle = bundle(&rt)
        .sh("exit 0")
        .add_namespace("network", Some(&holder.path("uts")));
    let id = unique_id("wrongns");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    assert_eq!(rt.try_state(&id), None);
    Ok(())
}

/// "If a namespaces field contains duplicated namespaces with same type, the runtime MUST generate an error."
fn namespace_duplicate_type_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .sh("exit 0")
        .push("/linux/namespaces", json!({ "type": "ipc" }));
    let count = bundle.config()["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "ipc")
        .count();
    assert_eq!(count, 2, "the config should list ipc twice");
    let id = unique_id("dupns");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    assert_eq!(rt.try_state(&id), None);
    Ok(())
}

/// uidMappings/gidMappings: containerID, hostID and size as the kernel's uid_map and gid_map.
fn user_namespace_mappings_applied(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = user_namespace_bundle(bundle(&rt).add_namespace("user", None), (0, 100000, 65536));
    let report = run_probe(&rt, bundle, &[]);
    assert_eq!(report.at("/uid_map"), &json!([[0, 100000, 65536]]));
    assert_eq!(report.at("/gid_map"), &json!([[0, 100000, 65536]]));
    assert_eq!(report.at("/uid/effective"), 0);
    Ok(())
}

/// "The runtime SHOULD NOT modify the ownership of referenced filesystems to realize the mapping."
fn user_namespace_mapping_does_not_change_rootfs_ownership(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::MetadataExt;
    let rt = ctx.runtime();
    let bundle = user_namespace_bundle(bundle(&rt).add_namespace("user", None), (0, 100000, 65536));
    let owners = |b: &Bundle| -> Vec<(String, u32, u32)> {
        [
            "",
            "bin/busybox",
            "etc/passwd",
            "home/user",
            "usr/bin/probe",
        ]
        .iter()
        .map(|p| {
            let meta = std::fs::symlink_metadata(b.rootfs().join(p)).unwrap();
            ((*p).to_owned(), meta.uid(), meta.gid())
        })
        .collect()
    };
    let before = owners(&bundle);
    let bundle = bundle.args(probe_args(&[]));
    let out = rt.run_bundle(&bundle);
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(
        owners(&bundle),
        before,
        "host ownership of rootfs files changed"
    );
    Ok(())
}

/// devices: "lists devices that MUST be available in the container", with type, major/minor, fileMode, uid, gid.
fn devices_created_with_type_numbers_mode_and_owner(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .add_device("/dev/conformance-char", "c", 1, 3, 0o640, 1000, 1001)
        .add_device("/dev/conformance-block", "b", 7, 200, 0o600, 0, 6)
        .push(
            "/linux/devices",
            json!({ "path": "/dev/conformance-fifo", "type": "p", "fileMode": 0o620, "uid": 1000, "gid": 1000 }),
        );
    let report = run_probe(&rt, bundle, &[]);
    let expect = [
        (
            "/dev/conformance-char",
            "char",
            Some((1, 3)),
            0o640,
            1000,
            1001,
        ),
        (
            "/dev/conformance-block",
            "block",
            Some((7, 200)),
            0o600,
            0,
            6,
        ),
        ("/dev/conformance-fifo", "fifo", None, 0o620, 1000, 1000),
    ];
    for (path, kind, numbers, mode, uid, gid) in expect {
        let device = report
            .device(path)
            .unwrap_or_else(|| panic!("{path} missing from /dev: {}", report.at("/devices")));
        assert_eq!(device["type"], kind, "{device}");
        if let Some((major, minor)) = numbers {
            assert_eq!(
                (&device["major"], &device["minor"]),
                (&json!(major), &json!(minor)),
                "{device}"
            );
        }
        assert_eq!(
            device["mode"].as_u64().map(|m| m & 0o777),
            Some(mode),
            "mode of {device}"
        );
        assert_eq!(
            (&device["uid"], &device["gid"]),
            (&json!(uid), &json!(gid)),
            "owner of {device}"
        );
    }
    Ok(())
}

/// devices[].path: "If a file already exists at path that does not match the requested device, the runtime MUST
/// generate an error."
fn devices_existing_different_file_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).readonly(false).sh("exit 0");
    std::fs::write(bundle.rootfs().join("conformance-device"), "a regular file").unwrap();
    let bundle = bundle.add_device("/conformance-device", "c", 1, 3, 0o666, 0, 0);
    let id = unique_id("devexists");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    Ok(())
}

const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Default devices: "the runtime MUST also supply" null, zero, full, random, urandom, tty, and ptmx ("a
/// bind-mount or symlink of the container's /dev/pts/ptmx").
fn default_devices_supplied(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(
        &rt,
        bundle(&rt).remove("/linux/devices"),
        &["--path", "/dev/ptmx"],
    );
    for (path, major, minor) in DEFAULT_DEVICES {
        let device = report
            .device(path)
            .unwrap_or_else(|| panic!("{path} missing: {}", report.at("/devices")));
        assert_eq!(device["type"], "char", "{device}");
        assert_eq!(
            (&device["major"], &device["minor"]),
            (&json!(major), &json!(minor)),
            "{device}"
        );
    }
    let ptmx = report.device("/dev/ptmx").expect("/dev/ptmx missing");
    match ptmx["type"].as_str() {
        Some("symlink") => assert!(
            ptmx["target"] == "pts/ptmx" || ptmx["target"] == "/dev/pts/ptmx",
            "/dev/ptmx links elsewhere: {ptmx}"
        ),
        Some("char") => {
            assert_eq!(
                (&ptmx["major"], &ptmx["minor"]),
                (&json!(5), &json!(2)),
                "{ptmx}"
            );
            let mount = report.mount_at("/dev/ptmx");
            assert_eq!(
                mount["fstype"], "devpts",
                "/dev/ptmx is not a bind of the devpts ptmx: {mount}"
            );
        }
        _ => panic!("/dev/ptmx is neither a symlink nor a device: {ptmx}"),
    }
    Ok(())
}

/// The default devices work: /dev/null and /dev/full accept writes, /dev/zero and /dev/urandom give bytes.
fn default_devices_usable(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let mut args = Vec::new();
    for (path, _, _) in DEFAULT_DEVICES {
        args.extend(["--path", path]);
    }
    let report = run_probe(&rt, bundle(&rt), &args);
    for path in ["/dev/null", "/dev/full", "/dev/zero", "/dev/urandom"] {
        assert_eq!(
            report.path(path)["writable"],
            true,
            "{path}: {}",
            report.path(path)
        );
    }
    for path in ["/dev/zero", "/dev/urandom"] {
        let check = report.path(path);
        assert!(
            check["bytes_read"].as_u64().unwrap_or(0) > 0,
            "{path} gave no bytes: {check}"
        );
    }
    assert_eq!(report.path("/dev/null")["bytes_read"], 0);
    Ok(())
}

/// Default devices: "/dev/console is set up if terminal is enabled in the config by bind mounting the
/// pseudoterminal pty to /dev/console."
fn default_device_console_is_the_terminal(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .with_shared_dir()
        .set("/process/terminal", json!(true))
        .args(probe_args(&["--out", "/shared/report.json"]));
    let (report, _master) = terminal_probe(&rt, &bundle);
    let console = report
        .device("/dev/console")
        .unwrap_or_else(|| panic!("no /dev/console: {}", report.at("/devices")));
    const UNIX98_PTY_SLAVE_MAJOR: u64 = 136;
    assert_eq!(console["type"], "char", "{console}");
    assert_eq!(
        console["major"], UNIX98_PTY_SLAVE_MAJOR,
        "/dev/console is not a pty: {console}"
    );
    let stdin = report
        .at("/terminal/stdin")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pty = report
        .device(&stdin)
        .unwrap_or_else(|| panic!("stdin {stdin} is not in /dev: {}", report.at("/terminal")));
    assert_eq!(
        (&console["major"], &console["minor"]),
        (&pty["major"], &pty["minor"]),
        "/dev/console is not the process's terminal {stdin}"
    );
    Ok(())
}

/// cgroupsPath: "In the case of an absolute path (starting with /), the runtime MUST take the path to be relative
/// to the cgroups mount point." The container's process is in that cgroup in each hierarchy it needs.
fn cgroups_path_absolute_is_relative_to_cgroup_mount(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("memory")?;
    let rt = ctx.runtime();
    let cgroup = CgroupPath::new();
    let bundle = bundle(&rt)
        .set("/linux/cgroupsPath", json!(cgroup.as_str()))
        .set("/linux/resources/memory", json!({ "limit": 256 << 20 }))
        .set("/linux/resources/pids", json!({ "limit": 1000 }));
    let report = run_probe(&rt, bundle, &[]);
    for controller in ["memory", "pids", "devices"] {
        assert_eq!(
            report.cgroup_path(controller).as_deref(),
            Some(cgroup.as_str()),
            "{controller}: /proc/self/cgroup: {}",
            report.at("/cgroups")
        );
    }
    Ok(())
}

/// "If the value is specified, the runtime MUST consistently attach to the same place in the cgroups hierarchy
/// given the same value of cgroupsPath."
fn cgroups_path_same_value_same_place(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("memory")?;
    let rt = ctx.runtime();
    let cgroup = CgroupPath::new();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let bundle = bundle(&rt).set("/linux/cgroupsPath", json!(cgroup.as_str()));
        let report = run_probe(&rt, bundle, &[]);
        seen.push(report.at("/cgroups").clone());
    }
    assert_eq!(seen[0], seen[1], "two containers with the same cgroupsPath");
    Ok(())
}

/// Device allowlist: "The runtime MUST apply entries in the listed order." A later deny overrides an earlier
/// allow for the same device, and an allow after a deny-all grants access. The device is the host's /dev/kmsg
/// (1:11), bind-mounted so that the runtime adds no rule of its own for it, and it is only opened write-only
/// (which needs no CAP_SYSLOG and writes nothing). Runtimes add allow rules for their standard devices after the
/// configured ones, so the device must not be one of those (runc's include /dev/net/tun).
fn cgroups_device_rules_applied_in_listed_order(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("devices")?;
    require(
        Path::new("/dev/kmsg").exists(),
        "the host has no /dev/kmsg to use as a test device",
    )?;
    let rt = ctx.runtime();
    let allow_kmsg = json!({ "allow": true, "type": "c", "major": 1, "minor": 11, "access": "w" });
    let deny_kmsg = json!({ "allow": false, "type": "c", "major": 1, "minor": 11, "access": "w" });
    let deny_all = json!({ "allow": false, "access": "rwm" });
    let open = |rules: Vec<Value>| -> Value {
        let bundle = bundle(&rt)
            .add_mount("/dev/conformance-kmsg", "bind", "/dev/kmsg", &["bind"])
            .set("/linux/resources/devices", json!(rules));
        run_probe(&rt, bundle, &["--path", "/dev/conformance-kmsg"])
            .path("/dev/conformance-kmsg")
            .clone()
    };
    let allowed = open(vec![deny_all.clone(), allow_kmsg.clone()]);
    assert_eq!(
        allowed["writable"], true,
        "deny all, then allow kmsg: {allowed}"
    );
    let denied = open(vec![deny_all, allow_kmsg, deny_kmsg]);
    assert_eq!(
        denied["writable"], false,
        "deny all, allow kmsg, deny kmsg: {denied}"
    );
    assert_eq!(
        path_errno(&denied, "write_error"),
        Some(libc::EPERM),
        "{denied}"
    );
    Ok(())
}

/// Runs the probe in a container with `resources` and a cgroup of its own, reading `files` (controller:file)
/// from inside through the cgroup filesystem the config mounts at /sys/fs/cgroup.
fn cgroup_files(rt: &Runtime, resources: Value, files: &[&str]) -> Report {
    let cgroup = CgroupPath::new();
    let bundle = bundle(rt)
        .set("/linux/cgroupsPath", json!(cgroup.as_str()))
        .edit(|config| {
            for (key, value) in resources.as_object().unwrap() {
                config["linux"]["resources"][key] = value.clone();
            }
        });
    let mut args = Vec::new();
    for file in files {
        args.extend(["--cgroup-file", file]);
    }
    run_probe(rt, bundle, &args)
}

fn assert_cgroup_file(report: &Report, file: &str, expected: &str) {
    let value = report
        .cgroup_file(file)
        .unwrap_or_else(|e| panic!("cannot read {file} from inside: {e}"));
    assert_eq!(value.trim(), expected, "{file}");
}

/// memory.limit and memory.reservation.
fn resources_memory_limit_and_reservation(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("memory")?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "memory": { "limit": 64 << 20, "reservation": 32 << 20 } }),
        &[
            "memory:memory.limit_in_bytes",
            "memory:memory.soft_limit_in_bytes",
        ],
    );
    assert_cgroup_file(
        &report,
        "memory:memory.limit_in_bytes",
        &(64u64 << 20).to_string(),
    );
    assert_cgroup_file(
        &report,
        "memory:memory.soft_limit_in_bytes",
        &(32u64 << 20).to_string(),
    );
    Ok(())
}

/// memory.swap: "limit of memory+Swap usage" (memory.memsw.limit_in_bytes, which needs swap accounting).
fn resources_memory_swap(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("memory")?;
    require(
        Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
        "the kernel has no swap accounting (no memory.memsw.limit_in_bytes)",
    )?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "memory": { "limit": 64 << 20, "swap": 96 << 20 } }),
        &["memory:memory.memsw.limit_in_bytes"],
    );
    assert_cgroup_file(
        &report,
        "memory:memory.memsw.limit_in_bytes",
        &(96u64 << 20).to_string(),
    );
    Ok(())
}

/// memory.swappiness (cgroup v1 memory.swappiness).
fn resources_memory_swappiness(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("memory")?;
    require(
        Path::new("/sys/fs/cgroup/memory/memory.swappiness").exists(),
        "the memory controller has no memory.swappiness",
    )?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "memory": { "swappiness": 17 } }),
        &["memory:memory.swappiness"],
    );
    assert_cgroup_file(&report, "memory:memory.swappiness", "17");
    Ok(())
}

/// memory.disableOOMKiller (cgroup v1 memory.oom_control).
fn resources_memory_disable_oom_killer(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("memory")?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "memory": { "limit": 64 << 20, "disableOOMKiller": true } }),
        &["memory:memory.oom_control"],
    );
    let value = report.cgroup_file("memory:memory.oom_control").unwrap();
    assert!(
        value.lines().any(|l| l.trim() == "oom_kill_disable 1"),
        "memory.oom_control:\n{value}"
    );
    Ok(())
}

/// The memory limit is enforced: a process that touches more than the limit is killed (the host has no swap for
/// it to spill into, or memsw caps swap too).
fn resources_memory_limit_enforced(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("memory")?;
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let has_swap = swaps.lines().count() > 1;
    let has_memsw = Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
    require(
        !has_swap || has_memsw,
        "the host has swap without swap accounting, so a memory limit need not kill",
    )?;
    let rt = ctx.runtime();
    let cgroup = CgroupPath::new();
    let mut memory = json!({ "limit": 32 << 20 });
    if has_memsw {
        memory["swap"] = json!(32 << 20);
    }
    let bundle = bundle(&rt)
        .set("/linux/cgroupsPath", json!(cgroup.as_str()))
        .set("/linux/resources/memory", memory)
        .args([super::support::PROBE, "alloc", "256"]);
    let out = rt.run_bundle(&bundle);
    assert_eq!(
        out.exit_code(),
        128 + libc::SIGKILL,
        "allocating 256 MiB under a 32 MiB limit\n{}",
        out.describe()
    );
    Ok(())
}

/// cpu.shares.
fn resources_cpu_shares(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("cpu")?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "cpu": { "shares": 512 } }),
        &["cpu:cpu.shares"],
    );
    assert_cgroup_file(&report, "cpu:cpu.shares", "512");
    Ok(())
}

/// cpu.quota and cpu.period (CFS bandwidth).
fn resources_cpu_quota_and_period(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("cpu")?;
    require(
        Path::new("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists(),
        "the kernel has no CFS bandwidth control (no cpu.cfs_quota_us)",
    )?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "cpu": { "quota": 30000, "period": 120000 } }),
        &["cpu:cpu.cfs_quota_us", "cpu:cpu.cfs_period_us"],
    );
    assert_cgroup_file(&report, "cpu:cpu.cfs_quota_us", "30000");
    assert_cgroup_file(&report, "cpu:cpu.cfs_period_us", "120000");
    Ok(())
}

/// cpu.cpus and cpu.mems (cpuset), seen both in the cgroup and in the process's allowed CPUs.
fn resources_cpuset_cpus_and_mems(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("cpuset")?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "cpu": { "cpus": "0", "mems": "0" } }),
        &["cpuset:cpuset.cpus", "cpuset:cpuset.mems"],
    );
    assert_cgroup_file(&report, "cpuset:cpuset.cpus", "0");
    assert_cgroup_file(&report, "cpuset:cpuset.mems", "0");
    assert_eq!(report.at("/cpus_allowed"), "0", "Cpus_allowed_list");
    Ok(())
}

/// pids.limit (pids.max).
fn resources_pids_limit(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("pids")?;
    let rt = ctx.runtime();
    let report = cgroup_files(&rt, json!({ "pids": { "limit": 42 } }), &["pids:pids.max"]);
    assert_cgroup_file(&report, "pids:pids.max", "42");
    Ok(())
}

/// memory.kernelTCP (cgroup v1 only; this kernel still has the TCP buffer limit).
fn resources_memory_kernel_tcp(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("memory")?;
    require(
        std::path::Path::new("/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes").exists(),
        "the kernel has no memory.kmem.tcp.limit_in_bytes",
    )?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "memory": { "kernelTCP": 16 << 20 } }),
        &["memory:memory.kmem.tcp.limit_in_bytes"],
    );
    assert_cgroup_file(
        &report,
        "memory:memory.kmem.tcp.limit_in_bytes",
        &(16u64 << 20).to_string(),
    );
    Ok(())
}

/// memory.useHierarchy (cgroup v1).
fn resources_memory_use_hierarchy(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("memory")?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "memory": { "useHierarchy": true } }),
        &["memory:memory.use_hierarchy"],
    );
    assert_cgroup_file(&report, "memory:memory.use_hierarchy", "1");
    Ok(())
}

/// cpu.realtimePeriod and cpu.realtimeRuntime (cgroup v1 with RT group scheduling).
fn resources_cpu_realtime(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("cpu")?;
    require(
        std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists(),
        "the kernel has no RT group scheduling (cpu.rt_runtime_us)",
    )?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "cpu": { "realtimePeriod": 1_000_000, "realtimeRuntime": 10_000 } }),
        &["cpu:cpu.rt_period_us", "cpu:cpu.rt_runtime_us"],
    );
    assert_cgroup_file(&report, "cpu:cpu.rt_period_us", "1000000");
    assert_cgroup_file(&report, "cpu:cpu.rt_runtime_us", "10000");
    Ok(())
}

/// cpu.idle and cpu.burst (cgroup v1 files cpu.idle and cpu.cfs_burst_us on kernels that have them).
fn resources_cpu_idle_and_burst(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("cpu")?;
    require(
        std::path::Path::new("/sys/fs/cgroup/cpu/cpu.idle").exists()
            && std::path::Path::new("/sys/fs/cgroup/cpu/cpu.cfs_burst_us").exists(),
        "the kernel has no cpu.idle or cpu.cfs_burst_us",
    )?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "cpu": { "quota": 50_000, "period": 100_000, "burst": 20_000, "idle": 1 } }),
        &["cpu:cpu.idle", "cpu:cpu.cfs_burst_us"],
    );
    assert_cgroup_file(&report, "cpu:cpu.idle", "1");
    assert_cgroup_file(&report, "cpu:cpu.cfs_burst_us", "20000");
    Ok(())
}

/// linux.resources.devices: a deny rule takes effect in the container (the device cgroup
/// refuses the open) while the devices not denied stay usable.
fn resources_devices_deny_and_allow(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("devices")?;
    let rt = ctx.runtime();
    let cgroup = CgroupPath::new();
    let bundle = bundle(&rt)
        .set("/linux/cgroupsPath", json!(cgroup.as_str()))
        .set(
            "/linux/resources/devices",
            json!([
                { "allow": false, "access": "rwm" },
                { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" },
                { "allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm" },
                { "allow": false, "type": "c", "major": 1, "minor": 5, "access": "rw" }
            ]),
        );
    let report = run_probe(&rt, bundle, &["--path", "/dev/null", "--path", "/dev/zero"]);
    assert_eq!(
        report.path("/dev/null")["readable"],
        json!(true),
        "{}",
        report.path("/dev/null")
    );
    assert_eq!(
        report.path("/dev/zero")["readable"],
        json!(false),
        "{}",
        report.path("/dev/zero")
    );
    Ok(())
}

/// The pids limit is enforced: fork fails with EAGAIN once the cgroup holds `limit` tasks.
fn resources_pids_limit_enforced(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("pids")?;
    let rt = ctx.runtime();
    let cgroup = CgroupPath::new();
    let bundle = bundle(&rt)
        .set("/linux/cgroupsPath", json!(cgroup.as_str()))
        .set("/linux/resources/pids", json!({ "limit": 8 }))
        .args([super::support::PROBE, "fork", "20"]);
    let out = rt.run_bundle_ok(&bundle);
    let result: Value = serde_json::from_str(&out).expect("probe fork output");
    assert_eq!(
        result["forked"], 7,
        "8 tasks allowed including the probe: {result}"
    );
    assert_eq!(result["errno"], libc::EAGAIN, "{result}");
    Ok(())
}

/// blockIO.weight (blkio.weight, or blkio.bfq.weight with the BFQ scheduler).
fn resources_block_io_weight(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("blkio")?;
    let file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| Path::new("/sys/fs/cgroup/blkio").join(f).exists());
    let Some(file) = file else {
        return require(
            false,
            "the kernel's blkio controller has no weight file (blkio.weight needs CFQ, blkio.bfq.weight BFQ)",
        );
    };
    let rt = ctx.runtime();
    let spec = format!("blkio:{file}");
    let report = cgroup_files(&rt, json!({ "blockIO": { "weight": 300 } }), &[&spec]);
    let value = report.cgroup_file(&spec).unwrap();
    assert!(
        value
            .lines()
            .any(|l| l.split_whitespace().last() == Some("300")),
        "{file}: {value}"
    );
    Ok(())
}

/// The first whole-disk block device of the host, as (major, minor).
fn host_block_device() -> Option<(u64, u64)> {
    let partitions = std::fs::read_to_string("/proc/partitions").ok()?;
    partitions.lines().skip(2).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let name = fields.get(3)?;
        let whole_disk = Path::new("/sys/block").join(name).exists();
        whole_disk.then(|| Some((fields[0].parse().ok()?, fields[1].parse().ok()?)))?
    })
}

/// blockIO.throttleReadBpsDevice and throttleWriteIOPSDevice.
fn resources_block_io_throttle(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("blkio")?;
    require(
        Path::new("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device").exists(),
        "the kernel has no blkio throttling",
    )?;
    let Some((major, minor)) = host_block_device() else {
        return require(false, "the host has no block device to throttle");
    };
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "blockIO": {
            "throttleReadBpsDevice": [{ "major": major, "minor": minor, "rate": 1048576 }],
            "throttleWriteIOPSDevice": [{ "major": major, "minor": minor, "rate": 100 }],
        } }),
        &[
            "blkio:blkio.throttle.read_bps_device",
            "blkio:blkio.throttle.write_iops_device",
        ],
    );
    assert_cgroup_file(
        &report,
        "blkio:blkio.throttle.read_bps_device",
        &format!("{major}:{minor} 1048576"),
    );
    assert_cgroup_file(
        &report,
        "blkio:blkio.throttle.write_iops_device",
        &format!("{major}:{minor} 100"),
    );
    Ok(())
}

/// hugepageLimits: pageSize and limit (hugetlb.<size>.limit_in_bytes).
fn resources_hugepage_limits(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("hugetlb")?;
    require(
        Path::new("/sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes").exists(),
        "the hugetlb controller has no 2MB page size",
    )?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "hugepageLimits": [{ "pageSize": "2MB", "limit": 4 << 21 }] }),
        &["hugetlb:hugetlb.2MB.limit_in_bytes"],
    );
    assert_cgroup_file(
        &report,
        "hugetlb:hugetlb.2MB.limit_in_bytes",
        &(4u64 << 21).to_string(),
    );
    Ok(())
}

/// network.classID and network.priorities (net_cls.classid, net_prio.ifpriomap).
fn resources_network_class_id_and_priorities(ctx: &Ctx) -> TestResult {
    cgroup_v1_controller("net_cls")?;
    cgroup_v1_controller("net_prio")?;
    let rt = ctx.runtime();
    let report = cgroup_files(
        &rt,
        json!({ "network": { "classID": 1048577, "priorities": [{ "name": "lo", "priority": 3 }] } }),
        &["net_cls:net_cls.classid", "net_prio:net_prio.ifpriomap"],
    );
    assert_cgroup_file(&report, "net_cls:net_cls.classid", "1048577");
    let map = report.cgroup_file("net_prio:net_prio.ifpriomap").unwrap();
    assert!(
        map.lines().any(|l| l.trim() == "lo 3"),
        "net_prio.ifpriomap:\n{map}"
    );
    Ok(())
}

/// sysctl: "allows kernel parameters to be modified at runtime for the container" (namespaced ones: net in the
/// network namespace, kernel.shm* in the IPC namespace).
fn sysctl_applied(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .sysctl("net.ipv4.ip_forward", "1")
        .sysctl("net.ipv4.tcp_keepalive_time", "1234")
        .sysctl("kernel.shm_rmid_forced", "1");
    let keys = [
        "net.ipv4.ip_forward",
        "net.ipv4.tcp_keepalive_time",
        "kernel.shm_rmid_forced",
    ];
    let mut args = Vec::new();
    for key in keys {
        args.extend(["--sysctl", key]);
    }
    let report = run_probe(&rt, bundle, &args);
    assert_eq!(report.sysctl("net.ipv4.ip_forward"), Ok("1".to_owned()));
    assert_eq!(
        report.sysctl("net.ipv4.tcp_keepalive_time"),
        Ok("1234".to_owned())
    );
    assert_eq!(report.sysctl("kernel.shm_rmid_forced"), Ok("1".to_owned()));
    Ok(())
}

/// A seccomp section with one rule for `getpriority` (or none) over `defaultAction`.
fn seccomp(default_action: &str, rules: Value) -> Value {
    json!({
        "defaultAction": default_action,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    })
}

/// Runs the probe trying each of `calls` under `seccomp`; returns the report.
fn probe_syscalls(ctx: &Ctx, seccomp: Value, calls: &[&str]) -> Report {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).set("/linux/seccomp", seccomp);
    let mut args = Vec::new();
    for call in calls {
        args.extend(["--syscall", call]);
    }
    run_probe(&rt, bundle, &args)
}

/// seccomp: the filter is installed (Seccomp: 2 in /proc/self/status).
fn seccomp_installs_filter(ctx: &Ctx) -> TestResult {
    let report = probe_syscalls(
        ctx,
        seccomp(
            "SCMP_ACT_ALLOW",
            json!([
                { "names": ["getpriority"], "action": "SCMP_ACT_ERRNO" }
            ]),
        ),
        &[],
    );
    assert_eq!(
        report.at("/seccomp/mode"),
        2,
        "seccomp mode: {}",
        report.at("/seccomp")
    );
    Ok(())
}

/// syscalls[].action SCMP_ACT_ERRNO with errnoRet: "the errno return code to use".
fn seccomp_syscall_action_errno_with_errno_ret(ctx: &Ctx) -> TestResult {
    let report = probe_syscalls(
        ctx,
        seccomp(
            "SCMP_ACT_ALLOW",
            json!([
                { "names": ["getpriority", "sched_yield"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOMSG }
            ]),
        ),
        &["getpriority", "sched_yield", "getppid"],
    );
    assert_eq!(report.syscall_errno("getpriority"), Some(libc::ENOMSG));
    assert_eq!(report.syscall_errno("sched_yield"), Some(libc::ENOMSG));
    assert_eq!(
        report.syscall_errno("getppid"),
        None,
        "an unlisted call was blocked"
    );
    Ok(())
}

/// errnoRet: "If not specified then its default value is EPERM."
fn seccomp_syscall_action_errno_default_eperm(ctx: &Ctx) -> TestResult {
    let report = probe_syscalls(
        ctx,
        seccomp(
            "SCMP_ACT_ALLOW",
            json!([{ "names": ["getpriority"], "action": "SCMP_ACT_ERRNO" }]),
        ),
        &["getpriority"],
    );
    assert_eq!(report.syscall_errno("getpriority"), Some(libc::EPERM));
    Ok(())
}

/// What a static glibc program and the runtime's last steps before it (execve, setting up the process) call;
/// everything else gets the default action in the allowlist test below.
const ALLOWLIST: &[&str] = &[
    "access",
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "clone",
    "clone3",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_wait",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fchdir",
    "fchown",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getpgrp",
    "getpid",
    "getppid",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "gettid",
    "getuid",
    "ioctl",
    "lseek",
    "lstat",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "prlimit64",
    "read",
    "readlink",
    "readlinkat",
    "rename",
    "renameat",
    "renameat2",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_getaffinity",
    "select",
    "set_robust_list",
    "set_tid_address",
    "setgid",
    "setgroups",
    "setresgid",
    "setresuid",
    "setsid",
    "setuid",
    "sigaltstack",
    "stat",
    "statfs",
    "statx",
    "sysinfo",
    "tgkill",
    "uname",
    "unlink",
    "unlinkat",
    "wait4",
    "write",
    "writev",
];

/// defaultAction SCMP_ACT_ERRNO with defaultErrnoRet: every call not allowed returns that errno.
fn seccomp_default_action_errno_with_default_errno_ret(ctx: &Ctx) -> TestResult {
    let mut config = seccomp(
        "SCMP_ACT_ERRNO",
        json!([{ "names": ALLOWLIST, "action": "SCMP_ACT_ALLOW" }]),
    );
    config["defaultErrnoRet"] = json!(libc::ENOMSG);
    let report = probe_syscalls(ctx, config, &["getpriority", "sched_yield", "getppid"]);
    assert_eq!(report.syscall_errno("getpriority"), Some(libc::ENOMSG));
    assert_eq!(report.syscall_errno("sched_yield"), Some(libc::ENOMSG));
    assert_eq!(
        report.syscall_errno("getppid"),
        None,
        "an allowed call was blocked"
    );
    Ok(())
}

/// Runs `probe syscall getpriority` under a rule with `action`, returning the runtime's output.
fn getpriority_under(ctx: &Ctx, action: &str) -> std::process::Output {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .set(
            "/linux/seccomp",
            seccomp(
                "SCMP_ACT_ALLOW",
                json!([{ "names": ["getpriority"], "action": action }]),
            ),
        )
        .args([super::support::PROBE, "syscall", "getpriority"]);
    rt.run_bundle(&bundle)
}

/// SCMP_ACT_KILL: the thread (here the whole single-threaded process) is killed by SIGSYS.
fn seccomp_syscall_action_kill(ctx: &Ctx) -> TestResult {
    let out = getpriority_under(ctx, "SCMP_ACT_KILL");
    assert_eq!(out.exit_code(), 128 + libc::SIGSYS, "{}", out.describe());
    Ok(())
}

/// SCMP_ACT_TRAP: SIGSYS is delivered; with no handler it terminates the process.
fn seccomp_syscall_action_trap(ctx: &Ctx) -> TestResult {
    let out = getpriority_under(ctx, "SCMP_ACT_TRAP");
    assert_eq!(out.exit_code(), 128 + libc::SIGSYS, "{}", out.describe());
    Ok(())
}

/// SCMP_ACT_LOG: the call is logged and allowed.
fn seccomp_syscall_action_log_allows(ctx: &Ctx) -> TestResult {
    let out = getpriority_under(ctx, "SCMP_ACT_LOG");
    assert!(out.status.success(), "{}", out.describe());
    let result: Value = serde_json::from_str(&out.stdout_str()).expect("probe output");
    assert!(
        result["errno"].is_null(),
        "getpriority failed under SCMP_ACT_LOG: {result}"
    );
    Ok(())
}

/// syscalls[].args: index, value, valueTwo, op. Each operator against getpriority's first argument (`which`:
/// 0 process, 1 process group, 2 user).
fn seccomp_syscall_args_comparison_operators(ctx: &Ctx) -> TestResult {
    let cases: [(&str, u64, u64, [bool; 3]); 7] = [
        ("SCMP_CMP_EQ", 1, 0, [false, true, false]),
        ("SCMP_CMP_NE", 1, 0, [true, false, true]),
        ("SCMP_CMP_LT", 1, 0, [true, false, false]),
        ("SCMP_CMP_LE", 1, 0, [true, true, false]),
        ("SCMP_CMP_GT", 1, 0, [false, false, true]),
        ("SCMP_CMP_GE", 1, 0, [false, true, true]),
        ("SCMP_CMP_MASKED_EQ", 2, 2, [false, false, true]),
    ];
    let calls = ["getpriority:0,0", "getpriority:1,0", "getpriority:2,0"];
    for (op, value, value_two, blocked) in cases {
        let mut arg = json!({ "index": 0, "value": value, "op": op });
        if op == "SCMP_CMP_MASKED_EQ" {
            arg["valueTwo"] = json!(value_two);
        }
        let report = probe_syscalls(
            ctx,
            seccomp(
                "SCMP_ACT_ALLOW",
                json!([{
                    "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOMSG, "args": [arg]
                }]),
            ),
            &calls,
        );
        for (call, expect_blocked) in calls.iter().zip(blocked) {
            let errno = report.syscall_errno(call);
            assert_eq!(
                errno == Some(libc::ENOMSG),
                expect_blocked,
                "{op} value {value} valueTwo {value_two}: {call} gave errno {errno:?}"
            );
        }
    }
    Ok(())
}

/// Several args in one rule must all match for the action to apply.
fn seccomp_syscall_args_all_must_match(ctx: &Ctx) -> TestResult {
    let rule = json!([{
        "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOMSG,
        "args": [
            { "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
            { "index": 1, "value": 0, "op": "SCMP_CMP_EQ" }
        ]
    }]);
    let calls = [
        ("getpriority:1,0", true),
        ("getpriority:1,1", false),
        ("getpriority:0,0", false),
    ];
    let names: Vec<&str> = calls.iter().map(|(c, _)| *c).collect();
    let report = probe_syscalls(ctx, seccomp("SCMP_ACT_ALLOW", rule), &names);
    for (call, expect_blocked) in calls {
        let errno = report.syscall_errno(call);
        assert_eq!(
            errno == Some(libc::ENOMSG),
            expect_blocked,
            "{call} gave errno {errno:?}"
        );
    }
    Ok(())
}

/// errnoRet: "When the action doesn't support an errno, the runtime MUST print and error and fail the
/// operation."
fn seccomp_errno_ret_with_non_errno_action_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).sh("exit 0").set(
        "/linux/seccomp",
        seccomp(
            "SCMP_ACT_ALLOW",
            json!([
                { "names": ["getpriority"], "action": "SCMP_ACT_KILL", "errnoRet": libc::ENOMSG }
            ]),
        ),
    );
    let id = unique_id("errnoret");
    let _guard = rt.guard(id.clone());
    let out = rt.run(create_args(&bundle, &id));
    assert!(
        !out.status.success(),
        "errnoRet with SCMP_ACT_KILL was accepted\n{}",
        out.describe()
    );
    Ok(())
}

/// maskedPaths: "The runtime MUST mask the given paths inside the container so that they cannot be read." A file
/// reads as empty (or not at all), a directory lists nothing (or cannot be listed).
fn masked_paths_cannot_be_read(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt);
    std::fs::write(bundle.rootfs().join("etc/conformance-secret"), "secret\n").unwrap();
    std::fs::create_dir(bundle.rootfs().join("etc/conformance-dir")).unwrap();
    std::fs::write(
        bundle.rootfs().join("etc/conformance-dir/inner"),
        "hidden\n",
    )
    .unwrap();
    let bundle = bundle
        .masked_path("/etc/conformance-secret")
        .masked_path("/etc/conformance-dir");
    let report = run_probe(
        &rt,
        bundle,
        &[
            "--path",
            "/etc/conformance-secret",
            "--path",
            "/etc/conformance-dir",
        ],
    );
    let file = report.path("/etc/conformance-secret");
    assert!(
        file["readable"] == false || file["bytes_read"] == 0,
        "masked file readable: {file}"
    );
    let dir = report.path("/etc/conformance-dir");
    assert!(
        dir["readable"] == false || dir["entries"] == json!([]),
        "masked directory readable: {dir}"
    );
    Ok(())
}

/// readonlyPaths: "The runtime MUST set the provided paths as readonly inside the container."
fn readonly_paths_cannot_be_written(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .readonly(false)
        .readonly_path("/etc")
        .readonly_path("/home/user");
    let report = run_probe(
        &rt,
        bundle,
        &[
            "--path",
            "/etc",
            "--path",
            "/etc/passwd",
            "--path",
            "/home/user",
            "--path",
            "/tmp",
        ],
    );
    for path in ["/etc", "/etc/passwd", "/home/user"] {
        let check = report.path(path);
        assert_eq!(check["writable"], false, "{path} is writable: {check}");
        assert_eq!(
            path_errno(check, "write_error"),
            Some(libc::EROFS),
            "{path}: {check}"
        );
        assert_eq!(check["readable"], true, "{path} is not readable: {check}");
    }
    assert_eq!(
        report.path("/tmp")["writable"],
        true,
        "a path not listed became read-only"
    );
    Ok(())
}

/// rootfsPropagation: "sets the rootfs's mount propagation". The bundle directory is made a shared mount on the
/// host, so the container's / has a peer group to be shared with or a slave of.
fn rootfs_propagation(ctx: &Ctx, propagation: &str) -> Value {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .set("/linux/rootfsPropagation", json!(propagation))
        .args(probe_args(&[]));
    let shared = HostMount::shared_bind(bundle.path());
    let out = rt.run_bundle(&bundle);
    drop(shared);
    assert!(
        out.status.success(),
        "rootfsPropagation={propagation}\n{}",
        out.describe()
    );
    let report = Report::parse(&out.stdout_str());
    report.mount_at("/")["propagation"].clone()
}

fn rootfs_propagation_shared(ctx: &Ctx) -> TestResult {
    let propagation = rootfs_propagation(ctx, "shared");
    assert!(
        propagation["shared"].is_u64(),
        "/ is not shared: {propagation}"
    );
    Ok(())
}

fn rootfs_propagation_slave(ctx: &Ctx) -> TestResult {
    let propagation = rootfs_propagation(ctx, "slave");
    assert!(
        propagation["master"].is_u64(),
        "/ is not a slave: {propagation}"
    );
    assert!(
        propagation["shared"].is_null(),
        "/ is still shared: {propagation}"
    );
    Ok(())
}

fn rootfs_propagation_private(ctx: &Ctx) -> TestResult {
    let propagation = rootfs_propagation(ctx, "private");
    assert!(
        propagation["shared"].is_null() && propagation["master"].is_null(),
        "/ is not private: {propagation}"
    );
    Ok(())
}

fn rootfs_propagation_unbindable(ctx: &Ctx) -> TestResult {
    let propagation = rootfs_propagation(ctx, "unbindable");
    assert_eq!(
        propagation["unbindable"], true,
        "/ is not unbindable: {propagation}"
    );
    Ok(())
}

/// mountLabel: "Mount Label for the container" (SELinux context of the mounts): the `context=` option of the
/// filesystems the runtime mounts, such as /dev's tmpfs.
fn mount_label_applied(ctx: &Ctx) -> TestResult {
    require(
        Path::new("/sys/fs/selinux/enforce").exists(),
        "SELinux is not enabled on the host (no /sys/fs/selinux), so mount labels cannot be applied",
    )?;
    let rt = ctx.runtime();
    let label = "system_u:object_r:container_file_t:s0:c1,c2";
    let report = run_probe(&rt, bundle(&rt).set("/linux/mountLabel", json!(label)), &[]);
    let dev = report.mount_at("/dev");
    assert!(
        has_super_option(dev, &format!("context=\"{label}\"")),
        "/dev is not mounted with the label: {dev}"
    );
    Ok(())
}

/// personality: domain LINUX32 sets the execution domain (uname -m reports a 32-bit machine).
fn personality_linux32(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).set("/linux/personality", json!({ "domain": "LINUX32" }));
    let report = run_probe(&rt, bundle, &[]);
    const PER_LINUX32: i64 = 0x0008;
    let personality = report.at("/personality").as_i64().unwrap_or(-1);
    assert_eq!(
        personality & 0xff,
        PER_LINUX32,
        "personality {personality:#x}"
    );
    assert_eq!(report.at("/uname/machine"), "i686");
    Ok(())
}

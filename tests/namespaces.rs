//! Namespaces: new ones of every kind (checked against the host's from inside the container), sharing the host's when
//! a kind is left out, joining existing ones by path, user-namespace id mappings and the time namespace.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::path::Path;

use husk_testing::{host_namespace_inode, Bundle, NamespaceHolder, OutputExt, Runtime};
use serde_json::json;

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// `/proc/<pid>/ns/<file>` names of the OCI namespace kinds.
fn ns_file(kind: &str) -> &str {
    match kind {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

/// Runs the bundle and returns, for each kind, the inode the container sees in `/proc/self/ns/<kind>`.
fn inodes_inside(rt: &Runtime, bundle: Bundle, kinds: &[&str]) -> Vec<u64> {
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{}; ", ns_file(k)))
        .collect();
    let stdout = rt.run_bundle_ok(&bundle.sh(&script));
    let inodes: Vec<u64> = stdout
        .lines()
        .map(|line| {
            // "net:[4026531840]"
            let inode = line
                .split_once(":[")
                .and_then(|(_, rest)| rest.strip_suffix(']'));
            inode
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("bad ns link {line:?} in:\n{stdout}"))
        })
        .collect();
    assert_eq!(inodes.len(), kinds.len(), "{stdout}");
    inodes
}

const SPEC_KINDS: [&str; 5] = ["pid", "mount", "uts", "ipc", "network"];

#[test]
fn new_namespaces_differ_from_host() {
    let rt = runtime();
    let kinds = ["pid", "mount", "uts", "ipc", "network", "cgroup"];
    let bundle = Bundle::new(&rt).add_namespace("cgroup", None);
    let inside = inodes_inside(&rt, bundle, &kinds);
    for (kind, inode) in kinds.iter().zip(inside) {
        assert_ne!(
            inode,
            host_namespace_inode(kind),
            "{kind} namespace is the host's"
        );
    }
}

#[test]
fn container_is_pid_1_in_new_pid_namespace() {
    let rt = runtime();
    let out = rt.run_bundle_ok(&Bundle::new(&rt).sh("echo $$; cat /proc/1/cmdline | tr '\\0' ' '"));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"), "{out}");
    assert!(
        lines.next().is_some_and(|cmd| cmd.starts_with("sh -c")),
        "pid 1 is not the container's process: {out}"
    );
}

#[test]
fn new_network_namespace_has_only_loopback_up() {
    let rt = runtime();
    let out =
        rt.run_bundle_ok(&Bundle::new(&rt).sh("ls /sys/class/net; echo ---; ip link show lo"));
    let (devices, link) = out.split_once("---\n").expect("separator");
    assert_eq!(
        devices.split_whitespace().collect::<Vec<_>>(),
        ["lo"],
        "{out}"
    );
    let flags = link
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(f, _)| f)
        .unwrap_or_default();
    assert!(
        flags.split(',').any(|f| f == "UP"),
        "loopback is not up: {link}"
    );
}

#[test]
fn omitted_namespaces_are_shared_with_host() {
    let rt = runtime();
    let kinds = ["pid", "uts", "ipc", "network"];
    let mut bundle = Bundle::new(&rt);
    for kind in kinds {
        bundle = bundle.remove_namespace(kind);
    }
    // Without its own uts namespace the container must not set the host's hostname.
    let bundle = bundle.remove("/hostname");
    let inside = inodes_inside(&rt, bundle, &kinds);
    for (kind, inode) in kinds.iter().zip(inside) {
        assert_eq!(
            inode,
            host_namespace_inode(kind),
            "{kind} namespace should be the host's"
        );
    }
}

#[test]
fn joins_existing_namespaces_by_path() {
    let rt = runtime();
    let kinds = ["network", "uts", "ipc", "cgroup", "pid"];
    let holder = NamespaceHolder::new(&kinds);
    let mut bundle = Bundle::new(&rt).remove("/hostname");
    for kind in kinds {
        bundle = bundle.add_namespace(kind, Some(&holder.path(kind)));
    }
    let inside = inodes_inside(&rt, bundle, &kinds);
    for (kind, inode) in kinds.iter().zip(inside) {
        assert_eq!(
            inode,
            holder.inode(kind),
            "did not join the {kind} namespace"
        );
        assert_ne!(inode, host_namespace_inode(kind));
    }
}

#[test]
fn joined_pid_namespace_is_not_led_by_container() {
    let rt = runtime();
    let holder = NamespaceHolder::new(&["pid"]);
    let bundle = Bundle::new(&rt)
        .add_namespace("pid", Some(&holder.path("pid")))
        .sh("echo $$");
    let out = rt.run_bundle_ok(&bundle);
    let pid: i32 = out.trim().parse().expect("pid");
    // The holder's sleep is pid 1 of that namespace; the container process is another member.
    assert!(
        pid > 1,
        "container became init of a namespace it should have joined: {out}"
    );
}

#[test]
fn joins_existing_mount_namespace_by_path() {
    let rt = runtime();
    let holder = NamespaceHolder::new(&["mount"]);
    let bundle = Bundle::new(&rt).add_namespace("mount", Some(&holder.path("mount")));
    let inside = inodes_inside(&rt, bundle, &["mount"]);
    assert_eq!(inside[0], holder.inode("mount"));
}

#[test]
fn joins_each_namespace_kind_alone() {
    let rt = runtime();
    for kind in ["network", "uts", "ipc", "cgroup"] {
        let holder = NamespaceHolder::new(&[kind]);
        let bundle = Bundle::new(&rt)
            .remove("/hostname")
            .add_namespace(kind, Some(&holder.path(kind)));
        let kinds: Vec<&str> = SPEC_KINDS.iter().copied().chain([kind]).collect();
        let inside = inodes_inside(&rt, bundle, &kinds);
        assert_eq!(
            *inside.last().unwrap(),
            holder.inode(kind),
            "did not join {kind}"
        );
    }
}

#[test]
fn joining_missing_namespace_path_fails() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .add_namespace("network", Some(Path::new("/proc/999999999/ns/net")))
        .sh("echo should-not-run");
    let out = rt.run_bundle(&bundle);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(!out.stdout_str().contains("should-not-run"));
    assert!(rt.list_ids().is_empty());
}

fn user_ns_bundle(rt: &Runtime) -> Bundle {
    Bundle::new(rt)
        .add_namespace("user", None)
        .uid_mapping(0, 100000, 65536)
        .gid_mapping(0, 100000, 65536)
}

#[test]
fn user_namespace_applies_id_mappings() {
    let rt = runtime();
    let bundle = user_ns_bundle(&rt)
        .sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; readlink /proc/self/ns/user");
    let out = rt.run_bundle_ok(&bundle);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "uid_map:\n{out}");
    assert_eq!(lines[1], ["0", "100000", "65536"], "gid_map:\n{out}");
    assert_eq!(lines[2], ["0"], "{out}");
    assert_eq!(lines[3], ["0"], "{out}");
    assert_ne!(
        lines[4][0],
        format!("user:[{}]", host_namespace_inode("user")),
        "{out}"
    );
}

#[test]
fn user_namespace_process_runs_as_mapped_host_uid() {
    let rt = runtime();
    let bundle = user_ns_bundle(&rt)
        .user(1000, 1000, &[])
        .with_shared_dir()
        .sh("echo ready > /shared/ready; exec sleep 1000");
    let c = rt.create(&bundle);
    c.start();
    assert!(husk_testing::wait_for(
        || bundle.read_shared("ready").is_some(),
        std::time::Duration::from_secs(10)
    ));
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.pid())).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uids.split_whitespace().nth(1),
        Some("101000"),
        "host view of container uid 1000: {uids}"
    );
}

#[test]
fn time_namespace_with_offsets() {
    let rt = runtime();
    if !Path::new("/proc/self/ns/time").exists() {
        panic!("host kernel has no time namespaces (/proc/self/ns/time missing): cannot test them here");
    }
    if rt.is_runc() {
        // runc 1.1.5 predates time namespace support (added in runc 1.2): it lists no "time" in `features` and
        // refuses the namespace ("namespace {"time" ""} does not exist"). See tests/RUNC_DIFFERENCES.md.
        assert_runc_refuses_time_namespace(&rt, None);
        return;
    }
    let days = 10 * 86400;
    let bundle = Bundle::new(&rt)
        .add_namespace("time", None)
        .set("/linux/timeOffsets", json!({ "boottime": { "secs": days, "nanosecs": 0 }, "monotonic": { "secs": days, "nanosecs": 0 } }))
        .sh("readlink /proc/self/ns/time; cut -d' ' -f1 /proc/uptime");
    let out = rt.run_bundle_ok(&bundle);
    let mut lines = out.lines();
    let link = lines.next().unwrap_or_default();
    assert_ne!(
        link,
        format!("time:[{}]", host_namespace_inode("time")),
        "{out}"
    );
    let uptime_inside: f64 = lines.next().and_then(|l| l.parse().ok()).expect("uptime");
    let host_uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uptime_inside >= host_uptime + days as f64 - 60.0,
        "boottime offset not applied: {uptime_inside} vs host {host_uptime}"
    );
}

#[test]
fn joins_existing_time_namespace_by_path() {
    let rt = runtime();
    if !Path::new("/proc/self/ns/time").exists() {
        panic!("host kernel has no time namespaces (/proc/self/ns/time missing): cannot test them here");
    }
    let holder = NamespaceHolder::new(&["time"]);
    if rt.is_runc() {
        // See time_namespace_with_offsets: runc 1.1.5 has no time namespace support.
        assert_runc_refuses_time_namespace(&rt, Some(&holder.path("time")));
        return;
    }
    let bundle = Bundle::new(&rt).add_namespace("time", Some(&holder.path("time")));
    let inside = inodes_inside(&rt, bundle, &["time"]);
    assert_eq!(inside[0], holder.inode("time"));
}

#[test]
fn joins_existing_user_namespace_by_path() {
    let rt = runtime();
    let holder = NamespaceHolder::new(&["user"]);
    // `unshare --map-root-user` maps uid/gid 0 to the host's 0, one id wide. The config repeats the namespace's
    // mappings (runc insists on mappings whenever a user namespace is configured, joined or not).
    let bundle = Bundle::new(&rt)
        .add_namespace("user", Some(&holder.path("user")))
        .uid_mapping(0, 0, 1)
        .gid_mapping(0, 0, 1)
        // Only gid 0 is mapped, so devpts cannot use the spec template's gid=5.
        .edit(|config| {
            for mount in config["mounts"].as_array_mut().unwrap() {
                if let Some(options) = mount["options"].as_array_mut() {
                    options.retain(|o| o != "gid=5");
                }
            }
        });
    let out = rt.run_bundle(&bundle.sh("readlink /proc/self/ns/user; cat /proc/self/uid_map"));
    assert!(out.status.success(), "{}", out.describe());
    let stdout = out.stdout_str();
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("user:[{}]", holder.inode("user")).as_str()),
        "{stdout}"
    );
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["0", "0", "1"]),
        "{stdout}"
    );
}

fn assert_runc_refuses_time_namespace(rt: &Runtime, path: Option<&Path>) {
    let out = rt.run_bundle(&Bundle::new(rt).add_namespace("time", path).sh("echo ran"));
    assert!(
        !out.status.success(),
        "runc 1.1.5 unexpectedly accepted a time namespace: {}",
        out.describe()
    );
    eprintln!("runc 1.1.5 has no time namespace support; the husk expectations were not checked");
}

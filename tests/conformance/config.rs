//! config.md: root, mounts, process (args, env, cwd, user, umask, rlimits, capabilities, noNewPrivileges,
//! oomScoreAdj), hostname and domainname, POSIX hooks (state on stdin, namespaces, args/env, timeout),
//! extensibility and valid values.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use husk_testing::{
    host_namespace_inode, run_with_timeout, unique_id, Bundle, HookKind, OutputExt, Runtime,
    TempDir, DEFAULT_TIMEOUT,
};
use serde_json::{json, Value};

use super::support::{
    bundle, create_args, has_option, has_super_option, host_status_field, path_errno,
    probe_then_sleep, register, require, run_probe, set, start_probe, terminal_probe, Ctx,
    HostMount, Report, TestResult, PROBE,
};

register!("config":
    root_path_relative_to_bundle,
    root_path_absolute,
    root_path_missing_is_error,
    root_readonly_true_makes_rootfs_read_only,
    root_readonly_false_leaves_rootfs_writable,
    mounts_are_mounted_in_listed_order,
    mount_bind_options_ro_nosuid_nodev_noexec,
    mount_bind_source_relative_to_bundle,
    mount_tmpfs_data_options,
    mount_bind_excludes_submounts,
    mount_rbind_includes_submounts,
    mount_option_rro_makes_submounts_read_only,
    mount_atime_options,
    mount_option_nosymfollow,
    mount_propagation_shared,
    mount_propagation_slave,
    mount_propagation_private,
    mount_propagation_unbindable,
    process_args_passed_verbatim,
    process_args_first_entry_resolved_through_path,
    process_env_is_exactly_configured,
    process_cwd_is_working_directory,
    process_cwd_relative_is_error,
    process_user_uid_and_gid,
    process_user_additional_gids,
    process_user_umask,
    process_user_umask_unset_keeps_runtime_umask,
    process_rlimits_soft_and_hard,
    process_rlimits_duplicate_type_is_error,
    process_rlimits_unknown_type_is_error,
    process_no_new_privileges_true,
    process_no_new_privileges_false,
    process_oom_score_adj_set,
    process_oom_score_adj_unset_not_changed,
    process_capabilities_bounding_set,
    process_capabilities_inheritable_set,
    process_capabilities_ambient_set_for_non_root,
    process_capabilities_all_sets_for_root,
    process_capabilities_not_grantable_is_not_an_error,
    process_capabilities_unknown_name_is_logged,
    process_missing_is_error_at_create_or_start,
    process_terminal_with_console_size,
    process_io_priority,
    process_scheduler,
    process_exec_cpu_affinity_final,
    process_apparmor_profile,
    process_selinux_label,
    hostname_in_uts_namespace,
    domainname_in_uts_namespace,
    unknown_properties_are_ignored,
    invalid_value_is_error,
    hooks_receive_state_on_stdin,
    hooks_args_and_env,
    hook_timeout_aborts_hook_with_error,
    prestart_and_create_runtime_hooks_run_in_runtime_namespace,
    create_container_hook_runs_in_container_namespace,
    start_container_hook_resolves_and_runs_in_container_namespace,
    poststart_and_poststop_hooks_run_in_runtime_namespace,
);

const WAIT: Duration = Duration::from_secs(20);

/// Writes a uniquely valued marker file into the bundle's rootfs and returns (path inside, value).
fn rootfs_marker(bundle: &Bundle) -> (String, String) {
    let value = unique_id("marker");
    std::fs::write(bundle.rootfs().join("conformance-marker"), &value).expect("write marker");
    ("/conformance-marker".to_owned(), value)
}

/// root.path: "On POSIX platforms, path is either an absolute path or a relative path to the bundle."
fn root_path_relative_to_bundle(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).set("/root/path", json!("rootfs"));
    let (marker, value) = rootfs_marker(&bundle);
    let report = run_probe(&rt, bundle, &["--path", &marker]);
    assert_eq!(report.path(&marker)["content"], value.as_str());
    Ok(())
}

/// The same with an absolute path.
fn root_path_absolute(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt);
    let absolute = bundle.rootfs().to_string_lossy().into_owned();
    let bundle = bundle.set("/root/path", json!(absolute));
    let (marker, value) = rootfs_marker(&bundle);
    let report = run_probe(&rt, bundle, &["--path", &marker]);
    assert_eq!(report.path(&marker)["content"], value.as_str());
    Ok(())
}

/// root.path is REQUIRED and names the container's root filesystem; a path that does not exist cannot be
/// realized, so create "MUST generate an error".
fn root_path_missing_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .sh("exit 0")
        .set("/root/path", json!("no-such-rootfs"));
    let id = unique_id("noroot");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    assert_eq!(rt.try_state(&id), None);
    Ok(())
}

/// root.readonly: "If true then the root filesystem MUST be read-only inside the container".
fn root_readonly_true_makes_rootfs_read_only(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).readonly(true);
    let report = run_probe(&rt, bundle, &["--path", "/", "--path", "/etc/passwd"]);
    assert!(
        has_option(report.mount_at("/"), "ro"),
        "/ is not mounted ro: {}",
        report.mount_at("/")
    );
    for path in ["/", "/etc/passwd"] {
        let check = report.path(path);
        assert_eq!(check["writable"], false, "{path} is writable: {check}");
        assert_eq!(
            path_errno(check, "write_error"),
            Some(libc::EROFS),
            "{path}: {check}"
        );
    }
    Ok(())
}

/// root.readonly false (the default): the root filesystem stays writable.
fn root_readonly_false_leaves_rootfs_writable(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).readonly(false);
    let report = run_probe(&rt, bundle, &["--path", "/", "--path", "/etc/passwd"]);
    for path in ["/", "/etc/passwd"] {
        let check = report.path(path);
        assert_eq!(check["writable"], true, "{path} is not writable: {check}");
    }
    Ok(())
}

/// mounts: "The runtime MUST mount entries in the listed order." A mount below an earlier one lands on top of it,
/// and of two mounts on one destination the later one is visible.
fn mounts_are_mounted_in_listed_order(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .add_mount("/mnt/outer", "tmpfs", "tmpfs", &["size=1m"])
        .add_mount("/mnt/outer/inner", "tmpfs", "tmpfs", &["size=2m"])
        .add_mount("/mnt/twice", "tmpfs", "tmpfs", &["size=3m"])
        .add_mount("/mnt/twice", "tmpfs", "tmpfs", &["size=4m"]);
    let report = run_probe(&rt, bundle, &[]);
    let outer = report.mount_at("/mnt/outer");
    let inner = report.mount_at("/mnt/outer/inner");
    assert_eq!(
        inner["parent"], outer["id"],
        "/mnt/outer/inner is not mounted on top of /mnt/outer: {inner} / {outer}"
    );
    assert!(has_super_option(outer, "size=1024k"), "{outer}");
    assert!(has_super_option(inner, "size=2048k"), "{inner}");
    let twice = report.mount_at("/mnt/twice");
    assert!(
        has_super_option(twice, "size=4096k"),
        "the later of two mounts on /mnt/twice is not the visible one: {twice}"
    );
    Ok(())
}

/// mounts[].options: "Runtimes MUST support" ro, nosuid, nodev, noexec (here on a bind mount, which needs a
/// remount to apply them).
fn mount_bind_options_ro_nosuid_nodev_noexec(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let source = TempDir::new("conformance-bind");
    std::fs::write(source.join("file"), "x").unwrap();
    let bundle = bundle(&rt).add_mount(
        "/mnt/bind",
        "bind",
        &source.path().to_string_lossy(),
        &["rbind", "ro", "nosuid", "nodev", "noexec"],
    );
    let report = run_probe(&rt, bundle, &["--path", "/mnt/bind/file"]);
    let mount = report.mount_at("/mnt/bind");
    for option in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(has_option(mount, option), "{option} missing: {mount}");
    }
    let check = report.path("/mnt/bind/file");
    assert_eq!(check["content"], "x");
    assert_eq!(
        path_errno(check, "write_error"),
        Some(libc::EROFS),
        "{check}"
    );
    Ok(())
}

/// mounts[].source: "Path values for bind mounts are either absolute or relative to the bundle."
fn mount_bind_source_relative_to_bundle(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt);
    std::fs::create_dir(bundle.path().join("relative-source")).unwrap();
    std::fs::write(
        bundle.path().join("relative-source/file"),
        "from the bundle",
    )
    .unwrap();
    let bundle = bundle.add_mount("/mnt/relative", "bind", "relative-source", &["rbind", "ro"]);
    let report = run_probe(&rt, bundle, &["--path", "/mnt/relative/file"]);
    assert_eq!(
        report.path("/mnt/relative/file")["content"],
        "from the bundle"
    );
    Ok(())
}

/// Filesystem-specific options are passed as mount data (tmpfs size and mode).
fn mount_tmpfs_data_options(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).add_mount(
        "/mnt/tmp",
        "tmpfs",
        "tmpfs",
        &["nosuid", "size=1m", "mode=0710"],
    );
    let report = run_probe(&rt, bundle, &["--path", "/mnt/tmp"]);
    let mount = report.mount_at("/mnt/tmp");
    assert_eq!(mount["fstype"], "tmpfs");
    assert!(has_option(mount, "nosuid"), "{mount}");
    assert!(has_super_option(mount, "size=1024k"), "{mount}");
    assert!(has_super_option(mount, "mode=710"), "{mount}");
    assert_eq!(report.path("/mnt/tmp")["mode"], 0o710);
    Ok(())
}

/// A host directory with a tmpfs mounted on its `sub` directory, holding a marker file.
struct SourceWithSubmount {
    // Field order matters: the mount goes before its directory.
    _mount: HostMount,
    dir: TempDir,
}

fn source_with_submount() -> SourceWithSubmount {
    let dir = TempDir::new("conformance-rbind");
    let mount = HostMount::tmpfs(&dir.join("sub"));
    std::fs::write(dir.join("sub/marker"), "submount").unwrap();
    SourceWithSubmount { _mount: mount, dir }
}

/// The `bind` option binds only the source mount, not what is mounted below it.
fn mount_bind_excludes_submounts(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let source = source_with_submount();
    let bundle = bundle(&rt).add_mount(
        "/mnt/src",
        "bind",
        &source.dir.path().to_string_lossy(),
        &["bind"],
    );
    let report = run_probe(&rt, bundle, &["--path", "/mnt/src/sub/marker"]);
    assert_eq!(
        report.path("/mnt/src/sub/marker")["exists"],
        false,
        "bind (not rbind) carried the submount along"
    );
    Ok(())
}

/// The `rbind` option binds the source and everything mounted below it.
fn mount_rbind_includes_submounts(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let source = source_with_submount();
    let bundle = bundle(&rt).add_mount(
        "/mnt/src",
        "bind",
        &source.dir.path().to_string_lossy(),
        &["rbind"],
    );
    let report = run_probe(&rt, bundle, &["--path", "/mnt/src/sub/marker"]);
    assert_eq!(report.path("/mnt/src/sub/marker")["content"], "submount");
    assert!(
        report.mount("/mnt/src/sub").is_some(),
        "no submount in the container"
    );
    Ok(())
}

/// The recursive mount attribute `rro` (mount_setattr(2), Linux 5.12) makes submounts read-only too.
fn mount_option_rro_makes_submounts_read_only(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let source = source_with_submount();
    let bundle = bundle(&rt).add_mount(
        "/mnt/src",
        "bind",
        &source.dir.path().to_string_lossy(),
        &["rbind", "rro"],
    );
    let report = run_probe(&rt, bundle, &["--path", "/mnt/src/sub/marker"]);
    for mount_point in ["/mnt/src", "/mnt/src/sub"] {
        let mount = report.mount_at(mount_point);
        assert!(has_option(mount, "ro"), "{mount_point} is not ro: {mount}");
    }
    assert_eq!(
        path_errno(report.path("/mnt/src/sub/marker"), "write_error"),
        Some(libc::EROFS)
    );
    Ok(())
}

/// The atime options the spec lists (noatime, nodiratime, strictatime, relatime) reach the mount.
fn mount_atime_options(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .add_mount("/mnt/noatime", "tmpfs", "tmpfs", &["noatime", "nodiratime"])
        .add_mount("/mnt/relatime", "tmpfs", "tmpfs", &["relatime"]);
    let report = run_probe(&rt, bundle, &[]);
    let noatime = report.mount_at("/mnt/noatime");
    assert!(has_option(noatime, "noatime"), "{noatime}");
    assert!(has_option(noatime, "nodiratime"), "{noatime}");
    let relatime = report.mount_at("/mnt/relatime");
    assert!(has_option(relatime, "relatime"), "{relatime}");
    Ok(())
}

/// `nosymfollow` (Linux 5.10) is among the options runtimes must support.
fn mount_option_nosymfollow(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).add_mount("/mnt/nosym", "tmpfs", "tmpfs", &["nosymfollow"]);
    let report = run_probe(&rt, bundle, &[]);
    let mount = report.mount_at("/mnt/nosym");
    assert!(has_option(mount, "nosymfollow"), "{mount}");
    Ok(())
}

/// Runs the probe with a bind mount of a (shared) host directory at /mnt/prop with the given propagation option.
fn propagation_mount(ctx: &Ctx, option: &str) -> Value {
    let rt = ctx.runtime();
    let dir = TempDir::new("conformance-prop");
    let _shared = HostMount::shared_bind(dir.path());
    let bundle = bundle(&rt).add_mount(
        "/mnt/prop",
        "bind",
        &dir.path().to_string_lossy(),
        &["rbind", option],
    );
    let report = run_probe(&rt, bundle, &[]);
    report.mount_at("/mnt/prop")["propagation"].clone()
}

/// Propagation flag `rshared` in mounts[].options.
fn mount_propagation_shared(ctx: &Ctx) -> TestResult {
    let propagation = propagation_mount(ctx, "rshared");
    assert!(propagation["shared"].is_u64(), "not shared: {propagation}");
    Ok(())
}

/// Propagation flag `rslave` (the source is shared on the host, so the mount becomes its slave).
fn mount_propagation_slave(ctx: &Ctx) -> TestResult {
    let propagation = propagation_mount(ctx, "rslave");
    assert!(propagation["master"].is_u64(), "not a slave: {propagation}");
    assert!(
        propagation["shared"].is_null(),
        "still shared: {propagation}"
    );
    Ok(())
}

/// Propagation flag `rprivate`.
fn mount_propagation_private(ctx: &Ctx) -> TestResult {
    let propagation = propagation_mount(ctx, "rprivate");
    assert!(
        propagation["shared"].is_null() && propagation["master"].is_null(),
        "not private: {propagation}"
    );
    Ok(())
}

/// Propagation flag `runbindable`.
fn mount_propagation_unbindable(ctx: &Ctx) -> TestResult {
    let propagation = propagation_mount(ctx, "runbindable");
    assert_eq!(
        propagation["unbindable"], true,
        "not unbindable: {propagation}"
    );
    Ok(())
}

/// process.args: "with similar semantics to IEEE Std 1003.1-2008 execvp's argv".
fn process_args_passed_verbatim(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let args = [
        "/usr/bin/probe",
        "report",
        "--path",
        "/a b",
        "--path",
        "*",
        "--path",
        "$HOME",
        "--path",
        "é\u{1F600}",
    ];
    let bundle = bundle(&rt).args(args);
    let out = rt.run_bundle_ok(&bundle);
    let report = Report::parse(&out);
    assert_eq!(report.at("/args"), &json!(args));
    Ok(())
}

/// "This specification extends the IEEE standard in that at least one entry is REQUIRED, and that entry is used
/// with the same semantics as execvp's file" — so it is looked up in PATH from process.env.
fn process_args_first_entry_resolved_through_path(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .env(["PATH=/nonexistent:/usr/bin", "HOME=/root"])
        .args(["probe"]);
    let report = Report::parse(&rt.run_bundle_ok(&bundle));
    assert_eq!(report.at("/args/0"), "probe");
    Ok(())
}

/// process.env: "with the same semantics as IEEE Std 1003.1-2008's environ" — exactly the configured variables.
fn process_env_is_exactly_configured(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let env = [
        "PATH=/usr/bin:/bin",
        "HOME=/conformance-home",
        "WITH_SPACE=a b",
        "EMPTY=",
        "EQUALS=x=y",
    ];
    let report = run_probe(&rt, bundle(&rt).env(env), &[]);
    let seen: BTreeSet<String> = report.env().into_iter().collect();
    assert_eq!(seen, set(&env), "environment");
    Ok(())
}

/// process.cwd: "the working directory that will be set for the executable".
fn process_cwd_is_working_directory(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, bundle(&rt).cwd("/home/user"), &[]);
    assert_eq!(report.at("/cwd"), "/home/user");
    Ok(())
}

/// process.cwd: "This value MUST be an absolute path", and runtimes "MUST generate an error when invalid ...
/// values are encountered".
fn process_cwd_relative_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).cwd("home/user").sh("exit 0");
    let id = unique_id("cwd");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    Ok(())
}

/// process.user.uid/gid: the user and group ID in the container namespace.
fn process_user_uid_and_gid(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, bundle(&rt).user(1000, 1001, &[]), &[]);
    assert_eq!(
        report.at("/uid"),
        &json!({ "real": 1000, "effective": 1000, "saved": 1000 })
    );
    assert_eq!(
        report.at("/gid"),
        &json!({ "real": 1001, "effective": 1001, "saved": 1001 })
    );
    Ok(())
}

/// process.user.additionalGids: "additional group IDs in the container namespace to be added to the process".
fn process_user_additional_gids(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, bundle(&rt).user(1000, 1000, &[1001, 1002]), &[]);
    let groups: BTreeSet<u64> = report
        .at("/groups")
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(
        groups.contains(&1001) && groups.contains(&1002),
        "additional gids missing: {groups:?}"
    );
    assert!(
        groups.iter().all(|g| [1000, 1001, 1002].contains(g)),
        "unexpected groups: {groups:?}"
    );
    Ok(())
}

/// process.user.umask: "the umask of the user".
fn process_user_umask(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, bundle(&rt).umask(0o027), &[]);
    assert_eq!(report.at("/umask"), 0o027, "umask (decimal)");
    Ok(())
}

/// Runs `run --bundle` for `bundle` with `prepare` applied to the runtime's process before exec, returning the
/// probe report from its stdout.
fn run_probe_with(rt: &Runtime, bundle: &Bundle, prepare: fn() -> std::io::Result<()>) -> Report {
    let guard = rt.guard(unique_id("prep"));
    let mut cmd = rt.cmd([
        "run".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        guard.id().as_ref(),
    ] as [&std::ffi::OsStr; 4]);
    // SAFETY: `prepare` only makes async-signal-safe system calls (umask, open/write/close) and allocates nothing.
    unsafe { cmd.pre_exec(prepare) };
    let out = run_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
    assert!(out.status.success(), "run failed\n{}", out.describe());
    Report::parse(&out.stdout_str())
}

/// process.user.umask: "If unspecified, the umask should not be changed from the calling process' umask."
fn process_user_umask_unset_keeps_runtime_umask(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .remove("/process/user/umask")
        .args(super::support::probe_args(&[]));
    fn umask_007() -> std::io::Result<()> {
        // SAFETY: umask(2) cannot fail and touches only this process.
        unsafe { libc::umask(0o007) };
        Ok(())
    }
    let report = run_probe_with(&rt, &bundle, umask_007);
    assert_eq!(
        report.at("/umask"),
        0o007,
        "umask (decimal) when the runtime ran with 0007"
    );
    Ok(())
}

/// process.rlimits: "For each entry in rlimits, a getrlimit(3) on type MUST succeed"; rlim.rlim_cur "MUST match
/// the configured value" of soft, rlim.rlim_max that of hard.
fn process_rlimits_soft_and_hard(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    // All within the host's hard limits: raising a hard limit needs CAP_SYS_RESOURCE, which hosts may lack.
    let limits = [
        ("RLIMIT_NOFILE", 512, 1024),
        ("RLIMIT_CORE", 4096, 8192),
        ("RLIMIT_MEMLOCK", 65536, 131072),
        ("RLIMIT_MSGQUEUE", 4096, 8192),
        ("RLIMIT_NICE", 0, 0),
    ];
    let mut bundle = bundle(&rt).remove("/process/rlimits");
    for (kind, soft, hard) in limits {
        bundle = bundle.rlimit(kind, soft, hard);
    }
    let report = run_probe(&rt, bundle, &[]);
    for (kind, soft, hard) in limits {
        assert_eq!(report.rlimit(kind), (soft, hard), "{kind}");
    }
    Ok(())
}

/// process.rlimits: "If rlimits contains duplicated entries with same type, the runtime MUST generate an error."
fn process_rlimits_duplicate_type_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .sh("exit 0")
        .remove("/process/rlimits")
        .push(
            "/process/rlimits",
            json!({ "type": "RLIMIT_NOFILE", "soft": 512, "hard": 512 }),
        )
        .push(
            "/process/rlimits",
            json!({ "type": "RLIMIT_NOFILE", "soft": 256, "hard": 256 }),
        );
    let id = unique_id("rlimit");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    Ok(())
}

/// process.rlimits[].type: "The runtime MUST generate an error for any values which cannot be mapped to a
/// relevant kernel interface."
fn process_rlimits_unknown_type_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .sh("exit 0")
        .rlimit("RLIMIT_CONFORMANCE_BOGUS", 1, 1);
    let id = unique_id("rlimit");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    Ok(())
}

/// process.noNewPrivileges: "setting noNewPrivileges to true prevents the process from gaining additional
/// privileges" (prctl PR_SET_NO_NEW_PRIVS).
fn process_no_new_privileges_true(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, bundle(&rt).no_new_privileges(true), &[]);
    assert_eq!(report.at("/no_new_privs"), true);
    Ok(())
}

/// process.noNewPrivileges false: the flag is not set.
fn process_no_new_privileges_false(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, bundle(&rt).no_new_privileges(false), &[]);
    assert_eq!(report.at("/no_new_privs"), false);
    Ok(())
}

/// process.oomScoreAdj: "If oomScoreAdj is set, the runtime MUST set oom_score_adj to the given value."
fn process_oom_score_adj_set(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, bundle(&rt).oom_score_adj(123), &[]);
    assert_eq!(report.at("/oom_score_adj"), 123);
    Ok(())
}

/// process.oomScoreAdj: "If oomScoreAdj is not set, the runtime MUST NOT change the value of oom_score_adj."
fn process_oom_score_adj_unset_not_changed(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .remove("/process/oomScoreAdj")
        .args(super::support::probe_args(&[]));
    fn oom_score_adj_321() -> std::io::Result<()> {
        // Raising one's own oom_score_adj needs no privilege.
        let path = c"/proc/self/oom_score_adj";
        let value = b"321";
        // SAFETY: a NUL-terminated path and a valid buffer; open/write/close are async-signal-safe.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let written = libc::write(fd, value.as_ptr().cast(), value.len());
            libc::close(fd);
            if written < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
    let report = run_probe_with(&rt, &bundle, oom_score_adj_321);
    assert_eq!(report.at("/oom_score_adj"), 321, "the runtime ran with 321");
    Ok(())
}

fn capabilities(bundle: Bundle, sets: &[(&str, &[&str])]) -> Bundle {
    let mut bundle = bundle.remove("/process/capabilities");
    for (set, names) in sets {
        bundle = bundle.set(&format!("/process/capabilities/{set}"), json!(names));
    }
    bundle
}

const BOUNDING: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_SYS_CHROOT",
];
const INHERITABLE: &[&str] = &["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"];
const PERMITTED: &[&str] = &[
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
];
const EFFECTIVE: &[&str] = &[
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
];
const AMBIENT: &[&str] = &["CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"];

fn all_cap_sets(bundle: Bundle) -> Bundle {
    capabilities(
        bundle,
        &[
            ("bounding", BOUNDING),
            ("inheritable", INHERITABLE),
            ("permitted", PERMITTED),
            ("effective", EFFECTIVE),
            ("ambient", AMBIENT),
        ],
    )
}

/// process.capabilities.bounding: "the bounding capabilities for the process" (unchanged by execve).
fn process_capabilities_bounding_set(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, all_cap_sets(bundle(&rt)).user(1000, 1000, &[]), &[]);
    assert_eq!(report.caps("bounding"), set(BOUNDING));
    Ok(())
}

/// process.capabilities.inheritable (unchanged by execve).
fn process_capabilities_inheritable_set(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, all_cap_sets(bundle(&rt)).user(1000, 1000, &[]), &[]);
    assert_eq!(report.caps("inheritable"), set(INHERITABLE));
    Ok(())
}

/// process.capabilities.ambient: kept across execve by a non-root process, whose permitted and effective sets
/// after execve of a file without capabilities are exactly the ambient set (capabilities(7)).
fn process_capabilities_ambient_set_for_non_root(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, all_cap_sets(bundle(&rt)).user(1000, 1000, &[]), &[]);
    assert_eq!(report.caps("ambient"), set(AMBIENT), "ambient");
    assert_eq!(
        report.caps("permitted"),
        set(AMBIENT),
        "permitted after execve"
    );
    assert_eq!(
        report.caps("effective"),
        set(AMBIENT),
        "effective after execve"
    );
    Ok(())
}

/// For uid 0, execve makes permitted and effective the bounding set (plus inheritable); with every set configured
/// the same, the process has exactly that set everywhere.
fn process_capabilities_all_sets_for_root(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let caps: &[&str] = &["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_AUDIT_WRITE"];
    let bundle = capabilities(
        bundle(&rt).user(0, 0, &[]),
        &[
            ("bounding", caps),
            ("inheritable", caps),
            ("permitted", caps),
            ("effective", caps),
            ("ambient", caps),
        ],
    );
    let report = run_probe(&rt, bundle, &[]);
    for set_name in [
        "bounding",
        "inheritable",
        "permitted",
        "effective",
        "ambient",
    ] {
        assert_eq!(report.caps(set_name), set(caps), "{set_name}");
    }
    Ok(())
}

/// process.capabilities: "Any value which cannot be mapped to a relevant kernel interface, or cannot be granted
/// otherwise MUST be logged as a warning by the runtime. Runtimes SHOULD NOT fail if the container configuration
/// requests capabilities that cannot be granted, for example, if the runtime operates in a restricted environment
/// with a limited set of capabilities." Uses a capability missing from the host's own bounding set.
fn process_capabilities_not_grantable_is_not_an_error(ctx: &Ctx) -> TestResult {
    let host_bounding = u64::from_str_radix(&host_status_field("CapBnd"), 16).unwrap_or(u64::MAX);
    const CAP_SYS_RESOURCE: u32 = 24;
    require(
        host_bounding & (1 << CAP_SYS_RESOURCE) == 0,
        "the host's bounding set has CAP_SYS_RESOURCE, so no capability is out of reach here",
    )?;
    let rt = ctx.runtime();
    let caps: &[&str] = &["CAP_KILL", "CAP_SYS_RESOURCE"];
    let bundle = capabilities(
        bundle(&rt),
        &[("bounding", caps), ("permitted", caps), ("effective", caps)],
    );
    let report = run_probe(&rt, bundle, &[]);
    assert!(
        report.caps("effective").contains("CAP_KILL"),
        "the grantable capability is missing: {:?}",
        report.caps("effective")
    );
    Ok(())
}

/// A name that maps to no kernel capability: the spec's MUST is that it is logged, naming it. Not failing is
/// a SHOULD, which a runtime may decline for a stated reason (husk refuses such a config outright, so a typo in a
/// capability list cannot silently weaken or change what a container gets). Both outcomes pass if the name is
/// logged; a run that succeeds must still have granted the valid capability.
fn process_capabilities_unknown_name_is_logged(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let caps: &[&str] = &["CAP_KILL", "CAP_CONFORMANCE_BOGUS"];
    let bundle = capabilities(
        bundle(&rt),
        &[("bounding", caps), ("permitted", caps), ("effective", caps)],
    )
    .args(super::support::probe_args(&[]));
    let log = rt.scratch_dir().join("warnings.log");
    let guard = rt.guard(unique_id("caps"));
    let out = rt.run([
        "--log".as_ref(),
        log.as_os_str(),
        "run".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        guard.id().as_ref(),
    ] as [&std::ffi::OsStr; 6]);
    if out.status.success() {
        let report = Report::parse(&out.stdout_str());
        assert!(report.caps("effective").contains("CAP_KILL"));
    }
    let logged = format!(
        "{}{}",
        out.stderr_str(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        logged.contains("CAP_CONFORMANCE_BOGUS"),
        "nothing naming the unknown capability on stderr or in --log:\n{logged}"
    );
    Ok(())
}

/// process: "REQUIRED if start is called" — without it, create or start must fail (and no program runs).
fn process_missing_is_error_at_create_or_start(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).remove("/process");
    let id = unique_id("noprocess");
    let _guard = rt.guard(id.clone());
    let create = rt.run(create_args(&bundle, &id));
    if create.status.success() {
        let start = rt.run(["start", &id]);
        assert!(
            !start.status.success(),
            "create and start both succeeded without a process\n{}",
            start.describe()
        );
    }
    Ok(())
}

/// process.terminal: "specifies whether a terminal is attached to the process"; consoleSize: "the console size in
/// characters of the terminal".
fn process_terminal_with_console_size(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .with_shared_dir()
        .set("/process/terminal", json!(true))
        .set(
            "/process/consoleSize",
            json!({ "height": 33, "width": 111 }),
        )
        .args(super::support::probe_args(&[
            "--out",
            "/shared/report.json",
        ]));
    let (report, _master) = terminal_probe(&rt, &bundle);
    let terminal = report.at("/terminal");
    assert_eq!(
        terminal["stdin_isatty"], true,
        "stdin is not a terminal: {terminal}"
    );
    assert_eq!(
        terminal["stdout_isatty"], true,
        "stdout is not a terminal: {terminal}"
    );
    assert_eq!(
        (&terminal["rows"], &terminal["columns"]),
        (&json!(33), &json!(111)),
        "{terminal}"
    );
    Ok(())
}

/// process.ioPriority: class and priority of the process's I/O scheduling (ioprio_set(2)).
fn process_io_priority(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).set(
        "/process/ioPriority",
        json!({ "class": "IOPRIO_CLASS_BE", "priority": 6 }),
    );
    let report = run_probe(&rt, bundle, &[]);
    const IOPRIO_CLASS_BE: i64 = 2;
    assert_eq!(
        report.at("/io_priority"),
        &json!({ "class": IOPRIO_CLASS_BE, "level": 6 }),
        "ioprio_get"
    );
    Ok(())
}

/// process.scheduler: policy and nice value (sched_setattr(2)).
fn process_scheduler(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).set(
        "/process/scheduler",
        json!({ "policy": "SCHED_BATCH", "nice": 7 }),
    );
    let report = run_probe(&rt, bundle, &[]);
    assert_eq!(
        report.at("/scheduler"),
        &json!({ "policy": libc::SCHED_BATCH, "nice": 7 }),
        "sched_getscheduler / getpriority"
    );
    Ok(())
}

/// process.execCPUAffinity.final: "the list of CPUs a runtime parent process to be run on after the transition to
/// container's cgroup"; the process runs on those CPUs.
fn process_exec_cpu_affinity_final(ctx: &Ctx) -> TestResult {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    require(
        cpus >= 2,
        "the host has a single CPU, so an affinity of CPU 0 changes nothing",
    )?;
    let rt = ctx.runtime();
    let bundle = bundle(&rt).set("/process/execCPUAffinity", json!({ "final": "0" }));
    let report = run_probe(&rt, bundle, &[]);
    assert_eq!(report.at("/cpus_allowed"), "0", "Cpus_allowed_list");
    Ok(())
}

/// process.apparmorProfile: "the name of the AppArmor profile for the process".
fn process_apparmor_profile(ctx: &Ctx) -> TestResult {
    let profiles =
        std::fs::read_to_string("/sys/kernel/security/apparmor/profiles").unwrap_or_default();
    let profile = profiles
        .lines()
        .find_map(|l| {
            l.strip_suffix(" (enforce)")
                .or_else(|| l.strip_suffix(" (complain)"))
        })
        .map(str::to_owned);
    let Some(profile) = profile else {
        return require(
            false,
            "AppArmor is not enabled on the host or has no profile loaded",
        );
    };
    let rt = ctx.runtime();
    let report = run_probe(
        &rt,
        bundle(&rt).set("/process/apparmorProfile", json!(profile)),
        &[],
    );
    let label = report
        .at("/apparmor")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        label.starts_with(&profile),
        "AppArmor label {label:?}, configured {profile:?}"
    );
    Ok(())
}

/// process.selinuxLabel: "the SELinux label for the process".
fn process_selinux_label(ctx: &Ctx) -> TestResult {
    require(
        Path::new("/sys/fs/selinux/enforce").exists(),
        "SELinux is not enabled on the host (no /sys/fs/selinux)",
    )?;
    let rt = ctx.runtime();
    let label = "system_u:system_r:container_t:s0:c1,c2";
    let report = run_probe(
        &rt,
        bundle(&rt).set("/process/selinuxLabel", json!(label)),
        &[],
    );
    assert_eq!(report.at("/apparmor"), label, "/proc/self/attr/current");
    Ok(())
}

/// hostname: "the container's hostname as seen by processes running inside the container" (UTS namespace).
fn hostname_in_uts_namespace(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .add_namespace("uts", None)
        .hostname("conformance-host");
    let report = run_probe(&rt, bundle, &[]);
    assert_eq!(report.at("/hostname"), "conformance-host");
    Ok(())
}

/// domainname: "the container's domainname as seen by processes running inside the container".
fn domainname_in_uts_namespace(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .add_namespace("uts", None)
        .domainname("conformance.example");
    let report = run_probe(&rt, bundle, &[]);
    assert_eq!(report.at("/domainname"), "conformance.example");
    Ok(())
}

/// Extensibility: "Runtimes that are reading or processing this configuration file MUST NOT generate an error if
/// they encounter an unknown property. Instead they MUST ignore unknown properties." Also unknown annotations.
fn unknown_properties_are_ignored(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .set(
            "/org.opencontainers.conformance.unknown",
            json!({ "nested": [1, 2] }),
        )
        .set("/process/conformanceUnknown", json!(true))
        .set("/linux/conformanceUnknown", json!("x"))
        .set("/root/conformanceUnknown", json!(1))
        .annotation("org.opencontainers.conformance.unknown-annotation", "v");
    let report = run_probe(&rt, bundle, &[]);
    assert_eq!(report.at("/args/0"), super::support::PROBE);
    Ok(())
}

/// Valid values: "Runtimes that are reading or processing this configuration file MUST generate an error when
/// invalid or unsupported values are encountered." (an unknown namespace type)
fn invalid_value_is_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt)
        .sh("exit 0")
        .push("/linux/namespaces", json!({ "type": "conformance-bogus" }));
    let id = unique_id("invalid");
    let _guard = rt.guard(id.clone());
    rt.run_fail(create_args(&bundle, &id));
    assert_eq!(rt.try_state(&id), None);
    Ok(())
}

/// Adds the probe itself as a hook of `kind`: it saves its stdin (the state) to `<kind>.state` and its report
/// to `<kind>.json` in the shared directory (/shared inside the container for startContainer, whose path resolves
/// there; the host path of the bundle's probe for the others). argv[0] is `hook-<kind>`.
fn add_probe_hook(bundle: Bundle, kind: HookKind, env: &[&str]) -> Bundle {
    let name = kind.as_str();
    let (path, dir) = if kind == HookKind::StartContainer {
        (PROBE.to_owned(), "/shared".to_owned())
    } else {
        (
            bundle
                .rootfs()
                .join(PROBE.trim_start_matches('/'))
                .to_string_lossy()
                .into_owned(),
            bundle.shared_dir().to_string_lossy().into_owned(),
        )
    };
    let argv0 = format!("hook-{name}");
    let state = format!("{dir}/{name}.state");
    let report = format!("{dir}/{name}.json");
    bundle.add_hook(
        kind,
        &path,
        &[&argv0, "report", "--save-stdin", &state, "--out", &report],
        env,
        None,
    )
}

fn hook_state(bundle: &Bundle, kind: HookKind) -> Value {
    let text = bundle
        .read_shared(&format!("{}.state", kind.as_str()))
        .unwrap_or_else(|| panic!("the {} hook did not run", kind.as_str()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} hook stdin is not JSON ({e}): {text:?}", kind.as_str()))
}

fn hook_report(bundle: &Bundle, kind: HookKind) -> Report {
    Report::parse(
        &bundle
            .read_shared(&format!("{}.json", kind.as_str()))
            .unwrap_or_else(|| panic!("the {} hook did not run", kind.as_str())),
    )
}

/// Runs a container with a probe hook of each of `kinds` through its whole life (create, start, kill, delete)
/// and returns the bundle and the report of the container's own probe.
fn life_with_probe_hooks(rt: &Runtime, kinds: &[HookKind]) -> (Bundle, Report) {
    let mut bundle = bundle(rt).with_shared_dir().args(probe_then_sleep(&[]));
    for &kind in kinds {
        bundle = add_probe_hook(bundle, kind, &[]);
    }
    let (container, report) = start_probe(rt, &bundle);
    container.kill("KILL");
    assert!(container.wait_status("stopped", WAIT));
    rt.run_ok(["delete", container.id()]);
    (bundle, report)
}

/// Hooks: "The state of the container MUST be passed to hooks over stdin so that they may do work appropriate to
/// the current state of the container." Checks every hook kind's state: ociVersion, id, bundle, annotations, the
/// status of that lifecycle step and the container pid (absent once stopped).
fn hooks_receive_state_on_stdin(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let mut bundle = bundle(&rt)
        .with_shared_dir()
        .annotation("org.opencontainers.conformance.hook", "yes")
        .args(["sleep", "600"]);
    for kind in HookKind::ALL {
        bundle = add_probe_hook(bundle, kind, &[]);
    }
    let container = rt.create(&bundle);
    let pid = container.pid();
    container.start();
    container.kill("KILL");
    assert!(container.wait_status("stopped", WAIT));
    rt.run_ok(["delete", container.id()]);
    let bundle_dir = std::fs::canonicalize(bundle.path()).unwrap();
    for kind in HookKind::ALL {
        let state = hook_state(&bundle, kind);
        let name = kind.as_str();
        assert!(state["ociVersion"].is_string(), "{name}: {state}");
        assert_eq!(state["id"], container.id(), "{name}: {state}");
        let hook_bundle = state["bundle"].as_str().unwrap_or_default();
        assert_eq!(
            std::fs::canonicalize(hook_bundle).ok().as_deref(),
            Some(bundle_dir.as_path()),
            "{name}: bundle: {state}"
        );
        assert_eq!(
            state["annotations"]["org.opencontainers.conformance.hook"], "yes",
            "{name}: annotations: {state}"
        );
        let expected_status: &[&str] = match kind {
            HookKind::Prestart | HookKind::CreateRuntime | HookKind::CreateContainer => {
                &["creating", "created"]
            }
            HookKind::StartContainer => &["created"],
            HookKind::Poststart => &["running"],
            HookKind::Poststop => &["stopped"],
        };
        assert!(
            expected_status.iter().any(|s| state["status"] == *s),
            "{name}: status should be one of {expected_status:?}: {state}"
        );
        match kind {
            HookKind::Poststop => assert!(
                state["pid"].is_null() || state["pid"] == 0,
                "{name}: a stopped container has no pid: {state}"
            ),
            // These two run inside the container, where the container process may have another number.
            HookKind::CreateContainer | HookKind::StartContainer => {
                assert!(
                    state["pid"].as_i64().unwrap_or(0) > 0,
                    "{name}: pid: {state}"
                )
            }
            _ => assert_eq!(state["pid"], pid, "{name}: pid: {state}"),
        }
    }
    Ok(())
}

/// Hook args: "with the same semantics as IEEE Std 1003.1-2008 execv's argv" (argv[0] included); env: "with the
/// same semantics as IEEE Std 1003.1-2008's environ" (exactly these variables).
fn hooks_args_and_env(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let env = ["CONFORMANCE_A=1", "CONFORMANCE_B=x y", "PATH=/conformance"];
    let bundle = add_probe_hook(
        bundle(&rt).with_shared_dir().sh("exit 0"),
        HookKind::CreateRuntime,
        &env,
    );
    let container = rt.create(&bundle);
    drop(container);
    let report = hook_report(&bundle, HookKind::CreateRuntime);
    let args = report.at("/args").clone();
    assert_eq!(args[0], "hook-createRuntime", "argv[0]: {args}");
    assert_eq!(args[1], "report", "args: {args}");
    let seen: BTreeSet<String> = report.env().into_iter().collect();
    assert_eq!(seen, set(&env), "hook environment");
    Ok(())
}

/// Hook timeout: "the number of seconds before aborting the hook. If set, timeout MUST be greater than zero." A
/// hook that overruns it is aborted, which fails create.
fn hook_timeout_aborts_hook_with_error(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let bundle = bundle(&rt).sh("exit 0");
    let script = bundle.path().join("slow.sh");
    husk_testing::write_script(&script, "cat > /dev/null; exec sleep 60");
    let bundle = bundle.add_hook(
        HookKind::CreateRuntime,
        &script.to_string_lossy(),
        &[],
        &[],
        Some(2),
    );
    let id = unique_id("timeout");
    let _guard = rt.guard(id.clone());
    let started = Instant::now();
    rt.run_fail(create_args(&bundle, &id));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "create took {took:?} with a 2 s hook timeout"
    );
    assert_eq!(rt.try_state(&id), None);
    Ok(())
}

const SHARED_KINDS: [&str; 4] = ["mnt", "net", "uts", "ipc"];

fn namespaces_of(report: &Report) -> Vec<(&'static str, u64)> {
    SHARED_KINDS.iter().map(|&n| (n, report.ns(n))).collect()
}

fn host_namespaces() -> Vec<(&'static str, u64)> {
    SHARED_KINDS
        .iter()
        .map(|&n| (n, host_namespace_inode(n)))
        .collect()
}

/// prestart and createRuntime hooks: "The value of path MUST resolve in the runtime namespace. The ... hooks MUST
/// be executed in the runtime namespace."
fn prestart_and_create_runtime_hooks_run_in_runtime_namespace(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let kinds = [HookKind::Prestart, HookKind::CreateRuntime];
    let (bundle, _report) = life_with_probe_hooks(&rt, &kinds);
    for kind in kinds {
        assert_eq!(
            namespaces_of(&hook_report(&bundle, kind)),
            host_namespaces(),
            "{} hook namespaces vs the runtime's",
            kind.as_str()
        );
    }
    Ok(())
}

/// createContainer hooks: "The value of path MUST resolve in the runtime namespace. The createContainer hooks
/// MUST be executed in the container namespace."
fn create_container_hook_runs_in_container_namespace(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let (bundle, report) = life_with_probe_hooks(&rt, &[HookKind::CreateContainer]);
    assert_eq!(
        namespaces_of(&hook_report(&bundle, HookKind::CreateContainer)),
        namespaces_of(&report),
        "createContainer hook namespaces vs the container's"
    );
    Ok(())
}

/// startContainer hooks: "The value of path MUST resolve in the container namespace. The startContainer hooks
/// MUST be executed in the container namespace."
fn start_container_hook_resolves_and_runs_in_container_namespace(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    assert!(
        !Path::new(PROBE).exists(),
        "{PROBE} exists on the host, so this test could not tell where the hook path resolved"
    );
    let (bundle, report) = life_with_probe_hooks(&rt, &[HookKind::StartContainer]);
    assert_eq!(
        namespaces_of(&hook_report(&bundle, HookKind::StartContainer)),
        namespaces_of(&report),
        "startContainer hook namespaces vs the container's"
    );
    Ok(())
}

/// poststart and poststop hooks: "The value of path MUST resolve in the runtime namespace. The ... hooks MUST be
/// executed in the runtime namespace."
fn poststart_and_poststop_hooks_run_in_runtime_namespace(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let kinds = [HookKind::Poststart, HookKind::Poststop];
    let (bundle, _report) = life_with_probe_hooks(&rt, &kinds);
    for kind in kinds {
        assert_eq!(
            namespaces_of(&hook_report(&bundle, kind)),
            host_namespaces(),
            "{} hook namespaces vs the runtime's",
            kind.as_str()
        );
    }
    Ok(())
}

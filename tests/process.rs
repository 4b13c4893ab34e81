//! The container process: args, env, cwd, user and groups, umask, rlimits, oomScoreAdj, noNewPrivileges and
//! capabilities, all observed from inside.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use husk_testing::{Bundle, OutputExt, Runtime};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// The value of a `Key:\tvalue` line of /proc/self/status as printed by the container.
fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in:\n{status}"))
}

#[test]
fn args_are_passed_verbatim() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).args([
        "/bin/sh",
        "-c",
        "printf '%s|' \"$0\" \"$@\"",
        "zero",
        "a b",
        "",
        "*",
        "$HOME",
        "é",
    ]);
    assert_eq!(rt.run_bundle_ok(&bundle), "zero|a b||*|$HOME|é|");
}

#[test]
fn args_resolve_through_path() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .env(["PATH=/bin"])
        .args(["echo", "found-via-PATH"]);
    assert_eq!(rt.run_bundle_ok(&bundle), "found-via-PATH\n");
}

#[test]
fn env_is_exactly_the_configured_one() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .env(["PATH=/bin", "FOO=bar baz", "EMPTY=", "WITH_EQUALS=a=b"])
        .args(["/bin/env"]);
    let out = rt.run_bundle_ok(&bundle);
    let vars: Vec<&str> = out.lines().collect();
    for expected in ["PATH=/bin", "FOO=bar baz", "EMPTY=", "WITH_EQUALS=a=b"] {
        assert!(vars.contains(&expected), "{expected} missing:\n{out}");
    }
    // Nothing leaks from the runtime's own environment (cargo sets plenty of variables for this test).
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    assert!(!out.contains("CARGO"), "host environment leaked:\n{out}");
    // runc adds HOME from /etc/passwd when the config has none; nothing else may appear.
    for var in &vars {
        let name = var.split('=').next().unwrap();
        assert!(
            ["PATH", "FOO", "EMPTY", "WITH_EQUALS", "HOME"].contains(&name),
            "unexpected variable {var}:\n{out}"
        );
    }
}

#[test]
fn home_comes_from_passwd_when_not_set() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .env(["PATH=/bin"])
        .user(1000, 1000, &[])
        .args(["/bin/sh", "-c", "echo $HOME"]);
    assert_eq!(rt.run_bundle_ok(&bundle), "/home/user\n");
    let bundle = bundle.env(["PATH=/bin", "HOME=/custom"]);
    assert_eq!(rt.run_bundle_ok(&bundle), "/custom\n");
}

#[test]
fn cwd_is_applied_and_created() {
    let rt = runtime();
    assert_eq!(
        rt.run_bundle_ok(&Bundle::new(&rt).cwd("/bin").sh("pwd")),
        "/bin\n"
    );
    // A missing cwd is created (runc does; containers rely on WORKDIR appearing).
    let bundle = Bundle::new(&rt).cwd("/new/work/dir").sh("pwd");
    assert_eq!(rt.run_bundle_ok(&bundle), "/new/work/dir\n");
    let out = rt.run_bundle(&Bundle::new(&rt).cwd("relative/dir").sh("pwd"));
    assert!(
        !out.status.success(),
        "relative cwd accepted\n{}",
        out.describe()
    );
}

#[test]
fn user_and_groups() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .user(1000, 1000, &[1001, 1002])
        .sh("id; grep -E '^(Uid|Gid|Groups):' /proc/self/status");
    let out = rt.run_bundle_ok(&bundle);
    assert_eq!(
        out.lines().next(),
        Some("uid=1000(user) gid=1000(user) groups=1001(extra1),1002(extra2)"),
        "{out}"
    );
    assert_eq!(
        status_field(&out, "Uid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1000"; 4],
        "{out}"
    );
    assert_eq!(
        status_field(&out, "Gid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1000"; 4],
        "{out}"
    );
    assert_eq!(status_field(&out, "Groups"), "1001 1002", "{out}");
}

#[test]
fn user_without_additional_gids_has_no_supplementary_groups() {
    let rt = runtime();
    // The runtime runs as root with root's groups; none of them may leak into the container.
    let out = rt.run_bundle_ok(
        &Bundle::new(&rt)
            .user(65534, 65534, &[])
            .sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status"),
    );
    assert_eq!(
        status_field(&out, "Uid").split_whitespace().next(),
        Some("65534"),
        "{out}"
    );
    assert_eq!(
        status_field(&out, "Gid").split_whitespace().next(),
        Some("65534"),
        "{out}"
    );
    assert_eq!(status_field(&out, "Groups"), "", "{out}");
}

#[test]
fn umask_is_applied() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .umask(0o027)
        .add_mount("/work", "tmpfs", "tmpfs", &["size=1m"])
        .sh("umask; touch /work/f; mkdir /work/d; stat -c %a /work/f /work/d");
    assert_eq!(rt.run_bundle_ok(&bundle), "0027\n640\n750\n");
}

#[test]
fn default_umask_is_0022() {
    let rt = runtime();
    assert_eq!(rt.run_bundle_ok(&Bundle::new(&rt).sh("umask")), "0022\n");
}

#[test]
fn rlimits_are_applied() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .rlimit("RLIMIT_NOFILE", 512, 1024)
        .rlimit("RLIMIT_CORE", 0, 0)
        .rlimit("RLIMIT_NPROC", 300, 400)
        .sh("ulimit -n; ulimit -Hn; cat /proc/self/limits");
    let out = rt.run_bundle_ok(&bundle);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("512"), "{out}");
    assert_eq!(lines.next(), Some("1024"), "{out}");
    let limit = |name: &str| -> Vec<String> {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"));
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(limit("Max open files"), ["512", "1024"], "{out}");
    assert_eq!(limit("Max core file size"), ["0", "0"], "{out}");
    assert_eq!(limit("Max processes"), ["300", "400"], "{out}");
}

#[test]
fn unknown_rlimit_is_refused() {
    let rt = runtime();
    let out = rt.run_bundle(&Bundle::new(&rt).rlimit("RLIMIT_BOGUS", 1, 1).sh("echo ran"));
    assert!(!out.status.success(), "{}", out.describe());
    assert!(!out.stdout_str().contains("ran"));
}

#[test]
fn oom_score_adj_is_applied() {
    let rt = runtime();
    let out = rt.run_bundle_ok(
        &Bundle::new(&rt)
            .oom_score_adj(567)
            .sh("cat /proc/self/oom_score_adj"),
    );
    assert_eq!(out, "567\n");
}

#[test]
fn no_new_privileges_flag() {
    let rt = runtime();
    for (enabled, expected) in [(true, "1"), (false, "0")] {
        let out = rt.run_bundle_ok(
            &Bundle::new(&rt)
                .no_new_privileges(enabled)
                .sh("grep NoNewPrivs /proc/self/status"),
        );
        assert_eq!(
            status_field(&out, "NoNewPrivs"),
            expected,
            "noNewPrivileges={enabled}: {out}"
        );
    }
}

#[test]
fn capabilities_from_spec_template() {
    let rt = runtime();
    let out = rt.run_bundle_ok(&Bundle::new(&rt).sh("grep ^Cap /proc/self/status"));
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29): the spec template's set. The template has no
    // inheritable set, and the kernel only allows ambient capabilities that are also inheritable, so those two are
    // empty whatever the template lists as ambient.
    let expected = format!("{:016x}", (1u64 << 5) | (1 << 10) | (1 << 29));
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(status_field(&out, set), expected, "{set}:\n{out}");
    }
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000000", "{out}");
}

#[test]
fn process_exits_cleanly_with_nonzero_status_output() {
    let rt = runtime();
    let out = rt.run_bundle(&Bundle::new(&rt).sh("echo partial; exit 7"));
    assert_eq!(out.exit_code(), 7, "{}", out.describe());
    assert_eq!(out.stdout_str(), "partial\n");
}

#[test]
fn process_inherits_no_ignored_sigpipe_from_the_runtime() {
    let rt = runtime();
    let out = rt.run_bundle_ok(&Bundle::new(&rt).sh("grep SigIgn /proc/self/status"));
    let mask = u64::from_str_radix(status_field(&out, "SigIgn").trim(), 16).expect("SigIgn mask");
    assert_eq!(
        mask & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored in the container: {out}"
    );
}

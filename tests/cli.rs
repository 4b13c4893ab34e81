//! The runc-compatible command line: spec, --version, features, the create/start/state/kill/delete life cycle, run,
//! list, kill spellings, pid files, logging and accepted compatibility flags.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use husk_testing::{
    existing_cgroups, is_gone, unique_id, wait_for, Bundle, OutputExt, Runtime, TempDir,
};
use serde_json::Value;

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

const WAIT: Duration = Duration::from_secs(10);

/// A long-running container that records when it is ready, so tests can act on a running process.
fn sleeper(rt: &Runtime) -> Bundle {
    Bundle::new(rt)
        .with_shared_dir()
        .sh("echo ready > /shared/ready; exec sleep 1000")
}

fn read_config(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("config.json is JSON")
}

fn assert_is_spec_template(config: &Value) {
    assert!(
        config["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{config}"
    );
    assert_eq!(config["root"]["path"], "rootfs", "{config}");
    assert!(
        config["process"]["args"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{config}"
    );
    assert!(config["linux"]["namespaces"]
        .as_array()
        .is_some_and(|n| n.iter().any(|n| n["type"] == "mount")));
    assert!(config["mounts"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["destination"] == "/proc")));
}

#[test]
fn spec_writes_config_json_in_current_directory() {
    let rt = runtime();
    let dir = TempDir::new("husk-test-spec");
    let out = husk_testing::run_with_timeout(rt.bare_cmd(["spec"]).current_dir(dir.path()), WAIT);
    assert!(out.status.success(), "{}", out.describe());
    assert_is_spec_template(&read_config(&dir.join("config.json")));

    // A second `spec` must not clobber the existing file.
    std::fs::write(dir.join("config.json"), "{\"mine\":1}").unwrap();
    let again = husk_testing::run_with_timeout(rt.bare_cmd(["spec"]).current_dir(dir.path()), WAIT);
    assert!(
        !again.status.success(),
        "spec overwrote config.json\n{}",
        again.describe()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("config.json")).unwrap(),
        "{\"mine\":1}"
    );
}

#[test]
fn spec_bundle_flag_writes_into_bundle() {
    let rt = runtime();
    let dir = TempDir::new("husk-test-spec");
    for flag in ["--bundle", "-b"] {
        let _ = std::fs::remove_file(dir.join("config.json"));
        let out = husk_testing::run_with_timeout(
            &mut rt.bare_cmd(["spec".as_ref(), flag.as_ref(), dir.path().as_os_str()]),
            WAIT,
        );
        assert!(out.status.success(), "spec {flag}: {}", out.describe());
        assert_is_spec_template(&read_config(&dir.join("config.json")));
    }
}

#[test]
fn version_flag_prints_version_and_spec() {
    let rt = runtime();
    for flag in ["--version", "-v"] {
        let out = husk_testing::run_with_timeout(&mut rt.bare_cmd([flag]), WAIT);
        assert!(out.status.success(), "{flag}: {}", out.describe());
        let text = out.stdout_str();
        let first = text.lines().next().unwrap_or_default();
        // Tools (docker info, containerd) parse "<name> version <v>" and a "spec: <v>" line.
        assert!(
            first.starts_with(&format!("{} version ", rt.name())),
            "{text}"
        );
        assert!(text.lines().any(|l| l.starts_with("spec: 1.")), "{text}");
    }
}

#[test]
fn features_prints_json_with_oci_version_range() {
    let rt = runtime();
    let out = rt.run_ok(["features"]);
    let features: Value = serde_json::from_slice(&out.stdout).expect("features is JSON");
    let min = features["ociVersionMin"].as_str().expect("ociVersionMin");
    let max = features["ociVersionMax"].as_str().expect("ociVersionMax");
    assert!(min.starts_with("1.0"), "{features}");
    assert!(max.starts_with("1."), "{features}");
    let hooks = features["hooks"].as_array().expect("hooks list");
    for hook in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(
            hooks.iter().any(|h| h == hook),
            "features lacks hook {hook}: {features}"
        );
    }
    let namespaces = features["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces");
    for ns in ["pid", "network", "mount", "ipc", "uts", "user", "cgroup"] {
        assert!(
            namespaces.iter().any(|n| n == ns),
            "features lacks namespace {ns}: {features}"
        );
    }
    assert!(features["mountOptions"]
        .as_array()
        .is_some_and(|m| m.iter().any(|o| o == "nosuid")));
}

#[test]
fn create_start_state_kill_delete_life_cycle() {
    let rt = runtime();
    let cgroups_path = format!("/{}", unique_id("cg"));
    let bundle = sleeper(&rt).set("/linux/cgroupsPath", serde_json::json!(cgroups_path));
    let c = rt.create(&bundle);

    let state = c.state();
    assert_eq!(state["status"], "created", "{state}");
    let pid = c.pid();
    assert!(
        pid > 0 && !is_gone(pid),
        "created container has no live init: {state}"
    );
    assert!(
        !existing_cgroups(&cgroups_path).is_empty(),
        "no cgroup {cgroups_path} created"
    );
    let cgroup_membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cgroup_membership
            .lines()
            .any(|l| l.ends_with(&format!(":{cgroups_path}"))),
        "init is not in {cgroups_path}:\n{cgroup_membership}"
    );
    assert!(
        bundle.read_shared("ready").is_none(),
        "user process ran before start"
    );

    c.start();
    assert!(
        wait_for(|| bundle.read_shared("ready").is_some(), WAIT),
        "process did not run after start"
    );
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid, "init pid changed across start");

    c.kill("KILL");
    assert!(
        c.wait_status("stopped", WAIT),
        "not stopped after KILL: {}",
        c.state()
    );
    assert!(wait_for(|| is_gone(pid), WAIT));

    rt.run_ok(["delete", c.id()]);
    assert!(
        rt.try_state(c.id()).is_none(),
        "state still answers after delete"
    );
    assert!(!rt.list_ids().contains(&c.id().to_owned()));
    assert!(
        rt.state_dir_entries().is_empty(),
        "left in state root: {:?}",
        rt.state_dir_entries()
    );
    assert!(
        bundle.leftover_mounts().is_empty(),
        "mounts left: {:?}",
        bundle.leftover_mounts()
    );
    assert!(
        existing_cgroups(&cgroups_path).is_empty(),
        "cgroups left: {:?}",
        existing_cgroups(&cgroups_path)
    );
}

#[test]
fn run_foreground_passes_output_and_deletes_container() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).sh("echo to-stdout; echo to-stderr >&2");
    let id = unique_id("fg");
    let _guard = rt.guard(&id);
    let out = rt.run([
        "run".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout_str(), "to-stdout\n");
    assert!(out.stderr_str().contains("to-stderr"), "{}", out.describe());
    // Without -d (and without --keep) the container is deleted once it exits.
    assert!(
        rt.try_state(&id).is_none(),
        "foreground run left the container behind"
    );
    assert!(rt.list_ids().is_empty());
}

#[test]
fn run_detached_returns_while_container_runs() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let id = unique_id("detach");
    let guard = rt.guard(&id);
    rt.run_ok([
        "run".as_ref(),
        "-d".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(
        wait_for(|| bundle.read_shared("ready").is_some(), WAIT),
        "detached process did not run"
    );
    assert_eq!(guard.status(), "running");
    let pid = guard.pid();
    assert!(!is_gone(pid));
    rt.run_ok(["delete", "--force", &id]);
    assert!(
        wait_for(|| is_gone(pid), WAIT),
        "delete --force left pid {pid} running"
    );
    assert!(rt.try_state(&id).is_none());
}

#[test]
fn list_formats() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let first = rt.create(&bundle);
    let second = rt.create(&bundle);
    second.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));

    let table = rt.run_ok(["list"]).stdout_str();
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .expect("table header")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{table}");
    for (guard, status) in [(&first, "created"), (&second, "running")] {
        let row = rows
            .iter()
            .find(|r| r[0] == guard.id())
            .unwrap_or_else(|| panic!("{} missing:\n{table}", guard.id()));
        assert_eq!(row[1], guard.pid().to_string(), "{table}");
        assert_eq!(row[2], status, "{table}");
        assert_eq!(row[3], bundle.path().to_str().unwrap(), "{table}");
        assert_eq!(row[5], "root", "{table}");
    }

    let json: Value =
        serde_json::from_slice(&rt.run_ok(["list", "--format", "json"]).stdout).expect("list json");
    let items = json.as_array().expect("list --format json is an array");
    assert_eq!(items.len(), 2, "{json}");
    for guard in [&first, &second] {
        let item = items
            .iter()
            .find(|i| i["id"] == guard.id())
            .expect("container in json list");
        assert_eq!(item["pid"], guard.pid(), "{item}");
        assert_eq!(item["bundle"], bundle.path().to_str().unwrap(), "{item}");
        assert!(
            item["status"].is_string() && item["created"].is_string(),
            "{item}"
        );
        assert_eq!(item["owner"], "root", "{item}");
    }

    let mut quiet = rt.list_ids();
    quiet.sort();
    let mut expected = vec![first.id().to_owned(), second.id().to_owned()];
    expected.sort();
    assert_eq!(quiet, expected);
}

#[test]
fn list_empty_root() {
    let rt = runtime();
    let table = rt.run_ok(["list"]).stdout_str();
    assert_eq!(
        table.lines().count(),
        1,
        "only the header expected:\n{table}"
    );
    assert!(rt.list_ids().is_empty());
    // runc prints `null` for an empty JSON list; an empty array means the same to JSON consumers.
    let json: Value =
        serde_json::from_slice(&rt.run_ok(["list", "--format", "json"]).stdout).expect("json");
    assert!(
        json.is_null() || json.as_array().is_some_and(Vec::is_empty),
        "{json}"
    );
}

/// A running container whose init traps SIGUSR1 and logs each delivery.
fn signal_logger(rt: &Runtime) -> Bundle {
    Bundle::new(rt).with_shared_dir().sh(
        "trap 'echo usr1 >> /shared/signals' USR1; echo ready > /shared/ready; while :; do sleep 0.05; done",
    )
}

#[test]
fn kill_accepts_signal_names_with_and_without_prefix_and_numbers() {
    let rt = runtime();
    let bundle = signal_logger(&rt);
    let c = rt.create(&bundle);
    c.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
    for (n, spelling) in ["USR1", "SIGUSR1", "10"].into_iter().enumerate() {
        rt.run_ok(["kill", c.id(), spelling]);
        // Wait for each delivery: identical pending signals would merge into one.
        let delivered = wait_for(
            || {
                bundle
                    .read_shared("signals")
                    .is_some_and(|s| s.lines().count() == n + 1)
            },
            WAIT,
        );
        assert!(
            delivered,
            "signal spelled {spelling:?} not delivered: {:?}",
            bundle.read_shared("signals")
        );
    }
    rt.run_fail(["kill", c.id(), "NOTASIGNAL"]);
    assert_eq!(c.status(), "running");
    rt.run_ok(["kill", c.id(), "SIGKILL"]);
    assert!(c.wait_status("stopped", WAIT));
}

#[test]
fn kill_default_signal_is_sigterm() {
    let rt = runtime();
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .sh("trap 'echo term > /shared/got; exit 0' TERM; echo ready > /shared/ready; while :; do sleep 0.05; done");
    let c = rt.create(&bundle);
    c.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
    rt.run_ok(["kill", c.id()]);
    assert!(
        wait_for(|| bundle.read_shared("got").is_some(), WAIT),
        "no SIGTERM arrived"
    );
    assert!(c.wait_status("stopped", WAIT));
}

#[test]
fn kill_numeric_and_prefixed_kill() {
    let rt = runtime();
    for spelling in ["9", "KILL", "SIGKILL"] {
        let bundle = sleeper(&rt);
        let c = rt.create(&bundle);
        c.start();
        rt.run_ok(["kill", c.id(), spelling]);
        assert!(
            c.wait_status("stopped", WAIT),
            "kill {spelling} did not stop the container"
        );
    }
}

#[test]
fn kill_all_signals_every_process_in_container() {
    let rt = runtime();
    // Without a pid namespace, killing init alone would leave the children running: only --all reaches them.
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .remove_namespace("pid")
        .sh(
            "sleep 1000 & echo $! > /shared/child1; sleep 1000 & echo $! > /shared/child2; \
         echo ready > /shared/ready; wait",
        );
    let c = rt.create(&bundle);
    c.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
    let children: Vec<i32> = ["child1", "child2"]
        .iter()
        .map(|f| {
            bundle
                .read_shared(f)
                .unwrap()
                .trim()
                .parse()
                .expect("child pid")
        })
        .collect();
    let init = c.pid();
    for pid in &children {
        assert!(!is_gone(*pid), "child {pid} not running before kill");
    }
    rt.run_ok(["kill", "--all", c.id(), "KILL"]);
    for pid in children.iter().chain([&init]) {
        assert!(
            wait_for(|| is_gone(*pid), WAIT),
            "pid {pid} survived kill --all"
        );
    }
    assert!(c.wait_status("stopped", WAIT));
}

#[test]
fn delete_force_removes_running_container() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = rt.create(&bundle);
    c.start();
    assert!(wait_for(|| bundle.read_shared("ready").is_some(), WAIT));
    let pid = c.pid();
    rt.run_ok(["delete", "--force", c.id()]);
    assert!(
        wait_for(|| is_gone(pid), WAIT),
        "process {pid} survived delete --force"
    );
    assert!(rt.try_state(c.id()).is_none());
    assert!(rt.list_ids().is_empty());
    assert!(
        rt.state_dir_entries().is_empty(),
        "{:?}",
        rt.state_dir_entries()
    );
    assert!(
        bundle.leftover_mounts().is_empty(),
        "{:?}",
        bundle.leftover_mounts()
    );
}

#[test]
fn delete_force_removes_created_container() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let c = rt.create(&bundle);
    let pid = c.pid();
    rt.run_ok(["delete", "-f", c.id()]);
    assert!(
        wait_for(|| is_gone(pid), WAIT),
        "init {pid} of created container survived delete -f"
    );
    assert!(rt.try_state(c.id()).is_none());
    assert!(
        bundle.read_shared("ready").is_none(),
        "user process ran although never started"
    );
}

#[test]
fn pid_file_holds_state_pid() {
    let rt = runtime();
    let bundle = sleeper(&rt);
    let dir = TempDir::new("husk-test-pidfile");

    let created = rt.guard(unique_id("pidf"));
    let pid_file = dir.join("create.pid");
    rt.run_ok([
        "create".as_ref(),
        "--pid-file".as_ref(),
        pid_file.as_os_str(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        created.id().as_ref(),
    ]);
    let text = std::fs::read_to_string(&pid_file).expect("create wrote no pid file");
    assert_eq!(
        text.trim().parse::<i32>().expect("pid file holds a number"),
        created.pid(),
        "{text:?}"
    );

    let detached = rt.guard(unique_id("pidf"));
    let pid_file = dir.join("run.pid");
    rt.run_ok([
        "run".as_ref(),
        "-d".as_ref(),
        "--pid-file".as_ref(),
        pid_file.as_os_str(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        detached.id().as_ref(),
    ]);
    let text = std::fs::read_to_string(&pid_file).expect("run -d wrote no pid file");
    assert_eq!(
        text.trim().parse::<i32>().expect("pid file holds a number"),
        detached.pid(),
        "{text:?}"
    );
}

#[test]
fn log_json_records_errors() {
    let rt = runtime();
    let dir = TempDir::new("husk-test-log");
    let log = dir.join("runtime.log");
    let missing = unique_id("missing");
    let out = rt.run([
        "--log".as_ref(),
        log.as_os_str(),
        "--log-format".as_ref(),
        "json".as_ref(),
        "state".as_ref(),
        missing.as_ref(),
    ]);
    assert!(
        !out.status.success(),
        "state of a missing container succeeded\n{}",
        out.describe()
    );

    // A failing create with an invalid bundle must also log.
    let empty_bundle = TempDir::new("husk-test-nobundle");
    let id = unique_id("nobundle");
    let _guard = rt.guard(&id);
    let out = rt.run([
        "--log".as_ref(),
        log.as_os_str(),
        "--log-format".as_ref(),
        "json".as_ref(),
        "create".as_ref(),
        "--bundle".as_ref(),
        empty_bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(
        !out.status.success(),
        "create without config.json succeeded\n{}",
        out.describe()
    );

    let text = std::fs::read_to_string(&log).expect("no log file written");
    let entries: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect();
    let errors: Vec<&Value> = entries.iter().filter(|e| e["level"] == "error").collect();
    assert!(
        errors.len() >= 2,
        "expected an error entry per failed command:\n{text}"
    );
    for entry in &entries {
        assert!(
            entry["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{entry}"
        );
        assert!(
            entry["time"].as_str().is_some_and(|t| t.contains('T')),
            "time is not RFC 3339: {entry}"
        );
        assert!(entry["level"].is_string(), "{entry}");
    }
}

#[test]
fn no_pivot_runs_container() {
    let rt = runtime();
    // Ramfs-rooted hosts cannot pivot_root; --no-pivot must still give the container its rootfs as `/`.
    let bundle = Bundle::new(&rt).sh("ls /; cat /marker");
    std::fs::write(bundle.rootfs().join("marker"), "in-rootfs\n").unwrap();
    let id = unique_id("nopivot");
    let _guard = rt.guard(&id);
    let out = rt.run([
        "run".as_ref(),
        "--no-pivot".as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        id.as_ref(),
    ]);
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stdout_str().contains("in-rootfs"), "{}", out.describe());
}

#[test]
fn no_new_keyring_is_accepted() {
    let rt = runtime();
    let bundle = Bundle::new(&rt).sh("echo ok");
    for command in ["run", "create"] {
        let id = unique_id("keyring");
        let guard = rt.guard(&id);
        let out = rt.run([
            command.as_ref(),
            "--no-new-keyring".as_ref(),
            "--bundle".as_ref(),
            bundle.path().as_os_str(),
            id.as_ref(),
        ]);
        assert!(
            out.status.success(),
            "{command} --no-new-keyring: {}",
            out.describe()
        );
        if command == "create" {
            assert_eq!(guard.status(), "created");
        } else {
            assert_eq!(out.stdout_str(), "ok\n");
        }
    }
}

/// The init is only entered with husk's private marker and a real bootstrap socket: `init` (a
/// name an embedding program may use for a subcommand of its own) and the marker with a
/// descriptor that is not a SEQPACKET socket are left to the program's own argument parsing.
#[test]
fn init_detection_needs_the_private_marker_and_the_bootstrap_socket() {
    let rt = runtime();
    if rt.is_runc() {
        return; // husk's own entry point: runc's `init` is a public subcommand
    }
    for args in [
        &["init", "3"][..],
        &["__husk_init__", "0"][..],
        &["__husk_init__", "nope"][..],
    ] {
        let out = rt
            .bare_cmd(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("internal to husk") && !stderr.contains("bootstrap"),
            "{args:?} entered the init: {stderr}"
        );
        assert!(
            stderr.contains("unrecognized subcommand"),
            "{args:?}: {stderr}"
        );
    }
}

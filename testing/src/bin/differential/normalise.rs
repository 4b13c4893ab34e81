//! Turning what a runtime printed and what the probe reported into comparable `key -> value` observations.
//!
//! Text is never compared verbatim: exit codes are, error messages are reduced to a class, JSON output to the
//! fields a caller relies on, and the probe's report to the facts the config determines (no inode numbers, mount
//! ids, pids of the host or paths of descriptors a runtime hands over on purpose).

use std::collections::BTreeMap;

use serde_json::Value;

pub type Observations = BTreeMap<String, String>;

/// The class of a runtime's stderr: `-` (nothing), `warning`, or the kind of error.
pub fn error_class(stderr: &str) -> String {
    // Debug and info lines (`--debug`) say nothing about the outcome.
    let lines: Vec<String> = stderr
        .lines()
        .map(str::to_lowercase)
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("level=debug") && !l.contains("level=info"))
        .collect();
    if lines.is_empty() {
        return "-".into();
    }
    if lines.iter().all(|l| l.contains("level=warn")) {
        return "warning".into();
    }
    let text = lines.join("\n");
    // Order matters: the first class with a matching phrase wins.
    let classes: [(&str, &[&str]); 7] = [
        ("timeout", &["timed out"]),
        // The container; a missing file or cgroup is `enoent`.
        ("not-exist", &["container does not exist"]),
        (
            "state",
            &[
                "not running",
                "not paused",
                "already running",
                "is paused",
                "in a paused",
                "not stopped",
                "is stopped",
                "stopped container",
                "cannot start",
                "container is paused",
                "is running",
                "container is ",
            ],
        ),
        ("seccomp", &["seccomp"]),
        ("eperm", &["permission denied", "operation not permitted"]),
        (
            "enoent",
            &["no such file or directory", "not found", "does not exist"],
        ),
        (
            "invalid",
            &[
                "invalid",
                "unknown",
                // serde's words for an unknown enum value (a capability name) in config.json.
                "no variant",
                "not supported",
                "must be",
                "bad ",
                "parse",
                "refus",
                "wrong",
                "cannot use two forms",
                "not allowed",
                "not in a separate",
                "needs a",
                "required",
                "without a private",
                "unmapped",
                "not mapped",
                "outside",
            ],
        ),
    ];
    for (class, needles) in classes {
        if needles.iter().any(|n| text.contains(n)) {
            return class.into();
        }
    }
    "error".into()
}

/// Namespace inodes the classification needs: the host's and those of the holder process.
pub struct NsContext {
    pub host: BTreeMap<String, u64>,
    pub holder: BTreeMap<String, u64>,
}

impl NsContext {
    fn class(&self, kind: &str, inode: u64) -> &'static str {
        if self.host.get(kind) == Some(&inode) {
            "host"
        } else if self.holder.get(kind) == Some(&inode) {
            "holder"
        } else {
            "new"
        }
    }
}

/// Reads the namespace inodes of process `pid` (`self` for this process).
pub fn namespace_inodes(pid: &str) -> BTreeMap<String, u64> {
    use std::os::unix::fs::MetadataExt;
    let mut map = BTreeMap::new();
    for kind in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        if let Ok(meta) = std::fs::metadata(format!("/proc/{pid}/ns/{kind}")) {
            map.insert(kind.to_string(), meta.ino());
        }
    }
    map
}

/// Extracts the probe's JSON report from a process's output (anything before it, e.g. warnings, is skipped).
pub fn parse_report(output: &str) -> Option<Value> {
    let start = output.find('{')?;
    let body = &output[start..];
    let body = match body.find(crate::catalogue::END_MARKER) {
        Some(end) => &body[..end],
        None => body,
    };
    serde_json::from_str(body.trim()).ok()
}

/// Flattens a probe report into observations under `prefix`.
pub fn report(prefix: &str, report: &Value, ns: &NsContext, out: &mut Observations) {
    let mut put = |key: &str, value: String| {
        out.insert(format!("{prefix}.{key}"), value);
    };
    for key in [
        "uid",
        "gid",
        "groups",
        "cwd",
        "hostname",
        "domainname",
        "umask",
        "oom_score_adj",
        "no_new_privs",
        "capabilities",
        "rlimits",
        "uid_map",
        "gid_map",
        "setgroups",
        "personality",
        "scheduler",
        "io_priority",
        "cpus_allowed",
        "mems_allowed",
        "apparmor",
        "sysctls",
        "cgroup_files",
        "timens_offsets",
    ] {
        if let Some(value) = report.get(key) {
            put(key, compact(value));
        }
    }
    // Device nodes and links as one list; each directory of /dev (owned by whoever mounted it) on
    // its own, so that a listed difference in one does not hide the others.
    if let Some(devices) = report["devices"].as_array() {
        let (dirs, nodes): (Vec<&Value>, Vec<&Value>) =
            devices.iter().partition(|d| d["type"] == "dir");
        put(
            "devices",
            compact(&Value::Array(nodes.into_iter().cloned().collect())),
        );
        for dir in dirs {
            put(
                &format!("devdir:{}", dir["path"].as_str().unwrap_or("?")),
                compact(dir),
            );
        }
    }
    if let Some(calls) = report["syscalls"].as_object() {
        // Arguments hold buffer addresses and return values pids: only the outcome is compared.
        for (name, result) in calls {
            let outcome = match result["errno_name"].as_str() {
                Some(errno) => errno.to_string(),
                None => "ok".to_string(),
            };
            put(&format!("syscall:{name}"), outcome);
        }
    }
    if let Some(env) = report["env"].as_array() {
        let mut vars: Vec<String> = env.iter().map(compact).collect();
        vars.sort();
        put("env", vars.join(" "));
    }
    put("seccomp.mode", compact(&report["seccomp"]["mode"]));
    if let Some(map) = report["namespaces"].as_object() {
        for (kind, inode) in map {
            if kind.ends_with("_for_children") {
                continue;
            }
            let class = inode.as_u64().map_or("?", |i| ns.class(kind, i));
            put(&format!("ns.{kind}"), class.to_string());
        }
    }
    let pid_ns_new = report["namespaces"]["pid"]
        .as_u64()
        .is_some_and(|i| ns.class("pid", i) != "host");
    if pid_ns_new {
        // Whether the process is the namespace's init; other pids depend on how many processes ran before.
        let is_init = report["pid"].as_u64() == Some(1);
        put("pid", if is_init { "1" } else { ">1" }.to_string());
    }
    if let Some(mounts) = report["mounts"].as_array() {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for m in mounts {
            let point = m["mount_point"].as_str().unwrap_or("?").to_string();
            let n = seen.entry(point.clone()).or_default();
            let key = if *n == 0 {
                format!("mount:{point}")
            } else {
                format!("mount:{point}#{n}")
            };
            *n += 1;
            put(&key, mount(m));
        }
    }
    if let Some(paths) = report["paths"].as_object() {
        for (path, info) in paths {
            put(&format!("path:{path}"), path_info(info));
        }
    }
    if let Some(fds) = report["fds"].as_array() {
        let extra: Vec<String> = fds
            .iter()
            .filter(|fd| fd["fd"].as_u64().is_some_and(|n| n > 2))
            .map(|fd| strip_numbers(fd["target"].as_str().unwrap_or("?")))
            .collect();
        put("fds", extra.join(" "));
    }
    if let Some(cgroups) = report["cgroups"].as_array() {
        let mut list: Vec<String> = cgroups
            .iter()
            .map(|c| {
                format!(
                    "{}:{}",
                    compact(&c["controllers"]),
                    c["path"].as_str().unwrap_or("?")
                )
            })
            .collect();
        list.sort();
        put("cgroups", list.join(" "));
    }
    let terminal = &report["terminal"];
    // Which file stdio is (a relay's pipe, the caller's file) differs on purpose; whether it is a terminal does not.
    put(
        "terminal",
        format!("{}/{}", terminal["stdin_isatty"], terminal["stdout_isatty"]),
    );
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A mount as the config determines it: filesystem, per-mount flags, the relevant superblock options and
/// propagation. A masked file is bound from a null device; which filesystem that device lives on is not compared.
fn mount(m: &Value) -> String {
    let fstype = m["fstype"].as_str().unwrap_or("?");
    let root = m["root"].as_str().unwrap_or("?");
    let options: Vec<String> = m["options"]
        .as_array()
        .map(|o| o.iter().map(compact).collect())
        .unwrap_or_default();
    let super_options: Vec<String> = m["super_options"]
        .as_array()
        .map(|o| o.iter().map(compact).collect())
        .unwrap_or_default();
    let kind = if root == "/null" && (fstype == "devtmpfs" || fstype == "tmpfs") {
        "null-device".to_string()
    } else {
        fstype.to_string()
    };
    let kept_super: Vec<&String> = super_options
        .iter()
        .filter(|o| match fstype {
            "overlay" => false,
            "devtmpfs" => !o.starts_with("size=") && !o.starts_with("nr_inodes="),
            _ => true,
        })
        .filter(|_| kind != "null-device")
        .collect();
    let propagation = &m["propagation"];
    let mut prop = Vec::new();
    if !propagation["shared"].is_null() {
        prop.push("shared");
    }
    if !propagation["master"].is_null() {
        prop.push("slave");
    }
    if propagation["unbindable"] == Value::Bool(true) {
        prop.push("unbindable");
    }
    let root_shown = if kind == "null-device" || fstype == "overlay" {
        String::new()
    } else {
        format!(" root={root}")
    };
    format!(
        "{kind} {}{} super={} prop={}",
        options.join(","),
        root_shown,
        kept_super
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(","),
        if prop.is_empty() {
            "private".to_string()
        } else {
            prop.join(",")
        }
    )
}

fn path_info(info: &Value) -> String {
    let mut info = info.clone();
    if let Some(map) = info.as_object_mut() {
        map.remove("dev");
        map.remove("ino");
        // A procfs directory lists pids, which depend on how many processes ran before.
        if let Some(Value::Array(entries)) = map.get_mut("entries") {
            entries.retain(|e| {
                !e.as_str()
                    .is_some_and(|s| s.chars().all(|c| c.is_ascii_digit()))
            });
        }
        for key in ["write_error", "read_error", "error"] {
            if let Some(err) = map.get(key).cloned() {
                map.insert(key.into(), err["errno_name"].clone());
            }
        }
    }
    compact(&info)
}

/// `pipe:[1234]` -> `pipe:[]`: inode numbers differ between runs.
fn strip_numbers(s: &str) -> String {
    let mut out = String::new();
    let mut in_brackets = false;
    for c in s.chars() {
        match c {
            '[' => {
                in_brackets = true;
                out.push(c);
            }
            ']' => {
                in_brackets = false;
                out.push(c);
            }
            _ if in_brackets => {}
            _ => out.push(c),
        }
    }
    out
}

/// A `--log` file: whether it has lines and in which format (logrus text or JSON objects with level, msg, time).
pub fn log_file(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return "empty".into();
    }
    let json = lines.iter().all(|l| {
        serde_json::from_str::<Value>(l).is_ok_and(|v| {
            v.get("level").is_some() && v.get("msg").is_some() && v.get("time").is_some()
        })
    });
    let text = lines
        .iter()
        .all(|l| l.starts_with("time=") && l.contains(" level=") && l.contains(" msg="));
    match (json, text) {
        (true, _) => "json".into(),
        (_, true) => "text".into(),
        _ => "other".into(),
    }
}

/// The parts of `state` output that callers use.
pub fn state(stdout: &str, id: &str, bundle: &str) -> String {
    match serde_json::from_str::<Value>(stdout) {
        Ok(v) => format!(
            "status={} pid>0={} id_ok={} bundle_ok={} owner={} annotations={}",
            compact(&v["status"]),
            v["pid"].as_i64().is_some_and(|p| p > 0),
            v["id"] == id,
            v["bundle"] == bundle,
            compact(&v["owner"]),
            !v["annotations"].is_null()
        ),
        Err(_) if stdout.trim().is_empty() => "-".into(),
        Err(_) => "not-json".into(),
    }
}

/// `events --stats`: the line's shape (key order of the envelope, which scripts compare as text) and data keys.
pub fn events(stdout: &str) -> String {
    let line = stdout.lines().next().unwrap_or("");
    match serde_json::from_str::<Value>(line) {
        Ok(v) => {
            let order: Vec<&str> = ["\"type\"", "\"id\"", "\"data\""]
                .into_iter()
                .filter_map(|k| line.find(k).map(|pos| (pos, k)))
                .collect::<BTreeMap<_, _>>()
                .into_values()
                .collect();
            let data_keys: Vec<&String> = v["data"]
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            format!(
                "type={} envelope={} data={:?}",
                compact(&v["type"]),
                order.join(","),
                data_keys
            )
        }
        Err(_) if line.trim().is_empty() => "-".into(),
        Err(_) => "not-json".into(),
    }
}

/// `ps` (table: header and row count) or `ps --format json` (pid count).
pub fn ps(stdout: &str, json: bool) -> String {
    if json {
        return match serde_json::from_str::<Value>(stdout) {
            Ok(Value::Array(pids)) => format!("pids>0={}", !pids.is_empty()),
            Ok(other) => format!("json:{}", compact(&other)),
            Err(_) => "not-json".into(),
        };
    }
    // How many processes: the main script's short-lived `sleep` comes and goes, so only whether
    // there are any.
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    format!("header={} rows>0={}", header.join(","), lines.count() > 0)
}

/// `list --format json`: ids and statuses.
pub fn list(stdout: &str) -> String {
    match serde_json::from_str::<Value>(stdout) {
        Ok(Value::Array(items)) => items
            .iter()
            .map(|c| format!("{}:{}", compact(&c["id"]), compact(&c["status"])))
            .collect::<Vec<_>>()
            .join(" "),
        Ok(Value::Null) => "[]".into(),
        Ok(other) => format!("json:{}", compact(&other)),
        Err(_) => "not-json".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_common_errors() {
        assert_eq!(error_class(""), "-");
        assert_eq!(
            error_class("time=\"x\" level=error msg=\"container does not exist\""),
            "not-exist"
        );
        assert_eq!(error_class("level=warning msg=\"x\""), "warning");
        assert_eq!(error_class("cannot exec in a paused container"), "state");
    }

    #[test]
    fn events_envelope_order() {
        assert_eq!(
            events(r#"{"type":"stats","id":"a","data":{"pids":{}}}"#),
            r#"type=stats envelope="type","id","data" data=["pids"]"#
        );
    }
}

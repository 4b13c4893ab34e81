//! The catalogue: spec fields and CLI flags a case is drawn from, and the case itself (config features plus a
//! command sequence).
//!
//! A case is a list of independent features, each an edit of the base config (from `runc spec`) with the host
//! fixtures and probe arguments it needs, so that a failing case can be shrunk by dropping features one at a time.
//! Strings in the config may hold placeholders that are filled in per run: `@CASE@` (the case's host directory),
//! `@ID@` (the container id) and `@HOLDER@` (pid of the process holding namespaces to join).

use serde_json::{json, Value};

use crate::rng::Rng;

#[derive(Clone, Debug)]
pub enum Op {
    /// Sets the value at a JSON pointer (parents created).
    Set(String, Value),
    /// Appends to the array at a JSON pointer (created if missing).
    Push(String, Value),
    /// Removes the value at a JSON pointer.
    Remove(String),
    /// Removes namespace `kind` from `linux.namespaces` (the container inherits the runtime's).
    DropNamespace(&'static str),
    /// Makes the container join namespace `kind` of the holder process.
    JoinNamespace(&'static str),
    /// Adds a new namespace of `kind`.
    AddNamespace(&'static str),
    /// Removes every mount whose destination is the given one.
    DropMount(&'static str),
    /// Adds an option to every mount whose destination is the given one.
    MountOption(&'static str, &'static str),
    /// Takes `linux` and `mounts` from `runc spec --rootless` (see [`set_rootless_base`]).
    Rootless,
}

static ROOTLESS_BASE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();

/// Records `runc spec --rootless` output for [`Op::Rootless`].
pub fn set_rootless_base(spec: Value) {
    let _ = ROOTLESS_BASE.set(spec);
}

/// Host state a feature needs, created fresh before each runtime's run.
#[derive(Clone, Debug)]
pub enum Fixture {
    /// A directory under the case directory holding one file `f`.
    Dir(String),
    /// A file under the case directory.
    File(String),
    /// A directory in the container's root filesystem (the overlay's upper layer), with mode and owner.
    RootfsDir(String, u32, u32),
    /// A directory of the image replaced by a symlink to another path (e.g. `/proc` -> `/tmp`).
    RootfsSymlink(String, String),
    /// A cgroup (`linux.cgroupsPath`, placeholders filled in) that exists and is frozen before `create`.
    FrozenCgroup(String),
}

#[derive(Clone, Debug)]
pub struct Feature {
    /// What the feature is, e.g. `mount:tmpfs[mode=0700]`: known differences are matched against these.
    pub tag: String,
    pub ops: Vec<Op>,
    pub fixtures: Vec<Fixture>,
    /// Extra `probe report` arguments for the container's main process (e.g. `--path /mnt/x`).
    pub probe: Vec<String>,
    /// Global options placed before `create`/`run` (e.g. `--log FILE`).
    pub global_flags: Vec<String>,
    /// Options of `create`/`run` (e.g. `--no-pivot`).
    pub create_flags: Vec<String>,
}

impl Feature {
    fn new(tag: impl Into<String>) -> Feature {
        Feature {
            tag: tag.into(),
            ops: Vec::new(),
            fixtures: Vec::new(),
            probe: Vec::new(),
            global_flags: Vec::new(),
            create_flags: Vec::new(),
        }
    }

    fn op(mut self, op: Op) -> Feature {
        self.ops.push(op);
        self
    }

    fn set(self, pointer: &str, value: Value) -> Feature {
        self.op(Op::Set(pointer.into(), value))
    }

    fn push(self, pointer: &str, value: Value) -> Feature {
        self.op(Op::Push(pointer.into(), value))
    }

    fn fixture(mut self, fixture: Fixture) -> Feature {
        self.fixtures.push(fixture);
        self
    }

    fn probe_path(mut self, path: &str) -> Feature {
        self.probe.push("--path".into());
        self.probe.push(path.into());
        self
    }

    fn probe_arg(mut self, flag: &str, value: &str) -> Feature {
        self.probe.push(flag.into());
        self.probe.push(value.into());
        self
    }
}

/// One command of a case's sequence.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// `run` in the foreground (the main process prints its report and exits) or `run -d`.
    Run {
        detach: bool,
    },
    Create {
        pid_file: bool,
    },
    Start,
    /// Waits until the main process has printed its report (or the container stopped).
    WaitReport,
    State,
    List,
    /// `exec` with the given flags (`@PROCESS@` names a process.json written from `process`).
    Exec {
        flags: Vec<String>,
        args: Vec<String>,
        process: Option<Value>,
    },
    Kill {
        signal: String,
        all: bool,
    },
    Pause,
    Resume,
    Update {
        flags: Vec<String>,
        resources: Option<Value>,
    },
    Events,
    Ps {
        json: bool,
    },
    Delete {
        force: bool,
    },
    /// Waits (briefly) for the container to stop; records whether it did.
    WaitStopped,
}

impl Step {
    /// A short name for observation keys.
    pub fn verb(&self) -> &'static str {
        match self {
            Step::Run { detach: false } => "run",
            Step::Run { detach: true } => "run-d",
            Step::Create { .. } => "create",
            Step::Start => "start",
            Step::WaitReport => "report",
            Step::State => "state",
            Step::List => "list",
            Step::Exec { .. } => "exec",
            Step::Kill { .. } => "kill",
            Step::Pause => "pause",
            Step::Resume => "resume",
            Step::Update { .. } => "update",
            Step::Events => "events",
            Step::Ps { .. } => "ps",
            Step::Delete { .. } => "delete",
            Step::WaitStopped => "wait-stopped",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Case {
    pub seed: u64,
    pub features: Vec<Feature>,
    pub steps: Vec<Step>,
    /// The main process's exit code after its report, or `None` for one that waits until it is killed.
    pub exit_code: Option<u8>,
}

impl Case {
    /// The features' tags, and `exec:process-file` for a case that runs `exec --process`.
    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self.features.iter().map(|f| f.tag.clone()).collect();
        let process_file = self.steps.iter().any(|s| {
            matches!(
                s,
                Step::Exec {
                    process: Some(_),
                    ..
                }
            )
        });
        if process_file {
            tags.push("exec:process-file".into());
        }
        // The signals the case sends (what a process that is not a pid namespace's init does with
        // them depends on its signal mask, which runc 1.1.5 passes on).
        for step in &self.steps {
            if let Step::Kill { signal, .. } = step {
                let tag = format!("kill:{signal}");
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        // `kill --all` while the container is paused (runc 1.1.5 thaws it).
        let mut paused = false;
        for step in &self.steps {
            match step {
                Step::Pause => paused = true,
                Step::Resume => paused = false,
                Step::Kill { all: true, .. } if paused => {
                    tags.push("kill-all-while-paused".into());
                    break;
                }
                _ => {}
            }
        }
        tags
    }

    /// The main process: the probe's report, an end marker, then exit or wait for SIGTERM.
    pub fn main_script(&self) -> String {
        let mut probe = String::from("probe report");
        for f in &self.features {
            for arg in &f.probe {
                probe.push(' ');
                probe.push_str(&shell_quote(arg));
            }
        }
        let tail = match self.exit_code {
            Some(code) => format!("exit {code}"),
            // PID 1 of a pid namespace ignores SIGTERM without a handler: the trap makes `kill` work either way.
            None => "trap 'exit 143' TERM; while :; do sleep 0.2; done".to_string(),
        };
        // Signal dispositions and mask as the process got them (`grep` inherits the shell's, which inherits the
        // runtime's init's): a runtime must not pass on what its caller ignored or blocked.
        format!(
            "exec 2>&1; grep -E '^Sig(Ign|Blk):' /proc/self/status; {probe}; echo; echo {END_MARKER}; {tail}"
        )
    }

    /// The config: `base` (from `runc spec`) with the main process and every feature applied.
    pub fn config(&self, base: &Value) -> Value {
        let mut config = base.clone();
        config["root"] = json!({ "path": "rootfs", "readonly": false });
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["sh", "-c", self.main_script()]);
        for feature in &self.features {
            for op in &feature.ops {
                apply(&mut config, op);
            }
        }
        config
    }

    /// Namespace kinds a holder process must provide.
    pub fn holder_kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = self
            .features
            .iter()
            .flat_map(|f| &f.ops)
            .filter_map(|op| match op {
                Op::JoinNamespace(kind) => Some(*kind),
                _ => None,
            })
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }

    pub fn global_flags(&self) -> Vec<String> {
        self.features
            .iter()
            .flat_map(|f| f.global_flags.clone())
            .collect()
    }

    pub fn create_flags(&self) -> Vec<String> {
        self.features
            .iter()
            .flat_map(|f| f.create_flags.clone())
            .collect()
    }

    pub fn without_feature(&self, index: usize) -> Case {
        let mut case = self.clone();
        case.features.remove(index);
        case
    }
}

/// Parent cgroups that `linux.cgroupsPath`s of the catalogue create (removed when the tool ends).
pub const CGROUP_PARENTS: [&str; 3] = ["hdiff", "hdiff-rel", "hdiff-frozen"];

/// Printed by the main process after its report.
pub const END_MARKER: &str = "@@END@@";

pub fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn apply(config: &mut Value, op: &Op) {
    match op {
        Op::Set(pointer, value) => *ensure(config, pointer) = value.clone(),
        Op::Push(pointer, value) => {
            let slot = ensure(config, pointer);
            if !slot.is_array() {
                *slot = json!([]);
            }
            slot.as_array_mut().expect("array").push(value.clone());
        }
        Op::Remove(pointer) => {
            if let Some((parent, last)) = pointer.rsplit_once('/') {
                if let Some(Value::Object(map)) = config.pointer_mut(parent) {
                    map.remove(last);
                }
            }
        }
        Op::DropNamespace(kind) => namespaces(config).retain(|n| n["type"] != *kind),
        Op::JoinNamespace(kind) => {
            let list = namespaces(config);
            list.retain(|n| n["type"] != *kind);
            let file = match *kind {
                "network" => "net",
                "mount" => "mnt",
                other => other,
            };
            list.push(json!({ "type": kind, "path": format!("/proc/@HOLDER@/ns/{file}") }));
        }
        Op::AddNamespace(kind) => {
            let list = namespaces(config);
            if !list.iter().any(|n| n["type"] == *kind) {
                list.push(json!({ "type": kind }));
            }
        }
        Op::Rootless => {
            if let Some(rootless) = ROOTLESS_BASE.get() {
                config["linux"] = rootless["linux"].clone();
                config["mounts"] = rootless["mounts"].clone();
            }
        }
        Op::DropMount(dest) => {
            if let Some(mounts) = config["mounts"].as_array_mut() {
                mounts.retain(|m| m["destination"] != *dest);
            }
        }
        Op::MountOption(dest, option) => {
            if let Some(mounts) = config["mounts"].as_array_mut() {
                for m in mounts.iter_mut().filter(|m| m["destination"] == *dest) {
                    let options = &mut m["options"];
                    if !options.is_array() {
                        *options = json!([]);
                    }
                    let list = options.as_array_mut().expect("array");
                    list.retain(|o| o != "rw" || *option != "ro");
                    list.push(json!(option));
                }
            }
        }
    }
}

fn namespaces(config: &mut Value) -> &mut Vec<Value> {
    let slot = ensure(config, "/linux/namespaces");
    if !slot.is_array() {
        *slot = json!([]);
    }
    slot.as_array_mut().expect("array")
}

/// The value at `pointer`, creating objects along the way (a `-` token appends to an array).
fn ensure<'a>(config: &'a mut Value, pointer: &str) -> &'a mut Value {
    let mut node = config;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if let Value::Array(items) = node {
            if token == "-" {
                items.push(Value::Null);
                node = items.last_mut().expect("pushed");
            } else {
                let index: usize = token.parse().expect("array index");
                node = &mut items[index];
            }
            continue;
        }
        if !node.is_object() {
            *node = json!({});
        }
        node = node
            .as_object_mut()
            .expect("object")
            .entry(token)
            .or_insert(Value::Null);
    }
    node
}

/// Draws case number `seed`.
pub fn generate(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let mut features = Vec::new();
    namespaces_features(&mut rng, &mut features);
    process_features(&mut rng, &mut features);
    mount_features(&mut rng, &mut features);
    linux_features(&mut rng, &mut features);
    cli_features(&mut rng, &mut features);
    let (steps, exit_code) = steps(&mut rng);
    Case {
        seed,
        features,
        steps,
        exit_code,
    }
}

fn namespaces_features(rng: &mut Rng, out: &mut Vec<Feature>) {
    for kind in ["network", "ipc", "uts", "cgroup", "pid", "mount"] {
        let drop_percent = if kind == "mount" { 3 } else { 8 };
        if rng.chance(drop_percent) {
            let mut f = Feature::new(format!("ns-drop:{kind}")).op(Op::DropNamespace(kind));
            if kind == "uts" {
                // runc's spec sets a hostname, which needs a UTS namespace; keep the case valid most of the time.
                if rng.chance(80) {
                    f = f.op(Op::Remove("/hostname".into()));
                }
            }
            out.push(f);
        } else if ["network", "ipc", "uts"].contains(&kind) && rng.chance(6) {
            out.push(Feature::new(format!("ns-join:{kind}")).op(Op::JoinNamespace(kind)));
        }
    }
    if rng.chance(5) {
        out.push(
            Feature::new("ns-new:user")
                .op(Op::AddNamespace("user"))
                .set(
                    "/linux/uidMappings",
                    json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]),
                )
                .set(
                    "/linux/gidMappings",
                    json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]),
                ),
        );
    }
    if rng.chance(2) {
        out.push(Feature::new("ns-new:time").op(Op::AddNamespace("time")));
    }
    if rng.chance(4) {
        // First, so that later features edit the rootless spec's namespaces and mounts.
        out.insert(0, Feature::new("rootless-spec").op(Op::Rootless));
    }
}

fn process_features(rng: &mut Rng, out: &mut Vec<Feature>) {
    if rng.chance(30) {
        let users: [(u32, u32, &[u32]); 6] = [
            (0, 0, &[]),
            (1000, 1000, &[]),
            (1000, 1000, &[1001, 1002]),
            (65534, 65534, &[]),
            (0, 0, &[1001]),
            (123, 456, &[]),
        ];
        let (uid, gid, groups) = *rng.pick(&users);
        let mut user = json!({ "uid": uid, "gid": gid });
        if !groups.is_empty() {
            user["additionalGids"] = json!(groups);
        }
        out.push(Feature::new(format!("user:{uid}:{gid}:{groups:?}")).set("/process/user", user));
    }
    if rng.chance(15) {
        let umask = *rng.pick(&[0o077u32, 0o002, 0, 0o027]);
        out.push(Feature::new(format!("umask:{umask:o}")).set("/process/user/umask", json!(umask)));
    }
    if rng.chance(20) {
        let cwd = *rng.pick(&[
            "/tmp",
            "/root",
            "/new/sub/dir",
            "/etc",
            "/home",
            "tmp",
            "/dev",
        ]);
        out.push(Feature::new(format!("cwd:{cwd}")).set("/process/cwd", json!(cwd)));
    }
    if rng.chance(30) {
        for _ in 0..=rng.below(2) {
            let limits: [(&str, u64, u64); 9] = [
                ("RLIMIT_NOFILE", 512, 1024),
                ("RLIMIT_NOFILE", 1024, 1024),
                ("RLIMIT_NOFILE", 2048, 1024),
                ("RLIMIT_NPROC", 100, 200),
                ("RLIMIT_CORE", 0, 0),
                ("RLIMIT_CORE", u64::MAX, u64::MAX),
                ("RLIMIT_STACK", 8 << 20, u64::MAX),
                ("RLIMIT_MEMLOCK", 65536, 65536),
                ("RLIMIT_BOGUS", 1, 1),
            ];
            let (kind, soft, hard) = *rng.pick(&limits);
            // A type drawn twice is marked: the spec requires an error for duplicated types.
            let prefix = format!("rlimit:{kind}:");
            let dup = if out.iter().any(|f| f.tag.starts_with(&prefix)) {
                "+dup"
            } else {
                ""
            };
            out.push(
                Feature::new(format!("rlimit:{kind}:{soft}:{hard}{dup}")).push(
                    "/process/rlimits",
                    json!({ "type": kind, "soft": soft, "hard": hard }),
                ),
            );
        }
    }
    if rng.chance(15) {
        out.push(Feature::new("nnp").set("/process/noNewPrivileges", json!(true)));
    }
    if rng.chance(10) {
        let adj = *rng.pick(&[-500i32, 0, 500, 1000, 1001]);
        out.push(Feature::new(format!("oom:{adj}")).set("/process/oomScoreAdj", json!(adj)));
    }
    if rng.chance(20) {
        let caps: &[&[&str]] = &[
            &["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
            &[],
            &[
                "CAP_SYS_ADMIN",
                "CAP_AUDIT_WRITE",
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
            ],
            &["CAP_BOGUS"],
        ];
        let set = rng.pick(caps);
        let mut f = Feature::new(format!("caps:{set:?}"));
        for kind in ["bounding", "effective", "permitted"] {
            f = f.set(&format!("/process/capabilities/{kind}"), json!(set));
        }
        if rng.chance(30) {
            f = f.set("/process/capabilities/ambient", json!(set));
            f = f.set("/process/capabilities/inheritable", json!(set));
            f.tag.push_str("+ambient");
        }
        out.push(f);
    }
    if rng.chance(15) {
        let env: &[&str] = &["FOO=bar", "HOME=/tmp", "EMPTY=", "DUP=1"];
        let var = *rng.pick(env);
        let mut f = Feature::new(format!("env:{var}")).push("/process/env", json!(var));
        if var == "DUP=1" {
            f = f.push("/process/env", json!("DUP=2"));
        }
        out.push(f);
    }
    if rng.chance(3) {
        // About 1 MB of environment (Kubernetes service links): the config no longer fits a socket message.
        let mut f = Feature::new("env:1MB");
        for i in 0..2000 {
            f = f.push(
                "/process/env",
                json!(format!("SVC_{i}_PORT={}", "x".repeat(500))),
            );
        }
        out.push(f);
    }
    if rng.chance(12) {
        let name = *rng.pick(&["box", "a.b-c"]);
        out.push(Feature::new(format!("hostname:{name}")).set("/hostname", json!(name)));
    }
    if rng.chance(4) {
        out.push(Feature::new("domainname").set("/domainname", json!("example")));
    }
}

fn mount_features(rng: &mut Rng, out: &mut Vec<Feature>) {
    if rng.chance(40) {
        for i in 0..=rng.below(3) {
            let mut mount = one_mount(rng, i);
            // The same mount drawn again lands on top of the first.
            if out.iter().any(|f| f.tag == mount.tag) {
                mount.tag.push_str("+again");
            }
            out.push(mount);
        }
    }
    if rng.chance(10) {
        let dest = *rng.pick(&[
            "/dev/shm",
            "/dev/mqueue",
            "/sys/fs/cgroup",
            "/dev/pts",
            "/sys",
        ]);
        out.push(Feature::new(format!("mount-drop:{dest}")).op(Op::DropMount(dest)));
    }
    if rng.chance(6) {
        let (dest, option) = *rng.pick(&[
            ("/dev", "ro"),
            ("/dev/shm", "ro"),
            ("/sys/fs/cgroup", "rw"),
            ("/proc", "nosuid"),
            ("/dev/pts", "ro"),
        ]);
        out.push(
            Feature::new(format!("mount-opt:{dest}:{option}"))
                .op(Op::MountOption(dest, option))
                .probe_path(dest),
        );
    }
    if rng.chance(25) {
        let masked: &[(&str, &str)] = &[
            ("maskedPaths", "/etc/passwd"),
            ("maskedPaths", "/var"),
            ("maskedPaths", "/no/such/path"),
            ("maskedPaths", "/proc/cpuinfo"),
            ("readonlyPaths", "/etc"),
            ("readonlyPaths", "/dev/null"),
            ("readonlyPaths", "/tmp"),
            ("readonlyPaths", "/no/such/path"),
            ("readonlyPaths", "/proc/sys/kernel"),
        ];
        let (list, path) = *rng.pick(masked);
        out.push(
            Feature::new(format!("{list}:{path}"))
                .push(&format!("/linux/{list}"), json!(path))
                .probe_path(path),
        );
    }
    if rng.chance(5) {
        out.push(
            Feature::new("masked:none")
                .set("/linux/maskedPaths", json!([]))
                .set("/linux/readonlyPaths", json!([]))
                .probe_path("/proc/kcore"),
        );
    }
    if rng.chance(10) {
        out.push(Feature::new("root-readonly").set("/root/readonly", json!(true)));
    }
    if rng.chance(3) {
        let dir = *rng.pick(&["/proc", "/sys"]);
        out.push(
            Feature::new(format!("rootfs-symlink:{dir}"))
                .fixture(Fixture::RootfsSymlink(dir.into(), "/tmp".into())),
        );
    }
    if rng.chance(8) {
        let prop = *rng.pick(&[
            "private",
            "rprivate",
            "slave",
            "rslave",
            "shared",
            "rshared",
            "unbindable",
            "bogus",
        ]);
        out.push(
            Feature::new(format!("rootfsPropagation:{prop}"))
                .set("/linux/rootfsPropagation", json!(prop)),
        );
    }
}

fn one_mount(rng: &mut Rng, i: usize) -> Feature {
    match rng.below(7) {
        0 | 1 => {
            let dest = match rng.below(4) {
                0 => "/tmp".to_string(),
                1 => "/etc".to_string(),
                _ => format!("/mnt/t{i}"),
            };
            let pool = [
                "nosuid",
                "nodev",
                "noexec",
                "ro",
                "mode=0700",
                "mode=1777",
                "mode=0755",
                "size=1m",
                "size=64k",
                "uid=1000",
                "gid=1000",
                "tmpcopyup",
                "strictatime",
                "noatime",
            ];
            let options = subset(rng, &pool, 3);
            Feature::new(format!("mount:tmpfs:{dest}:{}", options.join(",")))
                .push(
                    "/mounts",
                    json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options }),
                )
                .probe_path(&dest)
        }
        2 | 3 => {
            let src = format!("src{i}");
            let dest = if rng.chance(20) {
                "/etc".to_string()
            } else {
                format!("/mnt/b{i}")
            };
            let mut options = vec![rng.pick(&["bind", "rbind"]).to_string()];
            options.extend(subset(
                rng,
                &[
                    "ro", "nosuid", "nodev", "noexec", "rprivate", "private", "rslave", "shared",
                    "rw",
                ],
                2,
            ));
            Feature::new(format!("mount:bind:{dest}:{}", options.join(",")))
                .fixture(Fixture::Dir(src.clone()))
                .push(
                    "/mounts",
                    json!({ "destination": dest, "type": "bind", "source": format!("@CASE@/{src}"), "options": options }),
                )
                .probe_path(&dest)
                .probe_path(&format!("{dest}/f"))
        }
        4 => {
            let dest = *rng.pick(&["/etc/bindfile", "/etc/hostname", "/newfile"]);
            let ro = rng.chance(50);
            let options: Vec<&str> = if ro { vec!["bind", "ro"] } else { vec!["bind"] };
            Feature::new(format!("mount:bindfile:{dest}:{}", options.join(",")))
                .fixture(Fixture::File("file".into()))
                .push(
                    "/mounts",
                    json!({ "destination": dest, "type": "bind", "source": "@CASE@/file", "options": options }),
                )
                .probe_path(dest)
        }
        5 => {
            let (kind, dest, options): (&str, &str, &[&str]) = *rng.pick(&[
                ("mqueue", "/mnt/mq", &["nosuid", "nodev", "noexec"][..]),
                (
                    "devpts",
                    "/mnt/pts",
                    &["newinstance", "ptmxmode=0666", "mode=0620"][..],
                ),
                ("sysfs", "/mnt/sys", &["ro", "nosuid"][..]),
                ("proc", "/mnt/proc", &["nosuid", "nodev", "noexec"][..]),
                ("cgroup", "/mnt/cg", &["ro", "nosuid"][..]),
                ("tmpfs", "/dev/shm", &["size=1m", "mode=1777"][..]),
            ]);
            Feature::new(format!("mount:{kind}:{dest}"))
                .push(
                    "/mounts",
                    json!({ "destination": dest, "type": kind, "source": kind, "options": options }),
                )
                .probe_path(dest)
        }
        _ => {
            // A mount point that exists in the image with its own mode: what does a tmpfs on it look like?
            let mode = *rng.pick(&[0o2775u32, 0o700, 0o1777]);
            let dest = format!("/srv{i}");
            Feature::new(format!("mount:tmpfs-on-mode:{mode:o}"))
                .fixture(Fixture::RootfsDir(dest.clone(), mode, 1000))
                .push(
                    "/mounts",
                    json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"] }),
                )
                .probe_path(&dest)
        }
    }
}

fn linux_features(rng: &mut Rng, out: &mut Vec<Feature>) {
    if rng.chance(20) {
        let (key, value) = *rng.pick(&[
            ("net.ipv4.ip_forward", "1"),
            ("kernel.shm_rmid_forced", "1"),
            ("net.core.somaxconn", "1024"),
            ("kernel.msgmax", "8192"),
            ("vm.swappiness", "10"),
            ("fs.mqueue.msg_max", "20"),
            ("kernel.domainname", "dom"),
        ]);
        out.push(
            Feature::new(format!("sysctl:{key}={value}"))
                .set(&format!("/linux/sysctl/{key}"), json!(value))
                .probe_arg("--sysctl", key),
        );
    }
    if rng.chance(15) {
        let devices = [
            json!({ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438 }),
            json!({ "path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 384, "uid": 1000, "gid": 1000 }),
            json!({ "path": "/dev/loopx", "type": "b", "major": 7, "minor": 200, "fileMode": 432 }),
            json!({ "path": "/dev/fifo", "type": "p", "fileMode": 420 }),
            json!({ "path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 384 }),
            json!({ "path": "/dev/sub/dir/zero", "type": "c", "major": 1, "minor": 5 }),
        ];
        let device = rng.pick(&devices).clone();
        let mut f = Feature::new(format!("device:{}", device["path"].as_str().unwrap_or("")))
            .push("/linux/devices", device.clone());
        if device["type"] != "p" && rng.chance(60) {
            f = f.push(
                "/linux/resources/devices",
                json!({ "allow": true, "type": device["type"], "major": device["major"], "minor": device["minor"], "access": "rwm" }),
            );
            f.tag.push_str("+allowed");
        }
        out.push(f);
    }
    if rng.chance(12) {
        out.push(seccomp_feature(rng));
    }
    if rng.chance(12) {
        out.push(hooks_feature(rng));
    }
    if rng.chance(20) {
        let (tag, pointer, value): (&str, &str, Value) = match rng.below(7) {
            0 => (
                "memory",
                "/linux/resources/memory",
                json!({ "limit": 64 << 20 }),
            ),
            1 => ("pids", "/linux/resources/pids", json!({ "limit": 64 })),
            2 => (
                "cpu",
                "/linux/resources/cpu",
                json!({ "shares": 512, "quota": 50000, "period": 100000 }),
            ),
            3 => (
                "kernel-memory",
                "/linux/resources/memory",
                json!({ "kernel": 64 << 20 }),
            ),
            4 => (
                "cgroupsPath-abs",
                "/linux/cgroupsPath",
                json!("/hdiff/@ID@"),
            ),
            5 => (
                "cgroupsPath-rel",
                "/linux/cgroupsPath",
                json!("hdiff-rel/@ID@"),
            ),
            _ => (
                "cpuset",
                "/linux/resources/cpu",
                json!({ "cpus": "0", "mems": "0" }),
            ),
        };
        out.push(
            Feature::new(format!("resources:{tag}"))
                .set(pointer, value)
                .probe_arg("--cgroup-file", "memory:memory.limit_in_bytes")
                .probe_arg("--cgroup-file", "pids:pids.max")
                .probe_arg("--cgroup-file", "cpu:cpu.cfs_quota_us"),
        );
    }
    if rng.chance(4) {
        out.push(Feature::new("annotations").set("/annotations", json!({ "org.example": "x" })));
    }
    if rng.chance(2) {
        let path = "/hdiff-frozen/@ID@";
        out.push(
            Feature::new("cgroup:pre-existing-frozen")
                .set("/linux/cgroupsPath", json!(path))
                .fixture(Fixture::FrozenCgroup(path.into())),
        );
    }
}

/// Options of the command line that creates the container.
fn cli_features(rng: &mut Rng, out: &mut Vec<Feature>) {
    if !rng.chance(15) {
        return;
    }
    let (tag, global, create): (&str, &[&str], &[&str]) = *rng.pick(&[
        ("debug", &["--debug"][..], &[][..]),
        ("log-text", &["--log", "@CASE@/runtime.log"][..], &[][..]),
        (
            "log-json",
            &["--log", "@CASE@/runtime.log", "--log-format", "json"][..],
            &[][..],
        ),
        ("systemd-cgroup", &["--systemd-cgroup"][..], &[][..]),
        ("no-pivot", &[][..], &["--no-pivot"][..]),
        ("no-new-keyring", &[][..], &["--no-new-keyring"][..]),
        ("preserve-fds-0", &[][..], &["--preserve-fds", "0"][..]),
    ]);
    let mut f = Feature::new(format!("cli:{tag}"));
    f.global_flags = global.iter().map(|s| s.to_string()).collect();
    f.create_flags = create.iter().map(|s| s.to_string()).collect();
    out.push(f);
}

fn seccomp_feature(rng: &mut Rng) -> Feature {
    let arches = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let (tag, profile) = match rng.below(4) {
        0 => (
            "errno-personality",
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": arches,
                    "syscalls": [{ "names": ["personality", "getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }] }),
        ),
        1 => (
            "errno-default-eperm",
            json!({ "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{ "names": ["unshare", "sched_yield"], "action": "SCMP_ACT_ERRNO" }] }),
        ),
        2 => (
            "allowlist-no-close_range",
            json!({ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": arches,
                    "syscalls": [{ "names": ALLOWLIST, "action": "SCMP_ACT_ALLOW" }] }),
        ),
        _ => (
            "trace-log",
            json!({ "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_LOG" },
                                 { "names": ["sysinfo"], "action": "SCMP_ACT_TRACE" }] }),
        ),
    };
    Feature::new(format!("seccomp:{tag}"))
        .set("/linux/seccomp", profile)
        .probe_arg("--syscall", "personality")
        .probe_arg("--syscall", "unshare")
        .probe_arg("--syscall", "getppid")
        .probe_arg("--syscall", "sysinfo")
}

/// An allowlist in the style of older docker/podman profiles: what a shell and the probe need, without
/// `close_range` (many real profiles predate it).
#[rustfmt::skip]
const ALLOWLIST: &[&str] = &[
    "access", "arch_prctl", "brk", "capget", "capset", "chdir", "clock_gettime", "clock_nanosleep", "clone",
    "clone3", "close", "dup", "dup2", "dup3", "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2",
    "fchdir", "fcntl", "fstat", "fstatfs", "futex", "getcwd", "getdents64", "getegid", "geteuid", "getgid",
    "getgroups", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresuid",
    "getrlimit", "getsid", "gettid", "getuid", "ioctl", "lseek", "lstat", "madvise", "mmap", "mprotect", "munmap",
    "nanosleep", "newfstatat", "open", "openat", "pipe", "pipe2", "poll", "ppoll", "prctl", "pread64", "prlimit64",
    "read", "readlink", "readlinkat", "rseq", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sched_getaffinity",
    "sched_getparam", "sched_getscheduler", "sched_yield", "set_robust_list", "set_tid_address", "setgid",
    "setgroups", "setresgid", "setresuid", "setuid", "sigaltstack", "stat", "statfs", "statx", "sysinfo", "tgkill",
    "umask", "uname", "wait4", "waitid", "write", "writev", "ioprio_get", "select", "pselect6", "kill", "fchown",
    "fstatat64", "mkdir", "mkdirat", "rename", "renameat", "unlink", "unlinkat", "socket", "getsockopt",
    "setsockopt", "sched_setaffinity", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "personality",
];

fn hooks_feature(rng: &mut Rng) -> Feature {
    let kinds = subset(
        rng,
        &[
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop",
        ],
        3,
    );
    let fail = rng.chance(15);
    let with_env = rng.chance(40);
    let mut f = Feature::new(format!(
        "hooks:{}{}{}",
        kinds.join(","),
        if fail { ":fail" } else { "" },
        if with_env { ":env" } else { "" }
    ))
    .fixture(Fixture::File("hook.sh".into()));
    for (i, kind) in kinds.iter().enumerate() {
        let mut hook = json!({ "path": "@CASE@/hook.sh", "args": ["hook.sh", kind] });
        if with_env {
            hook["env"] = json!(["HOOKVAR=1"]);
        }
        if fail && i == 0 {
            hook["args"] = json!(["hook.sh", kind, "fail"]);
        }
        f = f.push(&format!("/hooks/{kind}"), hook);
    }
    if rng.chance(20) {
        // A hook that exits without reading the state from its stdin.
        f = f.push(
            "/hooks/createRuntime",
            json!({ "path": "/bin/true", "args": ["true"] }),
        );
        f.tag.push_str(":no-stdin");
    }
    if rng.chance(20) {
        // runs inside the container; its path resolves in the rootfs.
        f = f.push(
            "/hooks/startContainer",
            json!({ "path": "/bin/true", "args": ["true"] }),
        );
        f.tag.push_str(":startContainer");
    }
    f
}

/// Up to `max` distinct items of `pool`, in pool order.
fn subset(rng: &mut Rng, pool: &[&str], max: usize) -> Vec<String> {
    let n = rng.below(max + 1);
    let mut picked: Vec<usize> = Vec::new();
    for _ in 0..n {
        let i = rng.below(pool.len());
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    picked.sort_unstable();
    picked.into_iter().map(|i| pool[i].to_string()).collect()
}

fn steps(rng: &mut Rng) -> (Vec<Step>, Option<u8>) {
    let mut steps = Vec::new();
    match rng.below(10) {
        0..=2 => {
            steps.push(Step::Run { detach: false });
            steps.push(Step::State);
            return (steps, Some(*rng.pick(&[0u8, 0, 3, 42])));
        }
        3 | 4 => {
            steps.push(Step::Run { detach: true });
            steps.push(Step::WaitReport);
        }
        _ => {
            steps.push(Step::Create {
                pid_file: rng.chance(30),
            });
            for _ in 0..rng.below(3) {
                // Deleting the created container ends the case early: rarely.
                steps.push(match rng.below(21) {
                    0..=4 => Step::State,
                    5..=8 => Step::Pause,
                    9..=12 => Step::Resume,
                    13..=16 => exec_step(rng),
                    17..=19 => Step::Kill {
                        signal: "0".into(),
                        all: false,
                    },
                    _ => Step::Delete { force: false },
                });
            }
            steps.push(Step::Start);
            steps.push(Step::WaitReport);
        }
    }
    for _ in 0..rng.below(5) {
        steps.push(match rng.below(11) {
            0..=2 => exec_step(rng),
            3 => Step::Pause,
            4 => Step::Resume,
            5 => update_step(rng),
            6 => Step::Events,
            7 => Step::Ps {
                json: rng.chance(50),
            },
            8 => Step::State,
            9 => Step::Start,
            _ => Step::List,
        });
    }
    if rng.chance(85) {
        let signal = rng
            .pick(&["TERM", "KILL", "SIGKILL", "9", "0", "USR1", "BOGUS", "15"])
            .to_string();
        steps.push(Step::Kill {
            signal,
            all: rng.chance(25),
        });
        steps.push(Step::WaitStopped);
        if rng.chance(30) {
            steps.push(Step::Kill {
                signal: "KILL".into(),
                all: rng.chance(50),
            });
            // Neither runtime waits for a killed container to stop: without this, the `state` below
            // raced the kernel (runc "stopped" and husk "running", or the other way round).
            steps.push(Step::WaitStopped);
        }
    }
    steps.push(Step::State);
    steps.push(Step::Delete {
        force: rng.chance(50),
    });
    steps.push(Step::State);
    (steps, None)
}

fn exec_step(rng: &mut Rng) -> Step {
    let probe = || vec!["probe".to_string(), "report".to_string()];
    let (flags, args, process): (Vec<&str>, Vec<String>, Option<Value>) = match rng.below(15) {
        0 => (vec![], probe(), None),
        1 => (vec!["--user", "1000:1000"], probe(), None),
        2 => (vec!["--user", "65534"], probe(), None),
        3 => (vec!["--cwd", "/tmp"], probe(), None),
        4 => (
            vec!["--env", "FOO=exec", "--env", "PATH=/bin:/usr/bin"],
            probe(),
            None,
        ),
        5 => (vec!["--cap", "CAP_SYS_ADMIN"], probe(), None),
        6 => (vec!["--no-new-privs"], probe(), None),
        7 => (
            vec!["--additional-gids", "1001", "--user", "1000"],
            probe(),
            None,
        ),
        8 => (vec![], vec!["/no/such/binary".to_string()], None),
        9 => (vec!["-d"], vec!["true".to_string()], None),
        // runc refuses a short and a long form of one flag in one command line.
        12 => (vec!["-e", "A=1", "--env", "B=2"], probe(), None),
        13 => (vec!["--user", "1000:1000", "--cwd", "/root"], probe(), None),
        // A sub-cgroup that does not exist: runc refuses it.
        14 => (vec!["--cgroup", "nosuch"], probe(), None),
        10 => (
            vec!["--process", "@PROCESS@"],
            // No `user`: runc defaults to 0:0.
            vec![],
            Some(json!({ "args": ["probe", "report"], "cwd": "/", "env": ["PATH=/bin:/usr/bin"] })),
        ),
        _ => (
            vec!["--process", "@PROCESS@"],
            vec![],
            Some(
                json!({ "args": ["probe", "report"], "cwd": "/tmp", "user": { "uid": 1000, "gid": 1000 },
                         "env": ["PATH=/bin:/usr/bin", "X=1"], "noNewPrivileges": true }),
            ),
        ),
    };
    Step::Exec {
        flags: flags.into_iter().map(String::from).collect(),
        args,
        process,
    }
}

fn update_step(rng: &mut Rng) -> Step {
    let (flags, resources): (Vec<&str>, Option<Value>) = match rng.below(9) {
        0 => (vec!["--pids-limit", "50"], None),
        1 => (vec!["--memory", "64M"], None),
        2 => (vec!["--memory", "64M", "--memory-swap", "128M"], None),
        3 => (vec!["--cpu-share", "512"], None),
        4 => (vec!["--cpu-quota", "20000", "--cpu-period", "100000"], None),
        5 => (vec!["--cpu-period", "5000"], None),
        6 => (vec!["--memory", "12x"], None),
        7 => (
            vec!["-r", "@RESOURCES@"],
            Some(
                json!({ "devices": [{ "allow": false, "access": "rwa" }], "pids": { "limit": 90 } }),
            ),
        ),
        _ => (
            vec!["-r", "@RESOURCES@"],
            Some(json!({ "pids": { "limit": 77 }, "memory": { "limit": 100 << 20 } })),
        ),
    };
    Step::Update {
        flags: flags.into_iter().map(String::from).collect(),
        resources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        for seed in 0..50 {
            let a = generate(seed);
            let b = generate(seed);
            assert_eq!(a.tags(), b.tags());
            assert_eq!(a.steps, b.steps);
            let base = json!({ "process": {}, "linux": { "namespaces": [{ "type": "pid" }] }, "mounts": [] });
            assert_eq!(a.config(&base), b.config(&base));
        }
    }
}

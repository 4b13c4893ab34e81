//! OCI bundles: a root filesystem copy plus a `config.json` made by the runtime's `spec` command.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::process::OutputExt;
use crate::runtime::Runtime;
use crate::tempdir::TempDir;

/// Where [`Bundle::with_shared_dir`] mounts the bundle's shared directory inside the container.
pub const SHARED_DIR_IN_CONTAINER: &str = "/shared";

/// The root filesystem copied into bundles: `$HUSK_ROOTFS` if set, else `<husk workspace>/rootfs/out/busybox`
/// (built by `make rootfs`).
pub fn default_rootfs() -> PathBuf {
    match std::env::var_os("HUSK_ROOTFS") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            let testing_crate = Path::new(env!("CARGO_MANIFEST_DIR"));
            testing_crate
                .parent()
                .unwrap_or(testing_crate)
                .join("rootfs/out/busybox")
        }
    }
}

/// The OCI hook points, in the order a container's life reaches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    /// `prestart` (deprecated by the spec, still run by runtimes): after the runtime's namespaces exist.
    Prestart,
    /// `createRuntime`: during `create`, in the runtime's namespace.
    CreateRuntime,
    /// `createContainer`: during `create`, in the container's namespaces before pivot.
    CreateContainer,
    /// `startContainer`: during `start`, inside the container just before the user process; the path resolves in the
    /// container's root filesystem.
    StartContainer,
    /// `poststart`: after the user process has started.
    Poststart,
    /// `poststop`: during `delete`.
    Poststop,
}

impl HookKind {
    /// All hook kinds, in life-cycle order.
    pub const ALL: [HookKind; 6] = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ];

    /// The key used under `hooks` in config.json.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }
}

/// A temporary OCI bundle directory: `rootfs/` (a copy of [`default_rootfs`] or another tree) and `config.json`.
///
/// The config starts as the runtime's own `spec --bundle <dir>` output with `process.terminal` set to false, and
/// is edited through chainable methods that consume and return the bundle. Every edit is written to `config.json`
/// at once, so the file on disk always matches [`Bundle::config`]. The directory is removed on drop (unless the
/// runtime left something mounted in it, which is reported instead; see [`Bundle::leftover_mounts`]).
#[derive(Debug)]
pub struct Bundle {
    dir: TempDir,
    config: Value,
}

impl Bundle {
    /// A bundle with a copy of [`default_rootfs`]. Panics (asking for `make rootfs`) if that rootfs is missing.
    pub fn new(runtime: &Runtime) -> Bundle {
        Bundle::with_rootfs(runtime, &default_rootfs())
    }

    /// A bundle whose `rootfs/` is a copy (`cp -a`) of `source`, which must contain `bin/sh`.
    pub fn with_rootfs(runtime: &Runtime, source: &Path) -> Bundle {
        assert!(
            source.join("bin/sh").exists(),
            "test root filesystem not found at {} (no bin/sh): run `make rootfs`, or set HUSK_ROOTFS to a \
             directory holding a busybox root filesystem",
            source.display()
        );
        let dir = TempDir::new("husk-test-bundle");
        let copy = Command::new("cp")
            .arg("-a")
            .arg(source)
            .arg(dir.join("rootfs"))
            .output()
            .expect("run cp");
        assert!(
            copy.status.success(),
            "cannot copy rootfs {}\n{}",
            source.display(),
            copy.describe()
        );
        let out = crate::process::run_with_timeout(
            &mut runtime.bare_cmd(["spec".as_ref(), "--bundle".as_ref(), dir.path().as_os_str()]),
            crate::runtime::DEFAULT_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "{} spec --bundle failed\n{}",
            runtime.name(),
            out.describe()
        );
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path)
            .unwrap_or_else(|e| panic!("spec wrote no {}: {e}", config_path.display()));
        let config: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("config.json from spec is not JSON: {e}\n{text}"));
        Bundle { dir, config }.set("/process/terminal", json!(false))
    }

    /// Absolute path of the bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Host path of the bundle's `rootfs/` directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Host path of `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The current configuration.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The value at a JSON pointer (RFC 6901) of the configuration.
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.config.pointer(pointer)
    }

    /// Mounts still present in the host's mount namespace below the bundle directory. A runtime must leave none.
    pub fn leftover_mounts(&self) -> Vec<PathBuf> {
        crate::tempdir::mounts_under(self.path())
    }

    fn save(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config");
        std::fs::write(self.config_path(), text).expect("write config.json");
    }

    /// Applies an arbitrary edit to the configuration.
    pub fn edit(mut self, edit: impl FnOnce(&mut Value)) -> Bundle {
        edit(&mut self.config);
        self.save();
        self
    }

    /// Sets the value at a JSON pointer, creating missing intermediate objects. A final `-` token on an array appends.
    pub fn set(self, pointer: &str, value: Value) -> Bundle {
        self.edit(|config| set_pointer(config, pointer, value))
    }

    /// Appends `value` to the array at `pointer`, creating the array (and its parents) if missing.
    pub fn push(self, pointer: &str, value: Value) -> Bundle {
        self.edit(|config| {
            if is_missing(config, pointer) {
                set_pointer(config, pointer, json!([]));
            }
            config
                .pointer_mut(pointer)
                .and_then(Value::as_array_mut)
                .unwrap_or_else(|| panic!("{pointer} is not an array"))
                .push(value);
        })
    }

    /// Removes the value at `pointer` (no-op if absent).
    pub fn remove(self, pointer: &str) -> Bundle {
        self.edit(|config| remove_pointer(config, pointer))
    }

    /// `process.args`.
    pub fn args<I, S>(self, args: I) -> Bundle
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        self.set("/process/args", json!(args))
    }

    /// `process.args = ["sh", "-c", script]`: run a shell script inside the container.
    pub fn sh(self, script: &str) -> Bundle {
        self.args(["sh", "-c", script])
    }

    /// Replaces `process.env` (entries are `KEY=value`).
    pub fn env<I, S>(self, vars: I) -> Bundle
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let vars: Vec<String> = vars.into_iter().map(Into::into).collect();
        self.set("/process/env", json!(vars))
    }

    /// Appends one `KEY=value` entry to `process.env`.
    pub fn add_env(self, var: &str) -> Bundle {
        self.push("/process/env", json!(var))
    }

    /// `process.cwd`.
    pub fn cwd(self, cwd: &str) -> Bundle {
        self.set("/process/cwd", json!(cwd))
    }

    /// `process.user`: uid, gid and additional gids.
    pub fn user(self, uid: u32, gid: u32, additional_gids: &[u32]) -> Bundle {
        let mut user = json!({ "uid": uid, "gid": gid });
        if !additional_gids.is_empty() {
            user["additionalGids"] = json!(additional_gids);
        }
        self.set("/process/user", user)
    }

    /// `process.user.umask`.
    pub fn umask(self, umask: u32) -> Bundle {
        self.set("/process/user/umask", json!(umask))
    }

    /// Sets (or replaces) one `process.rlimits` entry, e.g. `rlimit("RLIMIT_NOFILE", 512, 1024)`.
    pub fn rlimit(self, kind: &str, soft: u64, hard: u64) -> Bundle {
        self.edit(|config| {
            let rlimits = ensure_array(config, "/process/rlimits");
            rlimits.retain(|r| r["type"] != kind);
            rlimits.push(json!({ "type": kind, "soft": soft, "hard": hard }));
        })
    }

    /// `process.oomScoreAdj`.
    pub fn oom_score_adj(self, value: i32) -> Bundle {
        self.set("/process/oomScoreAdj", json!(value))
    }

    /// `process.noNewPrivileges`.
    pub fn no_new_privileges(self, enabled: bool) -> Bundle {
        self.set("/process/noNewPrivileges", json!(enabled))
    }

    /// `hostname`.
    pub fn hostname(self, hostname: &str) -> Bundle {
        self.set("/hostname", json!(hostname))
    }

    /// `domainname`.
    pub fn domainname(self, domainname: &str) -> Bundle {
        self.set("/domainname", json!(domainname))
    }

    /// `root.readonly`.
    pub fn readonly(self, readonly: bool) -> Bundle {
        self.set("/root/readonly", json!(readonly))
    }

    /// Appends a mount to `mounts`.
    pub fn add_mount(
        self,
        destination: &str,
        kind: &str,
        source: &str,
        options: &[&str],
    ) -> Bundle {
        self.push(
            "/mounts",
            json!({ "destination": destination, "type": kind, "source": source, "options": options }),
        )
    }

    /// Removes every mount whose destination is `destination`.
    pub fn remove_mount(self, destination: &str) -> Bundle {
        self.edit(|config| {
            ensure_array(config, "/mounts").retain(|m| m["destination"] != destination)
        })
    }

    /// Creates `<bundle>/shared` (mode 0777) and bind-mounts it read-write at [`SHARED_DIR_IN_CONTAINER`], so that
    /// container processes can leave results for the test to read with [`Bundle::read_shared`].
    pub fn with_shared_dir(self) -> Bundle {
        let shared = self.shared_dir();
        std::fs::create_dir_all(&shared).expect("create shared dir");
        // Pre-create the mount point: a runtime inside a user namespace may not be allowed to create it.
        std::fs::create_dir_all(
            self.rootfs()
                .join(SHARED_DIR_IN_CONTAINER.trim_start_matches('/')),
        )
        .expect("create shared mount point");
        std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .expect("chmod shared dir");
        let source = shared.to_string_lossy().into_owned();
        self.add_mount(SHARED_DIR_IN_CONTAINER, "bind", &source, &["rbind", "rw"])
    }

    /// Host path of the shared directory (see [`Bundle::with_shared_dir`]).
    pub fn shared_dir(&self) -> PathBuf {
        self.dir.join("shared")
    }

    /// Contents of `name` in the shared directory, or `None` if it does not exist (yet).
    pub fn read_shared(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.shared_dir().join(name)).ok()
    }

    /// Writes an executable `#!/bin/sh` script at `path_in_rootfs` (relative to the rootfs, e.g. `"hook.sh"`) and
    /// returns its absolute path as seen inside the container.
    pub fn rootfs_script(&self, path_in_rootfs: &str, body: &str) -> String {
        let rel = path_in_rootfs.trim_start_matches('/');
        crate::util::write_script(self.rootfs().join(rel), body);
        format!("/{rel}")
    }

    /// Adds (or replaces) a namespace of OCI type `kind`; with a `path`, the container joins that namespace.
    pub fn add_namespace(self, kind: &str, path: Option<&Path>) -> Bundle {
        let mut entry = json!({ "type": kind });
        if let Some(path) = path {
            entry["path"] = json!(path.to_string_lossy());
        }
        self.edit(|config| {
            let namespaces = ensure_array(config, "/linux/namespaces");
            namespaces.retain(|n| n["type"] != kind);
            namespaces.push(entry);
        })
    }

    /// Removes the namespace of OCI type `kind`, so the container shares the runtime's.
    pub fn remove_namespace(self, kind: &str) -> Bundle {
        self.edit(|config| ensure_array(config, "/linux/namespaces").retain(|n| n["type"] != kind))
    }

    /// Appends a `linux.uidMappings` entry.
    pub fn uid_mapping(self, container_id: u32, host_id: u32, size: u32) -> Bundle {
        self.push(
            "/linux/uidMappings",
            json!({ "containerID": container_id, "hostID": host_id, "size": size }),
        )
    }

    /// Appends a `linux.gidMappings` entry.
    pub fn gid_mapping(self, container_id: u32, host_id: u32, size: u32) -> Bundle {
        self.push(
            "/linux/gidMappings",
            json!({ "containerID": container_id, "hostID": host_id, "size": size }),
        )
    }

    /// Appends a hook. `args` is the full argv (including argv\[0\]); `env` entries are `KEY=value`.
    pub fn add_hook(
        self,
        kind: HookKind,
        path: &str,
        args: &[&str],
        env: &[&str],
        timeout: Option<u32>,
    ) -> Bundle {
        let mut hook = json!({ "path": path });
        if !args.is_empty() {
            hook["args"] = json!(args);
        }
        if !env.is_empty() {
            hook["env"] = json!(env);
        }
        if let Some(timeout) = timeout {
            hook["timeout"] = json!(timeout);
        }
        self.push(&format!("/hooks/{}", kind.as_str()), hook)
    }

    /// Appends to `linux.maskedPaths`.
    pub fn masked_path(self, path: &str) -> Bundle {
        self.push("/linux/maskedPaths", json!(path))
    }

    /// Appends to `linux.readonlyPaths`.
    pub fn readonly_path(self, path: &str) -> Bundle {
        self.push("/linux/readonlyPaths", json!(path))
    }

    /// Appends a `linux.devices` entry (`kind` is `"c"`, `"b"`, `"u"` or `"p"`).
    #[allow(clippy::too_many_arguments)]
    pub fn add_device(
        self,
        path: &str,
        kind: &str,
        major: i64,
        minor: i64,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Bundle {
        self.push(
            "/linux/devices",
            json!({ "path": path, "type": kind, "major": major, "minor": minor,
                    "fileMode": mode, "uid": uid, "gid": gid }),
        )
    }

    /// Sets one `linux.sysctl` entry.
    pub fn sysctl(self, key: &str, value: &str) -> Bundle {
        self.edit(|config| {
            if is_missing(config, "/linux/sysctl") {
                set_pointer(config, "/linux/sysctl", json!({}));
            }
            config["linux"]["sysctl"][key] = json!(value);
        })
    }

    /// Sets one `annotations` entry.
    pub fn annotation(self, key: &str, value: &str) -> Bundle {
        self.edit(|config| {
            if is_missing(config, "/annotations") {
                set_pointer(config, "/annotations", json!({}));
            }
            config["annotations"][key] = json!(value);
        })
    }
}

/// True if `pointer` is absent or null (the runtime's `spec` may emit either).
fn is_missing(config: &Value, pointer: &str) -> bool {
    config.pointer(pointer).is_none_or(Value::is_null)
}

fn ensure_array<'a>(config: &'a mut Value, pointer: &str) -> &'a mut Vec<Value> {
    if is_missing(config, pointer) {
        set_pointer(config, pointer, json!([]));
    }
    config
        .pointer_mut(pointer)
        .and_then(Value::as_array_mut)
        .unwrap_or_else(|| panic!("{pointer} is not an array"))
}

fn pointer_tokens(pointer: &str) -> Vec<String> {
    assert!(
        pointer.starts_with('/'),
        "JSON pointer must start with '/': {pointer:?}"
    );
    pointer[1..]
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn set_pointer(root: &mut Value, pointer: &str, value: Value) {
    let tokens = pointer_tokens(pointer);
    let (last, parents) = tokens.split_last().expect("non-empty pointer");
    let mut node = root;
    for token in parents {
        node = match node {
            Value::Array(items) => {
                let index: usize = token
                    .parse()
                    .unwrap_or_else(|_| panic!("{pointer}: {token:?} is not an array index"));
                items
                    .get_mut(index)
                    .unwrap_or_else(|| panic!("{pointer}: index {index} out of range"))
            }
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                other
                    .as_object_mut()
                    .expect("object")
                    .entry(token.clone())
                    .or_insert(Value::Null)
            }
        };
    }
    match node {
        Value::Array(items) if last == "-" => items.push(value),
        Value::Array(items) => {
            let index: usize = last
                .parse()
                .unwrap_or_else(|_| panic!("{pointer}: {last:?} is not an array index"));
            *items
                .get_mut(index)
                .unwrap_or_else(|| panic!("{pointer}: index {index} out of range")) = value;
        }
        other => {
            if !other.is_object() {
                *other = json!({});
            }
            other
                .as_object_mut()
                .expect("object")
                .insert(last.clone(), value);
        }
    }
}

fn remove_pointer(root: &mut Value, pointer: &str) {
    let tokens = pointer_tokens(pointer);
    let (last, parents) = tokens.split_last().expect("non-empty pointer");
    let parent_pointer: String = parents
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect();
    match root.pointer_mut(&parent_pointer) {
        Some(Value::Object(map)) => {
            map.remove(last);
        }
        Some(Value::Array(items)) => {
            if let Ok(index) = last.parse::<usize>() {
                if index < items.len() {
                    items.remove(index);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_pointer_creates_parents_and_appends() {
        let mut v = json!({"a": [1]});
        set_pointer(&mut v, "/b/c", json!(2));
        set_pointer(&mut v, "/a/-", json!(3));
        set_pointer(&mut v, "/a/0", json!(0));
        set_pointer(&mut v, "/d~1e", json!(true));
        assert_eq!(v, json!({"a": [0, 3], "b": {"c": 2}, "d/e": true}));
    }

    #[test]
    fn remove_pointer_handles_objects_arrays_and_absence() {
        let mut v = json!({"a": [1, 2], "b": {"c": 1}});
        remove_pointer(&mut v, "/a/0");
        remove_pointer(&mut v, "/b/c");
        remove_pointer(&mut v, "/x/y");
        assert_eq!(v, json!({"a": [2], "b": {}}));
    }
}

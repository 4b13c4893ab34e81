//! `husk image pull` against a real registry: Debian's `docker-registry` on 127.0.0.1 (its own
//! config and storage in a temp dir, a free port), with images pushed by `skopeo` from OCI layouts
//! that the test builds from the test rootfs (`rootfs/out/busybox.tar.gz`).
//!
//! Covered: an anonymous pull that is then run as a container; basic auth (refused without
//! credentials, with wrong ones; accepted from flags, from `--password-stdin` and from a
//! `DOCKER_CONFIG` directory); a blob tampered with in the registry's storage (refused, naming the
//! blob, nothing installed); a multi-arch index (resolves to the host's platform; an index without it
//! is refused listing what it has); bearer-token auth through a token endpoint (a small token-issuing
//! proxy in front of the registry, since docker-registry's own token auth needs a signing service).
//!
//! Over HTTPS (a registry with a server certificate from a throwaway CA made with openssl):
//! trusted through `--ca-file`, a certs.d directory, or the host's store (`SSL_CERT_FILE`);
//! refused as untrusted without the CA or with another CA; basic auth; a bad CA file named in
//! one line. And plain HTTP only for loopback names: `0.0.0.0:PORT` reaches the same local
//! registry but is not a loopback name, so its plain HTTP port is refused without
//! `--insecure-http`.
//!
//! The registry and skopeo come from `make deps`; when they are missing, or the registry does not
//! start, the tests fail saying so.

// Test fixtures live in the test's own temp dirs.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use husk_testing::{run_with_timeout, Bundle, OutputExt, Runtime, TempDir};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TIMEOUT: Duration = Duration::from_secs(120);
const USER: &str = "alice";
const PASSWORD: &str = "correct horse";

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: the registry pull tests need Debian's docker-registry and skopeo \
         (`make deps` installs them)"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A throwaway CA (`trust/ca.crt`, alone in its directory so that skopeo can take the
/// directory as its `--dest-cert-dir`) and a server certificate it signed for `127.0.0.1` and
/// `localhost`, made with the openssl CLI.
struct TestCa {
    dir: TempDir,
}

impl TestCa {
    fn new() -> TestCa {
        // Debian's ca-certificates depends on it, so every machine that fetched the toolchain has
        // it; `make deps` does not list it.
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("openssl").is_file()));
        assert!(
            found,
            "openssl is not installed: the HTTPS pull tests make their CA with it (apt-get install \
             openssl)"
        );
        let dir = TempDir::new("husk-test-ca");
        std::fs::create_dir(dir.join("trust")).unwrap();
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [Vec<&str>; 3] = [
            [
                &["req", "-x509"],
                &ec[..],
                &["-keyout", "ca.key", "-out", "trust/ca.crt"],
            ]
            .concat(),
            [
                &["req"],
                &ec[..],
                &["-keyout", "server.key", "-out", "server.csr"],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "trust/ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        ];
        for (i, step) in steps.iter().enumerate() {
            let mut cmd = Command::new("openssl");
            cmd.args(step).current_dir(dir.path());
            if i == 0 {
                cmd.args(["-days", "2", "-subj", "/CN=husk test CA"]);
                cmd.args(["-addext", "basicConstraints=critical,CA:TRUE"]);
                cmd.args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            } else if i == 1 {
                cmd.args(["-subj", "/CN=127.0.0.1"]);
            }
            let out = run_with_timeout(&mut cmd, TIMEOUT);
            assert!(out.status.success(), "{cmd:?} failed\n{}", out.describe());
        }
        TestCa { dir }
    }

    /// The CA certificate (PEM).
    fn cert(&self) -> PathBuf {
        self.dir.join("trust/ca.crt")
    }
}

/// A Debian `docker-registry` serving on 127.0.0.1, killed and removed on drop.
struct Registry {
    child: Child,
    dir: TempDir,
    port: u16,
    auth: Option<(String, String)>,
    /// Over TLS: the directory holding only the CA's certificate, for skopeo.
    tls_trust: Option<PathBuf>,
}

impl Registry {
    fn start(auth: bool) -> Registry {
        Registry::start_with(auth, None)
    }

    /// A registry serving HTTPS only, with `ca`'s server certificate.
    fn start_tls(auth: bool, ca: &TestCa) -> Registry {
        Registry::start_with(auth, Some(ca))
    }

    fn start_with(auth: bool, tls: Option<&TestCa>) -> Registry {
        require_tool("docker-registry");
        require_tool("skopeo");
        let dir = TempDir::new("husk-test-registry");
        let mut auth_section = String::new();
        if auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("run htpasswd (apache2-utils; `make deps` installs it)");
            assert!(out.status.success(), "htpasswd failed\n{}", out.describe());
            std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
            auth_section = format!(
                "auth:\n  htpasswd:\n    realm: husk-test\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        let mut last_log = String::new();
        // A free port is found by binding port 0; another process may take it before the registry
        // does, so a registry that exits at once is retried on another port.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  \
                 filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_section}",
                dir.join("data").display()
            );
            std::fs::write(dir.join("config.yml"), config).unwrap();
            let log = std::fs::File::create(dir.join("registry.log")).unwrap();
            let mut cmd = Command::new("docker-registry");
            if let Some(ca) = tls {
                cmd.env("REGISTRY_HTTP_TLS_CERTIFICATE", ca.dir.join("server.crt"))
                    .env("REGISTRY_HTTP_TLS_KEY", ca.dir.join("server.key"));
            }
            let mut child = cmd
                .arg("serve")
                .arg(dir.join("config.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    last_log = format!(
                        "exited with {status}: {}",
                        std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
                    );
                    break;
                }
                if let Some(code) = http_status(port, "/v2/") {
                    let registry = Registry {
                        child,
                        dir,
                        port,
                        auth: auth.then(|| (USER.to_string(), PASSWORD.to_string())),
                        tls_trust: tls.map(|ca| ca.dir.join("trust")),
                    };
                    // Over TLS, the plain HTTP probe gets Go's 400 ("client sent an HTTP request
                    // to an HTTPS server"): the port speaks TLS only.
                    let expected: &[u16] = if tls.is_some() { &[400] } else { &[200, 401] };
                    assert!(
                        expected.contains(&code),
                        "registry on port {port} answers /v2/ over plain HTTP with {code}"
                    );
                    return registry;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "docker-registry did not answer on 127.0.0.1:{port} within 30 s: {}",
                        std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("docker-registry would not start: {last_log}");
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes a one-platform image for the host (`test/busybox:1`); returns what was pushed
    /// and its reference at this registry.
    fn push_host_image(&self) -> (Pushed, String) {
        let mut layout = Layout::new();
        let pushed = layout.add_image(host_arch());
        self.push(layout.finish("1"), "1", "test/busybox", false);
        (pushed, format!("{}/test/busybox:1", self.host()))
    }

    /// Pushes the OCI layout `layout` (tag `tag`) as `repo:tag`; `all` copies every manifest of
    /// an index. Returns the pushed manifest's digest.
    fn push(&self, layout: &Path, tag: &str, repo: &str, all: bool) -> String {
        let digest_file = self.dir.join("pushed-digest");
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "copy", "--preserve-digests"]);
        match &self.tls_trust {
            Some(dir) => cmd.arg("--dest-cert-dir").arg(dir),
            None => cmd.arg("--dest-tls-verify=false"),
        };
        if all {
            cmd.arg("--all");
        }
        if let Some((user, password)) = &self.auth {
            cmd.arg("--dest-creds").arg(format!("{user}:{password}"));
        }
        cmd.arg("--digestfile").arg(&digest_file);
        cmd.arg(format!("oci:{}:{tag}", layout.display()));
        cmd.arg(format!("docker://{}/{repo}:{tag}", self.host()));
        let out = run_with_timeout(&mut cmd, TIMEOUT);
        assert!(
            out.status.success(),
            "skopeo copy failed\n{}",
            out.describe()
        );
        std::fs::read_to_string(digest_file)
            .unwrap()
            .trim()
            .to_string()
    }

    /// How many times the registry's access log shows a GET of blob `digest`.
    fn blob_gets(&self, digest: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.join("registry.log")).unwrap();
        log.lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&format!("/blobs/{digest} ")))
            .count()
    }

    /// The file holding blob `digest` in the registry's storage.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir.join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP status of `GET path` on 127.0.0.1:port, or None when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// An OCI image layout under construction.
struct Layout {
    dir: TempDir,
    manifests: Vec<Value>,
}

/// What went into one image manifest of a layout.
struct Pushed {
    manifest: String,
    layers: Vec<String>,
}

impl Layout {
    fn new() -> Layout {
        let dir = TempDir::new("husk-test-layout");
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir,
            manifests: Vec::new(),
        }
    }

    fn blob(&self, bytes: &[u8]) -> String {
        let hex = sha256_hex(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    }

    /// Adds an image: the busybox rootfs layer plus a layer holding `/etc/husk-arch` with
    /// `arch` (both gzip: skopeo would compress an uncompressed layer on the way to the registry,
    /// changing the digests); its config says `linux/<arch>`.
    fn add_image(&mut self, arch: &str) -> Pushed {
        self.add_image_with(arch, arch)
    }

    /// Like [`Layout::add_image`], with `marker` in `/etc/husk-arch`.
    fn add_image_with(&mut self, arch: &str, marker: &str) -> Pushed {
        let gz = std::fs::read(husk_testing::images::rootfs_tarball()).unwrap();
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let rootfs_layer = self.blob(&gz);
        let rootfs_diff = format!("sha256:{}", sha256_hex(&tar_bytes));

        let marker_tar = marker_tar(marker);
        let marker_diff = format!("sha256:{}", sha256_hex(&marker_tar));
        let mut gz_marker =
            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz_marker.write_all(&marker_tar).unwrap();
        let marker = gz_marker.finish().unwrap();
        let marker_layer = self.blob(&marker);

        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin:/sbin:/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [rootfs_diff, marker_diff]},
            "history": [{"created_by": "husk test"}, {"created_by": "husk test marker"}],
        });
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = self.blob(&config_bytes);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_bytes.len(),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                 "digest": rootfs_layer, "size": gz.len()},
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                 "digest": marker_layer, "size": marker.len()},
            ],
        });
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
        let manifest_digest = self.blob(&manifest_bytes);
        self.manifests.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
        Pushed {
            manifest: manifest_digest,
            layers: vec![rootfs_layer, marker_layer],
        }
    }

    /// Writes index.json: a single image tagged `tag` directly, or several as a nested image index
    /// (tagged `tag`) so that skopeo pushes a multi-platform index.
    fn finish(&self, tag: &str) -> &Path {
        let entry = if self.manifests.len() == 1 {
            let mut m = self.manifests[0].clone();
            m.as_object_mut().unwrap().remove("platform");
            m
        } else {
            let index = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": self.manifests,
            });
            let bytes = serde_json::to_vec(&index).unwrap();
            json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": self.blob(&bytes),
                "size": bytes.len(),
            })
        };
        let mut entry = entry;
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        let index = json!({"schemaVersion": 2, "manifests": [entry]});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        self.dir.path()
    }
}

/// A layer tar with one file, `etc/husk-arch`, holding `arch`.
fn marker_tar(arch: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header.set_mtime(1_700_000_000);
    builder
        .append_data(&mut header, "etc/", std::io::empty())
        .unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(arch.len() as u64);
    header.set_mtime(1_700_000_000);
    builder
        .append_data(&mut header, "etc/husk-arch", arch.as_bytes())
        .unwrap();
    builder.into_inner().unwrap()
}

/// The host's architecture as an image index names it.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no test image architecture for {other}"),
    }
}

fn other_arch() -> &'static str {
    if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    }
}

/// A private image store for one test.
struct Store {
    dir: TempDir,
    /// An empty docker config directory: credentials from the user's own `~/.docker` never
    /// reach these tests (a test that wants a docker config sets `DOCKER_CONFIG` itself).
    no_docker_config: TempDir,
}

impl Store {
    fn new() -> Store {
        Store {
            dir: TempDir::new("husk-test-store"),
            no_docker_config: TempDir::new("husk-test-docker-config-empty"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `husk --store S image ARGS`.
    fn image_cmd<I, S>(&self, rt: &Runtime, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = rt.cmd([
            "--store".as_ref(),
            self.path().as_os_str(),
            "image".as_ref(),
        ]);
        cmd.args(args);
        cmd.env("DOCKER_CONFIG", self.no_docker_config.path());
        cmd
    }

    fn run<I, S>(&self, rt: &Runtime, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run_with_timeout(&mut self.image_cmd(rt, args), TIMEOUT)
    }

    fn run_ok<I, S>(&self, rt: &Runtime, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.image_cmd(rt, args);
        let out = run_with_timeout(&mut cmd, TIMEOUT);
        assert!(out.status.success(), "{cmd:?} failed\n{}", out.describe());
        out
    }

    /// `image list --format json`, as (name, digest) pairs.
    fn list(&self, rt: &Runtime) -> Vec<(String, String)> {
        let out = self.run_ok(rt, ["list", "--format", "json"]);
        let value: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("image list --format json: {e}\n{}", out.describe()));
        value
            .as_array()
            .expect("image list --format json prints an array")
            .iter()
            .map(|i| {
                (
                    i["name"].as_str().unwrap().to_string(),
                    i["digest"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Every path under the store (to show that nothing of an image was left).
    fn files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                out.push(path.clone());
                if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&path, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), &mut out);
        out
    }

    /// Runs `script` in a container whose rootfs is a copy of the installed image `name`'s tree
    /// (through the library: the store the CLI wrote).
    fn run_in_image(&self, rt: &Runtime, name: &str, script: &str) -> String {
        let store = husk::image::ImageStore::open(self.path()).unwrap();
        let image = store
            .image(name)
            .unwrap_or_else(|e| panic!("image {name} not in the store: {e}"));
        let bundle = Bundle::with_rootfs(rt, &image.rootfs).sh(script);
        rt.run_bundle_ok(&bundle)
    }
}

fn assert_fails_with(out: &Output, needles: &[&str]) {
    assert!(
        !out.status.success(),
        "expected a failure\n{}",
        out.describe()
    );
    let stderr = out.stderr_str();
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}\n{}",
            out.describe()
        );
    }
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "the error is not one line\n{}",
        out.describe()
    );
}

#[test]
fn anonymous_pull_installs_an_image_that_runs() {
    let rt = runtime();
    let registry = Registry::start(false);
    let mut layout = Layout::new();
    let pushed = layout.add_image(host_arch());
    let digest = registry.push(layout.finish("1"), "1", "test/busybox", false);
    assert_eq!(digest, pushed.manifest, "skopeo changed the manifest");

    let store = Store::new();
    let reference = format!("{}/test/busybox:1", registry.host());
    let out = store.run_ok(&rt, ["pull", &reference]);
    assert!(
        out.stdout_str().contains(&pushed.manifest),
        "pull does not print the digest\n{}",
        out.describe()
    );
    assert_eq!(
        store.list(&rt),
        vec![(reference.clone(), pushed.manifest.clone())]
    );

    let inspect = store.run_ok(&rt, ["inspect", &reference]);
    let config: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(config["architecture"], host_arch(), "{config}");

    let seen = store.run_in_image(
        &rt,
        &reference,
        "/bin/true && test -x /bin/busybox && cat /etc/husk-arch && echo ' ran'",
    );
    assert_eq!(seen.trim(), format!("{} ran", host_arch()));

    // Pulling the same name again needs --update; --name installs under another name.
    let again = store.run(&rt, ["pull", &reference]);
    assert_fails_with(&again, &["already installed"]);
    store.run_ok(&rt, ["pull", "--update", &reference]);
    store.run_ok(&rt, ["pull", "--name", "mybox", &reference]);
    let names: Vec<String> = store.list(&rt).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.iter().any(|n| n.contains("mybox")),
        "--name did not install mybox: {names:?}"
    );
    let seen = store.run_in_image(&rt, "mybox", "cat /etc/husk-arch");
    assert_eq!(seen.trim(), host_arch());

    // A tag the registry does not have: one line naming it, nothing installed.
    let missing = format!("{}/test/busybox:2", registry.host());
    let out = store.run(&rt, ["pull", &missing]);
    assert_fails_with(&out, &["test/busybox:2", "manifest unknown"]);
    assert_eq!(store.list(&rt).len(), 2);
}

/// Pulls `reference` from a registry at `host` that wants basic auth (`extra` flags added to
/// each pull): refused without credentials and with a wrong password, each in one line naming
/// the host and nothing installed; installed with the right ones.
fn pull_with_flag_credentials(
    rt: &Runtime,
    store: &Store,
    host: &str,
    reference: &str,
    extra: &[&str],
) {
    let pull = |credentials: &[&str]| -> Vec<String> {
        std::iter::once("pull")
            .chain(extra.iter().copied())
            .chain(credentials.iter().copied())
            .chain(std::iter::once(reference))
            .map(str::to_owned)
            .collect()
    };
    let out = store.run(rt, pull(&[]));
    assert_fails_with(&out, &[host, "authentication required"]);
    let out = store.run(rt, pull(&["--username", USER, "--password", "wrong"]));
    assert_fails_with(&out, &[host, "credentials rejected"]);
    assert!(store.list(rt).is_empty());
    store.run_ok(rt, pull(&["--username", USER, "--password", PASSWORD]));
}

#[test]
fn basic_auth_is_required_and_credentials_come_from_flags_stdin_or_docker_config() {
    let rt = runtime();
    let registry = Registry::start(true);
    let (pushed, reference) = registry.push_host_image();
    let store = Store::new();

    pull_with_flag_credentials(&rt, &store, &registry.host(), &reference, &[]);
    assert_eq!(
        store.list(&rt),
        vec![(reference.clone(), pushed.manifest.clone())]
    );

    // --password-stdin
    let mut cmd = store.image_cmd(
        &rt,
        [
            "pull",
            "--update",
            "--username",
            USER,
            "--password-stdin",
            &reference,
        ],
    );
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "--password-stdin\n{}", out.describe());

    // DOCKER_CONFIG/config.json with auths.<host>.auth = base64(user:password).
    let docker_config = TempDir::new("husk-test-docker-config");
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{USER}:{PASSWORD}"),
    );
    std::fs::write(
        docker_config.join("config.json"),
        json!({"auths": {registry.host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let mut cmd = store.image_cmd(&rt, ["pull", "--name", "from-config", &reference]);
    cmd.env("DOCKER_CONFIG", docker_config.path());
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert!(
        out.status.success(),
        "DOCKER_CONFIG pull\n{}",
        out.describe()
    );
    let seen = store.run_in_image(&rt, "from-config", "/bin/true && cat /etc/husk-arch");
    assert_eq!(seen.trim(), host_arch());

    // A docker config entry with the wrong password is used, and rejected.
    std::fs::write(
        docker_config.join("config.json"),
        json!({"auths": {format!("http://{}", registry.host()): {"username": USER, "password": "nope"}}})
            .to_string(),
    )
    .unwrap();
    let mut cmd = store.image_cmd(&rt, ["pull", "--name", "bad-config", &reference]);
    cmd.env("DOCKER_CONFIG", docker_config.path());
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert_fails_with(&out, &["credentials rejected"]);
    let _ = pushed.layers;
}

/// Pulls `reference` and checks that it fails naming `blob`, and that nothing of the image is in
/// the store: no image listed, no extracted tree, no blob named after the image's digests, no
/// file named `evil`.
fn assert_refused_naming(rt: &Runtime, reference: &str, blob: &str, pushed: &Pushed) {
    let store = Store::new();
    let out = store.run(rt, ["pull", reference]);
    assert_fails_with(&out, &[blob]);
    assert_nothing_installed(rt, &store, pushed);
}

#[test]
fn a_tampered_blob_is_refused_naming_it_and_nothing_is_installed() {
    let rt = runtime();
    let registry = Registry::start(false);
    let (pushed, reference) = registry.push_host_image();

    // Attack 1: the registry's copy of the second layer is replaced, after the push, by another
    // well-formed layer (a different tar, gzip like the original) that plants etc/evil.
    let marker = &pushed.layers[1];
    let file = registry.blob_file(marker);
    let original = std::fs::read(&file).unwrap();
    let mut evil = tar::Builder::new(Vec::new());
    for (path, body) in [("etc/husk-arch", "evil"), ("etc/evil", "planted")] {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_size(body.len() as u64);
        evil.append_data(&mut header, path, body.as_bytes())
            .unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&evil.into_inner().unwrap()).unwrap();
    std::fs::write(&file, gz.finish().unwrap()).unwrap();
    assert_refused_naming(&rt, &reference, marker, &pushed);
    std::fs::write(&file, &original).unwrap();

    // Attack 2: one byte of the rootfs layer flipped in the registry's storage (same size).
    let layer = &pushed.layers[0];
    let file = registry.blob_file(layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    assert_refused_naming(&rt, &reference, layer, &pushed);
}

#[test]
fn a_multi_arch_index_resolves_to_the_host_platform() {
    let rt = runtime();
    let registry = Registry::start(false);
    let mut layout = Layout::new();
    let other = layout.add_image(other_arch());
    let host = layout.add_image(host_arch());
    registry.push(layout.finish("1"), "1", "test/multi", true);

    let store = Store::new();
    let reference = format!("{}/test/multi:1", registry.host());
    store.run_ok(&rt, ["pull", &reference]);
    let list = store.list(&rt);
    assert_eq!(list, vec![(reference.clone(), host.manifest.clone())]);
    assert_ne!(host.manifest, other.manifest);
    let inspect = store.run_ok(&rt, ["inspect", &reference]);
    let config: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(config["architecture"], host_arch());
    let seen = store.run_in_image(&rt, &reference, "cat /etc/husk-arch");
    assert_eq!(seen.trim(), host_arch());

    // An index without the host's platform: refused, listing what it has.
    let mut foreign = Layout::new();
    foreign.add_image(other_arch());
    foreign.add_image("s390x");
    registry.push(foreign.finish("2"), "2", "test/multi", true);
    let reference = format!("{}/test/multi:2", registry.host());
    let out = store.run(&rt, ["pull", &reference]);
    assert_fails_with(
        &out,
        &[
            &format!("no image for linux/{}", host_arch()),
            &format!("linux/{}", other_arch()),
            "linux/s390x",
        ],
    );
    assert_eq!(store.list(&rt).len(), 1);
}

/// A token-issuing front for the registry: `/v2/` answers 401 with a Bearer challenge naming
/// `/token`; `/token` checks basic credentials and the scope and issues a token; every other
/// request must carry that token and is forwarded to the registry.
struct TokenProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

const TOKEN: &str = "husk-test-token-3f9a";

impl TokenProxy {
    fn start(upstream: u16) -> TokenProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            // Bounded: the test is over within minutes.
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        if let Some(line) = serve_token_proxy(stream, port, upstream) {
                            seen.push(line);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            seen
        });
        TokenProxy {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the proxy and returns what it saw: one line per request.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for TokenProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves one request per connection (`Connection: close`), so that a single thread can serve
/// the client's connections one after the other. Returns a summary line.
fn serve_token_proxy(stream: TcpStream, port: u16, upstream: u16) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    // A TLS ClientHello (record type 22): answered like Go's plain HTTP server does, with a 400,
    // which tells husk that this loopback port speaks plain HTTP.
    let mut first = [0u8; 1];
    if stream.peek(&mut first).ok()? == 1 && first[0] == 0x16 {
        let mut stream = stream;
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        return None;
    }
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut writer = stream;
    let mut summary = Vec::new();
    #[allow(clippy::never_loop)]
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).ok()? == 0 {
            break;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            headers.push(line.trim_end().to_string());
        }
        let header = |name: &str| {
            headers.iter().find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let mut parts = request_line.split_whitespace();
        let method = parts.next()?.to_string();
        let target = parts.next()?.to_string();
        let authorization = header("authorization").unwrap_or_default();
        summary.push(format!(
            "{method} {target} [{}]",
            authorization.split(' ').next().unwrap_or("")
        ));
        if target.starts_with("/token") {
            let expected = format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("{USER}:{PASSWORD}")
                )
            );
            if authorization == expected
                && target.contains("scope=repository%3Atest%2Fbusybox%3Apull")
            {
                let body = json!({"token": TOKEN, "expires_in": 300}).to_string();
                write!(
                    writer,
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .ok()?;
            } else {
                write!(
                    writer,
                    "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 13\r\n\r\n\
                     bad password\n"
                )
                .ok()?;
            }
            break;
        }
        if authorization != format!("Bearer {TOKEN}") {
            let body =
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
            write!(
                writer,
                "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nWWW-Authenticate: Bearer \
                 realm=\"http://127.0.0.1:{port}/token\",service=\"husk-test\",\
                 scope=\"repository:test/busybox:pull\"\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .ok()?;
            break;
        }
        // Forward to the registry (a fresh HTTP/1.0 connection, read to its end).
        let mut upstream_stream = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
        let mut forwarded = format!("{method} {target} HTTP/1.0\r\nHost: 127.0.0.1:{upstream}\r\n");
        if let Some(accept) = header("accept") {
            forwarded.push_str(&format!("Accept: {accept}\r\n"));
        }
        forwarded.push_str("\r\n");
        upstream_stream.write_all(forwarded.as_bytes()).ok()?;
        let mut response = Vec::new();
        upstream_stream.read_to_end(&mut response).ok()?;
        // HTTP/1.0 responses end at close: give our client the length, and close too.
        let split = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let (head, body) = response.split_at(split);
        let head = String::from_utf8_lossy(head);
        let mut out = String::new();
        for (i, line) in head.trim_end().split("\r\n").enumerate() {
            if i == 0 {
                out.push_str(&line.replacen("HTTP/1.0", "HTTP/1.1", 1));
            } else if line.to_ascii_lowercase().starts_with("content-length")
                || line.to_ascii_lowercase().starts_with("connection")
            {
                continue;
            } else {
                out.push_str(line);
            }
            out.push_str("\r\n");
        }
        out.push_str(&format!(
            "Connection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ));
        writer.write_all(out.as_bytes()).ok()?;
        writer.write_all(body).ok()?;
        break;
    }
    Some(summary.join("; "))
}

#[test]
fn bearer_token_auth_exchanges_credentials_for_a_token() {
    let rt = runtime();
    let registry = Registry::start(false);
    // Reached through another name below, not the registry's own reference.
    let (pushed, _) = registry.push_host_image();
    let proxy = TokenProxy::start(registry.port);
    let reference = format!("127.0.0.1:{}/test/busybox:1", proxy.port);
    let store_dir = TempDir::new("husk-test-store");
    let store = husk::image::ImageStore::open(store_dir.path()).unwrap();
    let no_docker_config = TempDir::new("husk-test-docker-config-empty");
    let opts = husk::image::PullOptions::new().docker_config_dir(no_docker_config.path());

    // Anonymous: the token endpoint refuses, and the pull fails as an auth error.
    let err = store.pull(&reference, &opts).unwrap_err();
    assert!(
        matches!(err, husk::image::ImageError::RegistryAuth { .. })
            && err.to_string().contains("authentication required"),
        "{err}"
    );

    let image = store
        .pull(&reference, &opts.clone().basic_auth(USER, PASSWORD))
        .unwrap();
    assert_eq!(image.digest, pushed.manifest);
    let bundle = Bundle::with_rootfs(&rt, &image.rootfs).sh("cat /etc/husk-arch");
    assert_eq!(rt.run_bundle_ok(&bundle).trim(), host_arch());

    // A token given directly is sent as is.
    let image = store
        .pull(
            &reference,
            &opts.clone().name("by-token").bearer_token(TOKEN),
        )
        .unwrap();
    assert_eq!(image.digest, pushed.manifest);
    let requests = proxy.finish();
    let shown = requests.join("\n");
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /token") && r.ends_with("[Basic]")),
        "no token exchange with basic credentials: {shown}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/blobs/sha256:") && r.ends_with("[Bearer]")),
        "no blob fetched with the token: {shown}"
    );
}

#[test]
fn library_pull_fetches_only_the_layers_the_store_lacks() {
    let rt = runtime();
    let registry = Registry::start(true);
    let mut v1 = Layout::new();
    let first = v1.add_image_with(host_arch(), "version 1");
    registry.push(v1.finish("1"), "1", "test/app", false);
    let mut v2 = Layout::new();
    let second = v2.add_image_with(host_arch(), "version 2");
    registry.push(v2.finish("2"), "2", "test/app", false);
    assert_eq!(
        first.layers[0], second.layers[0],
        "the busybox layer is shared"
    );
    assert_ne!(first.layers[1], second.layers[1]);

    // Credentials from a docker config directory given in the options.
    let docker_config = TempDir::new("husk-test-docker-config");
    std::fs::write(
        docker_config.join("config.json"),
        json!({"auths": {registry.host(): {"username": USER, "password": PASSWORD}}}).to_string(),
    )
    .unwrap();
    let store_dir = TempDir::new("husk-test-store");
    let store = husk::image::ImageStore::open(store_dir.path()).unwrap();
    let opts = husk::image::PullOptions::new()
        .name("app")
        .docker_config_dir(docker_config.path());
    let image = store
        .pull(&format!("{}/test/app:1", registry.host()), &opts)
        .unwrap();
    assert_eq!(image.digest, first.manifest);
    assert_eq!(image.name, "docker.io/library/app:latest");
    assert_eq!(registry.blob_gets(&first.layers[0]), 1);
    assert_eq!(registry.blob_gets(&first.layers[1]), 1);

    // Over the name without update: refused before anything is fetched.
    let err = store
        .pull(&format!("{}/test/app:2", registry.host()), &opts)
        .unwrap_err();
    assert!(matches!(err, husk::image::ImageError::Exists(_)), "{err}");
    assert_eq!(registry.blob_gets(&second.layers[1]), 0);

    // The update fetches the new layer only.
    let image = store
        .pull(
            &format!("{}/test/app:2", registry.host()),
            &opts.clone().update(true),
        )
        .unwrap();
    assert_eq!(image.digest, second.manifest);
    assert_eq!(
        registry.blob_gets(&second.layers[0]),
        1,
        "the shared layer was fetched again"
    );
    assert_eq!(registry.blob_gets(&second.layers[1]), 1);
    let bundle = Bundle::with_rootfs(&rt, &image.rootfs).sh("/bin/true && cat /etc/husk-arch");
    assert_eq!(rt.run_bundle_ok(&bundle).trim(), "version 2");

    // Typed errors: wrong credentials, an unparsable reference.
    let err = store
        .pull(
            &format!("{}/test/app:1", registry.host()),
            &husk::image::PullOptions::new()
                .name("other")
                .basic_auth(USER, "wrong"),
        )
        .unwrap_err();
    assert!(
        matches!(err, husk::image::ImageError::RegistryAuth { .. }),
        "{err}"
    );
    let err = store
        .pull("127.0.0.1:1/UPPER/case", &husk::image::PullOptions::new())
        .unwrap_err();
    assert!(
        matches!(err, husk::image::ImageError::InvalidReference { .. }),
        "{err}"
    );
    assert_eq!(store.images().unwrap().len(), 1);
}

/// Asserts that `store` holds no image and no file of `pushed` (blobs, extracted trees, a
/// tampered layer's `etc/evil`).
fn assert_nothing_installed(rt: &Runtime, store: &Store, pushed: &Pushed) {
    assert!(store.list(rt).is_empty(), "an image was installed");
    let left: Vec<PathBuf> = store
        .files()
        .into_iter()
        .filter(|p| {
            p.ends_with("bin/busybox")
                || p.ends_with("etc/husk-arch")
                || p.ends_with("etc/evil")
                || p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    pushed.layers.iter().any(|l| l.ends_with(n.as_ref()))
                        || pushed.manifest.ends_with(n.as_ref())
                })
        })
        .collect();
    assert!(left.is_empty(), "the failed pull left files: {left:?}");
}

#[test]
fn https_pull_with_a_ca_file_installs_an_image_that_runs() {
    let rt = runtime();
    let ca = TestCa::new();
    let registry = Registry::start_tls(false, &ca);
    let (pushed, reference) = registry.push_host_image();
    let store = Store::new();
    let ca_file = ca.cert();
    store.run_ok(
        &rt,
        [
            "pull".as_ref(),
            "--ca-file".as_ref(),
            ca_file.as_os_str(),
            reference.as_ref(),
        ],
    );
    assert_eq!(
        store.list(&rt),
        vec![(reference.clone(), pushed.manifest.clone())]
    );
    // The registry speaks TLS only, so the blobs came over HTTPS.
    assert_eq!(registry.blob_gets(&pushed.layers[0]), 1);
    let seen = store.run_in_image(&rt, &reference, "/bin/true && cat /etc/husk-arch");
    assert_eq!(seen.trim(), host_arch());
}

#[test]
fn https_pull_from_a_registry_with_an_unknown_ca_is_refused_as_untrusted() {
    let rt = runtime();
    let ca = TestCa::new();
    let registry = Registry::start_tls(false, &ca);
    let (pushed, reference) = registry.push_host_image();
    let store = Store::new();

    // No CA: the host's store does not know the throwaway CA. Loopback, but a registry that speaks
    // TLS with an untrusted certificate is not retried over plain HTTP.
    let out = store.run(&rt, ["pull", &reference]);
    assert_fails_with(&out, &[&registry.host(), "not trusted", "UnknownIssuer"]);
    // Another CA, with the same name (an impostor's, as a man in the middle would present): its
    // signature does not match (BadSignature; UnknownIssuer if the CA file were not read).
    let other = TestCa::new();
    let other_ca = other.cert();
    let out = store.run(
        &rt,
        [
            "pull".as_ref(),
            "--ca-file".as_ref(),
            other_ca.as_os_str(),
            reference.as_ref(),
        ],
    );
    assert_fails_with(&out, &[&registry.host(), "not trusted"]);
    assert_nothing_installed(&rt, &store, &pushed);
    for layer in &pushed.layers {
        assert_eq!(registry.blob_gets(layer), 0, "blob {layer} was fetched");
    }
}

#[test]
fn https_trusts_certs_d_directories_and_the_host_store_and_names_a_bad_ca_file() {
    let rt = runtime();
    let ca = TestCa::new();
    let registry = Registry::start_tls(false, &ca);
    let (pushed, reference) = registry.push_host_image();
    let store = Store::new();

    // Docker's layout: <root>/<host:port>/ca.crt, the root given with --certs-dir.
    let docker_d = TempDir::new("husk-test-certs-d");
    std::fs::create_dir(docker_d.join(registry.host())).unwrap();
    std::fs::copy(ca.cert(), docker_d.join(registry.host()).join("ca.crt")).unwrap();
    store.run_ok(
        &rt,
        [
            "pull".as_ref(),
            "--certs-dir".as_ref(),
            docker_d.path().as_os_str(),
            reference.as_ref(),
        ],
    );
    let seen = store.run_in_image(&rt, &reference, "cat /etc/husk-arch");
    assert_eq!(seen.trim(), host_arch());

    // Podman's: any *.crt there; through the library's PullOptions, with an empty root first.
    let podman_d = TempDir::new("husk-test-certs-d");
    std::fs::create_dir(podman_d.join(registry.host())).unwrap();
    std::fs::copy(
        ca.cert(),
        podman_d.join(registry.host()).join("registry.crt"),
    )
    .unwrap();
    let empty = TempDir::new("husk-test-certs-d-empty");
    let lib_store = husk::image::ImageStore::open(store.path()).unwrap();
    let image = lib_store
        .pull(
            &reference,
            &husk::image::PullOptions::new()
                .name("from-lib")
                .docker_config_dir(store.no_docker_config.path())
                .certs_dirs([empty.path(), podman_d.path()]),
        )
        .unwrap();
    assert_eq!(image.digest, pushed.manifest);
    let bundle = Bundle::with_rootfs(&rt, &image.rootfs).sh("cat /etc/husk-arch");
    assert_eq!(rt.run_bundle_ok(&bundle).trim(), host_arch());

    // The host's store: rustls-native-certs reads SSL_CERT_FILE when it is set.
    let mut cmd = store.image_cmd(&rt, ["pull", "--name", "from-host-store", &reference]);
    cmd.env("SSL_CERT_FILE", ca.cert());
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert!(
        out.status.success(),
        "SSL_CERT_FILE pull\n{}",
        out.describe()
    );

    // A bundle: every certificate of a file is trusted, not only the first.
    let other = TestCa::new();
    let bundle = docker_d.join("bundle.pem");
    let pems = [
        std::fs::read(other.cert()).unwrap(),
        std::fs::read(ca.cert()).unwrap(),
    ];
    std::fs::write(&bundle, pems.concat()).unwrap();
    store.run_ok(
        &rt,
        [
            "pull".as_ref(),
            "--name".as_ref(),
            "from-bundle".as_ref(),
            "--ca-file".as_ref(),
            bundle.as_os_str(),
            reference.as_ref(),
        ],
    );

    // Bad CA files: one line naming the file, nothing more installed.
    let before = store.list(&rt).len();
    assert_eq!(before, 4);
    let bad = docker_d.join(registry.host()).join("zz-bad.crt");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let out = store.run(
        &rt,
        [
            "pull".as_ref(),
            "--name".as_ref(),
            "bad".as_ref(),
            "--certs-dir".as_ref(),
            docker_d.path().as_os_str(),
            reference.as_ref(),
        ],
    );
    assert_fails_with(&out, &[&bad.display().to_string(), "no PEM certificate"]);
    let broken = docker_d.join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nMIIB!!!not base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = docker_d.join("missing.pem");
    for file in [&broken, &missing] {
        let out = store.run(
            &rt,
            [
                "pull".as_ref(),
                "--name".as_ref(),
                "bad".as_ref(),
                "--ca-file".as_ref(),
                file.as_os_str(),
                reference.as_ref(),
            ],
        );
        assert_fails_with(&out, &[&file.display().to_string()]);
    }
    assert_eq!(store.list(&rt).len(), before);
}

#[test]
fn basic_auth_over_https() {
    let rt = runtime();
    let ca = TestCa::new();
    let registry = Registry::start_tls(true, &ca);
    let (pushed, reference) = registry.push_host_image();
    let store = Store::new();
    let ca_file = ca.cert().display().to_string();
    pull_with_flag_credentials(
        &rt,
        &store,
        &registry.host(),
        &reference,
        &["--ca-file", &ca_file],
    );
    assert_eq!(store.list(&rt), vec![(reference.clone(), pushed.manifest)]);
    let seen = store.run_in_image(&rt, &reference, "cat /etc/husk-arch");
    assert_eq!(seen.trim(), host_arch());
}

#[test]
fn a_non_loopback_name_is_not_downgraded_to_plain_http() {
    let rt = runtime();
    let registry = Registry::start(false);
    // Reached through another name below, not the registry's own reference.
    let (pushed, _) = registry.push_host_image();
    let store = Store::new();

    // Linux connects 0.0.0.0 to the local host, so this reaches the plain HTTP registry on
    // 127.0.0.1; the name is not a loopback one, so HTTPS only.
    let reference = format!("0.0.0.0:{}/test/busybox:1", registry.port);
    let out = store.run(&rt, ["pull", &reference]);
    assert_fails_with(
        &out,
        &[
            &format!("0.0.0.0:{} does not speak TLS", registry.port),
            "--insecure-http",
        ],
    );
    assert_nothing_installed(&rt, &store, &pushed);
    assert_eq!(registry.blob_gets(&pushed.layers[0]), 0);

    // The same host with --insecure-http, and the loopback name without it: plain HTTP.
    store.run_ok(&rt, ["pull", "--insecure-http", &reference]);
    let loopback = format!("{}/test/busybox:1", registry.host());
    store.run_ok(&rt, ["pull", &loopback]);
    let seen = store.run_in_image(&rt, &reference, "cat /etc/husk-arch");
    assert_eq!(seen.trim(), host_arch());
}

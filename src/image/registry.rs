//! Registry pulls: [`ImageStore::pull`] and `husk image pull REF`.
//!
//! A pull downloads the image's manifest and config, then the layer blobs the store does not
//! have yet, into a temporary directory of the store, and hands them to the store's installer
//! (`install_staged`, the same path as an OCI layout on disk takes): extraction, digest
//! verification of every layer, naming and atomicity are the store's. The temporary directory is
//! removed whatever happened.
//!
//! **Layers already in the store are not downloaded again.** The store keys layers by their
//! uncompressed digest (the config's `diff_ids`, documented in the store's layout as
//! `layers/<hex>/info.json`). The config is fetched first and verified against the manifest, which
//! is verified against the reference (or the index entry); a layer whose diff id the store already
//! has is then reused without fetching its blob, so pulling an updated image fetches only its new
//! layers, and pulling a present image again fetches only its manifest and config.
//!
//! The protocol (manifests, blobs, the `WWW-Authenticate` challenge, bearer-token exchange, basic
//! auth) is the `oci-client` crate's, with reqwest over rustls (ring provider, so no OpenSSL in the
//! static binary), driven by a tokio current-thread runtime that [`ImageStore::pull`] creates and
//! drops inside the blocking call. Done here because the crate lacks it:
//! - **Credentials from the docker config.** oci-client only takes a [`RegistryAuth`] value; reading
//!   `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), key `auths.<host>.auth`
//!   (base64 `user:password`) or `username`/`password`, is [`docker_config_auth`]. Credential helpers
//!   (`credsStore`, `credHelpers`) and `identitytoken` are not supported: such an entry is ignored and
//!   the pull goes on anonymously (an auth error then says how to give credentials).
//! - **Platform resolution.** The crate's resolvers return only `Option<digest>` and ignore the
//!   variant, so a miss cannot say what the index offered. [`select_platform`] picks the host's
//!   platform (from `std::env::consts`, e.g. linux/amd64), prefers the entry without variant (or
//!   `v8` on arm64), and otherwise fails with the platforms the index has.
//! - **Plain HTTP.** The crate can speak HTTP to named hosts ([`ClientProtocol::HttpsExcept`]); the
//!   choice of hosts is ours. A loopback host (`localhost`, `127.0.0.0/8`, `::1`) is tried over
//!   HTTPS first and gets plain HTTP only when its port answers the TLS handshake with something
//!   that is not TLS (containerd's rule for localhost); a certificate it presents is verified like
//!   any other, and a failed verification is never retried over HTTP. Any other host gets plain HTTP
//!   only with [`PullOptions::insecure_http`].
//! - **Trust roots.** reqwest verifies with rustls-platform-verifier, which on Linux loads the host's
//!   store through rustls-native-certs (`SSL_CERT_FILE`/`SSL_CERT_DIR` when set, else the usual
//!   bundle, `/etc/ssl/certs` on Debian), as docker and containerd do; no roots are compiled in.
//!   Private CAs come on top: [`PullOptions::ca_files`], and the per-registry directories docker and
//!   podman users know, `<root>/<host[:port]>/*.crt` under `/etc/docker/certs.d` and
//!   `/etc/containers/certs.d` ([`PullOptions::certs_dirs`]). The crate takes certificates but does
//!   not read files or directories, and reqwest's PEM parser takes only a file's first certificate:
//!   [`extra_roots`] reads every certificate of every file and checks each can be a trust anchor, so
//!   a bad file is an error naming it. Client certificates (`*.cert`/`*.key`) are not supported.
//! - **TLS errors that say what failed.** reqwest's error for a certificate it does not trust is
//!   "error sending request"; [`tls_problem`] finds the rustls error under it, so the message says
//!   the registry's certificate is not trusted and how to trust it.
//! - **Blob errors that name the blob, and bounded downloads.** The crate verifies digests as a
//!   stream error without saying which blob; every blob is hashed again here while it is written,
//!   its size is checked against the descriptor (a registry cannot make us write more than the
//!   descriptor says), and a mismatch is [`ImageError::Blob`] naming the blob.

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt as _;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use sha2::{Digest as _, Sha256};

use super::store::{sha256_hex, Staged, StagedLayer, MAX_JSON_BYTES};
use super::{Image, ImageError, ImageStore, InstallOptions, Reference};

/// The manifest media types a pull accepts (OCI and Docker schema 2, single images and indexes).
const ACCEPTED_MANIFESTS: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The certs.d roots read when [`PullOptions::certs_dirs`] is `None`: docker's and podman's.
pub const DEFAULT_CERTS_DIRS: &[&str] = &["/etc/docker/certs.d", "/etc/containers/certs.d"];
/// A CA file larger than this is refused (a system bundle is about 200 KiB).
const MAX_CA_FILE_BYTES: u64 = 4 << 20;

/// A manifest larger than this is refused (the registry's own limit is 4 MiB).
const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Nested indexes followed at most (an index whose host entry is itself an index).
const MAX_INDEX_DEPTH: usize = 2;

/// Options of [`ImageStore::pull`]. Build with [`PullOptions::new`] (or `Default`) and the setters.
///
/// ```
/// # #[cfg(feature = "registry")] {
/// let opts = husk::image::PullOptions::new()
///     .name("my-busybox")
///     .update(true)
///     .basic_auth("user", "secret")
///     .ca_file("/etc/my-registry/ca.pem");
/// # let _ = opts; }
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct PullOptions {
    /// The name to install the image under; default: the normalised reference
    /// (`busybox` → `docker.io/library/busybox:latest`).
    pub name: Option<String>,
    /// Replace an image already installed under the name (else that is an error).
    pub update: bool,
    /// Credentials given by the caller; `None`: the docker config's entry for the registry, if any,
    /// else anonymous.
    pub credentials: Option<Credentials>,
    /// Speak plain HTTP to this registry (without it: HTTPS, and plain HTTP only for a loopback
    /// host whose port does not speak TLS).
    pub insecure_http: bool,
    /// The directory holding the docker `config.json`; `None`: `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    /// PEM files of CA certificates trusted for this pull, on top of the host's store (every
    /// certificate in each file). A file that cannot be read or parsed fails the pull, naming it.
    pub ca_files: Vec<PathBuf>,
    /// The certs.d roots: every `*.crt` file (PEM CA certificates) in `<root>/<host[:port]>/`
    /// (the registry as the reference names it) is trusted for that registry. `None`:
    /// [`DEFAULT_CERTS_DIRS`]. A root or host directory that does not exist is skipped.
    pub certs_dirs: Option<Vec<PathBuf>>,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("name", &self.name)
            .field("update", &self.update)
            .field("credentials", &self.credentials)
            .field("insecure_http", &self.insecure_http)
            .field("docker_config_dir", &self.docker_config_dir)
            .field("ca_files", &self.ca_files)
            .field("certs_dirs", &self.certs_dirs)
            .finish()
    }
}

/// Credentials for a registry. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// A user name and password: sent as HTTP basic auth, or exchanged for a bearer token where the
    /// registry asks for one.
    Basic {
        /// The user name.
        username: String,
        /// The password (or access token used as a password).
        password: String,
    },
    /// A bearer token sent as is.
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Bearer(_) => f.debug_tuple("Bearer").field(&"<redacted>").finish(),
        }
    }
}

impl PullOptions {
    /// Default options: name from the reference, no update, credentials from the docker config.
    pub fn new() -> PullOptions {
        PullOptions::default()
    }

    /// Installs the image under `name` instead of the normalised reference.
    pub fn name(mut self, name: impl Into<String>) -> PullOptions {
        self.name = Some(name.into());
        self
    }

    /// Replaces an image already installed under the name.
    pub fn update(mut self, update: bool) -> PullOptions {
        self.update = update;
        self
    }

    /// Authenticates with a user name and password.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::Basic {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// Authenticates with a bearer token.
    pub fn bearer_token(mut self, token: impl Into<String>) -> PullOptions {
        self.credentials = Some(Credentials::Bearer(token.into()));
        self
    }

    /// Speaks plain HTTP to the registry, whatever its host.
    pub fn insecure_http(mut self, insecure: bool) -> PullOptions {
        self.insecure_http = insecure;
        self
    }

    /// Reads credentials from `dir/config.json` instead of `$DOCKER_CONFIG` or `~/.docker`.
    pub fn docker_config_dir(mut self, dir: impl Into<PathBuf>) -> PullOptions {
        self.docker_config_dir = Some(dir.into());
        self
    }

    /// Also trusts the CA certificates in the PEM file `path` (may be given several times).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> PullOptions {
        self.ca_files.push(path.into());
        self
    }

    /// Reads `<root>/<host[:port]>/*.crt` under these roots instead of [`DEFAULT_CERTS_DIRS`]
    /// (none: no certs.d directory is read).
    pub fn certs_dirs<I, P>(mut self, roots: I) -> PullOptions
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.certs_dirs = Some(roots.into_iter().map(Into::into).collect());
        self
    }
}

impl ImageStore {
    /// Pulls `reference` (e.g. `busybox`, `ghcr.io/org/app:1.2`, `127.0.0.1:5000/test/img@sha256:…`)
    /// from its registry and installs it, under [`PullOptions::name`] or the normalised reference.
    ///
    /// HTTPS, verified against the host's trust store plus [`PullOptions::ca_files`] and the
    /// registry's certs.d directories; plain HTTP with [`PullOptions::insecure_http`], and for a
    /// loopback host whose port does not speak TLS. Anonymous, basic or bearer-token auth; a
    /// multi-platform index resolves to the host's platform. Every blob is verified against its
    /// descriptor; on any error nothing is installed.
    /// Blocking: runs its own single-threaded tokio runtime for the duration of the call (so it must
    /// not be called from inside an async runtime's worker). The runtime's blocking pool (where
    /// reqwest resolves host names) is joined when the runtime is dropped, before this returns:
    /// no thread outlives the call.
    pub fn pull(&self, reference: &str, opts: &PullOptions) -> Result<Image, ImageError> {
        let parsed = Reference::parse(reference)?;
        let key = match &opts.name {
            Some(name) => Reference::parse(name)?.normalized(),
            None => parsed.normalized(),
        };
        // Refused before anything is downloaded (the install checks again, under the lock).
        if !opts.update {
            match self.image(&key) {
                Ok(_) => return Err(ImageError::Exists(key)),
                Err(ImageError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let target = RemoteImage::new(&parsed);
        let auth = match &opts.credentials {
            Some(Credentials::Basic { username, password }) => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Some(Credentials::Bearer(token)) => RegistryAuth::Bearer(token.clone()),
            None => {
                let dir = match &opts.docker_config_dir {
                    Some(dir) => Some(dir.clone()),
                    None => default_docker_config_dir(),
                };
                match dir {
                    Some(dir) => docker_config_auth(&dir.join("config.json"), &target.host)?
                        .map_or(RegistryAuth::Anonymous, |(u, p)| RegistryAuth::Basic(u, p)),
                    None => RegistryAuth::Anonymous,
                }
            }
        };
        let roots = extra_roots(opts, &target)?;
        let mut temp = self.new_temp("archive")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| target.error(format!("cannot start the HTTP runtime: {e}")))?;
        let mut result = runtime.block_on(download(
            self,
            &target,
            &auth,
            opts.insecure_http,
            &roots,
            temp.path(),
        ));
        if result.is_err() && !opts.insecure_http && target.not_tls.get() {
            if is_loopback_host(&target.host) {
                // The port speaks plain HTTP: allowed on loopback. A fresh directory, so that
                // nothing of the first attempt is taken for a verified blob.
                temp = self.new_temp("archive")?;
                result =
                    runtime.block_on(download(self, &target, &auth, true, &roots, temp.path()));
            } else if let Err(e) = &result {
                let detail = match e {
                    ImageError::Registry { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                result = Err(target.error(format!(
                    "{} does not speak TLS (plain HTTP only for loopback hosts, or with \
                     insecure_http / --insecure-http): {detail}",
                    target.host
                )));
            }
        }
        let downloaded = result?;
        drop(runtime);
        let layers = downloaded
            .layers
            .into_iter()
            .map(|layer| staged_layer(self, layer))
            .collect();
        let staged = Staged {
            name_hint: None,
            manifest_digest: Some(downloaded.manifest_digest),
            config: downloaded.config,
            config_digest: downloaded.config_digest,
            layers,
            keep: vec![temp],
        };
        self.install_staged(&key, staged, &InstallOptions::update(opts.update))
    }

    /// Whether the store has the layer with uncompressed digest `diff_id` (the store's layout:
    /// `layers/<hex>/info.json`, written last when a layer is placed).
    pub(crate) fn has_layer(&self, diff_id: &str) -> bool {
        sha256_hex(diff_id).is_ok_and(|hex| {
            self.root()
                .join("layers")
                .join(hex)
                .join("info.json")
                .is_file()
        })
    }
}

/// A layer of a downloaded image: its descriptor's digest and size, its diff id, and where its
/// blob was written (`None`: the store had the layer, so it was not fetched).
struct DownloadedLayer {
    digest: String,
    size: u64,
    diff_id: String,
    blob: Option<PathBuf>,
}

/// What [`download`] fetched: the verified manifest digest and config, and the layers.
struct Downloaded {
    manifest_digest: String,
    config: Vec<u8>,
    config_digest: String,
    layers: Vec<DownloadedLayer>,
}

fn staged_layer(store: &ImageStore, layer: DownloadedLayer) -> StagedLayer {
    match layer.blob {
        Some(path) => StagedLayer {
            digest: Some(layer.digest),
            size: Some(layer.size),
            diff_id: layer.diff_id,
            open: Box::new(move || {
                File::open(&path)
                    .map(|f| Box::new(f) as Box<dyn Read>)
                    .map_err(|e| ImageError::Io {
                        context: format!("open {}", path.display()),
                        source: e,
                    })
            }),
        },
        // Present in the store: its content is known by the diff id alone (the store checked it
        // when it extracted it), so there is no blob to verify. Opened only if a prune removed
        // the layer in between.
        None => {
            let digest = layer.digest;
            let root = store.root().display().to_string();
            StagedLayer {
                digest: None,
                size: None,
                diff_id: layer.diff_id,
                open: Box::new(move || {
                    Err(ImageError::blob(
                        &digest,
                        format!("was in the store {root} when the pull began, and was pruned since: pull again"),
                    ))
                }),
            }
        }
    }
}

/// The image to pull, as oci-client and the error messages want it.
struct RemoteImage {
    /// Registry host (with port), as in the reference.
    host: String,
    oci: oci_client::Reference,
    display: String,
    /// Set when a request over HTTPS got an answer that is not TLS (a plain HTTP port).
    not_tls: Cell<bool>,
}

impl RemoteImage {
    fn new(r: &Reference) -> RemoteImage {
        RemoteImage {
            host: r.registry().to_string(),
            oci: r.as_oci().clone(),
            display: r.normalized(),
            not_tls: Cell::new(false),
        }
    }

    fn by_digest(&self, digest: &str) -> oci_client::Reference {
        oci_client::Reference::with_digest(
            self.oci.registry().to_string(),
            self.oci.repository().to_string(),
            digest.to_string(),
        )
    }

    fn error(&self, reason: impl Into<String>) -> ImageError {
        ImageError::Registry {
            reference: self.display.clone(),
            reason: reason.into(),
        }
    }

    /// Maps a client error: 401s and token failures become [`ImageError::RegistryAuth`].
    fn client_error(&self, auth: &RegistryAuth, what: &str, e: OciDistributionError) -> ImageError {
        let auth_reason = match &e {
            OciDistributionError::UnauthorizedError { .. } => Some(String::new()),
            OciDistributionError::AuthenticationFailure(reason) => {
                Some(format!(": {}", reason.trim()))
            }
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        oci_client::errors::OciErrorCode::Unauthorized
                            | oci_client::errors::OciErrorCode::Denied
                    )
                }) =>
            {
                Some(format!(": {}", envelope))
            }
            _ => None,
        };
        if let Some(detail) = auth_reason {
            let reason = match auth {
                RegistryAuth::Anonymous => format!(
                    "authentication required{detail} (give --username and --password, or an \
                     auths entry for {} in the docker config.json)",
                    self.host
                ),
                _ => format!("credentials rejected{detail}"),
            };
            return ImageError::RegistryAuth {
                registry: self.host.clone(),
                reason,
            };
        }
        if let OciDistributionError::RequestError(e) = &e {
            match tls_problem(e) {
                Some(TlsProblem::Untrusted(why)) => {
                    return self.error(format!(
                        "the TLS certificate of {host} is not trusted ({why}): give its CA with \
                         --ca-file (PullOptions::ca_file) or as /etc/docker/certs.d/{host}/ca.crt",
                        host = self.host
                    ))
                }
                Some(TlsProblem::NotTls) => self.not_tls.set(true),
                None => {}
            }
            return self.error(format!("cannot reach {}: {}", self.host, error_chain(e)));
        }
        self.error(format!("{what}: {}", error_chain(&e)))
    }
}

/// Downloads the manifest, the config and the layers the store lacks into `dir/blobs/sha256/`.
async fn download(
    store: &ImageStore,
    target: &RemoteImage,
    auth: &RegistryAuth,
    plain_http: bool,
    roots: &[Certificate],
    dir: &Path,
) -> Result<Downloaded, ImageError> {
    let protocol = if plain_http {
        ClientProtocol::HttpsExcept(vec![target.host.clone()])
    } else {
        ClientProtocol::Https
    };
    // reqwest is built without a rustls provider of its own: ring's becomes the process default
    // unless the embedder installed one already (then that one is used). rustls deprecates ring's
    // provider for lacking post-quantum key exchange; aws-lc-rs, which has it, compiles a large C
    // library into the static binary, so ring it is for now.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_from(ClientConfig {
        protocol,
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(Duration::from_secs(300)),
        extra_root_certificates: roots.to_vec(),
        ..ClientConfig::default()
    })
    .map_err(|e| {
        target.error(format!(
            "cannot set up the HTTP client: {}",
            error_chain(&e)
        ))
    })?;

    client
        .auth(&target.oci, auth, RegistryOperation::Pull)
        .await
        .map_err(|e| target.client_error(auth, "authenticating", e))?;

    // Manifest, following an index to the host's platform.
    let mut reference = target.oci.clone();
    let mut depth = 0;
    let (manifest_bytes, manifest_digest) = loop {
        let (bytes, digest) = client
            .pull_manifest_raw(&reference, auth, ACCEPTED_MANIFESTS)
            .await
            .map_err(|e| target.client_error(auth, "fetching the manifest", e))?;
        // oci-client has checked the bytes against the reference's digest (an index entry's
        // below), else against the registry's Docker-Content-Digest header.
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(target.error(format!("manifest {digest} is larger than 4 MiB")));
        }
        let media_type = manifest_media_type(&bytes)
            .map_err(|reason| target.error(format!("manifest {digest}: {reason}")))?;
        if media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST {
            depth += 1;
            if depth > MAX_INDEX_DEPTH {
                return Err(target.error("index nesting deeper than 2"));
            }
            let index: ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| target.error(format!("index {digest}: {e}")))?;
            let entry =
                select_platform(&index).map_err(|available| ImageError::NoMatchingPlatform {
                    reference: target.display.clone(),
                    platform: host_platform_string(),
                    available,
                })?;
            reference = target.by_digest(entry.digest().as_ref());
            continue;
        }
        break (bytes, digest);
    };

    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| target.error(format!("manifest {manifest_digest}: {e}")))?;

    let blobs = dir.join("blobs");
    let config_desc = manifest.config();
    let config_digest = config_desc.digest().to_string();
    if config_desc.size() > MAX_JSON_BYTES {
        return Err(ImageError::blob(
            &config_digest,
            format!("config of {} bytes is too large", config_desc.size()),
        ));
    }
    let config_path = fetch_blob(&client, target, auth, config_desc, &blobs).await?;
    let config = fs::read(&config_path).map_err(|e| io_error(&config_path, e))?;
    let parsed: oci_spec::image::ImageConfiguration = serde_json::from_slice(&config)
        .map_err(|e| ImageError::format(format!("config {config_digest}"), e.to_string()))?;
    let mut layers = Vec::new();
    for (descriptor, diff_id) in
        super::archive::manifest_layers(&manifest, &parsed, &manifest_digest)?
    {
        let blob = if store.has_layer(diff_id) {
            None
        } else {
            Some(fetch_blob(&client, target, auth, descriptor, &blobs).await?)
        };
        layers.push(DownloadedLayer {
            digest: descriptor.digest().to_string(),
            size: descriptor.size(),
            diff_id: diff_id.clone(),
            blob,
        });
    }
    Ok(Downloaded {
        manifest_digest,
        config,
        config_digest,
        layers,
    })
}

/// Streams one blob into `blobs/sha256/<hex>`, hashing and counting as it goes; returns the
/// file's path.
async fn fetch_blob(
    client: &Client,
    target: &RemoteImage,
    auth: &RegistryAuth,
    descriptor: &Descriptor,
    blobs: &Path,
) -> Result<PathBuf, ImageError> {
    let digest = descriptor.digest().to_string();
    // Also what makes the digest safe as a file name.
    let hex = sha256_hex(&digest)?;
    let expected_size = descriptor.size();
    let dir = blobs.join("sha256");
    fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    let path = dir.join(hex);
    if path.exists() {
        // Two layers (or a layer and the config) can be the same blob; it was verified.
        return Ok(path);
    }
    let wanted = OciDescriptor {
        digest: digest.clone(),
        size: i64::try_from(descriptor.size()).unwrap_or(i64::MAX),
        media_type: descriptor.media_type().to_string(),
        ..OciDescriptor::default()
    };
    client
        .store_auth_if_needed(target.oci.resolve_registry(), auth)
        .await;
    let mut stream = client
        .pull_blob_stream(&target.oci, &wanted)
        .await
        .map_err(|e| target.client_error(auth, &format!("fetching blob {digest}"), e))?;
    // A new file in our own 0700 temporary directory (never an existing one, never through a
    // symlink).
    let mut file = crate::hostfs::open(
        &path,
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW),
    )
    .map_err(|e| io_error(&path, e))?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mismatch = |hasher: Sha256, written: u64| {
        ImageError::blob(
            digest.clone(),
            format!(
                "the registry sent content with digest sha256:{} and {written} bytes; the \
                 descriptor says {expected_size} bytes",
                hex::encode(hasher.finalize())
            ),
        )
    };
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            // oci-client's own verification fails at the end of the stream: report it as ours,
            // naming the blob, when our hash disagrees too.
            Err(e) => {
                let actual = format!("sha256:{}", hex::encode(hasher.clone().finalize()));
                if actual != digest {
                    return Err(mismatch(hasher, written));
                }
                return Err(target.error(format!("fetching blob {digest}: {}", error_chain(&e))));
            }
        };
        written += chunk.len() as u64;
        if written > expected_size {
            return Err(mismatch(hasher, written));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(|e| io_error(&path, e))?;
    }
    if written != expected_size
        || format!("sha256:{}", hex::encode(hasher.clone().finalize())) != digest
    {
        return Err(mismatch(hasher, written));
    }
    Ok(path)
}

/// The media type of a manifest: its `mediaType` field, else guessed from its shape (OCI makes the
/// field optional).
fn manifest_media_type(bytes: &[u8]) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("schemaVersion").and_then(|v| v.as_i64()) != Some(2) {
        return Err("unsupported schemaVersion (only schema 2 manifests can be pulled)".into());
    }
    let media_type = match value.get("mediaType").and_then(|v| v.as_str()) {
        Some(t) => t.to_string(),
        None if value.get("manifests").is_some() => OCI_INDEX.to_string(),
        None => OCI_MANIFEST.to_string(),
    };
    if ACCEPTED_MANIFESTS.contains(&media_type.as_str()) {
        Ok(media_type)
    } else {
        Err(format!("unsupported media type {media_type}"))
    }
}

/// The host's platform as an index names it: (os, architecture, preferred variant).
fn host_platform() -> (&'static str, &'static str, Option<&'static str>) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        other => other,
    };
    let variant = (arch == "arm64").then_some("v8");
    (std::env::consts::OS, arch, variant)
}

fn host_platform_string() -> String {
    let (os, arch, _) = host_platform();
    format!("{os}/{arch}")
}

/// Picks the index entry for the host's platform: os and architecture equal, preferring no variant
/// or the host's. On a miss, returns the platforms the index offers (`os/arch[/variant]`, joined).
fn select_platform(index: &ImageIndex) -> Result<&Descriptor, String> {
    select_platform_for(index, host_platform())
}

fn select_platform_for<'a>(
    index: &'a ImageIndex,
    (os, arch, variant): (&str, &str, Option<&str>),
) -> Result<&'a Descriptor, String> {
    let matching: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| p.os().to_string() == os && p.architecture().to_string() == arch)
        })
        .collect();
    let preferred = matching.iter().find(|d| {
        let v = d.platform().as_ref().and_then(|p| p.variant().clone());
        v.is_none() || v.as_deref() == variant
    });
    if let Some(d) = preferred.or(matching.first()) {
        return Ok(d);
    }
    let available: Vec<String> = index
        .manifests()
        .iter()
        .filter_map(|d| d.platform().as_ref())
        .map(|p| match p.variant() {
            Some(v) => format!("{}/{}/{v}", p.os(), p.architecture()),
            None => format!("{}/{}", p.os(), p.architecture()),
        })
        .collect();
    Err(if available.is_empty() {
        "no platforms".to_string()
    } else {
        available.join(", ")
    })
}

/// The CA certificates trusted for this pull on top of the host's store: every certificate of
/// [`PullOptions::ca_files`], then of the `*.crt` files (sorted by name) in the registry's
/// directory under each certs.d root. Each is checked to be usable as a trust anchor here, so that
/// a bad one is an error naming its file rather than a client that cannot be built.
fn extra_roots(opts: &PullOptions, target: &RemoteImage) -> Result<Vec<Certificate>, ImageError> {
    let mut files = opts.ca_files.clone();
    let default_roots: Vec<PathBuf> = DEFAULT_CERTS_DIRS.iter().map(PathBuf::from).collect();
    let roots = opts.certs_dirs.as_ref().unwrap_or(&default_roots);
    // The host is a reference's registry (no '/'); "." or ".." would leave the root.
    let host = target.host.as_str();
    if !host.is_empty() && host != "." && host != ".." && !host.contains('/') {
        for root in roots {
            let dir = root.join(host);
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    return Err(ImageError::Io {
                        context: format!("read the certs.d directory {}", dir.display()),
                        source: e,
                    })
                }
            };
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| ImageError::Io {
                    context: format!("read the certs.d directory {}", dir.display()),
                    source: e,
                })?;
                if entry.file_name().to_string_lossy().ends_with(".crt") {
                    found.push(entry.path());
                }
            }
            found.sort();
            files.extend(found);
        }
    }
    let mut certs = Vec::new();
    for file in &files {
        certs.extend(read_ca_file(file)?);
    }
    Ok(certs)
}

/// Every certificate of the PEM file `path`, as DER, each checked to be a usable trust anchor.
fn read_ca_file(path: &Path) -> Result<Vec<Certificate>, ImageError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let bad = |reason: String| {
        ImageError::format(format!("CA certificate file {}", path.display()), reason)
    };
    let file = File::open(path).map_err(|e| ImageError::Io {
        context: format!("read CA certificate file {}", path.display()),
        source: e,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ImageError::Io {
            context: format!("read CA certificate file {}", path.display()),
            source: e,
        })?;
    if bytes.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(bad("larger than 4 MiB".into()));
    }
    let mut certs = Vec::new();
    for (i, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert = cert.map_err(|e| bad(format!("certificate {}: not PEM: {e}", i + 1)))?;
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| bad(format!("certificate {} is not a usable CA: {e}", i + 1)))?;
        certs.push(Certificate {
            encoding: CertificateEncoding::Der,
            data: cert.to_vec(),
        });
    }
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// What went wrong in a TLS handshake, as far as the caller can act on it.
enum TlsProblem {
    /// The registry's certificate did not verify (unknown issuer, wrong name, expired...).
    Untrusted(String),
    /// The other side answered with something that is not TLS (a plain HTTP server).
    NotTls,
}

/// The rustls error under a request error, if any. reqwest and hyper wrap it in `io::Error`s, whose
/// `source()` skips the wrapped error, so `get_ref()` is followed as well.
fn tls_problem(e: &(dyn std::error::Error + 'static)) -> Option<TlsProblem> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return match tls {
                rustls::Error::InvalidCertificate(_) => {
                    Some(TlsProblem::Untrusted(tls.to_string()))
                }
                rustls::Error::InvalidMessage(_) => Some(TlsProblem::NotTls),
                _ => None,
            };
        }
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if let Some(problem) = tls_problem(inner) {
                return Some(problem);
            }
        }
        current = err.source();
    }
    None
}

/// True for hosts reached over loopback: `localhost`, `127.0.0.0/8` and `::1`, with or without a
/// port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') && port.parse::<u16>().is_ok() => name,
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `$DOCKER_CONFIG`, else `$HOME/.docker`.
fn default_docker_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker"))
}

/// The user name and password for `registry` in a docker `config.json` (`auths.<host>.auth`,
/// base64 of `user:password`, or `username` and `password`). `Ok(None)` when the file does not exist
/// or has no usable entry for the registry; a file that cannot be read or parsed is an error naming
/// it.
pub(crate) fn docker_config_auth(
    path: &Path,
    registry: &str,
) -> Result<Option<(String, String)>, ImageError> {
    let bad =
        |reason: String| ImageError::format(format!("docker config {}", path.display()), reason);
    let mut text = String::new();
    match File::open(path) {
        Ok(mut f) => f
            .read_to_string(&mut text)
            .map_err(|e| bad(e.to_string()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let wanted = registry_aliases(registry);
    let Some(entry) = auths
        .iter()
        .find(|(key, _)| wanted.contains(&auth_key_host(key)))
        .map(|(_, v)| v)
    else {
        return Ok(None);
    };
    if let Some(encoded) = entry
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| bad(format!("auths.{registry}.auth is not base64: {e}")))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| bad(format!("auths.{registry}.auth is not UTF-8")))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| bad(format!("auths.{registry}.auth is not user:password")))?;
        return Ok(Some((user.to_string(), password.to_string())));
    }
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(str::to_string);
    Ok(field("username").zip(field("password")))
}

/// The names a registry may have as a docker config key (Docker Hub has several).
fn registry_aliases(registry: &str) -> Vec<String> {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            vec![
                "docker.io".into(),
                "index.docker.io".into(),
                "registry-1.docker.io".into(),
            ]
        }
        other => vec![other.to_ascii_lowercase()],
    }
}

/// The host of a docker config `auths` key: keys may be `host`, `host:port` or URLs such as
/// `https://index.docker.io/v1/`.
fn auth_key_host(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_ascii_lowercase()
}

fn io_error(path: &Path, source: io::Error) -> ImageError {
    ImageError::Io {
        context: format!("write {}", path.display()),
        source,
    }
}

/// An error and its sources on one line (reqwest's own message omits the cause: "error sending
/// request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let message = s.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
// Test fixtures in the test's own temporary directory.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_told_from_others() {
        for host in [
            "localhost",
            "LOCALHOST:5000",
            "127.0.0.1",
            "127.0.0.1:41234",
            "127.8.9.10:80",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "docker.io",
            "localhost.example.com:5000",
            "10.0.0.1:5000",
            "[::2]:5000",
            "127.0.0.1.nip.io",
            // Linux connects it to the local host, but it names no loopback address.
            "0.0.0.0:5000",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    fn index(entries: &[(&str, &str, Option<&str>)]) -> ImageIndex {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let mut platform = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    platform["variant"] = serde_json::json!(v);
                }
                serde_json::json!({
                    "mediaType": OCI_MANIFEST,
                    "digest": format!("sha256:{}", format!("{i}").repeat(64)),
                    "size": 100,
                    "platform": platform,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({"schemaVersion": 2, "manifests": manifests}))
            .unwrap()
    }

    fn chosen(index: &ImageIndex, host: (&str, &str, Option<&str>)) -> Result<usize, String> {
        let d = select_platform_for(index, host)?;
        Ok(index
            .manifests()
            .iter()
            .position(|m| m.digest() == d.digest())
            .unwrap())
    }

    #[test]
    fn the_host_platform_is_chosen_from_an_index() {
        let i = index(&[
            ("linux", "arm64", Some("v8")),
            ("linux", "amd64", Some("v3")),
            ("linux", "amd64", None),
            ("windows", "amd64", None),
        ]);
        assert_eq!(chosen(&i, ("linux", "amd64", None)), Ok(2));
        assert_eq!(chosen(&i, ("linux", "arm64", Some("v8"))), Ok(0));
        assert_eq!(chosen(&i, ("windows", "amd64", None)), Ok(3));
        // Only a variant entry: taken.
        let i = index(&[("linux", "amd64", Some("v2")), ("linux", "arm", Some("v7"))]);
        assert_eq!(chosen(&i, ("linux", "amd64", None)), Ok(0));
        assert_eq!(
            chosen(&i, ("linux", "s390x", None)),
            Err("linux/amd64/v2, linux/arm/v7".to_string())
        );
        // The running host's own platform is one this code names.
        let (os, arch, _) = host_platform();
        assert_eq!(os, "linux");
        assert!(
            !arch.is_empty() && arch != "x86_64" && arch != "aarch64",
            "{arch}"
        );
    }

    #[test]
    fn manifest_media_types() {
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"manifests":[]}"#),
            Ok(OCI_INDEX.to_string())
        );
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"config":{},"layers":[]}"#),
            Ok(OCI_MANIFEST.to_string())
        );
        assert_eq!(
            manifest_media_type(
                format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}"}}"#).as_bytes()
            ),
            Ok(DOCKER_MANIFEST_LIST.to_string())
        );
        assert!(manifest_media_type(br#"{"schemaVersion":1,"fsLayers":[]}"#)
            .unwrap_err()
            .contains("schemaVersion"));
        assert!(manifest_media_type(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.example+json"}"#
        )
        .unwrap_err()
        .contains("application/vnd.example+json"));
    }

    #[test]
    fn docker_config_entries() {
        let dir = std::env::temp_dir().join(format!("husk-docker-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        let encoded = base64::engine::general_purpose::STANDARD.encode("bob:pa:ss");
        std::fs::write(
            &path,
            serde_json::json!({"auths": {
                "https://index.docker.io/v1/": {"auth": encoded},
                "http://127.0.0.1:5000": {"username": "carol", "password": "pw"},
                "ghcr.io": {"identitytoken": "x"},
                "quay.io": {"auth": "not base64!"},
            }})
            .to_string(),
        )
        .unwrap();
        let get = |host: &str| docker_config_auth(&path, host);
        assert_eq!(
            get("docker.io").unwrap(),
            Some(("bob".to_string(), "pa:ss".to_string()))
        );
        assert_eq!(
            get("127.0.0.1:5000").unwrap(),
            Some(("carol".to_string(), "pw".to_string()))
        );
        assert_eq!(get("ghcr.io").unwrap(), None);
        assert_eq!(get("127.0.0.1:5001").unwrap(), None);
        let err = get("quay.io").unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("base64"),
            "{err}"
        );
        assert_eq!(
            docker_config_auth(&dir.join("absent.json"), "docker.io").unwrap(),
            None
        );
        std::fs::write(&path, "{not json").unwrap();
        assert!(get("docker.io")
            .unwrap_err()
            .to_string()
            .contains("config.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn credentials_are_not_shown_by_debug() {
        let opts = PullOptions::new().basic_auth("user", "hunter2");
        let shown = format!("{opts:?}");
        assert!(
            shown.contains("user") && !shown.contains("hunter2"),
            "{shown}"
        );
        let shown = format!("{:?}", PullOptions::new().bearer_token("tok3n"));
        assert!(!shown.contains("tok3n"), "{shown}");
    }
}

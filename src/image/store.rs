//! The image store: its directory layout, locking, index, installs, usage and removal.
//!
//! ```text
//! <root>/                 mode 0711 (blobs, layers, rootfs and tmp: 0700, as an image's trees
//!                         hold setuid binaries that no host user but root may reach)
//!   lock                  flock: shared to read the index, exclusive to change it (short)
//!   gc.lock               flock: shared by each install for its whole run, exclusive by prune
//!   index.json            names -> image digest, the images' records (and, from stores
//!                         written before leases/ existed, users -> image digest)
//!   leases/<hex>          one user's hold on an image: {"user", "image", "boot_id"?}, <hex> the
//!                         sha256 of the user (a container's private bundle path, or any token)
//!   blobs/sha256/<hex>    image configs
//!   layers/<hex>/fs/      an extracted layer, keyed by its diff id (uncompressed digest)
//!   layers/<hex>/info.json  its size and whether it has whiteouts
//!   rootfs/<hex>/         the flattened tree of a multi-layer image, keyed by the image digest
//!   tmp/                  work in progress: each directory is flocked by its installer
//! ```
//!
//! Everything appears in `layers/`, `rootfs/` and `blobs/` by a rename of a finished temporary
//! directory or file, and `index.json` is replaced by a rename too, so a killed install leaves at
//! most an unlocked directory in `tmp/`, which the next [`ImageStore::open`] (or
//! [`ImageStore::prune`]) removes.
//!
//! Leases are files of their own, so that taking and giving back an image (twice per container)
//! does not rewrite `index.json`, and need not wait for a disk: the index, which must survive a
//! power loss, is written and `fsync`ed only when names or records change. A lease taken with
//! [`ImageStore::acquire`] is synced too; one taken for a container
//! (`ImageStore::acquire_for_boot`, what `husk run --image` and `Runtime::execute` use) is not:
//! it protects the image's trees while a container's overlay mounts them, and no mount survives
//! a reboot. Such a lease records the boot it was taken in (`/proc/sys/kernel/random/boot_id`),
//! and a lease of an earlier boot holds nothing (a lost unlink must not keep an image forever);
//! so does a lease file that a power loss left empty or torn (only an unsynced one can be).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use super::error::IoContext;
use super::extract::{self, Hashing, Kind};
use super::{ImageError, Reference};

/// The largest index, manifest or config the store reads.
pub(crate) const MAX_JSON_BYTES: u64 = 64 << 20;

/// Where an image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageSource {
    /// An OCI image layout: a directory (with `oci-layout`, `index.json` and `blobs/`), or a tar
    /// of one.
    OciLayout(PathBuf),
    /// A `docker save` archive (a tar with `manifest.json`), or a directory it was unpacked into.
    DockerArchive(PathBuf),
    /// A root filesystem as a tar, optionally gzip- or zstd-compressed: a one-layer image with
    /// a minimal config (`PATH` only, no command).
    RootfsTar(PathBuf),
    /// Any of the above, told by looking: a directory with `manifest.json` is a docker archive,
    /// one with `oci-layout` an OCI layout; a tar likewise by its members; anything else a
    /// root filesystem tar.
    Auto(PathBuf),
}

/// How to install.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct InstallOptions {
    /// Replace the image already installed under the name (atomically; the old version stays
    /// until no container uses it). Without it, installing over a name fails.
    pub update: bool,
}

impl InstallOptions {
    /// Options with `update` set as given.
    pub fn update(update: bool) -> InstallOptions {
        InstallOptions { update }
    }
}

/// An installed image.
///
/// Its file system is kept as one read-only tree per layer, shared between images
/// (content-addressed by the layer's uncompressed digest): [`Image::layers`], bottom first, are
/// ready to be overlayfs lower directories (`lowerdir=` takes them top first), with whiteouts
/// already in overlayfs's form (a 0/0 character device; an opaque directory has
/// `trusted.overlay.opaque=y`). [`Image::rootfs`] is the same file system as one flattened tree
/// (for a runtime without overlayfs, to copy): for a one-layer image without whiteouts it is
/// that layer's tree itself; otherwise a tree made at install from hard links into the layers.
/// Neither may be written to: a container needs its own writable layer or copy.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Image {
    /// The normalised name (`docker.io/library/busybox:latest`).
    pub name: String,
    /// The image's digest: its manifest's when it came with one (OCI layout, registry), else
    /// its config's (`sha256:...`).
    pub digest: String,
    /// The config's digest.
    pub config_digest: String,
    /// Bytes of file content in all its layers.
    pub size: u64,
    /// When the image was made, as its config says (RFC 3339).
    pub created: Option<String>,
    /// The image config (Entrypoint, Cmd, Env, WorkingDir, User, ...).
    pub config: ImageConfiguration,
    /// The flattened read-only tree (see the type's docs).
    pub rootfs: PathBuf,
    /// The extracted layer trees, bottom first (see the type's docs).
    pub layers: Vec<PathBuf>,
}

/// What [`ImageStore::prune`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Layers no image uses any more (their diff ids).
    pub layers: Vec<String>,
    /// Config blobs no image uses any more.
    pub blobs: usize,
    /// Flattened trees of images no longer installed.
    pub rootfs: usize,
    /// Leftovers of installs that were killed.
    pub temp: usize,
}

/// A local image store under one root directory. Cheap to open; safe to use from several
/// processes (and threads, with a store each) at once.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

/// One installed version of an image, as the index keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    config_digest: String,
    /// Diff ids, bottom first.
    layers: Vec<String>,
    size: u64,
    created: Option<String>,
    /// The flattened tree, relative to the store root.
    rootfs: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    /// Normalised name -> image digest.
    #[serde(default)]
    names: BTreeMap<String, String>,
    /// Image digest -> record.
    #[serde(default)]
    images: BTreeMap<String, Record>,
    /// User (container id) -> image digest: leases of stores written before `leases/` existed.
    /// Still honoured and given back; new leases are files (see [`Lease`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    users: BTreeMap<String, String>,
}

/// One user's hold on an image: the file `leases/<sha256 of the user>`.
#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    user: String,
    /// The image digest.
    image: String,
    /// For a lease that ends with the boot (a container's): the boot it was taken in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boot_id: Option<String>,
}

/// The current boot's id, if the kernel tells it.
fn boot_id() -> Option<&'static str> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .as_deref()
}

impl Lease {
    /// Whether the lease still holds its image: not one of an earlier boot.
    fn live(&self) -> bool {
        match (&self.boot_id, boot_id()) {
            (Some(then), Some(now)) => then == now,
            _ => true,
        }
    }
}

/// The shortest digest prefix (hex digits) that names an image, as docker's short ids.
const MIN_DIGEST_PREFIX: usize = 12;

/// How a name given by the user found its image.
enum Found {
    /// By its name (normalised): the name.
    Name(String),
    /// By its digest or a unique prefix of it: the image's names (at least one).
    Digest(Vec<String>),
}

impl Index {
    /// The image `name` designates, and how: a reference (`busybox`), an image digest
    /// (`sha256:<64 hex>`) or a unique prefix of one (`sha256:<12+ hex>`, or bare `<12+ hex>`
    /// when no image has that name), as docker resolves image ids. Only digests some name still
    /// points to are found (an image kept only by its users is not installed any more).
    fn resolve(&self, name: &str) -> Result<(Found, String), ImageError> {
        let lowercase_hex = |h: &str| h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let prefix = match name.strip_prefix("sha256:") {
            Some(hex)
                if hex.len() >= MIN_DIGEST_PREFIX && hex.len() <= 64 && lowercase_hex(hex) =>
            {
                Some(hex)
            }
            Some(_) => {
                return Err(ImageError::InvalidReference {
                    reference: name.to_string(),
                    reason: format!(
                        "a digest is sha256: and {MIN_DIGEST_PREFIX} to 64 lowercase hex digits"
                    ),
                })
            }
            None if name.len() >= MIN_DIGEST_PREFIX && name.len() <= 64 && lowercase_hex(name) => {
                // A name first (`docker` does the same): a repository may be all hex digits.
                let key = ImageStore::key(name)?;
                if let Some(digest) = self.names.get(&key) {
                    return Ok((Found::Name(key), digest.clone()));
                }
                Some(name)
            }
            None => None,
        };
        let Some(hex) = prefix else {
            let key = ImageStore::key(name)?;
            let digest = self
                .names
                .get(&key)
                .ok_or_else(|| ImageError::NotFound(key.clone()))?;
            return Ok((Found::Name(key), digest.clone()));
        };
        let wanted = format!("sha256:{hex}");
        let matches: BTreeSet<&String> = self
            .names
            .values()
            .filter(|d| d.starts_with(&wanted))
            .collect();
        match matches.into_iter().collect::<Vec<_>>()[..] {
            [] => Err(ImageError::NotFound(name.to_string())),
            [digest] => {
                let names = self
                    .names
                    .iter()
                    .filter(|(_, d)| *d == digest)
                    .map(|(n, _)| n.clone())
                    .collect();
                Ok((Found::Digest(names), digest.clone()))
            }
            ref several => Err(ImageError::Ambiguous {
                reference: name.to_string(),
                matches: several
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

impl Found {
    /// The name an image found this way is shown under: its own, or the first of its names.
    fn name(&self) -> &str {
        match self {
            Found::Name(n) => n,
            Found::Digest(names) => names.first().map_or("", |n| n.as_str()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct LayerInfo {
    size: u64,
    whiteouts: bool,
}

/// An image ready to be installed: verified manifest and config, and its layers' streams.
pub(crate) struct Staged {
    /// The name the source gives the image, if any.
    pub name_hint: Option<String>,
    pub manifest_digest: Option<String>,
    /// The config's bytes, already checked against `config_digest`.
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layers: Vec<StagedLayer>,
    /// Temporary directories the layers' streams read from.
    pub keep: Vec<TempDir>,
}

/// One layer of a [`Staged`] image.
pub(crate) struct StagedLayer {
    /// The blob's digest and size from its descriptor, checked against what is read; None
    /// where there is no descriptor (a root filesystem tar, an old `docker save` layer, whose
    /// content is checked against the diff id alone).
    pub digest: Option<String>,
    pub size: Option<u64>,
    /// The uncompressed content's digest, from the (verified) config.
    pub diff_id: String,
    /// Opens the blob (compressed or not).
    pub open: Box<dyn Fn() -> Result<Box<dyn Read>, ImageError>>,
}

/// `<hex>` of a `sha256:<64 lowercase hex>` digest; anything else is refused (the hex names
/// files, so it must be exactly that).
pub(crate) fn sha256_hex(digest: &str) -> Result<&str, ImageError> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(hex)
        }
        _ if digest.contains(':') && !digest.starts_with("sha256:") => Err(ImageError::blob(
            digest,
            "unsupported digest algorithm (only sha256)",
        )),
        _ => Err(ImageError::blob(digest, "malformed digest")),
    }
}

/// A temporary directory in the store's `tmp/`, flocked while this value lives (so a cleaner
/// knows it is in use) and removed on drop unless placed.
pub(crate) struct TempDir {
    path: PathBuf,
    fd: OwnedFd,
    placed: bool,
}

impl TempDir {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Renames the directory to `dest` unless something is there already. Returns whether it
    /// was placed (false: another install got there first, and this one is dropped).
    fn place(&mut self, dest: &Path) -> Result<bool, ImageError> {
        match nix::fcntl::renameat2(
            None,
            &self.path,
            None,
            dest,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => {
                self.placed = true;
                Ok(true)
            }
            Err(nix::errno::Errno::EEXIST) | Err(nix::errno::Errno::ENOTEMPTY) => Ok(false),
            Err(e) => {
                Err(e).ctx(|| format!("rename {} to {}", self.path.display(), dest.display()))
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.placed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `flock` on a descriptor; `Ok(false)` when `nonblock` and someone else holds it.
fn flock(fd: std::os::fd::BorrowedFd<'_>, op: libc::c_int, nonblock: bool) -> io::Result<bool> {
    let op = if nonblock { op | libc::LOCK_NB } else { op };
    loop {
        // SAFETY: flock on a descriptor we hold; no memory is passed.
        if unsafe { libc::flock(fd.as_raw_fd(), op) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if nonblock => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// A held store lock (released on drop, when the file closes).
struct Lock(#[allow(dead_code)] File);

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The name prefixes of what the store itself makes in `tmp/`.
const TEMP_KINDS: &[&str] = &["layer-", "rootfs-", "archive-", "trash-", ".write-"];

fn older_than_a_day(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(24 * 3600))
}

impl ImageStore {
    /// Opens the store at `root`, creating it if needed, and removes what killed installs left
    /// in `tmp/` (unless another process holds the store's lock just now).
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore, ImageError> {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        let store = ImageStore { root };
        for (dir, mode) in [
            ("", 0o711),
            ("blobs", 0o700),
            ("blobs/sha256", 0o700),
            // Images hold setuid binaries: only root may reach into their trees.
            ("layers", 0o700),
            ("rootfs", 0o700),
            ("tmp", 0o700),
            ("leases", 0o700),
        ] {
            let path = store.root.join(dir);
            match std::fs::DirBuilder::new().mode(mode).create(&path) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(e).ctx(|| format!("create the image store {}", path.display()))
                }
                _ => {}
            }
        }
        if let Some(_lock) = store.try_lock_exclusive()? {
            store.clean_temp()?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock_file(&self, name: &str) -> Result<File, ImageError> {
        let path = self.root.join(name);
        crate::hostfs::open(
            &path,
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW),
        )
        .ctx(|| format!("open {}", path.display()))
    }

    fn lock_named(&self, name: &str, op: libc::c_int) -> Result<Lock, ImageError> {
        let file = self.lock_file(name)?;
        flock(file.as_fd(), op, false)
            .ctx(|| format!("lock {}", self.root.join(name).display()))?;
        Ok(Lock(file))
    }

    fn lock_shared(&self) -> Result<Lock, ImageError> {
        self.lock_named("lock", libc::LOCK_SH)
    }

    fn lock_exclusive(&self) -> Result<Lock, ImageError> {
        self.lock_named("lock", libc::LOCK_EX)
    }

    fn try_lock_exclusive(&self) -> Result<Option<Lock>, ImageError> {
        let file = self.lock_file("lock")?;
        Ok(flock(file.as_fd(), libc::LOCK_EX, true)
            .ctx(|| format!("lock {}", self.root.join("lock").display()))?
            .then_some(Lock(file)))
    }

    /// Removes the unlocked directories (and any files) in `tmp/`. Call with the store lock
    /// held exclusively, so that no index write is in progress.
    fn clean_temp(&self) -> Result<usize, ImageError> {
        let tmp = self.root.join("tmp");
        let mut removed = 0;
        for entry in std::fs::read_dir(&tmp).ctx(|| format!("read {}", tmp.display()))? {
            let entry = entry.ctx(|| format!("read {}", tmp.display()))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = TEMP_KINDS.iter().any(|k| name.starts_with(k));
            if !ours && !older_than_a_day(&path) {
                continue; // someone else's (a pull downloading), maybe in progress
            }
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                let Ok(fd) = extract::open_beneath(
                    extract::open_dir(&tmp)
                        .ctx(|| format!("open {}", tmp.display()))?
                        .as_fd(),
                    Path::new(&entry.file_name()),
                    nix::fcntl::OFlag::O_RDONLY
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_NOFOLLOW,
                ) else {
                    continue;
                };
                if !flock(fd.as_fd(), libc::LOCK_EX, true).unwrap_or(false) {
                    continue; // an install in progress
                }
                std::fs::remove_dir_all(&path).ctx(|| format!("remove {}", path.display()))?;
            } else {
                std::fs::remove_file(&path).ctx(|| format!("remove {}", path.display()))?;
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// A new locked temporary directory in `tmp/` (mode 0700).
    pub(crate) fn new_temp(&self, kind: &str) -> Result<TempDir, ImageError> {
        // Under the shared lock, so that a cleaner (exclusive) cannot take it between the
        // mkdir and the flock.
        let _lock = self.lock_shared()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = self.root.join("tmp").join(format!(
            "{kind}-{}-{}-{nanos}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .ctx(|| format!("create {}", path.display()))?;
        let fd = extract::open_dir(&path).ctx(|| format!("open {}", path.display()))?;
        flock(fd.as_fd(), libc::LOCK_EX, true).ctx(|| format!("lock {}", path.display()))?;
        Ok(TempDir {
            path,
            fd,
            placed: false,
        })
    }

    fn load_index(&self) -> Result<Index, ImageError> {
        let path = self.root.join("index.json");
        match crate::hostfs::read_regular(&path, MAX_JSON_BYTES) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::format(path.display().to_string(), e.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(e).ctx(|| format!("read {}", path.display())),
        }
    }

    /// Writes `bytes` to `dest` atomically: a temporary file in `tmp/`, synced, renamed.
    fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), ImageError> {
        self.write_renamed(dest, bytes, true)
    }

    /// Writes `bytes` to `dest`: a temporary file in `tmp/`, synced if `sync`, renamed (so a
    /// reader never sees a partial file; without `sync`, a power loss may leave it empty).
    fn write_renamed(&self, dest: &Path, bytes: &[u8], sync: bool) -> Result<(), ImageError> {
        let tmp = self.root.join("tmp").join(format!(
            ".write-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> io::Result<()> {
            let mut f = crate::hostfs::open(
                &tmp,
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_CLOEXEC),
            )?;
            f.write_all(bytes)?;
            if sync {
                f.sync_all()?;
            }
            std::fs::rename(&tmp, dest)
        };
        write()
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
            .ctx(|| format!("write {}", dest.display()))
    }

    fn save_index(&self, index: &Index) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec_pretty(index).map_err(|e| ImageError::Io {
            context: "serialize the image index".into(),
            source: io::Error::other(e),
        })?;
        self.write_atomic(&self.root.join("index.json"), &bytes)
    }

    fn key(name: &str) -> Result<String, ImageError> {
        Ok(Reference::parse(name)?.normalized())
    }

    fn layer_dir(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.root.join("layers").join(sha256_hex(diff_id)?))
    }

    fn layer_info(&self, diff_id: &str) -> Result<Option<LayerInfo>, ImageError> {
        let path = self.layer_dir(diff_id)?.join("info.json");
        match crate::hostfs::read_regular(&path, 4096) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(|| format!("read {}", path.display())),
        }
    }

    fn image_from(&self, name: &str, digest: &str, rec: &Record) -> Result<Image, ImageError> {
        let path = self
            .root
            .join("blobs/sha256")
            .join(sha256_hex(&rec.config_digest)?);
        let bytes = crate::hostfs::read_regular(&path, MAX_JSON_BYTES)
            .ctx(|| format!("read the config of {name} ({})", path.display()))?;
        let config = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::format(format!("config of {name}"), e.to_string()))?;
        let layers = rec
            .layers
            .iter()
            .map(|d| Ok(self.layer_dir(d)?.join("fs")))
            .collect::<Result<Vec<_>, ImageError>>()?;
        Ok(Image {
            name: name.to_string(),
            digest: digest.to_string(),
            config_digest: rec.config_digest.clone(),
            size: rec.size,
            created: rec.created.clone(),
            config,
            rootfs: self.root.join(&rec.rootfs),
            layers,
        })
    }

    /// Installs an image from `source` under `name` (as the user wrote it; normalised here).
    /// An empty `name` takes the one the source gives (an OCI layout's
    /// `io.containerd.image.name` or `org.opencontainers.image.ref.name` annotation, a docker
    /// archive's first RepoTag); a root filesystem tar has none.
    pub fn install(
        &self,
        source: ImageSource,
        name: &str,
        opts: &InstallOptions,
    ) -> Result<Image, ImageError> {
        let given = if name.is_empty() {
            None
        } else {
            Some(Self::key(name)?)
        };
        if let Some(key) = &given {
            self.refuse_existing(key, opts)?;
        }
        let staged = super::archive::stage(self, source, given.as_deref())?;
        let key = match given {
            Some(key) => key,
            None => {
                let hint = staged.name_hint.clone().ok_or_else(|| {
                    ImageError::format("install", "the source names no image: give a name")
                })?;
                let key = Self::key(&hint)?;
                self.refuse_existing(&key, opts)?;
                key
            }
        };
        self.install_staged(&key, staged, opts)
    }

    /// Fails early (before any extraction) when `key` is taken and no update was asked for.
    fn refuse_existing(&self, key: &str, opts: &InstallOptions) -> Result<(), ImageError> {
        if !opts.update {
            let _lock = self.lock_shared()?;
            if self.load_index()?.names.contains_key(key) {
                return Err(ImageError::Exists(key.to_string()));
            }
        }
        Ok(())
    }

    /// Installs a staged image under the normalised name `key`. On failure, the layers this
    /// install placed go again (unless an image uses them meanwhile).
    pub(crate) fn install_staged(
        &self,
        key: &str,
        staged: Staged,
        opts: &InstallOptions,
    ) -> Result<Image, ImageError> {
        // Prune waits for this install to finish, so the layers it finds stay.
        let _gc = self.lock_named("gc.lock", libc::LOCK_SH)?;
        let mut placed = Vec::new();
        let result = self.install_locked(key, staged, opts, &mut placed);
        if result.is_err() && !placed.is_empty() {
            // Best effort: the install's own error is what the caller needs to see.
            let _ = self.discard_layers(&placed);
        }
        result
    }

    /// Removes the layers `diff_ids` unless an image record uses them.
    fn discard_layers(&self, diff_ids: &[String]) -> Result<(), ImageError> {
        let trash = {
            let _lock = self.lock_exclusive()?;
            let index = self.load_index()?;
            let mut trash = Vec::new();
            for d in diff_ids {
                if !index.images.values().any(|r| r.layers.contains(d)) {
                    trash.extend(self.to_trash(&self.layer_dir(d)?)?);
                }
            }
            trash
        };
        drop(trash);
        Ok(())
    }

    fn install_locked(
        &self,
        key: &str,
        staged: Staged,
        opts: &InstallOptions,
        placed: &mut Vec<String>,
    ) -> Result<Image, ImageError> {
        let config: ImageConfiguration = serde_json::from_slice(&staged.config).map_err(|e| {
            ImageError::format(format!("config {}", staged.config_digest), e.to_string())
        })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != staged.layers.len() {
            return Err(ImageError::format(
                format!("config {}", staged.config_digest),
                format!(
                    "{} diff ids for {} layers",
                    diff_ids.len(),
                    staged.layers.len()
                ),
            ));
        }
        let digest = staged
            .manifest_digest
            .clone()
            .unwrap_or_else(|| staged.config_digest.clone());
        let mut size = 0;
        let mut whiteouts = false;
        let mut lowers: Vec<OwnedFd> = Vec::new();
        for (i, layer) in staged.layers.iter().enumerate() {
            let what = format!(
                "layer {} of {} ({})",
                i + 1,
                staged.layers.len(),
                layer.digest.as_deref().unwrap_or(&layer.diff_id)
            );
            let (info, new) = self.ensure_layer(layer, &lowers, &what)?;
            if new {
                placed.push(layer.diff_id.clone());
            }
            size += info.size;
            whiteouts |= info.whiteouts;
            let fs = self.layer_dir(&layer.diff_id)?.join("fs");
            lowers.push(extract::open_dir(&fs).ctx(|| format!("open {}", fs.display()))?);
        }
        let config_path = self
            .root
            .join("blobs/sha256")
            .join(sha256_hex(&staged.config_digest)?);
        if !config_path.exists() {
            self.write_atomic(&config_path, &staged.config)?;
        }
        let rootfs = if staged.layers.len() == 1 && !whiteouts {
            format!("layers/{}/fs", sha256_hex(&staged.layers[0].diff_id)?)
        } else {
            let rel = format!("rootfs/{}", sha256_hex(&digest)?);
            let dest = self.root.join(&rel);
            if !dest.exists() {
                let mut tmp = self.new_temp("rootfs")?;
                for l in &lowers {
                    extract::apply_layer(l.as_fd(), tmp.fd())
                        .ctx(|| format!("flatten the layers of {key}"))?;
                }
                if let Some(top) = lowers.last() {
                    extract::copy_root_meta(top.as_fd(), tmp.fd())
                        .ctx(|| format!("flatten the layers of {key}"))?;
                }
                tmp.place(&dest)?;
            }
            rel
        };
        let record = Record {
            config_digest: staged.config_digest.clone(),
            layers: staged.layers.iter().map(|l| l.diff_id.clone()).collect(),
            size,
            created: config.created().clone(),
            rootfs,
        };
        let trash = {
            let _lock = self.lock_exclusive()?;
            let mut index = self.load_index()?;
            // What this install found in place must still be there (rm or release may have
            // removed a flattened tree meanwhile).
            let layers_gone = record.layers.iter().any(|d| {
                self.layer_dir(d)
                    .map_or(true, |p| !p.join("info.json").is_file())
            });
            if layers_gone || !self.root.join(&record.rootfs).is_dir() {
                return Err(ImageError::format(
                    format!("install {key}"),
                    "a layer or the flattened tree was removed meanwhile (by a concurrent rm or \
                     failed install); try again",
                ));
            }
            match index.names.get(key) {
                Some(old) if old == &digest => {}
                Some(_) if !opts.update => return Err(ImageError::Exists(key.to_string())),
                _ => {}
            }
            index.names.insert(key.to_string(), digest.clone());
            index.images.insert(digest.clone(), record.clone());
            let trash = self.collect(&mut index)?;
            self.save_index(&index)?;
            trash
        };
        drop(trash);
        self.image_from(key, &digest, &record)
    }

    /// The layer `layer` in the store: found there (its blob still verified against its
    /// descriptor), or extracted into a temporary directory, verified, and renamed into place.
    fn ensure_layer(
        &self,
        layer: &StagedLayer,
        lowers: &[OwnedFd],
        what: &str,
    ) -> Result<(LayerInfo, bool), ImageError> {
        let dest = self.layer_dir(&layer.diff_id)?;
        if let Some(info) = self.layer_info(&layer.diff_id)? {
            if let Some(digest) = &layer.digest {
                let mut blob = Hashing::new((layer.open)()?);
                extract::drain(&mut blob).ctx(|| format!("read {what}"))?;
                check_blob(digest, layer.size, &blob)?;
            }
            return Ok((info, false));
        }
        let tmp = self.new_temp("layer")?;
        let fs = tmp.path().join("fs");
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&fs)
            .ctx(|| format!("create {}", fs.display()))?;
        let fs_fd = extract::open_dir(&fs).ctx(|| format!("open {}", fs.display()))?;
        let mut blob = Hashing::new((layer.open)()?);
        let (summary, diff_id, rest) = {
            let buf = BufReader::with_capacity(256 << 10, &mut blob);
            let stream = extract::decompress(buf).ctx(|| format!("read {what}"))?;
            let mut tar = Hashing::new(stream);
            let summary = extract::extract(fs_fd.as_fd(), &mut tar, what, Kind::Layer, lowers);
            // The digests cover the whole stream: read the rest, after a failed extraction too,
            // so that content other than what the descriptor or config says is reported as such.
            let rest = extract::drain(&mut tar);
            (summary, tar.digest(), rest)
        };
        let drained = extract::drain(&mut blob);
        if let Some(digest) = &layer.digest {
            check_blob(digest, layer.size, &blob)?;
        }
        let wrong_content = || {
            ImageError::blob(
                layer.digest.as_deref().unwrap_or(&layer.diff_id),
                format!(
                    "uncompressed content has digest {diff_id}, the image config says {}",
                    layer.diff_id
                ),
            )
        };
        if summary.is_err() && rest.is_ok() && diff_id != layer.diff_id {
            return Err(wrong_content());
        }
        let summary = summary?;
        rest.map_err(|e| ImageError::format(what, format!("corrupt compressed stream: {e}")))?;
        drained.ctx(|| format!("read {what}"))?;
        if diff_id != layer.diff_id {
            return Err(wrong_content());
        }
        let info = LayerInfo {
            size: summary.size,
            whiteouts: summary.whiteouts,
        };
        let bytes = serde_json::to_vec(&info).map_err(|e| ImageError::Io {
            context: "serialize layer info".into(),
            source: io::Error::other(e),
        })?;
        self.write_atomic(&tmp.path().join("info.json"), &bytes)?;
        let mut tmp = tmp;
        // Another install may have placed the same layer meanwhile: then this copy goes.
        let placed = tmp.place(&dest)?;
        Ok((info, placed))
    }

    /// Removes unreferenced image records from `index`, and moves their flattened trees to
    /// `tmp/` (the returned value removes them when dropped, after the lock is released).
    fn collect(&self, index: &mut Index) -> Result<Vec<TempDir>, ImageError> {
        let leases = self.leases(true)?;
        let used: BTreeSet<String> = index
            .names
            .values()
            .chain(index.users.values())
            .chain(leases.values())
            .cloned()
            .collect();
        let gone: Vec<String> = index
            .images
            .keys()
            .filter(|d| !used.contains(*d))
            .cloned()
            .collect();
        let mut trash = Vec::new();
        for digest in gone {
            let Some(rec) = index.images.remove(&digest) else {
                continue;
            };
            if rec.rootfs.starts_with("rootfs/") {
                trash.extend(self.to_trash(&self.root.join(&rec.rootfs))?);
            }
        }
        Ok(trash)
    }

    /// The lease file of `user`.
    fn lease_path(&self, user: &str) -> PathBuf {
        let name = extract::sha256(user.as_bytes());
        self.root
            .join("leases")
            .join(name.trim_start_matches("sha256:"))
    }

    /// The lease file at `path`: `None` if there is none, or it is unreadable (a power loss
    /// can leave an unsynced one empty: see the module docs).
    fn read_lease(path: &Path) -> Result<Option<Lease>, ImageError> {
        match crate::hostfs::read_regular(path, 64 << 10) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(|| format!("read {}", path.display())),
        }
    }

    /// The live leases: user -> image digest. With `clean` (under the exclusive lock), the
    /// files of dead ones (an earlier boot's, or torn) are removed.
    fn leases(&self, clean: bool) -> Result<BTreeMap<String, String>, ImageError> {
        let dir = self.root.join("leases");
        let mut live = BTreeMap::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(live),
            Err(e) => return Err(e).ctx(|| format!("read {}", dir.display())),
        };
        for entry in entries {
            let path = entry.ctx(|| format!("read {}", dir.display()))?.path();
            match Self::read_lease(&path)? {
                Some(lease) if lease.live() => {
                    live.insert(lease.user, lease.image);
                }
                _ if clean => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(e).ctx(|| format!("remove {}", path.display()))
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(live)
    }

    /// Every user of the image `digest`: the leases, and the index's users of older stores.
    fn users_of(&self, index: &Index, digest: &str) -> Result<Vec<String>, ImageError> {
        let mut users: BTreeSet<String> = self
            .leases(false)?
            .into_iter()
            .filter(|(_, d)| d == digest)
            .map(|(u, _)| u)
            .collect();
        users.extend(
            index
                .users
                .iter()
                .filter(|(_, d)| *d == digest)
                .map(|(u, _)| u.clone()),
        );
        Ok(users.into_iter().collect())
    }

    /// Moves a directory into `tmp/` as an unlocked temporary, to be removed outside the lock.
    fn to_trash(&self, path: &Path) -> Result<Option<TempDir>, ImageError> {
        let name = format!(
            "trash-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dest = self.root.join("tmp").join(name);
        match std::fs::rename(path, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx(|| format!("move {} away", path.display())),
        }
        let fd = extract::open_dir(&dest).ctx(|| format!("open {}", dest.display()))?;
        Ok(Some(TempDir {
            path: dest,
            fd,
            placed: false,
        }))
    }

    /// All installed images, by name.
    pub fn images(&self) -> Result<Vec<Image>, ImageError> {
        let index = {
            let _lock = self.lock_shared()?;
            self.load_index()?
        };
        index
            .names
            .iter()
            .map(|(name, digest)| {
                let rec = index.images.get(digest).ok_or_else(|| {
                    ImageError::format("image index", format!("no record for {name}"))
                })?;
                self.image_from(name, digest, rec)
            })
            .collect()
    }

    /// The image installed under `name` (as the user wrote it: `busybox` finds
    /// `docker.io/library/busybox:latest`), or with this digest: `sha256:<64 hex>`, or a prefix
    /// of 12 or more hex digits that only one image's digest has (`sha256:` optional), as
    /// docker's image ids. Found by digest, [`Image::name`] is the first of the image's names.
    pub fn image(&self, name: &str) -> Result<Image, ImageError> {
        let index = {
            let _lock = self.lock_shared()?;
            self.load_index()?
        };
        let (found, digest) = index.resolve(name)?;
        let key = found.name();
        let rec = index
            .images
            .get(&digest)
            .ok_or_else(|| ImageError::format("image index", format!("no record for {key}")))?;
        self.image_from(key, &digest, rec)
    }

    /// Removes the name `name`; given a digest (see [`ImageStore::image`]), every name of that
    /// image (more than one only with `force`). Refused while a container uses that image (see
    /// [`ImageStore::acquire`]), unless `force`: then the name goes at once and the image's
    /// files when the last user releases it. Layers stay until [`ImageStore::prune`].
    pub fn remove(&self, name: &str, force: bool) -> Result<(), ImageError> {
        let trash = {
            let _lock = self.lock_exclusive()?;
            let mut index = self.load_index()?;
            let (found, digest) = index.resolve(name)?;
            // By digest: the image itself, all its names (several only with force, as docker).
            let names = match found {
                Found::Name(key) => vec![key],
                Found::Digest(names) if names.len() > 1 && !force => {
                    return Err(ImageError::Ambiguous {
                        reference: name.to_string(),
                        matches: format!("{} (remove by name, or with force)", names.join(", ")),
                    })
                }
                Found::Digest(names) => names,
            };
            let key = names.join(", ");
            let other_names = index
                .names
                .iter()
                .any(|(n, d)| *d == digest && !names.contains(n));
            let users = self.users_of(&index, &digest)?;
            if !users.is_empty() && !other_names && !force {
                return Err(ImageError::InUse {
                    name: key,
                    users: users.join(", "),
                });
            }
            for n in &names {
                index.names.remove(n);
            }
            let trash = self.collect(&mut index)?;
            self.save_index(&index)?;
            trash
        };
        drop(trash);
        Ok(())
    }

    /// Records that `user` (a container id, or any token) uses the image now installed as
    /// `name`, and returns it. That version is kept while the user holds it, even if the name
    /// is updated to another version or removed with force. A user holds one image at a time:
    /// acquiring again replaces the previous one. The lease is on disk (synced) when this
    /// returns, and outlives a reboot.
    pub fn acquire(&self, name: &str, user: &str) -> Result<Image, ImageError> {
        self.take_lease(name, user, None)
    }

    /// [`ImageStore::acquire`] for a user that does not outlive the boot, as a container (its
    /// mounts of the image do not survive a reboot): the lease is not synced to disk, and a
    /// lease of an earlier boot holds nothing. Cheaper: no wait for the disk.
    pub fn acquire_for_boot(&self, name: &str, user: &str) -> Result<Image, ImageError> {
        match boot_id() {
            Some(boot) => self.take_lease(name, user, Some(boot)),
            // Without a boot id, a lease cannot tell it is stale: a durable one, then.
            None => self.take_lease(name, user, None),
        }
    }

    fn take_lease(&self, name: &str, user: &str, boot: Option<&str>) -> Result<Image, ImageError> {
        if user.is_empty() {
            return Err(ImageError::format("acquire", "empty user"));
        }
        let (image, trash) = {
            let _lock = self.lock_exclusive()?;
            let mut index = self.load_index()?;
            let (found, digest) = index.resolve(name)?;
            let key = found.name().to_string();
            let rec =
                index.images.get(&digest).cloned().ok_or_else(|| {
                    ImageError::format("image index", format!("no record for {key}"))
                })?;
            let image = self.image_from(&key, &digest, &rec)?;
            let path = self.lease_path(user);
            let previous = Self::read_lease(&path)?.map(|l| l.image);
            let lease = Lease {
                user: user.to_string(),
                image: digest.clone(),
                boot_id: boot.map(str::to_string),
            };
            let bytes = serde_json::to_vec(&lease).map_err(|e| ImageError::Io {
                context: "serialize an image lease".into(),
                source: io::Error::other(e),
            })?;
            let durable = boot.is_none();
            self.write_renamed(&path, &bytes, durable)?;
            if durable {
                sync_dir(&self.root.join("leases"))?;
            }
            // A lease of an older store moves to its file; the index changes only then, or when
            // the user's previous image has no other holder now.
            let migrated = index.users.remove(user);
            let changed = migrated.is_some();
            let dropped = previous.into_iter().chain(migrated).any(|d| d != digest);
            let trash = if changed || dropped {
                self.collect_and_save(&mut index, changed)?
            } else {
                Vec::new()
            };
            (image, trash)
        };
        drop(trash);
        Ok(image)
    }

    /// [`ImageStore::collect`], and the index saved if that (or `changed`) changed it.
    fn collect_and_save(
        &self,
        index: &mut Index,
        changed: bool,
    ) -> Result<Vec<TempDir>, ImageError> {
        let before = index.images.len();
        let trash = self.collect(index)?;
        if changed || index.images.len() != before {
            self.save_index(index)?;
        }
        Ok(trash)
    }

    /// Ends `user`'s use of its image; a version no name points to any more is removed then.
    /// Releasing a user that holds nothing is not an error.
    pub fn release(&self, user: &str) -> Result<(), ImageError> {
        let trash = {
            let _lock = self.lock_exclusive()?;
            let mut index = self.load_index()?;
            let path = self.lease_path(user);
            let lease = Self::read_lease(&path)?;
            let had_file = match std::fs::remove_file(&path) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e).ctx(|| format!("remove {}", path.display())),
            };
            let old = index.users.remove(user);
            if !had_file && old.is_none() {
                return Ok(());
            }
            // Nothing to collect while a name still points to the image.
            let unnamed = |d: &String| !index.names.values().any(|n| n == d);
            let orphan = lease.map(|l| l.image).iter().chain(old.iter()).any(unnamed);
            if orphan || old.is_some() {
                self.collect_and_save(&mut index, old.is_some())?
            } else {
                Vec::new()
            }
        };
        drop(trash);
        Ok(())
    }

    /// The users (container ids) holding the image installed as `name`.
    pub fn users(&self, name: &str) -> Result<Vec<String>, ImageError> {
        let _lock = self.lock_shared()?;
        let index = self.load_index()?;
        let (_, digest) = index.resolve(name)?;
        self.users_of(&index, &digest)
    }

    /// Removes layers, configs and flattened trees that no installed image (or image still in
    /// use) needs, and the leftovers of killed installs. Waits for installs in progress.
    pub fn prune(&self) -> Result<PruneReport, ImageError> {
        let _gc = self.lock_named("gc.lock", libc::LOCK_EX)?;
        let mut report = PruneReport::default();
        let trash = {
            let _lock = self.lock_exclusive()?;
            report.temp = self.clean_temp()?;
            let index = self.load_index()?;
            let mut layers = BTreeSet::new();
            let mut blobs = BTreeSet::new();
            let mut trees = BTreeSet::new();
            for rec in index.images.values() {
                for l in &rec.layers {
                    layers.insert(sha256_hex(l)?.to_string());
                }
                blobs.insert(sha256_hex(&rec.config_digest)?.to_string());
                trees.insert(rec.rootfs.clone());
            }
            let mut trash = Vec::new();
            for name in self.dir_names("layers")? {
                if !layers.contains(&name) {
                    trash.extend(self.to_trash(&self.root.join("layers").join(&name))?);
                    report.layers.push(format!("sha256:{name}"));
                }
            }
            for name in self.dir_names("rootfs")? {
                if !trees.contains(&format!("rootfs/{name}")) {
                    trash.extend(self.to_trash(&self.root.join("rootfs").join(&name))?);
                    report.rootfs += 1;
                }
            }
            for name in self.dir_names("blobs/sha256")? {
                if !blobs.contains(&name) {
                    let path = self.root.join("blobs/sha256").join(&name);
                    std::fs::remove_file(&path).ctx(|| format!("remove {}", path.display()))?;
                    report.blobs += 1;
                }
            }
            trash
        };
        drop(trash);
        Ok(report)
    }

    fn dir_names(&self, dir: &str) -> Result<Vec<String>, ImageError> {
        let path = self.root.join(dir);
        let mut names = Vec::new();
        for e in std::fs::read_dir(&path).ctx(|| format!("read {}", path.display()))? {
            let e = e.ctx(|| format!("read {}", path.display()))?;
            names.push(e.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }
}

/// `fsync` of a directory, so that a rename into it survives a power loss.
fn sync_dir(dir: &Path) -> Result<(), ImageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("sync {}", dir.display()))
}

/// Checks a blob's digest and size against its descriptor.
pub(crate) fn check_blob<R: Read>(
    digest: &str,
    size: Option<u64>,
    read: &Hashing<R>,
) -> Result<(), ImageError> {
    let actual = read.digest();
    if actual != digest {
        return Err(ImageError::blob(
            digest,
            format!("content has digest {actual}: the blob is corrupt or was replaced"),
        ));
    }
    if let Some(size) = size {
        if read.len() != size {
            return Err(ImageError::blob(
                digest,
                format!("{} bytes where the descriptor says {size}", read.len()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[(&str, &str)]) -> Index {
        let mut index = Index::default();
        for (name, hex) in names {
            index
                .names
                .insert(ImageStore::key(name).unwrap(), format!("sha256:{hex}"));
        }
        index
    }

    fn resolved(index: &Index, name: &str) -> Result<(Vec<String>, String), String> {
        match index.resolve(name) {
            Ok((Found::Name(n), d)) => Ok((vec![n], d)),
            Ok((Found::Digest(names), d)) => Ok((names, d)),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn names_digests_and_unique_prefixes_resolve_as_docker_ids() {
        let a = format!("{}{}", "abcdef012345", "1".repeat(52));
        let b = format!("{}{}", "abcdef012345", "2".repeat(52));
        let c = format!("{}{}", "0123456789ab", "3".repeat(52));
        // An all-hex repository name, which is also a prefix of `c`.
        let index = index(&[
            ("one", &a),
            ("two", &b),
            ("0123456789ab", &a),
            ("three", &c),
        ]);
        let key = |n: &str| ImageStore::key(n).unwrap();
        assert_eq!(
            resolved(&index, "one"),
            Ok((vec![key("one")], format!("sha256:{a}")))
        );
        // A name wins over a digest prefix, as in docker.
        assert_eq!(
            resolved(&index, "0123456789ab"),
            Ok((vec![key("0123456789ab")], format!("sha256:{a}")))
        );
        // With sha256: it is a digest; every name of the image comes back.
        assert_eq!(
            resolved(&index, "sha256:0123456789ab"),
            Ok((vec![key("three")], format!("sha256:{c}")))
        );
        let mut both = vec![key("one"), key("0123456789ab")];
        both.sort();
        assert_eq!(
            resolved(&index, &format!("sha256:{a}")),
            Ok((both, format!("sha256:{a}")))
        );
        assert_eq!(
            resolved(&index, &b[..13]),
            Ok((vec![key("two")], format!("sha256:{b}")))
        );
        // Ambiguous, too short, unknown.
        let err = resolved(&index, "abcdef012345").unwrap_err();
        assert!(
            err.contains("ambiguous") && err.contains(&a) && err.contains(&b),
            "{err}"
        );
        let err = resolved(&index, "sha256:abcdef01234").unwrap_err();
        assert!(err.contains("12 to 64"), "{err}");
        let err = resolved(&index, "sha256:ABCDEF012345").unwrap_err();
        assert!(err.contains("12 to 64"), "{err}");
        assert_eq!(
            resolved(&index, "fedcba987654"),
            Err("image not found: fedcba987654".into())
        );
        assert_eq!(
            resolved(&index, "abcdef01234"),
            Err("image not found: docker.io/library/abcdef01234:latest".into())
        );
    }

    /// A store with the images `digests` (no layers: a config blob and an empty flattened
    /// tree each) under `names`, and the old index's `users`.
    fn store_with(
        dir: &Path,
        names: &[(&str, usize)],
        users: &[(&str, usize)],
        count: usize,
    ) -> (ImageStore, Vec<String>) {
        let store = ImageStore::open(dir).unwrap();
        let mut index = Index::default();
        let mut digests = Vec::new();
        for i in 0..count {
            let config = format!(
                r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["N={i}"]}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
            );
            let digest = extract::sha256(config.as_bytes());
            let hex = sha256_hex(&digest).unwrap().to_string();
            store
                .write_atomic(&dir.join("blobs/sha256").join(&hex), config.as_bytes())
                .unwrap();
            std::fs::create_dir(dir.join("rootfs").join(&hex)).unwrap();
            let record = Record {
                config_digest: digest.clone(),
                layers: vec![],
                size: 0,
                created: None,
                rootfs: format!("rootfs/{hex}"),
            };
            index.images.insert(digest.clone(), record);
            digests.push(digest);
        }
        for (name, i) in names {
            index
                .names
                .insert(ImageStore::key(name).unwrap(), digests[*i].clone());
        }
        for (user, i) in users {
            index.users.insert(user.to_string(), digests[*i].clone());
        }
        store.save_index(&index).unwrap();
        (store, digests)
    }

    fn tree(store: &ImageStore, digest: &str) -> PathBuf {
        store
            .root()
            .join("rootfs")
            .join(sha256_hex(digest).unwrap())
    }

    #[test]
    fn leases_kept_in_an_older_index_still_hold_and_move_to_files() {
        let dir = husk_testing::TempDir::new("husk-store-leases");
        let (store, d) = store_with(dir.path(), &[("app", 0)], &[("c1", 0), ("c2", 1)], 2);
        assert_eq!(store.users("app").unwrap(), ["c1"]);
        // c2 held an image no name points to: released, it goes.
        assert!(tree(&store, &d[1]).is_dir());
        store.release("c2").unwrap();
        assert!(!tree(&store, &d[1]).exists(), "an unheld image stays");
        assert!(!store.load_index().unwrap().images.contains_key(&d[1]));
        // Acquired again, c1's lease leaves the index for a file of its own.
        store.acquire_for_boot("app", "c1").unwrap();
        assert!(store.load_index().unwrap().users.is_empty());
        assert!(store.lease_path("c1").is_file());
        assert_eq!(store.users("app").unwrap(), ["c1"]);
        let err = store.remove("app", false).unwrap_err().to_string();
        assert!(err.contains("in use by c1"), "{err}");
        store.release("c1").unwrap();
        assert!(!store.lease_path("c1").exists());
        assert!(store.users("app").unwrap().is_empty());
        store.remove("app", false).unwrap();
        assert!(!tree(&store, &d[0]).exists());
    }

    #[test]
    fn a_lease_of_an_earlier_boot_or_torn_by_a_power_loss_holds_nothing() {
        let dir = husk_testing::TempDir::new("husk-store-leases");
        let (store, d) = store_with(dir.path(), &[("app", 0), ("old", 1)], &[], 2);
        store.acquire_for_boot("app", "here").unwrap();
        store.acquire("old", "durable").unwrap();
        // A container of an earlier boot, and a lease file a power loss left empty.
        let stale = Lease {
            user: "gone".into(),
            image: d[1].clone(),
            boot_id: Some("an-earlier-boot".into()),
        };
        store
            .write_atomic(
                &store.lease_path("gone"),
                &serde_json::to_vec(&stale).unwrap(),
            )
            .unwrap();
        store.write_atomic(&store.lease_path("torn"), b"").unwrap();
        assert_eq!(store.users("app").unwrap(), ["here"]);
        assert_eq!(store.users("old").unwrap(), ["durable"]);
        // The durable lease keeps "old" through a forced rm; the stale ones count for nothing.
        store.remove("old", true).unwrap();
        assert!(tree(&store, &d[1]).is_dir(), "removed while held");
        assert!(!store.lease_path("gone").exists(), "stale lease kept");
        assert!(!store.lease_path("torn").exists(), "torn lease kept");
        store.release("durable").unwrap();
        assert!(!tree(&store, &d[1]).exists(), "kept by a stale lease");
        assert!(tree(&store, &d[0]).is_dir());
        assert!(store.lease_path("here").is_file());
    }
}

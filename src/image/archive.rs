//! Reading the sources an image is installed from: an OCI image layout (a directory or a tar of
//! one), a `docker save` archive, and a root filesystem tar. Each is turned into a
//! [`Staged`] image: a manifest and config checked against their digests, and one stream per
//! layer with the digests to check it against.
//!
//! An archive is first unpacked into a private temporary directory of the store (with the same
//! safe extractor as layers, allowing only directories, regular files and links), then read as a
//! directory. Every file of a source directory is opened with `openat2(RESOLVE_IN_ROOT)` from
//! the directory's descriptor, so a symlink in it (old `docker save` archives link shared
//! layers) cannot lead out of it, and must be a regular file.

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use super::error::IoContext;
use super::extract::{self, Hashing, Kind};
use super::store::{check_blob, sha256_hex, Staged, StagedLayer, MAX_JSON_BYTES};
use super::{ImageError, ImageSource, ImageStore, Reference};

const MANIFEST_OCI: &str = "application/vnd.oci.image.manifest.v1+json";
const MANIFEST_DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
const INDEX_OCI: &str = "application/vnd.oci.image.index.v1+json";
const INDEX_DOCKER: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The OCI architecture name of this host.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A source directory, read through its descriptor.
#[derive(Clone)]
struct SourceDir {
    fd: Arc<OwnedFd>,
    /// For messages.
    shown: String,
}

impl SourceDir {
    fn open(path: &Path) -> Result<SourceDir, ImageError> {
        Ok(SourceDir {
            fd: Arc::new(extract::open_dir(path).ctx(|| format!("open {}", path.display()))?),
            shown: path.display().to_string(),
        })
    }

    /// Opens `rel` (symlinks resolved inside the directory); it must be a regular file.
    fn file(&self, rel: &str) -> Result<File, ImageError> {
        let fd = husk_init::sys::open_in_root(
            self.fd.as_fd(),
            Path::new(rel),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        )
        .ctx(|| format!("open {rel} in {}", self.shown))?;
        let file = File::from(fd);
        let meta = file
            .metadata()
            .ctx(|| format!("stat {rel} in {}", self.shown))?;
        if !meta.is_file() {
            return Err(ImageError::format(
                format!("{rel} in {}", self.shown),
                "not a regular file",
            ));
        }
        Ok(file)
    }

    fn exists(&self, rel: &str) -> bool {
        husk_init::sys::open_in_root(self.fd.as_fd(), Path::new(rel), libc::O_PATH).is_ok()
    }

    /// A JSON file, at most [`MAX_JSON_BYTES`].
    fn read(&self, rel: &str) -> Result<Vec<u8>, ImageError> {
        let mut bytes = Vec::new();
        self.file(rel)?
            .take(MAX_JSON_BYTES + 1)
            .read_to_end(&mut bytes)
            .ctx(|| format!("read {rel} in {}", self.shown))?;
        if bytes.len() as u64 > MAX_JSON_BYTES {
            return Err(ImageError::format(
                format!("{rel} in {}", self.shown),
                format!("larger than {MAX_JSON_BYTES} bytes"),
            ));
        }
        Ok(bytes)
    }

    /// A blob of an OCI layout, checked against its descriptor.
    fn blob(&self, digest: &str, size: Option<u64>) -> Result<Vec<u8>, ImageError> {
        let rel = format!("blobs/sha256/{}", sha256_hex(digest)?);
        if !self.exists(&rel) {
            return Err(ImageError::blob(
                digest,
                format!("missing from {}", self.shown),
            ));
        }
        let bytes = self.read(&rel)?;
        let mut h = Hashing::new(&bytes[..]);
        extract::drain(&mut h).ctx(|| format!("read {rel}"))?;
        check_blob(digest, size, &h)?;
        Ok(bytes)
    }
}

fn json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::format(what, e.to_string()))
}

/// What kind of source `path` is, by looking.
fn detect(
    store: &ImageStore,
    path: &Path,
) -> Result<(ImageSource, Option<super::store::TempDir>), ImageError> {
    let meta = std::fs::metadata(path).ctx(|| format!("stat {}", path.display()))?;
    if meta.is_dir() {
        let dir = SourceDir::open(path)?;
        return if dir.exists("manifest.json") {
            Ok((ImageSource::DockerArchive(path.into()), None))
        } else if dir.exists("oci-layout") {
            Ok((ImageSource::OciLayout(path.into()), None))
        } else {
            Err(ImageError::format(
                path.display().to_string(),
                "a directory with neither oci-layout nor manifest.json",
            ))
        };
    }
    // A compressed file is a root filesystem; a tar with the layout's files is an archive.
    let file = open_source(path)?;
    let mut buf = BufReader::new(file);
    if extract::sniff(&mut buf).ctx(|| format!("read {}", path.display()))?
        != extract::Compression::None
    {
        return Ok((ImageSource::RootfsTar(path.into()), None));
    }
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(buf);
    if let Ok(entries) = archive.entries() {
        for e in entries.take(100_000) {
            let Ok(e) = e else { break };
            let p = e.path_bytes();
            let p = p.strip_prefix(b"./").unwrap_or(&p);
            names.push(p.to_vec());
        }
    }
    let has = |n: &[u8]| names.iter().any(|x| x == n);
    if has(b"manifest.json") {
        let tmp = unpack(store, path)?;
        Ok((ImageSource::DockerArchive(tmp.path().into()), Some(tmp)))
    } else if has(b"oci-layout") && has(b"index.json") {
        let tmp = unpack(store, path)?;
        Ok((ImageSource::OciLayout(tmp.path().into()), Some(tmp)))
    } else {
        Ok((ImageSource::RootfsTar(path.into()), None))
    }
}

fn open_source(path: &Path) -> Result<File, ImageError> {
    #[allow(clippy::disallowed_methods)] // read-only
    let file = std::fs::OpenOptions::new()
        .read(true)
        .open(path)
        .ctx(|| format!("open {}", path.display()))?;
    Ok(file)
}

/// Unpacks an archive into a temporary directory of the store.
fn unpack(store: &ImageStore, path: &Path) -> Result<super::store::TempDir, ImageError> {
    let tmp = store.new_temp("archive")?;
    let file = open_source(path)?;
    let stream =
        extract::decompress(BufReader::new(file)).ctx(|| format!("read {}", path.display()))?;
    extract::extract(
        tmp.fd(),
        stream,
        &path.display().to_string(),
        Kind::Container,
        &[],
    )?;
    Ok(tmp)
}

/// A directory for an archive source: the directory itself, or the archive unpacked.
fn source_dir(
    store: &ImageStore,
    path: &Path,
    keep: &mut Vec<super::store::TempDir>,
) -> Result<SourceDir, ImageError> {
    let meta = std::fs::metadata(path).ctx(|| format!("stat {}", path.display()))?;
    if meta.is_dir() {
        return SourceDir::open(path);
    }
    let tmp = unpack(store, path)?;
    let mut dir = SourceDir::open(tmp.path())?;
    dir.shown = path.display().to_string();
    keep.push(tmp);
    Ok(dir)
}

/// Reads `source` into a staged image. `name` is the normalised name asked for, if any (it
/// picks one of several images in a layout or archive).
pub(crate) fn stage(
    store: &ImageStore,
    source: ImageSource,
    name: Option<&str>,
) -> Result<Staged, ImageError> {
    let mut keep = Vec::new();
    let source = match source {
        ImageSource::Auto(path) => {
            let (s, tmp) = detect(store, &path)?;
            keep.extend(tmp);
            s
        }
        other => other,
    };
    let mut staged = match source {
        ImageSource::OciLayout(path) => {
            let dir = source_dir(store, &path, &mut keep)?;
            stage_oci(dir, name)?
        }
        ImageSource::DockerArchive(path) => {
            let dir = source_dir(store, &path, &mut keep)?;
            stage_docker(dir, name)?
        }
        ImageSource::RootfsTar(path) => stage_rootfs(&path)?,
        ImageSource::Auto(_) => unreachable!("resolved above"),
    };
    staged.keep.extend(keep);
    Ok(staged)
}

fn stage_rootfs(path: &Path) -> Result<Staged, ImageError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).ctx(|| format!("stat {shown}"))?;
    if !meta.is_file() {
        return Err(ImageError::format(
            shown,
            "a root filesystem tar must be a file",
        ));
    }
    // The diff id is the digest of the uncompressed tar: one pass to know it (and so whether
    // the store has the layer already).
    let file = open_source(path)?;
    let mut tar =
        Hashing::new(extract::decompress(BufReader::new(file)).ctx(|| format!("read {shown}"))?);
    extract::drain(&mut tar)
        .map_err(|e| ImageError::format(&shown, format!("corrupt compressed stream: {e}")))?;
    let diff_id = tar.digest();
    let config = serde_json::json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config =
        serde_json::to_vec(&config).map_err(|e| ImageError::format(&shown, e.to_string()))?;
    let path = path.to_path_buf();
    Ok(Staged {
        name_hint: None,
        manifest_digest: None,
        config_digest: extract::sha256(&config),
        config,
        layers: vec![StagedLayer {
            digest: None,
            size: None,
            diff_id,
            open: Box::new(move || Ok(Box::new(open_source(&path)?) as Box<dyn Read>)),
        }],
        keep: Vec::new(),
    })
}

/// The layers of an image manifest, each with its diff id from the image's config: as many as
/// the config has diff ids, and each a tar (of any compression). Local layouts and registry
/// pulls both check this before reading a layer.
pub(crate) fn manifest_layers<'a>(
    manifest: &'a ImageManifest,
    config: &'a oci_spec::image::ImageConfiguration,
    manifest_digest: &str,
) -> Result<Vec<(&'a Descriptor, &'a String)>, ImageError> {
    let diff_ids = config.rootfs().diff_ids();
    let what = || format!("manifest {manifest_digest}");
    if diff_ids.len() != manifest.layers().len() {
        return Err(ImageError::format(
            what(),
            format!(
                "{} layers, but its config has {} diff ids",
                manifest.layers().len(),
                diff_ids.len()
            ),
        ));
    }
    let pairs: Vec<_> = manifest.layers().iter().zip(diff_ids).collect();
    if let Some((d, _)) = pairs.iter().find(|(d, _)| !media_type(d).contains("tar")) {
        return Err(ImageError::format(
            what(),
            format!(
                "layer {} has media type {}, not a tar",
                d.digest(),
                media_type(d)
            ),
        ));
    }
    Ok(pairs)
}

fn media_type(d: &Descriptor) -> String {
    d.media_type().to_string()
}

fn platform_matches(d: &Descriptor) -> bool {
    match d.platform() {
        None => true,
        Some(p) => p.architecture().to_string() == host_arch() && p.os().to_string() == "linux",
    }
}

/// The name a descriptor's annotations give, normalised, if any.
fn annotated_name(d: &Descriptor) -> Option<String> {
    let a = d.annotations().as_ref()?;
    [
        "io.containerd.image.name",
        "org.opencontainers.image.ref.name",
    ]
    .iter()
    .filter_map(|k| a.get(*k))
    .find_map(|v| Reference::parse(v).ok().map(|r| r.normalized()))
}

/// Picks the manifest for this host from an index's descriptors.
fn select<'a>(
    descs: &'a [Descriptor],
    name: Option<&str>,
    what: &str,
) -> Result<&'a Descriptor, ImageError> {
    let images: Vec<&Descriptor> = descs
        .iter()
        .filter(|d| {
            matches!(
                media_type(d).as_str(),
                MANIFEST_OCI | MANIFEST_DOCKER | INDEX_OCI | INDEX_DOCKER
            )
        })
        .collect();
    let named: Vec<&Descriptor> = match name {
        Some(n) => images
            .iter()
            .copied()
            .filter(|d| annotated_name(d).as_deref() == Some(n))
            .collect(),
        None => Vec::new(),
    };
    let pool = if named.is_empty() { images } else { named };
    let fitting: Vec<&Descriptor> = pool.into_iter().filter(|d| platform_matches(d)).collect();
    match fitting.as_slice() {
        [one] => Ok(one),
        [] => Err(ImageError::format(
            what,
            format!("no image for linux/{}", host_arch()),
        )),
        many => Err(ImageError::format(
            what,
            format!(
                "{} images for linux/{}: give the name of the one to install",
                many.len(),
                host_arch()
            ),
        )),
    }
}

fn stage_oci(dir: SourceDir, name: Option<&str>) -> Result<Staged, ImageError> {
    let layout: serde_json::Value = json(
        &dir.read("oci-layout")?,
        &format!("oci-layout of {}", dir.shown),
    )?;
    if layout
        .get("imageLayoutVersion")
        .and_then(|v| v.as_str())
        .is_none()
    {
        return Err(ImageError::format(
            format!("oci-layout of {}", dir.shown),
            "no imageLayoutVersion",
        ));
    }
    let what = format!("index.json of {}", dir.shown);
    let index: ImageIndex = json(&dir.read("index.json")?, &what)?;
    let top = select(index.manifests(), name, &what)?;
    let name_hint = annotated_name(top);
    // Follow nested indexes (a multi-platform image) down to this host's manifest.
    let mut desc = top.clone();
    for _ in 0..8 {
        let mt = media_type(&desc);
        if mt != INDEX_OCI && mt != INDEX_DOCKER {
            break;
        }
        let digest = desc.digest().to_string();
        let inner: ImageIndex = json(
            &dir.blob(&digest, Some(desc.size()))?,
            &format!("index {digest}"),
        )?;
        desc = select(inner.manifests(), None, &format!("index {digest}"))?.clone();
    }
    let manifest_digest = desc.digest().to_string();
    let manifest: ImageManifest = json(
        &dir.blob(&manifest_digest, Some(desc.size()))?,
        &format!("manifest {manifest_digest}"),
    )?;
    let config_desc = manifest.config();
    let config_digest = config_desc.digest().to_string();
    let config = dir.blob(&config_digest, Some(config_desc.size()))?;
    let parsed: oci_spec::image::ImageConfiguration =
        json(&config, &format!("config {config_digest}"))?;
    let mut layers = Vec::new();
    for (d, diff_id) in manifest_layers(&manifest, &parsed, &manifest_digest)? {
        let digest = d.digest().to_string();
        let rel = format!("blobs/sha256/{}", sha256_hex(&digest)?);
        let src = dir.clone();
        let missing = digest.clone();
        layers.push(StagedLayer {
            digest: Some(digest),
            size: Some(d.size()),
            diff_id: diff_id.clone(),
            open: Box::new(move || {
                if !src.exists(&rel) {
                    return Err(ImageError::blob(
                        &missing,
                        format!("missing from {}", src.shown),
                    ));
                }
                Ok(Box::new(src.file(&rel)?) as Box<dyn Read>)
            }),
        });
    }
    Ok(Staged {
        name_hint,
        manifest_digest: Some(manifest_digest),
        config,
        config_digest,
        layers,
        keep: Vec::new(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The digest a `docker save` file's name gives: `blobs/sha256/<hex>` or `<hex>.json`.
fn digest_from_name(rel: &str) -> Option<String> {
    let base = rel
        .strip_prefix("blobs/sha256/")
        .or_else(|| rel.strip_suffix(".json"))?;
    let digest = format!("sha256:{base}");
    if sha256_hex(&digest).is_ok() {
        Some(digest)
    } else {
        None
    }
}

fn stage_docker(dir: SourceDir, name: Option<&str>) -> Result<Staged, ImageError> {
    let what = format!("manifest.json of {}", dir.shown);
    let entries: Vec<DockerEntry> = json(&dir.read("manifest.json")?, &what)?;
    let tags = |e: &DockerEntry| -> Vec<String> {
        e.repo_tags
            .iter()
            .flatten()
            .filter_map(|t| Reference::parse(t).ok().map(|r| r.normalized()))
            .collect()
    };
    let entry = match (entries.as_slice(), name) {
        ([one], _) => one,
        (many, Some(n)) => many
            .iter()
            .find(|e| tags(e).iter().any(|t| t == n))
            .ok_or_else(|| ImageError::format(&what, format!("no image tagged {n}")))?,
        ([], None) => return Err(ImageError::format(&what, "no image")),
        (many, None) => {
            return Err(ImageError::format(
                &what,
                format!("{} images: give the name of the one to install", many.len()),
            ))
        }
    };
    let name_hint = tags(entry).into_iter().next();
    let config_digest = digest_from_name(&entry.config).ok_or_else(|| {
        ImageError::format(
            &what,
            format!(
                "config {:?}: its digest cannot be told from its name",
                entry.config
            ),
        )
    })?;
    let config = dir.read(&entry.config)?;
    let actual = extract::sha256(&config);
    if actual != config_digest {
        return Err(ImageError::blob(
            &config_digest,
            format!("content has digest {actual}: the blob is corrupt or was replaced"),
        ));
    }
    let parsed: oci_spec::image::ImageConfiguration =
        json(&config, &format!("config {config_digest}"))?;
    let diff_ids = parsed.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(ImageError::format(
            &what,
            format!(
                "{} layers, but the config has {} diff ids",
                entry.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let layers = entry
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(rel, diff_id)| {
            let src = dir.clone();
            let rel = rel.clone();
            StagedLayer {
                // New archives name layer blobs by digest; old ones (`<id>/layer.tar`) are
                // checked against the diff id alone.
                digest: digest_from_name(&rel).filter(|_| rel.starts_with("blobs/")),
                size: None,
                diff_id: diff_id.clone(),
                open: Box::new(move || Ok(Box::new(src.file(&rel)?) as Box<dyn Read>)),
            }
        })
        .collect();
    Ok(Staged {
        name_hint,
        manifest_digest: None,
        config,
        config_digest,
        layers,
        keep: Vec::new(),
    })
}

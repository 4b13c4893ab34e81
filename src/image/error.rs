//! The image store's error type: each variant names the thing that is wrong (the image, the
//! blob's digest, the tar entry), in one line; system errors keep their errno.

/// Everything the image store can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// A reference (image name) that cannot be parsed.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No image has this name in the store.
    #[error("image not found: {0}")]
    NotFound(String),
    /// A digest prefix that matches several images, or an image removed by digest that has
    /// several names (without force).
    #[error("{reference} is ambiguous: it matches {matches}")]
    Ambiguous {
        /// The name or digest as given.
        reference: String,
        /// What it matches.
        matches: String,
    },
    /// Installing over an existing name without asking for an update.
    #[error("image {0} is already installed (install with update to replace it)")]
    Exists(String),
    /// Removing an image that containers use, without force.
    #[error("image {name} is in use by {users} (remove it with force)")]
    InUse {
        /// The image's name.
        name: String,
        /// The users (container ids) holding it, comma-separated.
        users: String,
    },
    /// A blob whose content does not match its descriptor (digest or size), or that is missing.
    #[error("blob {digest}: {reason}")]
    Blob {
        /// The digest the descriptor (or the image config) gives.
        digest: String,
        /// What is wrong: e.g. the digest the content really has.
        reason: String,
    },
    /// A tar entry that is refused (it would land outside the target, or cannot be represented).
    #[error("{archive}: tar entry {entry:?}: {reason}")]
    Entry {
        /// The archive or layer the entry is in.
        archive: String,
        /// The entry's path as written in the tar.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// An archive, layout, manifest or config that is malformed or not supported.
    #[error("{what}: {reason}")]
    Format {
        /// The file or document, e.g. `index.json of /srv/img`.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Pulling from a registry failed.
    #[error("pull {reference}: {reason}")]
    Registry {
        /// The reference being pulled.
        reference: String,
        /// What failed.
        reason: String,
    },
    /// A registry refused the credentials, or wants some.
    #[error("registry {registry}: {reason}")]
    RegistryAuth {
        /// The registry host.
        registry: String,
        /// What it said, and how to give credentials.
        reason: String,
    },
    /// An image index has no image for this host's platform.
    #[error("{reference}: no image for {platform} (the index has: {available})")]
    NoMatchingPlatform {
        /// The reference pulled.
        reference: String,
        /// This host's platform, e.g. `linux/amd64`.
        platform: String,
        /// The platforms the index offers.
        available: String,
    },
    /// A system call or file operation failed while doing `context`.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing, e.g. `create /var/lib/husk/tmp`.
        context: String,
        /// The error, with its errno.
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    /// The errno behind this error, when a system call failed.
    pub fn errno(&self) -> Option<i32> {
        match self {
            ImageError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn format(what: impl Into<String>, reason: impl Into<String>) -> ImageError {
        ImageError::Format {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn blob(digest: impl Into<String>, reason: impl Into<String>) -> ImageError {
        ImageError::Blob {
            digest: digest.into(),
            reason: reason.into(),
        }
    }
}

/// Adds context to io and nix errors.
pub(crate) trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, ImageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, ImageError> {
        self.map_err(|source| ImageError::Io {
            context: what(),
            source,
        })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, ImageError> {
        self.map_err(|e| ImageError::Io {
            context: what(),
            source: std::io::Error::from_raw_os_error(e as i32),
        })
    }
}

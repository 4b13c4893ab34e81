//! Image references, normalised as docker and containerd do: `busybox` is
//! `docker.io/library/busybox:latest`, `index.docker.io` is `docker.io`, a reference without a
//! tag or digest gets `:latest`, a registry host may carry a port (`localhost:5000/app`), and a
//! digest (`@sha256:<64 hex>`) may follow the tag.
//!
//! The grammar and the normalisation are `oci-spec`'s (`oci_spec::distribution::Reference`,
//! a port of the distribution project's rules); this type adds one-line errors that name the
//! reference, a clearer message for the common uppercase mistake, and the store's key
//! ([`Reference::normalized`]).

use std::fmt;
use std::str::FromStr;

use oci_spec::distribution::{ParseError, Reference as OciReference};

use super::ImageError;

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    inner: OciReference,
}

impl Reference {
    /// Parses and normalises `text` (`busybox`, `alpine:3.19`, `localhost:5000/app@sha256:...`).
    pub fn parse(text: &str) -> Result<Reference, ImageError> {
        let invalid = |reason: String| ImageError::InvalidReference {
            reference: text.to_string(),
            reason,
        };
        if text.trim() != text || text.is_empty() {
            return Err(invalid("empty, or leading or trailing white space".into()));
        }
        match OciReference::from_str(text) {
            Ok(inner) => Ok(Reference { inner }),
            Err(ParseError::ReferenceInvalidFormat) => {
                // The repository path must be lowercase; the registry host and the tag need not be.
                let without_digest = text.split('@').next().unwrap_or(text);
                let rest = match without_digest.split_once('/') {
                    Some((host, r)) if host.contains(['.', ':']) || host == "localhost" => r,
                    _ => without_digest,
                };
                let path = match rest.rsplit_once(':') {
                    Some((p, _tag)) if !p.is_empty() => p,
                    _ => rest,
                };
                let bad_digest = text.split_once('@').is_some_and(|(_, d)| {
                    !d.split_once(':').is_some_and(|(alg, hex)| {
                        !alg.is_empty()
                            && hex.len() >= 32
                            && hex.bytes().all(|b| b.is_ascii_hexdigit())
                    })
                });
                if bad_digest {
                    Err(invalid(
                        "malformed digest (want @sha256:<64 hex digits>)".into(),
                    ))
                } else if path.chars().any(|c| c.is_ascii_uppercase()) {
                    Err(invalid("repository name must be lowercase".into()))
                } else {
                    Err(invalid(
                        "not [registry[:port]/]repository[:tag][@digest], with a lowercase \
                         repository of letters, digits and separators (. _ __ -)"
                            .into(),
                    ))
                }
            }
            Err(e) => Err(invalid(e.to_string())),
        }
    }

    /// The registry host, with its port if any (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository path within the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, if any (`latest` when the reference had neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The digest, if any (`sha256:...`).
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The full normalised form (`docker.io/library/busybox:latest`): the store's key for names.
    pub fn normalized(&self) -> String {
        self.inner.whole()
    }

    /// The `oci-spec` reference (what registry clients take).
    pub fn as_oci(&self) -> &OciReference {
        &self.inner
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

impl FromStr for Reference {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Reference, ImageError> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        for (given, want) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("index.docker.io/foo/bar", "docker.io/foo/bar:latest"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/app:v1", "localhost:5000/app:v1"),
            ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000/a/b/c:latest"),
            ("ghcr.io/Org/x", "ghcr.io/Org/x:latest"),
        ] {
            // The last one: the host part is not the path; docker accepts an uppercase host only.
            if given == "ghcr.io/Org/x" {
                assert!(Reference::parse(given).is_err(), "{given}");
                continue;
            }
            assert_eq!(
                Reference::parse(given).unwrap().normalized(),
                want,
                "{given}"
            );
        }
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{digest}")).unwrap();
        assert_eq!(
            r.normalized(),
            format!("docker.io/library/busybox@{digest}")
        );
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(digest.as_str()));
    }

    #[test]
    fn malformed_references_are_refused_with_a_reason() {
        for (given, reason) in [
            ("", "empty"),
            ("BusyBox", "lowercase"),
            ("busybox:", "repository"),
            ("a//b", "repository"),
            ("busybox@sha256:abc", "digest"),
            ("busybox@md5:0123456789abcdef0123456789abcdef", "digest"),
            (" busybox", "white space"),
            ("-x", "repository"),
        ] {
            let e = Reference::parse(given).unwrap_err().to_string();
            assert!(e.contains(&format!("{given:?}")), "{e}");
            assert!(e.contains(reason), "{given}: {e}");
        }
    }
}

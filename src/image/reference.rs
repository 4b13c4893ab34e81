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
        if let Some(inner) = parse_common(text) {
            return Ok(Reference { inner });
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

/// The common forms (`name`, `name:tag`, `host[:port]/path[:tag]`: lowercase, no digest) parsed
/// without `oci-spec`'s regular expression, whose compilation costs about 110 ms per process in a
/// release build: more than all the rest of `husk run --image` (measured with strace, 2026-12-07).
/// Anything this does not accept (a digest, uppercase, `__` or `--` separators, an unusual host)
/// goes to `oci-spec`; a unit test checks that both agree on everything this accepts.
fn parse_common(text: &str) -> Option<OciReference> {
    if text.contains('@') {
        return None;
    }
    let (name, tag) = match text.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (text, None),
    };
    if tag.is_some_and(|t| !is_common_tag(t)) {
        return None;
    }
    let (host, path) = match name.split_once('/') {
        Some((host, path)) if host.contains(['.', ':']) || host == "localhost" => {
            (Some(host), path)
        }
        _ => (None, name),
    };
    if host.is_some_and(|h| !is_common_host(h)) || path.is_empty() {
        return None;
    }
    if !path.split('/').all(is_common_path_component) {
        return None;
    }
    let registry = match host {
        None | Some("index.docker.io") => "docker.io",
        Some(host) => host,
    };
    let repository = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    if repository.len() > 255 {
        return None;
    }
    Some(OciReference::with_tag(
        registry.to_string(),
        repository,
        tag.unwrap_or("latest").to_string(),
    ))
}

/// 1 to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
fn is_common_tag(tag: &str) -> bool {
    (1..=128).contains(&tag.len())
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Runs of `[a-z0-9]` joined by single `.`, `_` or `-`.
fn is_common_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.windows(2).all(|w| alnum(&w[0]) || alnum(&w[1]))
        && bytes.iter().all(|b| alnum(b) || b"._-".contains(b))
}

/// Lowercase DNS labels joined by `.`, with an optional numeric port.
fn is_common_host(host: &str) -> bool {
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let label_ok = |label: &str| {
        let b = label.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        b.first().is_some_and(alnum)
            && b.last().is_some_and(alnum)
            && b.iter().all(|c| alnum(c) || *c == b'-')
    };
    name.split('.').all(label_ok)
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
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

    /// The fast path agrees with oci-spec on everything it accepts, and accepts the usual forms.
    #[test]
    fn common_forms_parse_as_oci_spec_parses_them() {
        let usual = [
            "busybox",
            "busybox:1.36",
            "library/busybox",
            "docker.io/library/busybox:latest",
            "index.docker.io/library/busybox",
            "localhost/app",
            "localhost:5000/app",
            "127.0.0.1:5000/test/busybox:1",
            "ghcr.io/owner/repo-name_x.y:v1.2-rc",
            "quay.io/a/b/c/d:_tag",
        ];
        for text in usual {
            let fast = parse_common(text).unwrap_or_else(|| panic!("{text} not on the fast path"));
            assert_eq!(fast, OciReference::from_str(text).unwrap(), "{text}");
        }
        // Generated strings over the grammar's alphabet: whatever the fast path accepts, oci-spec
        // accepts with the same result.
        let alphabet = b"abz09AZ._-_:/@";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut accepted = 0;
        for _ in 0..50_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 1 + (state >> 60) as usize;
            let text: String = (0..len)
                .map(|i| {
                    alphabet[((state >> (i * 4 % 56)) & 0xf) as usize % alphabet.len()] as char
                })
                .collect();
            if let Some(fast) = parse_common(&text) {
                accepted += 1;
                assert_eq!(Some(fast), OciReference::from_str(&text).ok(), "{text:?}");
            }
        }
        assert!(
            accepted > 1000,
            "the generator hardly reaches the fast path ({accepted})"
        );
    }

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

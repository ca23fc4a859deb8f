//! Who may write: the site token (needed when the page listens beyond loopback) and a guard
//! against other web sites posting into the page from a browser on the plant network.

use std::{net::SocketAddr, path::Path};

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use super::SitePageError;
use crate::config::LocalConfig;

/// The site token, when writes (and, by config, reads) need one.
#[derive(Clone)]
pub struct Access {
    token: Option<String>,
    protect_reads: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("protect_reads", &self.protect_reads)
            .finish()
    }
}

impl Access {
    /// No token: every write from this machine is accepted (loopback only).
    pub fn open() -> Self {
        Self {
            token: None,
            protect_reads: false,
        }
    }

    /// Writes need `token`.
    pub fn with_token(token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            protect_reads: false,
        }
    }

    /// Reads need the token too (`[local] protect_reads`).
    #[must_use]
    pub fn protecting_reads(mut self) -> Self {
        self.protect_reads = self.token.is_some();
        self
    }

    /// Reads `[local] token_file`; refuses a listen address beyond loopback without one.
    pub fn from_config(local: &LocalConfig) -> Result<Self, SitePageError> {
        match &local.token_file {
            Some(path) if local.protect_reads => {
                Ok(Self::with_token(read_token(path)?).protecting_reads())
            }
            Some(path) => Ok(Self::with_token(read_token(path)?)),
            None if local.listen.ip().is_loopback() => Ok(Self::open()),
            None => Err(SitePageError::TokenRequired {
                listen: local.listen,
            }),
        }
    }

    /// Whether writes need the token (the page then shows a "site code" field).
    pub fn needs_token(&self) -> bool {
        self.token.is_some()
    }

    /// Accepts a write carrying the token in `Authorization: Bearer ...`, as the password of
    /// `Authorization: Basic ...` (what a browser sends once asked), or in a form field.
    pub fn allows(&self, headers: &HeaderMap, form_token: Option<&str>) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let given = presented(headers)
            .or(form_token.map(|t| t.trim().to_owned()))
            .unwrap_or_default();
        bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
    }

    /// Whether a read may go ahead: always, unless reads are protected and the request
    /// carries no valid token.
    pub fn allows_read(&self, headers: &HeaderMap) -> bool {
        !self.protect_reads || self.allows(headers, None)
    }
}

/// The token in `Authorization`: a bearer token, or the password of HTTP Basic (any user
/// name), so a browser on the plant LAN can ask for the site code once and remember it.
fn presented(headers: &HeaderMap) -> Option<String> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_owned());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_user, password) = text.split_once(':')?;
    Some(password.trim().to_owned())
}

fn read_token(path: &Path) -> Result<String, SitePageError> {
    crate::warn_if_world_readable(path);
    let text = std::fs::read_to_string(path).map_err(|source| SitePageError::TokenFile {
        path: path.to_path_buf(),
        why: source.to_string(),
    })?;
    let token = text.trim();
    if token.len() < 8 {
        return Err(SitePageError::TokenFile {
            path: path.to_path_buf(),
            why: "the token is empty or shorter than 8 characters".into(),
        });
    }
    Ok(token.to_owned())
}

/// True when a browser says the write comes from another web site (CSRF). Scripts (curl,
/// cron jobs) send neither header and pass.
pub fn cross_site(headers: &HeaderMap) -> bool {
    // Browsers since 2020-2023 say where a request comes from; trust that first. The Origin is
    // only a fallback: with `Referrer-Policy: no-referrer` a browser sends `Origin: null` even
    // for the page's own forms.
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "cross-site" | "same-site");
    }
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
    else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or(origin);
    origin_host != host
}

/// The address to show in messages and logs.
pub fn describe(listen: SocketAddr) -> String {
    format!("http://{listen}/")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_token_is_checked_from_header_or_form() {
        let access = Access::with_token("s3cret-token");
        let mut headers = HeaderMap::new();
        assert!(!access.allows(&headers, None));
        assert!(access.allows(&headers, Some("s3cret-token")));
        assert!(!access.allows(&headers, Some("s3cret-tokem")));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret-token"),
        );
        assert!(access.allows(&headers, None));
        assert!(Access::open().allows(&HeaderMap::new(), None));
    }

    #[test]
    fn other_sites_cannot_post() {
        let mut headers = HeaderMap::new();
        assert!(!cross_site(&headers), "curl sends no origin");
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9470"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9470"),
        );
        assert!(!cross_site(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(
            !cross_site(&headers),
            "the page's own form under no-referrer"
        );
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(cross_site(&headers), "another port on the same host");
    }
}

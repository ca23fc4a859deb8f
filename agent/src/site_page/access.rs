//! Who may write: the site token (needed when the page listens beyond loopback) and a guard
//! against other web sites posting into the page from a browser on the plant network.

use std::{net::SocketAddr, path::Path};

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use super::SitePageError;
use crate::config::LocalConfig;

/// The site token, when writes need one.
#[derive(Clone)]
pub struct Access {
    token: Option<String>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Access {
    /// No token: every write from this machine is accepted (loopback only).
    pub fn open() -> Self {
        Self { token: None }
    }

    /// Writes need `token`.
    pub fn with_token(token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
        }
    }

    /// Reads `[local] token_file`; refuses a listen address beyond loopback without one.
    pub fn from_config(local: &LocalConfig) -> Result<Self, SitePageError> {
        match &local.token_file {
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

    /// Accepts a write carrying the token in `Authorization: Bearer ...` or a form field.
    pub fn allows(&self, headers: &HeaderMap, form_token: Option<&str>) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let given = bearer.or(form_token.map(str::trim)).unwrap_or_default();
        bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
    }
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

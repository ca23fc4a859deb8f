//! Bearer tokens: a read token for viewing, a write token for actions. Compared in constant
//! time. Taken from `Authorization: Bearer ...` or the dashboard's `outpost_token` cookie.

use axum::{
    extract::{Request, State},
    http::{Method, header},
    middleware::Next,
    response::Response,
};
use subtle::ConstantTimeEq;

use super::{ApiState, error::ApiError};

/// The configured tokens. With none, the API is open (and only served on loopback).
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Needed to read (the write token also reads).
    pub read: Option<String>,
    /// Needed to act; falls back to the read token when unset.
    pub write: Option<String>,
}

impl Tokens {
    /// Whether `given` may read.
    pub fn may_read(&self, given: Option<&str>) -> bool {
        match &self.read {
            None => true,
            Some(read) => given.is_some_and(|g| {
                same(g, read) || self.write.as_deref().is_some_and(|w| same(g, w))
            }),
        }
    }

    /// Whether `given` may act.
    pub fn may_write(&self, given: Option<&str>) -> bool {
        match self.write.as_ref().or(self.read.as_ref()) {
            None => true,
            Some(token) => given.is_some_and(|g| same(g, token)),
        }
    }

    /// Whether any token is configured.
    pub fn any(&self) -> bool {
        self.read.is_some() || self.write.is_some()
    }
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The token a request carries, if any.
pub fn presented(request: &Request) -> Option<String> {
    let headers = request.headers();
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(token) = value.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("outpost_token=").map(str::to_owned))
}

/// Middleware: GET/HEAD need the read token, everything else the write token.
pub async fn require(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = presented(&request);
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    let allowed = if reading {
        state.tokens.may_read(token.as_deref())
    } else {
        state.tokens.may_write(token.as_deref())
    };
    if allowed {
        Ok(next.run(request).await)
    } else if reading {
        Err(ApiError::unauthorized(
            "this needs the collector's read token: send `Authorization: Bearer <token>`",
        ))
    } else {
        Err(ApiError::unauthorized(
            "this action needs the collector's write token: send `Authorization: Bearer <token>`",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_table() {
        let open = Tokens::default();
        assert!(open.may_read(None) && open.may_write(None));
        let both = Tokens {
            read: Some("r".into()),
            write: Some("w".into()),
        };
        assert!(!both.may_read(None));
        assert!(both.may_read(Some("r")) && both.may_read(Some("w")));
        assert!(!both.may_write(Some("r")));
        assert!(both.may_write(Some("w")));
        assert!(!both.may_read(Some("rr")));
        let read_only = Tokens {
            read: Some("r".into()),
            write: None,
        };
        assert!(read_only.may_write(Some("r")) && !read_only.may_write(None));
    }
}

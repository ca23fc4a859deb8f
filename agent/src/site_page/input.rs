//! Reading what people and jobs send (a JSON body or a plain HTML form) and answering in the
//! same language: JSON for scripts, a redirect back to the page (or an error page) for forms.

use axum::{
    Json,
    extract::Request,
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::de::DeserializeOwned;

use super::html::escape;
use crate::live::LiveError;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 16 * 1024;
/// Longest name accepted.
pub const MAX_NAME: usize = 80;
/// Longest note text accepted.
pub const MAX_TEXT: usize = 1000;

/// How the request came, and so how to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A plain HTML form post: answer with a redirect or an HTML error page.
    Form,
    /// JSON (or no body): answer with JSON.
    Json,
}

/// A refused request, answered as JSON `{"error": ...}` or as a short HTML page.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    format: Format,
}

impl ApiError {
    /// An error with `status` and a message for the person reading it.
    pub fn new(status: StatusCode, message: impl Into<String>, format: Format) -> Self {
        Self {
            status,
            message: message.into(),
            format,
        }
    }

    /// 400 Bad Request.
    pub fn bad(message: impl Into<String>, format: Format) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, format)
    }

    /// The live state's refusal, with the right status code.
    pub fn from_live(err: &LiveError, format: Format) -> Self {
        let status = match err {
            LiveError::UnknownCheck(_) => StatusCode::NOT_FOUND,
            LiveError::WrongKind { .. } | LiveError::Invalid(_) => StatusCode::BAD_REQUEST,
            LiveError::NoOutbox => StatusCode::SERVICE_UNAVAILABLE,
            LiveError::Outbox(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %err, "the site page could not save a note");
        }
        let message = match err {
            LiveError::Outbox(e) => format!("the agent could not save this: {e}"),
            other => other.to_string(),
        };
        Self::new(status, message, format)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.format {
            Format::Json => (
                self.status,
                Json(serde_json::json!({ "error": self.message })),
            )
                .into_response(),
            Format::Form => (
                self.status,
                Html(format!(
                    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                     <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
                     <title>Not sent</title><link rel=\"stylesheet\" href=\"/site.css\"></head>\
                     <body><main><h1>Not sent</h1><p class=\"error\" role=\"alert\">{}</p>\
                     <p><a class=\"button\" href=\"/\">Back to the status page</a></p>\
                     </main></body></html>",
                    escape(&self.message)
                )),
            )
                .into_response(),
        }
    }
}

/// What went well, answered as `{"ok": true, ...}` or a 303 redirect back to the page.
pub fn done(format: Format, sent: &str, anchor: &str, json: serde_json::Value) -> Response {
    match format {
        Format::Json => Json(json).into_response(),
        Format::Form => Redirect::to(&format!("/?sent={sent}#{anchor}")).into_response(),
    }
}

/// Reads the body as `T` from JSON or an HTML form; an empty body gives `T::default()`.
/// `expected` describes the JSON shape for the error message.
pub async fn read<T: DeserializeOwned + Default>(
    request: Request,
    expected: &str,
) -> Result<(Format, T), ApiError> {
    let format = format_of(request.headers());
    let content_type = content_type(request.headers());
    let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request is larger than {} KB; shorten the text",
                    BODY_LIMIT / 1024
                ),
                format,
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok((format, T::default()));
    }
    let value = match content_type.as_str() {
        "application/x-www-form-urlencoded" => serde_urlencoded::from_bytes(&bytes)
            .map_err(|err| ApiError::bad(format!("the form is not valid: {err}"), format))?,
        "application/json" | "" => {
            let expected = |why: &dyn std::fmt::Display| {
                ApiError::bad(
                    format!("expected a JSON object like {expected}: {why}"),
                    format,
                )
            };
            // serde would also read a JSON array into the fields, in order: refuse that.
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(expected(&"the body is not a JSON object"));
            }
            serde_json::from_slice(&bytes).map_err(|err| expected(&err))?
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "cannot read {other:?}; send JSON (Content-Type: application/json) \
                     or an HTML form"
                ),
                format,
            ));
        }
    };
    Ok((format, value))
}

/// Forms are answered for people; everything else as JSON.
pub fn format_of(headers: &HeaderMap) -> Format {
    if content_type(headers) == "application/x-www-form-urlencoded" {
        Format::Form
    } else {
        Format::Json
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A person's name: trimmed, present, at most [`MAX_NAME`] characters.
pub fn name(by: &str, format: Format) -> Result<String, ApiError> {
    let by = by.trim();
    if by.is_empty() {
        return Err(ApiError::bad(
            "Please write your name, so IT knows whom to ask.",
            format,
        ));
    }
    if by.chars().count() > MAX_NAME {
        return Err(ApiError::bad(
            format!("The name is longer than {MAX_NAME} characters; shorten it."),
            format,
        ));
    }
    Ok(by.to_owned())
}

/// A note's text: trimmed, at most [`MAX_TEXT`] characters (it may be empty).
pub fn text(text: &str, format: Format) -> Result<String, ApiError> {
    let text = text.trim();
    if text.chars().count() > MAX_TEXT {
        return Err(ApiError::bad(
            format!(
                "The text is {} characters long; at most {MAX_TEXT} fit. Shorten it.",
                text.chars().count()
            ),
            format,
        ));
    }
    Ok(text.to_owned())
}

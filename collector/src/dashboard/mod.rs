//! The central IT dashboard: a single page (fleet, escalation, site and report views) built on
//! the JSON API, with every asset embedded in the binary (no CDN, no inline script: the API's
//! CSP forbids it), and a small login form that stores the token in an HttpOnly cookie so the
//! token never appears in a URL.

use axum::{
    Form, Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;

use crate::api::ApiState;

/// The page shell; `app.js` renders the views into it.
const INDEX_HTML: &str = include_str!("index.html");
/// The login form; `{{error}}` is replaced by a fixed message (never by user input).
const LOGIN_HTML: &str = include_str!("login.html");
/// The dashboard's entry module: router, live stream, ticker.
const APP_JS: &str = include_str!("app.js");
/// The views and helpers, served under `/js/` as ES modules.
const MODULES: [(&str, &str); 6] = [
    ("core.js", include_str!("js/core.js")),
    ("fleet.js", include_str!("js/fleet.js")),
    ("escalation.js", include_str!("js/escalation.js")),
    ("chart.js", include_str!("js/chart.js")),
    ("site.js", include_str!("js/site.js")),
    ("report.js", include_str!("js/report.js")),
];
const JS: &str = "text/javascript; charset=utf-8";
/// The dashboard's styles.
const STYLE_CSS: &str = include_str!("style.css");

/// Name of the cookie that carries the API token (the API reads it too).
pub const TOKEN_COOKIE: &str = "outpost_token";

/// The dashboard's routes: `/`, its assets, `/login`, `/logout`, and friendly links
/// (`/escalations/{id}`, `/sites/{site}`, `/report`) that open the matching view.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(|| async { asset(APP_JS, JS) }))
        .route("/js/{file}", get(module))
        .route(
            "/style.css",
            get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/login", get(login_page).post(login))
        .route("/logout", get(logout).post(logout))
        .route(
            "/escalations/{id}",
            get(|Path(id): Path<u64>| async move { Redirect::to(&format!("/#/escalations/{id}")) }),
        )
        .route("/sites/{site}", get(site_link))
        .route("/report", get(|| async { Redirect::to("/#/report") }))
        .layer(middleware::from_fn(crate::api::security_headers))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Embedded assets change with the binary: always revalidate.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn module(Path(file): Path<String>) -> Response {
    match MODULES.iter().find(|(name, _)| *name == file) {
        Some((_, body)) => asset(body, JS),
        None => (StatusCode::NOT_FOUND, "no such dashboard file").into_response(),
    }
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The token a request carries: `Authorization: Bearer` or the `outpost_token` cookie.
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(token.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(TOKEN_COOKIE)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_owned)
        })
}

async fn index(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if !state.tokens.may_read(presented(&headers).as_deref()) {
        return Redirect::to("/login").into_response();
    }
    html(StatusCode::OK, INDEX_HTML.to_owned())
}

fn login_form(status: StatusCode, error: &str) -> Response {
    let message = if error.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{error}</p>")
    };
    html(status, LOGIN_HTML.replace("{{error}}", &message))
}

async fn login_page(State(state): State<ApiState>) -> Response {
    if !state.tokens.any() {
        return Redirect::to("/").into_response();
    }
    login_form(StatusCode::OK, "")
}

/// `POST /login` form body.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
}

async fn login(State(state): State<ApiState>, Form(form): Form<LoginForm>) -> Response {
    let token = form.token.trim();
    // A cookie value must stay a single plain token.
    let plain = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'"');
    if !plain || !state.tokens.may_read(Some(token)) {
        return login_form(
            StatusCode::UNAUTHORIZED,
            "That token is not valid for this collector. Use the read or write token from its configuration.",
        );
    }
    let cookie = format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    let mut response = Redirect::to("/").into_response();
    match HeaderValue::from_str(&cookie) {
        Ok(value) => {
            response.headers_mut().insert(header::SET_COOKIE, value);
            response
        }
        Err(_) => login_form(StatusCode::BAD_REQUEST, "That token cannot be stored."),
    }
}

async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("outpost_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

async fn site_link(Path(site): Path<String>) -> Response {
    match outpost_shared::SiteId::new(site) {
        Ok(site) => Redirect::to(&format!("/#/sites/{site}")).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

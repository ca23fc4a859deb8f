//! A minimal Chrome DevTools Protocol client for browser tests: launches headless Chromium
//! with a throw-away profile, drives one page (navigate, evaluate, wait, click, type,
//! screenshot, cookies) and kills the browser's whole process group on drop.
//!
//! Tests skip (return early, with a message) when `/usr/bin/chromium` is not installed:
//! `let Some(mut browser) = Browser::launch().await? else { return Ok(()) };`

use std::{
    collections::VecDeque,
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    net::TcpStream,
    process::{Child, Command},
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

/// Where the browser is expected (Debian's `chromium` package).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long one DevTools command may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Events kept for `wait_event`; older ones are dropped.
const EVENT_BUFFER: usize = 512;

/// A headless Chromium with one attached page. Dropping it kills the browser.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: String,
    events: VecDeque<Value>,
}

impl Browser {
    /// Whether Chromium is installed where the tests expect it.
    pub fn available() -> bool {
        Path::new(CHROMIUM).exists()
    }

    /// Starts Chromium (1280×900) and attaches to a blank page. `Ok(None)` (after printing why)
    /// when Chromium is not installed, so the calling test can skip.
    pub async fn launch() -> anyhow::Result<Option<Self>> {
        if !Self::available() {
            eprintln!(
                "SKIPPED: {CHROMIUM} is not installed; install it (apt-get install chromium) to run browser tests"
            );
            return Ok(None);
        }
        let profile = tempfile::tempdir().context("creating a temporary Chromium profile")?;
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-crash-reporter",
                "--disable-breakpad",
                "--disable-extensions",
                "--mute-audio",
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {CHROMIUM}"))?;
        let stderr = child.stderr.take().context("Chromium's stderr is piped")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("DevTools listening on ").nth(1) {
                    return Some(rest.trim().to_owned());
                }
                seen.push(line);
            }
            None
        })
        .await;
        let Ok(Some(url)) = found else {
            let _ = child.start_kill();
            bail!(
                "Chromium did not print its DevTools address within 30 s; its stderr said:\n{}",
                seen.join("\n")
            );
        };
        // Keep draining stderr: a full pipe would block the browser.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .with_context(|| format!("connecting to Chromium's DevTools at {url}"))?;
        let mut browser = Self {
            child,
            _profile: profile,
            ws,
            next_id: 0,
            session: String::new(),
            events: VecDeque::new(),
        };
        let target = browser
            .send(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await?;
        let target_id = target["targetId"]
            .as_str()
            .context("Target.createTarget answered without a targetId")?
            .to_owned();
        let attached = browser
            .send(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await?;
        browser.session = attached["sessionId"]
            .as_str()
            .context("Target.attachToTarget answered without a sessionId")?
            .to_owned();
        browser.call("Page.enable", json!({})).await?;
        browser.call("Runtime.enable", json!({})).await?;
        Ok(Some(browser))
    }

    /// Sends one DevTools command to the page and returns its result.
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let session = self.session.clone();
        self.send(Some(&session), method, params).await
    }

    async fn send(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .with_context(|| format!("sending {method} to Chromium"))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let message = self.next_message(deadline, method).await?;
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    bail!("Chromium refused {method}: {error}");
                }
                return Ok(message["result"].clone());
            }
            if message.get("method").is_some() {
                self.remember(message);
            }
        }
    }

    async fn next_message(
        &mut self,
        deadline: Instant,
        waiting_for: &str,
    ) -> anyhow::Result<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        loop {
            let frame = tokio::time::timeout(left, self.ws.next())
                .await
                .map_err(|_| anyhow!("Chromium did not answer {waiting_for} in time"))?
                .ok_or_else(|| anyhow!("Chromium closed the DevTools connection"))?
                .context("reading from Chromium's DevTools connection")?;
            if let Message::Text(text) = frame {
                return serde_json::from_str(text.as_str())
                    .context("Chromium sent a DevTools message that is not JSON");
            }
        }
    }

    fn remember(&mut self, event: Value) {
        if self.events.len() == EVENT_BUFFER {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Waits for a page event (`Page.loadEventFired`, ...) that arrived since the last wait.
    pub async fn wait_event(&mut self, method: &str, timeout: Duration) -> anyhow::Result<Value> {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            let event = self.events.remove(i).expect("the position was just found");
            return Ok(event["params"].clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let message = self.next_message(deadline, method).await?;
            if message["method"] == method {
                return Ok(message["params"].clone());
            }
            if message.get("method").is_some() {
                self.remember(message);
            }
        }
    }

    /// Loads `url` and waits for its load event (returns at once for a same-page `#` change).
    pub async fn navigate(&mut self, url: &str) -> anyhow::Result<()> {
        self.events.retain(|e| e["method"] != "Page.loadEventFired");
        let answer = self.call("Page.navigate", json!({"url": url})).await?;
        if let Some(error) = answer["errorText"].as_str() {
            bail!("Chromium could not load {url}: {error}");
        }
        if answer.get("loaderId").is_some() {
            self.wait_event("Page.loadEventFired", CALL_TIMEOUT)
                .await
                .with_context(|| format!("waiting for {url} to load"))?;
        }
        Ok(())
    }

    /// Evaluates a JavaScript expression in the page (promises awaited) and returns its value.
    pub async fn evaluate(&mut self, js: &str) -> anyhow::Result<Value> {
        let answer = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(details) = answer.get("exceptionDetails") {
            let text = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())
                .unwrap_or("an exception");
            bail!("JavaScript `{js}` threw: {text}");
        }
        Ok(answer["result"]
            .get("value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Polls `condition` (a JavaScript expression) until it is truthy or `timeout` passes; the
    /// error shows the page's text so a failing test says what the page showed instead.
    pub async fn wait_for(&mut self, condition: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let probe = format!(
            "(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"
        );
        loop {
            if self.evaluate(&probe).await? == Value::Bool(true) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let text = self.text().await.unwrap_or_default();
                bail!(
                    "waited {timeout:?} for `{condition}`; the page shows:\n{}",
                    text.chars().take(2000).collect::<String>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's visible text (`document.body.innerText`).
    pub async fn text(&mut self) -> anyhow::Result<String> {
        let value = self
            .evaluate("document.body ? document.body.innerText : ''")
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// Clicks the first element matching a CSS selector.
    pub async fn click(&mut self, selector: &str) -> anyhow::Result<()> {
        let js = format!(
            "(() => {{ const el = document.querySelector({s}); if (!el) return false; el.click(); return true; }})()",
            s = json!(selector)
        );
        if self.evaluate(&js).await? != Value::Bool(true) {
            bail!("nothing on the page matches {selector:?} to click");
        }
        Ok(())
    }

    /// Sets the value of the first input matching `selector`, as if typed (input and change
    /// events fire).
    pub async fn type_text(&mut self, selector: &str, text: &str) -> anyhow::Result<()> {
        let js = format!(
            "(() => {{ const el = document.querySelector({s}); if (!el) return false; el.focus(); el.value = {t}; \
             el.dispatchEvent(new Event('input', {{bubbles: true}})); el.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
            s = json!(selector),
            t = json!(text)
        );
        if self.evaluate(&js).await? != Value::Bool(true) {
            bail!("nothing on the page matches {selector:?} to type into");
        }
        Ok(())
    }

    /// Saves a PNG screenshot of the viewport (creating the folder).
    pub async fn screenshot(&mut self, path: &Path) -> anyhow::Result<()> {
        let answer = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await?;
        let data = answer["data"]
            .as_str()
            .context("Page.captureScreenshot answered without data")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .context("Chromium's screenshot is not base64")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Sets a cookie for `url` (e.g. a session cookie before the first navigation).
    pub async fn set_cookie(&mut self, name: &str, value: &str, url: &str) -> anyhow::Result<()> {
        let answer = self
            .call(
                "Network.setCookie",
                json!({"name": name, "value": value, "url": url}),
            )
            .await?;
        if answer["success"] == Value::Bool(false) {
            bail!("Chromium refused the cookie {name} for {url}");
        }
        Ok(())
    }

    /// Removes every cookie of the browser profile.
    pub async fn clear_cookies(&mut self) -> anyhow::Result<()> {
        self.call("Network.clearBrowserCookies", json!({})).await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium runs helpers (zygote, renderers) in its process group: end them all.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.start_kill();
    }
}

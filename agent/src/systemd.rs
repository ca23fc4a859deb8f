//! Telling systemd how the service is doing (`sd_notify`): `READY=1` once it serves, then
//! `WATCHDOG=1` at half the unit's `WatchdogSec`, so a process whose runtime has hung is
//! restarted. Used by the agent and the collector; does nothing outside systemd.

use std::{os::unix::net::UnixDatagram, path::Path, time::Duration};

use tokio_util::sync::CancellationToken;

/// Where systemd listens (`$NOTIFY_SOCKET`) and how often it wants a sign of life
/// (`$WATCHDOG_USEC`), read once at start.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<String>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd gives a `Type=notify` service (empty outside systemd).
    pub fn from_env() -> Self {
        Self::new(
            std::env::var("NOTIFY_SOCKET").ok(),
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
        )
    }

    /// From the two values systemd passes (a socket path, `@abstract` name; microseconds).
    pub fn new(socket: Option<String>, watchdog_usec: Option<&str>) -> Self {
        let watchdog = watchdog_usec
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|us| *us > 0)
            .map(Duration::from_micros);
        Self {
            socket: socket.filter(|s| !s.is_empty()),
            watchdog,
        }
    }

    /// Sends one state line (`READY=1`, `STOPPING=1`, ...). Failures are logged once and
    /// otherwise ignored: monitoring must never stop the service.
    pub fn notify(&self, state: &str) {
        let Some(socket) = &self.socket else { return };
        if let Err(err) = send(socket, state) {
            tracing::debug!(socket = %socket, error = %err, "cannot notify systemd");
        }
    }

    /// Says `READY=1`, then keeps saying `WATCHDOG=1` while the runtime runs, until `cancel`.
    pub fn ready_and_watch(self, cancel: CancellationToken) {
        self.notify("READY=1");
        let Some(every) = self.watchdog.map(|w| w / 2) else {
            return;
        };
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => {
                        self.notify("STOPPING=1");
                        return;
                    }
                    _ = tick.tick() => self.notify("WATCHDOG=1"),
                }
            }
        });
    }
}

fn send(socket: &str, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = socket.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt as _;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), Path::new(socket))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ready_then_watchdog_pings_at_half_the_interval() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).expect("bind");
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let notifier = Notifier::new(Some(path.display().to_string()), Some("200000"));
        assert_eq!(notifier.watchdog, Some(Duration::from_millis(200)));
        let cancel = CancellationToken::new();
        notifier.ready_and_watch(cancel.clone());
        let got = tokio::task::spawn_blocking(move || {
            let got = [receive(&listener), receive(&listener), receive(&listener)];
            (got, listener)
        })
        .await
        .expect("receiver");
        assert_eq!(got.0, ["READY=1", "WATCHDOG=1", "WATCHDOG=1"]);
        cancel.cancel();
        // A ping already on its way may come first; then the goodbye.
        let last = std::iter::repeat_with(|| receive(&got.1))
            .find(|m| m != "WATCHDOG=1")
            .expect("a message");
        assert_eq!(last, "STOPPING=1");
    }

    #[test]
    fn outside_systemd_nothing_happens() {
        let n = Notifier::new(None, None);
        n.notify("READY=1");
        assert!(n.watchdog.is_none());
        assert!(
            Notifier::new(Some(String::new()), Some("0"))
                .socket
                .is_none()
        );
    }
}

//! The collector's embedded broker in a process of its own, so tests can stop and kill it.

use std::net::SocketAddr;

fn main() -> anyhow::Result<()> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1883".into())
        .parse()
        .map_err(|e| anyhow::anyhow!("expected a listen address like 127.0.0.1:1883: {e}"))?;
    outpost_collector::broker::start(listen)?;
    loop {
        std::thread::park();
    }
}

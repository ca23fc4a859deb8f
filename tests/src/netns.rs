//! A site's router in a network namespace, so a test can pull its cable (`ip link set down`)
//! or make its line bad (`tc netem`) while the agent on the host keeps pinging it.
//!
//! Layout: host ↔ veth pair ↔ namespace `op-<id>-rtr`, on a private /30 out of 10.200.0.0/16
//! that is unique per rig. A host route `unreachable <subnet> metric 4242` is the backstop:
//! while the link is down nothing to the router leaves by the default route. Faults are made
//! on the namespace side. Everything (services, qdiscs, namespace, veth, route) is removed on
//! drop, also when the test panics.

use std::{
    net::Ipv4Addr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

/// Why a namespace test cannot run here, or `None` when it can (root and `ip` present).
pub fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok();
    let root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Some("network-namespace tests need root (id -u == 0)".into());
    }
    if !["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        return Some("network-namespace tests need iproute2's `ip`".into());
    }
    None
}

/// One site router in its own namespace; everything goes away on drop.
pub struct Router {
    ns: String,
    host_if: String,
    ns_if: String,
    subnet: Ipv4Addr,
    services: Vec<Child>,
    route_added: bool,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs `ip`-family commands and reports failures with their output.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether any host address already lies in `subnet`/30 (another rig, another test run).
fn subnet_in_use(subnet: Ipv4Addr) -> bool {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "to", &format!("{subnet}/30")])
        .output();
    out.is_ok_and(|o| !o.stdout.is_empty())
}

impl Router {
    /// Creates the namespace, the veth link and the addresses; the router answers pings
    /// when this returns.
    pub fn create() -> Result<Self, String> {
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // A short id: interface names are limited to 15 bytes.
        let id = format!("{:x}{:x}", pid & 0xfffff, n & 0xff);
        let mut index = (pid.wrapping_mul(16).wrapping_add(n)) % 16_384;
        let subnet = loop {
            let candidate = Ipv4Addr::new(10, 200, (index / 64) as u8, ((index % 64) * 4) as u8);
            if !subnet_in_use(candidate) {
                break candidate;
            }
            index = (index + 1) % 16_384;
        };
        let mut router = Self {
            ns: format!("op-{id}-rtr"),
            host_if: format!("opv{id}h"),
            ns_if: format!("opv{id}r"),
            subnet,
            services: Vec::new(),
            route_added: false,
        };
        router.setup()?;
        Ok(router)
    }

    fn setup(&mut self) -> Result<(), String> {
        let (host_cidr, router_cidr) = (
            format!("{}/30", self.host_addr()),
            format!("{}/30", self.addr()),
        );
        let net = format!("{}/30", self.subnet);
        run("ip", &["netns", "add", &self.ns])?;
        run(
            "ip",
            &[
                "link",
                "add",
                &self.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &self.ns_if,
            ],
        )?;
        run("ip", &["link", "set", &self.ns_if, "netns", &self.ns])?;
        run("ip", &["addr", "add", &host_cidr, "dev", &self.host_if])?;
        run("ip", &["link", "set", "dev", &self.host_if, "up"])?;
        self.in_ns(&["ip", "addr", "add", &router_cidr, "dev", &self.ns_if])?;
        self.in_ns(&["ip", "link", "set", "dev", &self.ns_if, "up"])?;
        self.in_ns(&["ip", "link", "set", "dev", "lo", "up"])?;
        run(
            "ip",
            &["route", "add", "unreachable", &net, "metric", "4242"],
        )?;
        self.route_added = true;
        self.wait_reachable(Duration::from_secs(10))
    }

    /// Runs a command inside the router's namespace and waits for it.
    pub fn in_ns(&self, command: &[&str]) -> Result<(), String> {
        let mut args = vec!["netns", "exec", &self.ns];
        args.extend_from_slice(command);
        run("ip", &args)
    }

    /// The router's address (what the agent pings).
    pub fn addr(&self) -> Ipv4Addr {
        let o = self.subnet.octets();
        Ipv4Addr::new(o[0], o[1], o[2], o[3] + 2)
    }

    /// The host's address on the link.
    pub fn host_addr(&self) -> Ipv4Addr {
        let o = self.subnet.octets();
        Ipv4Addr::new(o[0], o[1], o[2], o[3] + 1)
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Pulls the cable: the router's side of the link goes down.
    pub fn link_down(&self) -> Result<(), String> {
        self.in_ns(&["ip", "link", "set", "dev", &self.ns_if, "down"])
    }

    /// Plugs the cable back in.
    pub fn link_up(&self) -> Result<(), String> {
        self.in_ns(&["ip", "link", "set", "dev", &self.ns_if, "up"])
    }

    /// Makes the line bad with `tc netem` (e.g. `["loss", "50%"]`, `["delay", "200ms"]`),
    /// replacing any earlier netem settings.
    pub fn netem(&self, settings: &[&str]) -> Result<(), String> {
        let mut command = vec![
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.ns_if,
            "root",
            "netem",
        ];
        command.extend_from_slice(settings);
        self.in_ns(&command)
    }

    /// Removes the netem qdisc (the line is good again).
    pub fn clear_netem(&self) -> Result<(), String> {
        self.in_ns(&["tc", "qdisc", "del", "dev", &self.ns_if, "root"])
    }

    /// Starts a TCP (HTTP) service on the router at `port`: `python3 -m http.server`.
    /// Waits until it accepts connections.
    pub fn serve_http(&mut self, port: u16) -> Result<(), String> {
        let dir = std::env::temp_dir();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3", "-m", "http.server"])
            .arg(port.to_string())
            .args(["--bind", &self.addr().to_string()])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start python3 -m http.server: {e}"))?;
        self.services.push(child);
        let addr = std::net::SocketAddr::from((self.addr(), port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "the router's HTTP service on {addr} did not answer"
        ))
    }

    /// Waits until the link is up at both ends (carrier on the host side).
    pub fn wait_reachable(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let out = Command::new("ip")
                .args(["-o", "link", "show", "dev", &self.host_if])
                .output()
                .map_err(|e| format!("cannot run ip: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            if text.contains("LOWER_UP") && !text.contains("NO-CARRIER") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "the link to the router {} in {} did not come up",
            self.addr(),
            self.ns
        ))
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        for mut child in self.services.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.clear_netem();
        let _ = run("ip", &["netns", "del", &self.ns]);
        // Deleting the namespace deletes its veth end and with it the host's; just in case:
        let _ = run("ip", &["link", "del", &self.host_if]);
        if self.route_added {
            let net = format!("{}/30", self.subnet);
            let _ = run(
                "ip",
                &["route", "del", "unreachable", &net, "metric", "4242"],
            );
        }
    }
}

//! Issue 8, end to end: one identity per site, encrypted links, and nothing a site can do to
//! another. A real Mosquitto with the shipped ACL and a test CA (deploy/mosquitto/
//! make-test-ca.sh), the real `outpost-collector` and `outpost-agent` binaries over mqtts://.
//! Skipped, with a message, when mosquitto or openssl is not installed.
#[path = "security/flood.rs"]
mod flood;
#[path = "security/isolation.rs"]
mod isolation;
#[path = "security/links.rs"]
mod links;
#[path = "security/support.rs"]
mod support;

//! A throwaway PostgreSQL database for one test, on the server at 127.0.0.1:5432
//! (trust auth, user `postgres`), dropped on drop.

use std::sync::atomic::{AtomicU32, Ordering};

/// Where the test server is; `OUTPOST_TEST_PG` overrides (`postgres://user@host:port`).
pub fn server() -> String {
    std::env::var("OUTPOST_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A uniquely named database, dropped (with its connections) on drop.
pub struct TempDb {
    name: String,
}

impl TempDb {
    /// Creates the database. Call from a blocking context (not inside an async task).
    pub fn create(prefix: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "{prefix}_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = admin();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("creating a test database");
        Self { name }
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        format!("{}/{}", server(), self.name)
    }
}

fn admin() -> postgres::Client {
    let url = format!("{}/postgres", server());
    postgres::Client::connect(&url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("PostgreSQL must run at {url} (trust auth) for this test: {e}"))
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside an async test: do the blocking work on a plain thread.
        let _ = std::thread::spawn(move || {
            let _ = admin().batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        })
        .join();
    }
}

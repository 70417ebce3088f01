//! A real libsql server (sqld) for the remote-mode tests, on loopback.
//!
//! Two ways to provide one, both opt-in (the tests print why they skip otherwise, never pass
//! silently):
//!
//! - `MEMORY_TEST_SQLD=/path/to/sqld`: each test starts its own server on a free loopback port
//!   with its own data directory (isolated, and restartable for the outage test).
//! - `MEMORY_TEST_LIBSQL_URL=http://127.0.0.1:8080`: an already running server. Only tests that
//!   tolerate other data in the database run against it (each writes under a fresh namespace);
//!   tests that need an empty database or a restart say they were skipped.
//!
//! sqld is not in any package registry; `docs/deployment.md` says how to build one.

#![allow(dead_code)] // each test binary uses part of this module

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server to run a test against.
pub struct Server {
    url: String,
    process: Option<Spawned>,
}

struct Spawned {
    binary: PathBuf,
    port: u16,
    data: tempfile::TempDir,
    child: Option<Child>,
}

/// Why a test did not run, written straight to stderr (past the test harness's output
/// capture) so a skipped test is never mistaken for a passed one.
pub fn skipped(test: &str, need: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {test}: no server ({need})");
}

impl Server {
    /// A server of our own (`MEMORY_TEST_SQLD`), or `None` after printing why the test skips.
    pub fn spawn(test: &str) -> Option<Self> {
        let Some(binary) = std::env::var_os("MEMORY_TEST_SQLD") else {
            skipped(test, "set MEMORY_TEST_SQLD=/path/to/sqld");
            return None;
        };
        let port = free_port();
        let mut s = Spawned {
            binary: binary.into(),
            port,
            data: tempfile::tempdir().expect("temp dir for sqld"),
            child: None,
        };
        s.start();
        Some(Self {
            url: format!("http://127.0.0.1:{port}"),
            process: Some(s),
        })
    }

    /// A server of our own, else the one at `MEMORY_TEST_LIBSQL_URL`, else `None` after
    /// printing why the test skips.
    pub fn any(test: &str) -> Option<Self> {
        if std::env::var_os("MEMORY_TEST_SQLD").is_some() {
            return Self::spawn(test);
        }
        match std::env::var("MEMORY_TEST_LIBSQL_URL") {
            Ok(url) if !url.is_empty() => Some(Self { url, process: None }),
            _ => {
                skipped(
                    test,
                    "set MEMORY_TEST_SQLD=/path/to/sqld or MEMORY_TEST_LIBSQL_URL=http://…",
                );
                None
            }
        }
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stop the server (SIGKILL: an abrupt outage). Only for servers of our own.
    pub fn stop(&mut self) {
        let s = self.process.as_mut().expect("a server of our own");
        if let Some(mut child) = s.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port and data.
    pub fn restart(&mut self) {
        self.process.as_mut().expect("a server of our own").start();
    }
}

impl Spawned {
    fn start(&mut self) {
        let child = Command::new(&self.binary)
            .arg("--db-path")
            .arg(self.data.path().join("data.sqld"))
            .arg("--http-listen-addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--no-welcome")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sqld (MEMORY_TEST_SQLD)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "sqld did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.process.as_mut()
            && let Some(mut child) = s.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

//! A real `redis-server` (Debian's package) for the cluster tests: started
//! on a free loopback port with no persistence, killed with `SIGKILL`,
//! restarted empty on the same port.
//!
//! Where `redis-server` is missing, [`RedisServer::start`] prints
//! `SKIPPED: ...` and gives `None` (the test then passes), except under
//! `CI=true`, where it panics: CI must run these tests.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};

/// A `redis-server` child process.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

/// The binary: `REDIS_SERVER` if set, else `redis-server` on the path.
fn binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

impl RedisServer {
    /// Starts one on a free port; `None` (after printing SKIPPED) when
    /// `redis-server` is not installed and this is not CI.
    pub fn start(test: &str) -> Option<RedisServer> {
        let found = Command::new(binary())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            assert!(
                !ci(),
                "redis-server is missing and CI=true (.ci/run installs it)"
            );
            println!(
                "SKIPPED: {test}: redis-server is not installed (apt-get install redis-server)"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer { child: None, port };
        server.restart();
        Some(server)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// Kills it with `SIGKILL`: it loses everything (no persistence).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again, empty) on its port and returns once it is ready,
    /// as it says on its standard output.
    pub fn restart(&mut self) {
        self.kill();
        let mut child = Command::new(binary())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--protected-mode", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("Ready to accept connections"));
        assert!(ready, "redis-server on port {} did not start", self.port);
        // Keeps draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        self.child = Some(child);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

//! A real Redis for the fleet tests: the server named by `REDIS_URL` (as `.ci/run` starts it),
//! or one started here from `redis-server` on `PATH` (127.0.0.1, a free port, persistence off).
//! Without either the tests print why they skip; with `CI` set they fail instead.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` process of this test; killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server of this test's own (needed by tests that stop it). `None` (after
    /// printing why) when `redis-server` is not on `PATH` and `CI` is not set.
    pub fn start_own(test: &str) -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            return skip(test, "no redis-server on PATH");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        server.restart();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server at once (SIGKILL): the store is simply gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty (persistence is off).
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        wait_for_pong(&format!("127.0.0.1:{}", self.port));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The URL of a server for tests that do not stop it: `REDIS_URL`, else one started here
/// (returned too, to be kept alive). `None` after printing why the test skips.
pub fn redis_url(test: &str) -> Option<(String, Option<RedisServer>)> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        if !url.is_empty() {
            return Some((url, None));
        }
    }
    let server = RedisServer::start_own(test)?;
    Some((server.url(), Some(server)))
}

fn skip<T>(test: &str, why: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}, and CI is set: the fleet tests must run in CI (.ci/run installs redis-server)");
    }
    eprintln!("{test}: skipped: {why}");
    None
}

/// Waits (at most 10 s) until the server answers PING.
fn wait_for_pong(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0_u8; 7];
            if stream.write_all(b"PING\r\n").is_ok()
                && stream.read_exact(&mut buf).is_ok()
                && &buf == b"+PONG\r\n"
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not answer on {addr}"
        );
        // The server process is starting: nothing to wait on but its port.
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

/// A raw command to the server (for checks of what it holds), answered as text.
pub fn raw(url: &str, args: &[&str]) -> String {
    let addr = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = TcpStream::connect(addr).expect("connect to redis");
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{}\r\n", a.len(), a));
    }
    stream.write_all(cmd.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0_u8; 4096];
    let n = stream.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A name no other test run uses, so tests can share one server.
pub fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

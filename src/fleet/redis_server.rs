//! The Redis side of the fleet demonstration: a throwaway `redis-server` of our own, and the
//! few commands the coordinator sends (clear the demo's shared breakers, stop the server).

use std::io;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` started from `PATH` for one run: on `127.0.0.1`, a free port, persistence
/// off (`--save '' --appendonly no`), its working directory a temporary one. Stopped (killed)
/// when dropped.
///
/// ```no_run
/// use resilience::fleet::ThrowawayRedis;
/// match ThrowawayRedis::start().unwrap() {
///     Some(server) => println!("redis at {}", server.url()),
///     None => println!("no redis-server on PATH"),
/// }
/// ```
#[derive(Debug)]
pub struct ThrowawayRedis {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl ThrowawayRedis {
    /// Starts one and waits (at most 10 s) until it answers `PING`. `Ok(None)` when
    /// `redis-server` is not on `PATH`.
    pub fn start() -> io::Result<Option<ThrowawayRedis>> {
        if !redis_server_on_path() {
            return Ok(None);
        }
        let mut last = None;
        // The free port is found by binding port 0 and letting it go: another program may take
        // it in between, so a server that does not come up is tried again on another port.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let dir = tempfile::tempdir()?;
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let mut server = ThrowawayRedis {
                child: Some(child),
                port,
                _dir: dir,
            };
            match server.wait_until_up(Duration::from_secs(10)) {
                Ok(()) => return Ok(Some(server)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it at once (SIGKILL) and reaps it; nothing is saved.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_until_up(&mut self, limit: Duration) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        let url = self.url();
        loop {
            if ping(&url) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    return Err(io::Error::other(format!(
                        "redis-server exited at start ({status})"
                    )));
                }
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-server did not answer on port {} in {limit:?}",
                        self.port
                    ),
                ));
            }
            // The server process is starting: nothing to wait on but its port.
            std::thread::park_timeout(Duration::from_millis(5));
        }
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `redis-server` can be run from `PATH`.
pub fn redis_server_on_path() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(url)?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(conn)
}

/// Whether the server at `url` answers `PING`.
///
/// ```
/// // Nothing listens on port 1.
/// assert!(!resilience::fleet::ping("redis://127.0.0.1:1/"));
/// ```
pub fn ping(url: &str) -> bool {
    connect(url)
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok_and(|pong| pong == "PONG")
}

/// Deletes the shared records of the importer's two breakers (`molecule_service:fetch` and
/// `molecule_db:store`) so that a run starts from a closed breaker whatever an earlier,
/// interrupted run left there (an open period, a trial lease held by a process that is gone).
/// Only these two keys are touched.
pub(crate) fn clear_importer_breakers(url: &str) -> redis::RedisResult<()> {
    use crate::importer::{DATABASE, FETCH, SERVICE, STORE};
    let mut conn = connect(url)?;
    // The key of a shared breaker, as resilience-core's Redis store names it.
    let key = |service: &str, operation: &str| format!("rsl:v1:{{cb:{service}:{operation}}}");
    redis::cmd("DEL")
        .arg(key(SERVICE, FETCH))
        .arg(key(DATABASE, STORE))
        .query::<i64>(&mut conn)?;
    Ok(())
}

/// Stops the server at `url` with `SHUTDOWN NOSAVE` and waits (at most 5 s) until it no longer
/// answers. Errors say why it is still up (the command was refused, say).
pub fn shutdown_redis(url: &str) -> Result<(), String> {
    let mut conn = connect(url).map_err(|e| format!("cannot reach {url}: {e}"))?;
    match redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut conn) {
        // A server that stops closes the connection without an answer.
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() => {}
        Err(e) => return Err(format!("SHUTDOWN NOSAVE refused by {url}: {e}")),
        Ok(()) => {}
    }
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ping(url) {
        if Instant::now() >= deadline {
            return Err(format!("{url} still answers after SHUTDOWN NOSAVE"));
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
    Ok(())
}

//! A real Redis for the fleet tests (adapted from resilience-core's `tests/redis_support`): the
//! server named by `REDIS_URL` (as `.ci/run` starts it), or one started here from
//! `redis-server` on `PATH` (127.0.0.1, a free port, persistence off). Without either the tests
//! print why they skip; with `CI` set they fail instead.

#![allow(dead_code)]

use resilience::fleet::ThrowawayRedis;

/// Starts a server of this test's own (needed by tests that stop it). `None` (after printing
/// why) when `redis-server` is not on `PATH` and `CI` is not set.
pub fn start_own(test: &str) -> Option<ThrowawayRedis> {
    match ThrowawayRedis::start() {
        Ok(Some(server)) => Some(server),
        Ok(None) => skip(test, "no redis-server on PATH"),
        Err(e) => panic!("{test}: redis-server is on PATH but did not start: {e}"),
    }
}

/// The URL of a server for tests that do not stop it: `REDIS_URL`, else one started here
/// (returned too, to be kept alive). `None` after printing why the test skips.
pub fn redis_url(test: &str) -> Option<(String, Option<ThrowawayRedis>)> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        if !url.is_empty() {
            return Some((url, None));
        }
    }
    let server = start_own(test)?;
    Some((server.url(), Some(server)))
}

fn skip<T>(test: &str, why: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}, and CI is set: the fleet tests must run in CI (.ci/run installs redis-server)");
    }
    eprintln!("{test}: skipped: {why}");
    None
}

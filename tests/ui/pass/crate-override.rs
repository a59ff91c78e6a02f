// A crate that re-exports the runtime under another path names it with `crate = "…"`.
mod deps {
    pub use resilience_core as runtime;
}

use deps::runtime::{retry, Classify};

#[derive(Debug, Classify)]
#[classify(Network, crate = "crate::deps::runtime")]
struct Reset;
impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reset")
    }
}
impl std::error::Error for Reset {}

#[retry(crate = "crate::deps::runtime", circuit_breaker = false, max_attempts = 2, initial_delay = 0)]
fn call(calls: &mut u32) -> Result<u32, Reset> {
    *calls += 1;
    if *calls == 1 {
        return Err(Reset);
    }
    Ok(*calls)
}

fn main() {
    let mut calls = 0;
    assert_eq!(call(&mut calls).unwrap(), 2);
}

use resilience_core::{retry, RetryManager};
use std::io;

struct Service {
    manager: RetryManager,
    hits: u32,
}

trait Fetch {
    fn fetch(&self, key: &str) -> io::Result<String>;
    async fn store(&mut self, value: u32) -> io::Result<u32>;
}

impl Service {
    /// Documentation and other attributes stay on the function.
    #[retry(circuit_breaker = false, manager = &self.manager)]
    #[inline]
    pub(crate) fn get(&self) -> Result<u32, io::Error> {
        Ok(self.hits)
    }

    #[retry(circuit_breaker = false, manager = &self.manager)]
    fn bump(&mut self) -> Result<u32, io::Error> {
        self.hits += 1;
        Ok(self.hits)
    }

    #[retry(circuit_breaker = false)]
    fn pinned(self: std::pin::Pin<&mut Self>) -> Result<u32, io::Error> {
        Ok(self.hits)
    }
}

impl Fetch for Service {
    #[retry(circuit_breaker = false)]
    fn fetch(&self, key: &str) -> io::Result<String> {
        Ok(format!("{key}{}", self.hits))
    }

    #[retry(circuit_breaker = false)]
    async fn store(&mut self, value: u32) -> io::Result<u32> {
        self.hits = value;
        Ok(value)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut s = Service { manager: RetryManager::new(), hits: 0 };
    assert_eq!(s.bump().unwrap(), 1);
    assert_eq!(s.get().unwrap(), 1);
    assert_eq!(std::pin::Pin::new(&mut s).pinned().unwrap(), 1);
    assert_eq!(s.fetch("k").unwrap(), "k1");
    assert_eq!(s.store(7).await.unwrap(), 7);
}

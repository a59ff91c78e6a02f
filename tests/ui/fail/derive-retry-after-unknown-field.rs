use resilience_core::Classify;

#[derive(Debug, Classify)]
enum FetchError {
    #[classify(RateLimit, retry_after = wiat)]
    Busy { wait: std::time::Duration },
}

fn main() {}

use resilience_core::Classify;

#[derive(Debug, Classify)]
enum FetchError {
    #[classify(RateLimit, retry_after = seconds)]
    Busy { seconds: u64 },
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl std::error::Error for FetchError {}

fn main() {}

// One mistake in `#[derive(Classify)]`, one error: the derive still implements `Classify` (with
// the trait's defaults), so the type's uses below do not each add "cannot be classified".
use resilience_core::{retry, CircuitOpenError, Classify, RetryManager};

#[derive(Debug, Classify)]
enum FetchError {
    #[classify(Netwrok)]
    Reset,
    Open(CircuitOpenError),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for FetchError {}

impl From<CircuitOpenError> for FetchError {
    fn from(open: CircuitOpenError) -> Self {
        FetchError::Open(open)
    }
}

#[retry(component = "api", operation = "fetch")]
fn fetch() -> Result<u32, FetchError> {
    Err(FetchError::Reset)
}

#[retry(component = "api", operation = "fetch_async")]
async fn fetch_async() -> Result<u32, FetchError> {
    Err(FetchError::Reset)
}

fn main() {
    let manager = RetryManager::new();
    let _ = manager.execute("api", "get", || Err::<(), _>(FetchError::Reset));
    let _ = FetchError::Reset.category();
    let _ = fetch();
    let _ = fetch_async();
}

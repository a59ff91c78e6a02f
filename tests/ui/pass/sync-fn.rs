use resilience_core::{retry, Classify, CircuitOpenError};

#[derive(Debug, Classify)]
enum MyError {
    #[classify(Network)]
    Reset,
    #[classify(Unavailable)]
    Open(CircuitOpenError),
}
impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl std::error::Error for MyError {}
impl From<CircuitOpenError> for MyError {
    fn from(e: CircuitOpenError) -> Self {
        MyError::Open(e)
    }
}

#[retry(component = "c", operation = "o", max_attempts = 3, initial_delay = 0)]
fn flaky(calls: &mut u32) -> Result<u32, MyError> {
    *calls += 1;
    if *calls < 3 {
        return Err(MyError::Reset);
    }
    Ok(*calls)
}

fn main() {
    let mut calls = 0;
    assert_eq!(flaky(&mut calls).unwrap(), 3);
}

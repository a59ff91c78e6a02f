use resilience_core::Classify;

// `as_error` returns the value itself, so a derived type must implement `std::error::Error`.
#[derive(Debug, Classify)]
enum FetchError {
    #[classify(Network)]
    Reset,
}

fn main() {}

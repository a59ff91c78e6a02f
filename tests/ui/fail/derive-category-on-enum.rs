use resilience_core::Classify;

#[derive(Debug, Classify)]
#[classify(Network)]
enum FetchError {
    Reset,
}

fn main() {}

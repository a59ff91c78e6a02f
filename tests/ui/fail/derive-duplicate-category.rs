use resilience_core::Classify;

#[derive(Debug, Classify)]
enum FetchError {
    #[classify(Network)]
    #[classify(Timeout)]
    Reset,
}

fn main() {}

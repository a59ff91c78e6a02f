use resilience_core::Classify;

#[derive(Debug, Classify)]
enum FetchError {
    #[classify(Netwrok)]
    Reset,
}

fn main() {}

use resilience_core::Classify;

#[derive(Debug, Classify)]
enum FetchError {
    #[classify(source)]
    Io(std::io::Error, String),
    #[classify(source)]
    Empty,
}

fn main() {}

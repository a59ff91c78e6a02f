use resilience_core::Classify;

#[derive(Debug, Classify)]
enum FetchError {
    #[classify(Network, source)]
    Io(std::io::Error),
}

fn main() {}

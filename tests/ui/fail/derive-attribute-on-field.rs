use resilience_core::Classify;

#[derive(Debug, Classify)]
enum FetchError {
    Io(#[classify(source)] std::io::Error),
}

fn main() {}

use resilience_core::retry;

#[retry(max_attempts = 3)]
struct Client;

fn main() {}

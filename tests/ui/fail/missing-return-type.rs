use resilience_core::retry;

#[retry]
fn fetch() {}

fn main() {}

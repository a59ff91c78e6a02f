use resilience_core::retry;

#[retry]
fn fetch() -> Option<u8> {
    None
}

fn main() {}

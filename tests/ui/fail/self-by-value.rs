use resilience_core::retry;

struct Client;

impl Client {
    #[retry]
    fn fetch(self) -> Result<(), std::io::Error> {
        Ok(())
    }
}

fn main() {}

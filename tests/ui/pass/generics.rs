use resilience_core::retry;
use std::fmt::Display;
use std::io;
use std::str::FromStr;

#[retry(circuit_breaker = false)]
fn parse<T>(text: &str) -> Result<T, io::Error>
where
    T: FromStr,
    T::Err: Display,
{
    text.parse().map_err(|e: T::Err| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

#[retry(circuit_breaker = false)]
fn longest<'a, 'b: 'a>(a: &'a str, b: &'b str) -> std::result::Result<&'a str, io::Error> {
    Ok(if a.len() >= b.len() { a } else { b })
}

#[retry(circuit_breaker = false)]
fn elided(text: &str) -> io::Result<&str> {
    Ok(text.trim())
}

#[retry(circuit_breaker = false)]
fn show(value: impl Display) -> Result<impl Display + Clone, io::Error> {
    Ok(format!("<{value}>"))
}

#[retry(circuit_breaker = false)]
fn boxed() -> Result<Box<dyn Iterator<Item = impl Display>>, io::Error> {
    Ok(Box::new([1, 2].into_iter()))
}

#[retry(circuit_breaker = false)]
async fn generic_async<T: Send + Clone>(value: &T) -> Result<T, io::Error> {
    Ok(value.clone())
}

/// # Safety
/// Nothing to uphold: checks that `unsafe` stays on the signature.
#[retry(circuit_breaker = false)]
unsafe fn raw(ptr: *const u8) -> Result<u8, io::Error> {
    Ok(unsafe { *ptr })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(parse::<u8>("7").unwrap(), 7);
    assert_eq!(longest("ab", "c").unwrap(), "ab");
    assert_eq!(elided(" x ").unwrap(), "x");
    assert_eq!(show(1).unwrap().to_string(), "<1>");
    assert_eq!(boxed().unwrap().count(), 2);
    assert_eq!(generic_async(&5).await.unwrap(), 5);
    let byte = 9u8;
    assert_eq!(unsafe { raw(&byte) }.unwrap(), 9);
}

use resilience_core::{retry, ErrorCategory, Failure};

fn judge_text(text: &String) -> Option<Failure> {
    text.is_empty().then(|| Failure::new(ErrorCategory::Unavailable))
}

// `classify_ok` names a function, not a string.
#[retry(classify_ok = "judge_text")]
fn named_by_a_string() -> Result<u16, std::io::Error> {
    Ok(200)
}

// A judge of another type is reported on the judge.
#[retry(classify_ok = judge_text)]
fn judges_another_type() -> Result<u16, std::io::Error> {
    Ok(200)
}

fn main() {
    let _ = named_by_a_string();
    let _ = judges_another_type();
}

//! The `"service:operation"` key of status, metrics and per-operation settings.
//!
//! A `:` or `%` inside the service name is written `%3A` or `%25`, so the first `:` of a key
//! always ends the service: ("a", "b:c") is `a:b:c` and ("a:b", "c") is `a%3Ab:c`. Ordinary
//! names look as they are.

/// The key of (service, operation).
pub(crate) fn key(service: &str, operation: &str) -> String {
    let mut key = String::with_capacity(service.len() + 1 + operation.len());
    for c in service.chars() {
        match c {
            '%' => key.push_str("%25"),
            ':' => key.push_str("%3A"),
            c => key.push(c),
        }
    }
    key.push(':');
    key.push_str(operation);
    key
}

/// The (service, operation) a key names; `None` when it has no `:` or an escape other than
/// `%25` and `%3A` in its service part.
pub(crate) fn parse_key(key: &str) -> Option<(String, String)> {
    let (escaped, operation) = key.split_once(':')?;
    let mut service = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find('%') {
        service.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3)?;
        match code {
            "25" => service.push('%'),
            "3A" | "3a" => service.push(':'),
            _ => return None,
        }
        rest = &rest[at + 3..];
    }
    service.push_str(rest);
    Some((service, operation.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_names_with_colons_differ() {
        assert_eq!(key("a", "b:c"), "a:b:c");
        assert_eq!(key("a:b", "c"), "a%3Ab:c");
        assert_eq!(key("100%", "x"), "100%25:x");
        assert_eq!(key("ChEMBL", "fetch"), "ChEMBL:fetch");
    }

    #[test]
    fn parse_is_the_inverse_of_key() {
        for (s, o) in [
            ("a", "b:c"),
            ("a:b", "c"),
            ("%3A", ":"),
            ("", ""),
            ("x%y:z", "w"),
        ] {
            assert_eq!(parse_key(&key(s, o)), Some((s.to_owned(), o.to_owned())));
        }
        assert_eq!(parse_key("no-colon"), None);
        assert_eq!(parse_key("bad%zz:op"), None);
        assert_eq!(parse_key("cut%3:op"), None);
    }
}

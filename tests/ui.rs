//! Compile-time behaviour of `#[retry]` and `#[derive(Classify)]`: `tests/ui/fail` holds one
//! file per rule with the expected diagnostics beside it (`.stderr`); `tests/ui/pass` holds
//! every supported shape, compiled and run.
//!
//! Diagnostics change between rustc versions, so this runs on stable 1.95 only. Refresh the
//! `.stderr` files after a change with `TRYBUILD=overwrite cargo test --test ui` and review the
//! diff.

#[rustversion::stable(1.95)]
#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}

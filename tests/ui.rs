//! Compile-time errors of `model!`, each a small program and the exact message a user
//! sees (`tests/ui/fail/*.stderr`), plus programs that must compile (`tests/ui/pass`).
//! Regenerate snapshots with `TRYBUILD=overwrite cargo test --test ui`, then read them.

#[test]
fn model_macro_errors_and_passing_models() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("../tests/ui/fail/*.rs");
    cases.pass("../tests/ui/pass/*.rs");
}

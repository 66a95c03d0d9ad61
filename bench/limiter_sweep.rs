//! Placeholder: written with the benchmark (issue 4).
fn main() {}

//! Runs the Transak partner backend.
fn main() {}

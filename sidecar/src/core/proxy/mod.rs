//! One file per protocol pair (`h1_h1`, `h1_h2`, `h2_h1`, `h2_h2`), each only the translation
//! between its two sides, and `exchange`: the context every pair shares, how an exchange ends,
//! the one retry rule and the one place a request is recorded.

pub mod exchange;
pub mod h1_h1;
pub mod h1_h2;
pub mod h2_h1;
pub mod h2_h2;
mod h2_open;
pub mod replay;

#[cfg(test)]
mod alloc_tests;

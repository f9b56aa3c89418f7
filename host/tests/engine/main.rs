//! Integration tests of the plugin engine: real components built from source, run by the production
//! runtime over real mail.

// Failures are inspected by value in every test.
#![allow(clippy::result_large_err)]

mod cache;
mod cli;
mod concurrency;
mod configs;
mod containment;
mod expectations;
mod golden;
mod helpers;
mod hostile;
mod large_message;
mod parse;

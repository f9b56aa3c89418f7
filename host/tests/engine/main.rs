//! Integration tests of the plugin engine: real components built from source, run by the production
//! runtime over real mail.

mod cli;
mod concurrency;
mod expectations;
mod golden;
mod helpers;
mod hostile;
mod large_message;
mod parse;

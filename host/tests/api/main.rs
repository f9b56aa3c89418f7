//! The HTTP API end to end: the whole server on port 0 with a fresh data dir per test, driven over
//! real HTTP.

mod helpers;

mod actions;
mod admin;
mod caches;
mod compile;
mod containment;
mod databases;
mod errors;
mod isolation;
mod jobs;
mod limits;
mod malformed;
mod messages;
mod pipelines;
mod plugins;
mod readme;
mod restart;
mod runs;
mod spec;
mod tokens;

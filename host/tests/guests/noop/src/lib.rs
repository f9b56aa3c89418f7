//! The smallest filter there is: it returns no action. What a call of it costs is the fixed cost of
//! an isolated call (instantiate, run, tear down); `cargo bench --workspace --bench engine -- empty`.

use wasmail_plugin::{Action, Error, Message};

#[wasmail_plugin::filter]
fn filter(_message: &Message) -> Result<Vec<Action>, Error> {
    Ok(Vec::new())
}

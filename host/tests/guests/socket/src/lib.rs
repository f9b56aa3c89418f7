//! A filter that tries to open a TCP connection through WASI sockets.

use wasmail_plugin::{Action, Error, Message};

#[wasmail_plugin::filter]
fn filter(_message: &Message) -> Result<Vec<Action>, Error> {
    match std::net::TcpStream::connect("127.0.0.1:6379") {
        Ok(_) => Ok(vec![Action::Tag("connected".into())]),
        Err(e) => Err(Error::new(format!("connect failed: {e}"))),
    }
}

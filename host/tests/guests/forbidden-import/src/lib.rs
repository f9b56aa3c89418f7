//! A filter that imports an interface the host does not offer: refused at upload.

use wasmail_plugin::{Action, Error, Message};

wit_bindgen::generate!({
    inline: r#"
        package evil:net;
        interface raw {
            send: func(bytes: list<u8>);
        }
        world evil {
            import raw;
        }
    "#,
});

#[wasmail_plugin::filter]
fn filter(message: &Message) -> Result<Vec<Action>, Error> {
    evil::net::raw::send(&message.raw(0, 1024));
    Ok(vec![])
}

//! A wasmail filter plugin: flags and tags mail from the senders listed in its configuration.
//!
//! Configuration: `{"vips": ["ceo@example.com", "example.org"], "flag": "\\Flagged", "tag": "vip"}`
//! (an entry without `@` matches a whole domain).

use serde::Deserialize;
use wasmail_plugin::{Action, Error, Field, Message};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    vips: Vec<String>,
    #[serde(default = "default_flag")]
    flag: String,
    #[serde(default = "default_tag")]
    tag: String,
}

fn default_flag() -> String {
    "\\Flagged".into()
}

fn default_tag() -> String {
    "vip".into()
}

#[wasmail_plugin::filter]
fn filter(message: &Message) -> Result<Vec<Action>, Error> {
    let config: Config = wasmail_plugin::config::parse()?;
    let from_vip = config.vips.iter().any(|vip| {
        if vip.contains('@') {
            // Runs natively on the host: no copy of the message enters the plugin.
            message.equals(&Field::From, vip)
        } else {
            message.contains(&Field::From, &format!("@{vip}"))
        }
    });
    if !from_vip {
        return Ok(vec![]);
    }
    wasmail_plugin::log::info("message from a VIP");
    Ok(vec![Action::AddFlag(config.flag), Action::Tag(config.tag)])
}

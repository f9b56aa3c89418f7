//! A wasmail filter plugin: flags and tags mail from the senders listed in its configuration.
//!
//! Configuration: `{"vips": ["ceo@example.com", "example.org"], "flag": "\\Flagged", "tag": "vip"}`
//! (an entry without `@` matches a whole domain).

use serde::Deserialize;
use wasmail_plugin::{Action, Error, Field, Message, Prepared};

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

/// Parsed once per configuration: when the host prepares the plugin, every call starts with it.
static CONFIG: Prepared<Config> = Prepared::new();

fn config() -> Result<&'static Config, Error> {
    CONFIG.get_or_init(wasmail_plugin::config::parse)
}

/// Runs once per configuration; an error here rejects the configuration before any message.
fn prepare() -> Result<(), Error> {
    config().map(|_| ())
}

#[wasmail_plugin::filter(prepare = prepare)]
fn filter(message: &Message) -> Result<Vec<Action>, Error> {
    let config = config()?;
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
    Ok(vec![
        Action::AddFlag(config.flag.clone()),
        Action::Tag(config.tag.clone()),
    ])
}

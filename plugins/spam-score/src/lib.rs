//! `spam-score`: a heuristic spam score from signals every message carries.
//!
//! Each signal adds (or, for good signs, subtracts) points; the message is tagged with its score and,
//! at or above the threshold, moved to a folder and flagged. The signals:
//!
//! | signal | points |
//! |---|---|
//! | `Authentication-Results`: `spf=fail` / `softfail` / `pass` | +3 / +1.5 / -1 |
//! | `Authentication-Results`: `dkim=fail` / `pass` | +3 / -1 |
//! | `Authentication-Results`: `dmarc=fail` / `pass` | +4 / -1.5 |
//! | an upstream `X-Spam-Flag: YES` | +5 |
//! | no `Message-ID` / no valid `Date` / `Date` more than a day ahead | +1.5 / +1.5 / +1 |
//! | a shouting subject (≥ 70% capitals, ≥ 8 letters) / `!!!` in it | +2 / +1 |
//! | a subject padded with runs of spaces | +1.5 |
//! | 8 or more recipients in `To` and `Cc` | +1 |
//! | display name showing another address than the sender's | +2 |
//! | `Reply-To` in another domain than `From` | +1 |
//! | links to bare IP addresses | +2.5 |
//! | HTML links whose text shows another domain than their target | +3 |
//! | URL shorteners | +1 |
//! | HTML only, no text part | +0.5 |
//! | spam phrases in the body (each, at most 4) | +1 |
//!
//! Configuration (every key optional):
//!
//! ```json
//! { "threshold": 5.0, "folder": "Junk", "flag": "$Junk", "tag_prefix": "spam-score:",
//!   "phrases": ["limited time offer"], "trusted_domains": ["example.com"] }
//! ```
//!
//! `trusted_domains` lists sender domains that are never moved (still scored and tagged);
//! `phrases` adds to the built-in phrase list. `"tag_prefix": ""` turns the score tag off.

mod score;

pub use score::{Config, Scorecard, ScorecardWithTrust, Signals, score};

#[cfg(target_arch = "wasm32")]
mod component {
    use super::{Config, Signals, score};
    use wasmail_plugin::{Action, Error, Field, Message, Prepared};

    fn signals(message: &Message, config: &Config) -> Signals {
        let from = message.from();
        let from_address = from
            .first()
            .and_then(|a| a.address.clone())
            .unwrap_or_default();
        let from_name = from
            .first()
            .and_then(|a| a.name.clone())
            .unwrap_or_default();
        let phrases = config
            .all_phrases()
            .filter(|p| message.contains(&Field::Body, p))
            .map(str::to_string)
            .collect();
        Signals {
            authentication_results: message.header_all("Authentication-Results"),
            spam_flag: message.header("X-Spam-Flag"),
            has_message_id: message.message_id().is_some(),
            date: message.date(),
            now_seconds: wasmail_plugin::clock::now_millis() / 1000,
            subject: message.subject().unwrap_or_default(),
            from_address,
            from_name,
            reply_to: message
                .reply_to()
                .into_iter()
                .filter_map(|a| a.address)
                .collect(),
            recipients: message.to().len() + message.cc().len(),
            text_len: message.text_body_len(),
            html: message.html_chunks().take(16).collect(),
            text: message.text_chunks().take(16).collect(),
            phrases_found: phrases,
        }
    }

    /// The configuration, parsed and validated once per configuration (see `Prepared`).
    static CONFIG: Prepared<Config> = Prepared::new();

    fn config() -> Result<&'static Config, Error> {
        CONFIG.get_or_init(|| {
            let config: Config = wasmail_plugin::config::parse_or_default()?;
            config.validate().map_err(Error::new)?;
            Ok(config)
        })
    }

    fn prepare() -> Result<(), Error> {
        config().map(|_| ())
    }

    #[wasmail_plugin::filter(prepare = prepare)]
    fn filter(message: &Message) -> Result<Vec<Action>, Error> {
        let config = config()?;
        let card = score(&signals(message, config));
        wasmail_plugin::log::info(&format!(
            "score {:.1}: {}",
            card.total,
            card.reasons.join("; ")
        ));
        Ok(card.actions(config))
    }
}

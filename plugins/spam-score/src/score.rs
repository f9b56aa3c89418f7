//! The scoring itself: pure functions over [`Signals`], so they are tested natively.

use serde::Deserialize;
use wasmail_plugin::Action;

/// The plugin's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Score at or above which the message is moved and flagged.
    pub threshold: f64,
    /// Where spam goes.
    pub folder: String,
    /// Flag set on spam ("" for none).
    pub flag: String,
    /// Prefix of the score tag ("" for no tag).
    pub tag_prefix: String,
    /// Extra spam phrases.
    pub phrases: Vec<String>,
    /// Sender domains never moved.
    pub trusted_domains: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threshold: 5.0,
            folder: "Junk".into(),
            flag: "$Junk".into(),
            tag_prefix: "spam-score:".into(),
            phrases: Vec::new(),
            trusted_domains: Vec::new(),
        }
    }
}

const PHRASES: &[&str] = &[
    "viagra",
    "lottery",
    "you have won",
    "claim your prize",
    "act now",
    "100% free",
    "risk-free",
    "wire transfer",
    "bitcoin",
    "nigerian",
    "urgent reply",
    "dear friend",
    "work from home",
    "click here",
    "specially selected",
    "giveaway",
    "make money fast",
    "within 24 hours",
];

const SHORTENERS: &[&str] = &[
    "bit.ly/",
    "tinyurl.com/",
    "goo.gl/",
    "t.co/",
    "ow.ly/",
    "is.gd/",
    "buff.ly/",
    "cutt.ly/",
];

impl Config {
    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !self.threshold.is_finite() {
            return Err("threshold must be a finite number".into());
        }
        if self.folder.trim().is_empty() {
            return Err("folder must not be empty".into());
        }
        if self.phrases.iter().any(|p| p.trim().is_empty()) {
            return Err("phrases must not contain empty strings".into());
        }
        Ok(())
    }

    /// Built-in phrases, then the configured ones.
    pub fn all_phrases(&self) -> impl Iterator<Item = &str> {
        PHRASES
            .iter()
            .copied()
            .chain(self.phrases.iter().map(String::as_str))
    }
}

/// What the scorer looks at, gathered from the message by the caller.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// Every `Authentication-Results` value.
    pub authentication_results: Vec<String>,
    /// `X-Spam-Flag`, if present.
    pub spam_flag: Option<String>,
    /// Whether there is a `Message-ID`.
    pub has_message_id: bool,
    /// `Date` in Unix seconds, when valid.
    pub date: Option<i64>,
    /// Now, in Unix seconds.
    pub now_seconds: i64,
    /// Decoded subject.
    pub subject: String,
    /// The first `From` address.
    pub from_address: String,
    /// The first `From` display name.
    pub from_name: String,
    /// `Reply-To` addresses.
    pub reply_to: Vec<String>,
    /// How many mailboxes `To` and `Cc` hold together.
    pub recipients: usize,
    /// Text body length.
    pub text_len: u64,
    /// The HTML body (its first megabyte).
    pub html: String,
    /// The text body (its first megabyte).
    pub text: String,
    /// Spam phrases found in the body.
    pub phrases_found: Vec<String>,
}

/// A score and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard {
    /// The total.
    pub total: f64,
    /// One entry per signal that fired: `"+3.0 spf=fail"`.
    pub reasons: Vec<String>,
}

impl Scorecard {
    fn add(&mut self, points: f64, why: impl Into<String>) {
        self.total += points;
        self.reasons.push(format!("{points:+.1} {}", why.into()));
    }
}

fn domain(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
}

/// Every verdict `method=result` in Authentication-Results values, lower case.
fn verdicts(values: &[String], method: &str) -> Vec<String> {
    let mut found = Vec::new();
    for value in values {
        let lower = value.to_ascii_lowercase();
        let key = format!("{method}=");
        let mut from = 0;
        while let Some(pos) = lower[from..].find(&key) {
            let at = from + pos;
            let boundary = at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric();
            let rest = &lower[at + key.len()..];
            let verdict: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if boundary && !verdict.is_empty() {
                found.push(verdict);
            }
            from = at + key.len();
        }
    }
    found
}

/// Hosts of `href="…"` links, with the text of the anchor.
fn html_links(html: &str) -> Vec<(String, String)> {
    let lower = html.to_ascii_lowercase();
    let mut links = Vec::new();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("href=") {
        let at = from + pos + 5;
        from = at;
        let quote = lower.as_bytes().get(at).copied();
        let (start, end_char) = match quote {
            Some(b'"') => (at + 1, '"'),
            Some(b'\'') => (at + 1, '\''),
            _ => (at, ' '),
        };
        let Some(len) = lower[start..].find([end_char, '>']) else {
            break;
        };
        let target = &lower[start..start + len];
        let text = lower[start + len..]
            .split_once('>')
            .and_then(|(_, after)| after.split_once("</a").map(|(t, _)| t.trim().to_string()))
            .unwrap_or_default();
        links.push((target.to_string(), text));
    }
    links
}

fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let host = rest.split(['/', '?', '#', ':']).next()?;
    (!host.is_empty()).then_some(host)
}

fn is_ip(host: &str) -> bool {
    host.parse::<std::net::Ipv4Addr>().is_ok() || host.starts_with('[')
}

/// Scores the signals.
pub fn score(s: &Signals) -> ScorecardWithTrust {
    let mut card = Scorecard {
        total: 0.0,
        reasons: Vec::new(),
    };
    for (method, fail, soft, pass) in [
        ("spf", 3.0, 1.5, -1.0),
        ("dkim", 3.0, 0.0, -1.0),
        ("dmarc", 4.0, 0.0, -1.5),
    ] {
        let found = verdicts(&s.authentication_results, method);
        if found.iter().any(|v| v == "fail" || v == "permerror") {
            card.add(fail, format!("{method}=fail"));
        } else if soft > 0.0 && found.iter().any(|v| v == "softfail") {
            card.add(soft, format!("{method}=softfail"));
        } else if found.iter().any(|v| v == "pass") {
            card.add(pass, format!("{method}=pass"));
        }
    }
    if s.spam_flag
        .as_deref()
        .is_some_and(|f| f.trim().eq_ignore_ascii_case("yes"))
    {
        card.add(5.0, "X-Spam-Flag: YES");
    }
    if !s.has_message_id {
        card.add(1.5, "no Message-ID");
    }
    match s.date {
        None => card.add(1.5, "no valid Date"),
        Some(d) if s.now_seconds > 0 && d > s.now_seconds + 86_400 => {
            card.add(1.0, "Date in the future")
        }
        Some(_) => {}
    }
    let letters: Vec<char> = s.subject.chars().filter(|c| c.is_alphabetic()).collect();
    let capitals = letters.iter().filter(|c| c.is_uppercase()).count();
    if letters.len() >= 8 && capitals * 10 >= letters.len() * 7 {
        card.add(2.0, "shouting subject");
    }
    if s.subject.contains("!!!") {
        card.add(1.0, "!!! in subject");
    }
    if s.subject.contains("   ") {
        card.add(1.5, "subject padded with runs of spaces");
    }
    if s.recipients >= 8 {
        card.add(1.0, format!("{} recipients in To and Cc", s.recipients));
    }
    let from_domain = domain(&s.from_address);
    if let (Some(shown), Some(real)) = (domain(&s.from_name), &from_domain)
        && s.from_name.contains('@')
        && &shown != real
    {
        card.add(2.0, format!("display name shows {shown}, sender is {real}"));
    }
    if let Some(real) = &from_domain
        && s.reply_to
            .iter()
            .filter_map(|r| domain(r))
            .any(|d| &d != real)
    {
        card.add(1.0, "Reply-To in another domain");
    }
    let links = html_links(&s.html);
    let text_urls: Vec<&str> = s
        .text
        .split_whitespace()
        .filter(|w| w.starts_with("http"))
        .collect();
    let hosts: Vec<&str> = links
        .iter()
        .map(|(t, _)| t.as_str())
        .chain(text_urls.iter().copied())
        .filter_map(url_host)
        .collect();
    if hosts.iter().any(|h| is_ip(h)) {
        card.add(2.5, "link to a bare IP address");
    }
    let deceptive = links.iter().any(|(target, text)| {
        match (
            url_host(target),
            url_host(text.split_whitespace().next().unwrap_or("")),
        ) {
            (Some(real), Some(shown)) => !real.ends_with(shown) && !shown.ends_with(real),
            _ => false,
        }
    });
    if deceptive {
        card.add(3.0, "link text shows another domain than its target");
    }
    let all_links = links
        .iter()
        .map(|(t, _)| t.as_str())
        .chain(text_urls.iter().copied());
    if all_links
        .into_iter()
        .any(|l| SHORTENERS.iter().any(|s| l.contains(s)))
    {
        card.add(1.0, "URL shortener");
    }
    if s.text_len == 0 && !s.html.is_empty() {
        card.add(0.5, "HTML only");
    }
    for phrase in s.phrases_found.iter().take(4) {
        card.add(1.0, format!("phrase \"{phrase}\""));
    }
    card.total = (card.total * 10.0).round() / 10.0;
    ScorecardWithTrust { card, from_domain }
}

/// A scorecard plus the sender's domain, to apply `trusted_domains`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorecardWithTrust {
    /// The score.
    pub card: Scorecard,
    from_domain: Option<String>,
}

impl std::ops::Deref for ScorecardWithTrust {
    type Target = Scorecard;
    fn deref(&self) -> &Scorecard {
        &self.card
    }
}

impl ScorecardWithTrust {
    /// The actions under `config`: a score tag, and above the threshold (unless the sender's domain
    /// is trusted) a move and a flag.
    pub fn actions(&self, config: &Config) -> Vec<Action> {
        let trusted = self.from_domain.as_deref().is_some_and(|d| {
            config
                .trusted_domains
                .iter()
                .any(|t| t.eq_ignore_ascii_case(d))
        });
        let mut actions = Vec::new();
        if !config.tag_prefix.is_empty() {
            actions.push(Action::Tag(format!(
                "{}{:.1}",
                config.tag_prefix, self.card.total
            )));
        }
        if self.card.total >= config.threshold && !trusted {
            actions.push(Action::MoveTo(config.folder.clone()));
            if !config.flag.is_empty() {
                actions.push(Action::AddFlag(config.flag.clone()));
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean() -> Signals {
        Signals {
            has_message_id: true,
            date: Some(1_700_000_000),
            now_seconds: 1_700_000_100,
            subject: "Meeting notes".into(),
            from_address: "ann@example.com".into(),
            from_name: "Ann".into(),
            text_len: 10,
            text: "see you".into(),
            ..Signals::default()
        }
    }

    #[test]
    fn clean_mail_scores_low_and_stays() {
        let card = score(&clean());
        assert_eq!(card.total, 0.0);
        assert_eq!(
            card.actions(&Config::default()),
            vec![Action::Tag("spam-score:0.0".into())]
        );
    }

    #[test]
    fn failures_add_up_and_move() {
        let s = Signals {
            authentication_results: vec![
                "mx.example; spf=fail smtp.mailfrom=x; dkim=none; dmarc=fail".into(),
            ],
            subject: "YOU HAVE WON!!!".into(),
            has_message_id: false,
            ..clean()
        };
        let card = score(&s);
        // spf 3 + dmarc 4 + shouting 2 + !!! 1 + no id 1.5
        assert_eq!(card.total, 11.5, "{:?}", card.reasons);
        let actions = card.actions(&Config::default());
        assert_eq!(
            actions[1..],
            [
                Action::MoveTo("Junk".into()),
                Action::AddFlag("$Junk".into())
            ]
        );
        let trusting = Config {
            trusted_domains: vec!["EXAMPLE.com".into()],
            ..Config::default()
        };
        assert_eq!(card.actions(&trusting).len(), 1);
    }

    #[test]
    fn passes_subtract_and_verdicts_need_a_boundary() {
        let s = Signals {
            authentication_results: vec!["x; spf=pass; dkim=pass; dmarc=pass; xspf=fail".into()],
            ..clean()
        };
        assert_eq!(score(&s).total, -3.5);
    }

    #[test]
    fn links() {
        let s = Signals {
            html: r#"<a href="http://203.0.113.9/login">http://paypal.com</a> <a href='https://bit.ly/x'>here</a>"#.into(),
            text_len: 0,
            ..clean()
        };
        let card = score(&s);
        // ip 2.5 + deceptive 3 + shortener 1 + html only 0.5
        assert_eq!(card.total, 7.0, "{:?}", card.reasons);
        let honest = Signals {
            html: r#"<a href="https://www.example.com/a">https://example.com</a>"#.into(),
            ..clean()
        };
        assert_eq!(score(&honest).total, 0.0);
    }

    #[test]
    fn bulk_shapes() {
        let s = Signals {
            subject: "4000     Your Vacation     35001".into(),
            recipients: 9,
            ..clean()
        };
        assert_eq!(score(&s).total, 2.5, "{:?}", score(&s).reasons);
        let few = Signals {
            recipients: 7,
            ..clean()
        };
        assert_eq!(score(&few).total, 0.0);
    }

    #[test]
    fn display_name_spoofing() {
        let s = Signals {
            from_name: "support@bank.example".into(),
            from_address: "x@evil.example".into(),
            ..clean()
        };
        assert_eq!(score(&s).total, 2.0);
    }

    #[test]
    fn config_is_validated() {
        assert!(
            Config {
                threshold: f64::NAN,
                ..Config::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Config {
                folder: " ".into(),
                ..Config::default()
            }
            .validate()
            .is_err()
        );
        assert!(serde_json::from_str::<Config>(r#"{"treshold": 3}"#).is_err());
    }
}

//! What a notification says, in one sentence, and where it leads: the same words in the app's
//! list and in emails. Titles and names are the ones stored with the notification.

use chrono::{TimeZone, Utc};
use serde_json::Value;

use super::Kind;

/// A notification's sentence and the path (on the edge) it leads to.
pub fn describe(kind: Kind, data: &Value) -> (String, String) {
    let s = |k: &str| data[k].as_str().unwrap_or_default().to_owned();
    let watch = format!("/watch?v={}", s("video"));
    match kind {
        Kind::NewVideo => (
            format!("{} published “{}”", s("channel_name"), s("title")),
            watch,
        ),
        Kind::CommentReply => (
            format!(
                "{} replied to your comment on “{}”: “{}”",
                s("actor_name"),
                s("title"),
                s("excerpt")
            ),
            watch,
        ),
        Kind::CommentLike => (
            format!("{} liked your comment on “{}”", s("actor_name"), s("title")),
            watch,
        ),
        Kind::Moderation => moderation(data),
        Kind::Billing => {
            let account = "/account".to_owned();
            match data["event"].as_str() {
                Some("membership_ending") => (
                    format!("Your membership ends on {}", day(data["until"].as_i64())),
                    account,
                ),
                _ => (
                    "A payment for your membership failed: update your payment method to keep it"
                        .into(),
                    account,
                ),
            }
        }
    }
}

fn moderation(data: &Value) -> (String, String) {
    let s = |k: &str| data[k].as_str().unwrap_or_default();
    let because = match s("reason") {
        "" => String::new(),
        r => format!(": {r}"),
    };
    let what = match s("target") {
        "comment" => format!("your comment on “{}”", s("title")),
        "user" => "your account".into(),
        _ => format!("your video “{}”", s("title")),
    };
    let link = match s("video") {
        "" => "/".to_owned(),
        v => format!("/watch?v={v}"),
    };
    if s("role") == "reporter" {
        let reported = match s("target") {
            "comment" => format!("a comment on “{}”", s("title")),
            _ => format!("“{}”", s("title")),
        };
        let text = match s("outcome") {
            "dismissed" => format!(
                "Moderators reviewed your report of {reported} and found nothing against the rules"
            ),
            _ => format!("Moderators reviewed your report of {reported} and acted on it"),
        };
        return (text, link);
    }
    let text = match (s("role"), s("action")) {
        (_, "take_down") => format!("A moderator took down {what}{because}"),
        (_, "remove_comment") => format!("A moderator removed {what}{because}"),
        (_, "restore") => format!("A moderator restored {what}"),
        (_, "suspend") => format!("Your account was suspended{because}"),
        (_, "reinstate") => "Your account was reinstated".into(),
        (_, other) => format!("A moderator acted on {what} ({other})"),
    };
    (text, link)
}

/// A Unix time as a day ("3 December 2026", UTC).
fn day(t: Option<i64>) -> String {
    t.and_then(|t| Utc.timestamp_opt(t, 0).single())
        .map(|d| d.format("%-d %B %Y").to_string())
        .unwrap_or_else(|| "the end of its period".into())
}

#[cfg(test)]
mod tests {
    use super::{describe, Kind};
    use serde_json::json;

    #[test]
    fn each_kind_reads_as_a_sentence_with_its_link() {
        let (t, l) = describe(
            Kind::NewVideo,
            &json!({"video": "v1", "title": "Alps", "channel_name": "Ada"}),
        );
        assert_eq!(
            (t.as_str(), l.as_str()),
            ("Ada published “Alps”", "/watch?v=v1")
        );
        let (t, l) = describe(
            Kind::Billing,
            &json!({"event": "membership_ending", "until": 1_796_256_000}),
        );
        assert_eq!(t, "Your membership ends on 3 December 2026");
        assert_eq!(l, "/account");
        let (t, _) = describe(
            Kind::Moderation,
            &json!({"role": "owner", "action": "take_down", "target": "video",
                    "title": "Alps", "video": "v1", "reason": "copyright"}),
        );
        assert_eq!(t, "A moderator took down your video “Alps”: copyright");
        let (t, l) = describe(
            Kind::Moderation,
            &json!({"role": "reporter", "outcome": "dismissed", "target": "comment", "title": "Alps"}),
        );
        assert_eq!(
            t,
            "Moderators reviewed your report of a comment on “Alps” and found nothing against the rules"
        );
        assert_eq!(l, "/");
    }
}

//! The learning filter's part in a new comment's decision: the rules decide
//! first ([`super::decide`]); then, when the filter (`crate::classifier`) is
//! ready and sure enough, it sends the comment to spam. Pure, like the
//! rules: the caller scores the comment with the cached model and passes
//! the score in.
//!
//! How it combines with the rules, as `decide` combines them with each other:
//! - a rule's spam verdict (honeypot, blocked word) stands, with its own
//!   reasons and rule; the score is still stored;
//! - the filter's spam beats a hold (held word, links, too fast): the comment
//!   goes to spam with reason `filter:…` alone, as a rule's spam verdict drops
//!   the holds' reasons;
//! - the filter's spam beats the known-author shortcut of `known` mode too:
//!   the author's own name and address count as evidence in the score (their
//!   approved comments taught the filter those tokens as ham), so a score
//!   still at the threshold means a text that looks like spam, written by
//!   the author or by someone typing their name and address;
//! - before the filter has learned [`crate::classifier::MIN_EXAMPLES`]
//!   examples of each kind, and with a threshold of 1, it never decides.

use crate::classifier::Score;
use crate::domain::Status;

use super::Decision;

/// The filter's rule name: `moderated_by` is `auto:filter`.
pub const RULE: &str = "filter";

/// `filter:0.997`: the reason a comment the filter sent to spam carries, its
/// probability rounded down to three decimals (so a score just under 1 never
/// reads `1.000`, nor one at the threshold less than it).
pub fn reason(probability: f64) -> String {
    // The nudge keeps 0.99 (0.98999… in binary) from reading 0.989.
    format!("{RULE}:{:.3}", (probability * 1000.0 + 1e-6).floor() / 1000.0)
}

/// The decision once the filter has had its say: `decision` unchanged unless
/// the model is `ready`, the threshold `spam_at` is below 1, the score is at
/// or above it, and no rule already sent the comment to spam.
pub fn judge(decision: Decision, score: &Score, ready: bool, spam_at: f64) -> Decision {
    let sure = ready && spam_at < 1.0 && score.probability >= spam_at;
    if !sure || decision.status == Status::Spam {
        return decision;
    }
    Decision {
        status: Status::Spam,
        reasons: vec![reason(score.probability)],
        moderated_by: Some(format!("auto:{RULE}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(probability: f64) -> Score {
        Score {
            probability,
            clues: Vec::new(),
        }
    }

    fn decision(status: Status, reasons: &[&str], moderated_by: Option<&str>) -> Decision {
        Decision {
            status,
            reasons: reasons.iter().map(|reason| (*reason).to_owned()).collect(),
            moderated_by: moderated_by.map(str::to_owned),
        }
    }

    #[test]
    fn a_sure_and_ready_filter_sends_a_queued_held_or_known_comment_to_spam() {
        let spam = decision(Status::Spam, &["filter:0.997"], Some("auto:filter"));
        for before in [
            decision(Status::Pending, &[], None),
            decision(Status::Pending, &["links:3", "too_fast"], None),
            decision(Status::Approved, &["known_author"], Some("auto:known-author")),
        ] {
            assert_eq!(judge(before, &score(0.9975), true, 0.99), spam);
        }
        assert_eq!(
            judge(decision(Status::Pending, &[], None), &score(0.99), true, 0.99).status,
            Status::Spam,
            "at the threshold counts"
        );
    }

    #[test]
    fn an_unready_unsure_or_switched_off_filter_changes_nothing() {
        let queued = decision(Status::Pending, &["too_fast"], None);
        assert_eq!(judge(queued.clone(), &score(0.999), false, 0.99), queued);
        assert_eq!(judge(queued.clone(), &score(0.989), true, 0.99), queued);
        assert_eq!(judge(queued.clone(), &score(1.0), true, 1.0), queued, "1 is off");
    }

    #[test]
    fn a_rule_that_said_spam_keeps_its_reasons() {
        let honeypot = decision(Status::Spam, &["honeypot"], Some("auto:honeypot"));
        assert_eq!(judge(honeypot.clone(), &score(0.999), true, 0.99), honeypot);
    }

    #[test]
    fn the_reason_rounds_down_to_three_decimals() {
        assert_eq!(reason(0.99749), "filter:0.997");
        assert_eq!(reason(0.99999), "filter:0.999");
        assert_eq!(reason(1.0), "filter:1.000");
        assert_eq!(reason(0.99), "filter:0.990");
    }
}

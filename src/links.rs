//! The use cases of one-click links, the buttons in mail: moderating a
//! comment, confirming a subscription to reply mail, unsubscribing. Each
//! looks at a link (for the page that asks to confirm) or acts on it (for the
//! POST from that page), in the same order: check the token against the key
//! stored now, check its purpose, then read or act through the store.
//!
//! The key is read from the store on every request rather than kept from
//! start-up, so `marginalia secret rotate` run by another process (or on
//! another instance) invalidates old links here at once.
//!
//! Routes call these and turn [`LinkRefusal`] into a page; what a token holds
//! and how it is signed is `notify::links`; the statements are the store's.
//! Nothing here knows about HTTP.

use time::OffsetDateTime;

use crate::comments::after_moderation;
use crate::domain::{Comment, Email, Status};
use crate::notify::links::{self, Claims, LinkError, ModerationAction, Purpose, UnsubscribeScope};
use crate::state::AppState;
use crate::store::{LinkModeration, StoreError, SubscriptionConfirmation, SubscriptionRecord};

/// Why a link was not acted on (or not shown). Nothing changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum LinkRefusal {
    /// Malformed, not signed with the current key, or expired.
    #[error(transparent)]
    Invalid(#[from] LinkError),
    /// A genuine link used at another address than its own (an unsubscribe
    /// link at `/moderate/…`, say). Its purpose is signed, so this is no
    /// attack that could succeed; it is refused like a malformed link.
    #[error("the link is not for this page")]
    WrongPurpose,
    /// A single-use link that has been used already.
    #[error("the link has already been used")]
    Used,
    /// What the link names is gone: the comment was deleted, or the
    /// subscription does not exist, has ended, or is another address's.
    #[error("what the link refers to no longer exists")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a moderation link stands for, to show before acting.
#[derive(Debug, Clone)]
pub struct ModerationLink {
    pub action: ModerationAction,
    pub comment: Comment,
    /// The moderator the link was mailed to.
    pub recipient: Email,
    /// When the link stops working (`None`: beyond the calendar).
    pub expires_at: Option<OffsetDateTime>,
}

/// A moderation done by link.
#[derive(Debug, Clone)]
pub struct LinkModerated {
    pub action: ModerationAction,
    pub comment: Comment,
    /// False when the comment already had that status (moderated otherwise
    /// in the meantime); the link is used up all the same.
    pub changed: bool,
}

/// A subscription confirmed by link.
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub subscription: SubscriptionRecord,
    /// Subscriptions of the address confirmed now, the named one included
    /// unless it was confirmed before.
    pub confirmed: u64,
}

/// What an unsubscribe link stands for.
#[derive(Debug, Clone)]
pub struct UnsubscribeLink {
    pub scope: UnsubscribeScope,
    pub recipient: Email,
    /// The thread, for [`UnsubscribeScope::Thread`].
    pub uri: Option<String>,
}

/// The status a moderation action sets.
pub fn status_of(action: ModerationAction) -> Status {
    match action {
        ModerationAction::Approve => Status::Approved,
        ModerationAction::Reject => Status::Rejected,
        ModerationAction::Spam => Status::Spam,
    }
}

/// `moderated_by` of a moderation by link: whom the link was mailed to.
pub fn moderated_by(recipient: &Email) -> String {
    format!("email:{}", recipient.as_str())
}

/// The moderation link `token` stands for, without acting on it: refused
/// when it is not genuine, not a moderation link, used, or its comment is gone.
pub async fn inspect_moderation(state: &AppState, token: &str) -> Result<ModerationLink, LinkRefusal> {
    let (claims, action) = moderation_claims(state, token).await?;
    let comment = state
        .store
        .comment(claims.subject)
        .await?
        .ok_or(LinkRefusal::Gone)?;
    if state.store.link_used(&claims.nonce.to_hex()).await? {
        return Err(LinkRefusal::Used);
    }
    Ok(ModerationLink {
        action,
        comment,
        expires_at: OffsetDateTime::from_unix_timestamp(claims.expires_at).ok(),
        recipient: claims.recipient,
    })
}

/// Acts on the moderation link `token`, once: sets the status with
/// `moderated_by = email:<recipient>` (recording the notification event like
/// any moderation), then invalidates the thread's cache and counts it.
pub async fn moderate(state: &AppState, token: &str) -> Result<LinkModerated, LinkRefusal> {
    let (claims, action) = moderation_claims(state, token).await?;
    let moderator = moderated_by(&claims.recipient);
    let outcome = state
        .store
        .moderate_by_link(
            claims.subject,
            status_of(action),
            &moderator,
            &claims.nonce.to_hex(),
        )
        .await?;
    match outcome {
        LinkModeration::Done(moderated) => {
            // The address stays out of the log; the database records it.
            after_moderation(state, &moderated, "email link");
            Ok(LinkModerated {
                action,
                changed: moderated.changed,
                comment: moderated.comment,
            })
        }
        LinkModeration::Used => Err(LinkRefusal::Used),
        LinkModeration::NoComment => Err(LinkRefusal::Gone),
    }
}

/// The subscription a confirmation link names, without confirming it.
pub async fn inspect_subscription(state: &AppState, token: &str) -> Result<SubscriptionRecord, LinkRefusal> {
    let claims = confirmation_claims(state, token).await?;
    let subscription = state
        .store
        .subscription(claims.subject)
        .await?
        .filter(|subscription| subscription.is_active_for(claims.recipient.as_str()))
        .ok_or(LinkRefusal::Gone)?;
    if state.store.link_used(&claims.nonce.to_hex()).await? {
        return Err(LinkRefusal::Used);
    }
    Ok(subscription)
}

/// Confirms the subscription a confirmation link names, once (and with it
/// every other pending subscription of the same address).
pub async fn confirm_subscription(state: &AppState, token: &str) -> Result<Confirmed, LinkRefusal> {
    let claims = confirmation_claims(state, token).await?;
    let outcome = state
        .store
        .confirm_subscription(claims.subject, claims.recipient.as_str(), &claims.nonce.to_hex())
        .await?;
    match outcome {
        SubscriptionConfirmation::Confirmed {
            subscription,
            confirmed,
        } => {
            tracing::info!(
                subscription = subscription.comment_id,
                confirmed,
                "subscription confirmed"
            );
            Ok(Confirmed {
                subscription,
                confirmed,
            })
        }
        SubscriptionConfirmation::Used => Err(LinkRefusal::Used),
        SubscriptionConfirmation::NotFound => Err(LinkRefusal::Gone),
    }
}

/// What an unsubscribe link stands for, without acting on it. A thread's
/// link whose subscription is gone (its comment deleted) is refused.
pub async fn inspect_unsubscribe(state: &AppState, token: &str) -> Result<UnsubscribeLink, LinkRefusal> {
    let (claims, scope) = unsubscribe_claims(state, token).await?;
    let uri = match scope {
        UnsubscribeScope::Everything => None,
        UnsubscribeScope::Thread => Some(
            state
                .store
                .subscription(claims.subject)
                .await?
                .filter(|subscription| subscription.email == claims.recipient.as_str())
                .ok_or(LinkRefusal::Gone)?
                .uri,
        ),
    };
    Ok(UnsubscribeLink {
        scope,
        recipient: claims.recipient,
        uri,
    })
}

/// Acts on an unsubscribe link. Not single use: one-click unsubscribing
/// (RFC 8058) may be repeated by mail clients, and repeating changes nothing.
pub async fn unsubscribe(state: &AppState, token: &str) -> Result<UnsubscribeLink, LinkRefusal> {
    let (claims, scope) = unsubscribe_claims(state, token).await?;
    let email = claims.recipient.as_str();
    let (uri, ended) = match scope {
        UnsubscribeScope::Everything => (None, state.store.end_all_subscriptions(email).await?),
        UnsubscribeScope::Thread => {
            let ended = state
                .store
                .end_thread_subscriptions(claims.subject, email)
                .await?
                .ok_or(LinkRefusal::Gone)?;
            let uri = state.store.subscription(claims.subject).await?.map(|s| s.uri);
            (uri, ended)
        }
    };
    tracing::info!(subscription = claims.subject, scope = ?scope, ended, "unsubscribed");
    Ok(UnsubscribeLink {
        scope,
        recipient: claims.recipient,
        uri,
    })
}

/// The token's claims if it is genuine (signed with the key stored now) and
/// unexpired; its purpose is for the caller to check.
async fn genuine(state: &AppState, token: &str) -> Result<Claims, LinkRefusal> {
    // Junk is refused before the database is asked for the key.
    if token.len() > links::MAX_TOKEN_CHARS {
        return Err(LinkError::Malformed.into());
    }
    let secret = state.store.current_link_secret().await?;
    Ok(links::verify(
        &secret,
        token,
        OffsetDateTime::now_utc().unix_timestamp(),
    )?)
}

async fn moderation_claims(state: &AppState, token: &str) -> Result<(Claims, ModerationAction), LinkRefusal> {
    let claims = genuine(state, token).await?;
    match claims.purpose {
        Purpose::Moderate(action) => Ok((claims, action)),
        _ => Err(LinkRefusal::WrongPurpose),
    }
}

async fn confirmation_claims(state: &AppState, token: &str) -> Result<Claims, LinkRefusal> {
    let claims = genuine(state, token).await?;
    match claims.purpose {
        Purpose::ConfirmSubscription => Ok(claims),
        _ => Err(LinkRefusal::WrongPurpose),
    }
}

async fn unsubscribe_claims(
    state: &AppState,
    token: &str,
) -> Result<(Claims, UnsubscribeScope), LinkRefusal> {
    let claims = genuine(state, token).await?;
    match claims.purpose {
        Purpose::Unsubscribe(scope) => Ok((claims, scope)),
        _ => Err(LinkRefusal::WrongPurpose),
    }
}

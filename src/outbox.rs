//! The durable outbox: turns notification events into deliveries and
//! delivers them, off the request path, with retries.
//!
//! Three steps, each a committed row before the next (so a `kill -9` at any
//! point loses nothing; at worst a delivery goes out twice, with the same
//! `Message-ID` or webhook `id` so receivers can drop the copy):
//!
//! 1. a submission, moderation or deletion writes a `notification_events` row
//!    in its own transaction (`store`);
//! 2. the **dispatcher** claims events and decides what each one causes: the
//!    moderators' mail (or, beyond the hourly allowance, a place in the next
//!    digest), a webhook call per URL, the double opt-in mail of a reader who
//!    asked for replies, the reply mail of a confirmed subscriber. Mail is
//!    rendered here, once, and stored formatted, so every retry sends the
//!    same bytes; the events go and the deliveries arrive in one transaction;
//! 3. the **sender** claims due deliveries and sends them, a few at once
//!    ([`notify::SENDS_AT_ONCE`]): SMTP through one lettre transport,
//!    webhooks through one HTTP client, signed at sending time. A failure
//!    is retried on [`notify::RETRY_SCHEDULE`] (the first retry within
//!    30 s, then backing off to hourly, for a little over a day), then
//!    given up, logged and counted.
//!
//! With several instances on PostgreSQL, claims take rows with `FOR UPDATE
//! SKIP LOCKED` and hold them for a lease: each row is handled by one
//! instance, and one that dies mid-way only delays its rows until the lease
//! ends. The sender bounds every send and starts none that could end after
//! its claim's lease, handing the rest of a slow claim back instead, so a
//! slow server cannot make two instances send the same row.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use futures_util::{StreamExt, stream};
use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::akismet;
use crate::domain::{Comment, CommentId, Status};
use crate::i18n::Lang;
use crate::notify;
use crate::notify::links::{self, Claims, LinkSecret, ModerationAction, Purpose, UnsubscribeScope};
use crate::notify::mail::{
    self, Addressing, CommentForModerators, DigestEntry, MessageId, ModerationLinks, ReplyForSubscriber,
    UnsubscribeLinks,
};
use crate::notify::webhook::{self, WebhookComment, WebhookEvent, WebhookPayload};
use crate::state::AppState;
use crate::store::{
    Delivery, DeliveryKind, EventOutcome, HeldComments, NewDelivery, NewSubscription, NotificationEvent,
    Store, StoreError,
};
use crate::tasks::{CancellationToken, Supervisor};

/// How often the dispatcher and the sender look for work.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Events handled per claim. Not small: a claim and its completion are two
/// commits, and on SQLite every commit waits for the one writer and an fsync
/// that the submissions' batch writer needs too. Not large either: every
/// mail a claim causes is composed and held until the claim completes, and
/// claims of 1,000 with a raised allowance held ~28 MiB of mail at once (peak
/// RSS 85.5 MiB in `bench/mem_peak.py`'s 10,000-mail backlog, 57.1 with 100).
const EVENTS_PER_CLAIM: u32 = 100;
/// Comments a digest lists at most, oldest first; it counts the rest and
/// links to the queue, where a moderator can act on many at once.
const DIGEST_LISTED: usize = 50;
/// Deliveries sent per claim.
const DELIVERIES_PER_CLAIM: u32 = 10;
/// How long a claim is held. The sender never starts a send that could end
/// after its claim's lease (see [`SEND_LIMIT`]), so a live instance never has
/// a delivery taken from it while it may still send it.
const CLAIM_LEASE: time::Duration = time::Duration::minutes(2);
/// The longest one delivery may take, all of it: connecting and every SMTP
/// command (each may take up to `notify::smtp::SMTP_TIMEOUT`), or the
/// webhook's answer. A claim holds several deliveries sent one after the
/// other, and a slow server can make the whole claim outlast its lease: then
/// another instance would claim and send the same rows again.
const SEND_LIMIT: Duration = Duration::from_secs(60);
const _: () = assert!(
    SEND_LIMIT.as_secs() * 2 <= CLAIM_LEASE.whole_seconds().unsigned_abs(),
    "a claim's lease must cover at least two whole sends"
);
/// The window of the moderators' allowance of single mails.
const HOUR: time::Duration = time::Duration::hours(1);
/// Reply mails one address gets per day at most; beyond, replies are not
/// mailed to it that day (they are on the page).
pub const MAX_REPLY_MAILS_PER_DAY: i64 = 20;
/// A reader's address gets at most one confirmation mail per this period.
const CONFIRMATION_INTERVAL: time::Duration = time::Duration::days(1);
/// How long sent deliveries are kept (the daily budgets look back a day).
const KEEP_SENT: time::Duration = time::Duration::days(2);
/// How often sent rows older than [`KEEP_SENT`] are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);
/// How long a webhook receiver gets to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the dispatcher and the sender under `supervisor`. Without mail or
/// webhooks configured, only the dispatcher runs, to discard the events of
/// moderation actions (submissions record none then).
pub fn start(state: Arc<AppState>, supervisor: &mut Supervisor) -> anyhow::Result<()> {
    let transport = match &state.notify.mail {
        Some(mail) => Some(mail.transport()?),
        None => None,
    };
    let http = reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .user_agent(concat!("marginalia/", env!("CARGO_PKG_VERSION")))
        // A webhook URL is a fixed endpoint: a redirect would send the signed
        // body somewhere nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the webhook client")?;
    // Akismet feedback is an outbox delivery too.
    let akismet = match &state.akismet {
        Some(settings) => Some(akismet::Client::new(settings, &state.site, state.lang)?),
        None => None,
    };
    let dispatcher_state = state.clone();
    // A submission's moderator mail waits (bounded) for its Akismet check,
    // see `crate::akismet`.
    let wait_for_checks = akismet
        .as_ref()
        .map_or(time::Duration::ZERO, |client| signed(client.mail_wait()));
    supervisor.spawn("outbox dispatcher", |stop| async move {
        // SQLite serves one instance per file, so any claim still held was
        // this process's before it stopped (killed, say): take it back now
        // rather than wait out its lease.
        if matches!(dispatcher_state.store, Store::Sqlite(_)) {
            match dispatcher_state.store.release_all_claims().await {
                Ok(0) => {}
                Ok(released) => tracing::info!(released, "outbox claims of the previous run taken back"),
                Err(error) => {
                    tracing::warn!(error = %error, "could not take back the previous run's outbox claims")
                }
            }
        }
        run_every(stop, move || {
            let state = dispatcher_state.clone();
            async move { dispatch(&state, wait_for_checks).await }
        })
        .await
    });
    if state.notify.is_enabled() || akismet.is_some() {
        let sender = Sender {
            state,
            transport,
            http,
            akismet,
            last_prune: std::sync::Mutex::new(None),
        };
        let sender = Arc::new(sender);
        supervisor.spawn("outbox sender", |stop| {
            run_every(stop, move || {
                let sender = sender.clone();
                async move { sender.send_due().await }
            })
        });
    }
    Ok(())
}

/// Runs `step` every [`POLL_INTERVAL`] until `stop`; a failing step (the
/// database away) is logged and tried again at the next tick. A step in
/// progress at shutdown finishes (it only commits rows), then the loop ends.
async fn run_every<F, Fut>(stop: CancellationToken, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = step().await {
            tracing::warn!(error = %error, "outbox step failed; retrying at the next tick");
        }
    }
}

/// Queues a test mail to `to` (the moderation page's "send me a test mail").
/// `Ok(false)` when no SMTP server is configured.
pub async fn queue_test_mail(state: &AppState, to: Mailbox) -> Result<bool, QueueError> {
    let Some(mail) = &state.notify.mail else {
        return Ok(false);
    };
    let composer = Composer::new(state, &mail.from);
    let message = mail::test_mail(&composer.addressing(to.clone(), state.lang), &composer.site)?;
    state
        .store
        .enqueue_delivery(&NewDelivery {
            kind: DeliveryKind::TestMail,
            recipient: to.email.to_string(),
            payload: message.formatted(),
        })
        .await?;
    Ok(true)
}

/// Why a delivery could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("composing the mail failed")]
    Compose(#[from] lettre::error::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One dispatcher step: handle a claim of events, then send the digests
/// that are due.
async fn dispatch(state: &AppState, wait_for_checks: time::Duration) -> Result<(), StoreError> {
    loop {
        let (claim, events) = state
            .store
            .claim_events(EVENTS_PER_CLAIM, CLAIM_LEASE, wait_for_checks)
            .await?;
        if events.is_empty() {
            break;
        }
        let count = events.len();
        let outcome = plan(state, &events).await?;
        if !state.store.complete_events(&claim, &events, &outcome).await? {
            tracing::warn!(count, "notification events were taken over by another instance");
        }
        if count < EVENTS_PER_CLAIM as usize {
            break;
        }
    }
    if state.notify.mail.is_some() {
        send_due_digests(state).await?;
    }
    Ok(())
}

/// Decides what a claim of events causes. Budgets (the moderators' hourly
/// allowance, readers' daily limits) count what is already queued plus what
/// this claim adds.
async fn plan(state: &AppState, events: &[NotificationEvent]) -> Result<EventOutcome, StoreError> {
    let mut outcome = EventOutcome::default();
    let settings = &state.notify;
    if !settings.is_enabled() {
        return Ok(outcome);
    }
    let secret = state.store.current_link_secret().await?;
    let now = OffsetDateTime::now_utc();
    let mut budget = Budget::default();

    // First, which moderators get a single mail for each new comment and
    // which a digest entry: decided before anything is read, so that in a
    // flood beyond the allowance most events read nothing at all.
    let mut single_mails: HashMap<i64, Vec<&crate::domain::Email>> = HashMap::new();
    // Comments beyond the allowance, per moderator: one stored row each.
    let mut held: HashMap<&str, Vec<CommentId>> = HashMap::new();
    if settings.mail.is_some() {
        for event in events.iter().filter(|event| is_new_in_queue(event)) {
            for moderator in &settings.moderator_emails {
                let address = moderator.as_str();
                let sent = budget
                    .count(state, DeliveryKind::ModeratorMail, address, now - HOUR)
                    .await?;
                if sent < i64::from(settings.per_hour.get()) {
                    budget.add(DeliveryKind::ModeratorMail, address);
                    single_mails.entry(event.id).or_default().push(moderator);
                } else {
                    held.entry(address).or_default().push(event.comment_id);
                }
            }
        }
    }
    outcome.held = held
        .into_iter()
        .map(|(recipient, comment_ids)| HeldComments {
            recipient: recipient.to_owned(),
            comment_ids,
        })
        .collect();
    // What is composed from a comment: webhook bodies, single moderator
    // mails, a reader's confirmation, a reply mail.
    let needs_comment = |event: &NotificationEvent| {
        settings.webhooks.is_some()
            || (settings.mail.is_some()
                && ((event.submitted && event.wants_replies)
                    || event.kind == WebhookEvent::Approved
                    || single_mails.contains_key(&event.id)))
    };
    // One read for those comments; a deletion brings its own copy.
    let ids: Vec<CommentId> = events
        .iter()
        .filter(|event| event.deleted.is_none() && needs_comment(event))
        .map(|event| event.comment_id)
        .collect();
    let comments = state.store.comments_by_ids(&ids).await?;
    // A comment deleted soon after it changed: its deletion (usually in the
    // same claim) carries the copy its earlier events need.
    let deleted: HashMap<CommentId, &Comment> = events
        .iter()
        .filter_map(|event| Some((event.comment_id, event.deleted.as_ref()?)))
        .collect();
    for event in events.iter().filter(|event| needs_comment(event)) {
        let found = event.deleted.as_ref().or_else(|| comments.get(&event.comment_id));
        let Some(comment) = found.or_else(|| deleted.get(&event.comment_id).copied()) else {
            // Deleted before its event was handled, and its deletion is in a
            // later claim: that event tells the webhooks.
            continue;
        };
        if let Some(webhooks) = &settings.webhooks {
            for url in &webhooks.urls {
                // A payload per receiver: its `id` names this one delivery.
                let payload = webhook_payload(state, event, comment);
                outcome.deliveries.push(NewDelivery {
                    kind: DeliveryKind::Webhook,
                    recipient: url.to_string(),
                    payload: payload.body(webhooks.format, &state.site.name),
                });
            }
        }
        let Some(mail) = &settings.mail else {
            continue;
        };
        let composer = Composer::new(state, &mail.from);
        if let Some(moderators) = single_mails.get(&event.id) {
            let parent = match comment.parent_id {
                Some(id) => state.store.comment(id).await?,
                None => None,
            };
            let view = CommentForModerators::from_comment(comment, parent.as_ref());
            for moderator in moderators {
                let address = moderator.as_str();
                let links = composer.moderation_links(&secret, comment, moderator, now);
                let message = mail::moderator_notification(
                    &composer.addressing(mailbox(address), state.lang),
                    &composer.site,
                    &view,
                    &links,
                    &composer.queue_url(),
                );
                if let Some(payload) = formatted(message, event) {
                    outcome.deliveries.push(NewDelivery {
                        kind: DeliveryKind::ModeratorMail,
                        recipient: address.to_owned(),
                        payload,
                    });
                }
            }
        }
        // An address no mail can reach (a placeholder, or the empty email
        // of a comment anonymized before its event was handled) subscribes
        // to nothing.
        if event.submitted && event.wants_replies && notify::can_receive_mail(&comment.email) {
            outcome.subscriptions.push(NewSubscription {
                comment_id: comment.id,
                uri: comment.uri.clone(),
                email: comment.email.clone(),
            });
            let recent = budget
                .count(
                    state,
                    DeliveryKind::Confirmation,
                    &comment.email,
                    now - CONFIRMATION_INTERVAL,
                )
                .await?;
            // Not re-sent within a day: a form cannot be used to flood an
            // address; confirming the earlier mail confirms this request too.
            if recent == 0
                && notify::can_receive_mail(&comment.email)
                && let Ok(recipient) = comment.email.parse::<Address>()
            {
                let claims = Claims::new(
                    Purpose::ConfirmSubscription,
                    comment.id,
                    subscriber(&comment.email),
                    now,
                    signed(settings.link_ttl),
                );
                let confirm_url = composer.link_url("subscribe", &links::sign(&secret, &claims));
                let message = mail::subscription_confirmation(
                    &composer.addressing(Mailbox::new(None, recipient), reader_lang(state, comment)),
                    &composer.site,
                    &comment.uri,
                    &confirm_url,
                );
                if let Some(payload) = formatted(message, event) {
                    budget.add(DeliveryKind::Confirmation, &comment.email);
                    outcome.deliveries.push(NewDelivery {
                        kind: DeliveryKind::Confirmation,
                        recipient: comment.email.clone(),
                        payload,
                    });
                }
            }
        }
        if event.kind == WebhookEvent::Approved
            && let Some(delivery) = reply_mail(state, &composer, &secret, comment, &mut budget, now).await?
        {
            outcome.deliveries.push(delivery);
        }
    }
    Ok(outcome)
}

/// A new submission that entered the moderation queue: what moderators are
/// mailed about.
fn is_new_in_queue(event: &NotificationEvent) -> bool {
    event.submitted && event.kind == WebhookEvent::Pending
}

/// The mail to the confirmed subscriber of the comment that `reply` answers,
/// when there is one, it is not the reply's own author, and the address has
/// not had its day's mails yet.
async fn reply_mail(
    state: &AppState,
    composer: &Composer,
    secret: &LinkSecret,
    reply: &Comment,
    budget: &mut Budget,
    now: OffsetDateTime,
) -> Result<Option<NewDelivery>, StoreError> {
    let Some(parent_id) = reply.parent_id else {
        return Ok(None);
    };
    let Some(address) = state.store.active_subscriber(parent_id).await? else {
        return Ok(None);
    };
    if address.eq_ignore_ascii_case(&reply.email) || !notify::can_receive_mail(&address) {
        return Ok(None);
    }
    let sent = budget
        .count(
            state,
            DeliveryKind::Reply,
            &address,
            now - time::Duration::days(1),
        )
        .await?;
    if sent >= MAX_REPLY_MAILS_PER_DAY {
        tracing::info!(
            parent_id,
            "reply mail skipped: the subscriber's daily limit is reached"
        );
        return Ok(None);
    }
    let Some(parent) = state.store.comment(parent_id).await? else {
        return Ok(None);
    };
    let Ok(recipient) = address.parse::<Address>() else {
        return Ok(None);
    };
    let unsubscribe_url = |scope| {
        let claims = Claims::new(
            Purpose::Unsubscribe(scope),
            parent_id,
            subscriber(&address),
            now,
            // Unsubscribing must keep working as long as mail may arrive.
            signed(notify::settings::MAX_LINK_TTL),
        );
        composer.link_url("unsubscribe", &links::sign(secret, &claims))
    };
    // The subscriber wrote the parent: their page's language.
    let message = mail::reply_notification(
        &composer.addressing(Mailbox::new(None, recipient), reader_lang(state, &parent)),
        &composer.site,
        &ReplyForSubscriber {
            uri: reply.uri.clone(),
            reply_name: reply.name.clone(),
            reply_text: reply.body.clone(),
            your_text: parent.body.clone(),
        },
        &UnsubscribeLinks {
            thread: unsubscribe_url(UnsubscribeScope::Thread),
            everything: unsubscribe_url(UnsubscribeScope::Everything),
        },
    );
    let Ok(message) = message else {
        tracing::error!(id = reply.id, "the reply mail could not be composed");
        return Ok(None);
    };
    budget.add(DeliveryKind::Reply, &address);
    Ok(Some(NewDelivery {
        kind: DeliveryKind::Reply,
        recipient: address,
        payload: message.formatted(),
    }))
}

/// Sends each moderator's digest once the oldest comment held for it has
/// waited an hour: at most one digest per moderator per hour.
async fn send_due_digests(state: &AppState) -> Result<(), StoreError> {
    let Some(mail) = &state.notify.mail else {
        return Ok(());
    };
    let now = OffsetDateTime::now_utc();
    for moderator in &state.notify.moderator_emails {
        let recipient = moderator.as_str().to_owned();
        match state.store.oldest_held_comment(&recipient).await? {
            Some(oldest) if oldest <= now - HOUR => {}
            _ => continue,
        }
        let batches = state.store.digest_batches(&recipient).await?;
        if batches.is_empty() {
            continue;
        }
        let batch_ids: Vec<i64> = batches.iter().map(|batch| batch.id).collect();
        let mut held: Vec<CommentId> = batches.into_iter().flat_map(|batch| batch.comment_ids).collect();
        held.sort_unstable();
        held.dedup();
        // The oldest that still exist, read a chunk at a time: after a spam
        // wave most held comments are usually deleted already.
        let mut listed: Vec<Comment> = Vec::with_capacity(DIGEST_LISTED.min(held.len()));
        for chunk in held.chunks(DIGEST_LISTED * 4) {
            let comments = state.store.comments_by_ids(chunk).await?;
            listed.extend(chunk.iter().filter_map(|id| comments.get(id).cloned()));
            if listed.len() >= DIGEST_LISTED {
                listed.truncate(DIGEST_LISTED);
                break;
            }
        }
        if listed.is_empty() {
            // Every held comment was deleted meanwhile: nothing to tell.
            state.store.complete_digest(&batch_ids, None).await?;
            continue;
        }
        let secret = state.store.current_link_secret().await?;
        let composer = Composer::new(state, &mail.from);
        let moderator = subscriber(&recipient);
        let mut digest = Vec::with_capacity(listed.len());
        for comment in &listed {
            let parent = match comment.parent_id {
                Some(id) => state.store.comment(id).await?,
                None => None,
            };
            digest.push(DigestEntry {
                comment: CommentForModerators::from_comment(comment, parent.as_ref()),
                links: composer.moderation_links(&secret, comment, &moderator, now),
            });
        }
        let message = mail::moderator_digest(
            &composer.addressing(mailbox(&recipient), state.lang),
            &composer.site,
            &digest,
            held.len() as u64,
            &composer.queue_url(),
        );
        let Ok(message) = message else {
            tracing::error!("a digest could not be composed");
            continue;
        };
        let queued = state
            .store
            .complete_digest(
                &batch_ids,
                Some(&NewDelivery {
                    kind: DeliveryKind::Digest,
                    recipient: recipient.clone(),
                    payload: message.formatted(),
                }),
            )
            .await?;
        if queued {
            tracing::info!(comments = digest.len(), "moderator digest queued");
        }
    }
    Ok(())
}

/// Counts per (kind, recipient) of what is queued already plus what the
/// current claim adds, so one claim cannot overshoot a budget.
#[derive(Default)]
struct Budget {
    counted: HashMap<(DeliveryKind, String), i64>,
}

impl Budget {
    async fn count(
        &mut self,
        state: &AppState,
        kind: DeliveryKind,
        recipient: &str,
        since: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let key = (kind, recipient.to_ascii_lowercase());
        if let Some(count) = self.counted.get(&key) {
            return Ok(*count);
        }
        let count = state.store.deliveries_since(kind, recipient, since).await?;
        self.counted.insert(key, count);
        Ok(count)
    }

    fn add(&mut self, kind: DeliveryKind, recipient: &str) {
        *self
            .counted
            .entry((kind, recipient.to_ascii_lowercase()))
            .or_default() += 1;
    }
}

/// What every message of this instance shares: the site, the From, the
/// public URL links start with.
struct Composer {
    site: mail::Site,
    from: Mailbox,
    public_url: String,
    link_ttl: Duration,
}

impl Composer {
    fn new(state: &AppState, from: &Mailbox) -> Self {
        Self {
            site: mail::Site {
                name: state.site.name.clone(),
                url: state.site.site_url.to_string(),
            },
            from: from.clone(),
            public_url: state.site.public_url.as_str().trim_end_matches('/').to_owned(),
            link_ttl: state.notify.link_ttl,
        }
    }

    /// A fresh `Message-ID` on the From address's domain. It is stored with
    /// the formatted message, so every retry carries the same one. `lang` is
    /// the recipient's language.
    fn addressing(&self, to: Mailbox, lang: Lang) -> Addressing {
        let unique = links::Nonce::random().to_hex();
        let domain = self.from.email.domain();
        let message_id = MessageId::new(&unique, domain)
            .or_else(|_| MessageId::new(&unique, "marginalia.invalid"))
            .expect("a hex id on a fixed domain is a valid Message-ID");
        Addressing {
            from: self.from.clone(),
            to,
            message_id,
            date: SystemTime::now(),
            lang,
        }
    }

    fn link_url(&self, path: &str, token: &str) -> String {
        format!("{}/{path}/{token}", self.public_url)
    }

    fn queue_url(&self) -> String {
        format!("{}/admin", self.public_url)
    }

    fn moderation_links(
        &self,
        secret: &LinkSecret,
        comment: &Comment,
        moderator: &crate::domain::Email,
        now: OffsetDateTime,
    ) -> ModerationLinks {
        let link = |action| {
            let claims = Claims::moderate(action, comment.id, moderator.clone(), now, signed(self.link_ttl));
            self.link_url("moderate", &links::sign(secret, &claims))
        };
        ModerationLinks {
            approve: link(ModerationAction::Approve),
            reject: link(ModerationAction::Reject),
            spam: link(ModerationAction::Spam),
        }
    }
}

/// The webhook body of an event: the comment's public shape, never its
/// author's address, IP or user agent. The status is the one the event
/// reports (the comment may have moved on since); for a deletion, the one it
/// had.
fn webhook_payload(state: &AppState, event: &NotificationEvent, comment: &Comment) -> WebhookPayload {
    let status = event_status(event.kind).unwrap_or(comment.status);
    WebhookPayload {
        event: event.kind,
        // Unique per delivery (event and receiver), and stable across its
        // retries because it is stored in the body.
        id: format!("evt_{}_{}", event.id, links::Nonce::random().to_hex()),
        created_at: event.created_at,
        comment: WebhookComment {
            public: comment.to_public(true),
            uri: comment.uri.clone(),
            status,
            admin_url: format!(
                "{}/admin?status={}",
                state.site.public_url.as_str().trim_end_matches('/'),
                status
            ),
        },
    }
}

/// The status a comment event reports; `None` for a deletion.
fn event_status(event: WebhookEvent) -> Option<Status> {
    match event {
        WebhookEvent::Pending => Some(Status::Pending),
        WebhookEvent::Approved => Some(Status::Approved),
        WebhookEvent::Rejected => Some(Status::Rejected),
        WebhookEvent::Spam => Some(Status::Spam),
        WebhookEvent::Deleted => None,
    }
}

fn formatted(
    message: Result<lettre::Message, lettre::error::Error>,
    event: &NotificationEvent,
) -> Option<Vec<u8>> {
    match message {
        Ok(message) => Some(message.formatted()),
        Err(error) => {
            // A comment whose mail cannot be composed must not block the
            // rest of the claim; it is dropped loudly.
            tracing::error!(event = event.id, error = %error, "a notification mail could not be composed");
            None
        }
    }
}

/// The language of mail to the author of `comment`: the one their page was
/// in (its `lang`, when the service speaks it or a language it falls back
/// to), else the configured one. Moderators always get the configured one.
fn reader_lang(state: &AppState, comment: &Comment) -> Lang {
    comment
        .lang
        .as_deref()
        .and_then(Lang::from_tag)
        .unwrap_or(state.lang)
}

/// A moderator's mailbox from a validated address.
fn mailbox(address: &str) -> Mailbox {
    match address.parse::<Address>() {
        Ok(address) => Mailbox::new(None, address),
        // Moderator addresses were validated at start-up.
        Err(_) => Mailbox::new(None, Address::new("invalid", "invalid").expect("a fixed address")),
    }
}

/// The recipient of a reader's link, from a stored (validated) address.
fn subscriber(address: &str) -> crate::domain::Email {
    crate::domain::Email::parse(address)
        .or_else(|_| crate::domain::Email::parse("invalid@invalid.invalid"))
        .expect("a fixed address parses")
}

/// A link lifetime as `time` counts it (start-up caps it at a year, so it fits).
fn signed(ttl: Duration) -> time::Duration {
    time::Duration::try_from(ttl).unwrap_or(time::Duration::days(365))
}

/// True while a claim taken `elapsed` ago can still start a send: one that
/// takes all of [`SEND_LIMIT`] still ends before the claim's lease does.
fn lease_covers_a_send(elapsed: Duration) -> bool {
    elapsed + SEND_LIMIT < CLAIM_LEASE.unsigned_abs()
}

/// Delivers what is due.
struct Sender {
    state: Arc<AppState>,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    http: reqwest::Client,
    /// Akismet, for its feedback deliveries, when configured.
    akismet: Option<akismet::Client>,
    /// When sent rows were last pruned: a scan of the table, so not every tick.
    last_prune: std::sync::Mutex<Option<Instant>>,
}

impl Sender {
    /// Sends claims of due deliveries until none is due, recording each
    /// outcome; prunes old sent rows now and then.
    async fn send_due(&self) -> Result<(), StoreError> {
        let store = &self.state.store;
        loop {
            // Taken before the claim: the lease may start any time after.
            let claimed_at = Instant::now();
            let deliveries = store.claim_deliveries(DELIVERIES_PER_CLAIM, CLAIM_LEASE).await?;
            if deliveries.is_empty() {
                break;
            }
            let count = deliveries.len();
            // A few at once: each send waits on the far end (a mail
            // server's answer, a webhook's), and one after the other a
            // backlog drained at ~22 mails/s even from a local relay.
            let mut sends = stream::iter(deliveries)
                .map(|delivery| self.send_and_record(store, claimed_at, delivery))
                .buffer_unordered(notify::SENDS_AT_ONCE);
            let mut handed_back = Vec::new();
            while let Some(outcome) = sends.next().await {
                if let Some(id) = outcome? {
                    handed_back.push(id);
                }
            }
            if !handed_back.is_empty() {
                // Handed back untried, while the lease still keeps every
                // other instance off them; the next claim takes them.
                store.release_deliveries(&handed_back).await?;
                tracing::warn!(
                    count = handed_back.len(),
                    "slow deliveries: the rest of a claim is handed back before its lease ends"
                );
                break;
            }
            if count < DELIVERIES_PER_CLAIM as usize {
                break;
            }
        }
        let prune_due = {
            let mut last = self
                .last_prune
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let due = last.is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if prune_due {
            store
                .prune_sent_deliveries(OffsetDateTime::now_utc() - KEEP_SENT)
                .await?;
        }
        Ok(())
    }

    /// Sends one claimed delivery and records the outcome; `Some(id)` when it
    /// was not even started because its claim's lease could not cover it.
    /// The check is made as the send starts, whatever ran before it.
    async fn send_and_record(
        &self,
        store: &Store,
        claimed_at: Instant,
        delivery: Delivery,
    ) -> Result<Option<i64>, StoreError> {
        if !lease_covers_a_send(claimed_at.elapsed()) {
            return Ok(Some(delivery.id));
        }
        let result = match tokio::time::timeout(SEND_LIMIT, self.send(&delivery)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", SEND_LIMIT.as_secs())),
        };
        self.record(store, &delivery, result).await?;
        Ok(None)
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), String> {
        if delivery.kind.is_akismet() {
            let Some(akismet) = &self.akismet else {
                return Err("Akismet is not configured (MARGINALIA_AKISMET_KEY)".into());
            };
            akismet
                .send_feedback(&self.state.store, delivery.kind, &delivery.payload)
                .await
        } else if delivery.kind.is_mail() {
            self.send_mail(delivery).await
        } else {
            self.call_webhook(delivery).await
        }
    }

    async fn send_mail(&self, delivery: &Delivery) -> Result<(), String> {
        let (Some(transport), Some(mail)) = (&self.transport, &self.state.notify.mail) else {
            return Err("no SMTP server is configured".into());
        };
        // The last guard: nothing queues mail to such an address.
        if !notify::can_receive_mail(&delivery.recipient) {
            return Err("the recipient is a placeholder address (.invalid) and receives no mail".into());
        }
        let to: Address = delivery
            .recipient
            .parse()
            .map_err(|_| "the recipient is not a mail address".to_owned())?;
        let envelope =
            Envelope::new(Some(mail.from.email.clone()), vec![to]).map_err(|error| error.to_string())?;
        transport
            .send_raw(&envelope, &delivery.payload)
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    async fn call_webhook(&self, delivery: &Delivery) -> Result<(), String> {
        let Some(webhooks) = &self.state.notify.webhooks else {
            return Err("no webhook is configured".into());
        };
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = webhook::signature_header(
            webhooks.secret.expose_secret().as_bytes(),
            timestamp,
            &delivery.payload,
        );
        let response = self
            .http
            .post(&delivery.recipient)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(webhook::SIGNATURE_HEADER, signature)
            .body(delivery.payload.clone())
            .send()
            .await
            // Without the URL: chat webhook URLs are credentials.
            .map_err(|error| format!("request failed: {}", error.without_url()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {}", response.status()))
        }
    }

    async fn record(
        &self,
        store: &Store,
        delivery: &Delivery,
        result: Result<(), String>,
    ) -> Result<(), StoreError> {
        let kind = delivery.kind.as_str();
        let metrics = &self.state.metrics;
        match result {
            Ok(()) => {
                store.delivery_sent(delivery.id).await?;
                metrics.notification_sent(kind);
                tracing::info!(
                    id = delivery.id,
                    kind,
                    attempts = delivery.attempts,
                    "notification delivered"
                );
            }
            Err(error) => match notify::next_attempt(delivery.attempts) {
                Some(wait) => {
                    let retry_at = OffsetDateTime::now_utc() + wait;
                    store.delivery_retry(delivery.id, retry_at, &error).await?;
                    metrics.notification_retried(kind);
                    tracing::warn!(
                        id = delivery.id,
                        kind,
                        attempts = delivery.attempts,
                        retry_in_secs = wait.as_secs(),
                        error,
                        "notification delivery failed; will retry"
                    );
                }
                None => {
                    store.delivery_failed(delivery.id, &error).await?;
                    metrics.notification_failed(kind);
                    tracing::error!(
                        id = delivery.id,
                        kind,
                        attempts = delivery.attempts,
                        error,
                        "notification delivery given up after the last retry"
                    );
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{CLAIM_LEASE, SEND_LIMIT, lease_covers_a_send};

    #[test]
    fn a_claim_starts_no_send_that_could_outlast_its_lease() {
        let lease = CLAIM_LEASE.unsigned_abs();
        assert!(lease_covers_a_send(Duration::ZERO));
        assert!(lease_covers_a_send(lease - SEND_LIMIT - Duration::from_millis(1)));
        assert!(!lease_covers_a_send(lease - SEND_LIMIT));
        assert!(!lease_covers_a_send(lease));
        assert!(!lease_covers_a_send(lease * 2));
    }
}

//! The pages behind the buttons in mail: `/moderate/{token}`,
//! `/subscribe/{token}` and `/unsubscribe/{token}`.
//!
//! `GET` (and `HEAD`) only shows what the link stands for, with a button: a
//! mail scanner or link previewer that fetches the link changes nothing. The
//! button's `POST` to the same address acts (`crate::links` decides how).
//! `/unsubscribe` also takes the one-click `POST` of RFC 8058 that mail
//! clients send (`List-Unsubscribe=One-Click`, or an empty body); any body
//! is read within the size limit and otherwise ignored, since the token
//! alone says what to do.
//!
//! Every outcome is a small HTML page built with `maud` (every value
//! escaped), in the language of the request's `Accept-Language` (else
//! `MARGINALIA_LANG`), under the moderation page's strict headers: its CSP (no inline
//! script, `frame-ancestors 'none'`, `form-action 'self'`), no framing, no
//! `Referer` (the token is in the address), `Cache-Control: no-store`.

use std::sync::Arc;

use bytes::Bytes;
use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;
use time::macros::format_description;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{CACHE_CONTROL, RETRY_AFTER, VARY};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use super::filters::{header_value, limited_body, with_state};
use super::method_not_allowed;
use super::pages::ADMIN_CSP;
use crate::config::Site;
use crate::domain::{Comment, Status};
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::links::{self, LinkRefusal, ModerationLink, UnsubscribeLink};
use crate::notify::links::{LinkError, ModerationAction, UnsubscribeScope};
use crate::state::AppState;
use crate::store::{StoreError, SubscriptionRecord};

/// The methods of every link path.
const ALLOW: &str = "GET, HEAD, POST";

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    endpoint("moderate", state.clone(), show_moderation, moderate)
        .or(endpoint("subscribe", state.clone(), show_subscription, subscribe))
        .unify()
        .or(endpoint("unsubscribe", state, show_unsubscribe, unsubscribe))
        .unify()
        .boxed()
}

/// `GET` and `POST` of `/{prefix}/{token}`, and the 405 of any other method.
/// Both answer in the language [`page_lang`] picks.
fn endpoint<G, GetFuture, P, PostFuture>(
    prefix: &'static str,
    state: Arc<AppState>,
    get: G,
    post: P,
) -> BoxedFilter<(Response,)>
where
    G: Fn(Arc<AppState>, Lang, String) -> GetFuture + Clone + Send + Sync + 'static,
    GetFuture: Future<Output = Response> + Send,
    P: Fn(Arc<AppState>, Lang, String, Result<Bytes, ApiError>) -> PostFuture + Clone + Send + Sync + 'static,
    PostFuture: Future<Output = Response> + Send,
{
    let path = warp::path(prefix)
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .boxed();
    let lang = header_value("accept-language");
    let shown = path
        .clone()
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(lang.clone())
        .then(
            move |token: String, state: Arc<AppState>, accept: Option<HeaderValue>| {
                let lang = page_lang(&state, accept.as_ref());
                get(state, lang, token)
            },
        );
    let acted = path
        .clone()
        .and(warp::post())
        .and(with_state(state))
        .and(lang)
        .and(limited_body())
        .then(
            move |token: String,
                  state: Arc<AppState>,
                  accept: Option<HeaderValue>,
                  body: Result<Bytes, ApiError>| {
                let lang = page_lang(&state, accept.as_ref());
                post(state, lang, token, body)
            },
        );
    let other = path
        .and(method_not_allowed(ALLOW))
        .map(|_token: String, response: Response| response);
    shown.or(acted).unify().or(other).unify().boxed()
}

/// The language of a page: the request's `Accept-Language`, else
/// `MARGINALIA_LANG`. A moderator's browser says their language better
/// than the configuration does, so it wins here too.
fn page_lang(state: &AppState, accept_language: Option<&HeaderValue>) -> Lang {
    let accept = accept_language.and_then(|value| value.to_str().ok());
    Lang::negotiate(accept, state.lang)
}

/// Which kind of link a refusal is about, for its wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkKind {
    Moderation,
    Subscription,
    Unsubscribe,
}

/// GET /moderate/{token}
async fn show_moderation(state: Arc<AppState>, lang: Lang, token: String) -> Response {
    match links::inspect_moderation(&state, &token).await {
        Ok(link) => moderation_question(&state.site, lang, &link),
        Err(refusal) => refusal_page(&state.site, lang, LinkKind::Moderation, refusal),
    }
}

/// POST /moderate/{token}
async fn moderate(
    state: Arc<AppState>,
    lang: Lang,
    token: String,
    body: Result<Bytes, ApiError>,
) -> Response {
    if let Err(error) = body {
        return body_error_page(&state.site, lang, error);
    }
    match links::moderate(&state, &token).await {
        Ok(done) => {
            let key = match (done.action, done.changed) {
                (ModerationAction::Approve, true) => "links.moderate.approved",
                (ModerationAction::Reject, true) => "links.moderate.rejected",
                (ModerationAction::Spam, true) => "links.moderate.spam",
                (ModerationAction::Approve, false) => "links.moderate.alreadyApproved",
                (ModerationAction::Reject, false) => "links.moderate.alreadyRejected",
                (ModerationAction::Spam, false) => "links.moderate.alreadySpam",
            };
            let content = html! {
                p {
                    (lang.html(key, &[
                        ("name", html! { strong { (done.comment.name) } }),
                        ("page", html! { (done.comment.uri) }),
                    ]))
                }
                (queue_link(&state.site, lang))
            };
            let title = lang.text(done_title(done.action), &[]);
            page(&state.site, lang, StatusCode::OK, &title, content)
        }
        Err(refusal) => refusal_page(&state.site, lang, LinkKind::Moderation, refusal),
    }
}

/// GET /subscribe/{token}
async fn show_subscription(state: Arc<AppState>, lang: Lang, token: String) -> Response {
    match links::inspect_subscription(&state, &token).await {
        Ok(subscription) => subscription_question(&state.site, lang, &subscription),
        Err(refusal) => refusal_page(&state.site, lang, LinkKind::Subscription, refusal),
    }
}

/// POST /subscribe/{token}
async fn subscribe(
    state: Arc<AppState>,
    lang: Lang,
    token: String,
    body: Result<Bytes, ApiError>,
) -> Response {
    if let Err(error) = body {
        return body_error_page(&state.site, lang, error);
    }
    match links::confirm_subscription(&state, &token).await {
        Ok(confirmed) => {
            let subscription = &confirmed.subscription;
            let content = html! {
                p {
                    (lang.html("links.subscribe.done.text", &[
                        ("email", html! { strong { (subscription.email) } }),
                        ("page", page_link(&state.site, &subscription.uri)),
                    ]))
                }
                @if confirmed.confirmed > 1 {
                    p { (lang.text("links.subscribe.done.others", &[])) }
                }
                p { (lang.text("links.subscribe.done.stop", &[])) }
            };
            let title = lang.text("links.subscribe.done.title", &[]);
            page(&state.site, lang, StatusCode::OK, &title, content)
        }
        Err(refusal) => refusal_page(&state.site, lang, LinkKind::Subscription, refusal),
    }
}

/// GET /unsubscribe/{token}
async fn show_unsubscribe(state: Arc<AppState>, lang: Lang, token: String) -> Response {
    match links::inspect_unsubscribe(&state, &token).await {
        Ok(link) => {
            let (thread, everything) = (
                "links.unsubscribe.question.thread",
                "links.unsubscribe.question.everything",
            );
            let content = html! {
                p { (what_stops(&state.site, lang, &link, thread, everything)) }
                form method="post" {
                    button type="submit" { (lang.text("links.unsubscribe.button", &[])) }
                }
            };
            let title = lang.text("links.unsubscribe.question.title", &[]);
            page(&state.site, lang, StatusCode::OK, &title, content)
        }
        Err(refusal) => refusal_page(&state.site, lang, LinkKind::Unsubscribe, refusal),
    }
}

/// POST /unsubscribe/{token}: the page's button and RFC 8058 one-click.
async fn unsubscribe(
    state: Arc<AppState>,
    lang: Lang,
    token: String,
    body: Result<Bytes, ApiError>,
) -> Response {
    if let Err(error) = body {
        return body_error_page(&state.site, lang, error);
    }
    match links::unsubscribe(&state, &token).await {
        Ok(link) => {
            let (thread, everything) = (
                "links.unsubscribe.done.thread",
                "links.unsubscribe.done.everything",
            );
            let content = html! {
                p { (what_stops(&state.site, lang, &link, thread, everything)) }
            };
            let title = lang.text("links.unsubscribe.done.title", &[]);
            page(&state.site, lang, StatusCode::OK, &title, content)
        }
        Err(refusal) => refusal_page(&state.site, lang, LinkKind::Unsubscribe, refusal),
    }
}

/// The sentence about what an unsubscribe link stops: the mail to ADDRESS
/// about replies on one page (`thread_key`) or on the whole site
/// (`everything_key`).
fn what_stops(
    site: &Site,
    lang: Lang,
    link: &UnsubscribeLink,
    thread_key: &str,
    everything_key: &str,
) -> Markup {
    let email = html! { strong { (link.recipient.as_str()) } };
    match (link.scope, &link.uri) {
        (UnsubscribeScope::Thread, Some(uri)) => {
            lang.html(thread_key, &[("email", email), ("page", page_link(site, uri))])
        }
        _ => lang.html(
            everything_key,
            &[("email", email), ("site", html! { (site.name) })],
        ),
    }
}

/// The page a moderation link opens: the comment, the action, a button.
fn moderation_question(site: &Site, lang: Lang, link: &ModerationLink) -> Response {
    let comment = &link.comment;
    let recipient = html! { (link.recipient.as_str()) };
    let sent_to = match link.expires_at {
        Some(expires_at) => lang.html(
            "links.moderate.sentToUntil",
            &[
                ("recipient", recipient),
                ("expires", html! { (when(expires_at)) }),
            ],
        ),
        None => lang.html("links.moderate.sentTo", &[("recipient", recipient)]),
    };
    let not_yet = match link.action {
        ModerationAction::Approve => "links.moderate.notYet.approve",
        ModerationAction::Reject => "links.moderate.notYet.reject",
        ModerationAction::Spam => "links.moderate.notYet.spam",
    };
    let content = html! {
        p { (lang.text(not_yet, &[])) " " (sent_to) }
        (comment_details(site, lang, comment))
        form method="post" {
            button type="submit" { (lang.text(button_label(link.action), &[])) }
        }
        (queue_link(site, lang))
    };
    let title = lang.text(question_title(link.action), &[]);
    page(site, lang, StatusCode::OK, &title, content)
}

/// What a moderator needs to decide: where, who (email included: moderators
/// may see it), when, the status now, and the text as written.
fn comment_details(site: &Site, lang: Lang, comment: &Comment) -> Markup {
    let label = |key: &str| lang.text(key, &[]);
    let status = match comment.status {
        Status::Pending => "links.status.pending",
        Status::Approved => "links.status.approved",
        Status::Rejected => "links.status.rejected",
        Status::Spam => "links.status.spam",
    };
    html! {
        dl {
            dt { (label("links.details.page")) }
            dd { (page_link(site, &comment.uri)) }
            dt { (label("links.details.name")) }
            dd { (comment.name) }
            dt { (label("links.details.email")) }
            dd { (comment.email) }
            @if let Some(website) = &comment.website {
                dt { (label("links.details.website")) }
                // Shown, not linked: a moderator should not be sent there from here.
                dd { (website) }
            }
            dt { (label("links.details.posted")) }
            dd { (when(comment.created_at)) }
            @if let Some(parent) = comment.parent_id {
                dt { (label("links.details.inReplyTo")) }
                dd { (lang.text("links.details.parentComment", &[("id", &parent.to_string())])) }
            }
            dt { (label("links.details.status")) }
            dd { (label(status)) }
        }
        h2 { (label("links.details.comment")) }
        // The comment keeps the direction of its own text, whatever the page's.
        blockquote dir="auto" {
            // The Markdown as written, as text: paragraphs and line breaks kept.
            @for paragraph in comment.body.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
                p {
                    @for (index, line) in paragraph.lines().enumerate() {
                        @if index > 0 { br; }
                        (line)
                    }
                }
            }
        }
    }
}

/// The page a confirmation link opens.
fn subscription_question(site: &Site, lang: Lang, subscription: &SubscriptionRecord) -> Response {
    let content = html! {
        p {
            (lang.html("links.subscribe.question.text", &[
                ("email", html! { strong { (subscription.email) } }),
                ("page", page_link(site, &subscription.uri)),
            ]))
        }
        p { (lang.text("links.subscribe.question.note", &[])) }
        form method="post" {
            button type="submit" { (lang.text("links.subscribe.button", &[])) }
        }
    };
    let title = lang.text("links.subscribe.question.title", &[]);
    page(site, lang, StatusCode::OK, &title, content)
}

fn question_title(action: ModerationAction) -> &'static str {
    match action {
        ModerationAction::Approve => "links.moderate.question.approve",
        ModerationAction::Reject => "links.moderate.question.reject",
        ModerationAction::Spam => "links.moderate.question.spam",
    }
}

fn button_label(action: ModerationAction) -> &'static str {
    match action {
        ModerationAction::Approve => "links.moderate.button.approve",
        ModerationAction::Reject => "links.moderate.button.reject",
        ModerationAction::Spam => "links.moderate.button.spam",
    }
}

fn done_title(action: ModerationAction) -> &'static str {
    match action {
        ModerationAction::Approve => "links.moderate.done.approve",
        ModerationAction::Reject => "links.moderate.done.reject",
        ModerationAction::Spam => "links.moderate.done.spam",
    }
}

/// Why nothing was done, as a page with the status of API.md: 400 for a
/// link that is not genuine (or not for this page), 410 for an expired or
/// used one, 404 when what it names is gone.
fn refusal_page(site: &Site, lang: Lang, kind: LinkKind, refusal: LinkRefusal) -> Response {
    let (status, reason): (StatusCode, &str) = match &refusal {
        LinkRefusal::Invalid(error @ (LinkError::Malformed | LinkError::BadSignature)) => {
            (error.status(), "invalid")
        }
        LinkRefusal::Invalid(error @ LinkError::Expired) => (error.status(), "expired"),
        LinkRefusal::WrongPurpose => (StatusCode::BAD_REQUEST, "wrongPurpose"),
        LinkRefusal::Used => (StatusCode::GONE, "used"),
        LinkRefusal::Gone => match kind {
            LinkKind::Moderation => (StatusCode::NOT_FOUND, "commentGone"),
            LinkKind::Subscription | LinkKind::Unsubscribe => (StatusCode::NOT_FOUND, "subscriptionGone"),
        },
        LinkRefusal::Store(error) => return store_error_page(site, lang, error),
    };
    let title = lang.text(&format!("links.refusal.{reason}.title"), &[]);
    let content = html! {
        p {
            (lang.text(&format!("links.refusal.{reason}.text"), &[]))
            " "
            (lang.text("links.refusal.nothingChanged", &[]))
        }
        @if kind == LinkKind::Moderation {
            (queue_link(site, lang))
        }
    };
    page(site, lang, status, &title, content)
}

/// The database failed: 503 (try again) or 500 (logged, nothing shown).
fn store_error_page(site: &Site, lang: Lang, error: &StoreError) -> Response {
    let (status, title) = match error {
        StoreError::Unavailable(source) => {
            tracing::warn!(error = ?source, "database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "links.failure.unavailable.title")
        }
        StoreError::Other(source) => {
            tracing::error!(error = ?source, "request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "links.failure.internal.title")
        }
    };
    let content = html! { p { (lang.text("links.failure.tryAgain", &[])) } };
    let mut response = page(site, lang, status, &lang.text(title, &[]), content);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// A body that could not be read (too large, broken off): its status, as a page.
fn body_error_page(site: &Site, lang: Lang, error: ApiError) -> Response {
    let content = html! { p { (lang.text("links.failure.unreadable.text", &[])) } };
    let title = lang.text("links.failure.unreadable.title", &[]);
    page(site, lang, error.status(), &title, content)
}

/// A link to the blog page of a thread, showing its uri.
fn page_link(site: &Site, uri: &str) -> Markup {
    html! { a href=(site.page_url(uri)) { (uri) } }
}

fn queue_link(site: &Site, lang: Lang) -> Markup {
    html! { p { a href=(site.public_link("/admin")) { (lang.text("links.queue", &[])) } } }
}

/// A time as people read it, in UTC. The same numeric form in every
/// language (ISO 8601's order, which every reader can parse).
fn when(at: OffsetDateTime) -> String {
    at.format(format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
        .unwrap_or_else(|_| at.to_string())
}

/// The one layout of these pages (language and direction, title, one `h1`,
/// no script, no inline style), with the strict headers.
fn page(site: &Site, lang: Lang, status: StatusCode, title: &str, content: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.tag()) dir=(lang.dir()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · " (site.name) }
            }
            body {
                main {
                    h1 { (title) }
                    (content)
                }
            }
        }
    };
    let mut response =
        warp::reply::with_status(warp::reply::html(markup.into_string()), status).into_response();
    let headers = response.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(ADMIN_CSP));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // The token is in this page's address: no other site may learn it.
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    // The language follows `Accept-Language`: caches must key on it.
    headers.insert(VARY, HeaderValue::from_static("accept-language"));
    response
}

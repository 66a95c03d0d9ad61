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
//! escaped) under the moderation page's strict headers: its CSP (no inline
//! script, `frame-ancestors 'none'`, `form-action 'self'`), no framing, no
//! `Referer` (the token is in the address), `Cache-Control: no-store`.

use std::sync::Arc;

use bytes::Bytes;
use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;
use time::macros::format_description;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{CACHE_CONTROL, RETRY_AFTER};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use super::filters::{limited_body, with_state};
use super::method_not_allowed;
use super::pages::ADMIN_CSP;
use crate::config::Site;
use crate::domain::Comment;
use crate::error::ApiError;
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
fn endpoint<G, GetFuture, P, PostFuture>(
    prefix: &'static str,
    state: Arc<AppState>,
    get: G,
    post: P,
) -> BoxedFilter<(Response,)>
where
    G: Fn(Arc<AppState>, String) -> GetFuture + Clone + Send + Sync + 'static,
    GetFuture: Future<Output = Response> + Send,
    P: Fn(Arc<AppState>, String, Result<Bytes, ApiError>) -> PostFuture + Clone + Send + Sync + 'static,
    PostFuture: Future<Output = Response> + Send,
{
    let path = warp::path(prefix)
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .boxed();
    let shown = path
        .clone()
        .and(warp::get())
        .and(with_state(state.clone()))
        .then(move |token: String, state: Arc<AppState>| get(state, token));
    let acted = path
        .clone()
        .and(warp::post())
        .and(with_state(state))
        .and(limited_body())
        .then(
            move |token: String, state: Arc<AppState>, body: Result<Bytes, ApiError>| {
                post(state, token, body)
            },
        );
    let other = path
        .and(method_not_allowed(ALLOW))
        .map(|_token: String, response: Response| response);
    shown.or(acted).unify().or(other).unify().boxed()
}

/// Which kind of link a refusal is about, for its wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkKind {
    Moderation,
    Subscription,
    Unsubscribe,
}

/// GET /moderate/{token}
async fn show_moderation(state: Arc<AppState>, token: String) -> Response {
    match links::inspect_moderation(&state, &token).await {
        Ok(link) => moderation_question(&state.site, &link),
        Err(refusal) => refusal_page(&state.site, LinkKind::Moderation, refusal),
    }
}

/// POST /moderate/{token}
async fn moderate(state: Arc<AppState>, token: String, body: Result<Bytes, ApiError>) -> Response {
    if let Err(error) = body {
        return body_error_page(&state.site, error);
    }
    match links::moderate(&state, &token).await {
        Ok(done) => {
            let status = links::status_of(done.action);
            let content = html! {
                @if done.changed {
                    p { "The comment by " strong { (done.comment.name) } " on " (done.comment.uri) " is now " (status.as_str()) "." }
                } @else {
                    p { "The comment by " strong { (done.comment.name) } " on " (done.comment.uri) " was already " (status.as_str()) "; nothing changed." }
                }
                (queue_link(&state.site))
            };
            page(&state.site, StatusCode::OK, done_title(done.action), content)
        }
        Err(refusal) => refusal_page(&state.site, LinkKind::Moderation, refusal),
    }
}

/// GET /subscribe/{token}
async fn show_subscription(state: Arc<AppState>, token: String) -> Response {
    match links::inspect_subscription(&state, &token).await {
        Ok(subscription) => subscription_question(&state.site, &subscription),
        Err(refusal) => refusal_page(&state.site, LinkKind::Subscription, refusal),
    }
}

/// POST /subscribe/{token}
async fn subscribe(state: Arc<AppState>, token: String, body: Result<Bytes, ApiError>) -> Response {
    if let Err(error) = body {
        return body_error_page(&state.site, error);
    }
    match links::confirm_subscription(&state, &token).await {
        Ok(confirmed) => {
            let subscription = &confirmed.subscription;
            let content = html! {
                p {
                    "You will get an email at " strong { (subscription.email) }
                    " when a reply to your comment on " (page_link(&state.site, &subscription.uri)) " is published."
                }
                @if confirmed.confirmed > 1 {
                    p { "Your other requests for replies to this address are confirmed too." }
                }
                p { "Every such email has a link to stop them." }
            };
            page(&state.site, StatusCode::OK, "Replies confirmed", content)
        }
        Err(refusal) => refusal_page(&state.site, LinkKind::Subscription, refusal),
    }
}

/// GET /unsubscribe/{token}
async fn show_unsubscribe(state: Arc<AppState>, token: String) -> Response {
    match links::inspect_unsubscribe(&state, &token).await {
        Ok(link) => {
            let content = html! {
                p { "Stop " (what_stops(&state.site, &link)) "?" }
                form method="post" {
                    button type="submit" { "Unsubscribe" }
                }
            };
            page(&state.site, StatusCode::OK, "Unsubscribe", content)
        }
        Err(refusal) => refusal_page(&state.site, LinkKind::Unsubscribe, refusal),
    }
}

/// POST /unsubscribe/{token}: the page's button and RFC 8058 one-click.
async fn unsubscribe(state: Arc<AppState>, token: String, body: Result<Bytes, ApiError>) -> Response {
    if let Err(error) = body {
        return body_error_page(&state.site, error);
    }
    match links::unsubscribe(&state, &token).await {
        Ok(link) => {
            let content = html! {
                p { "You will get no more " (what_stops(&state.site, &link)) "." }
            };
            page(&state.site, StatusCode::OK, "Unsubscribed", content)
        }
        Err(refusal) => refusal_page(&state.site, LinkKind::Unsubscribe, refusal),
    }
}

/// "emails to ADDRESS about replies on PAGE", or about every reply.
fn what_stops(site: &Site, link: &UnsubscribeLink) -> Markup {
    html! {
        "emails to " strong { (link.recipient.as_str()) }
        @match (link.scope, &link.uri) {
            (UnsubscribeScope::Thread, Some(uri)) => { " about replies on " (page_link(site, uri)) }
            _ => { " about replies to comments on " (site.name) }
        }
    }
}

/// The page a moderation link opens: the comment, the action, a button.
fn moderation_question(site: &Site, link: &ModerationLink) -> Response {
    let comment = &link.comment;
    let content = html! {
        p {
            "Nothing has changed yet: the comment is " (done_word(link.action))
            " when you press the button. This link was sent to " (link.recipient.as_str())
            " and works once"
            @if let Some(expires_at) = link.expires_at {
                ", until " (when(expires_at))
            }
            "."
        }
        (comment_details(site, comment))
        form method="post" {
            button type="submit" { (button_label(link.action)) }
        }
        (queue_link(site))
    };
    page(site, StatusCode::OK, question_title(link.action), content)
}

/// What a moderator needs to decide: where, who (email included: moderators
/// may see it), when, the status now, and the text as written.
fn comment_details(site: &Site, comment: &Comment) -> Markup {
    html! {
        dl {
            dt { "Page" }
            dd { (page_link(site, &comment.uri)) }
            dt { "Name" }
            dd { (comment.name) }
            dt { "Email" }
            dd { (comment.email) }
            @if let Some(website) = &comment.website {
                dt { "Website" }
                // Shown, not linked: a moderator should not be sent there from here.
                dd { (website) }
            }
            dt { "Posted" }
            dd { (when(comment.created_at)) }
            @if let Some(parent) = comment.parent_id {
                dt { "In reply to" }
                dd { "comment " (parent) }
            }
            dt { "Status now" }
            dd { (comment.status.as_str()) }
        }
        h2 { "Comment" }
        blockquote {
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
fn subscription_question(site: &Site, subscription: &SubscriptionRecord) -> Response {
    let content = html! {
        p {
            "Send an email to " strong { (subscription.email) }
            " when a reply to your comment on " (page_link(site, &subscription.uri)) " is published?"
        }
        p { "Nothing is sent to this address until you confirm. Every email has a link to stop them." }
        form method="post" {
            button type="submit" { "Yes, send me replies" }
        }
    };
    page(site, StatusCode::OK, "Confirm replies by email", content)
}

fn question_title(action: ModerationAction) -> &'static str {
    match action {
        ModerationAction::Approve => "Approve this comment?",
        ModerationAction::Reject => "Reject this comment?",
        ModerationAction::Spam => "Mark this comment as spam?",
    }
}

fn button_label(action: ModerationAction) -> &'static str {
    match action {
        ModerationAction::Approve => "Approve",
        ModerationAction::Reject => "Reject",
        ModerationAction::Spam => "Mark as spam",
    }
}

fn done_word(action: ModerationAction) -> &'static str {
    match action {
        ModerationAction::Approve => "approved",
        ModerationAction::Reject => "rejected",
        ModerationAction::Spam => "marked as spam",
    }
}

fn done_title(action: ModerationAction) -> &'static str {
    match action {
        ModerationAction::Approve => "Approved",
        ModerationAction::Reject => "Rejected",
        ModerationAction::Spam => "Marked as spam",
    }
}

/// Why nothing was done, as a page with the status of API.md: 400 for a
/// link that is not genuine (or not for this page), 410 for an expired or
/// used one, 404 when what it names is gone.
fn refusal_page(site: &Site, kind: LinkKind, refusal: LinkRefusal) -> Response {
    let (status, title, explanation): (StatusCode, &str, &str) = match &refusal {
        LinkRefusal::Invalid(error @ (LinkError::Malformed | LinkError::BadSignature)) => (
            error.status(),
            "This link is not valid",
            "It may have been cut short or changed on its way, or it was made before the \
             service's link key was replaced. Check that you opened the whole link from the email.",
        ),
        LinkRefusal::Invalid(error @ LinkError::Expired) => (
            error.status(),
            "This link has expired",
            "Links in emails work for a limited time.",
        ),
        LinkRefusal::WrongPurpose => (
            StatusCode::BAD_REQUEST,
            "This link is not for this page",
            "It was made for another purpose. Open the link exactly as the email gives it.",
        ),
        LinkRefusal::Used => (
            StatusCode::GONE,
            "This link has already been used",
            "Each of these links works once.",
        ),
        LinkRefusal::Gone => match kind {
            LinkKind::Moderation => (
                StatusCode::NOT_FOUND,
                "This comment no longer exists",
                "It has been deleted.",
            ),
            LinkKind::Subscription | LinkKind::Unsubscribe => (
                StatusCode::NOT_FOUND,
                "This subscription no longer exists",
                "It has ended, or the comment it was for has been deleted.",
            ),
        },
        LinkRefusal::Store(error) => return store_error_page(site, error),
    };
    let content = html! {
        p { (explanation) " Nothing was changed." }
        @if kind == LinkKind::Moderation {
            (queue_link(site))
        }
    };
    page(site, status, title, content)
}

/// The database failed: 503 (try again) or 500 (logged, nothing shown).
fn store_error_page(site: &Site, error: &StoreError) -> Response {
    let (status, title) = match error {
        StoreError::Unavailable(source) => {
            tracing::warn!(error = ?source, "database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is unavailable for a moment",
            )
        }
        StoreError::Other(source) => {
            tracing::error!(error = ?source, "request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong")
        }
    };
    let content = html! { p { "Nothing was changed. Please try again in a moment." } };
    let mut response = page(site, status, title, content);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// A body that could not be read (too large, broken off): its status, as a page.
fn body_error_page(site: &Site, error: ApiError) -> Response {
    let content = html! { p { (error.to_string()) ". Nothing was changed." } };
    page(site, error.status(), "The request could not be read", content)
}

/// A link to the blog page of a thread, showing its uri.
fn page_link(site: &Site, uri: &str) -> Markup {
    html! { a href=(site.page_url(uri)) { (uri) } }
}

fn queue_link(site: &Site) -> Markup {
    html! { p { a href=(site.public_link("/admin")) { "Open the moderation queue" } } }
}

/// A time as people read it, in UTC.
fn when(at: OffsetDateTime) -> String {
    at.format(format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
        .unwrap_or_else(|_| at.to_string())
}

/// The one layout of these pages (language, title, one `h1`, no script, no
/// inline style), with the strict headers.
fn page(site: &Site, status: StatusCode, title: &str, content: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
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
    response
}

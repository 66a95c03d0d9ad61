//! The Prometheus metrics behind `/metrics`. Each app instance owns its own
//! registry (no global recorder), so tests running many apps in one process
//! see only their own numbers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::Status;

// Static label values: recording a request allocates nothing.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetentionLabels {
    /// `ip_cleared` or `purged`.
    action: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskExitLabels {
    task: &'static str,
    /// `returned` or `panicked`.
    how: &'static str,
}

/// Counts background tasks that stopped before shutdown asked them to (see
/// `tasks::Supervisor`). A handle of its own, because the supervisor exists
/// before the rest of the state.
#[derive(Debug, Clone, Default)]
pub struct TaskExits(Family<TaskExitLabels, Counter>);

impl TaskExits {
    /// `task` is the supervisor's name for it; `panicked` tells the two ways out apart.
    pub fn record(&self, task: &'static str, panicked: bool) {
        let how = if panicked { "panicked" } else { "returned" };
        self.0.get_or_create(&TaskExitLabels { task, how }).inc();
    }
}

/// Everything the service counts.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    submitted: Counter,
    moderated: Family<StatusLabels, Counter>,
    rate_limited: Family<ScopeLabels, Counter>,
    task_exits: TaskExits,
    pending: Gauge,
    notifications_sent: Family<KindLabels, Counter>,
    notifications_retried: Family<KindLabels, Counter>,
    notifications_failed: Family<KindLabels, Counter>,
    notifications_queued: Family<KindLabels, Gauge>,
    retention_rows: Family<RetentionLabels, Counter>,
    retention_runs: Counter,
    known_author_keys: Gauge,
    known_authors_loaded: Gauge,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~1.6 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("marginalia");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let submitted = Counter::default();
        let moderated = Family::<StatusLabels, Counter>::default();
        let rate_limited = Family::<ScopeLabels, Counter>::default();
        let pending = Gauge::default();
        let task_exits = TaskExits::default();
        let notifications_sent = Family::<KindLabels, Counter>::default();
        let notifications_retried = Family::<KindLabels, Counter>::default();
        let notifications_failed = Family::<KindLabels, Counter>::default();
        let notifications_queued = Family::<KindLabels, Gauge>::default();
        let retention_rows = Family::<RetentionLabels, Counter>::default();
        let retention_runs = Counter::default();
        let known_author_keys = Gauge::default();
        let known_authors_loaded = Gauge::default();
        registry.register(
            "known_author_keys",
            "Keys in this instance's set of approved authors (known mode), as of its last load",
            known_author_keys.clone(),
        );
        registry.register(
            "known_authors_loaded",
            "1 once this instance's set of approved authors was loaded from the store (known mode)",
            known_authors_loaded.clone(),
        );
        registry.register(
            "retention_rows",
            "Comments changed by the retention job of this instance: IP and user agent cleared, or purged",
            retention_rows.clone(),
        );
        registry.register(
            "retention_runs",
            "Completed runs of the retention job on this instance",
            retention_runs.clone(),
        );
        registry.register(
            "notifications_sent",
            "Mails and webhook calls delivered by this instance, by kind",
            notifications_sent.clone(),
        );
        registry.register(
            "notifications_retried",
            "Failed deliveries scheduled for another try by this instance, by kind",
            notifications_retried.clone(),
        );
        registry.register(
            "notifications_failed",
            "Deliveries given up after the last retry by this instance, by kind",
            notifications_failed.clone(),
        );
        registry.register(
            "notifications_queued",
            "Deliveries waiting in the outbox (all instances), by kind",
            notifications_queued.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "comments_submitted",
            "Comments accepted into the moderation queue",
            submitted.clone(),
        );
        registry.register(
            "comments_moderated",
            "Moderation actions that changed a comment's status, by new status",
            moderated.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by scope",
            rate_limited.clone(),
        );
        registry.register(
            "pending_comments",
            "Comments awaiting moderation",
            pending.clone(),
        );
        registry.register(
            "background_task_exits",
            "Background tasks that stopped before shutdown, by task and how",
            task_exits.0.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            submitted,
            moderated,
            rate_limited,
            task_exits,
            pending,
            notifications_sent,
            notifications_retried,
            notifications_failed,
            notifications_queued,
            retention_rows,
            retention_runs,
            known_author_keys,
            known_authors_loaded,
        }
    }
}

impl Metrics {
    /// The set of known authors (`spam::known_authors`) finished a load and
    /// now holds `keys` keys.
    pub fn known_authors_loaded(&self, keys: usize) {
        self.known_author_keys
            .set(i64::try_from(keys).unwrap_or(i64::MAX));
        self.known_authors_loaded.set(1);
    }

    /// `route` is a template from `routes::route_label`, never a raw path.
    pub fn observe_request(&self, method: &http::Method, route: &'static str, status: u16, seconds: f64) {
        let method = match *method {
            http::Method::GET => "GET",
            http::Method::POST => "POST",
            http::Method::DELETE => "DELETE",
            http::Method::HEAD => "HEAD",
            http::Method::OPTIONS => "OPTIONS",
            http::Method::PUT => "PUT",
            http::Method::PATCH => "PATCH",
            _ => "OTHER",
        };
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    pub fn comment_submitted(&self) {
        self.submitted.inc();
    }

    pub fn comment_moderated(&self, status: Status) {
        self.moderated
            .get_or_create(&StatusLabels {
                status: status.as_str().to_owned(),
            })
            .inc();
    }

    /// `scope` is `submit` or `admin_auth`.
    pub fn rate_limited(&self, scope: &str) {
        self.rate_limited
            .get_or_create(&ScopeLabels {
                scope: scope.to_owned(),
            })
            .inc();
    }

    /// The counter of background tasks that stopped early, for the supervisor.
    pub fn task_exits(&self) -> TaskExits {
        self.task_exits.clone()
    }

    /// A mail or webhook call of `kind` was delivered.
    pub fn notification_sent(&self, kind: &'static str) {
        self.notifications_sent.get_or_create(&KindLabels { kind }).inc();
    }

    /// A delivery of `kind` failed and will be tried again.
    pub fn notification_retried(&self, kind: &'static str) {
        self.notifications_retried
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// A delivery of `kind` was given up.
    pub fn notification_failed(&self, kind: &'static str) {
        self.notifications_failed
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// A run of the retention job finished: `ip_cleared` comments lost their
    /// IP address and user agent, `purged` were deleted.
    pub fn retention_run(&self, ip_cleared: u64, purged: u64) {
        for (action, rows) in [("ip_cleared", ip_cleared), ("purged", purged)] {
            self.retention_rows
                .get_or_create(&RetentionLabels { action })
                .inc_by(rows);
        }
        self.retention_runs.inc();
    }

    /// Renders the text exposition format, with the queue depth and the
    /// outbox (deliveries waiting, by kind) as measured now.
    pub fn render(&self, pending_comments: i64, queued_notifications: &[(&'static str, i64)]) -> String {
        self.pending.set(pending_comments);
        for &(kind, queued) in queued_notifications {
            self.notifications_queued
                .get_or_create(&KindLabels { kind })
                .set(queued);
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_the_queue_depth_appear_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.observe_request(&http::Method::GET, "/api/comments", 200, 0.002);
        metrics.comment_submitted();
        metrics.comment_moderated(Status::Approved);
        metrics.rate_limited("submit");
        metrics.task_exits().record("limiter pruner", true);
        metrics.notification_sent("moderator_mail");
        metrics.notification_retried("webhook");
        let text = metrics.render(7, &[("webhook", 3)]);
        assert!(
            text.contains(
                r#"marginalia_http_requests_total{method="GET",route="/api/comments",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("marginalia_comments_submitted_total 1"), "{text}");
        assert!(
            text.contains(r#"marginalia_comments_moderated_total{status="approved"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"marginalia_rate_limited_total{scope="submit"} 1"#),
            "{text}"
        );
        assert!(text.contains("marginalia_pending_comments 7"), "{text}");
        assert!(
            text.contains(r#"marginalia_notifications_sent_total{kind="moderator_mail"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"marginalia_notifications_retried_total{kind="webhook"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"marginalia_notifications_queued{kind="webhook"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"marginalia_background_task_exits_total{task="limiter pruner",how="panicked"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("marginalia_http_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}

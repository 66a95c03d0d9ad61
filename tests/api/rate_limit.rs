//! Per-client submission limits, and the ways a client might dodge them.

use std::num::NonZeroU32;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// An app allowing a burst of 2 submissions, then one a minute.
async fn strict_app(backend: Backend, trusted_proxies: &[&str]) -> TestApp {
    let trusted: Vec<Option<ipnet::IpNet>> =
        trusted_proxies.iter().map(|p| Some(p.parse().unwrap())).collect();
    spawn_app_with(backend, move |config| {
        config.rate_limit_per_minute = NonZeroU32::new(1).unwrap();
        config.rate_limit_burst = NonZeroU32::new(2).unwrap();
        config.trusted_proxies = trusted;
    })
    .await
}

async fn submit_with_headers(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    // A body of its own each time: the same one twice would be a duplicate (409).
    static SENT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut comment = valid_comment();
    comment["body"] = json!(format!("A comment, number {n}."));
    let mut request = app.client.post(app.url("/api/comments")).json(&comment);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn after_the_burst_a_client_gets_429_with_retry_after() {
    for_each_backend(|backend| async move {
        let app = strict_app(backend, &[]).await;
        for _ in 0..2 {
            assert_eq!(
                submit_with_headers(&app, &[]).await.status(),
                StatusCode::ACCEPTED
            );
        }
        let response = submit_with_headers(&app, &[]).await;
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        // The refused one was not stored.
        assert_eq!(app.admin_list("").await["comments"].as_array().unwrap().len(), 2);
        // Reads are not limited.
        for _ in 0..20 {
            assert_eq!(app.get_thread("uri=/posts/hello/").await.status(), StatusCode::OK);
        }
    })
    .await;
}

#[tokio::test]
async fn invalid_submissions_do_not_use_up_the_allowance() {
    for_each_backend(|backend| async move {
        let app = strict_app(backend, &[]).await;
        for _ in 0..5 {
            let response = app.post_json(&json!({"uri": "/x/"})).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
        assert_eq!(
            submit_with_headers(&app, &[]).await.status(),
            StatusCode::ACCEPTED
        );
    })
    .await;
}

#[tokio::test]
async fn spoofed_forwarding_headers_from_an_untrusted_peer_do_not_bypass_the_limit() {
    for_each_backend(|backend| async move {
        let app = strict_app(backend, &[]).await;
        let spoofs = [
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-for", "203.0.113.2"),
            ("x-real-ip", "203.0.113.3"),
            ("forwarded", "for=203.0.113.4"),
            ("x-forwarded-for", "::ffff:203.0.113.5"),
        ];
        let mut statuses = Vec::new();
        for header in spoofs {
            statuses.push(submit_with_headers(&app, &[header]).await.status());
        }
        assert_eq!(
            statuses,
            [
                StatusCode::ACCEPTED,
                StatusCode::ACCEPTED,
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::TOO_MANY_REQUESTS
            ]
        );
        // And the moderator sees the real peer, not the claim.
        let queue: Value = app.admin_list("").await;
        assert!(
            queue["comments"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["ip"] == "127.0.0.1")
        );
    })
    .await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket() {
    for_each_backend(|backend| async move {
        let app = strict_app(backend, &["127.0.0.1/32"]).await;
        for client in ["198.51.100.1", "198.51.100.2"] {
            for _ in 0..2 {
                let response = submit_with_headers(&app, &[("x-forwarded-for", client)]).await;
                assert_eq!(response.status(), StatusCode::ACCEPTED, "{client}");
            }
            let response = submit_with_headers(&app, &[("x-forwarded-for", client)]).await;
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{client}");
        }
        // Prepending a made-up address does not help: the proxy appended the real one.
        let response = submit_with_headers(&app, &[("x-forwarded-for", "192.0.2.99, 198.51.100.1")]).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        // The client address is what moderators see.
        let queue = app.admin_list("").await;
        assert_eq!(queue["comments"][0]["ip"], "198.51.100.1");
    })
    .await;
}

#[tokio::test]
async fn ipv6_clients_share_a_bucket_per_64_and_mapped_ipv4_is_ipv4() {
    for_each_backend(|backend| async move {
        let app = strict_app(backend, &["127.0.0.1/32"]).await;
        let same_64 = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"];
        let statuses: Vec<StatusCode> = {
            let mut statuses = Vec::new();
            for client in same_64 {
                statuses.push(
                    submit_with_headers(&app, &[("x-forwarded-for", client)])
                        .await
                        .status(),
                );
            }
            statuses
        };
        assert_eq!(
            statuses,
            [
                StatusCode::ACCEPTED,
                StatusCode::ACCEPTED,
                StatusCode::TOO_MANY_REQUESTS
            ]
        );
        let response = submit_with_headers(&app, &[("x-forwarded-for", "2001:db8:1:3::1")]).await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "another /64 is another client"
        );

        for client in ["198.51.100.7", "::ffff:198.51.100.7"] {
            submit_with_headers(&app, &[("x-forwarded-for", client)]).await;
        }
        let response = submit_with_headers(&app, &[("x-forwarded-for", "::ffff:198.51.100.7")]).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    })
    .await;
}

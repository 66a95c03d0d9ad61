//! What was acknowledged survives a restart.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn a_restart_keeps_approved_and_pending_comments() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let published = app.publish("/r/", "published before").await;
        let pending = app.submit("/r/", "pending before").await;
        let thread_before = app.thread("/r/").await;

        let app = app.restart().await;
        assert_eq!(app.thread("/r/").await, thread_before);
        let queue: Value = app.admin_list("uri=/r/").await;
        assert_eq!(ids(&queue["comments"]), [pending]);
        assert_eq!(queue["comments"][0]["body"], "pending before");
        // Ids keep counting up: a new comment never reuses an old id.
        let newer = app.submit("/r/", "after").await;
        assert!(newer > pending && newer > published);
    })
    .await;
}

//! The pages and scripts the binary serves itself: the embeddable widget
//! (`/embed.js`), the moderation page (`/admin` and its script and styles) and
//! a demo blog post (`/demo`), and the API's OpenAPI description
//! (`/openapi.yaml`). They are compiled into the binary, so there is no CDN,
//! no build step and nothing to install next to it.
//!
//! Each asset carries a precomputed ETag; the HTML pages carry a strict
//! Content-Security-Policy and refuse to be framed.

use std::sync::{Arc, LazyLock};

use sha2::{Digest, Sha256};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use super::filters::if_none_match;
use super::method_not_allowed;
use crate::state::AppState;

/// The moderation page runs only its own script and styles. The pages of
/// one-click links (`routes::links`) carry it too.
pub(crate) const ADMIN_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/// The demo stands in for someone's blog: inline styles, but scripts only from here.
const DEMO_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A file served from memory.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    cache_control: &'static str,
    /// For HTML pages: the Content-Security-Policy.
    csp: Option<&'static str>,
    referrer_policy: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(
        body: &'static str,
        content_type: &'static str,
        cache_control: &'static str,
        csp: Option<&'static str>,
        referrer_policy: &'static str,
    ) -> Self {
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(body.as_bytes())[..16]));
        Self {
            body,
            content_type,
            cache_control,
            csp,
            referrer_policy,
            etag: HeaderValue::from_str(&etag).expect("a hex ETag is a valid header value"),
        }
    }

    fn respond(&self, request_headers: &HeaderMap) -> Response {
        let etag = self.etag.to_str().unwrap_or_default();
        let mut response = if if_none_match(request_headers, etag) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = Response::new(self.body.into());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
            response
        };
        let headers = response.headers_mut();
        headers.insert(ETAG, self.etag.clone());
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(self.cache_control));
        headers.insert("referrer-policy", HeaderValue::from_static(self.referrer_policy));
        if let Some(csp) = self.csp {
            headers.insert("content-security-policy", HeaderValue::from_static(csp));
            headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
        } else {
            // Blogs on other origins load the widget script.
            headers.insert(
                "cross-origin-resource-policy",
                HeaderValue::from_static("cross-origin"),
            );
        }
        response
    }
}

/// Short caching with revalidation: a new release reaches readers within minutes.
const SCRIPT_CACHE: &str = "public, max-age=300, must-revalidate";
const PAGE_CACHE: &str = "no-cache";

static EMBED_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../assets/embed.js"),
        "text/javascript; charset=utf-8",
        SCRIPT_CACHE,
        None,
        "no-referrer",
    )
});
static ADMIN_HTML: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../assets/admin.html"),
        "text/html; charset=utf-8",
        PAGE_CACHE,
        Some(ADMIN_CSP),
        "no-referrer",
    )
});
static ADMIN_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../assets/admin.js"),
        "text/javascript; charset=utf-8",
        PAGE_CACHE,
        Some(ADMIN_CSP),
        "no-referrer",
    )
});
static ADMIN_CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../assets/admin.css"),
        "text/css; charset=utf-8",
        PAGE_CACHE,
        Some(ADMIN_CSP),
        "no-referrer",
    )
});
static DEMO_HTML: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../assets/demo.html"),
        "text/html; charset=utf-8",
        PAGE_CACHE,
        Some(DEMO_CSP),
        // Its no-JavaScript form is sent back to it by the Referer.
        "strict-origin-when-cross-origin",
    )
});

static OPENAPI_YAML: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../openapi.yaml"),
        "application/yaml",
        PAGE_CACHE,
        None,
        "no-referrer",
    )
});

pub fn routes(_state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    serve(warp::path!("embed.js").boxed(), &EMBED_JS)
        .or(serve(warp::path!("admin").boxed(), &ADMIN_HTML))
        .unify()
        .or(serve(warp::path!("admin" / "admin.js").boxed(), &ADMIN_JS))
        .unify()
        .or(serve(warp::path!("admin" / "admin.css").boxed(), &ADMIN_CSS))
        .unify()
        .or(serve(warp::path!("demo").boxed(), &DEMO_HTML))
        .unify()
        .or(serve(warp::path!("openapi.yaml").boxed(), &OPENAPI_YAML))
        .unify()
        .boxed()
}

/// GET (and HEAD) of one asset at `path`.
fn serve(path: BoxedFilter<()>, asset: &'static LazyLock<Asset>) -> BoxedFilter<(Response,)> {
    path.and(
        warp::get()
            .or(warp::head())
            .unify()
            .and(warp::header::headers_cloned())
            .map(move |headers: HeaderMap| asset.respond(&headers))
            .or(method_not_allowed("GET, HEAD"))
            .unify(),
    )
    .boxed()
}

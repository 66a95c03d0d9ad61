//! The pages and scripts the binary serves itself: the embeddable widget
//! (`/embed.js`) and its language catalogs (`/embed/locales/{tag}.json`), the
//! moderation page (`/admin`, its script, styles and catalogs) and a demo blog
//! post (`/demo`), and the API's OpenAPI description (`/openapi.yaml`). They
//! are compiled into the binary, so there is no CDN, no build step and nothing
//! to install next to it.
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
use crate::error::ApiError;
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
    /// Readable by scripts of any origin (`Access-Control-Allow-Origin: *`).
    public_data: bool,
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
            public_data: false,
            etag: HeaderValue::from_str(&etag).expect("a hex ETag is a valid header value"),
        }
    }

    /// A catalog: JSON that the widget on a blog of another origin reads.
    fn catalog(body: &'static str, cache_control: &'static str, public_data: bool) -> Self {
        Self {
            public_data,
            ..Self::new(body, "application/json", cache_control, None, "no-referrer")
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
        if self.public_data {
            // The same texts for everyone, read without credentials: any origin may.
            headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
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

/// Declares the languages and compiles in their catalogs: `include_str!`
/// needs each path spelled out, and one list keeps the folders in step.
macro_rules! languages {
    ($($tag:literal),+ $(,)?) => {
        /// The languages of the widget and the moderation page, as their
        /// catalogs are named (`locales/widget/{tag}.json`, `locales/admin/{tag}.json`).
        pub const LANGUAGES: &[&str] = &[$($tag),+];
        const WIDGET_SOURCES: &[(&str, &str)] =
            &[$(($tag, include_str!(concat!("../../locales/widget/", $tag, ".json")))),+];
        const ADMIN_SOURCES: &[(&str, &str)] =
            &[$(($tag, include_str!(concat!("../../locales/admin/", $tag, ".json")))),+];
    };
}

languages!(
    "en", "de", "fr", "es", "pt-BR", "pt-PT", "it", "nl", "pl", "tr", "ru", "ar", "he", "ja", "zh-Hans",
);

/// The catalogs of one folder, by file name (`de.json`).
type Catalogs = Vec<(String, Asset)>;

/// The widget's: cached like `embed.js`, which they go with, and readable
/// from the blog's origin.
static WIDGET_CATALOGS: LazyLock<Catalogs> = LazyLock::new(|| {
    WIDGET_SOURCES
        .iter()
        .map(|(tag, body)| (format!("{tag}.json"), Asset::catalog(body, SCRIPT_CACHE, true)))
        .collect()
});
/// The moderation page's: revalidated at each load like `admin.js`, so that
/// the two always come from the same release.
static ADMIN_CATALOGS: LazyLock<Catalogs> = LazyLock::new(|| {
    ADMIN_SOURCES
        .iter()
        .map(|(tag, body)| (format!("{tag}.json"), Asset::catalog(body, PAGE_CACHE, false)))
        .collect()
});

pub fn routes(_state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    serve(warp::path!("embed.js").boxed(), &EMBED_JS)
        .or(serve_catalog(
            warp::path!("embed" / "locales" / String).boxed(),
            &WIDGET_CATALOGS,
        ))
        .unify()
        .or(serve_catalog(
            warp::path!("admin" / "locales" / String).boxed(),
            &ADMIN_CATALOGS,
        ))
        .unify()
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

/// GET (and HEAD) of the catalog named by the last segment of `path`
/// (`de.json`); a language without one is a 404.
fn serve_catalog(
    path: BoxedFilter<(String,)>,
    catalogs: &'static LazyLock<Catalogs>,
) -> BoxedFilter<(Response,)> {
    // `None`: a method other than GET or HEAD.
    let method = warp::get()
        .or(warp::head())
        .unify()
        .and(warp::header::headers_cloned())
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    path.and(method)
        .map(move |file: String, headers: Option<HeaderMap>| {
            let Some(headers) = headers else {
                return ApiError::MethodNotAllowed { allow: "GET, HEAD" }.into_response();
            };
            match catalogs.iter().find(|(name, _)| *name == file) {
                Some((_, asset)) => asset.respond(&headers),
                None => ApiError::NotFound(format!(
                    "no catalog for this language; the languages are {}",
                    LANGUAGES.join(", ")
                ))
                .into_response(),
            }
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The object literal after `const EN = /* en.json */` in a script.
    fn built_in_english(script: &str) -> serde_json::Value {
        let start = script
            .find("const EN = /* en.json */")
            .expect("embed.js declares its English catalog")
            + "const EN = /* en.json */".len();
        let end = start + script[start..].find("\n  };").expect("the literal ends") + 4;
        serde_json::from_str(&script[start..end]).expect("the literal is JSON")
    }

    #[test]
    fn the_english_built_into_the_widget_is_its_english_catalog() {
        let catalog: serde_json::Value = serde_json::from_str(WIDGET_SOURCES[0].1).unwrap();
        assert_eq!(WIDGET_SOURCES[0].0, "en");
        assert_eq!(built_in_english(include_str!("../../assets/embed.js")), catalog);
    }

    #[test]
    fn a_changed_english_message_is_noticed() {
        let script = include_str!("../../assets/embed.js").replacen("Post Comment", "Send", 1);
        let catalog: serde_json::Value = serde_json::from_str(WIDGET_SOURCES[0].1).unwrap();
        assert_ne!(built_in_english(&script), catalog);
    }

    #[test]
    fn every_language_has_both_catalogs() {
        assert_eq!(WIDGET_SOURCES.len(), LANGUAGES.len());
        assert_eq!(ADMIN_SOURCES.len(), LANGUAGES.len());
        for (tag, body) in WIDGET_SOURCES.iter().chain(ADMIN_SOURCES) {
            let parsed: serde_json::Value =
                serde_json::from_str(body).unwrap_or_else(|e| panic!("{tag}: {e}"));
            assert!(parsed.is_object(), "{tag}");
        }
    }
}

//! The few filters the route modules share: the state, the client's address,
//! a size-limited body, the query string and the moderator check; and the
//! strict reading of JSON bodies (JSON only, each key once).
//!
//! None of them rejects: each extracts a value (or a `Result` the handler
//! turns into an error reply), so once a path and method match, that route
//! answers, and a failure can never surface as another route's 404 or 405.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use warp::Filter;
use warp::http::HeaderName;
use warp::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, IF_NONE_MATCH};
use warp::http::{HeaderMap, HeaderValue};

use crate::auth::{CSRF_HEADER, Credentials, Moderator, SESSION_COOKIE, cookie_value};
use crate::config::MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::server::ClientAddr;
use crate::state::AppState;

pub fn with_state(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Arc<AppState>,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// The client's address, resolved through trusted proxies (see `rate_limit`).
pub fn client_ip(state: Arc<AppState>) -> impl Filter<Extract = (IpAddr,), Error = Infallible> + Clone {
    warp::ext::optional::<ClientAddr>()
        .and(warp::header::headers_cloned())
        .map(move |peer: Option<ClientAddr>, headers: HeaderMap| {
            // Only requests that did not come through the accept loop (warp's
            // test harness) lack a peer.
            let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ClientAddr(addr)| addr.ip());
            let forwarded_for = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok());
            state.clients.client_ip(peer, forwarded_for)
        })
}

/// The raw query string, empty when there is none.
pub fn raw_query() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    // `query::raw` rejects a request without a query; the fallback cannot.
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// Decodes a query string (or form body) into its pairs, keeping repeats.
pub fn query_pairs(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(raw).map_err(|_| ApiError::BadRequest("the query string is malformed".into()))
}

/// The request body, at most [`MAX_BODY_BYTES`], refused early when the
/// declared length is already too large and cut off when a chunked body grows
/// past the limit.
pub fn limited_body() -> impl Filter<Extract = (Result<Bytes, ApiError>,), Error = warp::Rejection> + Clone {
    warp::header::headers_cloned()
        .and(warp::body::stream())
        .then(|headers: HeaderMap, body| read_limited(headers, body))
}

async fn read_limited<S, B>(headers: HeaderMap, body: S) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let too_large = ApiError::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large);
    }
    let mut collected = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    tokio::pin!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|_| ApiError::BadRequest("the request body could not be read".into()))?;
        if collected.len() + chunk.remaining() > MAX_BODY_BYTES {
            return Err(too_large);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            collected.extend_from_slice(part);
            let read = part.len();
            chunk.advance(read);
        }
    }
    Ok(collected.freeze())
}

/// The moderator behind the request's bearer token or session cookie, or the
/// error to answer with (401, 403 for a missing CSRF header, or 429 while the
/// client is locked out).
pub fn moderator(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Result<Moderator, ApiError>,), Error = Infallible> + Clone {
    with_state(state.clone())
        .and(client_ip(state))
        .and(warp::header::headers_cloned())
        .then(
            |state: Arc<AppState>, client: IpAddr, headers: HeaderMap| async move {
                let header = |name| headers.get(name).and_then(|value| value.to_str().ok());
                let credentials = Credentials {
                    authorization: header(AUTHORIZATION),
                    session: session_cookie(&headers),
                    csrf: header(HeaderName::from_static(CSRF_HEADER)),
                };
                let result = state.auth.authenticate(credentials, client).await;
                if let Err(ApiError::RateLimited { .. }) = &result {
                    state.metrics.rate_limited("admin_auth");
                }
                result
            },
        )
}

/// The moderation-page session cookie of a request, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|cookies| cookie_value(cookies, SESSION_COOKIE))
}

/// True when `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks
/// for GET) or is `*`.
pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .any(|value| etag_listed(value, etag))
}

/// True when one `If-None-Match` value lists `etag` (weakly) or is `*`.
pub fn etag_listed(if_none_match: &HeaderValue, etag: &str) -> bool {
    if_none_match
        .to_str()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// One request header's raw value, if present. Unlike `warp::header::optional`
/// it never rejects (a value that is not UTF-8 is still a value), and unlike
/// `headers_cloned` it copies nothing but that value: the hot read path uses it.
pub fn header_value(
    name: &'static str,
) -> impl Filter<Extract = (Option<HeaderValue>,), Error = Infallible> + Clone {
    warp::header::value(name)
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
}

/// The media type of the request body (`Content-Type` without parameters
/// such as `charset`), empty when there is none.
pub fn media_type(headers: &HeaderMap) -> &str {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
}

/// 415 unless the body is declared `application/json`. A cross-site page can
/// post `text/plain` without asking the browser's CORS preflight first, but
/// never `application/json`: calls that require it cannot be forged that way.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if media_type(headers).eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        })
    }
}

/// Parses a JSON body, refusing (400) an object that names a key twice,
/// at any depth: serde_json would keep the last one silently, so a proxy or
/// log reading the first would see another request than the one handled.
pub fn strict_json(body: &[u8]) -> Result<Value, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = UniqueKeys::deserialize(&mut deserializer)
        .and_then(|UniqueKeys(value)| deserializer.end().map(|()| value))
        .map_err(|error| ApiError::BadRequest(format!("malformed JSON: {error}")))?;
    Ok(value)
}

/// A JSON value read with each object's keys checked for repeats.
struct UniqueKeys(Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        // Finite always: JSON has no NaN or infinity.
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let UniqueKeys(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key `{key}` appears more than once"
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, "\"a\", W/\"b\"".parse().unwrap());
        assert!(if_none_match(&headers, "\"b\""));
        assert!(if_none_match(&headers, "\"a\""));
        assert!(!if_none_match(&headers, "\"c\""));
        headers.insert(IF_NONE_MATCH, "*".parse().unwrap());
        assert!(if_none_match(&headers, "\"c\""));
        assert!(!if_none_match(&HeaderMap::new(), "\"c\""));
    }

    #[test]
    fn strict_json_refuses_repeated_keys_at_any_depth() {
        for body in [
            &br#"{"name": "a", "name": "b"}"#[..],
            br#"{"a": {"x": 1, "x": 1}}"#,
            br#"[{"a": 1}, {"a": 1, "a": 2}]"#,
        ] {
            let error = strict_json(body).unwrap_err().to_string();
            assert!(error.contains("appears more than once"), "{error}");
        }
        let error = strict_json(br#"{"token": "a", "token": "b"}"#).unwrap_err();
        assert!(error.to_string().contains("`token`"), "the key is named: {error}");
    }

    #[test]
    fn strict_json_reads_what_serde_json_reads() {
        let body = br#" {"a": [1, -2, 3.5, "x", true, null, {}], "b": {"a": 1}, "n": 18446744073709551615} "#;
        let strict = strict_json(body).unwrap();
        let plain: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(strict, plain);
        for broken in [&b""[..], b"{", b"{} {}", b"{\"a\": 1,}", b"nul"] {
            assert!(
                strict_json(broken).is_err(),
                "{:?}",
                String::from_utf8_lossy(broken)
            );
        }
    }

    #[test]
    fn json_is_required_by_its_media_type() {
        let mut headers = HeaderMap::new();
        assert!(require_json(&headers).is_err());
        headers.insert(CONTENT_TYPE, "Application/JSON; charset=utf-8".parse().unwrap());
        assert!(require_json(&headers).is_ok());
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
        ] {
            headers.insert(CONTENT_TYPE, other.parse().unwrap());
            assert!(matches!(
                require_json(&headers),
                Err(ApiError::UnsupportedMediaType {
                    expected: "application/json"
                })
            ));
        }
    }
}

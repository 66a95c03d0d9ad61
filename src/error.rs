//! The one error type of the HTTP layer and its JSON shape:
//! `{"error": CODE, "message": TEXT}`, plus `"fields"` for validation.
//!
//! Handlers return `Result<_, ApiError>` for every outcome; warp rejections are
//! left only for "no route matched", and [`handle_rejection`] turns those (and
//! warp's own 404/405/413/415…) into the same shape.

use std::collections::BTreeMap;
use std::convert::Infallible;

use serde::Serialize;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use crate::store::StoreError;

/// What a comment submission may be sent as.
pub const SUBMISSION_MEDIA_TYPES: &str = "application/json or application/x-www-form-urlencoded";

/// Field name → what is wrong with it, in a stable order.
pub type FieldErrors = BTreeMap<&'static str, String>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `bad_request`: malformed JSON, form data or query.
    #[error("{0}")]
    BadRequest(String),
    /// 401 `unauthorized`, with `WWW-Authenticate: Bearer`.
    #[error("a valid moderator token is required")]
    Unauthorized,
    /// 403 `forbidden`: the session's CSRF check or a CORS origin check failed.
    #[error("{0}")]
    Forbidden(String),
    /// 403 `closed`: the thread takes no new comments; the message is the
    /// reader's, in their language.
    #[error("{0}")]
    Closed(String),
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// 409 with a code of its own: the request is well formed but conflicts
    /// with the state of the service (`mail_not_configured`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 405 `method_not_allowed`, with the `Allow` header.
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// 413 `payload_too_large`.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 408 `request_timeout`: the request (body upload included) was not
    /// answered in time; its connection is closed with the answer.
    #[error("the request was not completed within {seconds} seconds")]
    RequestTimeout { seconds: u64 },
    /// 431 `request_header_fields_too_large`: the request head is over the
    /// server's limits (`crate::server::MAX_REQUEST_HEAD_BYTES`); on HTTP/1
    /// the connection is closed with the answer.
    #[error("the request's header fields exceed {max_bytes} bytes in total or {max_fields} fields")]
    RequestHeaderFieldsTooLarge { max_bytes: usize, max_fields: usize },
    /// 415 `unsupported_media_type`; `expected` names what this call takes.
    #[error("send the body as {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// 422 `validation`: every failing field named.
    #[error("some fields are invalid")]
    Validation(FieldErrors),
    /// 429 `rate_limited`, with `Retry-After` in whole seconds.
    #[error("too many requests; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    /// 503 `unavailable`: the database cannot be reached or written right now.
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// 500 `internal`: anything unexpected. The chain goes to the log, never to the client.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A 422 naming one field.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Validation(BTreeMap::from([(field, message.into())]))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Closed(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::RequestHeaderFieldsTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code (openapi.yaml, `Error`).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Closed(_) => "closed",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } => code,
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::RequestHeaderFieldsTooLarge { .. } => "request_header_fields_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::Validation(_) => "validation",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => ApiError::Unavailable(source.into()),
            StoreError::Other(source) => ApiError::Internal(source.into()),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a FieldErrors>,
}

impl ApiError {
    /// The JSON error body: `{"error", "message"[, "fields"]}`.
    pub fn json_body(&self) -> String {
        let fields = match self {
            ApiError::Validation(fields) => Some(fields),
            _ => None,
        };
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
            fields,
        };
        serde_json::to_string(&body).expect("the error body serializes")
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        match &self {
            // The client learns nothing of the cause; the log gets the whole chain.
            ApiError::Internal(source) => tracing::error!(error = ?source, "request failed"),
            ApiError::Unavailable(source) => {
                tracing::warn!(error = ?source, "database unavailable")
            }
            _ => {}
        }
        let json = warp::reply::with_header(self.json_body(), header::CONTENT_TYPE, "application/json");
        let mut response = warp::reply::with_status(json, self.status()).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            // What is left of the request body may still be on its way.
            ApiError::RequestTimeout { .. } => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Turns a handler's result into a response, so every route answers every outcome.
pub fn respond<T: Reply>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    }
}

/// The last line of the filter tree: whatever warp rejected becomes the JSON
/// error shape. Routes answer their own errors, so what arrives here is mostly
/// "no such route"; the rest are warp's built-in rejections.
pub async fn handle_rejection(rejection: warp::Rejection) -> Result<Response, Infallible> {
    let error = if rejection.is_not_found() {
        ApiError::NotFound("no such route".into())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed {
            allow: "GET, HEAD, POST",
        }
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::PayloadTooLarge {
            limit: crate::config::MAX_BODY_BYTES,
        }
    } else if rejection.find::<warp::reject::UnsupportedMediaType>().is_some() {
        ApiError::UnsupportedMediaType {
            expected: SUBMISSION_MEDIA_TYPES,
        }
    } else if let Some(body_error) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        ApiError::BadRequest(body_error.to_string())
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::BadRequest("the query string is malformed".into())
    } else if let Some(header) = rejection.find::<warp::reject::MissingHeader>() {
        ApiError::BadRequest(format!("the {} header is required", header.name()))
    } else if let Some(header) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::BadRequest(format!("the {} header is invalid", header.name()))
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::BadRequest("a Content-Length header is required".into())
    } else if let Some(cors) = rejection.find::<warp::filters::cors::CorsForbidden>() {
        ApiError::Forbidden(cors.to_string())
    } else {
        ApiError::Internal(anyhow::anyhow!("unhandled rejection: {rejection:?}"))
    };
    Ok(error.into_response())
}

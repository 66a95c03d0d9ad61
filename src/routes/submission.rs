//! Turning a submitted JSON object or urlencoded form into a [`NewComment`],
//! naming every field that is missing, of the wrong type or invalid at once.
//! A key sent twice is refused (400) in both encodings rather than one copy
//! silently winning.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

use serde_json::Value;
use warp::http::HeaderMap;
use warp::http::header::{HeaderName, REFERER, USER_AGENT};

use super::filters::{media_type, strict_json};

use crate::comments::FormSignals;
use crate::domain::{AuthorName, CommentBody, CommentId, Email, LanguageTag, NewComment, ThreadUri, Website};
use crate::error::{ApiError, FieldErrors, SUBMISSION_MEDIA_TYPES};

/// Longest user agent kept for moderators; the rest is cut off.
const MAX_USER_AGENT_CHARS: usize = 500;
/// Longest `Referer` kept for Akismet; the rest is cut off.
const MAX_REFERRER_CHARS: usize = 2000;

/// The honeypot: a field the widget and the no-JavaScript form carry but
/// hide from people (visually and from assistive technology). Filled, the
/// comment is stored as spam (reason `honeypot`) behind the usual 202.
pub const HONEYPOT_FIELD: &str = "homepage";
/// The signed time stamp of when the form was shown (`GET /api/form-token`).
pub const FORM_TOKEN_FIELD: &str = "form_token";

/// How the submission was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionFormat {
    /// `application/json`, from the widget.
    Json,
    /// `application/x-www-form-urlencoded`, from a plain HTML form.
    Form,
}

impl SubmissionFormat {
    /// From the `Content-Type` (parameters such as `charset` ignored); 415 otherwise.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        let essence = media_type(headers);
        if essence.eq_ignore_ascii_case("application/json") {
            Ok(SubmissionFormat::Json)
        } else if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Ok(SubmissionFormat::Form)
        } else {
            Err(ApiError::UnsupportedMediaType {
                expected: SUBMISSION_MEDIA_TYPES,
            })
        }
    }
}

/// The submitted fields before validation: present or not, of the right type or not.
#[derive(Debug, Default)]
struct RawSubmission {
    uri: Option<String>,
    name: Option<String>,
    email: Option<String>,
    website: Option<String>,
    body: Option<String>,
    /// The language of the reader's page, a BCP 47 tag (optional).
    lang: Option<String>,
    parent_id: Option<CommentId>,
    /// `notify`: mail me when a reply to this comment is published.
    wants_replies: bool,
    /// The honeypot and the form token: never a validation error, whatever
    /// they hold (a bot learns nothing from the answer).
    signals: FormSignals,
    /// Fields of the wrong type, already named.
    type_errors: FieldErrors,
}

const STRING_FIELDS: [&str; 6] = ["uri", "name", "email", "website", "body", "lang"];

impl RawSubmission {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let Value::Object(object) = strict_json(body)? else {
            return Err(ApiError::BadRequest("the body must be a JSON object".into()));
        };
        let mut raw = RawSubmission::default();
        for field in STRING_FIELDS {
            match object.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::String(text)) => *raw.slot(field) = Some(text.clone()),
                Some(_) => {
                    raw.type_errors.insert(field, "must be a string".into());
                }
            }
        }
        match object.get("parent_id") {
            None | Some(Value::Null) => {}
            Some(Value::Number(number)) if number.as_i64().is_some() => raw.parent_id = number.as_i64(),
            Some(_) => {
                raw.type_errors
                    .insert("parent_id", "must be an integer comment id".into());
            }
        }
        match object.get("notify") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(wants)) => raw.wants_replies = *wants,
            Some(_) => {
                raw.type_errors.insert("notify", "must be true or false".into());
            }
        }
        raw.signals.honeypot = match object.get(HONEYPOT_FIELD) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::String(text)) => !text.trim().is_empty(),
            Some(_) => true,
        };
        if let Some(Value::String(token)) = object.get(FORM_TOKEN_FIELD) {
            raw.signals.form_token = Some(token.clone());
        }
        Ok(raw)
    }

    fn from_form(body: &[u8]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| ApiError::BadRequest("malformed form data".into()))?;
        let mut fields: HashMap<String, String> = HashMap::new();
        for (key, value) in pairs {
            // Unknown fields are ignored however often they come; a field the
            // service reads must say one thing (which copy wins differs between
            // frameworks, and a proxy in front may have checked the other one).
            if !STRING_FIELDS.contains(&key.as_str())
                && !["parent_id", "notify", HONEYPOT_FIELD, FORM_TOKEN_FIELD].contains(&key.as_str())
            {
                continue;
            }
            match fields.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(slot) => {
                    return Err(ApiError::BadRequest(format!(
                        "the form field `{}` appears more than once",
                        slot.key()
                    )));
                }
            }
        }
        let mut raw = RawSubmission::default();
        for field in STRING_FIELDS {
            *raw.slot(field) = fields.remove(field);
        }
        match fields.remove("parent_id").as_deref().map(str::trim) {
            None | Some("") => {}
            Some(text) => match text.parse::<CommentId>() {
                Ok(id) => raw.parent_id = Some(id),
                Err(_) => {
                    raw.type_errors
                        .insert("parent_id", "must be an integer comment id".into());
                }
            },
        }
        // A checkbox sends its value ("on" unless the form says otherwise)
        // only when ticked.
        match fields.remove("notify").as_deref().map(str::trim) {
            None | Some("") | Some("off") | Some("false") => {}
            Some("on") | Some("true") | Some("1") | Some("yes") => raw.wants_replies = true,
            Some(_) => {
                raw.type_errors.insert("notify", "must be on or absent".into());
            }
        }
        raw.signals.honeypot = fields
            .remove(HONEYPOT_FIELD)
            .is_some_and(|value| !value.trim().is_empty());
        raw.signals.form_token = fields.remove(FORM_TOKEN_FIELD);
        Ok(raw)
    }

    fn slot(&mut self, field: &str) -> &mut Option<String> {
        match field {
            "uri" => &mut self.uri,
            "name" => &mut self.name,
            "email" => &mut self.email,
            "website" => &mut self.website,
            "lang" => &mut self.lang,
            _ => &mut self.body,
        }
    }

    /// Validates every field, collecting all the errors before giving up.
    fn validate(
        self,
        client: IpAddr,
        user_agent: Option<String>,
        referrer: Option<String>,
    ) -> Result<NewComment, ApiError> {
        let mut errors = self.type_errors;
        let uri = required(&mut errors, "uri", self.uri.as_deref(), ThreadUri::parse);
        let name = required(&mut errors, "name", self.name.as_deref(), AuthorName::parse);
        let email = required(&mut errors, "email", self.email.as_deref(), Email::parse);
        let body = required(&mut errors, "body", self.body.as_deref(), CommentBody::parse);
        let website = match self.website.as_deref().map(Website::parse_optional) {
            None => None,
            Some(Ok(website)) => website,
            Some(Err(message)) => {
                errors.entry("website").or_insert(message);
                None
            }
        };
        let lang = match self.lang.as_deref().map(LanguageTag::parse_optional) {
            None => None,
            Some(Ok(lang)) => lang,
            Some(Err(message)) => {
                errors.entry("lang").or_insert(message);
                None
            }
        };
        match (uri, name, email, body) {
            (Some(uri), Some(name), Some(email), Some(body)) if errors.is_empty() => Ok(NewComment {
                uri,
                parent_id: self.parent_id,
                name,
                email,
                website,
                body,
                ip: Some(client.to_string()),
                user_agent,
                wants_replies: self.wants_replies,
                lang,
                referrer,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Parses a required field, recording "is required" or the parser's message.
/// A field already named for its type keeps that message.
fn required<T>(
    errors: &mut FieldErrors,
    field: &'static str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    if errors.contains_key(field) {
        return None;
    }
    let Some(value) = value else {
        errors.insert(field, "is required".into());
        return None;
    };
    parse(value).map_err(|message| errors.insert(field, message)).ok()
}

/// Parses and validates a submission body of the given format.
pub fn parse_submission(
    format: SubmissionFormat,
    body: &[u8],
    client: IpAddr,
    headers: &HeaderMap,
) -> Result<NewComment, ApiError> {
    parse_submission_with_signals(format, body, client, headers).map(|(comment, _)| comment)
}

/// Parses and validates a submission, and reads its form signals (the
/// honeypot and the form token) beside it.
pub fn parse_submission_with_signals(
    format: SubmissionFormat,
    body: &[u8],
    client: IpAddr,
    headers: &HeaderMap,
) -> Result<(NewComment, FormSignals), ApiError> {
    let mut raw = match format {
        SubmissionFormat::Json => RawSubmission::from_json(body)?,
        SubmissionFormat::Form => RawSubmission::from_form(body)?,
    };
    let user_agent = header_text(headers, USER_AGENT, MAX_USER_AGENT_CHARS);
    let referrer = header_text(headers, REFERER, MAX_REFERRER_CHARS);
    let signals = std::mem::take(&mut raw.signals);
    raw.validate(client, user_agent, referrer)
        .map(|comment| (comment, signals))
}

/// A header's value as text without control characters, cut at `max` characters.
fn header_text(headers: &HeaderMap, name: HeaderName, max: usize) -> Option<String> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
        .map(|text| text.chars().filter(|c| !c.is_control()).take(max).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::header::CONTENT_TYPE;

    fn client() -> IpAddr {
        "192.0.2.1".parse().unwrap()
    }

    fn errors_of(result: Result<NewComment, ApiError>) -> FieldErrors {
        match result {
            Err(ApiError::Validation(errors)) => errors,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn every_missing_field_is_named_at_once() {
        let errors = errors_of(parse_submission(
            SubmissionFormat::Json,
            b"{}",
            client(),
            &HeaderMap::new(),
        ));
        assert_eq!(
            errors.keys().copied().collect::<Vec<_>>(),
            ["body", "email", "name", "uri"]
        );
        assert!(errors.values().all(|message| message == "is required"));
    }

    #[test]
    fn wrong_json_types_are_named() {
        let body = br#"{"uri": 1, "name": ["x"], "email": true, "body": {}, "website": 3, "parent_id": "7"}"#;
        let errors = errors_of(parse_submission(
            SubmissionFormat::Json,
            body,
            client(),
            &HeaderMap::new(),
        ));
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert_eq!(errors["parent_id"], "must be an integer comment id");
        assert_eq!(errors["uri"], "must be a string");
    }

    #[test]
    fn a_form_submission_parses_like_json() {
        let body = b"uri=%2Fp%2F&name=Ada&email=ada%40example.org&website=&body=Hello&parent_id=";
        let comment = parse_submission(SubmissionFormat::Form, body, client(), &HeaderMap::new()).unwrap();
        assert_eq!(comment.uri.as_str(), "/p/");
        assert_eq!(comment.website, None);
        assert_eq!(comment.parent_id, None);
        assert_eq!(comment.ip.as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn the_page_language_is_optional_kept_canonical_and_checked() {
        let json =
            br#"{"uri": "/p/", "name": "Ada", "email": "a@example.org", "body": "hi", "lang": "pt-br"}"#;
        let comment = parse_submission(SubmissionFormat::Json, json, client(), &HeaderMap::new()).unwrap();
        assert_eq!(comment.lang.unwrap().as_str(), "pt-BR");
        let form = b"uri=%2Fp%2F&name=Ada&email=a%40example.org&body=hi&lang=";
        let comment = parse_submission(SubmissionFormat::Form, form, client(), &HeaderMap::new()).unwrap();
        assert_eq!(comment.lang, None);
        let bad =
            br#"{"uri": "/p/", "name": "Ada", "email": "a@example.org", "body": "hi", "lang": "not a tag"}"#;
        let errors = errors_of(parse_submission(
            SubmissionFormat::Json,
            bad,
            client(),
            &HeaderMap::new(),
        ));
        assert_eq!(errors.keys().copied().collect::<Vec<_>>(), ["lang"]);
        let wrong_type =
            br#"{"uri": "/p/", "name": "Ada", "email": "a@example.org", "body": "hi", "lang": 7}"#;
        let errors = errors_of(parse_submission(
            SubmissionFormat::Json,
            wrong_type,
            client(),
            &HeaderMap::new(),
        ));
        assert_eq!(errors["lang"], "must be a string");
    }

    #[test]
    fn the_honeypot_and_the_form_token_are_read_in_both_encodings_and_never_refused() {
        let json = br#"{"uri": "/p/", "name": "Ada", "email": "a@example.org", "body": "hi",
                        "homepage": "http://spam.example", "form_token": "abc"}"#;
        let form = b"uri=%2Fp%2F&name=Ada&email=a%40example.org&body=hi&homepage=x&form_token=abc";
        for (format, body) in [
            (SubmissionFormat::Json, &json[..]),
            (SubmissionFormat::Form, &form[..]),
        ] {
            let (_, signals) =
                parse_submission_with_signals(format, body, client(), &HeaderMap::new()).unwrap();
            assert!(signals.honeypot, "{format:?}");
            assert_eq!(signals.form_token.as_deref(), Some("abc"));
        }
        let empty = b"uri=%2Fp%2F&name=Ada&email=a%40example.org&body=hi&homepage=";
        let (_, signals) =
            parse_submission_with_signals(SubmissionFormat::Form, empty, client(), &HeaderMap::new())
                .unwrap();
        assert!(!signals.honeypot && signals.form_token.is_none());
        let odd = br#"{"uri": "/p/", "name": "Ada", "email": "a@example.org", "body": "hi",
                       "homepage": 7, "form_token": 7}"#;
        let (_, signals) =
            parse_submission_with_signals(SubmissionFormat::Json, odd, client(), &HeaderMap::new()).unwrap();
        assert!(signals.honeypot && signals.form_token.is_none());
    }

    #[test]
    fn non_objects_and_broken_json_are_bad_requests() {
        for body in [&b"[1]"[..], b"{\"uri\": ", b"\"text\""] {
            assert!(matches!(
                parse_submission(SubmissionFormat::Json, body, client(), &HeaderMap::new()),
                Err(ApiError::BadRequest(_))
            ));
        }
    }

    #[test]
    fn a_key_sent_twice_is_refused_in_both_encodings() {
        let json = br#"{"uri": "/p/", "name": "Ada", "name": "Eve", "email": "a@example.org", "body": "hi"}"#;
        let form = b"uri=%2Fp%2F&name=Ada&email=a%40example.org&body=hi&name=Eve";
        for (format, body) in [
            (SubmissionFormat::Json, &json[..]),
            (SubmissionFormat::Form, &form[..]),
        ] {
            match parse_submission(format, body, client(), &HeaderMap::new()) {
                Err(ApiError::BadRequest(message)) => {
                    assert!(message.contains("`name`"), "{message}")
                }
                other => panic!("{format:?}: expected a 400, got {other:?}"),
            }
        }
    }

    #[test]
    fn content_types_are_matched_by_essence() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/json; charset=utf-8".parse().unwrap());
        assert_eq!(
            SubmissionFormat::from_headers(&headers).unwrap(),
            SubmissionFormat::Json
        );
        headers.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(matches!(
            SubmissionFormat::from_headers(&headers),
            Err(ApiError::UnsupportedMediaType {
                expected: SUBMISSION_MEDIA_TYPES
            })
        ));
        assert!(matches!(
            SubmissionFormat::from_headers(&HeaderMap::new()),
            Err(ApiError::UnsupportedMediaType {
                expected: SUBMISSION_MEDIA_TYPES
            })
        ));
    }
}

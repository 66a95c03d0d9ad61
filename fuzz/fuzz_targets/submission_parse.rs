//! Arbitrary bytes as a submission body, both as JSON and as a urlencoded
//! form, through `parse_submission`. It must never panic; its answer must be
//! exactly the one the contract's rules give for the fields the bytes hold (a 400
//! for malformed bodies, a 422 naming every bad field, or a comment whose
//! every field keeps its rule); and the public view of an accepted comment
//! must not depend on its email, IP or user agent.

#![no_main]

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use http::StatusCode;
use http::header::{HeaderMap, HeaderValue, USER_AGENT};
use libfuzzer_sys::fuzz_target;
use marginalia::domain::{
    AuthorName, Comment, CommentBody, CommentId, Email, NewComment, Status, ThreadUri, Website,
};
use marginalia::error::{ApiError, respond};
use marginalia::routes::filters::strict_json;
use marginalia::routes::submission::{SubmissionFormat, parse_submission};
use marginalia_fuzz::{assert_within_allow_list, has_control};
use serde_json::Value;
use url::Url;

const STRING_FIELDS: [&str; 5] = ["uri", "name", "email", "website", "body"];
const REQUIRED: [&str; 4] = ["uri", "name", "email", "body"];
const PUBLIC_KEYS: [&str; 6] = ["id", "parent_id", "name", "website", "body_html", "created_at"];

/// The fields a body holds, read independently of the service's parser.
#[derive(Debug, Default)]
struct Fields {
    strings: HashMap<&'static str, String>,
    parent_id: Option<CommentId>,
    /// Fields present with the wrong type.
    wrong_type: BTreeSet<&'static str>,
}

/// `None`: the body is malformed (400). A key named twice at any depth is
/// malformed too; that one rule is read with the service's own
/// `strict_json` (its unit tests prove it), the rest independently.
fn fields_of_json(body: &[u8]) -> Option<Fields> {
    let Ok(Value::Object(object)) = strict_json(body) else {
        return None;
    };
    let mut fields = Fields::default();
    for field in STRING_FIELDS {
        match object.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                fields.strings.insert(field, text.clone());
            }
            Some(_) => {
                fields.wrong_type.insert(field);
            }
        }
    }
    match object.get("parent_id") {
        None | Some(Value::Null) => {}
        Some(value) => match value.as_i64() {
            Some(id) => fields.parent_id = Some(id),
            None => {
                fields.wrong_type.insert("parent_id");
            }
        },
    }
    Some(fields)
}

/// `None`: the body is malformed (400), or names a field the service reads
/// more than once (other fields may repeat).
fn fields_of_form(body: &[u8]) -> Option<Fields> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    let mut first: HashMap<String, String> = HashMap::new();
    for (key, value) in pairs {
        let read = STRING_FIELDS.contains(&key.as_str()) || key == "parent_id";
        if read && first.insert(key, value).is_some() {
            return None;
        }
    }
    let mut fields = Fields::default();
    for field in STRING_FIELDS {
        if let Some(value) = first.remove(field) {
            fields.strings.insert(field, value);
        }
    }
    match first.remove("parent_id").as_deref().map(str::trim) {
        None | Some("") => {}
        Some(text) => match text.parse() {
            Ok(id) => fields.parent_id = Some(id),
            Err(_) => {
                fields.wrong_type.insert("parent_id");
            }
        },
    }
    Some(fields)
}

/// The fields the contract (openapi.yaml) says are wrong, by the domain types' own verdicts.
fn invalid_fields(fields: &Fields) -> BTreeSet<&'static str> {
    let mut invalid = fields.wrong_type.clone();
    let value = |field: &str| fields.strings.get(field).map(String::as_str);
    for field in REQUIRED {
        let ok = value(field).is_some_and(|text| match field {
            "uri" => ThreadUri::parse(text).is_ok(),
            "name" => AuthorName::parse(text).is_ok(),
            "email" => Email::parse(text).is_ok(),
            _ => CommentBody::parse(text).is_ok(),
        });
        if !ok {
            invalid.insert(field);
        }
    }
    if value("website").is_some_and(|text| Website::parse_optional(text).is_err()) {
        invalid.insert("website");
    }
    invalid
}

/// The user agent as the service should keep it: no control characters, ≤ 500.
fn expected_user_agent(headers: &HeaderMap) -> Option<String> {
    headers.get(USER_AGENT).map(|value| {
        String::from_utf8_lossy(value.as_bytes())
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect()
    })
}

/// Every rule of the contract (openapi.yaml) on an accepted comment, checked on the values
/// themselves, and each value equal to what was sent (trimmed where the contract says so).
fn check_accepted(comment: &NewComment, fields: &Fields, client: IpAddr, headers: &HeaderMap) {
    let sent = |field: &str| fields.strings.get(field).map(String::as_str);

    let uri = comment.uri.as_str();
    assert_eq!(Some(uri), sent("uri"), "the uri is used exactly as given");
    assert!(uri.starts_with('/'), "{uri:?}");
    assert!(uri.chars().count() <= 500, "{uri:?}");
    assert!(
        !uri.chars().any(|c| c.is_whitespace() || c.is_control()),
        "{uri:?}"
    );

    let name = comment.name.as_str();
    assert_eq!(Some(name), sent("name").map(str::trim));
    assert!((1..=80).contains(&name.chars().count()), "{name:?}");
    assert!(!has_control(name, &[]), "{name:?}");
    assert_eq!(name, name.trim());

    let email = comment.email.as_str();
    assert_eq!(Some(email), sent("email").map(str::trim));
    assert!(email.chars().count() <= 254 && email.contains('@'), "{email:?}");
    assert!(!has_control(email, &[]), "{email:?}");

    match &comment.website {
        None => assert!(sent("website").is_none_or(|text| text.trim().is_empty())),
        Some(website) => {
            let website = website.as_str();
            assert_eq!(Some(website), sent("website").map(str::trim));
            assert!(website.chars().count() <= 500, "{website:?}");
            assert!(
                !website.chars().any(|c| c.is_whitespace() || c.is_control()),
                "{website:?}"
            );
            let url = Url::parse(website).unwrap_or_else(|error| panic!("{website:?}: {error}"));
            assert!(matches!(url.scheme(), "http" | "https"), "{website:?}");
            assert!(url.host_str().is_some_and(|host| !host.is_empty()), "{website:?}");
        }
    }

    let markdown = comment.body.markdown();
    assert_eq!(Some(markdown), sent("body").map(str::trim));
    assert!((1..=10_000).contains(&markdown.chars().count()));
    assert!(!has_control(markdown, &['\t', '\r', '\n']));
    assert!(comment.body.html().len() <= 64 * 1024);
    assert_within_allow_list(comment.body.html());

    assert_eq!(comment.parent_id, fields.parent_id);
    assert_eq!(comment.ip, Some(client.to_string()));
    assert_eq!(comment.user_agent, expected_user_agent(headers));
    if let Some(agent) = &comment.user_agent {
        assert!(
            agent.chars().count() <= 500 && !has_control(agent, &[]),
            "{agent:?}"
        );
    }

    check_public_view(comment);
}

/// The stored row as the store would return it.
fn stored(comment: &NewComment, email: &str, ip: Option<String>, user_agent: Option<String>) -> Comment {
    Comment {
        id: 1,
        uri: comment.uri.as_str().to_owned(),
        parent_id: comment.parent_id,
        name: comment.name.as_str().to_owned(),
        email: email.to_owned(),
        website: comment
            .website
            .as_ref()
            .map(|website| website.as_str().to_owned()),
        body: comment.body.markdown().to_owned(),
        body_html: comment.body.html().to_owned(),
        status: Status::Approved,
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        moderated_at: None,
        moderated_by: None,
        ip,
        user_agent,
        lang: comment.lang.as_ref().map(|lang| lang.as_str().to_owned()),
        reasons: Default::default(),
        spam_score: None,
        spam_clues: Default::default(),
    }
}

/// The public JSON of the comment has the contract's keys only and is the same
/// whatever the email, IP and user agent: none of them can leak into it.
fn check_public_view(comment: &NewComment) {
    let row = stored(
        comment,
        comment.email.as_str(),
        comment.ip.clone(),
        comment.user_agent.clone(),
    );
    assert!(row.is_stored_form_of(comment));
    let public = serde_json::to_value(row.to_public(true)).expect("the public view serializes");
    let Value::Object(object) = &public else {
        panic!("the public view is not an object: {public}");
    };
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut expected = PUBLIC_KEYS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected);

    let other = stored(
        comment,
        "someone-else@other.example",
        Some("203.0.113.9".into()),
        Some("another agent".into()),
    );
    let other_public = serde_json::to_value(other.to_public(true)).expect("the public view serializes");
    assert_eq!(
        public, other_public,
        "the public view depends on the email, IP or user agent"
    );
}

fuzz_target!(|data: &[u8]| {
    // The same bytes also make the User-Agent, when they are a valid header value.
    let mut headers = HeaderMap::new();
    let tail = &data[data.len().saturating_sub(700)..];
    if let Ok(agent) = HeaderValue::from_bytes(tail) {
        headers.insert(USER_AGENT, agent);
    }
    let client: IpAddr = if data.len() % 2 == 0 {
        "192.0.2.1".parse().unwrap()
    } else {
        "2001:db8::1".parse().unwrap()
    };

    for format in [SubmissionFormat::Json, SubmissionFormat::Form] {
        let fields = match format {
            SubmissionFormat::Json => fields_of_json(data),
            SubmissionFormat::Form => fields_of_form(data),
        };
        let result = parse_submission(format, data, client, &headers);
        match (&result, &fields) {
            (Ok(comment), Some(fields)) => {
                let invalid = invalid_fields(fields);
                assert!(invalid.is_empty(), "{format:?} accepted with invalid {invalid:?}");
                check_accepted(comment, fields, client, &headers);
            }
            (Err(ApiError::Validation(errors)), Some(fields)) => {
                let named: BTreeSet<&str> = errors.keys().copied().collect();
                let invalid = invalid_fields(fields);
                assert_eq!(
                    named, invalid,
                    "{format:?}: the 422 names other fields: {errors:?}"
                );
                for field in REQUIRED {
                    if !fields.strings.contains_key(field) && !fields.wrong_type.contains(field) {
                        assert_eq!(errors[field], "is required");
                    }
                }
                assert!(errors.values().all(|message| !message.is_empty()));
            }
            (Err(ApiError::BadRequest(message)), None) => assert!(!message.is_empty()),
            (other, fields) => panic!("{format:?}: {other:?} for fields {fields:?}"),
        }
        if let Err(error) = result {
            let status = error.status();
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{format:?}: {status} ({error:?})"
            );
            // The error renders to its response without panicking, with that status.
            let response = respond::<StatusCode>(Err(error));
            assert_eq!(response.status(), status);
        }
    }
});

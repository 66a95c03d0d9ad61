//! The catalogs' completeness check, over all three folders of `locales/`
//! (`server`, `widget`, `admin`): every language has a catalog; each is a
//! JSON object with exactly the keys of its folder's `en.json` (no key
//! twice); each message has the placeholders of the English one (a plural
//! form may leave some out, and may use `{count}`); and each plural message
//! has exactly the CLDR categories its language needs, as ICU4X's plural
//! rules (the ones the server formats with) list them.
//!
//! The check is a function over catalogs in memory, so the last test can
//! feed it broken ones and see it fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use marginalia::i18n::Lang;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// The catalog folders and who fills them (the widget's and the moderation
/// page's catalogs arrive with the widget's languages).
const FOLDERS: [&str; 3] = ["server", "widget", "admin"];

/// A JSON object read with its keys in file order, duplicates kept, so a key
/// written twice (which `serde_json` would silently collapse) is seen.
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of messages")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// The `{name}` placeholders of a text, with the formatter's syntax
/// (`src/i18n.rs`): a name of ASCII letters, digits and `_` in braces.
fn placeholders(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if len > 0 && after[len..].starts_with('}') {
            names.insert(after[..len].to_owned());
        }
        rest = after;
    }
    names
}

/// Keys are lowerCamel words, dotted: `postComment`, `mail.moderator.subject`.
fn is_valid_key(key: &str) -> bool {
    key.split('.').all(|word| {
        word.starts_with(|c: char| c.is_ascii_lowercase()) && word.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// Parses a catalog file; a problem when it is not a JSON object or has a
/// key twice.
fn parse(source: &str) -> Result<BTreeMap<String, Value>, String> {
    let Entries(entries) =
        serde_json::from_str(source).map_err(|error| format!("not a valid JSON object: {error}"))?;
    let mut catalog = BTreeMap::new();
    for (key, value) in entries {
        if catalog.insert(key.clone(), value).is_some() {
            return Err(format!("the key `{key}` appears twice"));
        }
    }
    Ok(catalog)
}

/// Everything wrong with `catalog` (in `lang`) against `english`, the
/// folder's source catalog. Empty when it is complete and well formed.
fn problems(lang: Lang, english: &BTreeMap<String, Value>, catalog: &BTreeMap<String, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    for key in english.keys().filter(|key| !catalog.contains_key(*key)) {
        problems.push(format!("`{key}` is missing"));
    }
    for key in catalog.keys().filter(|key| !english.contains_key(*key)) {
        problems.push(format!("`{key}` is not in en.json"));
    }
    let categories: BTreeSet<&str> = lang.plural_categories().into_iter().collect();
    for (key, message) in catalog {
        if !is_valid_key(key) {
            problems.push(format!("`{key}` is not a lowerCamel or dotted key"));
        }
        let Some(source) = english.get(key) else {
            continue;
        };
        match (source, message) {
            (Value::String(source), Value::String(text)) => {
                if text.trim().is_empty() {
                    problems.push(format!("`{key}` is empty"));
                }
                let (expected, found) = (placeholders(source), placeholders(text));
                if expected != found {
                    problems.push(format!(
                        "`{key}` has placeholders {found:?}, English has {expected:?}"
                    ));
                }
            }
            (Value::Object(source), Value::Object(forms)) => {
                let Some(Value::String(other)) = source.get("other") else {
                    problems.push(format!("`{key}`: the English plural has no `other` text"));
                    continue;
                };
                let mut allowed = placeholders(other);
                allowed.insert("count".to_owned());
                let found: BTreeSet<&str> = forms.keys().map(String::as_str).collect();
                if found != categories {
                    problems.push(format!(
                        "`{key}` has the plural forms {found:?}; {} needs exactly {categories:?}",
                        lang.tag()
                    ));
                }
                for (category, form) in forms {
                    let Value::String(form) = form else {
                        problems.push(format!("`{key}.{category}` is not a string"));
                        continue;
                    };
                    if form.trim().is_empty() {
                        problems.push(format!("`{key}.{category}` is empty"));
                    }
                    let extra: Vec<String> = placeholders(form).difference(&allowed).cloned().collect();
                    if !extra.is_empty() {
                        problems.push(format!(
                            "`{key}.{category}` uses {extra:?}, which English's `other` does not have"
                        ));
                    }
                }
            }
            (Value::String(_), _) => problems.push(format!("`{key}` must be a string, as in English")),
            (Value::Object(_), _) => problems.push(format!("`{key}` must be a plural object, as in English")),
            _ => problems.push(format!("`{key}`: the English message is neither text nor plural")),
        }
    }
    problems
}

/// Checks one folder of `locales/`: `en.json` against English's own rules,
/// then every language's file against it; nothing else may be in it.
fn check_folder(folder: &Path) -> Vec<String> {
    let read = |tag: &str| {
        let path = folder.join(format!("{tag}.json"));
        std::fs::read_to_string(&path)
            .map_err(|error| format!("{}: cannot be read ({error})", path.display()))
            .and_then(|source| parse(&source).map_err(|problem| format!("{}: {problem}", path.display())))
    };
    let english = match read("en") {
        Ok(english) => english,
        Err(problem) => return vec![problem],
    };
    let mut found = Vec::new();
    for lang in Lang::ALL {
        match read(lang.tag()) {
            Ok(catalog) => found.extend(
                problems(lang, &english, &catalog)
                    .into_iter()
                    .map(|problem| format!("{}/{}.json: {problem}", folder.display(), lang.tag())),
            ),
            Err(problem) => found.push(problem),
        }
    }
    let expected: BTreeSet<String> = Lang::ALL
        .iter()
        .map(|lang| format!("{}.json", lang.tag()))
        .collect();
    for entry in std::fs::read_dir(folder).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !expected.contains(&name) {
            found.push(format!(
                "{}/{name}: not a catalog of a supported language (see Lang::ALL)",
                folder.display()
            ));
        }
    }
    found
}

#[test]
fn every_catalog_has_every_key_placeholder_and_plural_form_of_its_source() {
    let locales = Path::new(env!("CARGO_MANIFEST_DIR")).join("locales");
    let mut found = Vec::new();
    let mut checked = 0;
    for folder in FOLDERS {
        let path = locales.join(folder);
        assert!(path.is_dir(), "locales/{folder} is missing");
        checked += 1;
        found.extend(check_folder(&path));
    }
    assert_eq!(checked, FOLDERS.len());
    assert!(
        found.is_empty(),
        "{} problems:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_check_finds_what_is_wrong_with_a_catalog() {
    let english = parse(
        r#"{
            "postComment": "Post comment",
            "greeting": "Hello {name}, welcome to {site}.",
            "comments.count": {"one": "{count} comment on {page}", "other": "{count} comments on {page}"}
        }"#,
    )
    .unwrap();
    let good_ru = parse(
        r#"{
            "postComment": "Отправить комментарий",
            "greeting": "Здравствуйте, {name}! Добро пожаловать на {site}.",
            "comments.count": {
                "one": "{count} комментарий на {page}",
                "few": "{count} комментария на {page}",
                "many": "{count} комментариев на {page}",
                "other": "{count} комментария"
            }
        }"#,
    )
    .unwrap();
    assert_eq!(problems(Lang::Ru, &english, &good_ru), Vec::<String>::new());
    assert_eq!(problems(Lang::En, &english, &english), Vec::<String>::new());

    let broken = |lang: Lang, source: &str| problems(lang, &english, &parse(source).unwrap());
    // A missing key and an extra one.
    let found = broken(
        Lang::De,
        r#"{"postComment": "Senden", "extraThing": "x",
            "comments.count": {"one": "{count} Kommentar", "other": "{count} Kommentare"}}"#,
    );
    assert!(
        found.iter().any(|p| p.contains("`greeting` is missing")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("`extraThing` is not in en.json")),
        "{found:?}"
    );
    // A placeholder renamed, one dropped, and a plural without its categories.
    let found = broken(
        Lang::Ru,
        r#"{"postComment": "Отправить", "greeting": "Привет, {nom}!",
            "comments.count": {"one": "{count} комментарий", "other": "{count} комментария"}}"#,
    );
    assert!(
        found.iter().any(|p| p.starts_with("`greeting` has placeholders")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("needs exactly")), "{found:?}");
    // A category the language does not have, a stranger placeholder in a form,
    // and text where English has a plural (and the other way round).
    let found = broken(
        Lang::Ja,
        r#"{"postComment": {"other": "投稿"}, "greeting": "こんにちは {name}、{site} へようこそ。",
            "comments.count": {"one": "{count} 件", "other": "{count} 件 {user}"}}"#,
    );
    assert!(
        found.iter().any(|p| p.contains("`postComment` must be a string")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("needs exactly {\"other\"}")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("uses [\"user\"]")), "{found:?}");
    let found = broken(
        Lang::Ar,
        r#"{"postComment": "", "greeting": "مرحبا {name} في {site}", "comments.count": "{count}"}"#,
    );
    assert!(
        found.iter().any(|p| p.contains("`postComment` is empty")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("must be a plural object")),
        "{found:?}"
    );
    // Keys with other shapes, a key twice, and a file that is not JSON.
    let found = broken(Lang::En, r#"{"Post_comment": "x"}"#);
    assert!(found.iter().any(|p| p.contains("not a lowerCamel")), "{found:?}");
    assert!(parse(r#"{"a": "x", "a": "y"}"#).unwrap_err().contains("twice"));
    assert!(parse(r#"{"a": "x",}"#).unwrap_err().contains("not a valid JSON"));
    assert!(parse(r#"["a"]"#).is_err());
}

#[test]
fn placeholders_are_read_as_the_formatter_reads_them() {
    let names = |text: &str| placeholders(text).into_iter().collect::<Vec<_>>();
    assert_eq!(names("{a} and {b_2}, {} { c } {{d}}"), ["a", "b_2", "d"]);
    assert!(names("no placeholders").is_empty());
}

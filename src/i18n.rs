//! Languages: the fifteen the service speaks, how one is chosen (from an
//! `Accept-Language` header or a BCP 47 tag), and the server's catalogs of
//! messages with their formatter. It depends on no other module of the
//! crate, so pages, mail and configuration all use it.
//!
//! # Catalogs
//!
//! `locales/server/<tag>.json`, compiled in and parsed once. The format is
//! the one of every catalog of the project (the widget's and the moderation
//! page's too; docs/translating.md): a flat JSON object, key → message. A
//! message is a string with `{name}` placeholders, or, when it depends on a
//! number, an object keyed by CLDR plural categories (`zero`, `one`, `two`,
//! `few`, `many`, `other`; `other` always) whose strings may use `{count}`.
//! Messages are whole sentences: code never glues translated fragments
//! together, it fills placeholders.
//!
//! The category of a number comes from CLDR's plural rules through ICU4X's
//! `icu_plurals` (its data is compiled in). Numbers are written as plain
//! ASCII digits in every language, without grouping separators: the counts
//! the server shows (comments in a digest, seconds to wait, a length limit)
//! read correctly that way everywhere, Arabic included.
//!
//! `tests/locales.rs` checks that every catalog has exactly the keys of
//! `en.json`, the same placeholders and the plural categories its language
//! needs. A key missing at run time is therefore a bug: the English message
//! is used and the miss is logged once.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};

use icu_locale_core::Locale;
use icu_plurals::{PluralCategory, PluralRules};
use maud::{Markup, PreEscaped, Render};

/// A language the service speaks. English is the source of every catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    En,
    De,
    Fr,
    Es,
    PtBr,
    PtPt,
    It,
    Nl,
    Pl,
    Tr,
    Ru,
    Ar,
    He,
    Ja,
    ZhHans,
}

impl Lang {
    /// Every language, English first.
    pub const ALL: [Lang; 15] = [
        Lang::En,
        Lang::De,
        Lang::Fr,
        Lang::Es,
        Lang::PtBr,
        Lang::PtPt,
        Lang::It,
        Lang::Nl,
        Lang::Pl,
        Lang::Tr,
        Lang::Ru,
        Lang::Ar,
        Lang::He,
        Lang::Ja,
        Lang::ZhHans,
    ];

    /// The BCP 47 tag, spelt as the catalogs' file names are.
    pub const fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
            Lang::Es => "es",
            Lang::PtBr => "pt-BR",
            Lang::PtPt => "pt-PT",
            Lang::It => "it",
            Lang::Nl => "nl",
            Lang::Pl => "pl",
            Lang::Tr => "tr",
            Lang::Ru => "ru",
            Lang::Ar => "ar",
            Lang::He => "he",
            Lang::Ja => "ja",
            Lang::ZhHans => "zh-Hans",
        }
    }

    /// True for the languages written right to left.
    pub const fn is_rtl(self) -> bool {
        matches!(self, Lang::Ar | Lang::He)
    }

    /// The value of an HTML `dir` attribute: `rtl` or `ltr`.
    pub const fn dir(self) -> &'static str {
        if self.is_rtl() { "rtl" } else { "ltr" }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The supported language a BCP 47 tag asks for, by lookup (RFC 4647):
    /// the tag without extensions and variants, then shorter by one subtag
    /// at a time (`de-AT` → `de`, `zh-Hant-TW` → `zh-Hant` → `zh`). A bare
    /// `pt` is Brazilian Portuguese and a bare `zh` is Simplified Chinese
    /// (so `zh-CN` and `zh-SG` are too). `None` when nothing matches or the
    /// tag is not one.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let locale = Locale::try_from_str(tag.trim()).ok()?;
        let id = &locale.id;
        let mut subtags: Vec<&str> = vec![id.language.as_str()];
        if let Some(script) = &id.script {
            subtags.push(script.as_str());
        }
        if let Some(region) = &id.region {
            subtags.push(region.as_str());
        }
        while !subtags.is_empty() {
            let candidate = subtags.join("-");
            let found = match candidate.to_ascii_lowercase().as_str() {
                "pt" => Some(Lang::PtBr),
                "zh" => Some(Lang::ZhHans),
                lower => Lang::ALL
                    .into_iter()
                    .find(|lang| lang.tag().eq_ignore_ascii_case(lower)),
            };
            if found.is_some() {
                return found;
            }
            subtags.pop();
        }
        None
    }

    /// The best supported language of an `Accept-Language` value: its ranges
    /// by descending `q` (ties keep their order), each looked up as
    /// [`Lang::from_tag`] does; `q=0` and `*` never choose. `None` when no
    /// range matches.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        // A browser sends a handful; more is noise not worth the work.
        const MAX_RANGES: usize = 32;
        let mut ranges: Vec<(u16, &str)> = header
            .split(',')
            .take(MAX_RANGES)
            .filter_map(|item| {
                let mut parts = item.split(';');
                let range = parts.next()?.trim();
                if range.is_empty() || range == "*" {
                    return None;
                }
                let mut quality = 1000;
                for parameter in parts {
                    let (name, value) = parameter.split_once('=')?;
                    if name.trim().eq_ignore_ascii_case("q") {
                        quality = parse_quality(value.trim())?;
                    }
                }
                (quality > 0).then_some((quality, range))
            })
            .collect();
        // Stable: equal `q`s keep the order the client wrote them in.
        ranges.sort_by_key(|range| std::cmp::Reverse(range.0));
        ranges.into_iter().find_map(|(_, range)| Lang::from_tag(range))
    }

    /// The language of a page: the request's `Accept-Language` when it names
    /// a supported language, else `fallback` (the configured language).
    pub fn negotiate(accept_language: Option<&str>, fallback: Lang) -> Lang {
        accept_language
            .and_then(Lang::from_accept_language)
            .unwrap_or(fallback)
    }

    /// The CLDR plural categories of cardinal numbers in this language
    /// (`one`, `other`…), in the order zero, one, two, few, many, other.
    pub fn plural_categories(self) -> Vec<&'static str> {
        let present: Vec<PluralCategory> = plural_rules(self).categories().collect();
        CATEGORY_ORDER
            .into_iter()
            .filter(|category| present.contains(category))
            .map(category_name)
            .collect()
    }

    /// The CLDR plural category of `count` in this language.
    pub fn plural_category(self, count: u64) -> &'static str {
        category_name(plural_rules(self).category_for(count))
    }

    /// The message `key` as plain text, its placeholders filled from `args`.
    pub fn text(self, key: &str, args: &[(&str, &str)]) -> String {
        let (lang, template) = self.template(key, None);
        let mut out = String::with_capacity(template.len());
        fill(
            lang,
            key,
            template,
            None,
            &mut out,
            |out, piece| match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Value(value) => out.push_str(value),
            },
            |name| args.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
        );
        out
    }

    /// The plural message `key` for `count` as plain text; `{count}` is the
    /// number, other placeholders come from `args`.
    pub fn text_count(self, key: &str, count: u64, args: &[(&str, &str)]) -> String {
        let (lang, template) = self.template(key, Some(count));
        let mut out = String::with_capacity(template.len());
        fill(
            lang,
            key,
            template,
            Some(count),
            &mut out,
            |out, piece| match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Value(value) => out.push_str(value),
            },
            |name| args.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
        );
        out
    }

    /// The message `key` as HTML: its own text escaped, each placeholder
    /// replaced by the markup given for it (build it with `maud`, which
    /// escapes every value), so a translation may move a link or a name
    /// anywhere in its sentence.
    pub fn html(self, key: &str, args: &[(&str, Markup)]) -> Markup {
        self.html_inner(key, None, args)
    }

    /// The plural message `key` for `count` as HTML (see [`Lang::html`]).
    pub fn html_count(self, key: &str, count: u64, args: &[(&str, Markup)]) -> Markup {
        self.html_inner(key, Some(count), args)
    }

    fn html_inner(self, key: &str, count: Option<u64>, args: &[(&str, Markup)]) -> Markup {
        let (lang, template) = self.template(key, count);
        let mut out = String::with_capacity(template.len() + 32);
        fill(
            lang,
            key,
            template,
            count,
            &mut out,
            |out, piece| match piece {
                Piece::Literal(text) => text.render_to(out),
                // Values are markup already: built and escaped by the caller
                // (or the digits of the count).
                Piece::Value(value) => out.push_str(value),
            },
            |name| {
                args.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, markup)| markup.0.as_str())
            },
        );
        PreEscaped(out)
    }

    /// The template of `key` in this language, or in English when this
    /// catalog lacks it (logged once), with the language it is written in
    /// (whose plural rules then apply). The key itself when even English
    /// lacks it.
    fn template(self, key: &str, count: Option<u64>) -> (Lang, &'static str) {
        let found = match catalog(self).get(key) {
            Some(message) => Some((self, message)),
            None => {
                report_once(self, key, "missing from the catalog; English is used");
                catalog(Lang::En).get(key).map(|message| (Lang::En, message))
            }
        };
        let Some((lang, message)) = found else {
            report_once(Lang::En, key, "missing from the English catalog");
            return (Lang::En, leak_key(key));
        };
        let template = match (message, count) {
            (Message::Text(text), _) => text.as_str(),
            (Message::Plural(forms), Some(count)) => {
                let category = plural_rules(lang).category_for(count);
                forms
                    .get(&category_name(category))
                    .or_else(|| forms.get(&category_name(PluralCategory::Other)))
                    .map_or("", String::as_str)
            }
            (Message::Plural(forms), None) => forms
                .get(&category_name(PluralCategory::Other))
                .map_or("", String::as_str),
        };
        (lang, template)
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// Parses a configured language (`MARGINALIA_LANG`): any tag that resolves
/// to a supported language ([`Lang::from_tag`]: `de-AT` is German), else an
/// error listing the supported ones.
impl FromStr for Lang {
    type Err = UnsupportedLang;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Lang::from_tag(text).ok_or_else(|| UnsupportedLang(text.to_owned()))
    }
}

/// A tag that names no supported language.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a supported language; use one of {list}", list = supported_list())]
pub struct UnsupportedLang(pub String);

fn supported_list() -> String {
    Lang::ALL.map(Lang::tag).join(", ")
}

/// A `q` value: `0` to `1` with up to three decimals, in thousandths.
fn parse_quality(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let mut thousandths: u16 = 0;
    for (position, digit) in fraction.bytes().enumerate() {
        thousandths += u16::from(digit - b'0') * [100, 10, 1][position];
    }
    let quality = whole * 1000 + thousandths;
    (quality <= 1000).then_some(quality)
}

/// A catalog entry.
#[derive(Debug)]
enum Message {
    Text(String),
    /// Category name (`one`, `other`…) → text.
    Plural(HashMap<&'static str, String>),
}

type Catalog = HashMap<String, Message>;

/// The catalogs' sources, in the order of [`Lang::ALL`].
const SOURCES: [&str; 15] = [
    include_str!("../locales/server/en.json"),
    include_str!("../locales/server/de.json"),
    include_str!("../locales/server/fr.json"),
    include_str!("../locales/server/es.json"),
    include_str!("../locales/server/pt-BR.json"),
    include_str!("../locales/server/pt-PT.json"),
    include_str!("../locales/server/it.json"),
    include_str!("../locales/server/nl.json"),
    include_str!("../locales/server/pl.json"),
    include_str!("../locales/server/tr.json"),
    include_str!("../locales/server/ru.json"),
    include_str!("../locales/server/ar.json"),
    include_str!("../locales/server/he.json"),
    include_str!("../locales/server/ja.json"),
    include_str!("../locales/server/zh-Hans.json"),
];

static CATALOGS: LazyLock<Vec<Catalog>> = LazyLock::new(|| {
    Lang::ALL
        .into_iter()
        .map(|lang| parse_catalog(lang, SOURCES[lang.index()]))
        .collect()
});

fn catalog(lang: Lang) -> &'static Catalog {
    &CATALOGS[lang.index()]
}

/// Reads one catalog. What cannot be read is logged and left out (English
/// stands in for it); `tests/locales.rs` keeps that from ever shipping.
fn parse_catalog(lang: Lang, source: &str) -> Catalog {
    let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(source) {
        Ok(object) => object,
        Err(error) => {
            tracing::error!(lang = lang.tag(), %error, "a server catalog is not a JSON object");
            return Catalog::new();
        }
    };
    let mut catalog = Catalog::new();
    for (key, value) in object {
        let message = match value {
            serde_json::Value::String(text) => Some(Message::Text(text)),
            serde_json::Value::Object(forms) => forms
                .into_iter()
                .map(|(category, text)| {
                    let category = CATEGORY_ORDER
                        .into_iter()
                        .map(category_name)
                        .find(|name| *name == category)?;
                    Some((category, text.as_str()?.to_owned()))
                })
                .collect::<Option<HashMap<_, _>>>()
                .filter(|forms| forms.contains_key("other"))
                .map(Message::Plural),
            _ => None,
        };
        match message {
            Some(message) => {
                catalog.insert(key, message);
            }
            None => tracing::error!(lang = lang.tag(), key, "a catalog message is malformed"),
        }
    }
    catalog
}

const CATEGORY_ORDER: [PluralCategory; 6] = [
    PluralCategory::Zero,
    PluralCategory::One,
    PluralCategory::Two,
    PluralCategory::Few,
    PluralCategory::Many,
    PluralCategory::Other,
];

fn category_name(category: PluralCategory) -> &'static str {
    match category {
        PluralCategory::Zero => "zero",
        PluralCategory::One => "one",
        PluralCategory::Two => "two",
        PluralCategory::Few => "few",
        PluralCategory::Many => "many",
        PluralCategory::Other => "other",
    }
}

static PLURAL_RULES: LazyLock<Vec<PluralRules>> = LazyLock::new(|| {
    Lang::ALL
        .into_iter()
        .map(|lang| {
            let locale = Locale::try_from_str(lang.tag()).expect("the supported tags are valid BCP 47");
            PluralRules::try_new_cardinal(locale.into()).unwrap_or_else(|_| {
                // The compiled data has every CLDR language; this is a
                // safeguard, not a path that runs.
                PluralRules::try_new_cardinal(Locale::UNKNOWN.into())
                    .expect("the root plural rules are compiled in")
            })
        })
        .collect()
});

fn plural_rules(lang: Lang) -> &'static PluralRules {
    &PLURAL_RULES[lang.index()]
}

/// What a template is made of, for the writer of [`fill`].
enum Piece<'a> {
    /// The catalog's own text.
    Literal(&'a str),
    /// A placeholder's value (or the text of a placeholder without one).
    Value(&'a str),
}

/// Walks `template`, handing its text and each `{name}`'s value to `write`.
/// `{count}` is the count's digits unless `value` has one; a `{` that does
/// not start a placeholder is text. A placeholder without a value stays as
/// written, and is logged once (a bug of the caller).
fn fill<'v>(
    lang: Lang,
    key: &str,
    template: &str,
    count: Option<u64>,
    out: &mut String,
    mut write: impl FnMut(&mut String, Piece<'_>),
    value: impl Fn(&str) -> Option<&'v str>,
) {
    let digits = count.map(|count| count.to_string());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with('}') {
            write(out, Piece::Literal(&rest[..=start]));
            rest = after;
            continue;
        }
        write(out, Piece::Literal(&rest[..start]));
        let name = &after[..name_len];
        let filled = match value(name) {
            Some(filled) => Some(filled),
            None if name == "count" => digits.as_deref(),
            None => None,
        };
        match filled {
            Some(filled) => write(out, Piece::Value(filled)),
            None => {
                report_once(lang, key, "has a placeholder the code gives no value for");
                write(out, Piece::Literal(&rest[start..start + name_len + 2]));
            }
        }
        rest = &after[name_len + 1..];
    }
    write(out, Piece::Literal(rest));
}

/// Logs a catalog problem once per language and key (it would repeat on
/// every request otherwise).
fn report_once(lang: Lang, key: &str, problem: &str) {
    static REPORTED: LazyLock<Mutex<HashSet<(Lang, String)>>> = LazyLock::new(Default::default);
    let first = REPORTED
        .lock()
        .map(|mut reported| reported.insert((lang, key.to_owned())))
        .unwrap_or(false);
    if first {
        tracing::error!(
            lang = lang.tag(),
            key,
            problem,
            "a message of the server catalog is wrong"
        );
    }
}

/// A key shown in place of its missing message. Keys are few and fixed (the
/// code's literals), so keeping each one that is ever missing costs nothing.
fn leak_key(key: &str) -> &'static str {
    static KEYS: LazyLock<Mutex<HashMap<String, &'static str>>> = LazyLock::new(Default::default);
    let Ok(mut keys) = KEYS.lock() else {
        return "";
    };
    keys.entry(key.to_owned())
        .or_insert_with(|| Box::leak(key.to_owned().into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use maud::html;

    #[test]
    fn tags_resolve_by_truncation_with_the_portuguese_and_chinese_defaults() {
        for (tag, expected) in [
            ("en", Some(Lang::En)),
            ("EN-us", Some(Lang::En)),
            ("de-AT", Some(Lang::De)),
            ("de-DE-u-co-phonebk", Some(Lang::De)),
            ("pt", Some(Lang::PtBr)),
            ("pt-BR", Some(Lang::PtBr)),
            ("pt-PT", Some(Lang::PtPt)),
            ("pt-pt", Some(Lang::PtPt)),
            ("pt-AO", Some(Lang::PtBr)),
            ("zh", Some(Lang::ZhHans)),
            ("zh-CN", Some(Lang::ZhHans)),
            ("zh-SG", Some(Lang::ZhHans)),
            ("zh-Hans", Some(Lang::ZhHans)),
            ("zh-Hans-CN", Some(Lang::ZhHans)),
            ("ar-EG", Some(Lang::Ar)),
            ("he", Some(Lang::He)),
            ("ja-JP", Some(Lang::Ja)),
            ("sw", None),
            ("xx", None),
            ("", None),
            ("*", None),
            ("not a tag", None),
        ] {
            assert_eq!(Lang::from_tag(tag), expected, "{tag:?}");
        }
        for lang in Lang::ALL {
            assert_eq!(Lang::from_tag(lang.tag()), Some(lang));
            assert_eq!(lang.tag().parse::<Lang>(), Ok(lang));
        }
        let error = "xx".parse::<Lang>().unwrap_err().to_string();
        assert!(
            error.contains("`xx`") && error.contains("pt-BR, pt-PT"),
            "{error}"
        );
    }

    #[test]
    fn accept_language_follows_q_values_and_skips_what_is_not_supported() {
        for (header, expected) in [
            ("de", Some(Lang::De)),
            ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", Some(Lang::Fr)),
            ("sw, de;q=0.5", Some(Lang::De)),
            ("en;q=0.1, ja;q=0.9", Some(Lang::Ja)),
            ("en;q=0.5, ru;q=0.5", Some(Lang::En)),
            ("ar;q=0, he", Some(Lang::He)),
            ("zh-TW;q=1.000", Some(Lang::ZhHans)),
            ("pl;q=1.5, tr", Some(Lang::Tr)),
            ("pl;q=abc, nl", Some(Lang::Nl)),
            ("*", None),
            ("sw, xh", None),
            ("", None),
            (",,;q=1", None),
        ] {
            assert_eq!(Lang::from_accept_language(header), expected, "{header:?}");
        }
        assert_eq!(Lang::negotiate(None, Lang::De), Lang::De);
        assert_eq!(Lang::negotiate(Some("sw"), Lang::It), Lang::It);
        assert_eq!(Lang::negotiate(Some("es-MX"), Lang::It), Lang::Es);
    }

    #[test]
    fn right_to_left_is_arabic_and_hebrew() {
        let rtl: Vec<Lang> = Lang::ALL.into_iter().filter(|lang| lang.is_rtl()).collect();
        assert_eq!(rtl, [Lang::Ar, Lang::He]);
        assert_eq!(Lang::Ar.dir(), "rtl");
        assert_eq!(Lang::De.dir(), "ltr");
    }

    #[test]
    fn plural_rules_are_cldrs() {
        assert_eq!(Lang::En.plural_categories(), ["one", "other"]);
        assert_eq!(Lang::Ja.plural_categories(), ["other"]);
        assert_eq!(
            Lang::Ar.plural_categories(),
            ["zero", "one", "two", "few", "many", "other"]
        );
        assert_eq!(Lang::Ru.plural_categories(), ["one", "few", "many", "other"]);
        assert_eq!(Lang::Pl.plural_categories(), ["one", "few", "many", "other"]);
        let ru: Vec<_> = [1, 2, 5, 21, 22, 25, 11]
            .map(|n| Lang::Ru.plural_category(n))
            .into();
        assert_eq!(ru, ["one", "few", "many", "one", "few", "many", "many"]);
        let ar: Vec<_> = [0, 1, 2, 5, 21, 100].map(|n| Lang::Ar.plural_category(n)).into();
        assert_eq!(ar, ["zero", "one", "two", "few", "many", "other"]);
    }

    #[test]
    fn placeholders_are_filled_and_plurals_chosen() {
        let subject = Lang::En.text_count("mail.digest.subject", 1, &[]);
        assert_eq!(subject, "1 new comment awaiting moderation");
        let subject = Lang::En.text_count("mail.digest.subject", 3, &[]);
        assert_eq!(subject, "3 new comments awaiting moderation");
        let ru = [1, 3, 5].map(|n| Lang::Ru.text_count("mail.digest.subject", n, &[]));
        assert!(ru[0].starts_with("1 ") && ru[1].starts_with("3 ") && ru[2].starts_with("5 "));
        assert!(ru[0] != ru[1] && ru[1] != ru[2], "{ru:?}");
        let text = Lang::De.text("mail.moderator.subject", &[("uri", "/a/"), ("name", "Maya")]);
        assert!(text.contains("/a/") && text.contains("Maya"), "{text}");
    }

    #[test]
    fn html_messages_escape_their_text_and_keep_the_given_markup() {
        let name = html! { strong { "<Maya & co>" } };
        let page = html! { a href="https://blog.example/a/" { "/a/" } };
        let markup = Lang::En.html("links.moderate.approved", &[("name", name), ("page", page)]);
        assert_eq!(
            markup.into_string(),
            "The comment by <strong>&lt;Maya &amp; co&gt;</strong> on \
             <a href=\"https://blog.example/a/\">/a/</a> is now approved."
        );
    }

    #[test]
    fn the_formatter_keeps_braces_that_are_not_placeholders() {
        let mut out = String::new();
        fill(
            Lang::En,
            "test",
            "{a} {} {b c} {{x}} {missing} {count}",
            Some(7),
            &mut out,
            |out, piece| match piece {
                Piece::Literal(text) | Piece::Value(text) => out.push_str(text),
            },
            |name| (name == "a" || name == "x").then_some("A"),
        );
        assert_eq!(out, "A {} {b c} {A} {missing} 7");
    }

    #[test]
    fn a_missing_key_falls_back_to_english_then_to_the_key() {
        assert_eq!(Lang::De.text("no.such.key", &[]), "no.such.key");
        assert_eq!(parse_quality("0.5"), Some(500));
        assert_eq!(parse_quality("1"), Some(1000));
        assert_eq!(parse_quality("1.0001"), None);
        assert_eq!(parse_quality("2"), None);
    }
}

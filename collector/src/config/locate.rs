//! Pointing at the offending key: byte offsets to line and column, and key paths to spans
//! (via toml's spanned document parser), for config error messages.

use std::{fmt::Write as _, path::Path};

use super::ConfigError;

/// One step of a key path.
#[derive(Debug, Clone)]
pub(super) enum Seg {
    Key(&'static str),
    Index(usize),
}

pub(super) fn k(name: &'static str) -> Seg {
    Seg::Key(name)
}

pub(super) fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

pub(super) fn invalid_at(
    source: &str,
    path: &Path,
    offset: usize,
    key: Option<String>,
    message: String,
) -> ConfigError {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    ConfigError::Invalid {
        path: path.to_owned(),
        line,
        column,
        key,
        message,
    }
}

/// The parsed document with spans, as one table value.
fn document(source: &str) -> Option<toml::Spanned<toml::de::DeValue<'_>>> {
    let table = toml::de::DeTable::parse(source).ok()?;
    let span = table.span();
    Some(toml::Spanned::new(
        span,
        toml::de::DeValue::Table(table.into_inner()),
    ))
}

/// The byte offset of the value at `path` (or of its table, when the key is missing).
pub(super) fn span_of(source: &str, path: &[Seg]) -> Option<usize> {
    let root = document(source)?;
    let mut node = &root;
    let mut best = None;
    for seg in path {
        let next = match seg {
            Seg::Key(name) => node.get_ref().get(*name),
            Seg::Index(i) => node.get_ref().get(*i),
        };
        match next {
            Some(n) => {
                node = n;
                best = Some(n.span().start);
            }
            None => break,
        }
    }
    best
}

/// The dotted path of the deepest key whose key or value span contains `offset`.
pub(super) fn key_at(source: &str, offset: usize) -> Option<String> {
    let root = document(source)?;
    let mut path = String::new();
    let mut node = root.get_ref();
    loop {
        // A key/value line's spans contain the offset; a `[table]` header's span does not
        // cover its body, so otherwise take the last section starting before the offset.
        let next = match node {
            toml::de::DeValue::Table(table) => {
                let entries = || {
                    table
                        .iter()
                        .map(|(k, v)| (k.span(), format!(".{}", k.get_ref()), v))
                };
                entries()
                    .find(|(key, _, value)| key.contains(&offset) || value.span().contains(&offset))
                    .or_else(|| {
                        entries()
                            .filter(|(key, _, value)| {
                                key.start <= offset
                                    && matches!(
                                        value.get_ref(),
                                        toml::de::DeValue::Table(_) | toml::de::DeValue::Array(_)
                                    )
                            })
                            .max_by_key(|(key, _, _)| key.start)
                    })
                    .map(|(_, segment, value)| (segment, value))
            }
            toml::de::DeValue::Array(items) => {
                let entries = || items.iter().enumerate().map(|(i, v)| (format!("[{i}]"), v));
                entries()
                    .find(|(_, value)| value.span().contains(&offset))
                    .or_else(|| {
                        entries()
                            .filter(|(_, v)| v.span().start <= offset)
                            .max_by_key(|(_, v)| v.span().start)
                    })
            }
            _ => None,
        };
        let Some((segment, value)) = next else { break };
        path.push_str(&segment);
        node = value.get_ref();
    }
    let path = path.trim_start_matches('.').to_owned();
    (!path.is_empty()).then_some(path)
}

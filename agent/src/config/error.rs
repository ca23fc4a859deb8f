//! Config errors that name the file, the line and the key, and say what would be valid.

use std::{fmt, path::PathBuf};

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read agent config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A mistake at a place in the file.
    #[error("{}", Located(self))]
    At {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        col: Option<usize>,
        /// The key at fault (`check[2].target`), when known.
        key: Option<String>,
        /// What is wrong and what would be valid.
        message: String,
    },
}

impl ConfigError {
    /// The line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::At { line, .. } => *line,
            Self::Read { .. } => None,
        }
    }

    /// The key the error names, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::At { key, .. } => key.as_deref(),
            Self::Read { .. } => None,
        }
    }
}

struct Located<'a>(&'a ConfigError);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ConfigError::At {
            path,
            line,
            col,
            key,
            message,
        } = self.0
        else {
            return Ok(());
        };
        write!(f, "{}", path.display())?;
        if let Some(line) = line {
            write!(f, ":{line}")?;
            if let Some(col) = col {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(key) = key {
            write!(f, "key `{key}`: ")?;
        }
        f.write_str(message)
    }
}

/// Turns a byte offset in `text` into a 1-based (line, column).
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, col)
}

/// Finds the line of `key = ...` in the table that starts at byte `within.start` of `text`
/// (a check table), so errors found after parsing can still point at a line. The search ends
/// at the next table header.
pub(crate) fn key_line(text: &str, within: std::ops::Range<usize>, key: &str) -> Option<usize> {
    let start = within.start.min(text.len());
    let mut offset = start;
    for (n, line) in text.get(start..)?.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        if n > 0 && is_header(trimmed) {
            break;
        }
        if let Some(rest) = trimmed.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(line_col(text, offset).0);
        }
        offset += line.len();
    }
    None
}

/// `[table]` or `[[array]]`, possibly followed by a comment.
fn is_header(line: &str) -> bool {
    let code = line.split('#').next().unwrap_or_default().trim();
    code.starts_with('[') && code.ends_with(']') && !code.contains(['"', '\'', ','])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 8), (2, 3));
        assert_eq!(key_line(text, 0..text.len(), "bb"), Some(2));
        assert_eq!(key_line(text, 0..text.len(), "b"), None);
        let tables = "[[check]]\nid = \"a\"\n[[check]]\nport = 1\n";
        assert_eq!(key_line(tables, 0..9, "port"), None);
        assert_eq!(key_line(tables, 20..29, "port"), Some(4));
    }
}

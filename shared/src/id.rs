//! Validated identifiers: site, agent and check ids share one grammar, `[a-z0-9][a-z0-9-]{0,62}`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Maximum length of an id, in bytes.
pub const MAX_ID_LEN: usize = 63;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string is empty.
    #[error("{what} id is empty; expected 1 to 63 characters from a-z, 0-9 and '-'")]
    Empty { what: &'static str },
    /// The string is longer than [`MAX_ID_LEN`].
    #[error("{what} id {value:?} is {len} characters long; at most 63 are allowed")]
    TooLong {
        what: &'static str,
        value: String,
        len: usize,
    },
    /// A character outside the allowed set, or a leading '-'.
    #[error(
        "{what} id {value:?} has {found:?} at position {position}; expected a-z, 0-9 or '-' (not first)"
    )]
    BadChar {
        what: &'static str,
        value: String,
        found: char,
        position: usize,
    },
}

/// Checks `value` against `[a-z0-9][a-z0-9-]{0,62}`; `what` names the id in the error.
pub fn validate(what: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { what });
    }
    if value.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            what,
            value: value.chars().take(80).collect(),
            len: value.chars().count(),
        });
    }
    for (position, found) in value.chars().enumerate() {
        let ok =
            found.is_ascii_lowercase() || found.is_ascii_digit() || (found == '-' && position > 0);
        if !ok {
            return Err(IdError::BadChar {
                what,
                value: value.to_owned(),
                found,
                position,
            });
        }
    }
    Ok(())
}

/// Turns any text (a host name, say) into a valid id: lower case, other characters become
/// '-', cut to 63. Returns `None` when nothing usable is left.
pub fn sanitize(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() == MAX_ID_LEN {
            break;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    (!out.is_empty()).then_some(out)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `value`.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate($what, &value)?;
                Ok(Self(value))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// A site (plant, depot, branch office); also its MQTT username.
    SiteId,
    "site"
);
id_type!(
    /// One agent (host) at a site.
    AgentId,
    "agent"
);
id_type!(
    /// One check configured on an agent.
    CheckId,
    "check"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects_by_the_grammar() {
        let cases: &[(&str, bool)] = &[
            ("plant-leeds", true),
            ("a", true),
            ("0-9", true),
            (&"a".repeat(63), true),
            (&"a".repeat(64), false),
            ("", false),
            ("-lead", false),
            ("Upper", false),
            ("under_score", false),
            ("dot.ted", false),
            ("plus+", false),
            ("slash/", false),
            ("é", false),
        ];
        for (value, ok) in cases {
            assert_eq!(SiteId::new(*value).is_ok(), *ok, "{value:?}");
        }
    }

    #[test]
    fn error_names_the_bad_character() {
        let err = AgentId::new("line3_pc").expect_err("underscore is not allowed");
        let msg = err.to_string();
        assert!(msg.contains("agent id \"line3_pc\""), "{msg}");
        assert!(msg.contains("'_'") && msg.contains("position 5"), "{msg}");
    }

    #[test]
    fn sanitize_makes_host_names_valid() {
        assert_eq!(
            sanitize("Line3-PC.local").as_deref(),
            Some("line3-pc-local")
        );
        assert_eq!(sanitize("--x__y--").as_deref(), Some("x-y"));
        assert_eq!(sanitize("___"), None);
        let long = sanitize(&"A".repeat(100)).expect("letters survive");
        assert_eq!(long.len(), 63);
        assert!(CheckId::new(long).is_ok());
    }

    #[test]
    fn serde_rejects_invalid_ids() {
        let err = serde_json::from_str::<SiteId>("\"Bad Site\"").expect_err("space");
        assert!(err.to_string().contains("site id"), "{err}");
    }
}

//! Step one and two of parsing: the file's tables as written, then each check split into
//! its common keys and its kind's keys.

use std::{path::Path, path::PathBuf, sync::Arc};

use outpost_shared::{AgentId, ByteSize, CheckId, HumanDuration, SiteId};
use serde::Deserialize;
use toml::Spanned;

use super::{
    Config, ConfigError, OutboxConfig,
    error::{key_line, line_col},
    sections::{parse_local, parse_mqtt, parse_timezone},
    validate,
};
use crate::checks::{self, CheckCommon, SettingError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    site: Spanned<String>,
    agent: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    mqtt: RawMqtt,
    #[serde(default)]
    local: RawLocal,
    #[serde(default)]
    outbox: RawOutbox,
    #[serde(default)]
    check: Vec<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqtt {
    pub(super) url: Spanned<String>,
    pub(super) username_file: Option<PathBuf>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) cert_file: Option<PathBuf>,
    pub(super) key_file: Option<PathBuf>,
    pub(super) keep_alive: Option<Spanned<HumanDuration>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocal {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) protect_reads: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOutbox {
    dir: PathBuf,
    max_size: ByteSize,
    max_age: HumanDuration,
}

impl Default for RawOutbox {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/var/lib/outpost/outbox"),
            max_size: ByteSize::new(256_000_000),
            max_age: HumanDuration::from_secs(7 * 86_400),
        }
    }
}

/// The keys every check has, whatever its kind.
pub(crate) const COMMON_KEYS: &[&str] = &[
    "id",
    "kind",
    "title",
    "interval",
    "timeout",
    "fail_after",
    "recover_after",
    "local_window",
    "runbook",
    "depends_on",
    "escalate_warn",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommon {
    id: CheckId,
    kind: String,
    title: Option<String>,
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    #[serde(default = "default_fail_after")]
    fail_after: u32,
    #[serde(default = "default_recover_after")]
    recover_after: u32,
    #[serde(default)]
    local_window: HumanDuration,
    #[serde(default)]
    runbook: Vec<String>,
    #[serde(default)]
    depends_on: Vec<CheckId>,
    #[serde(default)]
    escalate_warn: bool,
}

const fn default_fail_after() -> u32 {
    3
}
const fn default_recover_after() -> u32 {
    2
}

/// Where errors point: the file, its text.
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// An error at a byte span.
    pub fn at_span(
        &self,
        span: std::ops::Range<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, col) = line_col(self.text, span.start);
        ConfigError::At {
            path: self.path.to_path_buf(),
            line: Some(line),
            col: Some(col),
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }

    /// An error about `key` inside the table spanning `table`.
    pub fn at_key(
        &self,
        table: std::ops::Range<usize>,
        key: &str,
        shown_key: String,
        message: impl Into<String>,
    ) -> ConfigError {
        let line = key_line(self.text, table.clone(), key)
            .or_else(|| Some(line_col(self.text, table.start).0));
        ConfigError::At {
            path: self.path.to_path_buf(),
            line,
            col: None,
            key: Some(shown_key),
            message: message.into(),
        }
    }
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let src = Source { path, text };
    let raw: RawConfig = toml::from_str(text).map_err(|err| {
        let (line, col) = err
            .span()
            .map(|s| line_col(text, s.start))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        ConfigError::At {
            path: path.to_path_buf(),
            line,
            col,
            key: None,
            message: err.message().trim().to_owned(),
        }
    })?;

    let site = SiteId::new(raw.site.get_ref().clone())
        .map_err(|e| src.at_span(raw.site.span(), Some("site"), e.to_string()))?;
    let agent = match &raw.agent {
        Some(agent) => AgentId::new(agent.get_ref().clone())
            .map_err(|e| src.at_span(agent.span(), Some("agent"), e.to_string()))?,
        None => default_agent_id().ok_or_else(|| ConfigError::At {
            path: path.to_path_buf(),
            line: None,
            col: None,
            key: Some("agent".into()),
            message: "the host name gives no usable agent id; set `agent = \"line3-pc\"` \
                      (a-z, 0-9 and '-')"
                .into(),
        })?,
    };
    let (timezone, timezone_name) = parse_timezone(&src, raw.timezone.as_ref())?;
    let mqtt = parse_mqtt(&src, raw.mqtt)?;
    let local = parse_local(&src, raw.local)?;
    let outbox = OutboxConfig {
        dir: raw.outbox.dir,
        max_size: raw.outbox.max_size,
        max_age: raw.outbox.max_age,
    };

    let mut checks = Vec::with_capacity(raw.check.len());
    for (index, table) in raw.check.into_iter().enumerate() {
        checks.push(parse_check(&src, index, table)?);
    }
    validate::checks(&src, &checks)?;
    Ok(Config {
        path: path.to_path_buf(),
        site,
        agent,
        timezone,
        timezone_name,
        mqtt,
        local,
        outbox,
        checks: checks.into_iter().map(|c| c.check).collect(),
    })
}

/// The host name made into a valid id.
fn default_agent_id() -> Option<AgentId> {
    let host = sysinfo::System::host_name()?;
    AgentId::new(outpost_shared::id::sanitize(&host)?).ok()
}

/// One check as parsed, with where it is in the file (for the whole-config validation).
pub(crate) struct ParsedCheck {
    pub check: Arc<dyn checks::Check>,
    pub span: std::ops::Range<usize>,
    pub interval_set: bool,
    pub timeout_set: bool,
}

fn parse_check(
    src: &Source<'_>,
    index: usize,
    table: Spanned<toml::Table>,
) -> Result<ParsedCheck, ConfigError> {
    let span = table.span();
    let mut kind_keys = table.into_inner();
    let mut common = toml::Table::new();
    for key in COMMON_KEYS {
        if let Some(value) = kind_keys.remove(*key) {
            common.insert((*key).to_owned(), value);
        }
    }
    let name_of = |key: &str| format!("check[{index}].{key}");
    let raw: RawCommon =
        serde_path_to_error::deserialize(toml::Value::Table(common)).map_err(|err| {
            let key = err.path().to_string();
            let key = if key == "." {
                missing_field(&err.inner().to_string()).unwrap_or_default()
            } else {
                key
            };
            src.at_key(
                span.clone(),
                &key,
                name_of(&key),
                err.into_inner().message().to_owned(),
            )
        })?;
    let id = raw.id.clone();
    let name_of = |key: &str| format!("check {:?} ({key})", id.as_str());
    let Some(kind) = checks::kind(&raw.kind) else {
        return Err(src.at_key(
            span,
            "kind",
            name_of("kind"),
            format!(
                "{:?} is not a check kind; expected one of {}",
                raw.kind,
                checks::kind_names().join(", ")
            ),
        ));
    };
    let interval = raw.interval.unwrap_or(HumanDuration::from_secs(60));
    let timeout = raw.timeout.unwrap_or_else(|| {
        HumanDuration::new(interval.get().min(std::time::Duration::from_secs(10)))
    });
    let common = CheckCommon {
        title: raw.title.unwrap_or_else(|| raw.id.to_string()),
        id: raw.id,
        kind: kind.name,
        interval,
        timeout,
        fail_after: raw.fail_after,
        recover_after: raw.recover_after,
        local_window: raw.local_window,
        runbook: raw.runbook,
        depends_on: raw.depends_on,
        escalate_warn: raw.escalate_warn,
    };
    let check = (kind.build)(common, kind_keys).map_err(|SettingError { key, message }| {
        let message = if message.starts_with("unknown field") {
            format!(
                "{message}; every check also takes {}",
                COMMON_KEYS.join(", ")
            )
        } else {
            message
        };
        match key {
            Some(key) => src.at_key(span.clone(), &key, name_of(&key), message),
            None => src.at_span(
                span.clone(),
                None,
                format!("check {:?}: {message}", id.as_str()),
            ),
        }
    })?;
    Ok(ParsedCheck {
        check,
        span,
        interval_set: raw.interval.is_some(),
        timeout_set: raw.timeout.is_some(),
    })
}

/// serde names a missing field only in its message: "missing field `id`".
pub(crate) fn missing_field(message: &str) -> Option<String> {
    let rest = message.split("missing field `").nth(1)?;
    Some(rest.split('`').next()?.to_owned())
}

//! The top-level tables: time zone, `[mqtt]` and `[local]`, checked beyond their types.

use std::net::SocketAddr;

use toml::Spanned;

use super::{
    ConfigError, LocalConfig, MqttConfig, MqttScheme,
    raw::{RawLocal, RawMqtt, Source},
};

pub(super) fn parse_timezone(
    src: &Source<'_>,
    raw: Option<&Spanned<String>>,
) -> Result<(jiff::tz::TimeZone, String), ConfigError> {
    let Some(raw) = raw else {
        let tz = jiff::tz::TimeZone::system();
        let name = tz.iana_name().unwrap_or("UTC").to_owned();
        return Ok((tz, name));
    };
    let name = raw.get_ref();
    jiff::tz::TimeZone::get(name)
        .map(|tz| (tz, name.clone()))
        .map_err(|_| {
            src.at_span(
                raw.span(),
                Some("timezone"),
                format!(
                    "{name:?} is not a known time zone; expected an IANA name like \
                     \"Europe/London\" or \"America/Chicago\""
                ),
            )
        })
}

pub(super) fn parse_mqtt(src: &Source<'_>, raw: RawMqtt) -> Result<MqttConfig, ConfigError> {
    let url = raw.url.get_ref();
    let bad = |why: &str| {
        src.at_span(
            raw.url.span(),
            Some("mqtt.url"),
            format!("{url:?} {why}; expected mqtt://host:port or mqtts://host:port"),
        )
    };
    let (scheme, rest, default_port) = if let Some(rest) = url.strip_prefix("mqtt://") {
        (MqttScheme::Plain, rest, 1883)
    } else if let Some(rest) = url.strip_prefix("mqtts://") {
        (MqttScheme::Tls, rest, 8883)
    } else {
        return Err(bad("has an unknown scheme"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') || rest.contains('@') {
        return Err(bad(
            "must not carry a path or credentials (use username_file)",
        ));
    }
    let (host, port) = split_host_port(rest).ok_or_else(|| bad("has no valid host and port"))?;
    let port = port.unwrap_or(default_port);
    if scheme == MqttScheme::Plain
        && (raw.ca_file.is_some() || raw.cert_file.is_some() || raw.key_file.is_some())
    {
        return Err(bad(
            "is plain MQTT but ca_file/cert_file/key_file are set; use mqtts://",
        ));
    }
    if raw.cert_file.is_some() && raw.ca_file.is_none() {
        return Err(src.at_span(
            raw.url.span(),
            Some("mqtt.ca_file"),
            "mutual TLS (cert_file) needs the broker's CA in ca_file too",
        ));
    }
    if raw.cert_file.is_some() != raw.key_file.is_some() {
        return Err(src.at_span(
            raw.url.span(),
            Some("mqtt.cert_file"),
            "cert_file and key_file go together for mutual TLS; set both or neither",
        ));
    }
    let keep_alive = match raw.keep_alive {
        None => std::time::Duration::from_secs(30),
        Some(k) => {
            let d = k.get_ref().get();
            if d < std::time::Duration::from_secs(1) || d > std::time::Duration::from_secs(3600) {
                return Err(src.at_span(
                    k.span(),
                    Some("mqtt.keep_alive"),
                    format!(
                        "{} is out of range; expected \"1s\" to \"1h\" (default \"30s\")",
                        k.get_ref()
                    ),
                ));
            }
            d
        }
    };
    Ok(MqttConfig {
        keep_alive,
        url: url.clone(),
        scheme,
        host,
        port,
        username_file: raw.username_file,
        password_file: raw.password_file,
        ca_file: raw.ca_file,
        cert_file: raw.cert_file,
        key_file: raw.key_file,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse().ok()?)),
        None => (text, None),
    };
    (!host.is_empty() && !host.contains(':')).then(|| (host.to_owned(), port))
}

pub(super) fn parse_local(src: &Source<'_>, raw: RawLocal) -> Result<LocalConfig, ConfigError> {
    let listen = match &raw.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 9470)),
        Some(listen) => listen.get_ref().parse().map_err(|_| {
            src.at_span(
                listen.span(),
                Some("local.listen"),
                format!(
                    "{:?} is not an address and port; expected like \"127.0.0.1:9470\" \
                     or \"0.0.0.0:9470\"",
                    listen.get_ref()
                ),
            )
        })?,
    };
    let protect_reads = match raw.protect_reads {
        Some(flag) if *flag.get_ref() && raw.token_file.is_none() => {
            return Err(src.at_span(
                flag.span(),
                Some("local.protect_reads"),
                "protecting reads needs the site token: set token_file too".to_owned(),
            ));
        }
        Some(flag) => *flag.get_ref(),
        None => false,
    };
    Ok(LocalConfig {
        listen,
        token_file: raw.token_file,
        protect_reads,
    })
}

//! The status page as HTML: the headline, the connection line, planned work and one card per
//! check. Every piece of text is escaped; the page works without JavaScript.

use std::fmt::Write as _;

use outpost_shared::Status;

use super::{
    forms::{Forms, check_forms, planned_work_forms},
    view::{CheckView, PageView},
};

/// Seconds between refreshes of the page.
pub const REFRESH_SECS: u32 = 15;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The CSS class and the shape-icon of a status (colour is never the only sign).
fn look(status: Option<Status>) -> (&'static str, &'static str) {
    match status {
        Some(Status::Ok) => ("ok", "✓"),
        Some(Status::Warn) => ("warn", "!"),
        Some(Status::Fail) => ("fail", "✕"),
        Some(Status::Unknown) => ("unknown", "?"),
        None => ("pending", "…"),
    }
}

/// What a form post just did, for the thank-you line.
fn thanks(sent: &str) -> Option<&'static str> {
    match sent {
        "note" => Some("Thank you — your note was sent to IT."),
        "working_on_it" => Some("Thank you — IT can see that you are working on it."),
        "checklist_done" => Some("Thank you — marked as done."),
        "planned_work" => Some("Planned work is declared."),
        "planned_work_ended" => Some("Planned work is marked as finished."),
        _ => None,
    }
}

/// Renders the whole page. `place` names the site and agent; `sent` is the last form's action.
pub fn page(view: &PageView, place: &str, forms: Forms, sent: Option<&str>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let top = if view.problems == 0 { "ok" } else { "fail" };
    let (_, icon) = look(Some(if view.problems == 0 {
        Status::Ok
    } else {
        Status::Fail
    }));
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <noscript><meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"></noscript>\n\
         <title>{headline} — {place}</title>\n\
         <link rel=\"stylesheet\" href=\"/site.css\">\n\
         <script src=\"/site.js\" defer></script>\n</head>\n<body>\n\
         <header class=\"top {top}\">\n<p class=\"place\">{place}</p>\n\
         <h1 id=\"headline\"><span class=\"icon\" aria-hidden=\"true\">{icon}</span> {headline}</h1>\n\
         <p class=\"connection {link}\" id=\"connection\"><strong>Connection to head office:</strong> {connection}</p>\n\
         <p class=\"updated\">Updated at {at}. This page refreshes itself every {REFRESH_SECS} seconds.</p>\n\
         </header>\n<main>\n",
        headline = escape(&view.headline),
        place = escape(place),
        link = if view.connected { "up" } else { "down" },
        connection = escape(&view.connection),
        at = escape(&view.generated_at),
    );
    if let Some(message) = sent.and_then(thanks) {
        let _ = writeln!(out, "<p class=\"sent\" role=\"status\">{message}</p>");
    }
    if let Some(planned) = view
        .planned_work
        .as_ref()
        .or(view.planned_work_ended.as_ref())
    {
        let _ = writeln!(
            out,
            "<p class=\"planned-banner\" id=\"planned-banner\">{}</p>",
            escape(planned)
        );
    }
    for check in &view.checks {
        check_card(&mut out, check, forms);
    }
    let _ = write!(
        out,
        "<section class=\"planned\" id=\"planned-work\" aria-labelledby=\"planned-title\">\n\
         <h2 id=\"planned-title\">Planned work</h2>\n{}</section>\n",
        planned_work_forms(view.planned_work.is_some(), forms)
    );
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn check_card(out: &mut String, check: &CheckView, forms: Forms) {
    let (class, icon) = look(check.status);
    let id = escape(&check.id);
    let since = check
        .since
        .as_deref()
        .map(|s| format!(" <span class=\"since\">{}</span>", escape(s)))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<section class=\"check {class}\" id=\"check-{id}\" aria-labelledby=\"title-{id}\">\n\
         <h2 id=\"title-{id}\">{title}</h2>\n\
         <p class=\"status\"><span class=\"badge\"><span class=\"icon\" aria-hidden=\"true\">{icon}</span> \
         {words}</span>{since}</p>\n<p class=\"summary\">{summary}</p>\n",
        title = escape(&check.title),
        words = escape(&check.status_words),
        summary = escape(&check.summary),
    );
    for (class, line) in [
        ("heartbeat", &check.heartbeat),
        ("checklist", &check.checklist),
        ("planned-line", &check.planned_work),
        ("waiting-for", &check.waiting_for),
        ("demarcation", &check.demarcation),
        ("fixed", &check.fixed),
    ] {
        if let Some(line) = line {
            let _ = writeln!(out, "<p class=\"{class}\">{}</p>", escape(line));
        }
    }
    if let Some(note) = &check.it_note {
        let _ = writeln!(
            out,
            "<p class=\"it-note\"><strong>IT says:</strong> {}</p>",
            escape(note)
        );
    }
    if !check.runbook.is_empty() {
        let _ = writeln!(out, "<h3>What to do</h3>\n<ol class=\"runbook\">");
        for step in &check.runbook {
            let _ = writeln!(out, "<li>{}</li>", escape(step));
        }
        out.push_str("</ol>\n");
    }
    if !check.notes.is_empty() {
        let _ = writeln!(
            out,
            "<h3>Notes from the site team</h3>\n<ul class=\"notes\">"
        );
        for note in &check.notes {
            let _ = writeln!(out, "<li>{}</li>", escape(note));
        }
        out.push_str("</ul>\n");
    }
    out.push_str(&check_forms(check, forms));
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_in_text_is_shown_as_text() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}

//! The page's forms: plain HTML posts (no JavaScript needed), a label on every field, large
//! buttons. Each form posts to the same endpoint a script would use.

use std::fmt::Write as _;

use super::{
    html::escape,
    input::{MAX_NAME, MAX_TEXT},
    view::CheckView,
};

/// What every form needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Forms {
    /// Writes need the site code (the page listens beyond loopback).
    pub needs_token: bool,
}

impl Forms {
    /// The "Your name" field (and the site code field when needed), ids made unique by `key`.
    fn who(self, key: &str) -> String {
        let mut out = format!(
            "<label for=\"by-{key}\">Your name</label>\n\
             <input type=\"text\" id=\"by-{key}\" name=\"by\" required maxlength=\"{MAX_NAME}\" \
             autocomplete=\"name\">\n"
        );
        if self.needs_token {
            let _ = write!(
                out,
                "<label for=\"token-{key}\">Site code (ask IT if you do not have it)</label>\n\
                 <input type=\"password\" id=\"token-{key}\" name=\"token\" required \
                 autocomplete=\"current-password\">\n"
            );
        }
        out
    }
}

/// The forms under one check: "Done" for a checklist, and for a check that needs attention
/// "I'm working on it" and "Tell IT what you tried".
pub fn check_forms(check: &CheckView, forms: Forms) -> String {
    let id = escape(&check.id);
    let mut out = String::new();
    if check.kind == "checklist" {
        let _ = write!(
            out,
            "<form class=\"done\" method=\"post\" action=\"/api/v1/checklist/{id}\">\n{who}\
             <button type=\"submit\">Done</button>\n</form>\n",
            who = forms.who(&format!("done-{id}"))
        );
    }
    if !check.needs_attention() {
        return out;
    }
    let _ = write!(
        out,
        "<form class=\"working\" method=\"post\" action=\"/api/v1/checks/{id}/notes\">\n\
         <input type=\"hidden\" name=\"action\" value=\"working_on_it\">\n{who}\
         <button type=\"submit\">I'm working on it</button>\n</form>\n",
        who = forms.who(&format!("work-{id}"))
    );
    let _ = write!(
        out,
        "<details class=\"note\"><summary>Tell IT what you tried</summary>\n\
         <form method=\"post\" action=\"/api/v1/checks/{id}/notes\">\n\
         <input type=\"hidden\" name=\"action\" value=\"note\">\n{who}\
         <label for=\"text-{id}\">What did you try, and what do you see?</label>\n\
         <textarea id=\"text-{id}\" name=\"text\" rows=\"4\" required maxlength=\"{MAX_TEXT}\"></textarea>\n\
         <button type=\"submit\">Send to IT</button>\n</form>\n</details>\n",
        who = forms.who(&format!("note-{id}"))
    );
    out
}

/// The planned-work section: declare it, or end it early while it lasts.
pub fn planned_work_forms(active: bool, forms: Forms) -> String {
    if active {
        return format!(
            "<form method=\"post\" action=\"/api/v1/notes\">\n\
             <input type=\"hidden\" name=\"action\" value=\"planned_work_ended\">\n{who}\
             <button type=\"submit\">Planned work is finished</button>\n</form>\n",
            who = forms.who("planned-end")
        );
    }
    format!(
        "<p>Working on the equipment on purpose (for example replacing the router)? Tell IT \
         here first, so they are not called for it. Planned work lasts at most 4 hours.</p>\n\
         <details class=\"declare\"><summary>Declare planned work</summary>\n\
         <form method=\"post\" action=\"/api/v1/notes\">\n\
         <input type=\"hidden\" name=\"action\" value=\"planned_work\">\n\
         <label for=\"reason\">What work is planned?</label>\n\
         <input type=\"text\" id=\"reason\" name=\"text\" required maxlength=\"{MAX_TEXT}\" \
         placeholder=\"Router replaced\">\n\
         <label for=\"until\">Until (at most 4 hours from now)</label>\n\
         <input type=\"time\" id=\"until\" name=\"until\" required>\n{who}\
         <button type=\"submit\">Declare planned work</button>\n</form>\n</details>\n",
        who = forms.who("planned")
    )
}

// Outpost site page: refreshes every 15 seconds unless someone is typing, and remembers the
// name typed last. The page works without this file (it then refreshes with a meta tag).
(function () {
  "use strict";
  var PERIOD = 15000;
  var NAME_KEY = "outpost-site-name";
  var IDLE = 60000;
  var lastInput = 0;
  var submitting = false;

  // Drop "?sent=..." so a refresh does not repeat the thank-you line.
  if (window.location.search && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname + window.location.hash);
  }

  function fields() {
    return document.querySelectorAll("input[name=by]");
  }

  try {
    var saved = window.localStorage.getItem(NAME_KEY);
    if (saved) {
      fields().forEach(function (el) { if (!el.value) { el.value = saved; } });
    }
  } catch (e) { /* storage may be disabled */ }

  function touched() { lastInput = Date.now(); }
  document.addEventListener("input", touched);
  document.addEventListener("toggle", touched, true);
  document.addEventListener("submit", function (event) {
    submitting = true; // a reload now would cancel the form on its way
    var by = event.target.querySelector("input[name=by]");
    if (by && by.value) {
      try { window.localStorage.setItem(NAME_KEY, by.value); } catch (e) { /* ignore */ }
    }
  });

  // Text typed but not sent yet (the name field is filled in for people, so it does not count).
  function unsent() {
    var boxes = document.querySelectorAll("textarea, input:not([type=hidden]):not([type=submit]):not([type=password]):not([name=by])");
    for (var i = 0; i < boxes.length; i++) {
      if (boxes[i].value && boxes[i].value !== boxes[i].defaultValue) { return true; }
    }
    return false;
  }

  function busy() {
    if (submitting || unsent()) { return true; }
    var el = document.activeElement;
    if (el && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) && el.value) { return true; }
    // Someone typed or opened a form in the last minute: let them finish.
    return Date.now() - lastInput < IDLE;
  }

  window.setInterval(function () {
    if (!busy()) { window.location.reload(); }
  }, PERIOD);
})();

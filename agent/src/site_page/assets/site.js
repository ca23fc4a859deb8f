// Outpost site page: refreshes every 15 seconds unless someone is typing, and remembers the
// name typed last. The page works without this file (it then refreshes with a meta tag).
(function () {
  "use strict";
  var PERIOD = 15000;
  var NAME_KEY = "outpost-site-name";
  var IDLE = 60000;
  var lastInput = 0;

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
    var by = event.target.querySelector("input[name=by]");
    if (by && by.value) {
      try { window.localStorage.setItem(NAME_KEY, by.value); } catch (e) { /* ignore */ }
    }
  });

  function busy() {
    var el = document.activeElement;
    if (el && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) && el.value) { return true; }
    // Someone typed or opened a form in the last minute: let them finish.
    return Date.now() - lastInput < IDLE;
  }

  window.setInterval(function () {
    if (!busy()) { window.location.reload(); }
  }, PERIOD);
})();

// Accord's small behaviours. No inline scripts (the CSP forbids them).
(function () {
  "use strict";
  // Close an open <details> drop-down (notifications) on a click elsewhere or Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.notify[open]").forEach(function (details) {
      if (!details.contains(event.target)) details.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.notify[open]").forEach(function (details) {
      details.removeAttribute("open");
      details.querySelector("summary").focus();
    });
  });

  // An htmx request that fails swaps nothing, so without this the page would
  // just not change. Say what happened in the page's message area (or in the
  // open dialog the request came from, which covers the page). Elements that
  // handle their own failures are left to them: a board card is put back by
  // boards.js, which explains in the board's own message area.
  var HANDLES_ITS_OWN_FAILURES = ".board-card";

  function failureStatus(event) {
    if (event.type === "htmx:sendError" || !event.detail.xhr) return 0;
    return event.detail.xhr.status;
  }

  function failureText(status) {
    if (status === 0) return "Could not reach the server. Check your connection and try again.";
    if (status === 403) return "You are not allowed to do that (403).";
    if (status === 404) return "That is no longer there (404). Reload the page to see it as it is now.";
    return "The server could not complete that (" + status + "). Try again in a moment.";
  }

  function failureRegion(source) {
    var dialog = source && source.closest && source.closest("dialog[open]");
    return dialog || document.getElementById("messages");
  }

  function requestFailed(event) {
    var source = event.detail && event.detail.elt;
    if (source && source.closest && source.closest(HANDLES_ITS_OWN_FAILURES)) return;
    var region = failureRegion(source);
    if (!region) return;
    var notice = region.querySelector("[data-request-failed]");
    if (!notice) {
      notice = document.createElement(region.tagName === "UL" ? "li" : "p");
      notice.className = "alert alert-error";
      notice.setAttribute("role", "alert");
      region.insertBefore(notice, region.firstChild);
    }
    var status = failureStatus(event);
    // "unavailable" (unreachable, 5xx) clears once a request gets through;
    // a refusal stays until the user moves on.
    notice.setAttribute("data-request-failed", status === 0 || status >= 500 ? "unavailable" : "refused");
    notice.textContent = failureText(status);
    if (notice.scrollIntoView) notice.scrollIntoView({ block: "nearest" });
  }

  // A later request that succeeds means the server is back.
  function requestDone(event) {
    if (!event.detail || !event.detail.successful) return;
    document.querySelectorAll('[data-request-failed="unavailable"]').forEach(function (notice) {
      notice.remove();
    });
  }

  document.addEventListener("htmx:responseError", requestFailed);
  document.addEventListener("htmx:sendError", requestFailed);
  document.addEventListener("htmx:afterRequest", requestDone);
})();

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
})();

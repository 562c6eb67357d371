// Reporting pages: small progressive enhancements (the pages work without them).
(function () {
  "use strict";
  // Picking a custom day switches the period to "Custom".
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches(".report-filters input[type=date]")) return;
    var period = input.form && input.form.querySelector("select[name=period]");
    if (period && period.value !== "custom") period.value = "custom";
  }, true);
  // Print buttons.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-print]");
    if (!button) return;
    event.preventDefault();
    window.print();
  });
})();

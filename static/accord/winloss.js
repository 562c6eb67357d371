// Win/loss: an action item form shows only the target field of the chosen kind.
// Without JavaScript every target field shows and the server uses the one that
// matches "It changes". No inline scripts (the CSP forbids them).
(function () {
  "use strict";

  function syncTargets(form) {
    var kindSelect = form.querySelector("select[name=target_kind]");
    if (!kindSelect) return;
    var kind = kindSelect.value;
    form.querySelectorAll("[data-target-kind]").forEach(function (input) {
      var field = input.closest(".field");
      if (field) field.hidden = input.dataset.targetKind !== kind;
    });
  }

  function syncAll(root) {
    root.querySelectorAll("form.action-item-form").forEach(syncTargets);
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches("form.action-item-form select[name=target_kind]")) {
      syncTargets(event.target.form);
    }
  });
  document.addEventListener("DOMContentLoaded", function () { syncAll(document); });
  document.addEventListener("htmx:afterSettle", function () { syncAll(document); });
})();

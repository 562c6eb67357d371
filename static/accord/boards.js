// The pipeline boards: drag a card to another column (SortableJS), post the
// move with htmx, and let the server answer with the columns as they are now.
// Moves that need details (won, lost, reject) put the card back at once and
// open the form the server sends in a <dialog>; nothing moves without it.
// No inline scripts, no eval: the CSP forbids both.
(function () {
  "use strict";

  var focusCardId = null;

  function dialog() {
    return document.getElementById("board-dialog");
  }

  function showMessage(text) {
    var region = document.getElementById("board-messages");
    if (!region) return;
    var alert = document.createElement("p");
    alert.className = "alert alert-error";
    alert.textContent = text;
    region.replaceChildren(alert);
  }

  function putBack(card) {
    var origin = card.boardOrigin;
    if (!origin || !origin.list.isConnected) return;
    origin.list.insertBefore(card, origin.list.children[origin.index] || null);
    card.classList.remove("board-card-pending");
  }

  function moveCard(card, from, to, oldIndex) {
    card.boardOrigin = { list: from, index: oldIndex };
    if (to.hasAttribute("data-needs-details")) {
      putBack(card);
    } else {
      card.classList.add("board-card-pending");
    }
    htmx.ajax("POST", card.dataset.moveUrl, {
      source: card,
      swap: "none",
      values: {
        to_stage: to.dataset.stage,
        from_stage: card.dataset.stage,
        version: card.dataset.version,
      },
    });
  }

  function initColumn(list) {
    if (list.boardSortable || typeof Sortable === "undefined") return;
    var board = list.closest(".board");
    list.boardSortable = Sortable.create(list, {
      group: board ? board.dataset.board : "board",
      sort: false,
      draggable: ".board-card[data-movable]",
      filter: "a, summary, button, input, .card-menu",
      preventOnFilter: false,
      forceFallback: true,
      fallbackTolerance: 4,
      ghostClass: "board-card-ghost",
      dragClass: "board-card-drag",
      onEnd: function (evt) {
        if (evt.to !== evt.from) moveCard(evt.item, evt.from, evt.to, evt.oldIndex);
      },
    });
  }

  htmx.onLoad(function (root) {
    if (root.matches && root.matches(".board-cards")) initColumn(root);
    if (root.querySelectorAll) root.querySelectorAll(".board-cards").forEach(initColumn);
  });

  // The move form (won, lost, reject) arrives in the dialog's body.
  document.body.addEventListener("board:dialog-open", function () {
    var box = dialog();
    if (!box) return;
    if (!box.open) box.showModal();
    var field = box.querySelector(".has-error select, .has-error input, select, input:not([type=hidden]), textarea");
    if (field) field.focus();
  });
  document.body.addEventListener("board:dialog-close", function () {
    var box = dialog();
    if (box && box.open) box.close();
  });
  document.addEventListener("click", function (event) {
    var cancel = event.target.closest("[data-board-dialog-close]");
    var box = dialog();
    if (cancel && box && box.contains(cancel)) {
      event.preventDefault();
      box.close();
    }
  });

  // A move from a card's menu: keep the keyboard on that card after the
  // columns are re-rendered (it may now be in another column).
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var card = event.target.closest && event.target.closest(".board-card");
    if (card && event.target.closest(".card-menu")) focusCardId = card.id;
  });
  document.body.addEventListener("board:sync", function () {
    if (!focusCardId) return;
    var card = document.getElementById(focusCardId);
    focusCardId = null;
    if (!card) return;
    var target = card.querySelector(".card-menu summary") || card.querySelector("a");
    if (target && !(dialog() && dialog().open)) target.focus();
  });

  // The server could not answer: the card goes back where it came from.
  function failed(event) {
    var source = event.detail && event.detail.elt;
    var card = source && source.closest && source.closest(".board-card");
    if (!card) return;
    putBack(card);
    showMessage("The move could not be saved (the server did not answer). Try again.");
  }
  document.body.addEventListener("htmx:responseError", failed);
  document.body.addEventListener("htmx:sendError", failed);
})();

/* civicdesk inbox behaviour: keyboard shortcuts, row selection, live-update refresh, the reply composer.
 *
 * Progressive enhancement only: every action here is also a plain link or form that works without JavaScript.
 * Served from 'self' under a CSP with no inline script; htmx runs with allowEval off (see base.html).
 */
(function () {
  "use strict";

  var G_TIMEOUT_MS = 1500;
  var PRESENCE_EVERY_MS = 8000;

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function isTyping(target) {
    if (!target || !target.tagName) { return false; }
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function csrfToken() {
    var input = $("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function announce(text) {
    var region = $("#inbox-notice") || $("#timeline-announce");
    if (region) { region.textContent = text; }
  }

  /* ---- Shortcut help ------------------------------------------------------------------------------------ */

  function openHelp() {
    var dialog = $("#shortcuts");
    if (dialog && !dialog.open && typeof dialog.showModal === "function") { dialog.showModal(); }
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-shortcuts-open]")) { openHelp(); }
  });

  /* ---- Inbox list: current row, selection ---------------------------------------------------------------- */

  var currentId = null;

  function rows() { return $all("[data-inbox-table] tbody tr.row"); }

  function currentRow() {
    if (currentId === null) { return null; }
    return $("[data-inbox-table] tbody tr.row[data-id='" + currentId + "']");
  }

  function setCurrent(row, focus) {
    rows().forEach(function (r) { r.classList.remove("current"); });
    if (!row) { currentId = null; return; }
    currentId = row.getAttribute("data-id");
    row.classList.add("current");
    if (focus) {
      var link = $(".row-link", row);
      if (link) { link.focus(); }
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function move(delta) {
    var all = rows();
    if (!all.length) { return; }
    var index = all.indexOf(currentRow());
    var next = index < 0 ? (delta > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, index + delta));
    setCurrent(all[next], true);
  }

  function selectedBoxes() { return $all("input.row-select:checked"); }

  function updateSelectionCount() {
    var label = $("#selection-count");
    if (!label) { return; }
    var scope = $("#scope-matching");
    if (scope && scope.checked) {
      label.textContent = "Actions apply to every conversation matching this filter (" + (($("#match-count") || {}).textContent || "").trim() + ").";
      return;
    }
    var n = selectedBoxes().length;
    label.textContent = n === 0 ? "No conversations selected." : n + " conversation" + (n === 1 ? "" : "s") + " selected.";
    var pageBox = $("#select-page");
    if (pageBox) {
      var boxes = $all("input.row-select");
      pageBox.checked = boxes.length > 0 && n === boxes.length;
      pageBox.indeterminate = n > 0 && n < boxes.length;
    }
  }

  function toggleCurrent() {
    var row = currentRow();
    var box = row ? $("input.row-select", row) : null;
    if (box) {
      box.checked = !box.checked;
      row.classList.toggle("selected", box.checked);
      updateSelectionCount();
    }
  }

  /* Bulk actions act on the selection; with nothing selected, on the current row. */
  function ensureTarget() {
    if (selectedBoxes().length || ($("#scope-matching") || {}).checked) { return true; }
    var row = currentRow();
    var box = row ? $("input.row-select", row) : null;
    if (!box) { return false; }
    box.checked = true;
    row.classList.add("selected");
    updateSelectionCount();
    return true;
  }

  function submitBulk(buttonSelector) {
    var form = $("#bulk-form");
    var button = $(buttonSelector);
    if (!form || !button || !ensureTarget()) { return; }
    if (typeof form.requestSubmit === "function") { form.requestSubmit(button); } else { button.click(); }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("input.row-select")) {
      var row = target.closest("tr");
      if (row) { row.classList.toggle("selected", target.checked); }
      updateSelectionCount();
    } else if (target.id === "select-page") {
      $all("input.row-select").forEach(function (box) {
        box.checked = target.checked;
        box.closest("tr").classList.toggle("selected", target.checked);
      });
      updateSelectionCount();
    } else if (target.id === "scope-matching") {
      if (target.checked && window.htmx) {
        window.htmx.ajax("GET", target.getAttribute("data-count-url"), { target: "#match-count", swap: "innerHTML" })
          .then(updateSelectionCount);
      }
      updateSelectionCount();
    } else if (target.id === "canned-select") {
      insertCanned();
    }
  });

  document.addEventListener("focusin", function (event) {
    var row = event.target.closest && event.target.closest("[data-inbox-table] tbody tr.row");
    if (row) { setCurrent(row, false); }
  });

  /* ---- Live updates: refresh the list when the poll says it changed and nobody is mid-selection ----------- */

  function refreshList() {
    var list = $("#conversation-list");
    if (!list || !window.htmx) { return; }
    var hadFocus = list.contains(document.activeElement);
    var keep = currentId;
    window.htmx.ajax("GET", window.location.pathname + window.location.search, {
      target: "#conversation-list", swap: "outerHTML"
    }).then(function () {
      var row = keep ? $("[data-inbox-table] tbody tr.row[data-id='" + keep + "']") : null;
      if (row) { setCurrent(row, hadFocus); }
      announce("The list was updated with new activity.");
    });
  }

  function checkNotice() {
    var notice = $("#inbox-notice");
    var list = $("#conversation-list");
    if (!notice || !list || notice.getAttribute("data-changed") !== "1") { return; }
    var busy = selectedBoxes().length > 0 || ($("#scope-matching") || {}).checked ||
      isTyping(document.activeElement) || list.hasAttribute("data-deep-page");
    if (!busy) { refreshList(); }
  }

  document.addEventListener("htmx:oobAfterSwap", function () { window.setTimeout(checkNotice, 0); });

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-refresh-list]");
    if (link && window.htmx && $("#conversation-list")) {
      event.preventDefault();
      refreshList();
    }
  });

  /* ---- Reply composer: segment counter, canned responses, "someone is replying" --------------------------- */

  function updateCounter(textarea) {
    var output = document.getElementById(textarea.getAttribute("data-segment-counter"));
    if (!output || !window.civicdeskSegments) { return; }
    var info = window.civicdeskSegments.segmentInfo(textarea.value);
    var text = info.characters + " character" + (info.characters === 1 ? "" : "s") + " · " + info.segments +
      " segment" + (info.segments === 1 ? "" : "s") + " (" + info.encoding + ")";
    if (info.segments > 0) { text += " · " + info.remaining + " left in this segment"; }
    output.textContent = text;
  }

  var lastHeartbeat = 0;

  function presence(state) {
    var form = $("#composer");
    var url = form && form.getAttribute("data-presence-url");
    if (!url || !window.fetch) { return; }
    var body = new URLSearchParams();
    body.set("state", state);
    window.fetch(url, {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" }
    }).catch(function () { /* presence is advisory */ });
  }

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target.hasAttribute && target.hasAttribute("data-segment-counter")) {
      updateCounter(target);
      var now = Date.now();
      if (target.value && now - lastHeartbeat > PRESENCE_EVERY_MS) {
        lastHeartbeat = now;
        presence("typing");
      }
    }
  });

  document.addEventListener("focusout", function (event) {
    var target = event.target;
    if (target.id === "reply-body" && !target.value && lastHeartbeat) {
      lastHeartbeat = 0;
      presence("idle");
    }
  });

  function insertCanned() {
    var select = $("#canned-select");
    var textarea = $("#reply-body");
    if (!select || !textarea) { return false; }
    var option = select.options[select.selectedIndex];
    var text = option ? option.getAttribute("data-body") : "";
    if (!text) { return false; }
    var start = textarea.selectionStart || 0;
    var end = textarea.selectionEnd || 0;
    textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(end);
    textarea.focus();
    textarea.selectionStart = textarea.selectionEnd = start + text.length;
    updateCounter(textarea);
    select.selectedIndex = 0;
    return true;
  }

  document.addEventListener("submit", function (event) {
    if (event.target.id === "canned-form" && insertCanned()) { event.preventDefault(); }
  });

  /* ---- Keyboard shortcuts ----------------------------------------------------------------------------------- */

  var gPressedAt = 0;

  function focusField(selector) {
    var field = $(selector);
    if (field) { field.focus(); return true; }
    return false;
  }

  function inboxUrl() { return document.body.getAttribute("data-inbox-url"); }

  function onInbox() { return !!$("[data-page=inbox]"); }
  function onConversation() { return !!$("[data-page=conversation]"); }

  var handlers = {
    "?": openHelp,
    "/": function () {
      if (!focusField("[data-search]") && inboxUrl()) { window.location.href = inboxUrl() + "#id_q"; }
    },
    j: function () { if (onInbox()) { move(1); } },
    k: function () { if (onInbox()) { move(-1); } },
    x: function () { if (onInbox()) { toggleCurrent(); } },
    o: function () {
      var row = currentRow();
      if (onInbox() && row) { window.location.href = row.getAttribute("data-url"); }
    },
    e: function () {
      if (onInbox()) { submitBulk("#bulk-close"); } else if (onConversation()) {
        var form = $("#close-form");
        if (form) { form.requestSubmit ? form.requestSubmit() : form.submit(); }
      }
    },
    a: function () {
      if (onInbox()) { if (ensureTarget()) { focusField("#bulk-assignee"); } } else { focusField("#assign-select"); }
    },
    t: function () {
      if (onInbox()) { if (ensureTarget()) { focusField("#bulk-tag"); } } else { focusField("#tag-select"); }
    },
    r: function () {
      if (onInbox()) {
        var row = currentRow();
        if (row) { window.location.href = row.getAttribute("data-url") + "#reply"; }
      } else if (!focusField("#reply-body")) {
        focusField("#note-body");
      }
    }
  };

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var dialog = $("#shortcuts");
    if (dialog && dialog.open) { return; }
    if (isTyping(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var key = event.key;
    if (key === "g") { gPressedAt = Date.now(); return; }
    if (key === "i" && Date.now() - gPressedAt < G_TIMEOUT_MS) {
      gPressedAt = 0;
      if (inboxUrl()) { window.location.href = inboxUrl(); }
      return;
    }
    var handler = handlers[key];
    if (handler) {
      event.preventDefault();
      handler();
    }
  });

  /* ---- Page start ------------------------------------------------------------------------------------------ */

  function start() {
    if (window.location.hash === "#reply") { focusField("#reply-body") || focusField("#note-body"); }
    if (window.location.hash === "#id_q") { focusField("[data-search]"); }
    var textarea = $("#reply-body");
    if (textarea) { updateCounter(textarea); }
    updateSelectionCount();
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();

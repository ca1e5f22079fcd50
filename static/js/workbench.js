/*
 * Reviewer workbench: keyboard shortcuts, the lease countdown and "Renew lease"
 * without leaving the page. Plain JavaScript, no external assets. Every action
 * also works without this file (ordinary forms and buttons).
 */
(function () {
  "use strict";

  function typing(target) {
    if (!target) { return false; }
    var tag = target.tagName;
    return target.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  function choose(value) {
    var radio = document.querySelector('#wb-decision input[name="outcome"][value="' + value + '"]');
    if (radio) { radio.checked = true; radio.dispatchEvent(new Event("change", { bubbles: true })); }
    return radio;
  }

  function submitForm(form) {
    if (!form) { return; }
    if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.submit(); }
  }

  // --- keyboard shortcuts -------------------------------------------------------------------
  document.addEventListener("keydown", function (event) {
    var decision = document.getElementById("wb-decision");
    if (decision && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      // Ctrl+Enter submits from anywhere on the case page, the rationale box included.
      event.preventDefault();
      submitForm(decision);
      return;
    }
    if (event.key === "Escape" && typing(event.target)) {
      event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var key = event.key.toLowerCase();
    if (decision) {
      var label = document.getElementById("id_label");
      var rationale = document.getElementById("id_rationale");
      if (key === "a" && choose("approve")) {
        event.preventDefault();
      } else if (key === "o" && (choose("override") || choose("label"))) {
        event.preventDefault();
        if (label) { label.focus(); }
      } else if (key === "e" && choose("escalate")) {
        event.preventDefault();
        if (rationale) { rationale.focus(); }
      } else if (key === "r" && rationale) {
        event.preventDefault();
        rationale.focus();
      }
      return;
    }
    var claim = document.querySelector("form[data-shortcut-claim]");
    if (key === "n" && claim) {
      event.preventDefault();
      submitForm(claim);
    }
  });

  // Picking a label means overriding (or answering, when blind).
  var labelPicker = document.getElementById("id_label");
  if (labelPicker) {
    labelPicker.addEventListener("change", function () {
      if (labelPicker.value) { choose("override") || choose("label"); }
    });
  }

  // --- lease countdown and renewal ----------------------------------------------------------
  var lease = document.getElementById("wb-lease");
  if (!lease) { return; }
  var left = document.getElementById("wb-lease-left");
  var expiresAt = Date.parse(lease.dataset.expires);
  // Count against the server's clock: the client's may be off by minutes.
  var skew = Date.parse(lease.dataset.now) - Date.now();

  function tick() {
    var ms = expiresAt - (Date.now() + skew);
    if (ms <= 0) {
      left.textContent = "expired";
      lease.classList.add("expired");
      lease.classList.remove("ending");
      return;
    }
    var seconds = Math.floor(ms / 1000);
    var minutes = Math.floor(seconds / 60);
    left.textContent = minutes + ":" + String(seconds % 60).padStart(2, "0");
    lease.classList.toggle("ending", seconds < 60);
    lease.classList.remove("expired");
  }
  tick();
  window.setInterval(tick, 1000);

  var renew = document.getElementById("wb-renew");
  if (renew && window.fetch) {
    renew.addEventListener("submit", function (event) {
      // Renew in place, so a half-written rationale is not lost to a page reload.
      event.preventDefault();
      var button = renew.querySelector("button");
      button.disabled = true;
      fetch(renew.action, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Accept": "application/json",
          "X-CSRFToken": renew.querySelector("input[name=csrfmiddlewaretoken]").value,
        },
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (result) {
        button.disabled = false;
        if (result.ok) {
          expiresAt = Date.parse(result.body.lease_expires_at);
          skew = Date.parse(result.body.now) - Date.now();
          tick();
          lease.classList.add("renewed");
          window.setTimeout(function () { lease.classList.remove("renewed"); }, 1500);
        } else {
          left.textContent = "lost";
          lease.classList.add("expired");
          var note = document.getElementById("wb-lease-note");
          if (note) {
            note.textContent = (result.body.detail || "The lease could not be renewed.") + " ";
            var back = document.createElement("a");
            back.href = result.body.queue_url || "/review/";
            back.textContent = "Back to the queue";
            note.appendChild(back);
            note.hidden = false;
          }
        }
      }).catch(function () {
        // Network trouble: fall back to the ordinary form post.
        button.disabled = false;
        renew.submit();
      });
    });
  }
})();

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

  // --- lease countdown, renewal and the activity heartbeat -----------------------------------
  var lease = document.getElementById("wb-lease");
  if (!lease) { return; }
  var left = document.getElementById("wb-lease-left");
  var until = document.getElementById("wb-lease-until");
  var pre = document.getElementById("wb-lease-pre");
  var post = document.getElementById("wb-lease-post");
  var note = document.getElementById("wb-lease-note");
  var renew = document.getElementById("wb-renew");
  var expiresAt = Date.parse(lease.dataset.expires);
  var maxHoldUntil = Date.parse(lease.dataset.maxHoldUntil);
  var leaseMs = (parseInt(lease.dataset.leaseSeconds, 10) || 300) * 1000;
  // Count against the server's clock: the client's may be off by minutes.
  var skew = Date.parse(lease.dataset.now) - Date.now();
  var lost = false;
  var renewing = false;
  var lastActivity = 0;
  var lastRenewal = Date.now();

  function serverNow() { return Date.now() + skew; }

  function pad(n) { return String(n).padStart(2, "0"); }

  function showUntil() {
    // The true end of the lease, in UTC like the rest of the page.
    var end = new Date(expiresAt);
    if (until && !isNaN(end)) {
      until.textContent = pad(end.getUTCHours()) + ":" + pad(end.getUTCMinutes()) + ":" + pad(end.getUTCSeconds());
    }
  }

  var untilWord = document.getElementById("wb-lease-until-word");
  var autoNote = document.getElementById("wb-lease-auto");

  function showExpired(text) {
    left.textContent = text;
    if (pre) { pre.hidden = true; }
    if (post) { post.hidden = true; }
    if (untilWord) { untilWord.textContent = "ended"; }
    if (autoNote) { autoNote.hidden = true; }
    lease.classList.add("expired");
    lease.classList.remove("ending");
  }

  function tick() {
    if (lost) { return; }
    var ms = expiresAt - serverNow();
    if (ms <= 0) {
      showExpired("Lease expired");
      if (note && note.hidden) {
        note.textContent = "Your lease has expired: the case may go to someone else. If you submit, what you wrote is kept as a draft if it is not accepted.";
        note.hidden = false;
      }
      return;
    }
    var seconds = Math.floor(ms / 1000);
    var minutes = Math.floor(seconds / 60);
    if (pre) { pre.hidden = false; }
    if (post) { post.hidden = false; }
    if (untilWord) { untilWord.textContent = "until"; }
    left.textContent = minutes + ":" + pad(seconds % 60);
    lease.classList.toggle("ending", seconds < 60);
    lease.classList.remove("expired");
  }

  function showNote(body, withQueueLink) {
    if (!note) { return; }
    note.textContent = (body.detail || "The lease could not be renewed.") + " ";
    if (withQueueLink) {
      var back = document.createElement("a");
      back.href = body.queue_url || "/review/";
      back.textContent = "Back to the queue";
      note.appendChild(back);
    }
    note.hidden = false;
  }

  // Renew in place (no reload, so a half-written rationale is not lost).
  // Resolves to true when renewed; falls back to the ordinary form post on network trouble when asked.
  function renewNow(fallbackToPost) {
    if (!renew || !window.fetch || renewing || lost) { return; }
    renewing = true;
    var button = renew.querySelector("button");
    button.disabled = true;
    lastRenewal = Date.now();
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
      renewing = false;
      button.disabled = false;
      if (result.ok) {
        expiresAt = Date.parse(result.body.lease_expires_at);
        skew = Date.parse(result.body.now) - Date.now();
        showUntil();
        tick();
        lease.classList.add("renewed");
        window.setTimeout(function () { lease.classList.remove("renewed"); }, 1500);
      } else if (result.body.code === "max_hold_reached") {
        // Still ours until the lease ends, but no longer renewable: say so, keep counting down.
        maxHoldUntil = 0;
        showNote(result.body, false);
      } else {
        lost = true;
        showExpired("Lease lost");
        showNote(result.body, true);
      }
    }).catch(function () {
      renewing = false;
      button.disabled = false;
      if (fallbackToPost) { renew.submit(); }
    });
  }

  showUntil();
  tick();
  window.setInterval(tick, 1000);

  if (renew && window.fetch) {
    renew.addEventListener("submit", function (event) {
      event.preventDefault();
      renewNow(true);
    });
  }

  // Heartbeat: while the reviewer types, moves the mouse or uses the keyboard on this page,
  // renew before the lease runs out (bounded server-side by the maximum total hold).
  function markActive() { lastActivity = Date.now(); }
  ["input", "keydown", "mousemove", "mousedown", "touchstart", "scroll"].forEach(function (name) {
    document.addEventListener(name, markActive, { passive: true, capture: true });
  });
  var checkEvery = Math.max(1000, Math.min(15000, leaseMs / 4));
  window.setInterval(function () {
    if (lost || renewing || document.hidden) { return; }
    var remaining = expiresAt - serverNow();
    if (remaining <= 0) { return; }  // expired: nothing left to renew
    var activeSinceRenewal = lastActivity > lastRenewal;
    var canExtend = !maxHoldUntil || isNaN(maxHoldUntil) || maxHoldUntil > expiresAt + 1000;
    if (activeSinceRenewal && canExtend && remaining < leaseMs / 2) { renewNow(false); }
  }, checkEvery);
})();

/*
 * Workbench for generation and action cases: a live diff of the reviewer's edit
 * against the AI text, a live check and diff of modified tool arguments, and the
 * shortcuts t (edit), m (modify), x (reject / deny). workbench.js handles the
 * lease, a (approve), e (escalate), r (rationale) and Ctrl+Enter. Without
 * JavaScript the form still works; only the live previews are missing.
 */
(function () {
  "use strict";

  var form = document.getElementById("wb-decision");
  var originalNode = document.getElementById("wb-original");
  if (!form || !originalNode) { return; }
  var original = JSON.parse(originalNode.textContent);
  var kind = form.dataset.kind;
  var diffNode = document.getElementById("wb-diff");
  var stats = document.getElementById("wb-diff-stats");

  function choose(value) {
    var radio = form.querySelector('input[name="outcome"][value="' + value + '"]');
    if (radio) { radio.checked = true; radio.dispatchEvent(new Event("change", { bubbles: true })); }
    return radio;
  }

  function typing(target) {
    if (!target) { return false; }
    var tag = target.tagName;
    return target.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // --- generation: word diff (longest common subsequence over words and spaces) -------------
  function tokens(text) { return text.match(/\s+|[^\s]+/g) || []; }

  function wordDiff(before, after) {
    var a = tokens(before), b = tokens(after);
    if (a.length * b.length > 4000000) {
      // Too long to compare word by word in the browser: show the whole replacement.
      return [{ op: "del", text: before }, { op: "ins", text: after }];
    }
    var rows = a.length + 1, cols = b.length + 1;
    var table = new Uint32Array(rows * cols);
    for (var i = a.length - 1; i >= 0; i--) {
      for (var j = b.length - 1; j >= 0; j--) {
        table[i * cols + j] = a[i] === b[j] ? table[(i + 1) * cols + j + 1] + 1
          : Math.max(table[(i + 1) * cols + j], table[i * cols + j + 1]);
      }
    }
    var parts = [];
    function push(op, text) {
      var last = parts[parts.length - 1];
      if (last && last.op === op) { last.text += text; } else { parts.push({ op: op, text: text }); }
    }
    i = 0; j = 0;
    while (i < a.length && j < b.length) {
      if (a[i] === b[j]) { push("same", a[i]); i++; j++; }
      else if (table[(i + 1) * cols + j] >= table[i * cols + j + 1]) { push("del", a[i]); i++; }
      else { push("ins", b[j]); j++; }
    }
    while (i < a.length) { push("del", a[i++]); }
    while (j < b.length) { push("ins", b[j++]); }
    return parts;
  }

  function renderTextDiff(current) {
    clear(diffNode);
    if (current === original.text) {
      diffNode.appendChild(element("span", "muted", "No changes: approving sends the text as written."));
      stats.textContent = "none";
      return false;
    }
    var added = 0, removed = 0;
    wordDiff(original.text, current).forEach(function (part) {
      if (part.op === "same") { diffNode.appendChild(document.createTextNode(part.text)); return; }
      diffNode.appendChild(element(part.op, "", part.text));
      if (part.op === "ins") { added += part.text.trim().split(/\s+/).filter(Boolean).length; }
      else { removed += part.text.trim().split(/\s+/).filter(Boolean).length; }
    });
    stats.textContent = "+" + added + " / −" + removed + " words";
    return true;
  }

  // --- action: JSON check and path diff ---------------------------------------------------------
  function isObject(value) { return value !== null && typeof value === "object" && !Array.isArray(value); }

  function jsonDiff(before, after, path, out) {
    if (isObject(before) && isObject(after)) {
      var keys = Object.keys(before).concat(Object.keys(after).filter(function (k) { return !(k in before); }));
      keys.sort().forEach(function (key) {
        var sub = path ? path + "." + key : key;
        if (!(key in after)) { out.push({ path: sub, op: "removed", before: before[key] }); }
        else if (!(key in before)) { out.push({ path: sub, op: "added", after: after[key] }); }
        else { jsonDiff(before[key], after[key], sub, out); }
      });
      return out;
    }
    if (JSON.stringify(before) !== JSON.stringify(after)) {
      out.push({ path: path || "(root)", op: "changed", before: before, after: after });
    }
    return out;
  }

  function renderArgumentDiff(raw, state) {
    clear(diffNode);
    var parsed;
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      state.textContent = "Not valid JSON yet: " + error.message;
      state.className = "error wb-small";
      stats.textContent = "";
      return false;
    }
    if (!isObject(parsed)) {
      state.textContent = "The arguments must be a JSON object.";
      state.className = "error wb-small";
      return false;
    }
    state.textContent = "Valid JSON.";
    state.className = "muted wb-small";
    var changes = jsonDiff(original.arguments, parsed, "", []);
    if (!changes.length) {
      diffNode.appendChild(element("li", "muted", "No changes."));
      stats.textContent = "none";
      return false;
    }
    changes.forEach(function (change) {
      var item = element("li", "kind-change kind-" + change.op);
      item.appendChild(element("code", "", change.path));
      item.appendChild(document.createTextNode(" " + change.op + ": "));
      if ("before" in change) { item.appendChild(element("del", "", JSON.stringify(change.before))); }
      if ("before" in change && "after" in change) { item.appendChild(document.createTextNode(" → ")); }
      if ("after" in change) { item.appendChild(element("ins", "", JSON.stringify(change.after))); }
      diffNode.appendChild(item);
    });
    stats.textContent = changes.length + (changes.length === 1 ? " change" : " changes");
    return true;
  }

  var editor = null;
  if (kind === "generation") {
    editor = document.getElementById("id_text");
    if (editor) {
      editor.addEventListener("input", function () { if (renderTextDiff(editor.value)) { choose("edit"); } });
      renderTextDiff(editor.value);
    }
  } else {
    editor = document.getElementById("id_arguments");
    var state = document.getElementById("wb-json-state");
    if (editor && state) {
      editor.addEventListener("input", function () { if (renderArgumentDiff(editor.value, state)) { choose("modify"); } });
      renderArgumentDiff(editor.value, state);
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var key = event.key.toLowerCase();
    var rationale = document.getElementById("id_rationale");
    if ((key === "t" && choose("edit")) || (key === "m" && choose("modify"))) {
      event.preventDefault();
      if (editor) { editor.focus(); }
    } else if (key === "x" && (choose("reject") || choose("deny"))) {
      event.preventDefault();
      if (rationale) { rationale.focus(); }
    }
  });
})();

/*
 * Page furniture shared by every portal page (loaded by base.html):
 *  - the top menu on narrow screens: a "Menu" button (aria-expanded) shows and hides the
 *    links; Escape closes it and returns focus to the button. Without this file the button
 *    stays hidden and the links wrap under the brand.
 *  - wide data tables scroll inside their own box instead of making the page scroll
 *    sideways; a box that does scroll becomes a focusable, named region so keyboard users
 *    can scroll it too.
 */
(function () {
  "use strict";

  // --- collapsing main menu -------------------------------------------------------------
  var bar = document.querySelector(".topbar");
  var button = bar && bar.querySelector(".nav-toggle");
  var menu = button && document.getElementById(button.getAttribute("aria-controls"));
  if (menu) {
    var setOpen = function (open) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
      bar.classList.toggle("menu-open", open);
    };
    button.hidden = false;
    bar.classList.add("has-toggle");
    setOpen(false);
    button.addEventListener("click", function () {
      setOpen(button.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
        setOpen(false);
        button.focus();
      }
    });
  }

  // --- tables scroll in their own box ---------------------------------------------------
  function tableName(table) {
    if (table.caption && table.caption.textContent.trim()) { return table.caption.textContent.trim(); }
    if (table.getAttribute("aria-label")) { return table.getAttribute("aria-label"); }
    // The nearest heading before the table names the region ("Obligations", "Queues", ...).
    var node = table.parentElement;
    while (node && node !== document.body) {
      var headings = node.querySelectorAll("h1, h2, h3");
      for (var i = headings.length - 1; i >= 0; i -= 1) {
        if (headings[i].compareDocumentPosition(table) & Node.DOCUMENT_POSITION_FOLLOWING) {
          return headings[i].textContent.trim();
        }
      }
      node = node.parentElement;
    }
    return "Table";
  }

  var boxes = [];
  Array.prototype.forEach.call(document.querySelectorAll("main table"), function (table) {
    if (table.closest(".table-scroll")) { return; }
    var box = document.createElement("div");
    box.className = "table-scroll";
    table.parentNode.insertBefore(box, table);
    box.appendChild(table);
    boxes.push({ box: box, name: tableName(table) });
  });

  function markScrollable() {
    boxes.forEach(function (entry) {
      var box = entry.box;
      if (box.scrollWidth > box.clientWidth + 1) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", entry.name + " (scrolls sideways)");
      } else {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    });
  }
  if (boxes.length) {
    markScrollable();
    window.addEventListener("resize", markScrollable);
  }
})();

// The demo site's only script.
// Deterministic on purpose: tests/test_browser.py compares screenshots pixel for pixel,
// so nothing here may depend on the clock, on randomness or on the page's URL
// (the same page is loaded both from http:// and from file://).
"use strict";

// Collect script errors and failed image/style/script loads. Listening in the capture
// phase (the `true`) also catches load errors, which do not bubble.
const problems = [];
window.addEventListener("error", (event) => {
  const target = event.target;
  problems.push(event.message || "could not load " + (target.src || target.href));
}, true);

// The server models of the course, in lecture order. lessons/index.html shows them.
const MODELS = [
  ["Blocking server", "one client at a time; recv() waits"],
  ["Thread per connection", "the OS switches threads while they wait"],
  ["Thread pool", "a fixed number of threads take turns"],
  ["Process pool", "several CPUs, no shared GIL"],
  ["select() loop", "one thread asks which sockets are ready"],
  ["Callbacks", "the loop calls you when a socket is ready"],
  ["Coroutines", "generators pause at every blocking point"],
  ["asyncio", "the same idea, from the standard library"],
];

function fillLessons(tbody) {
  for (const [model, idea] of MODELS) {
    const row = tbody.insertRow();
    for (const text of [model, idea]) {
      row.insertCell().textContent = text;
    }
  }
}

// Is every part of the page really there? Runs after "load", when every image
// has either arrived or failed. The verdict goes where it changes no pixel of the
// page (a repaint just before the test's screenshot could make it flaky):
// a ✓ or ✗ in front of the tab's title, and <html data-page-check="...">.
function checkPage() {
  for (const img of document.images) {
    // complete is also true for a failed image; naturalWidth is 0 unless it decoded.
    if (!(img.complete && img.naturalWidth > 0)) {
      problems.push("broken image " + img.getAttribute("src"));
    }
  }
  const css = getComputedStyle(document.documentElement).getPropertyValue("--site-css");
  if (css.trim() !== "loaded") {
    problems.push("style.css did not load");
  }

  if (problems.length === 0) {
    document.documentElement.dataset.pageCheck = "ok";
    document.title = "✓ " + document.title;
  } else {
    document.documentElement.dataset.pageCheck = "failed: " + problems.join("; ");
    document.title = "✗ " + document.title;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const tbody = document.getElementById("lessons");
  if (tbody) {
    fillLessons(tbody);
  }
});
window.addEventListener("load", checkPage);

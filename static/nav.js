// The phone menu: the ☰ button shows and hides the site navigation (below 640 px wide the nav
// is collapsed; static/atelier.css). Escape closes it and gives focus back to the button.
(function () {
  "use strict";
  var button = document.querySelector("header.top .nav-toggle");
  var nav = document.getElementById("site-nav");
  if (!button || !nav) return;
  function setOpen(open) {
    nav.classList.toggle("open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
  }
  button.addEventListener("click", function () {
    setOpen(!nav.classList.contains("open"));
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && nav.classList.contains("open")) {
      setOpen(false);
      button.focus();
    }
  });
  // Mark the current page's link.
  var here = window.location.pathname;
  Array.prototype.forEach.call(nav.querySelectorAll("a"), function (a) {
    var path = a.getAttribute("href");
    if (path === here || (path !== "/" && here.indexOf(path) === 0)) {
      a.setAttribute("aria-current", "page");
    }
  });
})();

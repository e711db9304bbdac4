/* Atelier gallery: bulk selection of your images and the bulk actions.
 *
 * A tick box shows on a thumbnail on hover (always in "Select" mode and once something is
 * selected); shift-click ticks the range from the last ticked tile; "Select all loaded"
 * ticks every loaded tile. While something is selected a click on a tile toggles it (the
 * lightbox opens only when nothing is selected). Actions post to /api/images/bulk/
 * ({"action", "ids", "project"}); "Download ZIP" posts a plain form to /api/images/zip/ so
 * the browser streams the archive to disk. Only in "Mine" (others' images are not yours).
 */
(function () {
  "use strict";

  var G = window.AtelierGallery;
  if (!G) return;
  var $ = function (id) { return document.getElementById(id); };
  var api = window.Atelier.api;
  var form = $("gallery-filters");
  var bar = $("bulk-bar");
  var statusEl = $("bulk-status");
  var modeBtn = $("select-mode");
  var selected = new Set();
  var anchor = null;  // id of the last tile ticked by a plain click
  var busy = false;

  function setStatus(msg, isError) {
    statusEl.textContent = msg || "";
    statusEl.classList.toggle("error", !!isError);
  }

  function selecting() { return modeBtn.getAttribute("aria-pressed") === "true" || selected.size > 0; }

  function paint(id) {
    var t = G.tileOf(id);
    if (!t) return;
    var on = selected.has(id);
    t.classList.toggle("selected", on);
    var box = t.querySelector(".tile-check input");
    if (box) box.checked = on;
  }

  // Django's JavaScript catalog (/jsi18n/, docs/i18n.md); English without it.
  var gettext = window.gettext || function (s) { return s; };
  var ngettext = window.ngettext || function (one, many, n) { return n === 1 ? one : many; };
  var fmt = function (text, value) { return text.replace("%s", value); };

  function refresh() {
    var mine = G.scope() === "mine";
    modeBtn.hidden = !mine;
    document.body.classList.toggle("selecting", mine && selecting());
    bar.hidden = !(mine && selecting());
    $("bulk-count").textContent = fmt(gettext("%s selected"), selected.size);
    bar.querySelectorAll(".bulk-owner button, .bulk-owner select").forEach(function (b) {
      b.disabled = busy || !selected.size;
    });
    $("bulk-all").textContent = fmt(gettext("Select all loaded (%s)"), G.items.length);
  }

  function setSelected(id, on) {
    if (on) selected.add(id); else selected.delete(id);
    paint(id);
  }

  function clear() {
    var ids = Array.from(selected);
    selected.clear();
    ids.forEach(paint);
    anchor = null;
    refresh();
  }

  /* Toggle ``id``; with shift, set every tile between the anchor and it to the new state. */
  function toggle(id, shift) {
    var on = !selected.has(id);
    var from = shift && anchor !== null ? G.indexOf(anchor) : -1;
    var to = G.indexOf(id);
    if (from >= 0 && to >= 0) {
      var lo = Math.min(from, to), hi = Math.max(from, to);
      for (var i = lo; i <= hi; i++) setSelected(G.items[i].id, on);
    } else {
      setSelected(id, on);
    }
    anchor = id;
    refresh();
  }

  G.clickHandlers.push(function (ev, id) {
    if (G.scope() !== "mine") return false;
    var onBox = ev.target.closest && ev.target.closest(".tile-check");
    if (!onBox && !selecting()) return false;
    if (ev.shiftKey && window.getSelection) window.getSelection().removeAllRanges();
    toggle(id, ev.shiftKey);
    return true;
  });
  G.selection = { ids: function () { return Array.from(selected); }, clear: clear };

  G.on("tile", function (t) { paint(Number(t.dataset.id)); });
  G.on("reset", function () { selected.clear(); anchor = null; setStatus(""); refresh(); });
  G.on("loaded", refresh);
  G.on("projects", function (projects) {
    var sel = $("bulk-project");
    projects.forEach(function (p) {
      if (G.user && p.owner && p.owner !== G.user) return;  // only your projects
      var opt = document.createElement("option");
      opt.value = String(p.id);
      opt.textContent = p.name;
      sel.appendChild(opt);
    });
  });

  modeBtn.addEventListener("click", function () {
    var on = modeBtn.getAttribute("aria-pressed") !== "true";
    modeBtn.setAttribute("aria-pressed", String(on));
    if (!on) clear();
    refresh();
  });
  $("bulk-all").addEventListener("click", function () {
    G.items.forEach(function (img) { setSelected(img.id, true); });
    refresh();
  });
  $("bulk-none").addEventListener("click", function () {
    clear();
    modeBtn.setAttribute("aria-pressed", "false");
    refresh();
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && selected.size && !document.querySelector("dialog[open]")) clear();
  });
  // Keyboard: Space on a focused tile ticks it (Shift+Space: the range from the last one).
  $("gallery").addEventListener("keydown", function (ev) {
    var t = ev.target.closest && ev.target.closest("a.tile");
    if (!t || ev.key !== " " || G.scope() !== "mine") return;
    ev.preventDefault();
    toggle(Number(t.dataset.id), ev.shiftKey);
  });

  /* The sentence after a bulk action on n images (whole sentences, so each language can order
   * its words). */
  function doneText(action, n, projectName, toProject) {
    var text = {
      delete: ngettext("Deleted %s image.", "Deleted %s images.", n),
      publish: ngettext("Made public %s image.", "Made public %s images.", n),
      unpublish: ngettext("Made private %s image.", "Made private %s images.", n),
      favorite: ngettext("Favourited %s image.", "Favourited %s images.", n),
      move: toProject ? ngettext("Moved %s image to %s.", "Moved %s images to %s.", n) :
        ngettext("Moved %s image out of their project.", "Moved %s images out of their project.", n)
    }[action];
    return fmt(fmt(text, n), projectName);
  }

  function run(action) {
    var ids = Array.from(selected);
    if (!ids.length || busy) return;
    var body = { action: action, ids: ids };
    var projectName = "";
    if (action === "move") {
      var sel = $("bulk-project");
      if (!sel.value) { setStatus(gettext("Choose a project to move to."), true); sel.focus(); return; }
      body.project = sel.value === "none" ? null : Number(sel.value);
      projectName = sel.options[sel.selectedIndex].textContent;
    }
    if (action === "delete" && !window.confirm(fmt(ngettext(
        "Delete %s image and their files? This cannot be undone.",
        "Delete %s images and their files? This cannot be undone.", ids.length), ids.length))) return;
    busy = true;
    refresh();
    setStatus(gettext("Working…"));
    api("POST", form.dataset.apiBulk, body).then(function (r) {
      busy = false;
      if (!r.ok) {
        setStatus((r.data && r.data.message) || fmt(gettext("Failed (HTTP %s)."), r.status), true);
        refresh();
        return;
      }
      var n = r.data.count;
      var filterProject = form.elements.namedItem("project").value;
      if (action === "delete" ||
          (action === "move" && filterProject && String(body.project) !== filterProject)) {
        clear();
        G.remove(ids);  // gone, or no longer in the project shown
      } else {
        ids.forEach(function (id) {
          var patch = { id: id };
          if (action === "move") patch.project = body.project;
          if (action === "publish" || action === "unpublish") patch.is_public = action === "publish";
          if (action === "favorite") patch.is_favorite = true;
          G.update(patch);
        });
      }
      setStatus(doneText(action, n, projectName, !!body.project));
      refresh();
    }, function () {
      busy = false;
      setStatus(gettext("Could not reach the server."), true);
      refresh();
    });
  }

  bar.querySelectorAll("[data-action]").forEach(function (b) {
    b.addEventListener("click", function () { run(b.dataset.action); });
  });

  /* The ZIP: a plain form post, so the browser saves the streamed archive itself. */
  $("bulk-zip").addEventListener("click", function () {
    var ids = Array.from(selected);
    if (!ids.length) return;
    if (ids.length > 500) { setStatus(gettext("At most 500 images per ZIP."), true); return; }
    var zip = $("zip-form");
    zip.action = form.dataset.apiZip;
    zip.querySelectorAll("input[name=ids]").forEach(function (i) { i.remove(); });
    ids.forEach(function (id) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "ids";
      input.value = String(id);
      zip.appendChild(input);
    });
    zip.submit();
    setStatus("Downloading a ZIP of " + ids.length + " image" + (ids.length === 1 ? "" : "s") + "…");
  });

  refresh();
})();

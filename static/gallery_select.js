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

  function refresh() {
    var mine = G.scope() === "mine";
    modeBtn.hidden = !mine;
    document.body.classList.toggle("selecting", mine && selecting());
    bar.hidden = !(mine && selecting());
    $("bulk-count").textContent = selected.size + " selected";
    bar.querySelectorAll(".bulk-owner button, .bulk-owner select").forEach(function (b) {
      b.disabled = busy || !selected.size;
    });
    $("bulk-all").textContent = "Select all loaded (" + G.items.length + ")";
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

  var LABELS = { delete: "Deleted", move: "Moved", publish: "Made public",
                 unpublish: "Made private", favorite: "Favourited" };

  function run(action) {
    var ids = Array.from(selected);
    if (!ids.length || busy) return;
    var body = { action: action, ids: ids };
    var projectName = "";
    if (action === "move") {
      var sel = $("bulk-project");
      if (!sel.value) { setStatus("Choose a project to move to.", true); sel.focus(); return; }
      body.project = sel.value === "none" ? null : Number(sel.value);
      projectName = sel.options[sel.selectedIndex].textContent;
    }
    if (action === "delete" && !window.confirm("Delete " + ids.length + " image" +
        (ids.length === 1 ? "" : "s") + " and their files? This cannot be undone.")) return;
    busy = true;
    refresh();
    setStatus("Working…");
    api("POST", form.dataset.apiBulk, body).then(function (r) {
      busy = false;
      if (!r.ok) {
        setStatus((r.data && r.data.message) || "Failed (HTTP " + r.status + ").", true);
        refresh();
        return;
      }
      var n = r.data.count;
      var what = n + " image" + (n === 1 ? "" : "s");
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
      setStatus(LABELS[action] + " " + what + (action === "move" ?
        (body.project ? " to " + projectName : " out of their project") : "") + ".");
      refresh();
    }, function () {
      busy = false;
      setStatus("Could not reach the server.", true);
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
    if (ids.length > 500) { setStatus("At most 500 images per ZIP.", true); return; }
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

/* Atelier gallery: infinite scroll over the paginated image API (/api/images/ for mine,
 * /api/gallery/ for everyone's public images) — thumbnails only, 100 per page, one request at
 * a time, the next page asked for when the sentinel below the grid comes within 600 px —
 * search, filters and sort kept in the address bar, NSFW blur setting in localStorage.
 *
 * window.AtelierGallery (G) is what gallery_select.js (bulk selection) and
 * gallery_lightbox.js (the lightbox) build on:
 *   G.items                 loaded images (API objects) in grid order
 *   G.tileOf(id)            the tile element of an image
 *   G.indexOf(id)           its position in G.items (-1 when not loaded)
 *   G.loadMore()            Promise<boolean>: the next page appended (false: nothing more)
 *   G.hasMore()             whether another page exists
 *   G.update(img)           merge fields into a loaded image and redraw its tile
 *   G.remove(ids)           drop images from the grid (after a delete)
 *   G.on(name, fn)          "reset" (filters changed), "loaded" (a page appended), "tile"
 *                           (a tile drawn or redrawn), "projects" (the project list came)
 *   G.clickHandlers         functions (ev, id, tile) -> true when they handled a tile click
 *   G.projects              the projects of the filter list (API objects), G.user (username)
 * Parameters, keys and the bulk API: docs/gallery.md.
 */
(function () {
  "use strict";

  var form = document.getElementById("gallery-filters");
  if (!form) return;
  var $ = function (id) { return document.getElementById(id); };
  var api = window.Atelier.api;
  // Django's JavaScript catalog (/jsi18n/, docs/i18n.md) defines gettext/ngettext; without it
  // the English text is shown.
  var gettext = window.gettext || function (s) { return s; };
  var ngettext = window.ngettext || function (one, many, n) { return n === 1 ? one : many; };
  var fmt = function (text, value) { return text.replace("%s", value); };
  var grid = $("gallery");
  var statusEl = $("gallery-status");
  var errorBox = $("gallery-error");
  var sentinel = $("gallery-sentinel");
  var PAGE_SIZE = 100;
  var BLUR_KEY = "atelier.nsfwBlur";
  var FILTERS = ["q", "project", "tag", "model", "lora", "created_after", "created_before"];
  var DEFAULT_ORDERING = form.elements.namedItem("ordering").options[0].value;

  // refill: page URLs to ask for again after a delete shifted later rows into pages
  // already loaded (page-number pagination), so none is skipped.
  var state = { scope: form.dataset.scope || "mine", next: null, pending: null, seq: 0,
                count: 0, exact: true, refill: [] };
  var listeners = { reset: [], loaded: [], tile: [], projects: [] };
  var tiles = {};  // id -> element

  var G = window.AtelierGallery = {
    items: [],
    projects: [],
    user: form.dataset.user || "",
    clickHandlers: [],
    scope: function () { return state.scope; },
    tileOf: function (id) { return tiles[id] || null; },
    indexOf: function (id) {
      for (var i = 0; i < G.items.length; i++) if (G.items[i].id === id) return i;
      return -1;
    },
    hasMore: function () { return !!state.next || state.refill.length > 0; },
    on: function (name, fn) { listeners[name].push(fn); },
  };

  function emit(name, arg) { listeners[name].forEach(function (fn) { fn(arg); }); }

  function filters() {
    var out = {};
    FILTERS.forEach(function (name) {
      var v = String(form.elements.namedItem(name).value || "").trim();
      if (v) out[name] = v;
    });
    if ($("f-favorite").checked) out.favorite = "true";
    return out;
  }

  function ordering() { return form.elements.namedItem("ordering").value || DEFAULT_ORDERING; }

  function firstUrl() {
    var base = state.scope === "public" ? form.dataset.apiPublic : form.dataset.apiMine;
    var q = new URLSearchParams(filters());
    q.set("ordering", ordering());
    q.set("page_size", PAGE_SIZE);
    return base + "?" + q.toString();
  }

  /* Phone: the "Filters" button shows the other filters and counts the ones set. */
  var toggleBtn = $("filters-toggle");
  toggleBtn.addEventListener("click", function () {
    var open = !form.classList.contains("filters-open");
    form.classList.toggle("filters-open", open);
    toggleBtn.setAttribute("aria-expanded", String(open));
  });
  function showFilterCount() {
    var n = Object.keys(filters()).filter(function (k) { return k !== "q"; }).length +
      (ordering() !== DEFAULT_ORDERING ? 1 : 0);
    toggleBtn.textContent = n ? fmt(gettext("Filters (%s)"), n) : gettext("Filters");
  }

  function syncAddressBar() {
    showFilterCount();
    var q = new URLSearchParams(filters());
    if (ordering() !== DEFAULT_ORDERING) q.set("ordering", ordering());
    if (state.scope === "public") q.set("scope", "public");
    var s = q.toString();
    history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
  }

  function showError(msg) {
    errorBox.textContent = msg;
    errorBox.hidden = !msg;
  }

  function span(cls, text) {
    var s = document.createElement("span");
    s.className = cls;
    if (text !== undefined) s.textContent = text;
    return s;
  }

  function fillTile(a, img) {
    a.textContent = "";
    a.className = "tile";
    a.href = img.detail_url || "/images/" + img.id + "/";
    a.title = img.title || img.prompt || "";
    if ((img.nsfw_level || 0) >= 1) a.classList.add("nsfw");
    var el = document.createElement("img");
    el.loading = "lazy";
    el.decoding = "async";
    el.src = img.thumbnail_url || img.url;  // thumbnails only; the lightbox loads the PNG
    el.alt = img.alt_text || (img.prompt || "").slice(0, 100);
    el.width = el.height = 256;
    a.appendChild(el);
    if (img.is_owner !== false && state.scope === "mine") {
      var check = span("tile-check");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.tabIndex = -1;
      box.setAttribute("aria-label", fmt(gettext("Select image %s"), img.id));
      check.appendChild(box);
      a.appendChild(check);
    }
    var badges = span("tile-badges");
    if (img.is_favorite) badges.appendChild(span("tile-badge tile-fav", "★"));
    if (img.is_public && state.scope === "mine") badges.appendChild(span("tile-badge", "public"));
    if (badges.children.length) a.appendChild(badges);
    var cap = span("tile-caption");
    cap.appendChild(span("tile-prompt", img.title || img.prompt || ""));
    var bits = [img.model_name, img.width + "×" + img.height, "seed " + img.seed];
    if (state.scope === "public" && img.owner) bits.unshift("by " + img.owner);
    if (img.tags && img.tags.length) bits.push("#" + img.tags.slice(0, 3).join(" #"));
    cap.appendChild(span("tile-meta", bits.filter(Boolean).join(" · ")));
    a.appendChild(cap);
    emit("tile", a);
  }

  function tile(img) {
    var a = document.createElement("a");
    a.dataset.id = img.id;
    fillTile(a, img);
    tiles[img.id] = a;
    return a;
  }

  G.update = function (img) {
    var i = G.indexOf(img.id);
    if (i < 0) return;
    Object.assign(G.items[i], img);
    if (tiles[img.id]) fillTile(tiles[img.id], G.items[i]);
  };

  G.remove = function (ids) {
    var drop = {};
    ids.forEach(function (id) { drop[id] = true; });
    G.items = G.items.filter(function (img) { return !drop[img.id]; });
    ids.forEach(function (id) {
      if (tiles[id]) { tiles[id].remove(); delete tiles[id]; }
    });
    state.count = Math.max(0, state.count - ids.length);
    showCount();
    if (state.next) {
      // Rows after the loaded ones moved up by ids.length places: pages from the one
      // holding the first not-yet-loaded position up to the last loaded one are asked again
      // (the tiles already shown are skipped).
      var u = new URL(state.next, location.href);
      var nextPage = Number(u.searchParams.get("page")) || 2;
      for (var p = Math.floor(G.items.length / PAGE_SIZE) + 1; p < nextPage; p++) {
        u.searchParams.set("page", p);
        state.refill.push(u.pathname + u.search);
      }
      G.loadMore();
    } else if (!G.items.length) {
      showEmpty();
    }
  };

  function showCount() {
    var n = state.count;
    $("gallery-count").textContent = n ? fmt(ngettext("%s image", "%s images", n),
      n.toLocaleString(document.documentElement.lang || undefined) + (state.exact ? "" : "+")) : "";
  }

  function showEmpty() {
    var shown = G.items.length;
    $("gallery-empty").hidden = shown > 0;
    if (!shown) {
      $("gallery-empty-text").textContent = Object.keys(filters()).length ?
        gettext("No image matches these filters.") :
        (state.scope === "public" ? gettext("Nobody has published an image yet.") :
          gettext("Everything you generate is kept here."));
    }
    statusEl.textContent = G.hasMore() ? "" : (shown ? gettext("That's all.") : "");
  }

  G.loadMore = function () {
    if (state.pending) return state.pending;
    if (!G.hasMore()) return Promise.resolve(false);
    var seq = state.seq;
    var refill = state.refill.length > 0;
    var url = refill ? state.refill.shift() : state.next;
    statusEl.textContent = gettext("Loading…");
    state.pending = api("GET", url).then(function (r) {
      if (seq !== state.seq) return false;
      state.pending = null;
      if (!r.ok || !r.data) {
        state.next = null;
        statusEl.textContent = "";
        showError(r.status === 404 ?
          gettext("The image list is not available on this server (HTTP 404).") :
          ((r.data && r.data.message) || fmt(gettext("Could not load images (HTTP %s)."), r.status)));
        return false;
      }
      var items = Array.isArray(r.data) ? r.data : (r.data.results || []);
      if (!refill) state.next = Array.isArray(r.data) ? null : r.data.next;
      if (typeof r.data.count === "number") state.count = r.data.count;
      state.exact = r.data.count_exact !== false;
      var frag = document.createDocumentFragment();
      items.forEach(function (img) {
        if (tiles[img.id]) return;  // a row moved between pages (e.g. after a delete)
        G.items.push(img);
        frag.appendChild(tile(img));
      });
      grid.appendChild(frag);
      showCount();
      showEmpty();
      emit("loaded", items);
      // A short page may leave the sentinel on screen: keep loading (one request at a time).
      if (state.refill.length || (state.next && sentinelVisible())) setTimeout(G.loadMore, 0);
      return items.length > 0;
    }, function () {
      if (seq !== state.seq) return false;
      state.pending = null;
      statusEl.textContent = "";
      showError(gettext("Could not reach the server."));
      return false;
    });
    return state.pending;
  };

  function sentinelVisible() {
    var r = sentinel.getBoundingClientRect();
    return r.top < window.innerHeight + 600;
  }

  function reload() {
    state.seq++;
    state.pending = null;
    state.next = firstUrl();
    state.count = 0;
    state.exact = true;
    state.refill = [];
    G.items = [];
    tiles = {};
    grid.textContent = "";
    showError("");
    syncAddressBar();
    emit("reset");
    G.loadMore();
  }
  G.reload = reload;

  if ("IntersectionObserver" in window) {
    new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) G.loadMore();
    }, { rootMargin: "600px" }).observe(sentinel);
  } else {
    window.addEventListener("scroll", function () { if (sentinelVisible()) G.loadMore(); });
  }

  /* A click on a tile: the selection and the lightbox decide; with a modifier key or the
     middle button the link opens the image page as usual. */
  grid.addEventListener("click", function (ev) {
    var a = ev.target.closest && ev.target.closest("a.tile");
    if (!a || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var id = Number(a.dataset.id);
    for (var i = 0; i < G.clickHandlers.length; i++) {
      if (G.clickHandlers[i](ev, id, a)) { ev.preventDefault(); return; }
    }
  });

  /* Options of a select from a (paginated) list endpoint; disabled with a note when missing. */
  function fillSelect(select, url, label, done) {
    api("GET", url).then(function (r) {
      if (!r.ok || !r.data) {
        select.disabled = true;
        select.title = fmt(gettext("Not available (HTTP %s)"), r.status);
        select.options[0].textContent = gettext("(unavailable)");
        return;
      }
      var items = Array.isArray(r.data) ? r.data : (r.data.results || []);
      items.forEach(function (it) {
        var v = label(it);
        if (select.querySelector("option[value=\"" + CSS.escape(v[0]) + "\"]")) return;
        var opt = document.createElement("option");
        opt.value = v[0];
        opt.textContent = v[1];
        select.appendChild(opt);
      });
      if (select.dataset.initial) select.value = select.dataset.initial;
      if (done) done(items);
    }, function () { select.disabled = true; });
  }

  // Filters from the URL may name a project/tag before their options arrive; use them at once.
  ["f-project", "f-tag"].forEach(function (id) {
    var sel = $(id);
    if (sel.dataset.initial) {
      var opt = document.createElement("option");
      opt.value = opt.textContent = sel.dataset.initial;
      sel.appendChild(opt);
      sel.value = sel.dataset.initial;
    }
  });
  fillSelect($("f-project"), form.dataset.apiProjects + "?page_size=200", function (p) {
    return [String(p.id), p.name + (p.image_count !== undefined ? " (" + p.image_count + ")" : "")];
  }, function (items) {
    G.projects = items;
    emit("projects", items);
  });
  fillSelect($("f-tag"), form.dataset.apiTags + "?page_size=200", function (t) {
    return [t.name, t.name + (t.count !== undefined ? " (" + t.count + ")" : "")];
  });

  form.querySelectorAll("select, input[type=date], #f-favorite").forEach(function (s) {
    s.addEventListener("change", reload);
  });
  var typingTimer = null;
  ["f-lora", "f-q"].forEach(function (id) {
    $(id).addEventListener("input", function () {
      clearTimeout(typingTimer);
      typingTimer = setTimeout(reload, 300);
    });
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    clearTimeout(typingTimer);
    reload();
  });
  form.querySelectorAll("[data-scope]").forEach(function (b) {
    b.addEventListener("click", function () {
      state.scope = b.dataset.scope;
      form.querySelectorAll("[data-scope]").forEach(function (o) {
        o.setAttribute("aria-pressed", String(o === b));
      });
      document.body.classList.toggle("gallery-public", state.scope === "public");
      reload();
    });
  });
  document.body.classList.toggle("gallery-public", state.scope === "public");

  /* NSFW blur: on by default; the choice is kept in localStorage. */
  var blur = $("f-nsfw-blur");
  function applyBlur() { document.body.classList.toggle("nsfw-show", !blur.checked); }
  try { blur.checked = localStorage.getItem(BLUR_KEY) !== "0"; } catch (e) { /* private mode */ }
  applyBlur();
  blur.addEventListener("change", function () {
    try { localStorage.setItem(BLUR_KEY, blur.checked ? "1" : "0"); } catch (e) { /* ignore */ }
    applyBlur();
  });

  // The other gallery scripts load after this one (defer keeps the order): start then.
  document.addEventListener("DOMContentLoaded", reload);
})();

/* Atelier projects: the list + create form (/projects/) and one project's images with
 * add/remove (/projects/<id>/), over /api/image-projects/, /api/projects/<id>/gallery/ and
 * PATCH /api/images/<pk>/ {project}. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var api = window.Atelier.api;

  function items(data) { return Array.isArray(data) ? data : (data && data.results) || []; }

  // Django's JavaScript catalog (/jsi18n/, docs/i18n.md); English without it.
  var gettext = window.gettext || function (s) { return s; };
  var ngettext = window.ngettext || function (one, many, n) { return n === 1 ? one : many; };
  var fmt = function (text, value) { return text.replace("%s", value); };

  function failure(r, what) {
    if (r.status === 404) {
      return fmt(gettext("%s: not found or not available on this server (HTTP 404)."), what);
    }
    return (r.data && r.data.message) || fmt(fmt(gettext("%s failed (HTTP %s)."), what), r.status);
  }

  function showError(box, msg) { box.textContent = msg || ""; box.hidden = !msg; }

  function thumb(img, extra) {
    var a = document.createElement("a");
    a.className = "tile";
    a.href = img.detail_url || "/images/" + img.id + "/";
    a.dataset.id = img.id;
    a.title = img.title || img.prompt || "";
    var el = document.createElement("img");
    el.loading = "lazy";
    el.src = img.thumbnail_url || img.url;
    el.alt = img.alt_text || (img.prompt || "").slice(0, 100);
    a.appendChild(el);
    if (extra) extra(a);
    return a;
  }

  /* ---------- list + create ---------- */

  var listPage = $("projects-page");
  if (listPage) {
    var grid = $("project-grid");
    var errorBox = $("projects-error");

    var card = function (p) {
      var c = document.createElement("a");
      c.className = "card project-card";
      c.href = "/projects/" + p.id + "/";
      c.dataset.id = p.id;
      if (p.cover_thumbnail_url) {
        var img = document.createElement("img");
        img.src = p.cover_thumbnail_url;
        img.alt = "";
        img.loading = "lazy";
        img.style.cssText = "width:100%;aspect-ratio:16/9;object-fit:cover;border-radius:6px";
        c.appendChild(img);
      }
      var h = document.createElement("h2");
      h.textContent = p.name;
      c.appendChild(h);
      var meta = document.createElement("span");
      meta.className = "muted";
      var n = p.image_count || 0;
      meta.textContent = fmt(ngettext("%s image", "%s images", n), n) +
        (p.is_public ? " · " + gettext("public") : "");
      c.appendChild(meta);
      if (p.description) {
        var desc = document.createElement("span");
        desc.textContent = p.description;
        c.appendChild(desc);
      }
      return c;
    };

    var load = function () {
      api("GET", listPage.dataset.api + "?page_size=200").then(function (r) {
        if (!r.ok) { showError(errorBox, failure(r, gettext("The project list"))); return; }
        var list = items(r.data);
        grid.textContent = "";
        list.forEach(function (p) { grid.appendChild(card(p)); });
        $("projects-empty").hidden = list.length > 0;
        $("projects-count").textContent = list.length ?
          fmt(ngettext("%s project", "%s projects", list.length), list.length) : "";
      }, function () { showError(errorBox, gettext("Could not reach the server.")); });
    };

    $("project-create").addEventListener("submit", function (ev) {
      ev.preventDefault();
      showError(errorBox, "");
      var body = { name: $("p-name").value.trim(), description: $("p-description").value.trim(),
                   is_public: $("p-public").checked };
      api("POST", listPage.dataset.api, body).then(function (r) {
        if (r.status === 201 || r.ok) {
          $("p-name").value = "";
          $("p-description").value = "";
          load();
        } else {
          var msg = failure(r, gettext("Creating the project"));
          if (r.data && r.data.fields && r.data.fields.name) msg += " " + [].concat(r.data.fields.name).join(" ");
          showError(errorBox, msg);
        }
      }, function () { showError(errorBox, gettext("Could not reach the server.")); });
    });
    load();
    return;
  }

  /* ---------- one project ---------- */

  var page = $("project-page");
  if (!page) return;
  var d = page.dataset;
  var projectId = Number(d.id);
  var images = $("project-images");
  var pErr = $("project-error");
  var pStatus = $("project-status");

  function setProject(img, project) {
    return api("PATCH", "/api/images/" + img.id + "/", { project: project });
  }

  function memberTile(img) {
    return thumb(img, function (a) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "small tile-remove";
      b.textContent = gettext("Remove");
      b.title = gettext("Remove from this project (the image is kept)");
      b.addEventListener("click", function (ev) {
        ev.preventDefault();
        ev.stopPropagation();
        b.disabled = true;
        setProject(img, null).then(function (r) {
          if (!r.ok) { b.disabled = false; pStatus.textContent = failure(r, gettext("Removing")); return; }
          a.remove();
          $("project-empty").hidden = images.children.length > 0;
          pStatus.textContent = gettext("Removed.");
          if (!$("picker").hidden) loadPicker();
        });
      });
      a.appendChild(b);
    });
  }

  function loadMembers() {
    api("GET", d.apiGallery + "?page_size=200").then(function (r) {
      if (!r.ok) { showError(pErr, failure(r, gettext("The project's images"))); return; }
      images.textContent = "";
      var list = items(r.data);
      list.forEach(function (img) { images.appendChild(memberTile(img)); });
      $("project-empty").hidden = list.length > 0;
    });
  }

  function loadPicker() {
    var grid = $("picker-grid");
    api("GET", d.apiImages + "?page_size=100").then(function (r) {
      if (!r.ok) { showError(pErr, failure(r, gettext("Your images"))); return; }
      grid.textContent = "";
      var list = items(r.data).filter(function (img) { return Number(img.project) !== projectId; });
      list.forEach(function (img) {
        grid.appendChild(thumb(img, function (a) {
          a.addEventListener("click", function (ev) {
            ev.preventDefault();
            setProject(img, projectId).then(function (res) {
              if (!res.ok) { pStatus.textContent = failure(res, gettext("Adding")); return; }
              a.remove();
              images.insertBefore(memberTile(res.data || img), images.firstChild);
              $("project-empty").hidden = true;
              $("picker-empty").hidden = grid.children.length > 0;
              pStatus.textContent = gettext("Added.");
            });
          });
        }));
      });
      $("picker-empty").hidden = list.length > 0;
    });
  }

  api("GET", d.api).then(function (r) {
    if (!r.ok || !r.data) { showError(pErr, failure(r, gettext("This project"))); return; }
    $("project-name").textContent = r.data.name;
    document.title = r.data.name + " · Atelier";
    $("project-description").textContent = r.data.description || "";
    $("project-actions").hidden = false;
    loadMembers();
  }, function () { showError(pErr, gettext("Could not reach the server.")); });

  $("add-images-btn").addEventListener("click", function () {
    var picker = $("picker");
    picker.hidden = !picker.hidden;
    this.setAttribute("aria-expanded", String(!picker.hidden));
    if (!picker.hidden) loadPicker();
  });

  $("delete-project-btn").addEventListener("click", function () {
    if (!window.confirm(gettext("Delete this project? Its images are kept."))) return;
    api("DELETE", d.api).then(function (r) {
      if (r.ok || r.status === 204) location.href = d.projectsUrl;
      else pStatus.textContent = failure(r, gettext("Deleting"));
    });
  });
})();

/* Atelier generate page, the "Image to image · inpaint" tab: a source image (file, drop or
 * paste), a mask painted on a canvas over it, and the request to POST /api/edit/ (multipart:
 * image, mask — white = repaint, same size as the image — prompt, negative_prompt, strength,
 * width, height, steps, guidance_scale, seed, n, model). No painted pixel: img2img. */
(function () {
  "use strict";

  var gen = window.Atelier && window.Atelier.gen;
  if (!gen) return;
  var $ = function (id) { return document.getElementById(id); };
  var form = gen.form;
  var field = gen.field;
  var imgCanvas = $("edit-canvas");
  var maskCanvas = $("mask-canvas");
  var stage = $("mask-stage");
  var tools = $("mask-tools");
  var info = $("mask-info");
  var brush = $("mask-brush");
  var erase = $("mask-erase");
  var source = null; // {file: Blob, name, width, height}

  /* ---------- tabs ---------- */


  function setMode(mode) {
    form.dataset.mode = mode;
    document.querySelectorAll(".gen-tab").forEach(function (tab) {
      var on = tab.dataset.mode === mode;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
    });
    form.querySelectorAll("[data-modes]").forEach(function (el) {
      el.hidden = el.dataset.modes.split(" ").indexOf(mode) === -1;
    });
    // POST /api/edit/ takes the sampler, schedule type, clip skip and VAE too (the hires fix
    // is txt2img's: its section is data-modes="txt2img").
    var note = $("edit-fields-note");
    if (note) note.hidden = true;
    if (gen.updateHires) gen.updateHires();
  }
  gen.setMode = setMode;
  document.querySelectorAll(".gen-tab").forEach(function (tab) {
    tab.addEventListener("click", function () { setMode(tab.dataset.mode); });
    tab.addEventListener("keydown", function (ev) {
      if (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") return;
      var tabs = Array.prototype.slice.call(document.querySelectorAll(".gen-tab"));
      var next = tabs[(tabs.indexOf(tab) + (ev.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
      setMode(next.dataset.mode);
      next.focus();
    });
  });
  setMode(form.dataset.mode || "txt2img");

  /* ---------- source image ---------- */

  /* The output size for a source of w×h: multiples of 8 (rounded down), scaled down to the
     selected profile's maximum. */
  function outputSize(w, h) {
    var opt = gen.selectedProfile();
    var maxW = opt ? parseInt(opt.dataset.maxWidth, 10) || 4096 : 4096;
    var maxH = opt ? parseInt(opt.dataset.maxHeight, 10) || 4096 : 4096;
    var k = Math.min(1, maxW / w, maxH / h);
    return [Math.max(8, Math.floor(w * k / 8) * 8), Math.max(8, Math.floor(h * k / 8) * 8)];
  }

  function setSourceImage(file) {
    if (!file || !/^image\/(png|jpeg|webp)$/.test(file.type)) {
      gen.showError("The source must be a PNG, JPEG or WebP image.", null);
      return;
    }
    var url = URL.createObjectURL(file);
    var img = new Image();
    img.onload = function () {
      source = { file: file, name: file.name || "source.png", width: img.naturalWidth,
        height: img.naturalHeight };
      [imgCanvas, maskCanvas].forEach(function (c) {
        c.width = img.naturalWidth;
        c.height = img.naturalHeight;
      });
      imgCanvas.getContext("2d").drawImage(img, 0, 0);
      maskCanvas.getContext("2d").clearRect(0, 0, maskCanvas.width, maskCanvas.height);
      URL.revokeObjectURL(url);
      gen.clearErrors();
      stage.hidden = false;
      tools.hidden = false;
      fitStage();
      var size = outputSize(img.naturalWidth, img.naturalHeight);
      field("width").value = size[0];
      field("height").value = size[1];
      if (gen.markPreset) gen.markPreset();
      describe();
    };
    img.onerror = function () {
      URL.revokeObjectURL(url);
      gen.showError("This file could not be read as an image.", null);
    };
    img.src = url;
  }
  gen.setSourceImage = setSourceImage;

  /* Show the image (and its mask) as large as the form allows: the form's width, at most 60%
     of the window's height; small images are enlarged so that they can be painted on. */
  function fitStage() {
    if (!source || stage.hidden) return;
    var maxW = $("edit-source").clientWidth || source.width;
    var maxH = Math.max(160, window.innerHeight * 0.6);
    var k = Math.min(maxW / source.width, maxH / source.height);
    [imgCanvas, maskCanvas].forEach(function (c) {
      c.style.width = Math.floor(source.width * k) + "px";
      c.style.height = Math.floor(source.height * k) + "px";
    });
  }
  window.addEventListener("resize", fitStage);

  function removeSource() {
    source = null;
    stage.hidden = true;
    tools.hidden = true;
    $("edit-file").value = "";
  }

  $("edit-file").addEventListener("change", function (ev) {
    if (ev.target.files && ev.target.files[0]) setSourceImage(ev.target.files[0]);
  });
  $("edit-remove").addEventListener("click", removeSource);

  /* ---------- mask painting ---------- */

  var painting = false;
  var last = null;

  function point(ev) {
    var r = maskCanvas.getBoundingClientRect();
    return { x: (ev.clientX - r.left) * maskCanvas.width / r.width,
      y: (ev.clientY - r.top) * maskCanvas.height / r.height,
      scale: maskCanvas.width / r.width };
  }

  function stroke(from, to) {
    var ctx = maskCanvas.getContext("2d");
    ctx.globalCompositeOperation = erase.checked ? "destination-out" : "source-over";
    ctx.strokeStyle = "#ff4d6d";
    ctx.fillStyle = "#ff4d6d";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = Number(brush.value) * to.scale;
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x + 0.01, to.y);
    ctx.stroke();
  }

  maskCanvas.addEventListener("pointerdown", function (ev) {
    if (!source) return;
    ev.preventDefault();
    painting = true;
    if (maskCanvas.setPointerCapture) maskCanvas.setPointerCapture(ev.pointerId);
    last = point(ev);
    stroke(last, last);
  });
  maskCanvas.addEventListener("pointermove", function (ev) {
    if (!painting) return;
    var p = point(ev);
    stroke(last, p);
    last = p;
  });
  function endStroke() {
    if (!painting) return;
    painting = false;
    describe();
  }
  maskCanvas.addEventListener("pointerup", endStroke);
  maskCanvas.addEventListener("pointercancel", endStroke);
  $("mask-clear").addEventListener("click", function () {
    maskCanvas.getContext("2d").clearRect(0, 0, maskCanvas.width, maskCanvas.height);
    describe();
  });

  /* The painted share of the image (0..1). */
  function maskCoverage() {
    if (!source) return 0;
    var d = maskCanvas.getContext("2d").getImageData(0, 0, maskCanvas.width, maskCanvas.height).data;
    var n = 0;
    for (var i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n / (maskCanvas.width * maskCanvas.height);
  }

  function describe() {
    if (!source) { info.textContent = ""; return; }
    var c = maskCoverage();
    info.textContent = source.width + "×" + source.height + " · " + (c > 0 ?
      "inpaint: " + Math.max(1, Math.round(c * 100)) + "% masked" : "img2img: no mask painted");
    form.dataset.editKind = c > 0 ? "inpaint" : "img2img";
  }

  /* The mask as a PNG blob: white where painted, black elsewhere, the source's size. */
  function maskBlob() {
    var w = maskCanvas.width;
    var h = maskCanvas.height;
    var out = document.createElement("canvas");
    out.width = w;
    out.height = h;
    var ctx = out.getContext("2d");
    var src = maskCanvas.getContext("2d").getImageData(0, 0, w, h).data;
    var img = ctx.createImageData(w, h);
    for (var i = 0; i < src.length; i += 4) {
      var v = src[i + 3] > 0 ? 255 : 0;
      img.data[i] = img.data[i + 1] = img.data[i + 2] = v;
      img.data[i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    var bin = atob(out.toDataURL("image/png").split(",")[1]);
    var bytes = new Uint8Array(bin.length);
    for (var j = 0; j < bin.length; j++) bytes[j] = bin.charCodeAt(j);
    return new Blob([bytes], { type: "image/png" });
  }

  /* ---------- the request ---------- */

  var EDIT_FIELDS = ["negative_prompt", "width", "height", "steps", "guidance_scale", "seed",
    "n", "model", "sampler", "scheduler", "clip_skip", "vae"];

  gen.requestFor = function (body) {
    if (form.dataset.mode !== "img2img") return null;
    if (!source) {
      return { error: "Choose a source image for image to image.",
        fields: { image: ["Drop, paste or choose an image."] } };
    }
    var fd = new FormData();
    fd.append("image", source.file, source.name);
    if (maskCoverage() > 0) fd.append("mask", maskBlob(), "mask.png");
    // /api/edit/ takes LoRAs as prompt tags in multipart requests.
    var prompt = body.prompt || "";
    (body.loras || []).forEach(function (l) {
      if (prompt.indexOf("<lora:" + l.lora + ":") === -1) {
        prompt += (prompt ? " " : "") + "<lora:" + l.lora + ":" + l.weight + ">";
      }
    });
    fd.append("prompt", prompt);
    var strength = String(field("strength").value || "").trim();
    if (strength) fd.append("strength", strength);
    EDIT_FIELDS.forEach(function (k) {
      if (body[k] !== null && body[k] !== undefined && body[k] !== "") fd.append(k, String(body[k]));
    });
    return { url: form.dataset.apiEdit, payload: fd };
  };
})();

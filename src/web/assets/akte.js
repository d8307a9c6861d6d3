// akte: progressive enhancement only. Every page works without this file; it adds drag
// and drop with per-file progress to the upload form. No inline script anywhere (CSP).
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    var form = document.getElementById("upload-form");
    if (!form || !window.FormData || !window.XMLHttpRequest) return;
    var input = document.getElementById("up-files");
    var drop = document.getElementById("drop");
    var list = document.getElementById("progress");
    var picked = [];
    function show() {
      drop.classList.toggle("has-files", picked.length > 0);
      var p = drop.querySelector("p");
      if (p) p.textContent = picked.length ? picked.map(function (f) { return f.name; }).join(", ") : drop.dataset.label;
    }
    input.addEventListener("change", function () { picked = Array.prototype.slice.call(input.files); show(); });
    ["dragenter", "dragover"].forEach(function (ev) {
      drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (ev) {
      drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (e) {
      picked = Array.prototype.slice.call(e.dataTransfer.files);
      input.required = false;
      show();
    });
    function sendOne(file) {
      return new Promise(function (resolve) {
        var li = document.createElement("li");
        var name = document.createElement("span");
        name.textContent = file.name + " ";
        var bar = document.createElement("progress");
        bar.max = file.size || 1; bar.value = 0;
        var out = document.createElement("span");
        li.appendChild(name); li.appendChild(bar); li.appendChild(out);
        list.appendChild(li);
        var fd = new FormData();
        ["csrf", "party", "role", "class", "case"].forEach(function (k) {
          var el = form.elements[k];
          if (el) fd.append(k, el.value);
        });
        fd.append("file", file, file.name);
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        xhr.setRequestHeader("Accept", "application/json");
        xhr.upload.onprogress = function (e) { if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; } };
        xhr.onload = function () {
          var items = [];
          try { items = JSON.parse(xhr.responseText); } catch (err) { items = []; }
          var it = items[0];
          bar.value = bar.max;
          if (it && it.id) {
            var a = document.createElement("a");
            a.href = "/records/" + encodeURIComponent(it.id);
            a.textContent = it.detail || "ok";
            out.appendChild(a);
            li.className = "ok";
          } else {
            out.textContent = it ? it.detail : ("HTTP " + xhr.status);
            li.className = "error";
          }
          resolve();
        };
        xhr.onerror = function () { out.textContent = "network error"; li.className = "error"; resolve(); };
        xhr.send(fd);
      });
    }
    form.addEventListener("submit", function (e) {
      if (!picked.length) return;
      e.preventDefault();
      var files = picked.slice();
      picked = []; input.value = ""; show();
      files.reduce(function (p, f) { return p.then(function () { return sendOne(f); }); }, Promise.resolve());
    });
  });
})();

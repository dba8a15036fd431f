// newsqa articles page: searchable, paged list from GET /articles. Text only via textContent.
(function () {
  "use strict";

  var PAGE = 20;
  var form = document.getElementById("article-search");
  var q = document.getElementById("q");
  var since = document.getElementById("a-since");
  var until = document.getElementById("a-until");
  var list = document.getElementById("article-list");
  var status = document.getElementById("article-status");
  var prev = document.getElementById("prev-page");
  var next = document.getElementById("next-page");
  var pageInfo = document.getElementById("page-info");
  var offset = 0, total = 0, requestId = 0;

  var el = window.NewsQA.el, formatDate = window.NewsQA.formatDate;

  function params() {
    var p = new URLSearchParams();
    if (q.value.trim()) p.set("q", q.value.trim());
    if (since.value) p.set("since", since.value);
    if (until.value) p.set("until", until.value);
    return p;
  }

  function render(items) {
    list.textContent = "";
    items.forEach(function (item) {
      var li = el("li", "article-item");
      li.appendChild(window.NewsQA.titleNode("article-title", item.title, item.url));
      var meta = el("p", "meta");
      [item.source, formatDate(item.published_at), item.category].filter(Boolean).forEach(function (part, i) {
        if (i) meta.appendChild(document.createTextNode(" · "));
        meta.appendChild(el("span", null, part));
      });
      if (item.status && item.status !== "indexed" && item.status !== "ok") {
        meta.appendChild(document.createTextNode(" "));
        meta.appendChild(el("span", "badge", item.status));
      }
      li.appendChild(meta);
      list.appendChild(li);
    });
  }

  function load() {
    var id = ++requestId;
    var p = params();
    p.set("offset", String(offset));
    p.set("limit", String(PAGE));
    status.textContent = "Loading…";
    list.setAttribute("aria-busy", "true");
    fetch("/articles?" + p.toString(), { headers: { Accept: "application/json" } })
      .then(function (res) {
        if (!res.ok) {
          return res.json().catch(function () { return {}; }).then(function (j) {
            throw new Error(typeof j.detail === "string" ? j.detail : "The server answered with status " + res.status + ".");
          });
        }
        return res.json();
      })
      .then(function (data) {
        if (id !== requestId) return;
        var items = data.items || [];
        total = data.total || 0;
        render(items);
        if (!total) status.textContent = "No articles match.";
        else status.textContent = "Showing " + (offset + 1) + "–" + (offset + items.length) + " of " + total +
          (total === 1 ? " article" : " articles") + ".";
        var pages = Math.max(1, Math.ceil(total / PAGE));
        pageInfo.textContent = "Page " + (Math.floor(offset / PAGE) + 1) + " of " + pages;
        prev.disabled = offset <= 0;
        next.disabled = offset + items.length >= total;
      })
      .catch(function (err) {
        if (id !== requestId) return;
        list.textContent = "";
        status.textContent = "Sorry — the articles could not be loaded. " +
          (err && err.message && !/fetch|network/i.test(err.message) ? err.message : "Please try again.");
        prev.disabled = true;
        next.disabled = true;
      })
      .then(function () { if (id === requestId) list.setAttribute("aria-busy", "false"); });
  }

  function syncUrl() {
    var p = params();
    var qs = p.toString();
    window.history.replaceState(null, "", window.location.pathname + (qs ? "?" + qs : ""));
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    offset = 0;
    syncUrl();
    load();
  });
  prev.addEventListener("click", function () { offset = Math.max(0, offset - PAGE); load(); list.focus(); });
  next.addEventListener("click", function () { offset += PAGE; load(); list.focus(); });
  list.tabIndex = -1;

  var initial = new URLSearchParams(window.location.search);
  q.value = initial.get("q") || "";
  since.value = initial.get("since") || "";
  until.value = initial.get("until") || "";
  load();
})();

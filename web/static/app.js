// newsqa chat page: streams answers from POST /ask/stream (SSE over fetch), renders citations.
// All article and answer text goes in through textContent / createElement, never innerHTML.
(function () {
  "use strict";

  var form = document.getElementById("ask-form");
  var question = document.getElementById("question");
  var askButton = document.getElementById("ask-button");
  var conversation = document.getElementById("conversation");
  var statusEl = document.getElementById("status");
  var dialog = document.getElementById("passage-dialog");
  var history = [];
  var MAX_HISTORY = 20; // turns sent with a follow-up (the API takes at most 50)
  var busy = false;

  var el = window.NewsQA.el, formatDate = window.NewsQA.formatDate;

  function announce(text) {
    statusEl.textContent = "";
    window.setTimeout(function () { statusEl.textContent = text; }, 50);
  }

  // ---- filters -------------------------------------------------------------------------------
  var since = document.getElementById("since");
  var until = document.getElementById("until");
  var outletList = document.getElementById("outlet-list");
  var filterSummary = document.getElementById("filter-summary");

  function selectedOutlets() {
    return Array.prototype.slice.call(outletList.querySelectorAll("input[type=checkbox]:checked"))
      .map(function (box) { return box.value; });
  }

  function currentFilters() {
    var filters = {};
    if (since.value) filters.since = since.value;
    if (until.value) filters.until = until.value;
    var outlets = selectedOutlets();
    if (outlets.length) filters.sources = outlets;
    return filters;
  }

  function updateFilterSummary() {
    var f = currentFilters();
    var parts = [];
    if (f.since) parts.push("from " + f.since);
    if (f.until) parts.push("until " + f.until);
    if (f.sources) parts.push(f.sources.length + (f.sources.length === 1 ? " outlet" : " outlets"));
    filterSummary.textContent = parts.length ? "(" + parts.join(", ") + ")" : "";
  }

  function loadOutlets() {
    var seen = {};
    function page(offset, remaining) {
      return fetch("/articles?limit=100&offset=" + offset, { headers: { Accept: "application/json" } })
        .then(function (res) { if (!res.ok) throw new Error("HTTP " + res.status); return res.json(); })
        .then(function (data) {
          (data.items || []).forEach(function (item) { if (item.source) seen[item.source] = true; });
          var next = offset + (data.items || []).length;
          if (remaining > 1 && data.items && data.items.length && next < data.total) return page(next, remaining - 1);
        });
    }
    page(0, 20).then(function () {
      var names = Object.keys(seen).sort(function (a, b) { return a.localeCompare(b); });
      outletList.textContent = "";
      if (!names.length) { outletList.appendChild(el("p", "hint", "No outlets yet.")); return; }
      names.forEach(function (name, i) {
        var label = el("label", "check");
        var box = document.createElement("input");
        box.type = "checkbox";
        box.value = name;
        box.id = "outlet-" + i;
        label.appendChild(box);
        label.appendChild(el("span", null, name));
        outletList.appendChild(label);
      });
    }).catch(function () {
      outletList.textContent = "";
      outletList.appendChild(el("p", "hint", "The outlet list could not be loaded."));
    });
  }

  [since, until].forEach(function (input) { input.addEventListener("change", updateFilterSummary); });
  outletList.addEventListener("change", updateFilterSummary);
  document.getElementById("clear-filters").addEventListener("click", function () {
    since.value = "";
    until.value = "";
    outletList.querySelectorAll("input[type=checkbox]").forEach(function (b) { b.checked = false; });
    updateFilterSummary();
  });
  document.getElementById("new-conversation").addEventListener("click", function () {
    if (busy) return;
    history = [];
    conversation.textContent = "";
    conversation.hidden = true;
    question.focus();
    announce("Started a new conversation.");
  });

  // ---- passage dialog ------------------------------------------------------------------------
  function appendHighlighted(container, passage, quote) {
    passage = passage || "";
    var start = quote ? passage.indexOf(quote) : -1;
    if (start < 0 && quote) start = passage.toLowerCase().indexOf(quote.toLowerCase());
    if (start < 0) {
      container.appendChild(document.createTextNode(passage));
      if (quote) {
        container.appendChild(el("span", "quoted-label", "Quoted: "));
        container.appendChild(el("mark", null, quote));
      }
      return null;
    }
    container.appendChild(document.createTextNode(passage.slice(0, start)));
    var mark = el("mark", null, passage.slice(start, start + quote.length));
    container.appendChild(mark);
    container.appendChild(document.createTextNode(passage.slice(start + quote.length)));
    return mark;
  }

  function openPassage(citation, opener) {
    document.getElementById("passage-title").textContent = citation.title || "Untitled article";
    var meta = [citation.source, formatDate(citation.published_at)].filter(Boolean).join(" · ");
    document.getElementById("passage-meta").textContent = "[" + citation.n + "] " + meta;
    document.getElementById("passage-warning").hidden = citation.supported !== false;
    var text = document.getElementById("passage-text");
    text.textContent = "";
    var paragraphs = el("div", "passage-body");
    text.appendChild(paragraphs);
    var mark = appendHighlighted(paragraphs, citation.passage, citation.quote);
    var wrap = document.getElementById("passage-link-wrap");
    wrap.textContent = "";
    var link = window.NewsQA.externalLink("external", "Read the full article", citation.url);
    if (link) wrap.appendChild(link);
    dialog._opener = opener || null;
    if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
    if (mark) mark.scrollIntoView({ block: "center" });
  }

  function closePassage() {
    if (typeof dialog.close === "function") dialog.close(); else dialog.removeAttribute("open");
  }
  document.getElementById("passage-close").addEventListener("click", closePassage);
  dialog.addEventListener("click", function (event) { if (event.target === dialog) closePassage(); });
  dialog.addEventListener("close", function () { if (dialog._opener) dialog._opener.focus(); });

  // ---- rendering an answer -------------------------------------------------------------------
  function citationChip(citation) {
    var chip = el("button", "chip" + (citation.supported === false ? " chip-unsupported" : ""), citation.n);
    chip.type = "button";
    chip.setAttribute("aria-label", "Source " + citation.n + ": " + (citation.title || "article") +
      (citation.supported === false ? " (not verified)" : ""));
    chip.addEventListener("click", function () { openPassage(citation, chip); });
    return chip;
  }

  function renderAnswerText(container, text, byN) {
    container.textContent = "";
    String(text || "").split(/\n{2,}/).forEach(function (para) {
      if (!para.trim()) return;
      var p = el("p");
      var re = /\s*\[unverified\]|\[(\d+)\]/g;
      var last = 0, m;
      while ((m = re.exec(para)) !== null) {
        p.appendChild(document.createTextNode(para.slice(last, m.index)));
        if (m[1] === undefined) {
          var badge = el("span", "badge badge-warn", "unverified");
          badge.title = "This sentence could not be verified against its source";
          p.appendChild(document.createTextNode(" "));
          p.appendChild(badge);
        } else if (byN[m[1]]) {
          p.appendChild(citationChip(byN[m[1]]));
        } else {
          p.appendChild(document.createTextNode(m[0]));
        }
        last = re.lastIndex;
      }
      p.appendChild(document.createTextNode(para.slice(last)));
      container.appendChild(p);
    });
  }

  function notice(kind, text) {
    return el("p", "notice notice-" + kind, text);
  }

  function fallbackText(fallback) {
    var reason = typeof fallback === "string" ? fallback : "";
    return "The language model was not used for this answer" + (reason ? " (" + reason + ")" : "") +
      ": it quotes the most relevant sentences of the articles instead.";
  }

  function renderFinal(turn, data) {
    var citations = data.citations || [];
    var byN = {};
    citations.forEach(function (c) { byN[String(c.n)] = c; });
    turn.notices.textContent = "";
    if (data.refused) {
      turn.notices.appendChild(notice("info", "The articles in the collection don't answer this question."));
    }
    if (data.fallback) turn.notices.appendChild(notice("info", fallbackText(data.fallback)));
    var unsupported = data.unsupported || [];
    if (unsupported.length) {
      turn.notices.appendChild(notice("warn", unsupported.length === 1
        ? "One sentence could not be verified against its source; it is marked unverified."
        : unsupported.length + " sentences could not be verified against their sources; they are marked unverified."));
    }
    renderAnswerText(turn.body, data.answer, byN);
    turn.body.classList.remove("streaming");
    turn.body.setAttribute("aria-busy", "false");

    turn.sources.textContent = "";
    if (citations.length) {
      turn.sources.appendChild(el("h3", "sources-heading", "Sources"));
      var list = el("ol", "sources-list");
      citations.forEach(function (c) {
        var li = el("li");
        li.appendChild(citationChip(c));
        var info = el("span", "source-info");
        info.appendChild(window.NewsQA.titleNode("source-title", c.title, c.url));
        var meta = [c.source, formatDate(c.published_at)].filter(Boolean).join(" · ");
        if (meta) info.appendChild(el("span", "meta", meta));
        if (c.supported === false) info.appendChild(el("span", "badge badge-warn", "not verified"));
        li.appendChild(info);
        list.appendChild(li);
      });
      turn.sources.appendChild(list);
    }
  }

  function renderError(turn, message) {
    turn.body.classList.remove("streaming");
    turn.body.setAttribute("aria-busy", "false");
    turn.body.textContent = "";
    turn.notices.textContent = "";
    turn.notices.appendChild(notice("error", "Sorry — the question could not be answered. " + message));
  }

  function addTurn(text) {
    conversation.hidden = false;
    var q = el("article", "turn turn-user");
    q.appendChild(el("h2", "visually-hidden", "You asked"));
    q.appendChild(el("p", "question-text", text));
    conversation.appendChild(q);

    var a = el("article", "turn turn-assistant");
    a.appendChild(el("h2", "visually-hidden", "Answer"));
    var progress = el("p", "progress", "Searching the articles…");
    var notices = el("div", "notices");
    var body = el("div", "answer-body streaming");
    body.setAttribute("aria-live", "polite");
    body.setAttribute("aria-busy", "true");
    var sources = el("div", "sources");
    a.appendChild(progress);
    a.appendChild(notices);
    a.appendChild(body);
    a.appendChild(sources);
    conversation.appendChild(a);
    a.scrollIntoView({ behavior: "smooth", block: "start" });
    return { root: a, progress: progress, notices: notices, body: body, sources: sources };
  }

  // ---- SSE over fetch ------------------------------------------------------------------------
  function parseEvent(block) {
    var event = "message", data = [];
    block.split(/\r?\n/).forEach(function (line) {
      if (!line || line.charAt(0) === ":") return;
      var colon = line.indexOf(":");
      var field = colon < 0 ? line : line.slice(0, colon);
      var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    });
    var payload = null;
    if (data.length) {
      try { payload = JSON.parse(data.join("\n")); } catch (e) { payload = data.join("\n"); }
    }
    return { event: event, data: payload };
  }

  function describeDetail(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map(function (d) { return d && d.msg ? d.msg : JSON.stringify(d); }).join("; ");
    }
    return "The request was not accepted.";
  }

  function ask(text) {
    var turn = addTurn(text);
    var body = { question: text, history: history.slice(-MAX_HISTORY), filters: currentFilters() };
    var final = null, failed = false, streamed = "";
    busy = true;
    askButton.disabled = true;
    askButton.textContent = "Asking…";
    announce("Searching the articles.");

    function handle(evt) {
      if (evt.event === "sources") {
        var n = evt.data && evt.data.passages ? evt.data.passages.length : 0;
        turn.progress.textContent = n ? "Found " + n + " relevant passage" + (n === 1 ? "" : "s") + ". Writing the answer…"
          : "No matching passages found.";
      } else if (evt.event === "token") {
        if (evt.data && typeof evt.data.text === "string") {
          streamed += evt.data.text;
          turn.body.textContent = streamed;
        }
      } else if (evt.event === "answer") {
        final = evt.data || {};
        turn.progress.remove();
        renderFinal(turn, final);
      } else if (evt.event === "error") {
        failed = true;
        turn.progress.remove();
        renderError(turn, evt.data && evt.data.message ? String(evt.data.message) : "The server reported an error.");
      }
    }

    return fetch("/ask/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body)
    }).then(function (res) {
      if (!res.ok) {
        return res.json().catch(function () { return {}; }).then(function (j) {
          var detail = typeof j.message === "string" && j.message ? j.message : describeDetail(j.detail);
          throw new Error(res.status === 422 || res.status === 413 ? "Please check the question: " + detail
            : "The server answered with status " + res.status + ".");
        });
      }
      if (!res.body || !res.body.getReader) {
        return res.text().then(function (all) { all.split(/\r?\n\r?\n/).forEach(function (b) { if (b.trim()) handle(parseEvent(b)); }); });
      }
      var reader = res.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            buffer += decoder.decode();
            if (buffer.trim()) handle(parseEvent(buffer));
            return;
          }
          buffer += decoder.decode(chunk.value, { stream: true });
          var parts = buffer.split(/\r?\n\r?\n/);
          buffer = parts.pop();
          parts.forEach(function (block) { if (block.trim()) handle(parseEvent(block)); });
          return pump();
        });
      }
      return pump();
    }).then(function () {
      if (!final && !failed) throw new Error("The connection closed before the answer was complete.");
      if (final) {
        history.push({ role: "user", content: text });
        history.push({ role: "assistant", content: String(final.answer || "") });
        announce(final.refused ? "The articles don't answer this question." : "Answer ready.");
      } else {
        announce("The question could not be answered.");
      }
    }).catch(function (err) {
      if (turn.progress.parentNode) turn.progress.remove();
      var msg = err && err.message && !/fetch|network/i.test(err.message) ? err.message
        : "The server could not be reached. Please check your connection and try again.";
      renderError(turn, msg);
      announce("The question could not be answered.");
    }).then(function () {
      busy = false;
      askButton.disabled = false;
      askButton.textContent = "Ask";
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = question.value.trim();
    if (!text || busy) { question.focus(); return; }
    question.value = "";
    ask(text);
  });

  question.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (typeof form.requestSubmit === "function") form.requestSubmit(); else form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  document.querySelectorAll(".example").forEach(function (button) {
    button.addEventListener("click", function () {
      question.value = button.getAttribute("data-question") || button.textContent;
      if (!busy) form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    });
  });

  var initial = new URLSearchParams(window.location.search).get("q");
  if (initial) question.value = initial;
  loadOutlets();
})();

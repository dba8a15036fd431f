// newsqa shared page helpers (loaded before app.js and articles.js): safe DOM building, links, dates.
// Text always goes in through textContent; only http(s) URLs ever become links.
(function () {
  "use strict";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function safeUrl(url) {
    if (!url) return null;
    try {
      var parsed = new URL(String(url), window.location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  // A link opening in a new tab for an http(s) url; null for any other url.
  function externalLink(className, text, url) {
    var href = safeUrl(url);
    if (!href) return null;
    var a = el("a", className, text);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  // An article's title: a link to the article when its url is http(s), plain text otherwise.
  function titleNode(className, title, url) {
    var text = title || "Untitled article";
    return externalLink(className, text, url) || el("span", className, text);
  }

  function formatDate(value) {
    if (!value) return "";
    var d = new Date(value);
    if (isNaN(d.getTime())) return String(value);
    return d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
  }

  window.NewsQA = Object.freeze({
    el: el, safeUrl: safeUrl, externalLink: externalLink, titleNode: titleNode, formatDate: formatDate
  });
})();

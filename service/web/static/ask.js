/* The question box: asks GET /api/ask and shows the answer in sentences with links to the resources it names,
 * the source quotes each row rests on (or "inferred" with a link to its explanation), the SPARQL that ran and
 * "open in editor": a share link of the workbench (/?lang=…#query=…&infer=true, read by query.js), followed in
 * place through the page's editor hook (window.GKWorkbench.editor.setText) when the editor is on the page. */
(function () {
  "use strict";

  var page = JSON.parse(document.getElementById("page-data").textContent);
  var zh = page.lang === "zh";
  var form = document.getElementById("ask-form");
  var input = document.getElementById("ask-q");
  var box = document.getElementById("ask-answer");
  var T = zh
    ? { asking: "正在回答…", quotes: "原文出处", inferred: "推理得出", why: "为什么？", open: "在编辑器中打开",
        sparql: "执行的SPARQL", failed: "提问失败：", try_: "可以这样问：" }
    : { asking: "Answering…", quotes: "Where this comes from", inferred: "inferred", why: "why?",
        open: "Open in editor", sparql: "The SPARQL that ran", failed: "The question failed: ", try_: "You could ask:" };

  function localHref(iri) {
    var base = page.base;
    if (iri.indexOf(base + "id/") === 0) return "/id/" + iri.slice(base.length + 3);
    if (iri.indexOf(base + "ontology#") === 0) return "/ontology#" + iri.slice(base.length + 9);
    return null;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // label -> href of every resource the results name with a label (?x with ?xLabel) and every recognised entity
  function linkTable(doc) {
    var table = Object.create(null);
    var rows = (doc.results && doc.results.results && doc.results.results.bindings) || [];
    rows.forEach(function (row) {
      Object.keys(row).forEach(function (name) {
        var term = row[name], label = row[name + "Label"];
        if (term.type === "uri" && label && localHref(term.value)) table[label.value] = localHref(term.value);
      });
    });
    ((doc.recognised && doc.recognised.entities) || []).forEach(function (e) {
      if (localHref(e.iri)) table[e.label] = localHref(e.iri);
    });
    return table;
  }

  // A sentence as text nodes and links: each known label (longest first) becomes a link to its resource page.
  function linked(sentence, table) {
    var labels = Object.keys(table).filter(function (l) { return l.length > 1; });
    labels.sort(function (a, b) { return b.length - a.length; });
    var out = document.createDocumentFragment();
    var rest = sentence;
    while (rest) {
      var best = -1, found = null;
      labels.forEach(function (label) {
        var at = rest.indexOf(label);
        if (at >= 0 && (best < 0 || at < best || (at === best && label.length > found.length))) { best = at; found = label; }
      });
      if (found === null) { out.appendChild(document.createTextNode(rest)); break; }
      if (best > 0) out.appendChild(document.createTextNode(rest.slice(0, best)));
      out.appendChild(el("a", { href: table[found], class: "resource-link" }, found));
      rest = rest.slice(best + found.length);
    }
    return out;
  }

  function suggestionList(doc) {
    var list = el("ul", { class: "suggestions" });
    (doc.suggestions || []).forEach(function (s) {
      var item = el("li");
      var link = el("a", { href: "#", role: "button" }, s);
      link.addEventListener("click", function (event) { event.preventDefault(); input.value = s; ask(s); });
      item.appendChild(link);
      list.appendChild(item);
    });
    return list;
  }

  function show(doc) {
    box.replaceChildren();
    if (!doc.understood) {
      box.appendChild(el("p", { class: "ask-message" }, doc.message));
      if ((doc.suggestions || []).length) {
        box.appendChild(el("p", { class: "hint" }, T.try_));
        box.appendChild(suggestionList(doc));
      }
      return;
    }
    box.appendChild(el("p", { class: "interpretation" }, doc.interpretation));
    var table = linkTable(doc);
    var sentences = el("ul", { class: "ask-sentences" });
    doc.answer.forEach(function (s) { var li = el("li"); li.appendChild(linked(s, table)); sentences.appendChild(li); });
    box.appendChild(sentences);

    var quotes = [], inferred = [];
    doc.basis.forEach(function (b) {
      (b.quotes || []).forEach(function (q) { if (q && quotes.indexOf(q) < 0) quotes.push(q); });
      if (b.kind === "inferred" && b.explain && inferred.indexOf(b.explain) < 0) inferred.push(b.explain);
    });
    if (quotes.length || inferred.length) {
      box.appendChild(el("h3", {}, T.quotes));
      var list = el("ul", { class: "quotes" });
      quotes.slice(0, 8).forEach(function (q) { list.appendChild(el("li", { class: "quote" }, "「" + q + "」")); });
      inferred.slice(0, 8).forEach(function (href) {
        var li = el("li", { class: "inferred" }, T.inferred + " — ");
        li.appendChild(el("a", { href: href }, T.why));
        list.appendChild(li);
      });
      box.appendChild(list);
    }
    var details = el("details", { class: "ask-sparql" });
    details.appendChild(el("summary", {}, T.sparql + " (" + doc.query + ")"));
    details.appendChild(el("pre", {}, doc.sparql_standalone));
    box.appendChild(details);
    var share = new URLSearchParams({ query: doc.sparql_standalone, infer: "true" });
    var open = el("a", { id: "ask-open-editor", class: "open-in-editor",
      href: "/?lang=" + encodeURIComponent(page.lang) + "#" + share.toString() }, T.open);
    open.addEventListener("click", function (event) {
      var workbench = window.GKWorkbench;
      if (!workbench || !workbench.editor) return; // no editor here: the share link opens one
      event.preventDefault();
      workbench.editor.setText(doc.sparql_standalone);
      var infer = document.getElementById("infer");
      if (infer) infer.checked = true;
      document.getElementById("query-form").scrollIntoView();
    });
    box.appendChild(el("p")).appendChild(open);
  }

  function ask(question) {
    box.hidden = false;
    box.replaceChildren(el("p", { class: "status" }, T.asking));
    fetch("/api/ask?" + new URLSearchParams({ q: question }).toString(), { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.detail || response.statusText);
          return body;
        });
      })
      .then(show)
      .catch(function (error) { box.replaceChildren(el("p", { class: "error", role: "alert" }, T.failed + error.message)); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (input.value.trim()) ask(input.value.trim());
  });
})();

/* A small SPARQL editor: a plain <textarea> (keyboard, undo, screen readers all native) over a <pre> that
 * shows the same text highlighted. Ctrl/Cmd+Enter submits the form; an error can be marked at line/column. */
(function () {
  "use strict";

  var KEYWORDS = (
    "base prefix select distinct reduced construct describe ask from named where order by asc desc limit " +
    "offset values optional graph union minus filter bind service silent as group having not exists in " +
    "a true false undef count sum min max avg sample group_concat separator str lang langmatches datatype " +
    "bound iri uri bnode rand abs ceil floor round concat strlen ucase lcase encode_for_uri contains " +
    "strstarts strends strbefore strafter year month day hours minutes seconds timezone tz now uuid struuid " +
    "md5 sha1 sha256 sha384 sha512 coalesce if strlang strdt sameterm isiri isuri isblank isliteral " +
    "isnumeric regex substr replace"
  ).split(" ");
  var KEYWORD_SET = Object.create(null);
  KEYWORDS.forEach(function (k) { KEYWORD_SET[k] = true; });

  // Tried in order at each position; the first that matches wins.
  var RULES = [
    ["ws", /\s+/y],
    ["comment", /#[^\n]*/y],
    ["string", /"""[\s\S]*?"""|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'/y],
    ["iri", /<[^<>"{}|^`\\\s]*>/y],
    ["variable", /[?$][\w\u00b7\u00c0-\uffff]+/y],
    ["langtag", /@[a-zA-Z]+(?:-[a-zA-Z0-9]+)*/y],
    ["pname", /(?:[A-Za-z\u00c0-\uffff][\w\-.\u00b7\u00c0-\uffff]*)?:(?:[\w\u00c0-\uffff:%\-]|\\.|\.(?=[\w:%-]))*/y],
    ["number", /[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/y],
    ["word", /[A-Za-z_][\w]*/y],
    ["punct", /\^\^|&&|\|\||!=|<=|>=|[\s\S]/y],
  ];

  function tokenize(text) {
    var tokens = [];
    var pos = 0;
    while (pos < text.length) {
      for (var i = 0; i < RULES.length; i++) {
        var rule = RULES[i][1];
        rule.lastIndex = pos;
        var m = rule.exec(text);
        if (m && m[0].length) {
          var kind = RULES[i][0];
          if (kind === "word") kind = KEYWORD_SET[m[0].toLowerCase()] ? "keyword" : "word";
          tokens.push({ kind: kind, start: pos, end: pos + m[0].length });
          pos += m[0].length;
          break;
        }
      }
    }
    return tokens;
  }

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  /** The offset of a 1-based line and column (in characters) in `text`, clamped to the text. */
  function offsetOf(text, line, column) {
    var offset = 0;
    for (var l = 1; l < line; l++) {
      var next = text.indexOf("\n", offset);
      if (next < 0) return text.length;
      offset = next + 1;
    }
    var lineEnd = text.indexOf("\n", offset);
    if (lineEnd < 0) lineEnd = text.length;
    return Math.min(offset + Math.max(column - 1, 0), lineEnd);
  }

  function render(text, errorAt) {
    var html = "";
    var marked = errorAt === null || errorAt === undefined;
    tokenize(text).forEach(function (tok) {
      var piece = text.slice(tok.start, tok.end);
      var cls = tok.kind === "ws" || tok.kind === "punct" || tok.kind === "word" ? "" : "tok-" + tok.kind;
      if (!marked && errorAt < tok.end && tok.kind !== "ws") {
        marked = true;
        html += '<mark class="error-mark">' + span(cls, piece) + "</mark>";
        return;
      }
      html += span(cls, piece);
    });
    if (!marked) html += '<mark class="error-mark error-eof"> </mark>';
    // A trailing newline needs a character after it, or the <pre> is one line shorter than the textarea.
    return html + "\n ";
  }

  function span(cls, piece) {
    return cls ? '<span class="' + cls + '">' + escapeHtml(piece) + "</span>" : escapeHtml(piece);
  }

  var MIN_LINES = 10;
  var MAX_LINES = 32;

  function create(textarea, highlight, onRun) {
    var errorAt = null;
    var box = textarea.parentNode;

    function refresh() {
      highlight.innerHTML = render(textarea.value, errorAt);
      fitHeight();
      syncScroll();
    }
    function fitHeight() {
      // The box grows with the text (within limits), so the whole query is usually in view.
      var style = getComputedStyle(textarea);
      var lineHeight = parseFloat(style.lineHeight) || 21;
      var padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
      var lines = Math.min(Math.max(textarea.value.split("\n").length + 1, MIN_LINES), MAX_LINES);
      box.style.height = Math.ceil(lines * lineHeight + padding + 16) + "px";
    }
    function syncScroll() {
      highlight.scrollTop = textarea.scrollTop;
      highlight.scrollLeft = textarea.scrollLeft;
    }
    function insert(text) {
      // execCommand keeps the browser's undo history; setRangeText is the fallback.
      if (!document.execCommand || !document.execCommand("insertText", false, text)) {
        textarea.setRangeText(text, textarea.selectionStart, textarea.selectionEnd, "end");
        refresh();
      }
    }

    textarea.addEventListener("input", function () {
      errorAt = null;
      textarea.removeAttribute("aria-invalid");
      refresh();
    });
    textarea.addEventListener("scroll", syncScroll);
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        onRun();
      } else if (event.key === "Enter" && !event.shiftKey && !event.altKey) {
        // Keep the indentation of the current line.
        var before = textarea.value.slice(0, textarea.selectionStart);
        var indent = /(^|\n)([ \t]*)[^\n]*$/.exec(before)[2];
        if (indent) {
          event.preventDefault();
          insert("\n" + indent);
        }
      }
      // Tab is left alone on purpose: it moves the focus on, so the editor never traps the keyboard.
    });
    refresh();

    return {
      getText: function () { return textarea.value; },
      setText: function (text) {
        textarea.value = text;
        errorAt = null;
        textarea.removeAttribute("aria-invalid");
        refresh();
      },
      markError: function (line, column) {
        errorAt = offsetOf(textarea.value, line, column);
        textarea.setAttribute("aria-invalid", "true");
        refresh();
        textarea.focus();
        textarea.setSelectionRange(errorAt, errorAt);
        syncScroll();
      },
      clearError: function () {
        errorAt = null;
        textarea.removeAttribute("aria-invalid");
        refresh();
      },
    };
  }

  window.GKEditor = { create: create, tokenize: tokenize, offsetOf: offsetOf };
})();

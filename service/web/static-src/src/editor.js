/* The query editor: CodeMirror 6 with the SPARQL grammar of codemirror-lang-sparql, completion from this
 * service's /api/complete (prefixes, the ontology's classes and properties, resources by zh/en label), a
 * syntax check while typing from /api/lint (nothing runs), and Ctrl/Cmd+Enter to run. Every request goes to
 * the page's own origin. Exposed as window.GKEditor.create(textarea, options), which replaces the textarea. */
import { EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection } from "@codemirror/view";
import { EditorState, Prec } from "@codemirror/state";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { linter, lintKeymap, setDiagnostics, forceLinting } from "@codemirror/lint";
import { syntaxHighlighting, defaultHighlightStyle, bracketMatching, indentOnInput, syntaxTree } from "@codemirror/language";
import { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
import { sparql } from "codemirror-lang-sparql";

// Words that end a run of plain words typed as a label ("?s a land manage" completes "land manage").
const KEYWORDS = new Set(
  ("a base prefix select distinct reduced construct describe ask from named where order by asc desc limit offset " +
    "values optional graph union minus filter bind service silent as group having not exists in true false undef")
    .split(" "),
);
const WORD = /[\p{L}\p{N}_\-:]+$/u;
const IRI_START = /<[^\s<>"{}|^`\\]*$/u;
const PLAIN_WORD = /^\p{L}[\p{L}\p{N}_\-]*$/u;

/** The 0-based document offset of a 1-based line and column, clamped to the document. */
function offsetOf(doc, line, column) {
  const l = doc.line(Math.min(Math.max(1, line), doc.lines));
  return Math.min(l.from + Math.max(0, (column || 1) - 1), l.to);
}

function diagnosticAt(doc, problem, message) {
  const from = problem.line ? offsetOf(doc, problem.line, problem.column) : 0;
  const word = /^[^\s{}()]+/.exec(doc.sliceString(from, Math.min(from + 60, doc.length)));
  const to = Math.min(doc.length, from + (word ? word[0].length : 1));
  return { from, to: Math.max(to, from), severity: "error", message, source: problem.code || "sparql" };
}

// Where names are never completed: inside a comment or a string literal.
const NOT_HERE = new Set(["Comment", "String", "RDFLiteral", "Langtag"]);

/** What the caret sits after: the text to complete, where it starts, and the kind of name wanted; or null
 * where no name belongs (a variable, a language tag, a number, a comment, a string). */
function typedBefore(state, pos) {
  for (let node = syntaxTree(state).resolveInner(pos, -1); node; node = node.parent) {
    if (NOT_HERE.has(node.name)) return null;
  }
  const line = state.doc.lineAt(pos);
  const before = line.text.slice(0, pos - line.from);
  const iri = IRI_START.exec(before);
  if (iri) return { text: iri[0], from: pos - iri[0].length, kind: "any" };
  const word = WORD.exec(before);
  let start = word ? before.length - word[0].length : before.length;
  if (/[?$@\d]/.test(before.charAt(start - 1) || "") || (word && /^\d/.test(word[0]))) return null;
  if (word && !word[0].includes(":")) {
    // Earlier plain words on the line belong to a label being typed ("land manage"), up to a keyword.
    const words = before.slice(0, start).split(/( +)/);
    while (words.length >= 3 && words[words.length - 1].trim() === "" && PLAIN_WORD.test(words[words.length - 2]) &&
           !KEYWORDS.has(words[words.length - 2].toLowerCase())) {
      start -= words.pop().length + words.pop().length;
    }
  }
  const text = before.slice(start);
  const previous = before.slice(0, start).trimEnd().split(/\s+/).pop() || "";
  const kind = /^prefix$/i.test(previous) ? "prefix" : previous === "a" ? "class" : "any";
  return { text, from: line.from + start, kind };
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text) el.textContent = text;
  return el;
}

/** The hover text of a completion: both labels, the definition, the full IRI. */
function infoOf(item) {
  const box = element("div", "gk-info");
  ["zh", "en"].forEach((lang) => {
    if (item.labels[lang]) {
      const p = element("p", "gk-info-label", item.labels[lang]);
      p.lang = lang;
      box.appendChild(p);
    }
  });
  if (item.definition) box.appendChild(element("p", "gk-info-definition", item.definition));
  box.appendChild(element("p", "gk-info-iri", item.iri));
  return box;
}

export function create(textarea, options) {
  const lang = options.lang || "en";
  const namespaces = new Map(); // prefix -> namespace, from /api/complete?kind=prefix
  let prefixesLoaded = null;

  function loadPrefixes() {
    if (!prefixesLoaded) {
      prefixesLoaded = fetch("/api/complete?kind=prefix&limit=100", { headers: { Accept: "application/json" } })
        .then((r) => (r.ok ? r.json() : { items: [] }))
        .then((body) => body.items.forEach((item) => namespaces.set(item.insert.slice(0, -1), item.iri)))
        .catch(() => { prefixesLoaded = null; });
    }
    return prefixesLoaded;
  }

  /** Insert the completion, and declare its prefix at the top when the query does not yet. */
  function apply(view, completion, from, to) {
    const changes = [{ from, to, insert: completion.insert }];
    const colon = completion.insert.indexOf(":");
    if (!completion.insert.startsWith("<") && colon > 0) {
      const prefix = completion.insert.slice(0, colon);
      const declared = new RegExp("^\\s*PREFIX\\s+" + prefix + ":", "im").test(view.state.doc.toString());
      if (!declared && namespaces.has(prefix)) {
        changes.push({ from: 0, insert: "PREFIX " + prefix + ": <" + namespaces.get(prefix) + ">\n" });
      }
    }
    view.dispatch({ changes, selection: { anchor: from + completion.insert.length + (changes.length > 1 ? changes[1].insert.length : 0) } });
  }

  async function complete(context) {
    const typed = typedBefore(context.state, context.pos);
    if (!typed) return null;
    if (!context.explicit && typed.text.replace(/^</, "").length < (/[^\x00-\x7f]/.test(typed.text) ? 1 : 2)) return null;
    await loadPrefixes();
    const params = new URLSearchParams({ prefix: typed.text, kind: typed.kind, lang, limit: "30" });
    let body;
    try {
      const response = await fetch("/api/complete?" + params, { headers: { Accept: "application/json" } });
      if (!response.ok || context.aborted) return null;
      body = await response.json();
    } catch (e) {
      return null;
    }
    if (!body.items.length) return null;
    return {
      from: typed.from,
      filter: false, // the service ranked them: a label in Chinese completes to an IRI that does not contain it
      options: body.items.map((item) => ({
        label: item.insert,
        insert: item.insert,
        detail: item.label && item.label !== item.insert ? item.label : undefined,
        type: { class: "class", property: "property", prefix: "namespace", resource: "constant" }[item.kind],
        info: () => infoOf(item),
        apply,
      })),
    };
  }

  async function lint(view) {
    const text = view.state.doc.toString();
    if (!text.trim()) {
      options.onLint && options.onLint(null);
      return [];
    }
    let body;
    try {
      const response = await fetch("/api/lint", {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ query: text }).toString(),
      });
      if (!response.ok) return [];
      body = await response.json();
    } catch (e) {
      return [];
    }
    if (view.state.doc.toString() !== text) return []; // typed on meanwhile: the next check follows
    options.onLint && options.onLint(body.ok ? null : body.problem);
    return body.ok ? [] : [diagnosticAt(view.state.doc, body.problem, options.describe(body.problem))];
  }

  const run = () => {
    options.onRun && options.onRun();
    return true;
  };

  const view = new EditorView({
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        Prec.highest(keymap.of([{ key: "Mod-Enter", run }])),
        lineNumbers(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        sparql(),
        autocompletion({ override: [complete], activateOnTypingDelay: 150, icons: true }),
        linter(lint, { delay: 500 }),
        // No Tab binding: Tab leaves the editor, so the keyboard is never trapped.
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...completionKeymap, ...lintKeymap]),
        EditorView.lineWrapping,
        EditorView.editorAttributes.of({ class: "gk-editor" }),
        EditorView.contentAttributes.of({
          id: textarea.id,
          "aria-labelledby": options.labelledBy,
          "aria-describedby": textarea.getAttribute("aria-describedby") || "",
          "aria-multiline": "true",
          role: "textbox",
          spellcheck: "false",
          autocapitalize: "off",
        }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged && options.onChange) options.onChange(update.state.doc.toString());
        }),
      ],
    }),
  });
  textarea.replaceWith(view.dom);

  return {
    view,
    getText: () => view.state.doc.toString(),
    setText(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    focus: () => view.focus(),
    /** Mark an error the service reported at a 1-based line/column and put the caret there. */
    markError(problem, message) {
      const diagnostic = diagnosticAt(view.state.doc, problem, message);
      view.dispatch(setDiagnostics(view.state, [diagnostic]));
      view.dispatch({ selection: { anchor: diagnostic.from }, scrollIntoView: true });
      view.contentDOM.setAttribute("aria-invalid", "true");
    },
    clearError() {
      view.dispatch(setDiagnostics(view.state, []));
      view.contentDOM.removeAttribute("aria-invalid");
    },
    lintNow: () => forceLinting(view),
  };
}

window.GKEditor = { create };

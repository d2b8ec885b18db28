// Builds service/web/static/editor.bundle.js from src/editor.js and the pinned packages (package-lock.json).
// The output depends only on those: tests/unit/test_editor_bundle.py rebuilds it and compares the bytes.
// Usage: node build.mjs [outfile]
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outfile = process.argv[2] || path.join(here, "..", "static", "editor.bundle.js");

await build({
  entryPoints: [path.join(here, "src", "editor.js")],
  outfile,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  charset: "utf8",
  legalComments: "eof",
  logLevel: "warning",
  banner: { js: "/* guian-kg query editor: built by service/web/static-src/build.mjs; do not edit */" },
});

"""The `guian-kg` command: serve, query, validate, reason, export, push, explain, ask, backup, restore."""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import logging
import os
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from rdflib import Dataset

from service import names
from service.ask.command import ask_cli
from service.config import SETTINGS, Settings, load_settings
from service.data.snapshots import load_snapshot, open_journal
from service.data.sources import asserted_dataset, data_version, reason
from service.data.validation import validate
from service.engines.base import QueryJob
from service.engines.factory import engine_for
from service.errors import ConfigError, GuianError
from service.explain.cache import Explainers
from service.explain.terms import parse_term
from service.journal.log import Journal
from service.library.queries import served_library
from service.push import push
from service.serve import serve
from service.sparql.lexer import query_form

LIST_FLAGS = {"data"}  # settings whose flag takes several values (`--data a.ttl folder/`)


def _add_settings(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (flag > GUIAN_KG_* environment variable > default)")
    for setting in SETTINGS:
        group.add_argument(
            setting.flag,
            dest=setting.name,
            default=None,
            metavar=setting.name.upper(),
            nargs="+" if setting.name in LIST_FLAGS else None,
            help=f"{setting.help} [{setting.env}; default: {setting.default}]",
        )


def _settings(args: argparse.Namespace) -> Settings:
    values = {s.name: getattr(args, s.name) for s in SETTINGS}
    for name in LIST_FLAGS:
        if values[name] is not None:
            values[name] = os.pathsep.join(values[name])
    return load_settings(values)


def cmd_serve(args: argparse.Namespace) -> int:
    serve(_settings(args))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    conforms, report = validate()
    print(report)
    return 0 if conforms else 1


def cmd_reason(args: argparse.Namespace) -> int:
    settings = _settings(args)
    closure = reason(asserted_dataset(settings.data), settings.reasoner)
    print(f"data version:      {data_version(settings.base_iri, settings.reasoner, settings.data)}")
    print(f"reasoner:          {closure.reasoner}")
    print(f"asserted triples:  {closure.asserted_triples}")
    print(f"closure triples:   {closure.closure_triples}")
    print(f"inferred (kept):   {len(closure.triples)}")
    print(f"junk dropped:      {closure.dropped_junk}")
    print(f"reasoning time:    {closure.seconds:.2f} s")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    snapshot = load_snapshot(_settings(args))
    if args.format == "nquads":
        data = snapshot.nquads.read_bytes()
    else:
        dataset = Dataset()
        dataset.parse(snapshot.nquads, format="nquads")
        data = dataset.serialize(format="trig").encode("utf-8")
    if args.output:
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
    return 0


def _width(text: str) -> int:
    """Columns `text` takes in a terminal: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _print_table(body: dict) -> None:
    if "boolean" in body:
        print("true" if body["boolean"] else "false")
        return
    names = body["head"]["vars"]
    rows = [[_cell(b.get(n)) for n in names] for b in body["results"]["bindings"]]
    widths = [max([_width(n), *(_width(r[i]) for r in rows)]) for i, n in enumerate(names)]
    print(" | ".join(_pad(n, w) for n, w in zip(names, widths, strict=True)).rstrip())
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")


def _cell(term: dict | None) -> str:
    if term is None:
        return ""
    if term["type"] == "literal" and "xml:lang" in term:
        return f"{term['value']}@{term['xml:lang']}"
    return term["value"]


def cmd_query(args: argparse.Namespace) -> int:
    settings = _settings(args)
    bindings: tuple[tuple[str, str], ...] = ()
    if args.file:
        text = Path(args.file).read_text(encoding="utf-8")
    elif args.query and Path(args.query).suffix == ".rq" and Path(args.query).exists():
        text = Path(args.query).read_text(encoding="utf-8")
    elif args.query and " " not in args.query.strip() and "{" not in args.query:
        params: dict[str, list[str]] = {}
        for param in args.param:
            key, _, value = param.partition("=")
            params.setdefault(key, []).append(value)
        prepared = served_library(settings).get(args.query).prepare(params)
        text, bindings = prepared.text, prepared.bindings
    elif args.query:
        text = args.query
    else:
        text = sys.stdin.read()
    form = query_form(text)
    output = args.output_format
    fmt = {"table": "json", "json": "json", "csv": "csv"}[output] if form in ("select", "ask") else "ttl"
    engine = engine_for(settings, load_snapshot(settings))
    outcome = engine.execute(QueryJob(text, fmt, infer=not args.no_infer and settings.infer, bindings=bindings))
    if output == "table" and fmt == "json":
        _print_table(json.loads(outcome.body))
    else:
        sys.stdout.buffer.write(outcome.body)
        if not outcome.body.endswith(b"\n"):
            print()
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    settings = _settings(args)
    endpoint = args.endpoint or settings.remote_update
    if not endpoint:
        print("guian-kg: push needs --endpoint URL (or --remote-update URL)", file=sys.stderr)
        return 2
    report = push(settings, endpoint, protocol=args.protocol, batch_size=args.batch_size, resume=args.resume)
    print(report.summary())
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """`guian-kg explain S P O`: print the explanation tree; exit 1 when the triple is not entailed."""
    settings = _settings(args)
    snapshot = load_snapshot(settings)
    terms = [parse_term(text, pos, settings.base_iri) for text, pos in ((args.s, "s"), (args.p, "p"), (args.o, "o"))]
    explainer = Explainers().for_snapshot(snapshot)
    explanation = explainer.explain(*terms)
    if explanation is None:
        shown = " ".join(explainer.curie(t) for t in terms)
        print(f"guian-kg: not entailed: {shown} is neither asserted nor inferred by OWL 2 RL", file=sys.stderr)
        return 1
    sys.stdout.write(explanation.to_text())
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """`guian-kg ask "…"`: the answer in sentences (or --json, the document of GET /api/ask); exit 1 if declined."""
    return ask_cli(" ".join(args.question), _settings(args), as_json=args.json)


def _store(args: argparse.Namespace) -> tuple[Settings, Journal]:
    settings = _settings(args)
    if settings.store_dir is None:
        raise ConfigError("backup and restore need the store folder: --store-dir DIR (GUIAN_KG_STORE_DIR)")
    return settings, open_journal(settings)


def cmd_backup(args: argparse.Namespace) -> int:
    _, store = _store(args)
    target = Path(args.output or time.strftime("guian-kg-backup-%Y%m%dT%H%M%SZ.nq", time.gmtime()))
    head = store.backup(target)
    version = store.version(head.seq, head.chain, head.manifest)
    print(f"backed up journal position {head.seq} (data version {version}) to {target}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    settings, store = _store(args)
    if (args.file is None) == (args.to is None):
        raise ConfigError("restore needs a backup FILE or --to SEQ (one of them)")
    if args.to is not None:
        head, kept = store.restore_to(args.to, {"cli": getpass.getuser()})
        version = store.version(head.seq, head.chain, head.manifest)
        print(f"brought back position {args.to} ({kept} quads) as journal position {head.seq} (data version {version})")
        return 0
    inferred = names.rebase(names.INFERRED_GRAPH, settings.base_iri)
    head, kept, dropped = store.restore(Path(args.file), inferred, {"cli": getpass.getuser(), "file": args.file})
    version = store.version(head.seq, head.chain, head.manifest)
    note = f"; {dropped} quads of computed graphs left out (reasoning makes them again)" if dropped else ""
    print(f"restored {kept} quads as journal position {head.seq} (data version {version}){note}")
    return 0


BENCH_SUITES = ("run", "scale", "profile")


def cmd_bench(args: argparse.Namespace) -> int:
    """Run one of the benchmarks of a checkout (`benchmarks/`: HTTP side by side with the peers, scale, profile)."""
    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / "benchmarks" / f"{args.suite}.py").is_file():
        print(
            "guian-kg: bench needs a checkout of the repository (its benchmarks/ folder) and the bench extra: "
            "pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    suite = importlib.import_module(f"benchmarks.{args.suite}")
    return int(suite.main(args.arguments) or 0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand, with every setting as a flag."""
    parser = argparse.ArgumentParser(prog="guian-kg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the HTTP service (granian, production WSGI)")
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("query", help="run a SPARQL query, a .rq file, or a named query")
    p.add_argument("query", nargs="?", help="SPARQL text, a .rq file, or a named query's name (stdin if absent)")
    p.add_argument("--file", "-f", help="read the query from this file")
    p.add_argument("--param", "-p", action="append", default=[], help="named-query parameter NAME=VALUE")
    p.add_argument("--output-format", "-o", choices=["table", "json", "csv"], default="table")
    p.add_argument("--no-infer", action="store_true", help="leave the inferred graph out")
    p.set_defaults(run=cmd_query)

    p = sub.add_parser("validate", help="check the asserted data against the SHACL shapes")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("reason", help="run the OWL 2 RL closure and report counts and time")
    p.set_defaults(run=cmd_reason)

    p = sub.add_parser("export", help="write the whole dataset (asserted + inferred)")
    p.add_argument("--format", choices=["nquads", "trig"], default="nquads")
    p.add_argument("--output", help="file to write (default: stdout)")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("push", help="load every graph (asserted + inferred) into a remote SPARQL store")
    p.add_argument("--endpoint", help="SPARQL Update or Graph Store endpoint URL (default: --remote-update)")
    p.add_argument(
        "--protocol",
        choices=["auto", "update", "gsp"],
        default="auto",
        help="SPARQL Update or Graph Store Protocol (auto: gsp for URLs ending in /store, /data, …)",
    )
    p.add_argument("--batch-size", type=int, default=5000, help="triples per request (default: 5000)")
    p.add_argument("--resume", action="store_true", help="send only the batches an earlier push did not finish")
    p.set_defaults(run=cmd_push)

    p = sub.add_parser("explain", help="why a triple holds, down to the source quotes")
    p.add_argument("s")
    p.add_argument("p")
    p.add_argument("o")
    p.set_defaults(run=cmd_explain)

    p = sub.add_parser("ask", help="a question in Chinese or English, answered from the named queries")
    p.add_argument("question", nargs="+", help="the question, e.g. 哪个科室负责土地管理？")
    p.add_argument("--json", action="store_true", help="print the whole answer document (as GET /api/ask)")
    p.set_defaults(run=cmd_ask)

    p = sub.add_parser("backup", help="write the store's asserted data (N-Quads) at its newest position")
    p.add_argument("--output", "-o", help="file to write (default: guian-kg-backup-<UTC time>.nq)")
    p.set_defaults(run=cmd_backup)

    p = sub.add_parser(
        "restore",
        help="replace the store's data by a backup's, or by an earlier position's (a new journal position; the "
        "replaced checkpoint and journal are kept in the store's history/)",
    )
    p.add_argument("file", nargs="?", help="a file written by `guian-kg backup` (or any N-Quads of named graphs)")
    p.add_argument("--to", type=int, metavar="SEQ", help="bring back the data of journal position SEQ instead")
    p.set_defaults(run=cmd_restore)

    p = sub.add_parser(
        "bench",
        help="benchmarks from a checkout: run (HTTP vs Oxigraph server, rdflib-endpoint), scale, profile",
        description="Runs python -m benchmarks.<suite> with the arguments that follow (see benchmarks/README.md).",
    )
    p.add_argument("suite", choices=BENCH_SUITES, nargs="?", default="run")
    p.add_argument("arguments", nargs=argparse.REMAINDER, help="the suite's own options, e.g. --quick")
    p.set_defaults(run=cmd_bench)

    for name, subparser in sub.choices.items():
        if name != "bench":  # the suites take their own options
            _add_settings(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `guian-kg` console script."""
    args = build_parser().parse_args(argv)
    wanted = getattr(args, "log_level", None)
    try:
        level = load_settings({"log_level": wanted}, environ={}).log_level if wanted else "WARNING"
        logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
        return args.run(args)
    except GuianError as exc:
        print(f"guian-kg: {exc.code}: {exc.detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

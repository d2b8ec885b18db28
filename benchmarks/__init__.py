"""Benchmarks of guian-kg against Oxigraph server and rdflib-endpoint (`python -m benchmarks.run`, `benchmarks.scale`)."""

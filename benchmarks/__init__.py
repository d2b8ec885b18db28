"""Benchmarks of guian-kg against Oxigraph server and rdflib-endpoint: `benchmarks.run`, `benchmarks.scale`."""

"""guian-kg: a knowledge graph and SPARQL 1.1 service for the Gui'an New Area Management Committee office."""

__version__ = "0.1.0"

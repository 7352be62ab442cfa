"""Enrichment: lookup tables (Panther's ``lookup_table`` analysis type and the sources a flow-log
user holds) matched once per distinct key and attached to each batch as ``p_enrichment``.

This layer sits beside ``logs``: it knows Arrow batches and addresses, nothing about rules.
"""

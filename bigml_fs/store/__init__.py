"""Offline tables, the Feast repo, materialize, online stores and online reads.

The only package that imports feast.
"""

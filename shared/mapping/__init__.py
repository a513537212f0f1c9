"""Mapping: the field registry, its value rules, the column mapping and what a row must satisfy.

fields (the registry) <- rules; parser (a mapping checked as a whole); validation (a row against
the mapping); suggest and saved_mappings (what an upload is offered); upload_answer; templates.
Imports: the top level of shared and shared.files.
"""

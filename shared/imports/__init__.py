"""Imports: an import job from its start to its result, and what can be done after it.

The steps, in order: jobs (start, status, result files) -> row_check -> allocation -> creation ->
completion; scheduling (units of work claimed in fair order) and progress (status in Redis) run
beside them. After an import: undo, regeneration (new passwords), failed_rows (fix and retry).
Imports: the top level of shared, shared.files, shared.mapping, shared.accounts, shared.dialer.
"""

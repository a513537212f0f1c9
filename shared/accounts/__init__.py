"""Accounts: who may log in, and how they prove it.

login_flow (password, networks, second factor, forced change) <- passwords, lockout, networks,
auth_types, totp, one_time_codes, recovery_codes; tokens (API tokens) and token_cache with
access_stamp (what a web process may trust without asking the database); page_sessions.
Imports: the top level of shared only.
"""

"""The dialer's own data: tenants, their users and reference data (roles, desks, skill groups,
PBX domains), as admins manage them outside an import.

Imports: the top level of shared, shared.accounts (passwords, sessions, tokens of a user) and
shared.mapping (the field registry says how a user is shown).
"""

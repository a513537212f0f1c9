"""The domain, shared by the web and the Celery worker; it knows neither Flask nor Celery.

Its functions take a database Session and never commit: the caller (a view, a task, a CLI
command) owns the transaction. The top level holds what every context uses: settings, db,
models, errors, audit, timestamps, encryption, mail, text. The contexts are packages, and
their imports run one way (tests/unit/test_layout.py checks it):

    files  <-  mapping  <-  imports
                  ^            |
    accounts <- dialer  <------+   (imports also uses accounts)

A package may import the top level and the packages its docstring names, nothing else.
"""

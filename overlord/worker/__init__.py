"""Workers: task slots, task child processes, claim/heartbeat/finish, periodic duties.

Beside ``api``: imports services, store, db and config; never flask or api.
"""

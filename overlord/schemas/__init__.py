"""Wire shapes: one module per API surface, separate load and dump schemas.

Imports marshmallow, ``states`` and ``timeutil`` only: no store, no flask.
"""

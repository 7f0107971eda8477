"""All SQL of overlord: models, types and the queries services call.

Never imports flask, marshmallow, services or api.
"""

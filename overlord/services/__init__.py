"""Druid and OpenSearch rules over the store. Never imports flask or marshmallow;
never commits (the caller's transaction does)."""

"""Stored-video jobs: the analyses, the worker processes that run them, completion notices."""

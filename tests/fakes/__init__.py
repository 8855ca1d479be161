"""Test doubles at process boundaries (e.g. a local HTTP server speaking LLM wire formats)."""

"""Answers from passages: extractive (default, offline) or an OpenAI-compatible LLM, and the
in/out-of-corpus decision.
"""

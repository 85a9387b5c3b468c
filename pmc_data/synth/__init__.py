"""Instruction synthesis: templates, output formats, and (with LLM backends) generation."""

"""Global steps that remove duplicates and benchmark contamination."""

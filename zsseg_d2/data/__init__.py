"""Data sets (registered on import), mappers and image-level labels."""

"""Read models built from city event streams."""

"""Small helpers shared across graphseg: input validation."""

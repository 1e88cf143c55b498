"""Database models, engine helpers and the migrations that ship with the package."""

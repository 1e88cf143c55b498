"""The reference service: a Litestar API and a SAQ worker over PostgreSQL and Redis."""

"""A Flask app over SQLAlchemy 2.0 and psycopg 3, configured by SHOP_DATABASE_URL."""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from models import Item


def create_app(url: str | None = None) -> Flask:
    """The app, on the database the environment names."""
    engine = create_engine(url or os.environ["SHOP_DATABASE_URL"], pool_pre_ping=True)
    app = Flask(__name__)

    @app.get("/health")
    def health() -> object:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return jsonify(status="ok")

    @app.post("/items")
    def add() -> object:
        with Session(engine) as session, session.begin():
            session.add(Item(name=str(request.json["name"])))  # type: ignore[index]
        return jsonify(ok=True), 201

    @app.get("/items")
    def items() -> object:
        with Session(engine) as session:
            return jsonify([i.name for i in session.scalars(select(Item).order_by(Item.id))])

    return app

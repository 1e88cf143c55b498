"""The catalogue's operations."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shop.models import Category, Product


async def add_category(session: AsyncSession, name: str) -> Category:
    category = Category(name=name)
    session.add(category)
    await session.commit()
    return category


async def add_product(
    session: AsyncSession, sku: str, name: str, price_cents: int, category: Category | None = None
) -> Product:
    if price_cents < 0:
        raise ValueError("a price is never negative")
    product = Product(sku=sku, name=name, price_cents=price_cents, category=category)
    session.add(product)
    await session.commit()
    return product


async def products_in(session: AsyncSession, category: Category) -> list[Product]:
    rows = await session.scalars(
        select(Product).where(Product.category_id == category.id).order_by(Product.sku)
    )
    return list(rows)


async def total_value(session: AsyncSession, category: Category) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(Product.price_cents), 0)).where(
            Product.category_id == category.id
        )
    )
    return int(total or 0)


async def reprice(session: AsyncSession, product: Product, percent: int) -> Product:
    product.price_cents = product.price_cents * (100 + percent) // 100
    await session.commit()
    return product


async def count_products(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Product)) or 0)

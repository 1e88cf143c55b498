from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shop import services
from tests.conftest import run


def test_add_category(session: AsyncSession, unique: str) -> None:
    async def scenario() -> None:
        async with session:
            category = await services.add_category(session, f"tea-{unique}")
            assert category.id is not None

    run(scenario())


def test_category_names_are_unique(session: AsyncSession, unique: str) -> None:
    async def scenario() -> None:
        async with session:
            await services.add_category(session, f"dup-{unique}")
        async with session:
            with pytest.raises(IntegrityError):
                await services.add_category(session, f"dup-{unique}")

    run(scenario())


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_products_in_category(session: AsyncSession, unique: str, n: int) -> None:
    async def scenario() -> None:
        async with session:
            category = await services.add_category(session, f"c-{unique}")
            for i in range(n):
                await services.add_product(
                    session, f"{unique}-{i:02}", f"item {i}", 100 * i, category
                )
            products = await services.products_in(session, category)
            assert [p.sku for p in products] == [f"{unique}-{i:02}" for i in range(n)]
            assert await services.total_value(session, category) == 100 * sum(range(n))

    run(scenario())


@pytest.mark.parametrize(("percent", "expected"), [(10, 1100), (0, 1000), (-25, 750), (100, 2000)])
def test_reprice(session: AsyncSession, unique: str, percent: int, expected: int) -> None:
    async def scenario() -> None:
        async with session:
            product = await services.add_product(session, unique, "kettle", 1000)
            await services.reprice(session, product, percent)
            assert product.price_cents == expected

    run(scenario())


def test_negative_price_is_refused(session: AsyncSession, unique: str) -> None:
    async def scenario() -> None:
        async with session:
            with pytest.raises(ValueError, match="never negative"):
                await services.add_product(session, unique, "broken", -1)

    run(scenario())


def test_skus_are_unique(session: AsyncSession, unique: str) -> None:
    async def scenario() -> None:
        async with session:
            await services.add_product(session, unique, "a", 1)
        async with session:
            with pytest.raises(IntegrityError):
                await services.add_product(session, unique, "b", 2)

    run(scenario())


def test_count_grows(session: AsyncSession, unique: str) -> None:
    async def scenario() -> None:
        async with session:
            before = await services.count_products(session)
            await services.add_product(session, unique, "mug", 500)
            assert await services.count_products(session) == before + 1

    run(scenario())


def test_empty_category_is_worth_nothing(session: AsyncSession, unique: str) -> None:
    async def scenario() -> None:
        async with session:
            category = await services.add_category(session, f"empty-{unique}")
            assert await services.total_value(session, category) == 0

    run(scenario())

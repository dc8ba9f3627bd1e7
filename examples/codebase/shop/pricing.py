from shop.cart import Cart

TAX_RATE = 0.2


def apply_discount(total_cents: int, percent: float) -> int:
    if not 0 <= percent <= 100:
        raise ValueError(f"discount must be between 0 and 100, not {percent}")
    return round(total_cents * (100 - percent) / 100)


def with_tax(total_cents: int) -> int:
    return round(total_cents * (1 + TAX_RATE))


def checkout_total(cart: Cart, discount_percent: float = 0) -> int:
    return with_tax(apply_discount(cart.total_cents(), discount_percent))

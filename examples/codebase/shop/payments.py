import time

MAX_ATTEMPTS = 3


class PaymentDeclined(Exception):
    pass


def charge(card_number: str, amount_cents: int, gateway) -> str:
    if amount_cents <= 0:
        raise ValueError("amount must be positive")
    if len(card_number) != 16 or not card_number.isdigit():
        raise ValueError("a card number has 16 digits")
    for attempt in range(MAX_ATTEMPTS):
        reply = gateway.charge(card_number, amount_cents)
        if reply.ok:
            return reply.transaction_id
        if reply.code == "declined":
            raise PaymentDeclined(reply.message)
        time.sleep(2**attempt)
    raise TimeoutError(f"the gateway did not answer after {MAX_ATTEMPTS} attempts")


def refund(transaction_id: str, gateway) -> None:
    gateway.refund(transaction_id)

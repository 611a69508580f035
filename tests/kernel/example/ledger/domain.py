from marshmallow import Schema, fields, validate

from shared.aggregate import Aggregate, applies
from shared.errors import InvalidInput
from shared.events import event_type


@event_type("Deposited", version=2)
class Deposited(Schema):
    account = fields.Str(required=True, validate=validate.Length(min=1, max=50))
    amount_cents = fields.Int(required=True)
    memo = fields.Str(load_default="")


class LedgerAccount(Aggregate):
    stream_type = "account"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.balance_cents = 0

    def deposit(self, amount_cents: int, memo: str = "") -> None:
        if amount_cents <= 0:
            raise InvalidInput(errors={"amount_cents": "must be more than zero"})
        self.record("Deposited", {"account": self.id, "amount_cents": amount_cents, "memo": memo})

    @applies("Deposited")
    def _deposited(self, data: dict) -> None:
        self.balance_cents += data["amount_cents"]

from shared.events import upcaster


@upcaster("Deposited", from_version=1)
def deposited_v1_to_v2(data: dict) -> dict:
    # v1 had no memo.
    data.setdefault("memo", "")
    return data

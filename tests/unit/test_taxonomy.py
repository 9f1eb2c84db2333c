from shared.taxonomy import TERMINAL_STATUSES, Module, Status, Substatus, infer_module


def test_top_level_statuses_are_the_designed_nine() -> None:
    assert [s.value for s in Status] == [
        "pending",
        "info_received",
        "in_transit",
        "out_for_delivery",
        "failed_attempt",
        "available_for_pickup",
        "delivered",
        "exception",
        "returned",
    ]


def test_substatuses_cover_customs_and_handover() -> None:
    needed = {
        "picked_up",
        "arrived_hub",
        "departed_hub",
        "export_customs_presented",
        "export_customs_held",
        "export_customs_released",
        "departed_origin_country",
        "arrived_destination_country",
        "import_customs_presented",
        "import_customs_held",
        "import_customs_released",
        "duties_payable",
        "duties_paid",
        "handed_over",
        "address_issue",
        "recipient_unavailable",
        "refused",
        "damaged",
        "lost",
        "delayed",
        "returning",
    }
    assert needed <= {s.value for s in Substatus}


def test_terminal_statuses() -> None:
    assert TERMINAL_STATUSES == {Status.DELIVERED, Status.RETURNED}


def test_module_inference() -> None:
    assert infer_module(Status.IN_TRANSIT, Substatus.PICKED_UP) is Module.ORIGIN
    assert infer_module(Status.EXCEPTION, Substatus.IMPORT_CUSTOMS_HELD) is Module.INTERNATIONAL
    assert infer_module(Status.DELIVERED, None) is Module.DESTINATION
    assert infer_module(Status.IN_TRANSIT, None) is None

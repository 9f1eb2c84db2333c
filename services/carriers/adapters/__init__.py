"""Carrier adapters, one module per carrier; ``ADAPTERS`` maps carrier id → adapter."""

from __future__ import annotations

from services.carriers.adapters.aftership import AftershipAdapter
from services.carriers.adapters.australia_post import AustraliaPostAdapter
from services.carriers.adapters.base import Adapter, ParseError, ParseResult
from services.carriers.adapters.cainiao import CainiaoAdapter
from services.carriers.adapters.canada_post import CanadaPostAdapter
from services.carriers.adapters.china_post import ChinaPostAdapter
from services.carriers.adapters.dhl import DhlAdapter
from services.carriers.adapters.easypost import EasypostAdapter
from services.carriers.adapters.fedex import FedexAdapter
from services.carriers.adapters.fourpx import FourPxAdapter
from services.carriers.adapters.la_poste import LaPosteAdapter
from services.carriers.adapters.royal_mail import RoyalMailAdapter
from services.carriers.adapters.sf_express import SfExpressAdapter
from services.carriers.adapters.track17 import Track17Adapter
from services.carriers.adapters.ups import UpsAdapter
from services.carriers.adapters.upu import UpuAdapter
from services.carriers.adapters.usps import UspsAdapter
from services.carriers.adapters.yanwen import YanwenAdapter
from services.carriers.adapters.yunexpress import YunExpressAdapter

_ALL: tuple[Adapter, ...] = (
    # postal
    UpuAdapter(),
    ChinaPostAdapter(),
    UspsAdapter(),
    RoyalMailAdapter(),
    LaPosteAdapter(),
    AustraliaPostAdapter(),
    CanadaPostAdapter(),
    # express
    DhlAdapter(),
    UpsAdapter(),
    FedexAdapter(),
    # cross-border and overseas
    FourPxAdapter(),
    YanwenAdapter(),
    YunExpressAdapter(),
    CainiaoAdapter(),
    SfExpressAdapter(),
    # aggregator feeds (received as webhooks)
    Track17Adapter(),
    AftershipAdapter(),
    EasypostAdapter(),
)
ADAPTERS: dict[str, Adapter] = {a.carrier: a for a in _ALL}

__all__ = ["ADAPTERS", "Adapter", "ParseError", "ParseResult"]

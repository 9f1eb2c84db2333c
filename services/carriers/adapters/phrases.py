"""Words carriers write: status phrases, place names, carrier names, and the personal data to hide.

Shared by the adapters whose carriers describe scans mostly in free text (UPS, FedEx and the
Chinese cross-border carriers). Everything here is a pure function over module-level tables.
English keywords match at the start of a word; Chinese keywords match anywhere (no word breaks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.schema import Handoff
from shared.taxonomy import Status, Substatus

S, U = Status, Substatus

# (keywords, status or None to keep the caller's base status, substatus); first match wins, so
# the specific phrases come before the general ones ("not delivered" before "delivered").
# fmt: off
TEXT_RULES: tuple[tuple[tuple[str, ...], Status | None, Substatus | None], ...] = (
    (("returned to shipper", "returned to sender", "returned to consignor", "return completed",
      "已退回", "退回成功"), S.RETURNED, None),
    (("return to sender", "return to shipper", "being returned", "returning to sender",
      "returned to origin facility", "退回", "退件"), S.EXCEPTION, U.RETURNING),
    (("duties paid", "duty paid", "taxes paid", "税费已支付"), None, U.DUTIES_PAID),
    (("duties", "duty", "import tax", "taxes due", "税费"), None, U.DUTIES_PAYABLE),
    (("clearance delay", "customs delay", "held by customs", "held in customs", "customs hold",
      "held for customs", "awaiting customs", "customs documents", "customs inspection",
      "detained by customs", "扣关", "海关扣", "查验"), S.EXCEPTION, U.IMPORT_CUSTOMS_HELD),
    (("clearance processing complete", "clearance complete", "customs cleared", "cleared customs",
      "released by customs", "released from customs", "customs release", "clearance release",
      "clearance success", "export approved", "shipment release", "清关完成", "清关成功",
      "已放行", "放行"), None, U.IMPORT_CUSTOMS_RELEASED),
    (("customs", "clearance", "清关", "报关", "海关"), None, U.IMPORT_CUSTOMS_PRESENTED),
    (("bad address", "incorrect address", "address incorrect", "insufficient address",
      "address unknown", "unknown address", "address issue", "地址不详", "地址错误"),
     S.EXCEPTION, U.ADDRESS_ISSUE),
    (("refused", "rejected by recipient", "拒收"), S.EXCEPTION, U.REFUSED),
    (("damage", "破损"), S.EXCEPTION, U.DAMAGED),
    (("lost", "cannot be located", "missing", "丢失", "遗失"), S.EXCEPTION, U.LOST),
    (("not home", "recipient not available", "receiver was not available",
      "customer not available", "consignee not available", "no one available",
      "recipient unavailable", "closed on arrival", "business closed", "联系不上收件人"),
     S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE),
    (("delivery attempt", "delivery attempted", "attempted delivery", "first attempt",
      "could not be delivered", "unable to deliver", "not delivered", "delivery failed",
      "unsuccessful delivery", "delivery exception", "派送不成功", "派送失败", "派件失败"),
     S.FAILED_ATTEMPT, None),
    (("awaiting collection", "ready for pickup", "ready for customer pickup", "ready for recipient pickup",
      "ready for collection", "available for pickup", "available for collection",
      "held at location", "pickup point", "parcel locker", "access point", "collection point",
      "signed by station", "待取件", "待自提", "自提", "驿站", "快递柜"),
     S.AVAILABLE_FOR_PICKUP, None),
    (("out for delivery", "with delivering courier", "out with courier", "on vehicle for delivery",
      "loaded for delivery", "on fedex vehicle for delivery", "派送中", "正在派送", "派件中",
      "派送途中", "派件"), S.OUT_FOR_DELIVERY, None),
    (("handed over", "handover", "hand over", "transferred to", "tendered to",
      "forwarded to third party", "delivered to airline", "delivered to the airline",
      "delivered to local carrier", "delivered to the local carrier", "delivered to post office",
      "delivered to the post office", "delivered to last mile", "delivered to carrier",
      "已交航", "交航", "交付", "移交", "转交"), None, U.HANDED_OVER),
    (("delivered", "signed for", "已签收", "签收"), S.DELIVERED, None),
    (("information received", "info received", "label created", "order created",
      "order information", "shipment data received", "electronic information",
      "pre-advice", "billing information", "shipment information sent",
      "信息已录入", "已下单", "订单已创建", "电子信息"), S.INFO_RECEIVED, None),
    (("departed origin country", "departed from origin country", "left the origin country",
      "departure from origin country", "departed country of origin", "flight departed",
      "departed from the country of origin", "航班起飞", "已起飞"), None, U.DEPARTED_ORIGIN_COUNTRY),
    (("arrived at destination country", "arrived in destination country",
      "arrived in the destination country", "arrival in destination country",
      "arrived at destination airport", "flight arrived", "arrived at the destination country",
      "到达目的国", "航班到达"), None, U.ARRIVED_DESTINATION_COUNTRY),
    (("picked up", "pickup", "pick-up", "collected from", "accepted", "received by carrier",
      "received by yanwen", "received by 4px", "shipment received", "收件", "揽收", "已收取"),
     None, U.PICKED_UP),
    (("delay", "mis-sort", "missort", "missed connection", "on hold", "延误"), None, U.DELAYED),
    (("arrived", "arrival", "到达", "已到达"), None, U.ARRIVED_HUB),
    (("depart", "left", "dispatched", "发往", "离开", "已发出"), None, U.DEPARTED_HUB),
)
# fmt: on


def _keyword(word: str) -> str:
    return rf"\b{re.escape(word)}" if word.isascii() else re.escape(word)


_RULES = tuple(
    (re.compile("|".join(_keyword(k) for k in keys), re.IGNORECASE), status, sub)
    for keys, status, sub in TEXT_RULES
)
_EXPORT_WORDS = re.compile(r"\bexport|出口|出境", re.IGNORECASE)
_IMPORT_WORDS = re.compile(r"\bimport|进口|入境", re.IGNORECASE)
EXPORT_SIDE: dict[Substatus, Substatus] = {
    U.IMPORT_CUSTOMS_PRESENTED: U.EXPORT_CUSTOMS_PRESENTED,
    U.IMPORT_CUSTOMS_HELD: U.EXPORT_CUSTOMS_HELD,
    U.IMPORT_CUSTOMS_RELEASED: U.EXPORT_CUSTOMS_RELEASED,
}


@dataclass(frozen=True)
class TextMatch:
    status: Status | None
    substatus: Substatus | None


def classify_text(text: str) -> TextMatch | None:
    """The first rule whose keyword occurs in ``text``, or None."""
    for pattern, status, substatus in _RULES:
        if pattern.search(text):
            return TextMatch(status, substatus)
    return None


def says_export(text: str) -> bool:
    return bool(_EXPORT_WORDS.search(text))


def says_import(text: str) -> bool:
    return bool(_IMPORT_WORDS.search(text))


# --- places -------------------------------------------------------------------------------------

# fmt: off
COUNTRY_NAMES: dict[str, str] = {
    "UNITED STATES": "US", "UNITED STATES OF AMERICA": "US", "USA": "US", "AMERICA": "US",
    "UNITED KINGDOM": "GB", "GREAT BRITAIN": "GB", "UK": "GB", "ENGLAND": "GB",
    "GERMANY": "DE", "FRANCE": "FR", "SPAIN": "ES", "ITALY": "IT", "NETHERLANDS": "NL",
    "BELGIUM": "BE", "POLAND": "PL", "SWEDEN": "SE", "AUSTRIA": "AT", "SWITZERLAND": "CH",
    "IRELAND": "IE", "PORTUGAL": "PT", "DENMARK": "DK", "NORWAY": "NO", "FINLAND": "FI",
    "CZECH REPUBLIC": "CZ", "CZECHIA": "CZ", "HUNGARY": "HU", "GREECE": "GR", "ROMANIA": "RO",
    "CHINA": "CN", "CHINA MAINLAND": "CN", "MAINLAND CHINA": "CN", "HONG KONG": "HK",
    "HONGKONG": "HK", "MACAU": "MO", "MACAO": "MO", "TAIWAN": "TW", "JAPAN": "JP",
    "SOUTH KOREA": "KR", "KOREA": "KR", "SINGAPORE": "SG", "MALAYSIA": "MY", "THAILAND": "TH",
    "VIETNAM": "VN", "PHILIPPINES": "PH", "INDIA": "IN", "AUSTRALIA": "AU", "NEW ZEALAND": "NZ",
    "CANADA": "CA", "MEXICO": "MX", "BRAZIL": "BR", "RUSSIA": "RU", "RUSSIAN FEDERATION": "RU",
    "ISRAEL": "IL", "TURKEY": "TR", "UNITED ARAB EMIRATES": "AE", "SOUTH AFRICA": "ZA",
    "中国": "CN", "美国": "US", "英国": "GB", "德国": "DE", "法国": "FR", "西班牙": "ES",
    "意大利": "IT", "荷兰": "NL", "日本": "JP", "韩国": "KR", "澳大利亚": "AU", "加拿大": "CA",
    "香港": "HK", "澳门": "MO", "台湾": "TW",
}
# Hubs and gateways that appear without a country in free-text locations.
CITY_COUNTRIES: dict[str, str] = {
    "SHENZHEN": "CN", "GUANGZHOU": "CN", "DONGGUAN": "CN", "FOSHAN": "CN", "ZHONGSHAN": "CN",
    "YIWU": "CN", "JINHUA": "CN", "HANGZHOU": "CN", "NINGBO": "CN", "SHANGHAI": "CN",
    "BEIJING": "CN", "XIAMEN": "CN", "QUANZHOU": "CN", "SUZHOU": "CN", "TIANJIN": "CN",
    "CHENGDU": "CN", "WUHAN": "CN", "ZHENGZHOU": "CN", "HONG KONG": "HK",
    "LOS ANGELES": "US", "NEW YORK": "US", "JAMAICA": "US", "CHICAGO": "US", "MIAMI": "US",
    "BALTIMORE": "US", "LINTHICUM HEIGHTS": "US", "MEMPHIS": "US", "LOUISVILLE": "US",
    "LONDON": "GB", "HEATHROW": "GB", "COVENTRY": "GB", "MADRID": "ES", "BARCELONA": "ES",
    "PARIS": "FR", "ROISSY": "FR", "FRANKFURT": "DE", "LEIPZIG": "DE", "COLOGNE": "DE",
    "AMSTERDAM": "NL", "LIEGE": "BE", "TOKYO": "JP", "SYDNEY": "AU", "TORONTO": "CA",
    "深圳": "CN", "广州": "CN", "东莞": "CN", "义乌": "CN", "上海": "CN", "北京": "CN",
    "杭州": "CN", "佛山": "CN",
}
# Two-letter US state codes; "BALTIMORE, MD" is in Maryland, not in Moldova.
US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM "
    "NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR".split()
)
# fmt: on
KNOWN_ISO2 = frozenset(COUNTRY_NAMES.values())
_CJK = re.compile(r"[\u4e00-\u9fff]")


def country_in_text(text: str) -> str | None:
    """ISO-2 country named by a free-text place ("Los Angeles, CA, US", "MARYLAND, US", "深圳市")."""
    parts = [p.strip().upper() for p in re.split(r"[,，/|]", text) if p.strip()]
    if not parts:
        return None
    last = parts[-1]
    if last in COUNTRY_NAMES:
        return COUNTRY_NAMES[last]
    for part in parts:
        if part in CITY_COUNTRIES:
            return CITY_COUNTRIES[part]
    if len(last) == 2 and last in US_STATES and len(parts) == 2:
        # "LYON, DE" and "DOVER, DE" look alike: only a known city tells them apart
        return None if last in KNOWN_ISO2 else "US"
    if len(last) == 2 and last in KNOWN_ISO2:
        return last
    if len(last) == 2 and last in US_STATES and len(parts) > 2:
        return "US"
    return _country_in_words(text)


def _country_in_words(text: str) -> str | None:
    upper = text.upper()
    for name, code in (*COUNTRY_NAMES.items(), *CITY_COUNTRIES.items()):
        if name.isascii():
            if len(name) > 3 and re.search(rf"\b{re.escape(name)}\b", upper):
                return code
        elif name in text:
            return code
    if _CJK.search(text):  # a Chinese place name without a country is on the mainland
        return "CN"
    return None


def city_in_text(text: str) -> str | None:
    head = re.split(r"[,，]", text)[0].strip()
    return head or None


# --- hand-offs ------------------------------------------------------------------------------------

# Carrier names as carriers write them → the carrier ids used by Throughline's adapters.
# fmt: off
CARRIER_NAMES: dict[str, str] = {
    "USPS": "usps", "UNITED STATES POSTAL SERVICE": "usps", "ROYAL MAIL": "royal-mail",
    "PARCELFORCE": "royal-mail", "LA POSTE": "la-poste", "COLISSIMO": "la-poste",
    "DEUTSCHE POST": "deutsche-post", "DHL": "dhl", "UPS": "ups", "FEDEX": "fedex",
    "CANADA POST": "canada-post", "AUSTRALIA POST": "australia-post", "POSTNL": "postnl",
    "CORREOS": "correos", "POSTE ITALIANE": "poste-italiane", "JAPAN POST": "japan-post",
    "EVRI": "evri", "HERMES": "evri", "GLS": "gls", "DPD": "dpd", "CORREIOS": "correios",
    "ONTRAC": "ontrac", "YODEL": "yodel", "SEUR": "seur", "BPOST": "bpost",
}
# fmt: on
_CARRIER_RE = re.compile(
    r"\b(" + "|".join(re.escape(n) for n in sorted(CARRIER_NAMES, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_HANDOFF_CUE = re.compile(
    r"last[- ]mile|handed over|hand over|transferred|tendered|local carrier|delivery partner|"
    r"new tracking|转单|换单|尾程|移交|交给",
    re.IGNORECASE,
)
_NUMBER_AFTER_LABEL = re.compile(
    r"(?:tracking\s*(?:number|no\.?|#)?|number|no\.|#|单号)\s*(?:is\s*)?[:：]?\s*"
    r"(?P<number>[A-Z0-9]{8,34})\b",
    re.IGNORECASE,
)


def carrier_in_text(text: str, exclude: str | None = None) -> str | None:
    for match in _CARRIER_RE.finditer(text):
        carrier = CARRIER_NAMES[match.group(1).upper()]
        if carrier != exclude:
            return carrier
    return None


def handoff_in_text(text: str, own_carrier: str, own_numbers: set[str]) -> Handoff | None:
    """A transfer announced in prose: a hand-off cue and a labelled number that is not ours."""
    if not _HANDOFF_CUE.search(text):
        return None
    for match in _NUMBER_AFTER_LABEL.finditer(text):
        number = match.group("number").upper()
        if number in own_numbers or sum(ch.isdigit() for ch in number) < 6:
            continue
        carrier = carrier_in_text(text, exclude=own_carrier)
        return Handoff(carrier=carrier, tracking_number=number, evidence="text", confidence=0.7)
    return None


# --- personal data --------------------------------------------------------------------------------

REDACTED = "[redacted]"
_PHRASES_BEFORE_A_NAME = (
    re.compile(
        r"((?:signed\s+(?:for\s+)?by|received\s+by|receiver|recipient|consignee)\s*:\s*)"
        r"[^,;.\n()]+",
        re.IGNORECASE,
    ),
    re.compile(r"((?:signed\s+(?:for\s+)?by)\s+)[^,;.\n()]+", re.IGNORECASE),
    re.compile(r"(签收人\s*(?:是|为)?\s*[:：]?\s*)[^\s,，。;；()（）]+"),
    re.compile(r"(交给\s*)[^\s,，。;；()（）]{1,8}?(?=[,，。;；\s(（]|正在|派送)"),
    re.compile(
        r"((?:派送员|快递员|收派员|courier)\s*[:：]?\s*)[^\s,，。;；()（）]{1,12}", re.IGNORECASE
    ),
    re.compile(r"((?:联系电话|电话|手机|phone|tel)\s*[:：]?\s*)[+\d][\d\s-]{5,}\d", re.IGNORECASE),
)
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)")


def personal_names(*values: object) -> list[str]:
    """Non-empty strings of at least three characters, longest first (so "Ann Lee" beats "Ann")."""
    found = {v.strip() for v in values if isinstance(v, str) and len(v.strip()) >= 3}
    return sorted(found, key=len, reverse=True)


def redact(text: str, names: list[str]) -> str:
    """``text`` without the names, signatories, couriers and phone numbers it may carry."""
    for pattern in _PHRASES_BEFORE_A_NAME:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    text = _MOBILE.sub(REDACTED, text)
    for name in names:
        text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", REDACTED, text, flags=re.IGNORECASE)
    return text

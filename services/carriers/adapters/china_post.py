"""China Post / EMS ePacket partner API (``GET /partner/api/public/p/track/query/{en|cn}/{number}``).

Quirks handled (reference/carrier-contracts.md §5.3):
- the body is XML (``<traces><trace><acceptTime/><acceptAddress/><remark/></trace>…``), read
  through defusedxml only (an entity bomb is a ``malformed`` error, not a hang);
- there is no tracking number in the body: events carry the number that was asked for;
- there are no codes: the English remarks ("Posting", "Despatch from Sorting Center", UPU labels
  such as "Departure from outward office of exchange") and the Chinese ones ("收寄", "离开苏州市
  发往纽约肯尼迪机场（经转）", "到达投递局", "妥投") are mapped to UPU EMSEVT codes where they say
  one, else to a status; the UPU-style variant's optional ``<code>`` element (``EMC``) wins;
- ``acceptTime`` is ``YYYY-MM-DD HH:MM:SS`` without an offset, Beijing time for Chinese offices
  (and when no place is named): the instant comes from Asia/Shanghai; at a foreign place (an IMPC
  such as ``USJFKA``, or "NEW YORK,NY 10001") it is that place's local time, with no instant where
  the country has several zones; a ``+08:00`` stamped on a foreign event is the known defect and
  is kept but not trusted;
- ``acceptAddress`` is pinyin or Chinese plus an office code (``AnHuiShengChiZhouShi 24516700``):
  China; an address the adapter cannot place gives no country and no Beijing instant;
- events are listed oldest first; duplicates are dropped;
- an unknown number returns the literal body ``null`` (HTTP 200); an empty ``<traces/>`` is not
  found too; a JSON error object is a carrier error;
- signatories in delivery remarks (``签收人：…``, "signed by …") are redacted;
- arrival at a foreign inward office of exchange hands the same S10 number to that country's
  post (``handoff``, evidence ``acceptAddress``).
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from services.carriers.adapters.base import ParseResult, guarded
from services.carriers.adapters.postal import (
    KNOWN_COUNTRIES,
    Draft,
    Redactor,
    Route,
    child_text,
    children,
    failed,
    finish,
    load_json,
    load_xml,
    make_location,
    obj,
    postal_handoff,
    read_events,
    s10_origin,
    split_local,
    tag,
    text,
)
from services.carriers.adapters.upu import UPU_EVENTS, upu_code_for_text, upu_status
from shared.errors import InvalidInput
from shared.schema import Location
from shared.taxonomy import Module, Source, Status, Substatus
from shared.timeparse import ResolvedTime, resolve

CARRIER = "china-post"

S, U = Status, Substatus
# Chinese remarks → EMSEVT code; first match wins ("未妥投" before "妥投").
# fmt: off
CHINESE_CODES: tuple[tuple[str, str], ...] = (
    (r"未妥投|投递未成功|投递失败", "EMH"),
    (r"妥投|已签收|投递成功", "EMI"),
    (r"待自提|到达自提点|待取件", "EDH"),
    (r"安排投递|正在投递|投递中|派送中", "EDG"),
    (r"到达投递局|到达投递站", "EMG"),
    (r"出口.*(?:扣留|留存)|(?:扣留|留存).*出口", "EXB"),
    (r"出口.*放行|出口海关.*完成", "EXC"),
    (r"出口海关|海关出口|出口报关", "EXA"),
    (r"进口.*(?:扣留|留存)|海关.*(?:扣留|留存)", "EME"),
    (r"进口.*放行|海关.*放行|清关完成", "EDC"),
    (r"进口海关|海关进口|送交海关|进口报关", "EDB"),
    (r"到达寄达地|到达目的地|已到达寄达国", "EMD"),
    (r"交航|已交航空公司|航班起飞|离开.*互换局", "EMC"),
    (r"到达.*互换局", "EMB"),
    (r"收寄|揽收|已收件", "EMA"),
)
# Domestic steps without a UPU code: origin side before the export, destination side after.
DOMESTIC_TEXTS: tuple[tuple[str, Status, Substatus | None], ...] = (
    (r"arriv\w* at (?:the )?sorting cent|到达|arrived at", S.IN_TRANSIT, U.ARRIVED_HUB),
    (r"despatch\w* from (?:the )?sorting cent|dispatch\w* from|离开|发往|departed", S.IN_TRANSIT,
     U.DEPARTED_HUB),
    (r"return\w* to sender|退回|退件", S.EXCEPTION, U.RETURNING),
)
# fmt: on
_CHINESE = tuple((re.compile(p), code) for p, code in CHINESE_CODES)
_DOMESTIC = tuple((re.compile(p, re.IGNORECASE), st, sub) for p, st, sub in DOMESTIC_TEXTS)
_IMPC_IN_TEXT = re.compile(r"\b([A-Z]{6})\b")
_OFFICE_CODE = re.compile(r"\b\d{6,8}\b")
_CHINESE_PLACE = re.compile(r"Sheng|Shi\b|[\u4e00-\u9fff]")
_US_PLACE = re.compile(r",\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?$")


class ChinaPostAdapter:
    carrier = CARRIER
    name = "China Post / EMS (ePacket partner API)"

    def parse(
        self,
        payload: bytes,
        *,
        requested: str | None = None,
        raw_ref: str | None = None,
        source: Source = Source.POLL,
        http_status: int = 200,
    ) -> ParseResult:
        return guarded(_parse, payload, requested, raw_ref, source, http_status)


def _parse(
    payload: bytes, requested: str | None, raw_ref: str | None, source: Source, http_status: int
) -> ParseResult:
    body = payload.strip()
    if body in (b"null", b""):
        if http_status >= 400 and http_status != 404:
            return failed(requested, "carrier_error", f"HTTP {http_status}")
        return failed(requested, "not_found", "the carrier answered 'null': unknown number")
    if body[:1] in (b"{", b"["):
        return _json_error(body, requested, http_status)
    try:
        root = load_xml(body)
    except InvalidInput as exc:
        code = "carrier_error" if http_status >= 400 else "malformed"
        return failed(requested, code, str(exc))
    if tag(root) != "traces":
        return failed(requested, "malformed", f"expected <traces>, got <{tag(root)[:40]}>")
    if not requested:
        return failed(None, "malformed", "the body names no number and none was asked for")
    traces = children(root, "trace")
    if not traces:
        return failed(requested, "not_found", "no traces for this number")
    return _parse_traces(requested.strip().upper(), traces, raw_ref, source)


def _json_error(body: bytes, requested: str | None, http_status: int) -> ParseResult:
    try:
        doc = obj(load_json(body))
    except InvalidInput as exc:
        return failed(requested, "malformed", str(exc))
    message = text(doc.get("msg")) or text(doc.get("message")) or text(doc.get("error"))
    code = "not_found" if http_status == 404 else "carrier_error"
    return failed(requested, code, f"HTTP {http_status}: {message or 'error object'}")


def _parse_traces(
    number: str, traces: list[Element], raw_ref: str | None, source: Source
) -> ParseResult:
    redact = Redactor()
    drafts, errors = read_events(
        traces,
        lambda trace, position: _read_trace(trace, position, number, redact),
        number,
        "trace",
        skipped=(InvalidInput, ValueError, TypeError),
    )
    foreign = next((d.country for d in drafts if d.country and d.country != "CN"), None)
    route = Route(s10_origin(number) or "CN", foreign)
    return finish(
        CARRIER,
        number,
        drafts,
        raw_ref=raw_ref,
        source=source,
        newest_first=False,
        route=route,
        errors=errors,
    )


def _read_trace(trace: Element, position: int, number: str, redact: Redactor) -> Draft:
    accept_time = child_text(trace, "acceptTime")
    if not accept_time:
        raise InvalidInput("trace has no <acceptTime>")
    remark = redact(child_text(trace, "remark"))
    location = _location(child_text(trace, "acceptAddress"))
    country = location.country if location else None
    time = _time(accept_time, location, has_address=bool(child_text(trace, "acceptAddress")))
    explicit = child_text(trace, "code").upper()
    code = _code(explicit, remark)
    module: Module | None
    if code is not None:
        status, substatus, module = upu_status(code, remark)
    else:
        status, substatus, module = _domestic(remark)
    handoff = postal_handoff(country, number, "acceptAddress", 0.7) if code == "EMD" else None
    return Draft(
        position=position,
        raw_timestamp=accept_time,
        time=time,
        status=status,
        substatus=substatus,
        module=module,
        carrier_code=explicit if explicit in UPU_EVENTS else None,
        description=remark,
        location=location,
        handoff=handoff,
    )


def _time(accept_time: str, location: Location | None, *, has_address: bool) -> ResolvedTime:
    """Beijing time in China (and where no place is named); the office's own time abroad, where a
    stated +08:00 is the known defect and is not trusted; no instant for a place we cannot tell."""
    naive, offset = split_local(accept_time)
    country = location.country if location else None
    if country == "CN" or not has_address:
        return resolve(naive, offset, "CN")
    return resolve(naive, offset, country, trust_offset=False)


def _code(explicit: str, remark: str) -> str | None:
    if explicit in UPU_EVENTS:
        return explicit
    for pattern, code in _CHINESE:
        if pattern.search(remark):
            return code
    return upu_code_for_text(remark)


def _domestic(remark: str) -> tuple[Status, Substatus | None, Module | None]:
    for pattern, status, substatus in _DOMESTIC:
        if pattern.search(remark):
            return status, substatus, None
    return Status.IN_TRANSIT, None, None


def _location(address: str) -> Location | None:
    if not address:
        return None
    impc = next((m for m in _IMPC_IN_TEXT.findall(address) if m[:2] in KNOWN_COUNTRIES), None)
    if impc is not None:
        return make_location(facility=address, country=impc[:2])
    if _US_PLACE.search(address):
        return make_location(facility=address, country="US")
    china = _OFFICE_CODE.search(address) or _CHINESE_PLACE.search(address)
    return make_location(facility=address, country="CN" if china else None)

"""What the three aggregator adapters (17TRACK, AfterShip, EasyPost) share.

An aggregator relays many couriers' scans in its own taxonomy. Each adapter reads its format into
``Draft`` events, oldest first; this module reads them the same way for all three: text
refinement where the aggregator's code is generic, export or import side of customs, hand-offs,
personal data kept out. Module by position in the journey and the build with a deterministic
event id are ``assembly``'s, as for the polled carriers (every relayed event is kept, numbered in
the order given).

Conventions for every event these adapters emit (reference/carrier-contracts.md §7):

- ``carrier`` is the aggregator id (``17track``, ``aftership``, ``easypost``). The aggregator is the
  source that signed the push and that a raw payload is re-normalised with, so the leg is keyed by it.
- ``carrier_code`` is ``<courier>:<code>``: the aggregator's own identifier of the underlying courier
  (17TRACK integer key, AfterShip slug, EasyPost carrier name), then the most specific code the
  aggregator gives for the event. Raw identifiers, never mapped ones, so event ids survive a change
  of the mapping tables.
- ``handoff.carrier`` is a Throughline carrier id (``shared.numbers.CARRIER_IDS``: ``usps``,
  ``royal-mail``) where the aggregator's identifier maps to one, else ``<aggregator>:<identifier>``,
  or None when the aggregator does not say.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from services.carriers.adapters import assembly
from services.carriers.adapters.assembly import Route, assign_modules, build_events
from services.carriers.adapters.base import ParseError, ParseResult
from shared.errors import InvalidInput
from shared.numbers import CARRIER_IDS, normalise
from shared.schema import Handoff, Location
from shared.taxonomy import Module, Source, Status, Substatus

S, U = Status, Substatus
CodeTable = dict[str, tuple[Status | None, Substatus | None]]

# ISO 3166-1 alpha-3 → alpha-2 (AfterShip sends alpha-3), plus XKX for Kosovo as carriers use it.
_ISO3 = (
    "ABWAW AFGAF AGOAO AIAAI ALAAX ALBAL ANDAD AREAE ARGAR ARMAM ASMAS ATAAQ ATFTF ATGAG AUSAU "
    "AUTAT AZEAZ BDIBI BELBE BENBJ BESBQ BFABF BGDBD BGRBG BHRBH BHSBS BIHBA BLMBL BLRBY BLZBZ "
    "BMUBM BOLBO BRABR BRBBB BRNBN BTNBT BVTBV BWABW CAFCF CANCA CCKCC CHECH CHLCL CHNCN CIVCI "
    "CMRCM CODCD COGCG COKCK COLCO COMKM CPVCV CRICR CUBCU CUWCW CXRCX CYMKY CYPCY CZECZ DEUDE "
    "DJIDJ DMADM DNKDK DOMDO DZADZ ECUEC EGYEG ERIER ESHEH ESPES ESTEE ETHET FINFI FJIFJ FLKFK "
    "FRAFR FROFO FSMFM GABGA GBRGB GEOGE GGYGG GHAGH GIBGI GINGN GLPGP GMBGM GNBGW GNQGQ GRCGR "
    "GRDGD GRLGL GTMGT GUFGF GUMGU GUYGY HKGHK HMDHM HNDHN HRVHR HTIHT HUNHU IDNID IMNIM INDIN "
    "IOTIO IRLIE IRNIR IRQIQ ISLIS ISRIL ITAIT JAMJM JEYJE JORJO JPNJP KAZKZ KENKE KGZKG KHMKH "
    "KIRKI KNAKN KORKR KWTKW LAOLA LBNLB LBRLR LBYLY LCALC LIELI LKALK LSOLS LTULT LUXLU LVALV "
    "MACMO MAFMF MARMA MCOMC MDAMD MDGMG MDVMV MEXMX MHLMH MKDMK MLIML MLTMT MMRMM MNEME MNGMN "
    "MNPMP MOZMZ MRTMR MSRMS MTQMQ MUSMU MWIMW MYSMY MYTYT NAMNA NCLNC NERNE NFKNF NGANG NICNI "
    "NIUNU NLDNL NORNO NPLNP NRUNR NZLNZ OMNOM PAKPK PANPA PCNPN PERPE PHLPH PLWPW PNGPG POLPL "
    "PRIPR PRKKP PRTPT PRYPY PSEPS PYFPF QATQA REURE ROURO RUSRU RWARW SAUSA SDNSD SENSN SGPSG "
    "SGSGS SHNSH SJMSJ SLBSB SLESL SLVSV SMRSM SOMSO SPMPM SRBRS SSDSS STPST SURSR SVKSK SVNSI "
    "SWESE SWZSZ SXMSX SYCSC SYRSY TCATC TCDTD TGOTG THATH TJKTJ TKLTK TKMTM TLSTL TONTO TTOTT "
    "TUNTN TURTR TUVTV TWNTW TZATZ UGAUG UKRUA UMIUM URYUY USAUS UZBUZ VATVA VCTVC VENVE VGBVG "
    "VIRVI VNMVN VUTVU WLFWF WSMWS XKXXK YEMYE ZAFZA ZMBZM ZWEZW"
)
ISO3_TO_ISO2: dict[str, str] = {token[:3]: token[3:] for token in _ISO3.split()}

# Free-text rules, first match wins; a Latin keyword matches at the start of a word, so inflections
# match too ("delay" → "delayed"). A status of None keeps the status the aggregator gave. Customs
# rules name the import side; customs_side turns export ones round. Chinese keys cover the texts
# China Post and Cainiao relay through 17TRACK (reference/carrier-contracts.md §5.3).
# fmt: off
TEXT_RULES: tuple[tuple[tuple[str, ...], Status | None, Substatus | None], ...] = (
    (("returned to sender", "returned to shipper", "delivered to sender", "returned to origin",
      "退回妥投"), S.RETURNED, None),
    (("return to sender", "return to shipper", "returning to sender", "being returned", "退回"),
     S.EXCEPTION, U.RETURNING),
    (("duties paid", "duty paid", "taxes paid"), None, U.DUTIES_PAID),
    (("duties", "duty", "import tax", "taxes due"), None, U.DUTIES_PAYABLE),
    (("held by customs", "held in customs", "customs hold", "customs delay", "clearance delay",
      "awaiting customs", "customs inspection", "海关扣留"), None, U.IMPORT_CUSTOMS_HELD),
    (("customs cleared", "cleared customs", "clearance complete", "released by customs",
      "released from customs", "customs release", "清关完成", "放行"), None, U.IMPORT_CUSTOMS_RELEASED),
    (("customs", "clearance", "海关", "清关"), None, U.IMPORT_CUSTOMS_PRESENTED),
    (("departure from outward office of exchange", "departed origin country",
      "departed from origin country", "left the origin country"), None, U.DEPARTED_ORIGIN_COUNTRY),
    (("arrival at inward office of exchange", "arrived at destination country",
      "arrived in destination country", "arrived in the destination country"),
     None, U.ARRIVED_DESTINATION_COUNTRY),
    (("bad address", "incorrect address", "insufficient address", "address unknown",
      "unknown address", "address issue", "addressee moved"), S.EXCEPTION, U.ADDRESS_ISSUE),
    (("refused", "rejected by recipient", "拒收"), S.EXCEPTION, U.REFUSED),
    (("damage",), S.EXCEPTION, U.DAMAGED),
    (("lost", "cannot be located", "missing"), S.EXCEPTION, U.LOST),
    (("not home", "recipient not available", "addressee not available", "addressee absent",
      "no one available", "recipient unavailable", "business closed"),
     S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE),
    (("delivery attempt", "attempted delivery", "notice left", "could not be delivered",
      "unable to deliver", "not delivered", "undeliverable"), S.FAILED_ATTEMPT, None),
    (("available for pickup", "ready for pickup", "awaiting collection", "ready for collection",
      "available for collection", "待取件"), S.AVAILABLE_FOR_PICKUP, None),
    (("out for delivery", "with delivering courier", "on vehicle for delivery", "派送中", "投递中"),
     S.OUT_FOR_DELIVERY, None),
    (("delivered", "妥投", "签收"), S.DELIVERED, None),
    (("information received", "info received", "label created", "shipping label",
      "electronic information", "pre-shipment", "shipment information sent"), S.INFO_RECEIVED, None),
    (("handed over", "transferred to", "tendered to", "handover", "交航"), None, U.HANDED_OVER),
    (("picked up", "pickup", "pick-up", "accepted", "acceptance", "posting", "收寄", "揽收"),
     None, U.PICKED_UP),
    (("delay", "mis-sort", "missort", "missed connection", "on hold"), None, U.DELAYED),
    (("arrived", "arrival", "到达"), None, U.ARRIVED_HUB),
    (("depart", "left", "dispatch", "离开", "发往"), None, U.DEPARTED_HUB),
)
# fmt: on


def _keyword(key: str) -> str:
    return (r"\b" if key[0].isascii() else "") + re.escape(key)


_RULES = tuple(
    (re.compile("|".join(_keyword(k) for k in keys)), status, sub)
    for keys, status, sub in TEXT_RULES
)
_REFINABLE = frozenset({S.IN_TRANSIT, S.EXCEPTION, S.FAILED_ATTEMPT})
# A hub scan the text shows to be a border crossing or a customs step says more than the code.
_GENERIC = frozenset({U.ARRIVED_HUB, U.DEPARTED_HUB})
_SPECIFIC = frozenset(
    {
        U.DEPARTED_ORIGIN_COUNTRY,
        U.ARRIVED_DESTINATION_COUNTRY,
        U.IMPORT_CUSTOMS_PRESENTED,
        U.IMPORT_CUSTOMS_HELD,
        U.IMPORT_CUSTOMS_RELEASED,
    }
)
_SIGNED_BY = re.compile(
    r"((?:signed\s+(?:for\s+)?by|signature\s+of|签收人)\s*[:：]?\s*)[^,;.()]*", re.IGNORECASE
)
REDACTED = "[redacted]"


@dataclass(frozen=True, kw_only=True)
class Draft(assembly.Draft):
    """One event as read from an aggregator payload, with the courier that relayed it."""

    courier: str | None = None
    module: Module | None = None


# --- reading JSON without trusting it ----------------------------------------------------------


def load_object(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload)  # not orjson: it turns integers over 64 bits into floats
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidInput(f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInput("expected a JSON object")
    return doc


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def scalar(value: Any) -> str | None:
    """A JSON string or integer as text: courier keys and numbers arrive as either."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return text(value) or None


def country(value: Any) -> str | None:
    """ISO 3166-1 alpha-2 from an alpha-2 or alpha-3 code; None for anything else."""
    code = text(value).upper()
    if len(code) == 2 and code.isascii() and code.isalpha():
        return code
    return ISO3_TO_ISO2.get(code)


def guarded(
    parse: Callable[[bytes, str | None, str | None, Source], ParseResult],
    payload: bytes,
    requested: str | None,
    raw_ref: str | None,
    source: Source,
) -> ParseResult:
    """The parse boundary every aggregator shares: no payload may crash the caller's loop."""
    try:
        return parse(payload, requested, raw_ref, source)
    except InvalidInput as exc:
        return malformed(requested, str(exc))
    except Exception as exc:  # noqa: BLE001 - the boundary itself
        return malformed(requested, f"unexpected payload: {type(exc).__name__}: {exc}")


def malformed(number: str | None, message: str) -> ParseResult:
    return ParseResult(errors=[ParseError(number, "malformed", message)])


# --- classification -----------------------------------------------------------------------------


def classify(
    status: Status | None, substatus: Substatus | None, description: str
) -> tuple[Status, Substatus | None]:
    """The aggregator's classification, refined from the text where it is generic.

    ``status`` None means the aggregator gave no usable code: the text decides, in transit by
    default. A missing substatus is filled from the text, and a mere hub scan becomes a border
    crossing or customs step when the text says so. Terminal and destination statuses are kept as
    they are: the texts of those events ("left at the front door") only mislead.
    """
    lowered = description.lower()
    if status is None:
        for pattern, rule_status, rule_sub in _RULES:
            if pattern.search(lowered):
                return rule_status or S.IN_TRANSIT, rule_sub
        return S.IN_TRANSIT, substatus
    if status not in _REFINABLE or (substatus is not None and substatus not in _GENERIC):
        return status, substatus
    wanted = _SPECIFIC if substatus is not None else None
    for pattern, rule_status, rule_sub in _RULES:
        if rule_sub is None or rule_status not in (None, status):
            continue
        if (wanted is None or rule_sub in wanted) and pattern.search(lowered):
            return status, rule_sub
    return status, substatus


def lookup(table: CodeTable, code: str | None) -> tuple[Status | None, Substatus | None]:
    return table.get(code, (None, None)) if code else (None, None)


def customs_side(
    substatus: Substatus | None, description: str, where: str | None, route: Route
) -> Substatus | None:
    """``assembly.customs_side`` with the words the relayed texts use: "import", "export", 出口."""
    return assembly.customs_side(
        substatus, description, where, route, names_import=_names_import, names_export=_names_export
    )


def _names_import(description: str) -> bool:
    return "import" in description.lower()


def _names_export(description: str) -> bool:
    lowered = description.lower()
    return "export" in lowered or "出口" in lowered


# --- locations, hand-offs and personal data ------------------------------------------------------


def location(
    *,
    city: Any = None,
    region: Any = None,
    postal_code: Any = None,
    country_code: Any = None,
    label: Any = None,
    names: Sequence[str] = (),
) -> Location | None:
    """A location from the parts an aggregator gives; street lines are never read."""
    city_text = redact(text(city), names) or None
    region_text = text(region) or None
    postal = scalar(postal_code)
    iso2 = country(country_code)
    parts = [p for p in (postal, city_text, region_text, iso2) if p]
    shown = redact(text(label), names) or ", ".join(parts)
    if not shown:
        return None
    return Location(
        city=city_text, region=region_text, postal_code=postal, country=iso2, text=shown
    )


def handoff(
    value: Any, own_number: str, courier: str | None, evidence: str, confidence: float = 0.9
) -> Handoff | None:
    """A hand-off to ``value`` when it is a tracking number other than the parcel's own."""
    raw = scalar(value)
    if raw is None:
        return None
    try:
        number = normalise(raw)
    except InvalidInput:
        return None
    if number == re.sub(r"[\s-]", "", own_number).upper():
        return None
    return Handoff(
        carrier=courier, tracking_number=number, evidence=evidence, confidence=confidence
    )


def courier_id(aggregator: str, code: str | None, known: Mapping[str, str]) -> str | None:
    """The Throughline carrier id of an aggregator's courier identifier, else a namespaced one."""
    if not code:
        return None
    mapped = known.get(code, code)
    return mapped if mapped in CARRIER_IDS else f"{aggregator}:{code}"


def finish(
    shipment: assembly.Shipment,
    drafts: list[Draft],
    route: Route,
    found: Handoff | None,
    courier: str | None,
    errors: list[ParseError],
) -> ParseResult:
    """Events from drafts given oldest first: modules along the route, the hand-off ``found`` on the
    first event of the next ``courier`` (else on the newest), every event kept and numbered in
    order; events the schema refuses are added to ``errors``."""
    placed = _attach_handoff(assign_modules(drafts, route), found, courier)
    return ParseResult(build_events(shipment, enumerate(placed), errors), errors)


def _attach_handoff(drafts: list[Draft], found: Handoff | None, courier: str | None) -> list[Draft]:
    if found is None or not drafts:
        return drafts
    index = next(
        (i for i, d in enumerate(drafts) if courier and d.courier == courier), len(drafts) - 1
    )
    drafts[index] = replace(drafts[index], handoff=found)
    return drafts


def personal_names(*values: Any) -> list[str]:
    """Names (signers, recipients) to keep out of every event, longest first."""
    found = {text(v) for v in values if len(text(v)) >= 3}
    return sorted(found, key=len, reverse=True)


def redact(value: str, names: Sequence[str]) -> str:
    value = _SIGNED_BY.sub(lambda m: m.group(1) + REDACTED, value)
    for name in names:
        value = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", REDACTED, value, flags=re.IGNORECASE)
    return value


def courier_code(courier: str | None, code: str | None) -> str | None:
    """``<courier>:<code>``, or whichever half is known."""
    if courier and code:
        return f"{courier}:{code}"
    return courier or code

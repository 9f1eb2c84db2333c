"""The named multi-carrier journeys the simulator can play (``POST /_sim/journeys``).

Each builds its legs from the first leg's number and a seed (see ``multileg``). Scans use each
sandbox's own vocabulary: UPU EMSEVT codes for the posts, activity codes for UPS, event types for
FedEx, opCodes for SF Express, action codes for Cainiao, prose for 4PX.
"""

from __future__ import annotations

from datetime import timedelta

from services.simulator.carriers import Scan
from services.simulator.multileg import Itinerary, Leg, Plan, PlannedOutage
from services.simulator.waybills import (
    cainiao_number,
    fedex_express_number,
    fourpx_number,
    s10_number,
    sf_express_number,
    ups_number,
)

__all__ = ["ITINERARIES"]

SHANGHAI, HONG_KONG = "Asia/Shanghai", "Asia/Hong_Kong"
NEW_YORK, CHICAGO, LOS_ANGELES = "America/New_York", "America/Chicago", "America/Los_Angeles"
LOUISVILLE = "America/Kentucky/Louisville"
LONDON, PARIS, BERLIN, MADRID = "Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Madrid"
ORIGIN, INTERNATIONAL, DESTINATION = "origin", "international", "destination"


def at(
    hours: float, code: str, text: str, city: str | None, country: str, zone: str | None
) -> Scan:
    return Scan(timedelta(hours=hours), code, text, city, country, zone)


# --- (a) ePacket China → US: one S10 number at China Post, the UPU network and USPS ---------------


def _epacket_cn_us(number: str, seed: int) -> Plan:
    china_post = (
        at(0, "EMA", "Posting", "SUZHOU", "CN", SHANGHAI),
        at(7.5, "ARR", "Arrival at Sorting Center", "SUZHOU", "CN", SHANGHAI),
        at(13, "DEP", "Despatch from Sorting Center", "SUZHOU", "CN", SHANGHAI),
        at(25, "EXA", "Handed over to export customs", "SHANGHAI", "CN", SHANGHAI),
        at(29, "EXC", "Export customs clearance completed", "SHANGHAI", "CN", SHANGHAI),
        at(38.5, "EMC", "Departure from outward office of exchange", "SHANGHAI", "CN", SHANGHAI),
        at(104, "EMD", "Arrival at inward office of exchange", "JFK", "US", NEW_YORK),
    )
    upu = (
        at(0, "EMA", "Posting/collection", "SUZHOU", "CN", SHANGHAI),
        at(20, "EMB", "Arrival at outward office of exchange", "SHANGHAI", "CN", SHANGHAI),
        at(25, "EXA", "Item presented to export customs", "SHANGHAI", "CN", SHANGHAI),
        at(29, "EXC", "Item returned from export customs", "SHANGHAI", "CN", SHANGHAI),
        at(38.5, "EMC", "Departure from outward office of exchange", "SHANGHAI", "CN", SHANGHAI),
        at(104, "EMD", "Arrival at inward office of exchange", "JFK", "US", NEW_YORK),
        at(106, "EDB", "Item presented to import customs", "JFK", "US", NEW_YORK),
        at(118, "EDC", "Item returned from import customs", "JFK", "US", NEW_YORK),
        at(121, "EMF", "Departure from inward office of exchange", "JFK", "US", NEW_YORK),
        at(150, "EMG", "Arrival at delivery office", "NEW YORK", "US", NEW_YORK),
        at(152, "EDG", "Item out for physical delivery", "NEW YORK", "US", NEW_YORK),
        at(158, "EMI", "Final delivery", "NEW YORK", "US", NEW_YORK),
    )
    usps = (
        at(106, "EDB", "", "ISC NEW YORK NY(USPS)", "US", NEW_YORK),
        at(118, "EDC", "", "ISC NEW YORK NY(USPS)", "US", NEW_YORK),
        at(130, "EDD", "", "QUEENS NY DISTRIBUTION CENTER", "US", NEW_YORK),
        at(150, "EMG", "", "QUEENS, NY", "US", NEW_YORK),
        at(152, "EDG", "", "QUEENS, NY", "US", NEW_YORK),
        at(158, "EMI", "", "QUEENS, NY", "US", NEW_YORK),
    )
    return Plan(
        (
            Leg("china-post", number, china_post, (ORIGIN, INTERNATIONAL)),
            Leg("upu", number, upu, (INTERNATIONAL,)),
            Leg("usps", number, usps, (INTERNATIONAL, DESTINATION)),
        )
    )


# --- (b) 4PX → Royal Mail: a new last-mile number announced at the hand-off ----------------------


def _fourpx_royal_mail(number: str, seed: int) -> Plan:
    last_mile = s10_number("TT", "GB", seed)
    fourpx = (
        at(0, "FPX_L_RPIF", "Parcel information received", "Shenzhen", "CN", SHANGHAI),
        at(9, "FPX_C_AAF", "Arrived at 4PX Shenzhen sorting center", "Shenzhen", "CN", SHANGHAI),
        at(17, "FPX_C_ADF", "Departed from 4PX sorting center", "Shenzhen", "CN", SHANGHAI),
        at(35, "", "Export customs clearance completed", "Hong Kong", "HK", HONG_KONG),
        at(40, "", "Flight departed from Hong Kong", "Hong Kong", "HK", HONG_KONG),
        at(58, "", "Arrived at destination airport", "London Heathrow, GB", "GB", LONDON),
        at(76, "", "Import customs clearance completed", "London Heathrow, GB", "GB", LONDON),
        at(82, "", f"Handed over to last mile carrier Royal Mail, tracking number: {last_mile}",
           "Coventry, GB", "GB", LONDON),
    )  # fmt: skip
    royal_mail = (
        at(84, "EVDAC", "Item received at Royal Mail Coventry Mail Centre", "Coventry Mail Centre",
           "GB", LONDON),
        at(96, "EMG", "", "Manchester Delivery Office", "GB", LONDON),
        at(99, "EDG", "", "Manchester Delivery Office", "GB", LONDON),
        at(104, "EMI", "", "Manchester Delivery Office", "GB", LONDON),
    )  # fmt: skip
    return Plan(
        (
            Leg("4px", number, fourpx, (ORIGIN, INTERNATIONAL)),
            Leg("royal-mail", last_mile, royal_mail, (DESTINATION,)),
        )
    )


# --- (d) a failed attempt, then collection at a pickup point --------------------------------------


def _ups_failed_attempt_pickup(number: str, seed: int) -> Plan:
    scans = (
        at(0, "MP", "Shipper created a label, UPS has not received the package yet.", "NEUSS", "DE",
           BERLIN),
        at(8, "OR", "Pickup Scan", "NEUSS", "DE", BERLIN),
        at(12, "DP", "Departed from Facility", "KOELN", "DE", BERLIN),
        at(23, "AR", "Arrived at Facility", "LOUISVILLE, KY", "US", LOUISVILLE),
        at(26, "SR", "Your package was released by the customs agency.", "LOUISVILLE, KY", "US",
           LOUISVILLE),
        at(31, "DP", "Departed from Facility", "LOUISVILLE, KY", "US", LOUISVILLE),
        at(37, "AR", "Arrived at Facility", "ATLANTA, GA", "US", NEW_YORK),
        at(41, "OT", "Out For Delivery Today", "ATLANTA, GA", "US", NEW_YORK),
        at(47, "48", "The receiver was not available for delivery. A notice was left.",
           "ATLANTA, GA", "US", NEW_YORK),
        at(50, "ZP", "Delivered to UPS Access Point\u2122 and awaiting customer pickup",
           "ATLANTA, GA", "US", NEW_YORK),
        at(68, "FS", "DELIVERED", "ATLANTA, GA", "US", NEW_YORK),
    )  # fmt: skip
    return Plan((Leg("ups", number, scans, (ORIGIN, INTERNATIONAL, DESTINATION)),))


def _fedex_failed_attempt_pickup(number: str, seed: int) -> Plan:
    scans = (
        at(0, "OC", "Shipment information sent to FedEx", "SHENZHEN", "CN", SHANGHAI),
        at(10, "PU", "Picked up", "SHENZHEN", "CN", SHANGHAI),
        at(14, "AR", "Arrived at FedEx location", "GUANGZHOU", "CN", SHANGHAI),
        at(20, "CC", "International shipment release - Export", "GUANGZHOU", "CN", SHANGHAI),
        at(23, "DP", "Departed FedEx hub", "GUANGZHOU", "CN", SHANGHAI),
        at(40, "AR", "Arrived at FedEx hub", "MEMPHIS, TN", "US", CHICAGO),
        at(44, "CC", "International shipment release - Import", "MEMPHIS, TN", "US", CHICAGO),
        at(50, "DP", "Departed FedEx hub", "MEMPHIS, TN", "US", CHICAGO),
        at(60, "AR", "At local FedEx facility", "IRVINE, CA", "US", LOS_ANGELES),
        at(62, "OD", "On FedEx vehicle for delivery", "IRVINE, CA", "US", LOS_ANGELES),
        at(67, "DE/08", "Delivery exception", "IRVINE, CA", "US", LOS_ANGELES),
        at(71, "HL", "Ready for recipient pickup", "IRVINE, CA", "US", LOS_ANGELES),
        at(89, "DL", "Delivered", "IRVINE, CA", "US", LOS_ANGELES),
    )
    return Plan((Leg("fedex", number, scans, (ORIGIN, INTERNATIONAL, DESTINATION)),))


# --- (e) held by import customs, duties to pay, then released ---------------------------------------


def _ups_customs_duties(number: str, seed: int) -> Plan:
    louisville = ("LOUISVILLE, KY", "US", LOUISVILLE)
    scans = (
        at(0, "MP", "Shipper created a label, UPS has not received the package yet.", "NEUSS", "DE",
           BERLIN),
        at(8, "OR", "Pickup Scan", "NEUSS", "DE", BERLIN),
        at(12, "DP", "Departed from Facility", "KOELN", "DE", BERLIN),
        at(23, "AR", "Arrived at Facility", *louisville),
        at(27, "HC", "Your package is being held by customs: the importer's documents are "
           "required.", *louisville),
        at(40, "HC", "Import duties and taxes are due from the receiver before release.",
           *louisville),
        at(50, "KB", "Duties and taxes paid by the receiver.", *louisville),
        at(58, "SR", "Your package was released by the customs agency.", *louisville),
        at(61, "DP", "Departed from Facility", *louisville),
        at(67, "AR", "Arrived at Facility", "ATLANTA, GA", "US", NEW_YORK),
        at(71, "OT", "Out For Delivery Today", "ATLANTA, GA", "US", NEW_YORK),
        at(76, "FS", "DELIVERED", "ATLANTA, GA", "US", NEW_YORK),
    )  # fmt: skip
    return Plan((Leg("ups", number, scans, (ORIGIN, INTERNATIONAL, DESTINATION)),))


# --- (f) lost in the linehaul: nothing after departure from the outward office of exchange -------


def _epacket_lost(number: str, seed: int) -> Plan:
    scans = (
        at(0, "EMA", "Posting", "SHENZHEN", "CN", SHANGHAI),
        at(8, "ARR", "Arrival at Sorting Center", "SHENZHEN", "CN", SHANGHAI),
        at(14, "DEP", "Despatch from Sorting Center", "SHENZHEN", "CN", SHANGHAI),
        at(24, "EXA", "Handed over to export customs", "GUANGZHOU", "CN", SHANGHAI),
        at(31, "EMC", "Departure from outward office of exchange", "GUANGZHOU", "CN", SHANGHAI),
    )
    return Plan(
        (
            Leg("china-post", number, scans, (ORIGIN, INTERNATIONAL)),
            Leg("upu", number, scans, (INTERNATIONAL,)),
        )
    )


# --- (g) return to sender: not collected from the pickup point ------------------------------------


def _colissimo_return(number: str, seed: int) -> Plan:
    def fr(hours: float, code: str, text: str = "") -> Scan:
        return at(hours, code, text, "PARIS", "FR", PARIS)

    scans = (
        fr(0, "EMA"),
        fr(10, "EMB"),
        fr(30, "EMG"),
        fr(32, "EDG"),
        fr(35, "EMH"),
        fr(40, "EDH"),
        fr(60, "RE1", "Votre colis n'a pas été retiré : il est retourné à l'expéditeur."),
        fr(70, "DI2", "Votre colis a été distribué à l'expéditeur."),
    )
    return Plan((Leg("la-poste", number, scans, (ORIGIN, DESTINATION)),))


# --- (h) the same scan sent twice, and a scan reported after the delivery -------------------------


def _sf_duplicates_late(number: str, seed: int) -> Plan:
    def bj(hours: float, code: str, text: str, city: str) -> Scan:
        return at(hours, code, text, city, "CN", SHANGHAI)

    scans = (
        bj(0, "54", "顺丰速运 已收取快件", "深圳市"),
        bj(3.5, "30", "快件在【深圳宝安集散中心】完成分拣,准备发往 【北京顺义集散中心】", "深圳市"),
        bj(3.5, "30", "快件在【深圳宝安集散中心】完成分拣,准备发往 【北京顺义集散中心】", "深圳市"),
        bj(14.7, "31", "快件到达 【北京顺义集散中心】", "北京市"),
        bj(15.9, "30", "快件在【北京顺义集散中心】完成分拣,准备发往 【北京朝阳营业点】", "北京市"),
        bj(17.5, "44", "快件已到达【北京朝阳营业点】,正在派送途中", "北京市"),
        bj(21, "80", "已签收,感谢使用顺丰,期待再次为您服务", "北京市"),
    )  # fmt: skip
    # The hub's sort scan (index 4) reaches the API only after the delivery has been reported.
    return Plan((Leg("sf-express", number, scans, (ORIGIN, DESTINATION), late=((4, 12.0),)),))


# --- (i) a carrier outage: the API answers 503 for a while, then catches up -------------------------


def _cainiao_outage(number: str, seed: int) -> Plan:
    def cn(hours: float, code: str, text: str) -> Scan:
        return at(hours, code, text, None, "CN", SHANGHAI)

    def es(hours: float, code: str, text: str) -> Scan:
        return at(hours, code, text, None, "ES", MADRID)

    scans = (
        cn(0, "GWMS_ACCEPT", "Warehouse accepted the order"),
        cn(10, "GWMS_OUTBOUND", "Package left the warehouse"),
        cn(23.5, "SC_INBOUND_SUCCESS", "Arrived at sorting center"),
        cn(28, "SC_OUTBOUND_SUCCESS", "Departed from sorting center"),
        cn(44, "CC_EX_START", "Export customs clearance started"),
        cn(47, "CC_EX_SUCCESS", "Export customs clearance complete"),
        cn(65, "LH_DEPART", "Flight departed"),
        es(79.3, "LH_ARRIVE", "Arrived at destination country"),
        es(84, "CC_IM_START", "Import customs clearance started"),
        es(96, "CC_IM_SUCCESS", "Import customs clearance complete"),
        es(110, "GTMS_DO_DEPART", "Out for delivery"),
        es(116, "GTMS_SIGNED", "Delivered"),
    )
    outage = PlannedOutage("cainiao", start_h=30, end_h=50)
    return Plan((Leg("cainiao", number, scans, (ORIGIN, INTERNATIONAL, DESTINATION)),), (outage,))


ITINERARIES: dict[str, Itinerary] = {
    i.name: i
    for i in (
        Itinerary("epacket-china-us", "ePacket China Post → UPU → USPS, one S10 number",
                  lambda seed: s10_number("LX", "CN", seed), _epacket_cn_us),
        Itinerary("fourpx-royal-mail", "4PX to London, handed to Royal Mail under a new number",
                  fourpx_number, _fourpx_royal_mail),
        Itinerary("ups-failed-attempt-pickup", "UPS DE → US: failed attempt, Access Point, collected",
                  ups_number, _ups_failed_attempt_pickup),
        Itinerary("fedex-failed-attempt-pickup", "FedEx CN → US: failed attempt, held at a FedEx "
                  "location, collected", fedex_express_number, _fedex_failed_attempt_pickup),
        Itinerary("ups-customs-duties", "UPS DE → US: held by import customs, duties paid, released",
                  ups_number, _ups_customs_duties),
        Itinerary("epacket-lost-in-linehaul", "ePacket China Post: nothing after leaving China",
                  lambda seed: s10_number("LX", "CN", seed), _epacket_lost),
        Itinerary("colissimo-return-to-sender", "Colissimo: not collected, returned to the sender",
                  lambda seed: s10_number("CB", "FR", seed), _colissimo_return),
        Itinerary("sf-express-duplicates-late-scan", "SF Express: a scan sent twice, and one "
                  "reported after the delivery", sf_express_number, _sf_duplicates_late),
        Itinerary("cainiao-carrier-outage", "Cainiao CN → ES: the API answers 503 for 20 journey "
                  "hours", cainiao_number, _cainiao_outage),
    )
}  # fmt: skip

"""Object identifiers and enumerations of the MIBs the collector reads.

MIB-II (RFC 1213), HOST-RESOURCES-MIB (RFC 2790) and Printer-MIB v2 (RFC 3805). Only the
columns the parsers use are listed: a poll fetches exactly these, nothing else.
"""

from __future__ import annotations

from typing import Final

SnmpValue = int | bytes | str
"""A decoded SNMP value: integers of every kind, OCTET STRING / IpAddress bytes, or an
OBJECT IDENTIFIER as a dotted string."""

# --- MIB-II system group and interfaces --------------------------------------------------------
SYS_DESCR: Final = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID: Final = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME: Final = "1.3.6.1.2.1.1.3.0"
SYS_NAME: Final = "1.3.6.1.2.1.1.5.0"
IF_PHYS_ADDRESS: Final = "1.3.6.1.2.1.2.2.1.6"

# --- HOST-RESOURCES-MIB --------------------------------------------------------------------------
HR_DEVICE_TYPE: Final = "1.3.6.1.2.1.25.3.2.1.2"
HR_DEVICE_DESCR: Final = "1.3.6.1.2.1.25.3.2.1.3"
HR_DEVICE_STATUS: Final = "1.3.6.1.2.1.25.3.2.1.5"
HR_PRINTER_STATUS: Final = "1.3.6.1.2.1.25.3.5.1.1"
HR_PRINTER_ERROR_STATE: Final = "1.3.6.1.2.1.25.3.5.1.2"
HR_DEVICE_PRINTER: Final = "1.3.6.1.2.1.25.3.1.5"

# --- Printer-MIB ---------------------------------------------------------------------------------
PRINTER_MIB: Final = "1.3.6.1.2.1.43"
PRT_GENERAL_SERIAL: Final = "1.3.6.1.2.1.43.5.1.1.17"
PRT_INPUT: Final = "1.3.6.1.2.1.43.8.2.1"
PRT_MARKER: Final = "1.3.6.1.2.1.43.10.2.1"
PRT_SUPPLIES: Final = "1.3.6.1.2.1.43.11.1.1"
PRT_COLORANT_VALUE: Final = "1.3.6.1.2.1.43.12.1.1.4"
PRT_ALERT: Final = "1.3.6.1.2.1.43.18.1.1"

# prtMarkerSuppliesTable columns
SUP_MARKER_INDEX: Final = 2
SUP_COLORANT_INDEX: Final = 3
SUP_CLASS: Final = 4
SUP_TYPE: Final = 5
SUP_DESCRIPTION: Final = 6
SUP_UNIT: Final = 7
SUP_MAX: Final = 8
SUP_LEVEL: Final = 9
SUPPLY_COLUMNS: Final = (
    SUP_MARKER_INDEX,
    SUP_COLORANT_INDEX,
    SUP_CLASS,
    SUP_TYPE,
    SUP_DESCRIPTION,
    SUP_UNIT,
    SUP_MAX,
    SUP_LEVEL,
)

# prtMarkerTable columns
MARKER_COUNTER_UNIT: Final = 3
MARKER_LIFE_COUNT: Final = 4
MARKER_COLUMNS: Final = (MARKER_COUNTER_UNIT, MARKER_LIFE_COUNT)

# prtAlertTable columns
ALERT_SEVERITY: Final = 2
ALERT_GROUP: Final = 4
ALERT_GROUP_INDEX: Final = 5
ALERT_LOCATION: Final = 6
ALERT_CODE: Final = 7
ALERT_DESCRIPTION: Final = 8
ALERT_TIME: Final = 9
ALERT_COLUMNS: Final = (
    ALERT_SEVERITY,
    ALERT_GROUP,
    ALERT_GROUP_INDEX,
    ALERT_LOCATION,
    ALERT_CODE,
    ALERT_DESCRIPTION,
    ALERT_TIME,
)

# prtInputTable columns
INPUT_DIM_UNIT: Final = 3
INPUT_DIM_FEED: Final = 4
INPUT_DIM_XFEED: Final = 5
INPUT_MAX_CAPACITY: Final = 9
INPUT_CURRENT_LEVEL: Final = 10
INPUT_MEDIA_NAME: Final = 12
INPUT_NAME: Final = 13
INPUT_COLUMNS: Final = (
    INPUT_DIM_UNIT,
    INPUT_DIM_FEED,
    INPUT_DIM_XFEED,
    INPUT_MAX_CAPACITY,
    INPUT_CURRENT_LEVEL,
    INPUT_MEDIA_NAME,
    INPUT_NAME,
)


def column(table: str, col: int) -> str:
    return f"{table}.{col}"


# --- RFC 3805 enumerations -----------------------------------------------------------------------
# PrtMarkerSuppliesClassTC
SUPPLY_CLASS_RECEPTACLE: Final = 4

# PrtMarkerSuppliesTypeTC -> wire-contract supply kind
SUPPLY_TYPE_KIND: Final[dict[int, str]] = {
    1: "other",
    2: "other",
    3: "toner",
    4: "waste",  # wasteToner
    5: "ink",
    6: "ink",  # inkCartridge
    7: "ink",  # inkRibbon
    8: "waste",  # wasteInk
    9: "drum",  # opc
    10: "developer",
    11: "fuser",  # fuserOil
    12: "ink",  # solidWax
    13: "ink",  # ribbonWax
    14: "waste",  # wasteWax
    15: "fuser",
    16: "maintenance",  # coronaWire
    17: "fuser",  # fuserOilWick
    18: "maintenance",  # cleanerUnit
    19: "fuser",  # fuserCleaningPad
    20: "transfer",  # transferUnit
    21: "toner",  # tonerCartridge
    22: "fuser",  # fuserOiler
    23: "other",  # water
    24: "waste",  # wasteWater
    25: "other",  # glueWaterAdditive
    26: "waste",  # wastePaper
    27: "other",  # bindingSupply
    28: "other",  # bandingSupply
    29: "staples",  # stitchingWire
    30: "other",  # shrinkWrap
    31: "other",  # paperWrap
    32: "staples",
    33: "media",  # inserts
    34: "media",  # covers
    35: "toner",  # matteToner
    36: "ink",  # matteInk
}
WASTE_SUPPLY_TYPES: Final = frozenset({4, 8, 14, 24, 26})

# PrtMarkerSuppliesSupplyUnitTC -> (wire unit, factor that converts the raw value into it)
SUPPLY_UNITS: Final[dict[int, tuple[str, float]]] = {
    3: ("mm", 25.4 / 10000),  # tenThousandthsOfInches
    4: ("mm", 1 / 1000),  # micrometers
    7: ("impressions", 1),
    8: ("sheets", 1),
    11: ("hours", 1),
    12: ("g", 28.349523125 / 1000),  # thousandthsOfOunces
    13: ("g", 1 / 10),  # tenthsOfGrams
    14: ("ml", 29.5735295625 / 100),  # hundrethsOfFluidOunces
    15: ("ml", 1 / 10),  # tenthsOfMilliliters
    16: ("m", 0.3048),  # feet
    17: ("m", 1),  # meters
    18: ("items", 1),
    19: ("percent", 1),
}
SUPPLY_UNIT_OTHER: Final = 1
SUPPLY_UNIT_UNKNOWN: Final = 2

# PrtMarkerCounterUnitTC -> (counter name, wire unit, factor)
MARKER_COUNTER_UNITS: Final[dict[int, tuple[str, str, float]]] = {
    3: ("media.length", "m", 0.0254 / 10000),
    4: ("media.length", "m", 1 / 1_000_000),
    7: ("impressions.total", "impressions", 1),
    8: ("sheets.total", "sheets", 1),
    16: ("media.length", "m", 0.3048),
    17: ("media.length", "m", 1),
}

# RFC 3805 level / capacity special values
LEVEL_UNLIMITED: Final = -1
LEVEL_UNKNOWN: Final = -2
LEVEL_SOME_REMAINING: Final = -3
LEVEL_STATES: Final[dict[int, str]] = {
    LEVEL_UNLIMITED: "unlimited",
    LEVEL_UNKNOWN: "unknown",
    LEVEL_SOME_REMAINING: "some_remaining",
}

# hrPrinterStatus -> wire status.state
PRINTER_STATUS: Final[dict[int, str]] = {
    1: "unknown",
    2: "unknown",
    3: "idle",
    4: "printing",
    5: "warmup",
}
# hrDeviceStatus: 3 warning, 5 down
DEVICE_STATUS_WARNING: Final = 3
DEVICE_STATUS_DOWN: Final = 5

# hrPrinterDetectedErrorState bits, most significant bit of the first octet first (RFC 2790,
# extended by RFC 3805).
ERROR_STATE_BITS: Final = (
    "lowPaper",
    "noPaper",
    "lowToner",
    "noToner",
    "doorOpen",
    "jammed",
    "offline",
    "serviceRequested",
    "inputTrayMissing",
    "outputTrayMissing",
    "markerSupplyMissing",
    "outputNearFull",
    "outputFull",
    "inputTrayEmpty",
    "overduePreventMaint",
)
ERROR_STATE_CRITICAL: Final = frozenset(
    {"noPaper", "noToner", "doorOpen", "jammed", "offline", "outputFull", "markerSupplyMissing"}
)

# prtAlertSeverityLevel -> wire severity
ALERT_SEVERITY_NAMES: Final[dict[int, str]] = {3: "critical", 4: "warning", 5: "warning"}

# PrtAlertGroupTC
ALERT_GROUPS: Final[dict[int, str]] = {
    1: "other",
    3: "storage",
    4: "device",
    5: "general_printer",
    6: "cover",
    7: "localization",
    8: "input",
    9: "output",
    10: "marker",
    11: "marker_supplies",
    12: "marker_colorant",
    13: "media_path",
    14: "channel",
    15: "interpreter",
    16: "console_display",
    17: "console_lights",
    18: "alert",
    30: "finisher",
    31: "finisher_supply",
    32: "finisher_supply_input",
    33: "finisher_attribute",
}

# PrtAlertCodeTC
ALERT_CODES: Final[dict[int, str]] = {
    1: "other",
    2: "unknown",
    3: "cover_open",
    4: "cover_closed",
    5: "interlock_open",
    6: "interlock_closed",
    7: "configuration_change",
    8: "jam",
    9: "subunit_missing",
    10: "subunit_life_almost_over",
    11: "subunit_life_over",
    12: "subunit_almost_empty",
    13: "subunit_empty",
    14: "subunit_almost_full",
    15: "subunit_full",
    16: "subunit_near_limit",
    17: "subunit_at_limit",
    18: "subunit_opened",
    19: "subunit_closed",
    20: "subunit_turned_on",
    21: "subunit_turned_off",
    22: "subunit_offline",
    23: "subunit_power_saver",
    24: "subunit_warming_up",
    25: "subunit_added",
    26: "subunit_removed",
    27: "subunit_resource_added",
    28: "subunit_resource_removed",
    29: "subunit_recoverable_failure",
    30: "subunit_unrecoverable_failure",
    31: "subunit_recoverable_storage_error",
    32: "subunit_unrecoverable_storage_error",
    33: "subunit_motor_failure",
    34: "subunit_memory_exhausted",
    35: "subunit_under_temperature",
    36: "subunit_over_temperature",
    37: "subunit_timing_failure",
    38: "subunit_thermistor_failure",
    501: "door_open",
    502: "door_closed",
    503: "power_up",
    504: "power_down",
    505: "printer_nms_reset",
    506: "printer_manual_reset",
    507: "printer_ready_to_print",
    801: "input_media_tray_missing",
    802: "input_media_size_change",
    803: "input_media_weight_change",
    804: "input_media_type_change",
    805: "input_media_color_change",
    806: "input_media_form_parts_change",
    807: "input_media_supply_low",
    808: "input_media_supply_empty",
    809: "input_media_change_request",
    810: "input_manual_input_request",
    811: "input_tray_position_failure",
    812: "input_tray_elevation_failure",
    813: "input_cannot_feed_size_selected",
    901: "output_media_tray_missing",
    902: "output_media_tray_almost_full",
    903: "output_media_tray_full",
    904: "output_mailbox_select_failure",
    1001: "marker_fuser_under_temperature",
    1002: "marker_fuser_over_temperature",
    1003: "marker_fuser_timing_failure",
    1004: "marker_fuser_thermistor_failure",
    1005: "marker_adjusting_print_quality",
    1101: "marker_toner_empty",
    1102: "marker_ink_empty",
    1103: "marker_print_ribbon_empty",
    1104: "marker_toner_almost_empty",
    1105: "marker_ink_almost_empty",
    1106: "marker_print_ribbon_almost_empty",
    1107: "marker_waste_toner_receptacle_almost_full",
    1108: "marker_waste_ink_receptacle_almost_full",
    1109: "marker_waste_toner_receptacle_full",
    1110: "marker_waste_ink_receptacle_full",
    1111: "marker_opc_life_almost_over",
    1112: "marker_opc_life_over",
    1113: "marker_developer_almost_empty",
    1114: "marker_developer_empty",
    1115: "marker_toner_cartridge_missing",
    1301: "media_path_media_tray_missing",
    1302: "media_path_media_tray_almost_full",
    1303: "media_path_media_tray_full",
    1304: "media_path_cannot_duplex_media_selected",
    1501: "interpreter_memory_increase",
    1502: "interpreter_memory_decrease",
    1503: "interpreter_cartridge_added",
    1504: "interpreter_cartridge_deleted",
    1505: "interpreter_resource_added",
    1506: "interpreter_resource_deleted",
    1507: "interpreter_resource_unavailable",
    1509: "interpreter_complex_page_encountered",
    1801: "alert_removal_of_binary_change_entry",
}

# prtInputDimUnit -> millimetres per unit
INPUT_DIM_UNITS_MM: Final[dict[int, float]] = {3: 25.4 / 10000, 4: 1 / 1000}

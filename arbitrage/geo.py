"""Where an offer is: normalised country and continent for every provider's regions and zones.

Pure functions over a ``RegionTable`` (loaded from ``arbitrage/data/regions.csv`` by ``arbitrage.facts``):

* ``locate(facts_or_table, provider, region, zone)`` -> ``(country, continent)``: ISO 3166-1 alpha-2 and one of
  ``CONTINENTS``; ``("", "")`` when the place is not known (never a guess).
* ``geo_matches(country, continent, token)``: data-residency tokens, case-insensitive: an ISO code (``DE``; ``UK``
  is read as ``GB``), a continent (``europe``, ``North America``), or a group (``EU``, ``EEA``).
* Zones are resolved before regions, because a zone can sit in another city or country than its region: an AWS
  Local Zone (``use1-atl2-az1`` is Atlanta; ``us-east-1-qro-1a`` is Querétaro, Mexico) reports its own place.

Rows of the table may be globs (``us-*``): exact rows win, then globs in file order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from arbitrage.globs import glob_match

# Continent names used on Offer.continent (see arbitrage/offers.py). The Middle East counts as Asia, Mexico
# and Central America as North America, as in the UN M49 geoscheme's continental regions.
CONTINENTS: tuple[str, ...] = ("north-america", "south-america", "europe", "asia", "oceania", "africa")

# European Union member states (27 since 2020-02-01, europa.eu "Country profiles") and the European Economic
# Area (EU + Iceland, Liechtenstein, Norway; EEA Agreement). ISO 3166-1 alpha-2 codes; Greece is GR.
EU: frozenset[str] = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
    "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"})
EEA: frozenset[str] = EU | {"IS", "LI", "NO"}
GROUPS: dict[str, frozenset[str]] = {"EU": EU, "EEA": EEA}
# Common names that are not the ISO code of the country they mean.
COUNTRY_ALIASES: dict[str, str] = {"UK": "GB", "EL": "GR"}

# ISO 3166-1 alpha-2 -> continent (UN M49 continental regions; Americas split at the Panama/Colombia border,
# Caribbean with North America; Russia and Turkey as Europe, Cyprus and the Caucasus as Asia except where EU).
_CONTINENT_CODES: dict[str, str] = {
    "north-america": "US CA MX GT BZ SV HN NI CR PA CU DO HT JM BS BB TT AG DM GD KN LC VC PR VI VG KY BM AW CW "
                     "SX BQ BL MF GP MQ TC AI MS GL PM UM",
    "south-america": "BR AR CL CO PE VE EC BO PY UY GY SR GF FK",
    "europe": "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO CH GB "
              "AD MC SM VA AL BA ME MK RS XK UA MD BY RU TR GI IM JE GG FO AX SJ",
    "asia": "CN HK MO TW JP KR KP MN IN PK BD LK NP BT MV AF IR IQ IL PS JO LB SY SA AE QA BH KW OM YE GE AM AZ "
            "KZ UZ TM KG TJ TH VN LA KH MM MY SG ID PH BN TL",
    "oceania": "AU NZ PG FJ SB VU NC PF WS TO KI TV NR FM MH PW GU MP AS CK NU",
    "africa": "ZA NG KE EG MA DZ TN LY SD SS ET GH CI SN ML NE BF TD CM CF CG CD GA GQ AO ZM ZW MW MZ TZ UG RW "
              "BI DJ ER SO MG MU SC KM CV ST GM GW GN SL LR TG BJ MR NA BW LS SZ RE YT",
}
COUNTRY_CONTINENT: dict[str, str] = {code: c for c, codes in _CONTINENT_CODES.items() for code in codes.split()}

REGION_KINDS = frozenset({"region", "local-zone", "data-centre", "location"})

# AWS zone IDs abbreviate the region: us-east-1 -> use1, ap-southeast-3 -> apse3, il-central-1 -> ilc1.
_AWS_DIRECTION = {"north": "n", "south": "s", "east": "e", "west": "w", "central": "c",
                  "northeast": "ne", "southeast": "se", "northwest": "nw", "southwest": "sw"}
_AWS_REGION = re.compile(r"^([a-z]{2})-([a-z]+)-(\d+)$")
_AWS_ZONE_ID = re.compile(r"^([a-z]+\d+)-az\d+$")                   # use1-az4
_AWS_LOCAL_ZONE_ID = re.compile(r"^([a-z]+\d+)-([a-z]+)(\d+)-az(\d+)$")  # use1-atl2-az1
_TRAILING_LETTER = re.compile(r"^(.*\d)[a-z]$")                     # us-east-1a, rno2a, us-west-02b
_GCP_ZONE = re.compile(r"^(.*\d)-[a-z]$")                           # us-central1-a


@dataclass(frozen=True, slots=True)
class Place:
    """One region, zone, data centre or marketplace location: country, continent, city and where that is from."""

    provider: str
    region: str
    country: str
    continent: str
    city: str
    kind: str
    parent_region: str
    source: str


@dataclass(frozen=True)
class RegionTable:
    """(provider, region name) -> Place; glob rows (``us-*``) after the exact ones, in file order."""

    exact: dict[tuple[str, str], Place]
    globs: tuple[Place, ...] = ()
    _memo: dict[tuple[str, str], Place | None] = field(default_factory=dict, compare=False, repr=False)
    _prefixes: dict[tuple[str, str], str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, places: list[Place]) -> RegionTable:
        """A table from rows; later exact duplicates do not replace earlier ones."""
        exact: dict[tuple[str, str], Place] = {}
        globs = []
        for p in places:
            if any(ch in p.region for ch in "*?["):
                globs.append(p)
            else:
                exact.setdefault((p.provider, p.region.lower()), p)
        return cls(exact, tuple(globs))

    def get(self, provider: str, name: str) -> Place | None:
        """The place a provider's region/zone name is in, or None when the table does not know it."""
        key = (provider, name.strip().lower())
        if key in self._memo:
            return self._memo[key]
        found = self.exact.get(key)
        if found is None:
            found = next((p for p in self.globs if p.provider == provider
                          and glob_match(key[1], p.region.lower())), None)
        self._memo[key] = found
        return found

    def aws_zone_id_region(self, provider: str, prefix: str) -> str | None:
        """The region whose zone IDs start with ``prefix`` ('use1' -> 'us-east-1') among this provider's rows."""
        if not self._prefixes:
            for (prov, region), place in self.exact.items():
                code = aws_zone_prefix(region)
                if code and place.kind == "region":
                    self._prefixes.setdefault((prov, code), region)
        return self._prefixes.get((provider, prefix))


def aws_zone_prefix(region: str) -> str | None:
    """The zone-ID prefix of an AWS-style region name: 'us-east-1' -> 'use1'; None for other shapes."""
    m = _AWS_REGION.match(region)
    if not m or m.group(2) not in _AWS_DIRECTION:
        return None
    return f"{m.group(1)}{_AWS_DIRECTION[m.group(2)]}{m.group(3)}"


def local_zone_name(zone_id: str, region: str) -> str | None:
    """An AWS Local Zone's name from its ID and parent region: ('use1-atl2-az1', 'us-east-1') -> 'us-east-1-atl-2a'.

    AWS Local Zones user guide, 'Available Local Zones': ID use1-atl2-az1 is the Local Zone us-east-1-atl-2a in
    network border group us-east-1-atl-2; the ID is the parent Region's zone-ID prefix, the location and its number,
    and the zone's letter in order. Unlike Availability Zone names, which AWS maps to zone IDs differently per
    account, a Local Zone's name is the same for every account.
    """
    m = _AWS_LOCAL_ZONE_ID.match(zone_id)
    k = int(m.group(4)) if m else 0
    if not m or not 1 <= k <= 26:
        return None
    return f"{region}-{m.group(2)}-{m.group(3)}{chr(ord('a') + k - 1)}"


def is_aws_az_name(zone: str) -> bool:
    """An AWS Availability Zone *name* (us-east-1a), which each account maps to a zone ID (use1-az4) its own way."""
    m = _TRAILING_LETTER.match(zone.strip().lower())
    return bool(m) and _AWS_REGION.match(m.group(1)) is not None


def zone_pin_matches(provider: str, region: str, zone: str | None, pin: str) -> bool:
    """Whether an offer in ``region``/``zone`` satisfies a task's zone pin (as SkyPilot users write it).

    The same zone (ID or name) matches. For AWS, whose catalogs list zone IDs: a Local Zone name matches its zone ID
    (names are the same for every account), and an Availability Zone name (us-east-1a) matches every zone ID of its
    region, because which ID it is depends on the account (DescribeAvailabilityZones, with credentials); the launch
    pins the name and says the zone's price is an estimate (arbitrage/launch/skytask.py).
    """
    want = pin.strip().lower()
    if zone and zone.lower() == want:
        return True
    if provider != "aws" or not zone:
        return False
    if local_zone_name(zone, region) == want:
        return True
    return _AWS_ZONE_ID.match(zone) is not None and is_aws_az_name(want) and want[:-1] == region


def zone_names(table: RegionTable, provider: str, zone: str) -> list[str]:
    """Names a zone's place may be listed under, most specific first (the zone, its Local Zone group, ...)."""
    zone = zone.strip().lower()
    names = [zone]
    m = _AWS_LOCAL_ZONE_ID.match(zone)
    if m:
        parent = table.aws_zone_id_region(provider, m.group(1))
        if parent:
            names.append(f"{parent}-{m.group(2)}-{m.group(3)}")  # use1-atl2-az1 -> us-east-1-atl-2
    m = _AWS_ZONE_ID.match(zone)
    if m:
        parent = table.aws_zone_id_region(provider, m.group(1))
        if parent:
            names.append(parent)
    for pattern in (_TRAILING_LETTER, _GCP_ZONE):
        m = pattern.match(zone)
        if m:
            names.append(m.group(1))
    return names


def _table(facts_or_table: Any) -> RegionTable:
    table = getattr(facts_or_table, "regions", facts_or_table)
    if not isinstance(table, RegionTable):
        raise TypeError(f"locate() needs Facts or a RegionTable, got {type(facts_or_table).__name__}")
    return table


def place_of(facts_or_table: Any, provider: str, region: str, zone: str | None = None) -> Place | None:
    """The most specific known place of an offer: its zone's (a Local Zone is not its region), else its region's."""
    table = _table(facts_or_table)
    if zone:
        for name in zone_names(table, provider, zone):
            found = table.get(provider, name)
            if found is not None:
                return found
    return table.get(provider, region) if region else None


def locate(facts_or_table: Any, provider: str, region: str, zone: str | None = None) -> tuple[str, str]:
    """(ISO country, continent) of an offer's zone or region; ('', '') when the table does not know the place."""
    found = place_of(facts_or_table, provider, region, zone)
    return (found.country, found.continent) if found is not None else ("", "")


def normalise_country(text: str) -> str:
    """An ISO 3166-1 alpha-2 code from user or API text ('de', 'UK' -> 'GB'); '' when it is not one."""
    code = COUNTRY_ALIASES.get(text.strip().upper(), text.strip().upper())
    return code if code in COUNTRY_CONTINENT else ""


def continent_of(country: str) -> str:
    """The continent of an ISO country code; '' when unknown."""
    return COUNTRY_CONTINENT.get(normalise_country(country), "") if country else ""


def normalise_continent(text: str) -> str:
    """'North America', 'north_america' -> 'north-america'; '' when it is not a continent name."""
    name = re.sub(r"[\s_]+", "-", text.strip().lower())
    return name if name in CONTINENTS else ""


def parse_geolocation(text: Any) -> tuple[str, str]:
    """A marketplace host's 'Texas, US' / 'Bulgaria, BG' / 'DE' -> (country, continent); ('', '') if no ISO code.

    Vast's ``georegion`` search appends a region code ('Texas, US, NA'); with three or more parts the country is
    the second-to-last (NA there is North America, not Namibia).
    """
    if not isinstance(text, str) or not text.strip():
        return "", ""
    parts = [p.strip() for p in text.split(",")]
    country = normalise_country(parts[-2] if len(parts) >= 3 else parts[-1])
    return (country, COUNTRY_CONTINENT[country]) if country else ("", "")


def marketplace_region(country: str, area: str = "") -> str:
    """A concrete region label for a marketplace host: ('US', 'Texas') -> 'us-texas', ('BG', '') -> 'bg'."""
    slug = re.sub(r"[^a-z0-9]+", "-", area.strip().lower()).strip("-")
    code = country.strip().lower()
    return f"{code}-{slug}" if slug else code


def geo_matches(country: str, continent: str, token: str) -> bool:
    """True when a place (ISO country, continent) satisfies one allow/deny token; an unknown place matches nothing."""
    raw = token.strip()
    if not raw or not (country or continent):
        return False
    upper = raw.upper()
    if upper in GROUPS:
        return country.upper() in GROUPS[upper]
    wanted_continent = normalise_continent(raw)
    if wanted_continent:
        return continent == wanted_continent
    code = COUNTRY_ALIASES.get(upper, upper)
    return bool(country) and country.upper() == code


def is_geo_token(token: str) -> bool:
    """True when a token names a country, a continent or a group (for validating job specs)."""
    raw = token.strip()
    return bool(raw) and (raw.upper() in GROUPS or bool(normalise_continent(raw)) or bool(normalise_country(raw)))

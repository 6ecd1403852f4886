"""arbitrage.geo: locating regions/zones (Local Zones included) and data-residency tokens."""

from __future__ import annotations

import csv

import pytest

from arbitrage import geo
from arbitrage.facts import load_regions, table_text
from arbitrage.geo import EEA, EU, Place, RegionTable, geo_matches, locate, place_of


def test_aws_local_zone_id_is_its_own_city_not_its_parent_region(facts) -> None:
    place = place_of(facts, "aws", "us-east-1", "use1-atl2-az1")
    assert place is not None and place.region == "us-east-1-atl-2" and place.city == "Atlanta"
    assert place.kind == "local-zone" and place.parent_region == "us-east-1"
    # A Local Zone of a US region can be in another country: Querétaro (Mexico), Buenos Aires (Argentina).
    assert locate(facts, "aws", "us-east-1", "us-east-1-qro-1a") == ("MX", "north-america")
    assert locate(facts, "aws", "us-east-1", "us-east-1-bue-1a") == ("AR", "south-america")


def test_zone_ids_and_zone_names_resolve_to_their_region(facts) -> None:
    assert locate(facts, "aws", "eu-central-1", "euc1-az2") == ("DE", "europe")
    assert place_of(facts, "aws", "xx", "apse3-az1").region == "ap-southeast-3"  # the zone decides, not the label
    assert locate(facts, "aws", "us-west-2", "us-west-2b") == ("US", "north-america")
    assert locate(facts, "gcp", "europe-west4", "europe-west4-a") == ("NL", "europe")
    assert locate(facts, "coreweave", "rno2", "rno2a") == ("US", "north-america")


def test_unknown_places_are_unknown_not_guessed(facts) -> None:
    assert locate(facts, "vast", "eu-any", None) == ("", "")
    assert locate(facts, "gcp", "mars-north1", "mars-north1-a") == ("", "")
    assert locate(facts, "nosuch", "us-east-1", None) == ("", "")  # tables are per provider
    assert locate(facts, "lambda", "europe-south-1", None) == ("", "europe")  # continent known, country not


def test_glob_rows_come_after_exact_rows() -> None:
    table = RegionTable.of([
        Place("p", "us-*", "US", "north-america", "", "region", "", "s"),
        Place("p", "us-x-1", "CA", "north-america", "", "region", "", "s"),
    ])
    assert locate(table, "p", "us-x-1") == ("CA", "north-america")
    assert locate(table, "p", "us-y-9") == ("US", "north-america")
    with pytest.raises(TypeError):
        locate(object(), "p", "us-x-1")


@pytest.mark.parametrize(("country", "continent", "token", "expected"), [
    ("DE", "europe", "EU", True), ("DE", "europe", "eu", True), ("DE", "europe", "de", True),
    ("NO", "europe", "EU", False), ("NO", "europe", "EEA", True), ("CH", "europe", "EEA", False),
    ("GB", "europe", "UK", True), ("GB", "europe", "EU", False), ("GB", "europe", "Europe", True),
    ("US", "north-america", "north america", True), ("US", "north-america", "North_America", True),
    ("MX", "north-america", "US", False), ("", "", "EU", False), ("", "", "europe", False),
    ("", "europe", "europe", True), ("", "europe", "FR", False), ("US", "north-america", "", False),
])
def test_geo_matches(country: str, continent: str, token: str, expected: bool) -> None:
    assert geo_matches(country, continent, token) is expected


def test_groups_and_continents() -> None:
    extra = EEA - EU
    assert len(EU) == 27 and extra == {"IS", "LI", "NO"}
    assert all(geo.continent_of(c) == "europe" for c in EEA)
    assert geo.continent_of("IL") == "asia" and geo.continent_of("AU") == "oceania" and geo.continent_of("ZZ") == ""
    assert geo.is_geo_token("EEA") and geo.is_geo_token("oceania") and geo.is_geo_token("uk")
    assert not geo.is_geo_token("Atlantis")


def test_marketplace_locations() -> None:
    assert geo.parse_geolocation("Texas, US") == ("US", "north-america")
    assert geo.parse_geolocation("Bulgaria, BG") == ("BG", "europe")
    assert geo.parse_geolocation("Texas, US, NA") == ("US", "north-america")  # georegion suffix, not Namibia
    assert geo.parse_geolocation("somewhere") == ("", "")
    assert geo.parse_geolocation(None) == ("", "")
    assert geo.marketplace_region("US", "Texas") == "us-texas" and geo.marketplace_region("BG") == "bg"


def test_regions_table_is_valid_and_sourced() -> None:
    table = load_regions()
    assert len(table.exact) > 150
    _label, text = table_text("regions.csv")
    rows = list(csv.DictReader(text.splitlines()))
    keys = [(r["provider"], r["region"]) for r in rows]
    assert len(keys) == len(set(keys)), "duplicate (provider, region) rows"
    for r in rows:
        assert r["source"].strip(), r
        if r["country"]:
            assert geo.continent_of(r["country"]) == r["continent"], r  # country and continent agree
        if r["kind"] == "local-zone":
            assert (r["provider"], r["parent_region"]) in table.exact, r


def test_every_snapshot_offer_is_located(facts) -> None:
    from providers.snapshot import load_snapshot

    missing = {(o.provider, o.region, o.zone) for o in load_snapshot(facts) if not o.continent}
    assert not missing, sorted(missing)[:10]


def test_bad_regions_row_is_a_data_error(tmp_path, monkeypatch) -> None:
    from arbitrage.errors import DataError

    (tmp_path / "facts").mkdir()
    (tmp_path / "facts" / "regions.csv").write_text(
        "provider,region,country,continent,city,kind,parent_region,source\naws,x-1,USA,north-america,,region,,s\n")
    monkeypatch.setenv("GPUARB_CONFIG_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"regions\.csv:2: country 'USA'"):
        load_regions()

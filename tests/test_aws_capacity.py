"""AWS spot placement scores against botocore's Stubber: requests checked against the EC2 API model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from conftest import fetch_ctx

from arbitrage.capacity import CapacityBook, verdict
from providers import aws_capacity as AC

KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
# The response shape of GetSpotPlacementScores with SingleAvailabilityZone=True (zone ids, 1-10 scores).
PAGE_1 = {"SpotPlacementScores": [
    {"Region": "us-east-1", "AvailabilityZoneId": "use1-az4", "Score": 9},
    {"Region": "us-east-1", "AvailabilityZoneId": "use1-az6", "Score": 3},
    {"Region": "us-west-2", "AvailabilityZoneId": "usw2-az2", "Score": 5},
], "NextToken": "page-2"}
PAGE_2 = {"SpotPlacementScores": [{"Region": "us-west-2", "AvailabilityZoneId": "usw2-az1", "Score": 10}]}


def stubbed(tmp_path: Path, pages: list[dict[str, Any]], nodes: int = 2) -> tuple[Any, Stubber]:
    client = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(client)
    params = {"InstanceTypes": ["p5.48xlarge"], "TargetCapacity": nodes, "TargetCapacityUnitType": "units",
              "SingleAvailabilityZone": True, "RegionNames": ["us-east-1", "us-west-2"], "MaxResults": 10}
    for i, page in enumerate(pages):
        stub.add_response("get_spot_placement_scores", page, {**params, **({"NextToken": "page-2"} if i else {})})
    stub.activate()
    ctx = fetch_ctx(AC.NAME, env={**KEYS, "GPUARB_CACHE_DIR": str(tmp_path)},
                    sdk={"aws_client_factory": lambda service, region: client})
    return ctx, stub


def test_scores_become_zone_signals_over_every_page(tmp_path) -> None:
    ctx, stub = stubbed(tmp_path, [PAGE_1, PAGE_2])
    signals, problem = AC.placement_scores(ctx, [("p5.48xlarge", ("us-west-2", "us-east-1"), 2)])
    stub.assert_no_pending_responses()
    assert problem == ""
    by_zone = {s.zone: s for s in signals}
    assert set(by_zone) == {"use1-az4", "use1-az6", "usw2-az2", "usw2-az1"}
    assert by_zone["use1-az4"].score == 0.9 and by_zone["use1-az4"].spot is True and by_zone["use1-az4"].nodes == 2
    assert "GetSpotPlacementScores" in by_zone["usw2-az1"].source and "10/10" in by_zone["usw2-az1"].label
    f = ctx.facts.assumptions
    assert verdict(by_zone["use1-az6"].score, f.capacity_reject_below, f.capacity_demote_below) == "reject"
    assert verdict(by_zone["usw2-az2"].score, f.capacity_reject_below, f.capacity_demote_below) == "demote"
    assert verdict(by_zone["use1-az4"].score, f.capacity_reject_below, f.capacity_demote_below) == "ok"


def test_answers_are_cached_for_the_ttl(tmp_path) -> None:
    ctx, stub = stubbed(tmp_path, [PAGE_2])
    first, _ = AC.placement_scores(ctx, [("p5.48xlarge", ("us-east-1", "us-west-2"), 2)])
    stub.assert_no_pending_responses()
    again, problem = AC.placement_scores(ctx, [("p5.48xlarge", ("us-east-1", "us-west-2"), 2)])  # no stub left
    assert again == first and problem == ""


def test_book_matches_zone_nodes_and_purchase_option(tmp_path) -> None:
    from conftest import make_offer

    ctx, _ = stubbed(tmp_path, [PAGE_1, PAGE_2])
    signals, _ = AC.placement_scores(ctx, [("p5.48xlarge", ("us-east-1", "us-west-2"), 2)])
    book = CapacityBook(signals)
    offer = make_offer(zone="use1-az6")
    assert book.signal(offer, spot=True, nodes=2).score == 0.3
    assert book.signal(offer, spot=False, nodes=2) is None  # scores are for spot requests
    assert book.signal(offer, spot=True, nodes=4) is None  # asked for 2 nodes, not 4
    assert book.signal(make_offer(zone="use1-az1"), spot=True, nodes=2) is None  # outside AWS's top 10


def test_without_credentials_nothing_is_asked(tmp_path) -> None:
    ctx = fetch_ctx(AC.NAME, env={"GPUARB_CACHE_DIR": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "none"),
                                  "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                                  "AWS_EC2_METADATA_DISABLED": "true"})
    signals, problem = AC.placement_scores(ctx, [("p5.48xlarge", ("us-east-1",), 1)])
    assert signals == [] and "no AWS credentials" in problem


def test_an_api_error_is_named_and_the_rest_kept(tmp_path) -> None:
    client = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(client)
    stub.add_client_error("get_spot_placement_scores", "UnauthorizedOperation", "not allowed")
    stub.activate()
    ctx = fetch_ctx(AC.NAME, env={**KEYS, "GPUARB_CACHE_DIR": str(tmp_path)},
                    sdk={"aws_client_factory": lambda service, region: client})
    signals, problem = AC.placement_scores(ctx, [("p5.48xlarge", ("us-east-1",), 1)])
    assert signals == [] and "UnauthorizedOperation" in problem


@pytest.mark.parametrize("row", [{"Region": "us-east-1", "Score": 0}, {"AvailabilityZoneId": "x", "Score": 5}])
def test_rows_without_a_score_or_region_are_skipped(row) -> None:
    assert AC.parse_scores({"SpotPlacementScores": [row]}, "p5.48xlarge", 1, "now") == []

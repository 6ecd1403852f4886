"""Zone pins as SkyPilot users write them, against catalogs that list AWS zone IDs."""

from __future__ import annotations

import pytest
from conftest import NOW, make_offer

from arbitrage.geo import is_aws_az_name, local_zone_name, zone_pin_matches
from arbitrage.planner import R_REGION, R_ZONE, plan
from arbitrage.specfile import parse_jobspec_text


@pytest.mark.parametrize(("provider", "region", "zone", "pin", "matches"), [
    ("aws", "us-east-1", "use1-az4", "use1-az4", True),          # the same zone ID
    ("aws", "us-east-1", "use1-az4", "us-east-1a", True),        # an AZ name: any ID of its region (per account)
    ("aws", "us-east-1", "use1-az4", "us-east-2a", False),       # another region's zone
    ("aws", "us-east-1", "use1-atl2-az1", "us-east-1-atl-2a", True),  # a Local Zone name is its ID, everywhere
    ("aws", "us-east-1", "use1-atl2-az1", "us-east-1a", False),  # an AZ name is not a Local Zone
    ("aws", "us-east-1", "use1-az4", "us-east-1-atl-2a", False),
    ("gcp", "us-central1", "us-central1-a", "us-central1-a", True),
    ("gcp", "us-central1", "us-central1-a", "us-central1-b", False),
    ("aws", "us-east-1", None, "us-east-1a", False),
])
def test_zone_pin_matches(provider: str, region: str, zone: str | None, pin: str, matches: bool) -> None:
    assert zone_pin_matches(provider, region, zone, pin) is matches


def test_aws_zone_name_shapes() -> None:
    assert is_aws_az_name("us-east-1a") and is_aws_az_name("ap-southeast-3b") and is_aws_az_name("US-WEST-2C")
    assert not is_aws_az_name("use1-az4") and not is_aws_az_name("us-central1-a") and not is_aws_az_name("us-east-1")
    assert local_zone_name("use1-atl2-az1", "us-east-1") == "us-east-1-atl-2a"
    assert local_zone_name("use1-atl2-az27", "us-east-1") is None and local_zone_name("use1-az4", "us-east-1") is None


def test_a_task_pinned_to_an_aws_zone_name_plans_over_that_region_s_zone_ids(facts) -> None:
    text = ("name: z\nresources: {infra: aws/us-east-1/us-east-1a, accelerators: 'H100:8'}\nrun: x\n"
            "arbitrage: {work: {gpu_hours: 64}, spot: never}\n")
    spec = parse_jobspec_text(text, facts, where="z.yaml")
    offers = [make_offer(zone=z, on_demand_usd_per_hour=p) for z, p in (("use1-az4", 98.0), ("use1-az6", 98.0))]
    offers.append(make_offer(region="us-west-2", zone="usw2-az1", on_demand_usd_per_hour=50.0))
    result = plan(spec, offers, facts, NOW)
    assert sorted(b.placement.offer.zone for b in result.placements) == ["use1-az4", "use1-az6"]
    assert result.rejections == {R_REGION: 1}  # the us-west-2 offer
    by_id = parse_jobspec_text(text.replace("aws/us-east-1/us-east-1a", "aws/us-east-1/use1-az6"), facts,
                               where="z.yaml")
    assert [b.placement.offer.zone for b in plan(by_id, offers, facts, NOW).placements] == ["use1-az6"]
    assert plan(by_id, offers, facts, NOW).rejections == {R_REGION: 1, R_ZONE: 1}  # use1-az4: its zone rules it out


def test_at_the_same_price_a_regular_zone_ranks_before_an_aws_local_zone(facts) -> None:
    from conftest import make_spec

    # the Local Zone first in the input: the tie must not be broken by input order or by spelling
    offers = [make_offer(zone="use1-atl2-az1", on_demand_usd_per_hour=3.06),
              make_offer(zone="use1-az6", on_demand_usd_per_hour=3.06)]
    result = plan(make_spec(), offers, facts, NOW)
    assert [b.placement.offer.zone for b in result.placements] == ["use1-az6", "use1-atl2-az1"]
    assert result.choices[0].best.placement.offer.zone == "use1-az6"

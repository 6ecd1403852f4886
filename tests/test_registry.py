"""Provider cards: every per-provider fact in one place, pure to import, and read by every module that needs one."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys

import pytest
from conftest import ROOT, make_offer

from arbitrage.costmodel import Placement
from arbitrage.launch import skytask
from arbitrage.launch.backend import LaunchError
from arbitrage.report import focus
from providers import registry
from providers.registry import ProviderInfo, SkyPilotPin

# The facts the code used to keep in separate lists, which the cards must reproduce exactly.
TIERS = {"aws": "hyperscaler", "gcp": "hyperscaler", "azure": "hyperscaler", "lambda": "specialised",
         "nebius": "specialised", "coreweave": "specialised", "runpod": "specialised", "hyperbolic": "marketplace",
         "vast": "marketplace", "onprem": "owned"}
ADAPTERS = {"aws": "providers.aws", "gcp": "providers.gcp", "azure": "providers.azure",
            "lambda": "providers.lambda_cloud", "runpod": "providers.runpod", "vast": "providers.vast",
            "onprem": "providers.onprem", "coreweave": "providers.coreweave"}
SCHEMES = {"s3": "aws", "gs": "gcp", "gcs": "gcp", "az": "azure", "abfs": "azure", "abfss": "azure"}
FOCUS_NAMES = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Microsoft", "lambda": "Lambda", "nebius": "Nebius",
               "coreweave": "CoreWeave", "runpod": "RunPod", "hyperbolic": "Hyperbolic", "vast": "Vast.ai",
               "onprem": "On-premises"}


def fake_card(**changes: object) -> ProviderInfo:
    base = ProviderInfo(id="testcloud", display_name="Test Cloud", focus_name="Test Cloud", tier="specialised",
                        adapter_module=None, skypilot=SkyPilotPin("testcloud"), not_skypilot=None,
                        multi_node=False, fabrics=(), spot="none")
    return dataclasses.replace(base, **changes)


def test_cards_reproduce_the_old_per_provider_lists() -> None:
    assert registry.provider_ids() == tuple(TIERS)
    assert {c.id: c.tier for c in registry.cards()} == TIERS
    assert {c.id: c.adapter_module for c in registry.cards() if c.adapter_module} == ADAPTERS
    assert registry.adapter_ids() == tuple(p for p in TIERS if p in ADAPTERS)
    assert {s: registry.provider_for_scheme(s) for s in SCHEMES} == SCHEMES
    assert registry.provider_for_scheme("S3") == "aws" and registry.provider_for_scheme("r2") is None
    assert {c.id: c.focus_name for c in registry.cards()} == FOCUS_NAMES
    assert registry.skypilot_catalog_ids() == ("aws", "gcp", "lambda", "nebius", "hyperbolic")
    assert {c.id: c.skypilot.cloud for c in registry.cards() if c.skypilot} == {
        "aws": "aws", "gcp": "gcp", "azure": "azure", "lambda": "lambda", "nebius": "nebius",
        "hyperbolic": "hyperbolic", "runpod": "runpod", "vast": "vast"}


def test_every_card_says_how_skypilot_launches_it_or_why_not() -> None:
    for info in registry.cards():
        assert (info.skypilot is None) != (info.not_skypilot is None), info.id
        assert info.not_skypilot is None or "\n" not in info.not_skypilot


def test_every_adapter_module_exists() -> None:
    for provider in registry.adapter_ids():
        module = registry.card(provider).adapter_module
        assert module is not None and importlib.util.find_spec(module) is not None, provider


def test_cluster_and_spot_facts() -> None:
    card = registry.card
    assert card("vast").spot == "bid" and card("runpod").spot == "bid"
    assert card("aws").spot == "market" and card("gcp").spot == "preemptible"
    assert card("lambda").spot == card("hyperbolic").spot == card("onprem").spot == "none"
    assert not any(card(p).multi_node for p in ("runpod", "vast", "hyperbolic"))
    assert all(card(p).multi_node for p in ("aws", "gcp", "azure", "lambda", "nebius", "coreweave"))
    assert "efa" in card("aws").fabrics and "infiniband" in card("azure").fabrics
    assert card("lambda").fabrics == ("ethernet",)


@pytest.mark.parametrize(("changes", "message"), [
    ({"id": "TestCloud"}, "lower case"),
    ({"tier": "boutique"}, "unknown tier"),
    ({"spot": "auction"}, "unknown spot kind"),
    ({"not_skypilot": "no"}, "exclude each other"),
    ({"multi_node": True, "fabrics": ("carrier-pigeon",)}, "unknown fabric"),
    ({"multi_node": True}, "need a fabric"),
])
def test_a_card_that_contradicts_itself_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fake_card(**changes)


def test_register_and_unregister() -> None:
    info = registry.register(fake_card())
    try:
        assert registry.card("testcloud") is info and registry.provider_ids()[-1] == "testcloud"
        assert registry.tier_of("testcloud") == "specialised"
        with pytest.raises(ValueError, match="already has a card"):
            registry.register(fake_card())
        registry.register(fake_card(tier="marketplace"), replace=True)
        assert registry.tier_of("testcloud") == "marketplace"
    finally:
        registry.unregister("testcloud")
    assert registry.find("testcloud") is None and registry.tier_of("testcloud") == "owned"
    with pytest.raises(ValueError, match="built in"):
        registry.unregister("aws")


def test_get_adapter_only_for_providers_with_one() -> None:
    assert registry.get_adapter("coreweave").name == "coreweave"
    for provider in ("nebius", "nosuchcloud"):
        with pytest.raises(KeyError):
            registry.get_adapter(provider)


def test_skytask_pins_from_the_card() -> None:
    note = "zone {zone} left to SkyPilot"
    registry.register(fake_card(skypilot=SkyPilotPin("testsky", zone_note=note, pin_accelerator=False)))
    try:
        offer = make_offer(provider="testcloud", region="r1", zone="r1-b", instance_type="t.8x")
        sky_pin = skytask.pin(Placement(offer, 1, spot=False))
        assert (sky_pin.infra, sky_pin.instance_type, sky_pin.accelerator) == ("testsky/r1", "t.8x", None)
        assert sky_pin.note == "zone r1-b left to SkyPilot"
        registry.register(fake_card(skypilot=None, not_skypilot="test capacity: use --backend local"), replace=True)
        assert skytask.unsupported_reason(Placement(offer, 1, spot=False)) == \
            "testcloud r1/r1-b t.8x on-demand: test capacity: use --backend local"
        registry.register(fake_card(skypilot=None), replace=True)
        with pytest.raises(LaunchError, match="provider 'testcloud' has no SkyPilot cloud"):
            skytask.pin(Placement(offer, 1, spot=False))
    finally:
        registry.unregister("testcloud")


def test_focus_names_come_from_the_cards() -> None:
    assert focus.provider_name("azure") == "Microsoft" and focus.provider_name("gone") == "gone"
    assert focus.compute_service("aws") == "Amazon Elastic Compute Cloud"
    assert focus.compute_service("lambda") == "Lambda GPU Cloud" and focus.compute_service("gone") == "gone GPU Cloud"
    assert focus.egress_service("azure") == "Bandwidth"
    assert focus.egress_service("vast") == "Vast.ai Data Transfer"
    assert focus.egress_service("gone") == "gone Data Transfer"


def test_registry_and_records_import_nothing_heavy() -> None:
    code = ("import sys, providers.registry, arbitrage.jobspec; "
            "print(sorted(m for m in ('httpx', 'yaml', 'pydantic', 'boto3', 'sky', 'providers.base', 'providers.aws',"
            " 'arbitrage.specfile', 'asyncio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"

"""Inbound authentication: only a correctly signed token for this bot and activity is answered."""

from __future__ import annotations

import time

import jwt
import pytest
from botkit_plugins.teams.testing import rsa_key


async def test_valid_activity_is_accepted_with_mention_stripped(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    status = await post(fake.activity("what is the refund policy?", mention_bot=True))
    assert status == 202
    [inbound] = bot.inbound
    assert inbound.text == "what is the refund policy?"
    assert inbound.is_direct and inbound.user == "aad-29:alice" and inbound.user_name == "Alice"
    assert inbound.adapter == "teams"
    assert fake.jwks_fetches == 1


def _now() -> int:
    return int(time.time())


FORGED = {
    "unsigned": lambda fake: None,
    "not a jwt": lambda fake: "not-a-token",
    "wrong signature": lambda fake: fake.sign(key=rsa_key(1)),
    "unknown key id": lambda fake: fake.sign(kid="k9", key=rsa_key(1)),
    "expired beyond skew": lambda fake: fake.sign(exp=_now() - 400),
    "not yet valid beyond skew": lambda fake: fake.sign(nbf=_now() + 400),
    "no expiry": lambda fake: fake.sign(exp=None),
    "wrong audience": lambda fake: fake.sign(aud="someone-else"),
    "wrong issuer": lambda fake: fake.sign(iss="https://evil.example"),
    "symmetric alg": lambda fake: jwt.encode({"iss": "https://api.botframework.com", "aud": fake.app_id,
                                              "exp": _now() + 60, "serviceurl": fake.service_url},
                                             "k" * 32, algorithm="HS256", headers={"kid": "k1"}),
    "serviceurl mismatch": lambda fake: fake.sign(serviceurl="https://smba.trafficmanager.net/amer/"),
    "no serviceurl claim": lambda fake: fake.sign(serviceurl=None),
}


@pytest.mark.parametrize("case", list(FORGED))
async def test_forged_or_wrong_tokens_are_refused_without_any_answer(fake, make_adapter, case):
    adapter, bot, post = await make_adapter()
    status = await post(fake.activity("hi"), token=FORGED[case](fake))
    assert status in (401, 403)
    assert bot.inbound == []
    assert fake.calls == [] and fake.token_requests == []


async def test_serviceurl_mismatch_is_403(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    assert await post(fake.activity("hi"), token=fake.sign(serviceurl="https://elsewhere.example/")) == 403
    assert await post(fake.activity("hi"), token=None) == 401


async def test_key_without_msteams_endorsement_is_refused(fake, make_adapter):
    fake.keys["k1"] = (rsa_key(0), ["webchat"])
    adapter, bot, post = await make_adapter()
    assert await post(fake.activity("hi")) == 403
    assert bot.inbound == []


async def test_activity_from_another_channel_is_refused(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    activity = fake.activity("hi")
    activity["channelId"] = "webchat"
    assert await post(activity) == 403
    assert bot.inbound == []


async def test_expiry_within_five_minutes_of_skew_is_accepted(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    assert await post(fake.activity("hi"), token=fake.sign(exp=_now() - 200)) == 202
    assert len(bot.inbound) == 1


async def test_tenant_outside_the_allowed_ones_is_refused(fake, make_adapter):
    adapter, bot, post = await make_adapter(allowed_tenants=["tenant-2"])
    assert await post(fake.activity("hi")) == 403
    assert await post(fake.activity("hi", tenant="tenant-2")) == 202
    assert [i.thread.workspace for i in bot.inbound] == ["tenant-2"]


async def test_rotated_key_is_fetched_when_a_token_names_it(fake, make_adapter):
    adapter, bot, post = await make_adapter(jwks_min_refresh=0)
    assert await post(fake.activity("one")) == 202
    fake.keys["k2"] = (rsa_key(1), ["msteams"])
    assert await post(fake.activity("two"), token=fake.sign(kid="k2")) == 202
    assert fake.jwks_fetches == 2
    assert await post(fake.activity("three"), token=fake.sign(kid="k2")) == 202
    assert fake.jwks_fetches == 2  # cached


async def test_unknown_key_ids_do_not_refetch_more_often_than_allowed(fake, make_adapter):
    adapter, bot, post = await make_adapter(jwks_min_refresh=60)
    assert await post(fake.activity("one")) == 202
    for _ in range(3):
        assert await post(fake.activity("x"), token=fake.sign(kid="k7", key=rsa_key(1))) == 401
    assert fake.jwks_fetches == 1


async def test_keys_unreachable_is_503_and_no_answer(fake, make_adapter):
    adapter, bot, post = await make_adapter(openid_metadata_url="http://127.0.0.1:9/nothing")
    assert await post(fake.activity("hi")) == 503
    assert bot.inbound == []

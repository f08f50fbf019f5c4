from botkit.events import ThreadKey
import pytest


@pytest.mark.parametrize("key", [
    ThreadKey("slack", "T1", "C1", "1712345678.000100"),
    ThreadKey("discord", "@me", "123", "456"),
    ThreadKey("teams", "tenant-guid", "19:abc@thread.tacv2;messageid=1700000000000", "1700000000000"),
    ThreadKey("teams", "tenant-guid", "a:1XyZ-personal", ""),
])
def test_thread_keys_survive_the_store_round_trip(key):
    assert ThreadKey.parse(str(key)) == key


def test_a_malformed_thread_key_is_refused():
    with pytest.raises(ValueError):
        ThreadKey.parse("slack:T1")

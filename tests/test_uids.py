"""The uid format is part of the public schema: lock it."""

import pytest

from lensgraph import schema


def test_state_uid_format_is_locked() -> None:
    p = schema.pass_uid("org/model", "0123456789abcdef0123")
    assert p == "org--model@0123456789abcdef"
    assert schema.state_uid(p, 10, "head", 7) == "org--model@0123456789abcdef/L10/head/h7"
    assert schema.state_uid(p, 3, "value", 2, 5) == "org--model@0123456789abcdef/L3/value/h2/s5"
    assert schema.state_uid(p, 0, "resid_pre") == "org--model@0123456789abcdef/L0/resid_pre"
    assert schema.state_uid(p, None, "final") == "org--model@0123456789abcdef/final"
    assert schema.neuron_uid("gpt2", 11, "mlp", 3071) == "gpt2/L11/mlp/n3071"
    assert schema.token_uid("org/model", 42) == "org--model/t42"


@pytest.mark.parametrize("args", [(5, "resid_post"), (2, "key", 3, 0), (29, "head", 8), (None, "final")])
def test_state_uid_round_trips(args: tuple) -> None:
    uid = schema.state_uid("m@abc", *args)
    ref = schema.parse_state_uid(uid)
    layer, kind, *rest = args
    assert (ref.pass_uid, ref.layer, ref.kind) == ("m@abc", layer, kind)
    assert (ref.head, ref.source) == tuple(rest + [None] * (2 - len(rest)))


@pytest.mark.parametrize("bad", ["m@abc", "m@abc/X3/head", "m@abc/L3/head/q1"])
def test_parse_rejects_non_state_uids(bad: str) -> None:
    with pytest.raises(ValueError):
        schema.parse_state_uid(bad)

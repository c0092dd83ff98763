import json
import os

from rehyat.attention.fixtures import CASES, write_all

HERE = os.path.dirname(os.path.abspath(__file__))
COMMITTED = os.path.join(HERE, "..", "fixtures", "hybrid_attention")


def test_committed_fixtures_are_reproduced(tmp_path):
    write_all(str(tmp_path))
    for name, *_ in CASES:
        with open(os.path.join(COMMITTED, name + ".json")) as f:
            a = json.load(f)
        with open(os.path.join(tmp_path, name + ".json")) as f:
            b = json.load(f)
        assert a["attributes"] == b["attributes"]
        assert len(a["steps"]) == len(b["steps"])
        for sa, sb in zip(a["steps"], b["steps"]):
            for group in ("inputs", "outputs"):
                for key in sa[group]:
                    xa, xb = sa[group][key], sb[group][key]
                    assert xa["shape"] == xb["shape"]
                    assert max((abs(u - v) for u, v in zip(xa["data"], xb["data"])), default=0.0) < 1e-5

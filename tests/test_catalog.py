"""The catalogue loader: what a layer definition must say before any page shows it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from geoplan.catalog import load_catalog
from geoplan.errors import StoreError
from tests.conftest import LAYERS_DIR

CJK = re.compile(r"[\u4e00-\u9fff]")

_LAYER = """name: parks
title_zh: 公园
title_en: Parks
kind: vector
geometry: Point
public: {public}
{description}
fields:
  - {{name: park_id, type: string, required: true, public: true}}
"""


def _load(tmp_path: Path, *, public: bool, description: str) -> None:
    (tmp_path / "parks.yaml").write_text(
        _LAYER.format(public=str(public).lower(), description=description), encoding="utf-8"
    )
    load_catalog(tmp_path)


def test_every_public_layer_describes_itself_in_chinese() -> None:
    public = [layer for layer in load_catalog(LAYERS_DIR) if layer.public]
    assert len(public) >= 10
    for layer in public:
        assert CJK.search(layer.description_zh), layer.name
        assert "SYNTHETIC" not in layer.description_zh, layer.name
        # A layer that holds demo data says so in Chinese on its page.
        assert ("示意数据" in layer.description_zh) == layer.synthetic, layer.name


@pytest.mark.parametrize("description", ["", "description: English only", "description_zh: English only"])
def test_a_public_layer_without_a_chinese_description_is_refused(tmp_path: Path, description: str) -> None:
    with pytest.raises(StoreError, match=r"parks\.yaml: a public layer needs description_zh"):
        _load(tmp_path, public=True, description=description)


def test_a_private_layer_may_do_without_one(tmp_path: Path) -> None:
    _load(tmp_path, public=False, description="")
    _load(tmp_path, public=True, description="description_zh: 示意数据：合成的公园")

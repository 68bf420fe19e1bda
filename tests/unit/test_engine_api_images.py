"""engine/api/images.py, distribution.py: Docker's shapes and the typed errors, without the CLI."""

from __future__ import annotations

import io
import os

import pytest

from minirun.cli.progress import Display
from minirun.engine.api import distribution
from minirun.engine.api import images as api
from minirun.errors import Conflict, ImageError, InvalidArgument, NotFound, ReferenceError
from minirun.image.reference import parse
from minirun.image.store import Store

from .imagehelpers import build_image


@pytest.fixture
def store(tmp_path):
    return Store(os.path.join(tmp_path, "image"), sync=False)


def test_list_rows_are_image_summaries(store):
    rec = build_image(store, ("alpine:3.19",), labels={"k": "v"})
    (row,) = api.list_(store)
    assert row["Id"] == rec.id and row["RepoTags"] == ["docker.io/library/alpine:3.19"]
    assert row["Created"] == 1704067200 and row["Labels"] == {"k": "v"} and row["Size"] == rec.size
    assert api.list_(store, {"reference": ["busy*"]}) == []


def test_errors_are_typed_and_still_image_errors(store, monkeypatch):
    rec = build_image(store, ("alpine:latest",))
    with pytest.raises(NotFound) as e:
        api.inspect(store, "nosuch")
    assert isinstance(e.value, ImageError) and str(e.value) == "no such image: nosuch:latest"
    with pytest.raises(InvalidArgument) as e:
        api.get(store, "Upper")
    assert isinstance(e.value, ReferenceError)
    with pytest.raises(InvalidArgument):
        api.list_(store, {"bogus": ["1"]})
    monkeypatch.setattr(api, "containers_using", lambda store, image_id: ["c" * 64])
    with pytest.raises(Conflict) as e:
        api.remove(store, "alpine")
    assert isinstance(e.value, ImageError) and "is using its referenced image" in str(e.value)
    items = api.remove(store, rec.id, force=True)
    assert items[0] == {"Untagged": "alpine:latest"} and "Warning" in items[-1]


def test_remove_answers_dockers_items(store):
    rec = build_image(store, ("alpine:latest",))
    items = api.remove(store, "alpine")
    assert items[:2] == [{"Untagged": "alpine:latest"}, {"Deleted": rec.id}]
    assert [i for i in items[2:] if "Deleted" not in i] == []  # then its layers


def test_history_items(store):
    rec = build_image(store, ("alpine:latest",))
    items = api.history(store, "alpine")
    assert items[0]["Id"] == rec.id and items[0]["Tags"] == ["alpine:latest"]
    assert set(items[0]) == {"Id", "Created", "CreatedBy", "Tags", "Size", "Comment"}


def test_pull_messages_are_dockers_json_and_the_display_renders_them():
    sent = []
    m = distribution._PullMessages(sent.append)
    m.start(parse("alpine:3.19"))
    m.layer("aaaaaaaaaaaa", "Downloading", 5, 10)
    m.finish("sha256:" + "0" * 64, "Downloaded newer image for alpine:3.19")
    assert sent[:2] == [{"status": "Pulling from alpine", "id": "3.19"},
                        {"status": "Downloading", "progressDetail": {"current": 5, "total": 10},
                         "id": "aaaaaaaaaaaa"}]
    out = io.StringIO()
    d = Display(out, tty=False)
    for message in sent:
        d(message)
    assert out.getvalue() == ("3.19: Pulling from alpine\naaaaaaaaaaaa: Downloading\n"
                              f"Digest: sha256:{'0' * 64}\n"
                              "Status: Downloaded newer image for alpine:3.19\n")

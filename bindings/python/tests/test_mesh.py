"""The mesh through the Python binding, against a real broker on loopback:
create, invite, join, direct and topic messages, the inbox read and marked,
a followed inbox, presence, history, and a mesh error as its class."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

import nexus

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "testing" / "python"))

from nexus_broker import Broker  # noqa: E402
from test_client import DictVault  # noqa: E402


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    yield b
    b.close()


def peer(tmp_path: Path, name: str) -> nexus.Mesh:
    home = tmp_path / name
    home.mkdir()
    # In-process: these homes run no daemon.
    return nexus.Client(home=home, vault=DictVault()).mesh_routed("in_process")


def texts(items: List[Dict[str, object]], kind: str) -> List[object]:
    return [i["message"]["text"] for i in items if i["message"]["type"] == kind]  # type: ignore[index]


def test_send_receive_and_a_topic(tmp_path: Path, broker: Broker) -> None:
    owner = peer(tmp_path, "owner")
    owner.create("lab", broker.url, as_name="owner")
    assert owner.current() == "lab"
    assert owner.identity()[0] == "owner"
    inv = owner.invite(uses=1)
    assert inv["link"].startswith("nexus://join/")

    alice = peer(tmp_path, "alice")
    assert alice.join(inv["link"], as_name="alice") == "lab"
    # The owner's inbox hands the key over; alice takes it from hers.
    notices = texts(owner.inbox(), "notice")
    assert any("sent them the mesh key" in str(n) for n in notices), notices
    assert any("received the lab key" in str(n) for n in texts(alice.inbox(), "notice"))
    assert alice.has_key()

    # A direct message: unread until marked read, then gone.
    msg_id = owner.send("alice", "hello from python")
    assert len(msg_id) == 32
    assert alice.unread() == {"direct": 1}
    items = alice.inbox()
    assert texts(items, "dm") == ["hello from python"]
    dm = next(i for i in items if i["message"]["type"] == "dm")
    assert dm["message"]["from_name"] == "owner"
    alice.mark_read([dm["seq"]])
    assert alice.unread() == {}
    assert texts(alice.inbox(), "dm") == []

    # A topic: joined, published, caught up and in history.
    alice.join_topic("general")
    assert alice.topics() == ["general"]
    owner.publish("general", "first post")
    items = alice.inbox()
    assert texts(items, "topic") == ["first post"]
    alice.mark_read([i["seq"] for i in items if i["seq"] is not None])
    page = owner.history("general", limit=10)
    assert [e["message"]["text"] for e in page] == ["first post"]
    assert page[0]["seq"] == 1

    # Presence, sealed under the mesh key and opened by members.
    alice.set_status("reviewing")
    by_name = {p["name"]: p for p in owner.peers()}
    assert by_name["alice"]["status"] == "reviewing"
    member, number = owner.verify("alice")
    assert member["name"] == "alice" and len(number.split()) == 12


def test_a_followed_inbox_and_errors(tmp_path: Path, broker: Broker) -> None:
    owner = peer(tmp_path, "owner")
    owner.create("lab", broker.url, as_name="owner")
    bob = peer(tmp_path, "bob")
    bob.join(owner.invite()["link"], as_name="bob")
    owner.inbox()
    bob.inbox()

    follow = bob.follow()
    assert not follow.through_daemon
    got: List[str] = []

    def read() -> None:
        for item in follow:
            if item["message"]["type"] == "dm":
                got.append(item["message"]["text"])
                follow.commit()
                if len(got) == 2:
                    return

    t = threading.Thread(target=read)
    t.start()
    owner.send("bob", "one")
    owner.send("bob", "two")
    t.join(timeout=20)
    assert got == ["one", "two"]
    assert bob.unread() == {}

    with pytest.raises(nexus.MeshError) as info:
        owner.send("nobody", "hi")
    assert info.value.code == "mesh"
    assert "no peer" in str(info.value)
    with pytest.raises(nexus.MeshError):
        owner.grant("bob", ["fly"])
    with pytest.raises(ValueError):
        nexus.Client(home=tmp_path / "owner", vault=DictVault()).mesh_routed("sideways")

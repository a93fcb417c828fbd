"""The mesh through the Swift/Kotlin facade (uniffi's generated Python), in
process as a phone app runs it, against a real broker on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

import nexus_ffi as ffi
from nexus_broker import Broker


class KeychainLike(ffi.HostVault):
    def __init__(self) -> None:
        self.data: Dict[str, str] = {}

    def get(self, name: str) -> Optional[str]:
        return self.data.get(name)

    def set(self, name: str, value: str) -> None:
        self.data[name] = value

    def delete(self, name: str) -> bool:
        return self.data.pop(name, None) is not None

    def list(self, prefix: str) -> List[str]:
        return [k for k in self.data if k.startswith(prefix)]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    yield b
    b.close()


def phone(tmp_path: Path, name: str) -> ffi.Mesh:
    home = tmp_path / name
    home.mkdir()
    c = ffi.Client(ffi.ClientOptions(home=str(home), env={}), KeychainLike())
    return c.mesh(ffi.MeshRoute.IN_PROCESS)


def texts(items: List[ffi.InboxItem], kind: type) -> List[str]:
    return [i.message.text for i in items if isinstance(i.message, kind)]


def test_send_receive_a_topic_and_follow(tmp_path: Path, broker: Broker) -> None:
    async def go() -> None:
        owner = phone(tmp_path, "owner")
        await owner.create("lab", broker.url, "owner")
        me = await owner.identity()
        assert me.name == "owner" and len(me.peer) == 32
        inv = await owner.invite(None, 3600, 1, "member")
        alice = phone(tmp_path, "alice")
        assert await alice.join(inv.link, None, "alice") == "lab"
        notices = texts(await owner.inbox(None), ffi.MeshMessage.NOTICE)
        assert any("sent them the mesh key" in n for n in notices), notices
        assert any(
            "received the lab key" in n
            for n in texts(await alice.inbox(None), ffi.MeshMessage.NOTICE)
        )

        await owner.send(None, "alice", "hello from a phone")
        counts = await alice.unread(None)
        assert [(c.place, c.count) for c in counts] == [("direct", 1)]
        items = await alice.inbox(None)
        assert texts(items, ffi.MeshMessage.DM) == ["hello from a phone"]
        await alice.mark_read(None, [i.seq for i in items if i.seq is not None])
        assert await alice.unread(None) == []

        await alice.topic(None, "general", True)
        await owner.publish(None, "general", "first post")
        items = await alice.inbox(None)
        assert texts(items, ffi.MeshMessage.TOPIC) == ["first post"]
        await alice.mark_read(None, [i.seq for i in items if i.seq is not None])
        page = await owner.history(None, "general", None, 10)
        assert [e.seq for e in page] == [1]

        await alice.set_status(None, "on the train")
        peers = {p.name: p for p in await owner.peers(None)}
        assert peers["alice"].status == "on the train"

        follow = await alice.follow(None)
        await owner.send(None, "alice", "while following")
        while True:
            i = await asyncio.wait_for(follow.next(), 20)
            if isinstance(i.message, ffi.MeshMessage.DM):
                assert i.message.text == "while following"
                break
        await follow.commit()
        assert await alice.unread(None) == []

        with pytest.raises(ffi.NexusError.Mesh) as info:
            await owner.send(None, "nobody", "hi")
        assert "no peer" in str(info.value)

    asyncio.run(go())

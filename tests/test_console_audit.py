"""The audit trail behind the console's Activity page (mcp_servers/core/audit.py), over real HTTP:
who read what is recorded per user with the MCP client's name and the token's principal, a user
reads the attempts other users made on their data (refused, with who tried, nothing they did not
get), a user token reads only its own entries, the console's relay mark cannot be claimed by a
client, and the server's forget erases the entries from the file itself."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import call, http_server, ok, server_env
from tests.test_console import mcp

OWNER, ALICE, BOB = "owner-token-a11d", "alice-token-77e0", "bob-token-3c52"


def env(home: Path) -> dict[str, str]:
    return server_env(home, ALPHAAVATAR_TOKEN=OWNER, ALPHAAVATAR_USER_TOKENS=json.dumps({ALICE: "alice", BOB: "bob"}))


async def test_memory_reads_are_audited_per_user_and_forget_erases_them(tmp_path: Path) -> None:
    with http_server(["serve", "memory", "--transport", "http"], env(tmp_path)) as base:
        async with mcp(base, "", ALICE, client="alice-app") as alice:
            added = (await ok(alice, "memory_add", {"content": "Alice's passport number is AUDIT-7731", "infer": False}))
        memory_id = added["results"][0]["id"]
        async with mcp(base, "", OWNER, client="host-x") as other:
            await ok(other, "memory_list", {"user_id": "alice"})
            await other.read_resource("memory://users/alice/memories")
        async with mcp(base, "", BOB, client="bob-app") as bob:
            await ok(bob, "memory_add", {"content": "Bob keeps bees", "infer": False})
            refused = await call(bob, "memory_audit_list", {"user_id": "alice"})
            assert refused.is_error and "scoped to user 'bob'" in refused.text
            bob_entries = (await ok(bob, "memory_audit_list", {}))["entries"]
        assert {e["client"] for e in bob_entries} == {"bob-app"} and all(e["principal"] == "user:bob" for e in bob_entries)
        assert memory_id not in json.dumps(bob_entries)

        async with mcp(base, "", ALICE, client="alice-app") as alice:
            entries = (await ok(alice, "memory_audit_list", {}))["entries"]
            read = next(e for e in entries if e["client"] == "host-x" and e["kind"] == "tool")
            assert read["principal"] == "owner" and read["name"] == "memory_list" and read["ok"]
            assert read["user_ids"] == ["alice"] and memory_id in read["ids"]
            resource = next(e for e in entries if e["kind"] == "resource")
            assert resource["name"] == "memory://users/alice/memories" and resource["client"] == "host-x"
            assert [e["name"] for e in entries if e["client"] == "alice-app"] == ["memory_add"]  # audit reads aren't
            page = await ok(alice, "memory_audit_list", {"limit": 1})
            older = await ok(alice, "memory_audit_list", {"limit": 1, "cursor": page["next_cursor"]})
            assert older["entries"][0]["seq"] < page["entries"][0]["seq"]
            assert (await call(alice, "memory_audit_list", {"cursor": "nope"})).is_error

            db = tmp_path / "memory" / "audit.sqlite"
            assert all(t.encode() not in db.read_bytes() for t in (OWNER, ALICE, BOB))  # never the token
            await ok(alice, "memory_forget_user", {"user_id": "alice"})
            assert (await ok(alice, "memory_audit_list", {}))["entries"] == []
        raw = b"".join(p.read_bytes() for p in db.parent.glob("audit.sqlite*"))
        assert memory_id.encode() not in raw and b"host-x" not in raw  # erased from the file, not just hidden
        async with mcp(base, "", OWNER) as owner:
            kept = (await ok(owner, "memory_audit_list", {"user_id": "bob"}))["entries"]
        assert [e["name"] for e in kept] == ["memory_add"]  # bob's trail stays


async def test_persona_accesses_are_audited_and_user_forget_erases_them(tmp_path: Path) -> None:
    with http_server(["serve", "persona", "--transport", "http"], env(tmp_path)) as base:
        async with mcp(base, "", OWNER, client="host-y") as owner:
            user = (await ok(owner, "user_create", {"name": "Dana"}))["user_id"]
            await ok(owner, "profile_get", {"user_id": user})
            entries = (await ok(owner, "persona_audit_list", {"user_id": user}))["entries"]
            assert [e["name"] for e in entries] == ["profile_get", "user_create"]
            assert all(e["client"] == "host-y" and e["user_ids"] == [user] for e in entries)
            await ok(owner, "user_forget", {"user_id": user})
            assert (await ok(owner, "persona_audit_list", {"user_id": user}))["entries"] == []


async def test_a_user_reads_who_tried_to_reach_their_data(tmp_path: Path) -> None:
    with http_server(["serve", "memory", "--transport", "http"], env(tmp_path)) as base:
        async with mcp(base, "", ALICE, client="alice-app") as alice:
            added = await ok(alice, "memory_add", {"content": "Alice's PIN is TRAIL-5521", "infer": False})
        memory_id = added["results"][0]["id"]
        forged = {"x-alphaavatar-via": "console.0123456789abcdef"}
        async with mcp(base, "", BOB, client="alphaavatar-console", headers=forged) as bob:
            for tool, args in (("memory_get", {"memory_id": memory_id}), ("memory_list", {"user_id": "alice"}),
                               ("memory_delete", {"memory_id": memory_id}),
                               ("memory_update", {"memory_id": memory_id, "content": "changed"})):
                assert (await call(bob, tool, args)).is_error, tool
            await ok(bob, "memory_add", {"content": "Bob's own note", "infer": False})
            bob_entries = (await ok(bob, "memory_audit_list", {}))["entries"]
        async with mcp(base, "", ALICE, client="alice-app") as alice:
            entries = (await ok(alice, "memory_audit_list", {}))["entries"]
        tried = [e for e in entries if e["principal"] == "user:bob"]
        assert sorted(e["name"] for e in tried) == ["memory_delete", "memory_get", "memory_list", "memory_update"]
        assert all(not e["ok"] and e["ids"] == [] for e in tried)
        assert next(e for e in tried if e["name"] == "memory_list")["user_ids"] == ["alice"]
        assert "Bob's own note" not in json.dumps(entries) and not any(e["name"] == "memory_add" and
                                                                      e["principal"] == "user:bob" for e in entries)
        # a client may call itself the console, and send a made-up relay mark: neither makes it the console
        assert all(e["client"] == "alphaavatar-console" and e["via"] is None for e in tried + bob_entries)
        assert {e["name"] for e in bob_entries} >= {"memory_get", "memory_add"}
        assert memory_id not in json.dumps([e["ids"] for e in bob_entries])
        assert next(e for e in bob_entries if e["name"] == "memory_get")["user_ids"] == []  # not whose it was

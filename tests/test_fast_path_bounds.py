"""What the fast path keeps in a process, and the bounds that keep several processes over one CouchDB correct: an
account is re-read after ``account_cache_s``, the signing key after ``signing_key_check_s``, a database found
missing after ``missing_db_recheck_s``; list revisions are the same for the same content."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import jwt
import pytest
from helpers import Api, TestAccount, create_box, make_account

from kazoo_vm.auth.tokens import (
    KEY_DOC_ID,
    SigningKey,
    TokenService,
    _new_key_doc,
    follow_signing_key,
    load_or_create_signing_key,
)
from kazoo_vm.domain.accounts import AccountCache
from kazoo_vm.errors import BadIdentifier, InvalidCredentials
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def delete_account_doc(store: CouchStore, account_id: str) -> None:
    doc = await store.get_doc(naming.ACCOUNTS_DB, account_id)
    doc["pvt_deleted"] = True
    await store.put_doc(naming.ACCOUNTS_DB, doc)


async def test_a_deleted_account_is_refused_once_the_bound_has_passed(store: CouchStore, account: TestAccount) -> None:
    clock = Clock()
    cache = AccountCache(5.0, clock=clock)
    assert (await cache.load(store, account.id)).id == account.id
    before = store.requests_sent
    await cache.load(store, account.id)
    assert store.requests_sent == before  # within the bound: no read
    await delete_account_doc(store, account.id)  # as another process would
    clock.now += 4.9
    assert (await cache.load(store, account.id)).id == account.id
    clock.now += 0.2
    with pytest.raises(BadIdentifier):
        await cache.load(store, account.id)


async def test_without_a_bound_every_load_reads_the_account(store: CouchStore, account: TestAccount) -> None:
    cache = AccountCache(0)
    await cache.load(store, account.id)
    await delete_account_doc(store, account.id)
    with pytest.raises(BadIdentifier):
        await cache.load(store, account.id)


async def test_the_cache_holds_at_most_its_number_of_accounts(store: CouchStore, client: Any) -> None:
    first, second = await make_account(client), await make_account(client)
    cache = AccountCache(60, max_entries=1)
    await cache.load(store, first.id)
    await cache.load(store, second.id)
    before = store.requests_sent
    await cache.load(store, first.id)  # dropped for the second one: read again
    assert store.requests_sent == before + 1


async def test_a_database_found_missing_is_asked_for_again_once_the_bound_has_passed(couch_url: str) -> None:
    names = [f"kazoo_vm_missing_{secrets.token_hex(6)}_{number}" for number in range(2)]
    clock = Clock()
    ours, other = CouchStore(couch_url, missing_db_recheck_s=5.0, clock=clock), CouchStore(couch_url)
    try:
        await other.create_db(names[0])
        assert await ours.existing_databases(names) == names[:1]
        before = ours.requests_sent
        assert await ours.existing_databases(names) == names[:1]
        assert ours.requests_sent == before  # one known to exist, one known missing: nothing asked
        await other.create_db(names[1])  # as another process would
        clock.now += 4.9
        assert await ours.existing_databases(names) == names[:1]  # within the bound
        clock.now += 0.2
        assert await ours.existing_databases(names) == names
        assert ours.requests_sent == before + 1
    finally:
        await ours.close()
        await other.close()


async def test_a_database_this_store_creates_is_seen_at_once(couch_url: str) -> None:
    name = f"kazoo_vm_missing_{secrets.token_hex(6)}"
    store = CouchStore(couch_url, missing_db_recheck_s=60)
    try:
        assert await store.existing_databases([name]) == []
        await store.create_db(name)
        assert await store.existing_databases([name]) == [name]
    finally:
        await store.close()


async def test_a_new_signing_key_is_followed_within_the_check_interval(store: CouchStore) -> None:
    key = await load_or_create_signing_key(store)
    tokens = TokenService(key, 3600)
    old_token = tokens.issue("a" * 32, None, "cb_api_auth")
    current = await store.get_doc(naming.SYSTEM_AUTH_DB, KEY_DOC_ID)
    following = asyncio.create_task(follow_signing_key(store, tokens, 0.05))
    try:
        replacement = {**_new_key_doc(), "_rev": current["_rev"]}
        await store.put_doc(naming.SYSTEM_AUTH_DB, replacement)  # another process rotates the key
        for _ in range(100):
            if tokens.key != key:
                break
            await asyncio.sleep(0.02)
        assert tokens.key.private_pem == replacement["pvt_private_key_pem"].encode()
        with pytest.raises(InvalidCredentials):
            tokens.verify(old_token)
        new_token = tokens.issue("a" * 32, None, "cb_api_auth")
        assert tokens.verify(new_token).account_id == "a" * 32
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        restored = await store.get_doc(naming.SYSTEM_AUTH_DB, KEY_DOC_ID)
        await store.put_doc(naming.SYSTEM_AUTH_DB, {**current, "_rev": restored["_rev"]})


def test_the_signing_key_is_parsed_once() -> None:
    doc = _new_key_doc()
    key = SigningKey(doc["pvt_private_key_pem"].encode(), doc["pvt_identity_secret"].encode())
    assert key.private_key is key.private_key
    token = TokenService(key, 60).issue("b" * 32, None, "cb_api_auth")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"


async def test_two_identical_listings_have_one_revision_and_if_none_match_answers_304(api: Api) -> None:
    await create_box(api, mailbox="3001")
    await create_box(api, name="Other", mailbox="3002")
    first = await api.client.get(api.url("/vmboxes"), headers=api.account.headers)
    second = await api.client.get(api.url("/vmboxes"), headers=api.account.headers)
    one, two = await first.json(), await second.json()
    assert one["request_id"] != two["request_id"]
    assert one["revision"] == two["revision"] and first.headers["ETag"] == f'"{one["revision"]}"'
    again = await api.client.get(
        api.url("/vmboxes"), headers={**api.account.headers, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status == 304
    await create_box(api, name="Third", mailbox="3003")
    changed = await (await api.client.get(api.url("/vmboxes"), headers=api.account.headers)).json()
    assert changed["revision"] != one["revision"]
    assert len(changed["data"]) == 3


async def test_a_list_answer_is_the_same_json_as_a_plain_serialisation(api: Api) -> None:
    await create_box(api, mailbox="3001", name='Quote " and \\u0000 inside')
    response = await api.client.get(api.url("/vmboxes"), headers=api.account.headers)
    body = await response.json()
    assert body["data"][0]["name"] == 'Quote " and \\u0000 inside'
    plain = await (await api.client.get(api.url("/vmboxes?pretty_print=true"), headers=api.account.headers)).json()
    assert plain["data"] == body["data"] and plain["revision"] == body["revision"]


async def test_a_remembered_token_still_expires() -> None:
    doc = _new_key_doc()
    tokens = TokenService(SigningKey(doc["pvt_private_key_pem"].encode(), doc["pvt_identity_secret"].encode()), 60)
    token = tokens.issue("c" * 32, None, "cb_api_auth", lifetime_s=1)
    assert tokens.verify(token).account_id == "c" * 32
    assert tokens.verify(token).account_id == "c" * 32  # remembered
    await asyncio.sleep(2.1)  # "exp" has whole seconds
    with pytest.raises(InvalidCredentials):
        tokens.verify(token)

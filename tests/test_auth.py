"""Authentication (api_auth, user_auth, tokens, Basic) and authorisation, as Kazoo 4.3
(cb_api_auth, cb_user_auth, crossbar_auth)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from helpers import TestAccount, make_account

from kazoo_vm import appkeys
from kazoo_vm.app import create_app
from kazoo_vm.auth import tokens as tokens_module
from kazoo_vm.auth.tokens import SigningKey, TokenService, _new_key_doc
from kazoo_vm.config import Settings
from kazoo_vm.domain import accounts
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.naming import account_db


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


async def put_json(client: TestClient[Any, Any], path: str, data: Any) -> tuple[int, Any]:
    response = await client.put(path, json={"data": data})
    return response.status, await response.json()


async def list_boxes(client: TestClient[Any, Any], account_id: str, **headers: str) -> tuple[int, Any]:
    response = await client.get(f"/v2/accounts/{account_id}/vmboxes", headers=headers)
    return response.status, await response.json()


async def test_api_auth_returns_201_with_a_token_and_the_account_id(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    status, body = await put_json(client, "/v2/api_auth", {"api_key": account.api_key})
    assert status == 201
    assert body["status"] == "success"
    assert body["data"]["account_id"] == account.id
    assert "owner_id" not in body["data"]
    token = body["auth_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["account_id"] == account.id and claims["method"] == "cb_api_auth" and claims["iss"] == "kazoo"
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    status, _ = await list_boxes(client, account.id, **{"X-Auth-Token": token})
    assert status == 200


async def test_api_auth_with_an_unknown_key_is_404_with_the_key_as_data(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    unknown = "f" * 64
    status, body = await put_json(client, "/v2/api_auth", {"api_key": unknown})
    assert status == 404
    assert body["error"] == "404" and body["message"] == "bad identifier" and body["data"] == [unknown]


async def test_api_auth_with_a_key_of_the_wrong_length_is_a_validation_error(client: TestClient[Any, Any]) -> None:
    status, body = await put_json(client, "/v2/api_auth", {"api_key": "abc"})
    assert status == 400
    assert body["message"] == "validation error"
    assert body["data"]["api_key"]["minLength"]["target"] == 64


async def test_user_auth_by_account_name_with_md5_credentials(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    store = client.app[appkeys.STORE]
    user = await accounts.create_user(store, account_id=account.id, username="John@Example.com", password="m32c6NfqYEt")
    # The documented example hash: md5("john@example.com:m32c6NfqYEt")
    assert md5("john@example.com:m32c6NfqYEt") == "82a2dc91686ec828a67152d45a5c5ef7"
    status, body = await put_json(
        client,
        "/v2/user_auth",
        {"credentials": "82a2dc91686ec828a67152d45a5c5ef7", "account_name": account.account.name},
    )
    assert status == 201, body
    assert body["data"]["account_id"] == account.id
    assert body["data"]["owner_id"] == user["_id"]
    claims = jwt.decode(body["auth_token"], options={"verify_signature": False})
    assert claims["owner_id"] == user["_id"] and claims["method"] == "cb_user_auth"


async def test_user_auth_by_realm_with_sha1_credentials(client: TestClient[Any, Any], account: TestAccount) -> None:
    store = client.app[appkeys.STORE]
    await accounts.create_user(store, account_id=account.id, username="alice", password="pw")
    credentials = hashlib.sha1(b"alice:pw").hexdigest()
    status, body = await put_json(
        client, "/v2/user_auth", {"credentials": credentials, "method": "sha", "account_realm": account.account.realm}
    )
    assert status == 201, body
    assert body["data"]["account_id"] == account.id


async def test_user_auth_with_wrong_credentials_or_unknown_account_is_401(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    store = client.app[appkeys.STORE]
    await accounts.create_user(store, account_id=account.id, username="bob", password="right")
    for request in (
        {"credentials": md5("bob:wrong"), "account_name": account.account.name},
        {"credentials": md5("bob:right"), "account_name": "No Such Account"},
        {"credentials": md5("bob:right"), "realm": "nowhere.example.com"},
    ):
        status, body = await put_json(client, "/v2/user_auth", request)
        assert status == 401
        assert body["error"] == "401" and body["message"] == "invalid_credentials"
        assert body["data"] == {"message": "invalid credentials"}


async def test_user_auth_without_credentials_is_a_validation_error(client: TestClient[Any, Any]) -> None:
    status, body = await put_json(client, "/v2/user_auth", {"account_name": "x"})
    assert status == 400
    assert "required" in body["data"]["credentials"]


async def test_no_token_is_401_and_the_error_has_no_auth_token(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    status, body = await list_boxes(client, account.id)
    assert status == 401
    assert body == {
        **body,
        "status": "error",
        "error": "401",
        "message": "invalid_credentials",
        "data": {"message": "invalid credentials"},
    }
    assert "auth_token" not in body


async def test_a_garbage_or_foreign_token_is_401(client: TestClient[Any, Any], account: TestAccount) -> None:
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = foreign_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = jwt.encode({"account_id": account.id, "iss": "kazoo", "exp": 4102444800}, pem, algorithm="RS256")
    for token in ("not-a-jwt", forged):
        status, body = await list_boxes(client, account.id, **{"X-Auth-Token": token})
        assert status == 401, token
        assert body["message"] == "invalid_credentials"


async def test_an_expired_token_is_401(client: TestClient[Any, Any], account: TestAccount) -> None:
    expired = client.app[appkeys.TOKENS].issue(account.id, None, "cb_api_auth", lifetime_s=-60)
    status, body = await list_boxes(client, account.id, **{"X-Auth-Token": expired})
    assert status == 401
    assert body["message"] == "invalid_credentials"


async def test_a_token_of_another_account_is_403(client: TestClient[Any, Any], account: TestAccount) -> None:
    other = await make_account(client, name="Other")
    status, body = await list_boxes(client, account.id, **other.headers)
    assert status == 403
    assert body["error"] == "403" and body["message"] == "forbidden" and body["data"] == {"message": "forbidden"}


async def test_an_ancestor_token_may_manage_a_descendant_but_not_the_reverse(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    child = await make_account(client, name="Child", parent=account.id)
    grandchild = await make_account(client, name="Grandchild", parent=child.id)
    assert (await list_boxes(client, grandchild.id, **account.headers))[0] == 200
    assert (await list_boxes(client, grandchild.id, **child.headers))[0] == 200
    assert (await list_boxes(client, account.id, **child.headers))[0] == 403


async def test_the_token_may_come_from_query_envelope_or_bearer_header(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    path = f"/v2/accounts/{account.id}/vmboxes"
    response = await client.get(path, params={"auth_token": account.token})
    assert response.status == 200
    response = await client.get(path, headers={"Authorization": f"Bearer {account.token}"})
    assert response.status == 200
    response = await client.put(path, json={"auth_token": account.token, "data": {"name": "b", "mailbox": "1"}})
    assert response.status == 201
    body = await response.json()
    assert body["auth_token"] == account.token


async def test_a_token_in_the_request_data_authenticates_but_is_never_stored(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    path = f"/v2/accounts/{account.id}/vmboxes"
    response = await client.put(path, json={"data": {"name": "d", "mailbox": "2", "auth_token": account.token}})
    body = await response.json()
    assert response.status == 201, body
    assert body["auth_token"] == account.token
    assert "auth_token" not in body["data"]
    box_id = body["data"]["id"]
    response = await client.patch(f"{path}/{box_id}", json={"data": {"pin": "1234", "auth_token": account.token}})
    assert response.status == 200
    doc = await client.app[appkeys.STORE].get_doc(account_db(account.id), box_id)
    assert "auth_token" not in doc and doc["pin"] == "1234"


async def test_basic_auth_with_account_id_and_md5_credentials(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    store = client.app[appkeys.STORE]
    await accounts.create_user(store, account_id=account.id, username="carol", password="pw")
    good = base64.b64encode(f"{account.id}:{md5('carol:pw')}".encode()).decode()
    bad = base64.b64encode(f"{account.id}:{md5('carol:nope')}".encode()).decode()
    assert (await list_boxes(client, account.id, Authorization=f"Basic {good}"))[0] == 200
    assert (await list_boxes(client, account.id, Authorization=f"Basic {bad}"))[0] == 401


async def test_unknown_account_in_the_path_is_404_even_without_a_token(client: TestClient[Any, Any]) -> None:
    missing = "0" * 32
    status, body = await list_boxes(client, missing)
    assert status == 404
    assert body["message"] == "bad_identifier" and body["data"] == {"cause": missing, "message": "bad identifier"}
    status, body = await list_boxes(client, "short")
    assert status == 404
    assert body["message"] == "bad identifier" and body["data"] == {"message": "invalid account_id 'short'"}


async def test_a_32_character_account_id_that_names_no_database_is_an_unknown_account(
    client: TestClient[Any, Any],
) -> None:
    """Kazoo checks only the length before looking the account up, so upper case is 'unknown', not 'invalid'."""
    for odd in ("A" * 32, "0123456789abcdef0123456789abcde!"):
        status, body = await list_boxes(client, odd)
        assert status == 404
        assert body["message"] == "bad_identifier" and body["data"] == {"cause": odd, "message": "bad identifier"}


async def test_tokens_survive_a_restart_because_the_key_lives_in_couchdb(
    client: TestClient[Any, Any], account: TestAccount, settings: Settings, aiohttp_client: Any
) -> None:
    restarted: TestClient[Any, Any] = await aiohttp_client(create_app(settings, sync_design_docs=False))
    response = await restarted.get(f"/v2/accounts/{account.id}/vmboxes", headers=account.headers)
    assert response.status == 200


async def test_only_users_marked_enabled_can_log_in(client: TestClient[Any, Any], account: TestAccount) -> None:
    # users/creds_by_md5 matches enabled users only (cb_user_auth)
    store = client.app[appkeys.STORE]
    user = await accounts.create_user(store, account_id=account.id, username="dora", password="pw")
    request = {"credentials": md5("dora:pw"), "account_name": account.account.name}
    assert (await put_json(client, "/v2/user_auth", request))[0] == 201
    for enabled in (False, None):
        doc = await store.get_doc(account.account.db, user["_id"])
        if enabled is None:
            doc.pop("enabled")
        else:
            doc["enabled"] = enabled
        await store.put_doc(account.account.db, doc)
        assert (await put_json(client, "/v2/user_auth", request))[0] == 401, enabled


def stale_key() -> SigningKey:
    doc = _new_key_doc()
    return SigningKey(doc["pvt_private_key_pem"].encode(), doc["pvt_identity_secret"].encode())


async def test_a_process_with_an_older_key_accepts_at_once_a_token_signed_with_the_key_couchdb_holds(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    tokens = client.app[appkeys.TOKENS]
    current = tokens.key
    tokens.use(stale_key())  # this process is out of date
    status, _ = await list_boxes(client, account.id, **account.headers)  # issued with the key CouchDB holds
    assert status == 200
    assert tokens.key == current


async def test_requests_arriving_together_with_tokens_of_a_newer_key_are_all_accepted(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    client.app[appkeys.TOKENS].use(stale_key())
    answers = await asyncio.gather(*(list_boxes(client, account.id, **account.headers) for _ in range(5)))
    assert [status for status, _ in answers] == [200] * 5


async def test_tokens_signed_with_an_unknown_key_make_one_key_read_per_interval(
    client: TestClient[Any, Any], account: TestAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens_module, "CATCH_UP_EVERY_S", 3600.0)
    store = client.app[appkeys.STORE]
    forged = TokenService(stale_key(), 3600).issue(account.id, None, "cb_api_auth")
    assert (await list_boxes(client, account.id, **account.headers))[0] == 200  # the account is known from now on
    sent: list[int] = []
    for _ in range(3):
        before = store.requests_sent
        status, body = await list_boxes(client, account.id, **{"X-Auth-Token": forged})
        assert status == 401 and body["message"] == "invalid_credentials"
        sent.append(store.requests_sent - before)
    assert sent == [1, 0, 0]  # the first asked CouchDB for a newer key; the others, within the interval, did not


async def test_a_key_from_a_file_is_never_replaced_by_the_one_in_couchdb(store: CouchStore) -> None:
    from_file = stale_key()
    tokens = TokenService(from_file, 3600, key_in_couch=False)
    before = store.requests_sent
    assert await tokens.catch_up(store, from_file) is False
    assert tokens.key == from_file and store.requests_sent == before

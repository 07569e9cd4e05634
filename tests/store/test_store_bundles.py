"""Registering and reading bundles, on both backends."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from store_helpers import BundleArgs, blob, bundle_args, bundle_in, register

from modelshift.errors import BundleConflictError, BundleValidationError, ConfigError, NotFoundError
from modelshift.store import BundleStatus, Store
from modelshift.store.models import BlobRow


def _blob_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(BlobRow.__table__)) or 0)


def test_register_returns_the_bundle_and_writes_one_event(store: Store) -> None:
    args = bundle_args("support-chat", "1.0.0")
    registered = register(store, args, migration_id="m-1")
    assert (registered.app, registered.version, registered.digest) == ("support-chat", "1.0.0", args.digest)
    assert registered.status is BundleStatus.CANDIDATE
    assert registered.manifest == args.manifest and registered.files == args.files
    assert registered.registered_at.tzinfo is not None
    (event,) = store.audit_events()
    assert (event.reason, event.subject, event.migration_id) == (
        "bundle.registered",
        "bundle:support-chat@1.0.0",
        "m-1",
    )
    assert event.data["digest"] == args.digest
    assert store.bundle_blobs(args.digest) == args.blobs


def test_same_app_version_same_digest_is_a_noop(store: Store) -> None:
    args = bundle_args("support-chat", "1.0.0")
    first = register(store, args)
    again = register(store, args)
    assert again == first
    assert len(store.audit_events()) == 1


def test_same_app_version_other_digest_names_both_digests(store: Store) -> None:
    first = bundle_args("support-chat", "1.0.0", prompt="v1 prompt")
    changed = bundle_args("support-chat", "1.0.0", prompt="edited prompt")
    register(store, first)
    with pytest.raises(BundleConflictError) as caught:
        register(store, changed)
    message = str(caught.value)
    assert first.digest in message and changed.digest in message
    assert "bump the version" in message
    assert isinstance(caught.value, ConfigError) and caught.value.exit_code == 2
    assert store.get_bundle("support-chat", "1.0.0").digest == first.digest
    assert len(store.audit_events()) == 1


def test_same_digest_under_another_version_is_refused(store: Store) -> None:
    args = bundle_args("support-chat", "1.0.0")
    register(store, args)
    args.version = "1.0.1"
    with pytest.raises(BundleConflictError, match=r"already registered as support-chat@1\.0\.0"):
        register(store, args)


def test_blobs_are_shared_across_bundles(store: Store) -> None:
    one = bundle_args("support-chat", "1", prompt="same prompt")
    two = bundle_args("support-chat", "2", prompt="same prompt")
    other = bundle_args("support-chat", "3", prompt="other prompt")
    register(store, one)
    register(store, two)
    assert _blob_count(store) == 1
    register(store, other)
    assert _blob_count(store) == 2


def test_a_stored_blob_need_not_be_passed_again(store: Store) -> None:
    one = bundle_args("support-chat", "1", prompt="same prompt")
    register(store, one)
    two = bundle_args("support-chat", "2", prompt="same prompt")
    two.blobs = {}
    assert register(store, two).files == one.files
    assert store.bundle_blobs(two.digest) == one.blobs


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda a: a.blobs.update({blob("x")[0]: b"not x"}), "bytes hash to sha256", id="blob-mismatch"
        ),
        pytest.param(
            lambda a: setattr(a, "blobs", {}), "neither passed in blobs nor stored", id="blob-missing"
        ),
        pytest.param(lambda a: a.files.update({"p.md": "abc"}), "not a sha256 hex digest", id="file-not-sha"),
        pytest.param(lambda a: setattr(a, "app", ""), "app: must be a non-empty string", id="empty-app"),
        pytest.param(
            lambda a: setattr(a, "version", " "), "version: must be a non-empty", id="blank-version"
        ),
        pytest.param(lambda a: setattr(a, "digest", "d" * 101), "at most 100", id="digest-too-long"),
    ],
)
def test_bad_registrations_are_refused_and_change_nothing(
    store: Store, mutate: Callable[[BundleArgs], object], expected: str
) -> None:
    args = bundle_args("support-chat", "1")
    mutate(args)
    with pytest.raises(BundleValidationError, match=expected):
        register(store, args)
    assert store.list_bundles() == [] and store.audit_events() == [] and _blob_count(store) == 0


def test_unknown_status_is_refused(store: Store) -> None:
    with pytest.raises(ConfigError, match="not a bundle status; use one of: candidate"):
        register(store, bundle_args("a", "1"), status="shipping")


def test_get_bundle_prefers_production_then_latest(store: Store) -> None:
    with pytest.raises(NotFoundError, match="any bundle of app 'support-chat'"):
        store.get_bundle("support-chat")
    first = register(store, bundle_args("support-chat", "1"))
    latest = register(store, bundle_args("support-chat", "2"))
    assert store.get_bundle("support-chat").digest == latest.digest
    store.adopt_production(first.digest, actor="test")
    assert store.get_bundle("support-chat").digest == first.digest
    assert store.get_bundle("support-chat", "2").digest == latest.digest
    with pytest.raises(NotFoundError, match="support-chat@9"):
        store.get_bundle("support-chat", "9")


def test_get_by_digest_and_list_filters(store: Store) -> None:
    a1 = bundle_in(store, "a", BundleStatus.EVALUATED, version="1")
    a2 = register(store, bundle_args("a", "2"))
    b1 = register(store, bundle_args("b", "1"))
    assert store.get_bundle_by_digest(a2.digest).version == "2"
    with pytest.raises(NotFoundError, match="no bundle with digest nope"):
        store.get_bundle_by_digest("nope")
    with pytest.raises(NotFoundError):
        store.bundle_blobs("nope")
    assert [b.digest for b in store.list_bundles()] == [a1.digest, a2.digest, b1.digest]
    assert [b.digest for b in store.list_bundles(app="a")] == [a1.digest, a2.digest]
    assert [b.digest for b in store.list_bundles(status="candidate")] == [a2.digest, b1.digest]
    assert [b.digest for b in store.list_bundles(app="b", status=BundleStatus.EVALUATED)] == []

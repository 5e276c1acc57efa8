"""The service fixes glibc's mmap threshold at start-up, so freed recording-sized blocks go back to the system."""

from __future__ import annotations

import platform

import pytest

from kazoo_vm.allocator import pin_mmap_threshold
from kazoo_vm.config import ConfigError, load_settings


def test_a_threshold_of_zero_leaves_the_allocator_alone() -> None:
    assert pin_mmap_threshold(0) is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's M_MMAP_THRESHOLD is glibc's")
def test_glibc_takes_the_threshold_the_service_asks_for() -> None:
    assert pin_mmap_threshold(load_settings({}).malloc_mmap_threshold_bytes) is True


def test_a_threshold_beyond_glibcs_limit_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigError):
        load_settings({"KAZOO_VM_MALLOC_MMAP_THRESHOLD_BYTES": str(64 * 1024 * 1024)})

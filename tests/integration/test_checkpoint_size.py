"""Checkpoints grow with what each step adds, not with the square of the steps."""

from __future__ import annotations

from benchmarks.checkpoint_growth import measure
from benchmarks.inline_context import measure as inline_context
from tests.conftest import need_bwrap


async def test_thirty_steps_of_three_kilobytes_store_under_a_megabyte_and_grow_flat():
    need_bwrap()
    (n1, s1), (n2, s2), (n3, s3) = await measure(30, 3)
    assert s3 < 1_000_000, f"{s3:,} bytes for {n3} steps"
    first, second = (s2 - s1) / (n2 - n1), (s3 - s2) / (n3 - n2)
    assert second < 1.25 * first, f"growth per step went from {first:,.0f} to {second:,.0f} bytes"


async def test_a_ten_megabyte_context_sent_as_text_stays_out_of_checkpoints():
    need_bwrap()
    checkpoints, blobs = await inline_context(10, at_entry=True)
    assert checkpoints < 1_000_000, f"{checkpoints:,} bytes in checkpoints and writes"
    assert 10_000_000 <= blobs < 11_000_000, f"{blobs:,} bytes in the blob store"

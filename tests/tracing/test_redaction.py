"""The default redactor: hostile text costs linear time; real secrets are still masked."""

from __future__ import annotations

import time

import pytest

from loopwright.tracing.redaction import MASK, mask_secrets

# 200 KB each: the quadratic patterns these replace took ~7 s here (0.3 s at 40 KB); linear ones
# take a few ms. The bound leaves room for a loaded machine.
HOSTILE = {
    "unterminated private keys": "-----BEGIN RSA PRIVATE KEY-----a" * 6250,
    "jwt starts in one token run": "eyJ-" * 50_000,
    "long key header": "-----BEGIN " + "A" * 200_000,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_is_masked_in_linear_time(text: str) -> None:
    started = time.perf_counter()
    mask_secrets("lw.inputs", text)
    assert time.perf_counter() - started < 1.0


def test_a_private_key_is_masked_whole() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----"
    assert mask_secrets("prompt", f"before {key} after") == f"before {MASK} after"


def test_an_unterminated_begin_does_not_hide_the_key_after_it() -> None:
    key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----"
    text = f"-----BEGIN PRIVATE KEY----- cut off here {key}"
    assert mask_secrets("prompt", text) == f"-----BEGIN PRIVATE KEY----- cut off here {MASK}"


def test_a_jwt_is_masked_where_it_stands_alone() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpM"
    assert mask_secrets("prompt", f"token={jwt};") == f"token={MASK};"
    assert mask_secrets("prompt", f'"{jwt}"') == f'"{MASK}"'

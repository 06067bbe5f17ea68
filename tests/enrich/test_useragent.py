"""User agents: the uap-core reference cases, device types, one parse per distinct agent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from advertisex.enrich import useragent
from advertisex.enrich.useragent import Parsed, UserAgents, classify, parse

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# (file, fields as the reference names them, the same fields of our parse)
_CASES: list[tuple[str, tuple[str, ...], Callable[[Parsed], tuple[Any, ...]]]] = [
    (
        "tests/test_ua.yaml",
        ("family", "major", "minor", "patch"),
        lambda p: (p.browser, p.browser_major, p.browser_minor, p.browser_patch),
    ),
    *[
        (
            f"test_resources/{name}",
            ("family", "major", "minor", "patch"),
            lambda p: (p.browser, p.browser_major, p.browser_minor, p.browser_patch),
        )
        for name in (
            "firefox_user_agent_strings.yaml",
            "opera_mini_user_agent_strings.yaml",
            "podcasting_user_agent_strings.yaml",
        )
    ],
    *[
        (
            name,
            ("family", "major", "minor", "patch", "patch_minor"),
            lambda p: (p.os, p.os_major, p.os_minor, p.os_patch, p.os_patch_minor),
        )
        for name in ("tests/test_os.yaml", "test_resources/additional_os_tests.yaml")
    ],
    (
        "tests/test_device.yaml",
        ("family", "brand", "model"),
        lambda p: (p.device, p.brand, p.model),
    ),
]


def _load(path: Path) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.load(path.read_text(), Loader=_Loader)["test_cases"]
    return cases


@pytest.mark.parametrize(("name", "fields", "ours"), _CASES, ids=[c[0] for c in _CASES])
def test_agrees_with_the_uap_core_reference(
    testdata: Path, name: str, fields: tuple[str, ...], ours: Callable[[Parsed], tuple[Any, ...]]
) -> None:
    cases = _load(testdata / "uap-core" / name)
    assert len(cases) > 20
    wrong = [
        (c["user_agent_string"], tuple(c[f] for f in fields), ours(parse(c["user_agent_string"])))
        for c in cases
        if tuple(c[f] for f in fields) != ours(parse(c["user_agent_string"]))
    ]
    agreement = 1 - len(wrong) / len(cases)
    assert agreement >= 0.99, wrong[:5]


def test_device_types_follow_the_reference_devices(testdata: Path) -> None:
    cases = _load(testdata / "uap-core" / "tests" / "test_device.yaml")
    by_family: dict[str, set[str]] = {"Spider": set(), "iPhone": set(), "iPad": set()}
    for c in cases:
        if c["family"] in by_family:
            by_family[c["family"]].add(classify(c["user_agent_string"])[0])
    assert by_family == {"Spider": {"bot"}, "iPhone": {"mobile"}, "iPad": {"tablet"}}


@pytest.mark.parametrize(
    ("ua", "kind"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/124.0.0.0 Safari/537.36", "desktop"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/124.0.6367.82 Mobile Safari/537.36", "mobile"),
        ("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/124.0.0.0 Safari/537.36", "tablet"),
        ("Roku/DVP-9.10 (519.10E04111A)", "ctv"),
        ("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
         "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36", "ctv"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
        ("python-requests/2.31.0", "bot"),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "HeadlessChrome/124.0.6367.60 Safari/537.36", "bot"),
        ("SomethingNobodyKnows/1.0", "other"),
    ],
)  # fmt: skip
def test_device_type(ua: str, kind: str) -> None:
    assert classify(ua)[0] == kind
    assert classify(ua)[3] is (kind == "bot")


def test_each_distinct_agent_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = useragent.parse

    def counting(ua: str) -> Any:
        calls.append(ua)
        return real(ua)

    monkeypatch.setattr(useragent, "parse", counting)
    uas = UserAgents()
    distinct = [f"Mozilla/5.0 (Windows NT 10.0) Chrome/{v}.0" for v in range(50)]
    first = uas.lookup(pa.array(distinct))
    again = uas.lookup(pa.array(distinct[::-1]))
    assert len(calls) == 50
    assert first.num_rows == again.num_rows == 50
    assert set(first.column("device_type").to_pylist()) == {"desktop"}
